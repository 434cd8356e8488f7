import { deepEqual } from "node:assert/strict";
import { CLASSES } from "./classes.ts";
import { repoRoot } from "../_tools.ts";

Deno.test("docs/guarantees.md's \"What it survives\" table counts the fault suite's cases", () => {
  const guarantees = Deno.readTextFileSync(`${repoRoot}/docs/guarantees.md`);
  const section = guarantees.split("\n## What it survives\n")[1]?.split("\n#")[0] ?? "";
  const rows = [...section.matchAll(/^\| (.+?) +\| +(\d+) *\|$/gm)].map((
    m,
  ) => [m[1]!, Number(m[2])]);
  deepEqual(rows, CLASSES.map((c) => [c.title, c.cases.length]));
});
