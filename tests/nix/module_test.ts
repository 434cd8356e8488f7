// nix/module.nix under `nix eval`, through the builtins-only stand-in for
// nixpkgs' module system (tests/fixtures/module_eval.nix): there is no
// nixpkgs here. CI's `nix flake check` evaluates it with the real one
// (nix/checks.nix, module-eval).
import assert from "node:assert/strict";
import { nixEnv, repoRoot, requireTools, run } from "../_tools.ts";

const ok = await requireTools("NixOS module tests", "nix");
const env = nixEnv();

const STORE = "/nix/store/00000000000000000000000000000000";

/** Evaluates the module with `settings` (Nix text); resolves to the parts tests read. */
async function evalModule(settings: string): Promise<{
  code: number;
  value: {
    variables: Record<string, string>;
    failedAssertions: string[];
    warnings: string[];
    packages: string[];
  };
  stderr: string;
}> {
  const expr = `let
    r = import ${repoRoot}/tests/fixtures/module_eval.nix {
      module = import ${repoRoot}/nix/module.nix;
      settings = ${settings};
      # Other modules' options the module reads.
      otherConfig.programs.nix-ld.enable = false;
      pkgs.rocmNightly = {
        defaultTarget = "gfx1151";
        defaultChannel = "stable";
        packageIn = channel: target: { outPath = "${STORE}-rocm-\${channel}-\${target}"; };
        # The family a target resolves to, as nix/resolve.nix would (gfx1250: none).
        resolveIn = channel: target:
          if target == "gfx1250" then throw "no tarball" else {
            family = { gfx1151 = "gfx1151"; gfx1030 = "gfx103X-all"; multiarch = "multiarch"; }.\${target};
          };
      };
    };
  in {
    variables = r.definitions.environment.variables or { };
    inherit (r) failedAssertions warnings;
    packages = map toString (r.definitions.environment.systemPackages or [ ]);
  }`;
  const result = await run("nix", ["eval", "--impure", "--json", "--expr", expr], { env });
  return {
    code: result.code,
    value: result.code === 0 ? JSON.parse(result.stdout) : null,
    stderr: result.stderr,
  };
}

Deno.test({
  name: "module.nix hsaOverrideGfxVersion is null by default and leaves the variable unset",
  ignore: !ok,
  fn: async () => {
    const { code, value, stderr } = await evalModule("{ enable = true; }");
    assert.equal(code, 0, stderr);
    assert.deepEqual(value.variables, { ROCM_PATH: "/opt/rocm", HIP_PATH: "/opt/rocm" });
    assert.deepEqual(value.failedAssertions, []);
    assert.deepEqual(value.packages, [`${STORE}-rocm-stable-gfx1151`]);
  },
});

Deno.test({
  name: "module.nix hsaOverrideGfxVersion sets HSA_OVERRIDE_GFX_VERSION system-wide",
  ignore: !ok,
  fn: async () => {
    for (const version of ["10.3.0", "11.0.0", "9.0.10"]) {
      const { code, value, stderr } = await evalModule(
        `{ enable = true; target = "multiarch"; hsaOverrideGfxVersion = "${version}"; }`,
      );
      assert.equal(code, 0, stderr);
      assert.equal(value.variables.HSA_OVERRIDE_GFX_VERSION, version);
      assert.equal(value.variables.ROCM_PATH, "/opt/rocm");
      assert.deepEqual(value.failedAssertions, []);
      assert.deepEqual(value.warnings, []);
    }
    // Disabled, the module sets nothing.
    const off = await evalModule(`{ enable = false; hsaOverrideGfxVersion = "10.3.0"; }`);
    assert.equal(off.code, 0, off.stderr);
    assert.deepEqual(off.value.variables, {});
  },
});

Deno.test({
  name: "module.nix hsaOverrideGfxVersion fails an assertion for a malformed value, quoting it",
  ignore: !ok,
  fn: async () => {
    for (const bad of ["11.0", "gfx1100", "10.16.0", "11.0.0 ", "", "1.2.3.4"]) {
      const { code, value, stderr } = await evalModule(
        `{ enable = true; hsaOverrideGfxVersion = ${JSON.stringify(bad)}; }`,
      );
      assert.equal(code, 0, stderr);
      assert.equal(value.failedAssertions.length, 1, bad);
      assert.equal(
        value.failedAssertions[0],
        `services.rocm-nightly.hsaOverrideGfxVersion = ${
          JSON.stringify(bad)
        } is not an HSA_OVERRIDE_GFX_VERSION: expected <major>.<minor>.<stepping> in decimal with minor and stepping 0 to 15, such as "10.3.0" (runs gfx1030 code) or "11.0.0" (gfx1100); \`nix run .#detect\` prints the value for this machine's GPU`,
      );
    }
    // Not a string at all: the option's type refuses it.
    const wrongType = await evalModule("{ enable = true; hsaOverrideGfxVersion = 11; }");
    assert.notEqual(wrongType.code, 0);
    assert.match(
      wrongType.stderr,
      /option `services\.rocm-nightly\.hsaOverrideGfxVersion' is not of type `null or string'/,
    );
  },
});

Deno.test({
  name: "module.nix warns when the override names an ISA the target's tarball lacks",
  ignore: !ok,
  fn: async () => {
    const { code, value, stderr } = await evalModule(
      `{ enable = true; hsaOverrideGfxVersion = "10.3.0"; }`,
    );
    assert.equal(code, 0, stderr);
    assert.deepEqual(value.warnings, [
      'services.rocm-nightly.hsaOverrideGfxVersion = "10.3.0" makes ROCm run gfx1030 code, which the gfx1151 tarball of target "gfx1151" does not have: set services.rocm-nightly.target = "gfx1030" (as `nix run .#detect` prints)',
    ]);
    assert.equal(value.variables.HSA_OVERRIDE_GFX_VERSION, "10.3.0");
    // multiarch has gfx1030 code; a target that does not resolve is the resolver's to explain.
    for (const target of ["multiarch", "gfx1250"]) {
      const other = await evalModule(
        `{ enable = true; target = "${target}"; hsaOverrideGfxVersion = "10.3.0"; package = { outPath = "/x"; }; }`,
      );
      assert.equal(other.code, 0, other.stderr);
      assert.deepEqual(other.value.warnings, [], target);
    }
  },
});
