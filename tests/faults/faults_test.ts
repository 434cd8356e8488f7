/**
 * The fault suite: every class of hostile input, odd file, signal and full
 * disk that README's "What it survives" table lists, each case asserting
 * README's promise for a failure. The table's counts are checked here
 * against the cases, so it cannot drift.
 *
 * @module
 */

import { deepEqual } from "node:assert/strict";
import { type FaultClass, registerClasses } from "./_harness.ts";
import { FILE_CASES } from "./files.ts";
import { HTTP_CASES, REDIRECT_CASES } from "./http.ts";
import { NAME_CASES } from "./names.ts";
import { disposeSignalFixtures, SIGNAL_CASES } from "./signals.ts";
import { repoRoot } from "../_tools.ts";

export const CLASSES: FaultClass[] = [
  { title: "HTTP framing and status oddities", cases: HTTP_CASES },
  { title: "Redirects to disallowed schemes and hosts", cases: REDIRECT_CASES },
  { title: "Odd files where a regular file is expected", cases: FILE_CASES },
  { title: "Bytes that are not UTF-8, in flake.nix and in file names", cases: NAME_CASES },
  {
    title: "SIGTERM, SIGHUP and SIGINT at every stage",
    cases: SIGNAL_CASES,
    cleanup: disposeSignalFixtures,
  },
];

registerClasses(CLASSES);

Deno.test("README's \"What it survives\" table counts the fault suite's cases", () => {
  const readme = Deno.readTextFileSync(`${repoRoot}/README.md`);
  const section = readme.split("### What it survives")[1]?.split("\n#")[0] ?? "";
  const rows = [...section.matchAll(/^\| ([^|]+?) +\| +(\d+) \|$/gm)]
    .map((m) => [m[1]!, Number(m[2])]);
  deepEqual(rows, CLASSES.map((c) => [c.title, c.cases.length]));
});
