/**
 * The fault classes, in the order of docs/guarantees.md's "What it survives"
 * table. Each *_test.ts file of this folder registers some (so that --parallel
 * spreads them over the cores); guarantees_table_test.ts checks the table.
 *
 * @module
 */

import type { FaultClass } from "./_harness.ts";
import { DISK_CASES } from "./disk.ts";
import { EDIT_CASES } from "./edits.ts";
import { FILE_CASES } from "./files.ts";
import { HOST_FILE_CASES } from "./host_files.ts";
import { HTTP_CASES, REDIRECT_CASES } from "./http.ts";
import { LIMIT_CASES } from "./limits.ts";
import { NAME_CASES } from "./names.ts";
import { REGISTRY_FORM_CASES } from "./registry_forms.ts";
import { PROBE_REDIRECT_CASES } from "./probes.ts";
import { SECRET_CASES } from "./secrets.ts";
import { OWNERSHIP_CASES } from "./ownership.ts";
import { disposeSignalFixtures, SIGNAL_CASES } from "./signals.ts";
import { GATE_CASES } from "./gate.ts";
import { FIRST_RUN_CASES } from "./first_run.ts";
import { PARTIAL_WORK_CASES } from "./partial_work.ts";

export const HTTP: FaultClass = { title: "HTTP framing and status oddities", cases: HTTP_CASES };
export const REDIRECTS: FaultClass = {
  title: "Redirects to disallowed schemes and hosts",
  cases: [...REDIRECT_CASES, ...PROBE_REDIRECT_CASES],
};
export const LIMITS: FaultClass = { title: "`--max-bytes` on every source", cases: LIMIT_CASES };
export const FILES: FaultClass = {
  title: "Odd files where a regular file is expected",
  cases: FILE_CASES,
};
export const NAMES: FaultClass = {
  title: "Bytes that are not UTF-8, in flake.nix and in file names",
  cases: NAME_CASES,
};
export const SIGNALS: FaultClass = {
  title: "SIGTERM, SIGHUP and SIGINT at every stage",
  cases: SIGNAL_CASES,
  cleanup: disposeSignalFixtures,
};
export const DISK: FaultClass = {
  title: "A full or read-only target folder",
  cases: DISK_CASES,
  cleanup: disposeSignalFixtures,
};
export const OWNERSHIP: FaultClass = {
  title: "A user's look-alike files, and SIGKILL at every stage",
  cases: OWNERSHIP_CASES,
  cleanup: disposeSignalFixtures,
};

export const GATE: FaultClass = {
  title: "A gate command and its children on a signal",
  cases: GATE_CASES,
};

export const EDITS: FaultClass = {
  title: "Another writer, owners and hard links",
  cases: EDIT_CASES,
};

export const REGISTRY_FORMS: FaultClass = {
  title: "Registry forms the editor cannot rewrite",
  cases: REGISTRY_FORM_CASES,
};

export const SECRETS: FaultClass = {
  title: "Secrets in URLs and control characters from servers",
  cases: SECRET_CASES,
};

export const HOST_FILES: FaultClass = {
  title: "Host links, special files and `env -S` in a tarball",
  cases: HOST_FILE_CASES,
};

export const FIRST_RUN: FaultClass = {
  title: "A first run: no flake here, network failures in words",
  cases: FIRST_RUN_CASES,
};

export const PARTIAL_WORK: FaultClass = {
  title: "One target's failure keeps the others' work",
  cases: PARTIAL_WORK_CASES,
};

/** Every class, in docs/guarantees.md's order. */
export const CLASSES: FaultClass[] = [
  HTTP,
  REDIRECTS,
  LIMITS,
  FILES,
  NAMES,
  SIGNALS,
  DISK,
  GATE,
  EDITS,
  REGISTRY_FORMS,
  SECRETS,
  HOST_FILES,
  OWNERSHIP,
  FIRST_RUN,
  PARTIAL_WORK,
];
