import assert from "node:assert/strict";
import { join } from "node:path";
import { DEMO_REGISTRY, runDemo } from "../../lib/jobs/demo.ts";
import { repoRoot, run } from "../_tools.ts";

Deno.test("runDemo() updates a copy and leaves the original untouched", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const flake = join(dir, "flake.nix");
    await Deno.writeTextFile(flake, DEMO_REGISTRY);
    const lines: string[] = [];
    const result = await runDemo({ flake, log: (line) => lines.push(line) });
    assert.equal(await Deno.readTextFile(flake), DEMO_REGISTRY);
    assert.equal(result.update.oldVersion, "7.12.0a20260308");
    assert.equal(result.update.newVersion, "7.12.0a20260309");
    assert.deepEqual(result.update.heldBack, { version: "7.12.0a20260310", by: ["gfx110X-all"] });
    assert.match(result.diff, /^\+ {4}version = "7\.12\.0a20260309";$/m);
    assert.match(result.diff, /^\+ {6}gfx110X-all = "sha256-[A-Za-z0-9+/]{43}=";/m);
    assert.equal(result.requests.filter((path) => path.endsWith(".tar.gz")).length, 2);
    assert.ok(lines.some((line) => line.startsWith("mirror: http://127.0.0.1:")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("demo.ts runs with the permissions of its shebang", async () => {
  const script = join(repoRoot, "scripts", "demo.ts");
  const shebang = (await Deno.readTextFile(script)).split("\n")[0]!;
  const permissions = shebang.split(" ").filter((word) => word.startsWith("--allow-"));
  assert.deepEqual(permissions, ["--allow-net=127.0.0.1", "--allow-read", "--allow-write"]);
  const { code, stdout, stderr } = await run(Deno.execPath(), ["run", ...permissions, script]);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^--- a\/flake\.nix$/m);
  assert.match(stdout, /suggested commit message:\n {2}rocm-nightly: \S+ -> \S+/);
});
