// The container settings of an image of the package as nix/install.sh lays
// it out (opt/rocm, bin/ wrappers), read back from the built image.
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeSampleRocmTree } from "../lib/sample_rocm.ts";
import { nixEnv, repoRoot, requireTools, run, runNixBuild, withTempDir } from "./_tools.ts";

const ok = await requireTools(
  "image config tests with an installed package",
  "nix",
  "nix-build",
  "skopeo",
  "bash",
);

const script = join(repoRoot, "scripts/image.ts");
const permissions = (await Deno.readTextFile(script)).split("\n")[0]!.split(" ").filter((word) =>
  word.startsWith("--allow-")
);

Deno.test({
  name: "rocmContainerConfig() of an installed package names opt/rocm, the wrappers, its version",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const tree = join(dir, "tree");
      await writeSampleRocmTree(tree, { isas: ["gfx1151"], version: "7.12.0a20260401" });
      const expr = join(dir, "package.nix");
      // The store name carries another version: the label must come from the tree.
      await Deno.writeTextFile(
        expr,
        `builtins.derivation {
  name = "rocm-nightly-gfx1151-0.0.0";
  system = builtins.currentSystem;
  builder = "/bin/bash";
  PATH = "/usr/bin:/bin";
  args = [
    (builtins.path { path = ${JSON.stringify(join(repoRoot, "nix/install.sh"))}; })
    "--source" (builtins.path { path = ${JSON.stringify(tree)}; name = "tree"; })
    "--out" (builtins.placeholder "out")
    "--pname" "rocm-nightly-gfx1151"
  ];
}`,
      );
      const built = await runNixBuild("nix-build", [expr, "--no-out-link"], { env: nixEnv() });
      assert.equal(built.code, 0, built.stderr);
      const pkg = built.stdout.trim();
      const info = await run("nix", ["path-info", "--json", "--recursive", pkg], { env: nixEnv() });
      assert.equal(info.code, 0, info.stderr);
      const closure = join(dir, "closure.json");
      await Deno.writeTextFile(closure, info.stdout);
      const archive = join(dir, "image.tar");
      const written = await run(Deno.execPath(), [
        ...["run", "--no-config", ...permissions, script],
        ...["--closure", closure, "--name", "rocm", "--target", "gfx1151", "--output", archive],
      ]);
      assert.equal(written.code, 0, written.stderr);
      const inspect = await run("skopeo", ["inspect", "--config", `docker-archive:${archive}`]);
      assert.equal(inspect.code, 0, inspect.stderr);
      const config = JSON.parse(inspect.stdout).config;
      assert.deepEqual(config.Env, [
        `PATH=${pkg}/bin`,
        `ROCM_PATH=${pkg}/opt/rocm`,
        `HIP_PATH=${pkg}/opt/rocm`,
      ]);
      assert.deepEqual(config.Cmd, [`${pkg}/bin/rocminfo`]);
      assert.equal(config.Labels["org.opencontainers.image.version"], "7.12.0a20260401");
      await Deno.stat(join(pkg, "bin/rocminfo"));
      await Deno.stat(join(pkg, "opt/rocm/.info/version"));
    });
  },
});
