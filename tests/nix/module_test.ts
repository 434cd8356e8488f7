// The flake's nixosModules.default evaluated by nixpkgs' real module system:
// the nixpkgs stand-in (tests/fixtures/nixpkgs-standin) runs lib.nixosSystem
// with nixpkgs' own lib.evalModules and the NixOS options the module touches
// declared as nixpkgs declares them, under a current Nix (lib.fileset needs
// Nix ≥ 2.14). The package is the flake's own (stable 7.14.0 for gfx1151 on a
// fresh clone) unless a case sets a stub.
import assert from "node:assert/strict";
import { nixEnv, repoRoot, requireCurrentNix, run } from "../_tools.ts";

const current = await requireCurrentNix("NixOS module tests");
const env = nixEnv();

/** Nix text binding `standin`, `flake`, `stub`, `withIcd`, `evalWith` and `eval`. */
function prelude(): string {
  return `
    standin = import ${current!.standin}/default.nix { nixpkgs-lib = ${current!.nixpkgsLib}; };
    # self as a flake's: its outputs and the source's outPath.
    flake = (import ${repoRoot}/flake.nix).outputs {
      self = flake // { outPath = "${repoRoot}"; };
      nixpkgs = standin;
    };
    inherit (standin) lib;
    store = name: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh"; };
    withIcd = store "rocm-stub" // { openclIcd = store "rocm-stub-opencl-icd"; };
    withoutIcd = store "rocm-user";
    # A configuration with the module and \`settings\` for services.rocm-nightly.
    evalWith = extra: settings: (lib.nixosSystem {
      modules = [
        flake.nixosModules.default
        { services.rocm-nightly = settings; }
      ] ++ extra;
    }).config;
    eval = evalWith [ { nixpkgs.hostPlatform = "x86_64-linux"; hardware.graphics.enable = true; } ];
    failed = config: map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
    view = config: {
      sessionVariables = config.environment.sessionVariables;
      variables = builtins.removeAttrs config.environment.variables [ ];
      failedAssertions = failed config;
      inherit (config) warnings;
      packages = map (p: p.name) config.environment.systemPackages;
      tmpfiles = config.systemd.tmpfiles.rules;
      tmpfilesSettings = config.systemd.tmpfiles.settings;
      tmpfilesFiles = config.systemd.tmpfiles.ruleFiles;
      etc = builtins.attrNames config.environment.etc;
      nixLd = map (p: p.name) config.programs.nix-ld.libraries;
      graphics = map (p: p.name) config.hardware.graphics.extraPackages;
    };`;
}

/** Evaluates `body` (Nix, with the prelude's bindings) to JSON. */
async function evalNix(body: string): Promise<{ code: number; value: unknown; stderr: string }> {
  const expr = `let ${prelude()} in ${body}`;
  const result = await run(current!.nix, ["eval", "--impure", "--json", "--expr", expr], { env });
  return {
    code: result.code,
    value: result.code === 0 ? JSON.parse(result.stdout) : null,
    stderr: result.stderr,
  };
}

async function evalOk(body: string): Promise<Record<string, unknown>> {
  const { code, value, stderr } = await evalNix(body);
  assert.equal(code, 0, stderr);
  return value as Record<string, unknown>;
}

interface View {
  sessionVariables: Record<string, string>;
  variables: Record<string, string>;
  failedAssertions: string[];
  warnings: string[];
  packages: string[];
  tmpfiles: string[];
  tmpfilesSettings: Record<string, Record<string, Record<string, Record<string, string>>>>;
  tmpfilesFiles: Record<string, string>;
  etc: string[];
  nixLd: string[];
  graphics: string[];
}

const NO_HSA_MESSAGE = (value: string): string =>
  `services.rocm-nightly.hsaOverrideGfxVersion = ${
    JSON.stringify(value)
  } is not an HSA_OVERRIDE_GFX_VERSION: expected <major>.<minor>.<stepping> in decimal with minor and stepping 0 to 15, such as "10.3.0" (runs gfx1030 code) or "11.0.0" (gfx1100); \`nix run .#detect\` prints the value for this machine's GPU`;

