import { deepEqual } from "node:assert/strict";
import { CLASSES } from "./classes.ts";
import { repoRoot } from "../_tools.ts";

Deno.test("README's \"What it survives\" table counts the fault suite's cases", () => {
  const readme = Deno.readTextFileSync(`${repoRoot}/README.md`);
  const section = readme.split("### What it survives")[1]?.split("\n#")[0] ?? "";
  const rows = [...section.matchAll(/^\| (.+?) +\| +(\d+) *\|$/gm)].map((
    m,
  ) => [m[1]!, Number(m[2])]);
  deepEqual(rows, CLASSES.map((c) => [c.title, c.cases.length]));
});
