/**
 * Every script must work as `deno run https://…/scripts/<x>.ts`: no
 * deno.json, no import map, only relative imports and versioned npm:
 * specifiers. The repository is served over loopback HTTP and each script
 * found in scripts/ (at test time, so new scripts are covered) is run by URL
 * with `--help`, with the permissions of its own shebang, from an empty
 * folder.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startFileServer } from "../_server.ts";
import { repoRoot, run } from "../_tools.ts";

const SHEBANG = /^#!\/usr\/bin\/env -S deno run( .*)?$/;

const scripts: string[] = [];
for await (const entry of Deno.readDir(join(repoRoot, "scripts"))) {
  if (entry.isFile && entry.name.endsWith(".ts")) scripts.push(entry.name);
}
scripts.sort();

Deno.test("scripts/ holds scripts to run (the enumeration below is not empty)", () => {
  assert.ok(scripts.includes("prefetch.ts"), `found ${scripts.join(", ")}`);
});

for (const name of scripts) {
  Deno.test(`scripts/${name} --help works when run from a URL`, async () => {
    const firstLine = (await Deno.readTextFile(join(repoRoot, "scripts", name))).split("\n")[0]!;
    const shebang = SHEBANG.exec(firstLine);
    assert.ok(shebang !== null, `scripts/${name} must start with "#!/usr/bin/env -S deno run …"`);
    const permissions = (shebang[1] ?? "").trim().split(/\s+/).filter((word) => word !== "");
    await using server = startFileServer({ root: repoRoot });
    const dir = await Deno.makeTempDir({ prefix: "run-from-url-" });
    try {
      const result = await run(Deno.execPath(), [
        "run",
        `--allow-import=127.0.0.1:${server.port}`,
        // A port an earlier run used may still be in Deno's module cache.
        `--reload=${server.origin}`,
        ...permissions,
        server.url(`/scripts/${name}`),
        "--help",
      ], { cwd: dir, env: { NO_COLOR: "1" } });
      assert.equal(result.code, 0, `exit ${result.code}\nstderr:\n${result.stderr}`);
      assert.match(result.stdout, /usage/i, `no usage on stdout:\n${result.stdout}`);
      // The script really came over HTTP, not from the work tree.
      assert.ok(server.requests.some((r) => r.path === `/scripts/${name}`));
      assert.deepEqual([...Deno.readDirSync(dir)], [], "the script wrote nothing");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