Deno.test({
  name: "module: defaults install the flake's package and set ROCM_PATH for every session",
  ignore: current === null,
  fn: async () => {
    const value = await evalOk(`{
      on = view (eval { enable = true; });
      off = view (eval { enable = false; hsaOverrideGfxVersion = "10.3.0"; });
      channel = (eval { enable = true; }).services.rocm-nightly.channel;
      noGraphics = (evalWith [ { nixpkgs.hostPlatform = "x86_64-linux"; } ] { enable = true; }).warnings;
      noGraphicsNoIcd = (evalWith [ { nixpkgs.hostPlatform = "x86_64-linux"; } ]
        { enable = true; package = withoutIcd; }).warnings;
      expected = flake.packages.x86_64-linux.rocm-stable-gfx1151.name;
    }`) as {
      on: View;
      off: View;
      channel: string;
      expected: string;
      noGraphics: string[];
      noGraphicsNoIcd: string[];
    };
    const rocm = {
      ROCM_PATH: "/opt/rocm",
      HIP_PATH: "/opt/rocm",
      // Read by the wrappers: the system's default, not the caller's choice.
      ROCM_NIGHTLY_MODULE_PATH: "/opt/rocm",
    };
    // sessionVariables: PAM gives them to services' sessions and graphical
    // logins too; nixpkgs copies them into the shells' variables.
    assert.deepEqual(value.on.sessionVariables, rocm);
    assert.deepEqual(value.on.variables, rocm);
    assert.deepEqual(value.on.failedAssertions, []);
    assert.deepEqual(value.on.warnings, []);
    assert.deepEqual(value.on.packages, [value.expected]);
    assert.equal(value.expected, "rocm-stable-gfx1151-7.14.0");
    assert.equal(value.channel, "stable");
    // Without hardware.graphics the ICD cannot show up: a warning says so.
    assert.deepEqual(value.noGraphics, [
      "services.rocm-nightly: the package's OpenCL ICD reaches /run/opengl-driver/etc/OpenCL/vendors only with hardware.graphics.enable = true; set it for OpenCL programs to find ROCm",
    ]);
    assert.deepEqual(value.noGraphicsNoIcd, []);
    // Disabled, the module sets nothing.
    assert.deepEqual(value.off.sessionVariables, {});
    assert.deepEqual(value.off.packages, []);
    assert.deepEqual(value.off.tmpfiles, []);
    assert.deepEqual(value.off.tmpfilesSettings, {});
  },
});

Deno.test({
  name: "module: hsaOverrideGfxVersion sets HSA_OVERRIDE_GFX_VERSION, refuses malformed values",
  ignore: current === null,
  fn: async () => {
    const good = ["10.3.0", "11.0.0", "9.0.10"];
    const bad = ["11.0", "gfx1100", "10.16.0", "11.0.0 ", "", "1.2.3.4"];
    const value = await evalOk(`{
      good = map (v: view (eval { enable = true; package = withIcd; hsaOverrideGfxVersion = v; }))
        ${JSON.stringify(good).replaceAll(",", " ")};
      bad = map (v: (view (eval { enable = true; package = withIcd; hsaOverrideGfxVersion = v; })).failedAssertions)
        ${JSON.stringify(bad).replaceAll(",", " ")};
    }`) as { good: View[]; bad: string[][] };
    good.forEach((version, i) => {
      const view = value.good[i]!;
      assert.equal(view.sessionVariables.HSA_OVERRIDE_GFX_VERSION, version);
      assert.equal(view.variables.HSA_OVERRIDE_GFX_VERSION, version);
      assert.deepEqual(view.failedAssertions, []);
    });
    bad.forEach((version, i) => assert.deepEqual(value.bad[i], [NO_HSA_MESSAGE(version)], version));
    // Not a string at all: nixpkgs' types refuse it.
    const wrongType = await evalNix(
      `(eval { enable = true; hsaOverrideGfxVersion = 11; }).services.rocm-nightly.hsaOverrideGfxVersion`,
    );
    assert.notEqual(wrongType.code, 0);
    assert.match(
      wrongType.stderr,
      /option `services\.rocm-nightly\.hsaOverrideGfxVersion' is not of type `null or string'/,
    );
  },
});

