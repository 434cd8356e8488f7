/**
 * The fault classes, in the order of docs/guarantees.md's "What it survives"
 * table. Each *_test.ts file of this folder registers some (so that --parallel
 * spreads them over the cores); guarantees_table_test.ts checks the table.
 *
 * @module
 */

import type { FaultClass } from "./_harness.ts";
import { DISK_CASES } from "./disk.ts";
import { FILE_CASES } from "./files.ts";
import { HTTP_CASES, REDIRECT_CASES } from "./http.ts";
import { LIMIT_CASES } from "./limits.ts";
import { NAME_CASES } from "./names.ts";
import { OWNERSHIP_CASES } from "./ownership.ts";
import { disposeSignalFixtures, SIGNAL_CASES } from "./signals.ts";

export const HTTP: FaultClass = { title: "HTTP framing and status oddities", cases: HTTP_CASES };
export const REDIRECTS: FaultClass = {
  title: "Redirects to disallowed schemes and hosts",
  cases: REDIRECT_CASES,
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

/** Every class, in docs/guarantees.md's order. */
export const CLASSES: FaultClass[] = [
  HTTP,
  REDIRECTS,
  LIMITS,
  FILES,
  NAMES,
  SIGNALS,
  DISK,
  OWNERSHIP,
];