Deno.test({
  name: "module: warns when the override names an ISA the target's tarball lacks",
  ignore: current === null,
  fn: async () => {
    const value = await evalOk(`{
      gfx1151 = (eval { enable = true; hsaOverrideGfxVersion = "10.3.0"; }).warnings;
      others = map (target: (eval { enable = true; inherit target; package = withoutIcd;
        hsaOverrideGfxVersion = "10.3.0"; }).warnings) [ "gfx1030" "gfx1250" ];
    }`) as { gfx1151: string[]; others: string[][] };
    assert.deepEqual(value.gfx1151, [
      'services.rocm-nightly.hsaOverrideGfxVersion = "10.3.0" makes ROCm run gfx1030 code, which the gfx1151 tarball of target "gfx1151" does not have: set services.rocm-nightly.target = "gfx1030" (as `nix run .#detect` prints)',
    ]);
    // gfx103X-all has gfx1030 code; a target that does not resolve is the resolver's to explain.
    assert.deepEqual(value.others, [[], []]);
  },
});

Deno.test({
  name: "module: channel and target pick the flake's package; an unpinned one names another",
  ignore: current === null,
  fn: async () => {
    const value = await evalOk(`{
      stable = (eval { enable = true; channel = "stable"; target = "gfx1100"; }).services.rocm-nightly.package.name;
      expected = flake.packages.x86_64-linux.rocm-stable-gfx1100.name;
    }`) as { stable: string; expected: string };
    assert.equal(value.stable, value.expected);
    const nightly = await evalNix(
      `(eval { enable = true; channel = "nightly"; }).services.rocm-nightly.package.name`,
    );
    assert.notEqual(nightly.code, 0);
    assert.match(nightly.stderr, /no tarball for target "gfx1151" in the nightly channel/);
    assert.match(nightly.stderr, /rocm-stable-gfx1151 \(stable 7\.14\.0\)/);
  },
});

Deno.test({
  name: "module: nix-ld libraries only with nix-ld, the OpenCL ICD package, no ld.so.conf.d",
  ignore: current === null,
  fn: async () => {
    const value = await evalOk(`{
      plain = view (eval { enable = true; package = withIcd; });
      nixLd = view (evalWith [ { nixpkgs.hostPlatform = "x86_64-linux"; programs.nix-ld.enable = true; } ]
        { enable = true; package = withIcd; });
      noIcd = view (eval { enable = true; package = withoutIcd; });
      out = withIcd.outPath;
    }`) as { plain: View; nixLd: View; noIcd: View; out: string };
    assert.deepEqual(value.plain.packages, ["rocm-stub"]);
    // systemd.tmpfiles.settings, as nixpkgs' own modules declare links now;
    // nixpkgs writes it as lib/tmpfiles.d/rocm-nightly.conf.
    assert.deepEqual(value.plain.tmpfiles, []);
    assert.deepEqual(value.plain.tmpfilesSettings, {
      "rocm-nightly": {
        "/opt/rocm": {
          "L+": {
            type: "L+",
            mode: "-",
            user: "-",
            group: "-",
            age: "-",
            argument: `${value.out}/opt/rocm`,
          },
        },
      },
    });
    assert.deepEqual(value.plain.tmpfilesFiles, {
      "rocm-nightly": `'L+' '/opt/rocm' '-' '-' '-' '-' ${value.out}/opt/rocm\n`,
    });
    assert.deepEqual(value.plain.etc, []);
    assert.deepEqual(value.plain.nixLd, []);
    assert.deepEqual(value.plain.graphics, ["rocm-stub-opencl-icd"]);
    assert.deepEqual(value.nixLd.nixLd, ["rocm-stub"]);
    assert.deepEqual(value.noIcd.graphics, []);
  },
});

Deno.test({
  name: "module: works with nixpkgs.nixosModules.readOnlyPkgs, one pkgs instance",
  ignore: current === null,
  fn: async () => {
    const value = await evalOk(`let
      pkgs = standin.legacyPackages.x86_64-linux;
      readOnly = pkgs: settings: evalWith [
        standin.nixosModules.readOnlyPkgs
        { nixpkgs.pkgs = pkgs; }
      ] settings;
      plain = readOnly pkgs { enable = true; hsaOverrideGfxVersion = "11.0.0"; };
      overlaid = readOnly (pkgs.extend flake.overlays.default) { enable = true; };
    in {
      packages = map (p: p.drvPath) plain.environment.systemPackages;
      expected = flake.packages.x86_64-linux.rocm-stable-gfx1151.drvPath;
      inherit (plain.environment) sessionVariables;
      overlays = builtins.length plain.nixpkgs.overlays;
      overlaid = map (p: p.drvPath) overlaid.environment.systemPackages;
    }`) as Record<string, unknown>;
    assert.deepEqual(value.packages, [value.expected]);
    assert.deepEqual(value.overlaid, [value.expected]);
    assert.equal(
      (value.sessionVariables as Record<string, string>).HSA_OVERRIDE_GFX_VERSION,
      "11.0.0",
    );
    assert.equal(value.overlays, 0);
  },
});

Deno.test({
  name: "module: nixosModules.default is of class nixos, with a key (imported twice, once)",
  ignore: current === null,
  fn: async () => {
    const value = await evalOk(`{
      inherit (flake.nixosModules.default) _class key;
      twice = (evalWith [ { nixpkgs.hostPlatform = "x86_64-linux"; } flake.nixosModules.default ]
        { enable = true; package = withIcd; }).environment.systemPackages;
    }`);
    assert.equal(value._class, "nixos");
    assert.equal(value.key, "rocm-nightly#nixosModules.default");
    assert.equal((value.twice as unknown[]).length, 1);
    // In another class's module system, lib.evalModules refuses it by name.
    const other = await evalNix(`(lib.evalModules { class = "homeManager";
      modules = [ flake.nixosModules.default ]; }).config`);
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /class "nixos".*class "homeManager"|"homeManager".*"nixos"/s);
  },
});

Deno.test({
  name: "module: channel and target are enums of what the flake knows; a typo lists them",
  ignore: current === null,
  fn: async () => {
    const value = await evalOk(`let
      options = (lib.nixosSystem {
        modules = [ flake.nixosModules.default { nixpkgs.hostPlatform = "x86_64-linux"; } ];
      }).options.services.rocm-nightly;
    in {
      channel = { inherit (options.channel.type) name; inherit (options.channel.type.functor.payload) values; };
      target = { inherit (options.target.type) name; inherit (options.target.type.functor.payload) values; };
      table = builtins.attrNames (builtins.fromJSON (builtins.readFile ${repoRoot}/lib/releases/targets.json)).isas;
      families = builtins.attrNames (builtins.fromJSON (builtins.readFile ${repoRoot}/lib/releases/targets.json)).families;
      channels = builtins.attrNames flake.lib.channels;
    }`) as {
      channel: { name: string; values: string[] };
      target: { name: string; values: string[] };
      table: string[];
      families: string[];
      channels: string[];
    };
    assert.equal(value.channel.name, "enum");
    assert.deepEqual([...value.channel.values].sort(), [...value.channels].sort());
    assert.deepEqual(value.channel.values, ["nightly", "stable"]);
    assert.equal(value.target.name, "enum");
    for (const name of [...value.table, ...value.families]) {
      assert.ok(value.target.values.includes(name), `target enum lacks ${name}`);
    }
    // A typo fails with nixpkgs' enum message, which lists the valid values.
    const channel = await evalNix(
      `(eval { enable = true; channel = "stabel"; }).services.rocm-nightly.channel`,
    );
    assert.notEqual(channel.code, 0);
    assert.match(channel.stderr, /is not of type `one of "nightly", "stable"'/);
    const target = await evalNix(
      `(eval { enable = true; target = "gfx11510"; }).services.rocm-nightly.target`,
    );
    assert.notEqual(target.code, 0);
    assert.match(
      target.stderr,
      /services\.rocm-nightly\.target' is not of type `one of .*"gfx1151"/s,
    );
  },
});

Deno.test({
  name: "module: no nixpkgs instance of its own under readOnlyPkgs, none beyond NixOS's otherwise",
  ignore: current === null,
  fn: async () => {
    // The stand-in traces each pkgs instance; the module, given the flake's
    // pkgs under readOnlyPkgs, must add none (no extend, no import).
    const instances = (stderr: string): number =>
      stderr.split("\n").filter((line) => line.includes("nixpkgs-standin: pkgs instantiated"))
        .length;
    const readOnly = await evalNix(`map (p: p.drvPath) (evalWith [
      standin.nixosModules.readOnlyPkgs
      { nixpkgs.pkgs = standin.legacyPackages.x86_64-linux; }
    ] { enable = true; }).environment.systemPackages`);
    assert.equal(readOnly.code, 0, readOnly.stderr);
    assert.equal(instances(readOnly.stderr), 1, readOnly.stderr);
    // NixOS instantiating nixpkgs for hostPlatform: that one instance only.
    const own = await evalNix(
      `map (p: p.drvPath) (eval { enable = true; }).environment.systemPackages`,
    );
    assert.equal(own.code, 0, own.stderr);
    assert.equal(instances(own.stderr), 1, own.stderr);
  },
});
