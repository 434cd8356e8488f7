// nix/package.nix's HIP parts under a current Nix and the nixpkgs stand-in
// (whose stdenv is inert: this checks evaluation and structure; the compilers
// themselves are proven in hip_compile_test.ts): install.sh gets stdenv.cc as
// --cc-wrapper and the family's ISAs, passthru.tests.hip-compile builds for
// each ISA, and hipStdenv (the overlay's rocmNightly.stdenvFor) puts the
// package and a compilers hook into every derivation's nativeBuildInputs.
// Then the overlay itself, applied to the stand-in's pkgs: stdenvFor of an
// ISA (its family's tarball pruned), of a single-ISA family and of a family,
// an unknown target's error, and the two setup hooks such a derivation gets
// run as stdenv runs them (tests/nix/_stdenv_setup.sh).
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFlakeSources,
  nixEnv,
  repoRoot,
  requireCurrentNix,
  run,
  type RunResult,
  withTempDir,
} from "../_tools.ts";
import { installWithCcWrapper, runPreConfigure } from "./_stdenv_hooks.ts";

const current = await requireCurrentNix("HIP stdenv evaluation with a current Nix");

Deno.test({
  name:
    "package.nix: --cc-wrapper stdenv.cc, tests.hip-compile per ISA, hipStdenv with the package",
  ignore: current === null,
  fn: async () => {
    const { nix, standin, nixpkgsLib } = current!;
    const expr = `let
      pkgs = (import ${standin}/default.nix { nixpkgs-lib = ${nixpkgsLib}; }).legacyPackages.x86_64-linux;
      package = pkgs.callPackage ${repoRoot}/nix/package.nix {
        src = ${repoRoot};
        tarball = {
          urls = [ "https://therock-nightly-tarball.s3.amazonaws.com/t.tar.gz" ];
          hash = "sha256-rUhZSqJaTpuc2l6D1Q29oC0yTcTRRU/NO/JAFxaaVRA=";
          name = "t.tar.gz"; family = "gfx110X-all"; target = "gfx110X-all";
          version = "7.12.0a20260308"; pname = "rocm-nightly-gfx110X-all"; channel = "nightly";
        };
      };
      demo = package.hipStdenv.mkDerivation { pname = "demo"; version = "1"; nativeBuildInputs = [ pkgs.deno ]; };
    in {
      install = package.installPhase;
      ccWrapper = "\${pkgs.stdenv.cc}";
      hipCompile = package.tests.hip-compile.buildCommand;
      hipCompileDrv = package.tests.hip-compile.drvPath;
      packageOut = package.outPath;
      demoInputs = map (d: d.name) demo.nativeBuildInputs;
      demoHasPackage = builtins.elem package.outPath (map (d: d.outPath) demo.nativeBuildInputs);
      demoDrv = demo.drvPath;
    }`;
    const result = await run(nix, ["eval", "--impure", "--json", "--expr", expr], {
      env: nixEnv(),
    });
    assert.equal(result.code, 0, result.stderr);
    const got = JSON.parse(result.stdout) as {
      install: string;
      ccWrapper: string;
      hipCompile: string;
      hipCompileDrv: string;
      demoInputs: string[];
      demoHasPackage: boolean;
      demoDrv: string;
    };
    assert.ok(got.install.includes(`--cc-wrapper ${got.ccWrapper}`), got.install);
    assert.match(got.install, /--hip-architectures 'gfx1100;gfx1101;gfx1102[^']*'/);
    for (const isa of ["gfx1100", "gfx1101", "gfx1102"]) {
      assert.ok(got.hipCompile.includes(`--offload-arch=${isa}`), got.hipCompile);
    }
    assert.match(got.hipCompileDrv, /^\/nix\/store\/[^/]+-hip-compile\.drv$/);
    assert.equal(got.demoHasPackage, true, got.demoInputs.join(" "));
    assert.ok(
      got.demoInputs.some((name) => name.endsWith("-compilers-hook")),
      got.demoInputs.join(" "),
    );
    assert.ok(got.demoInputs.includes("deno"), got.demoInputs.join(" "));
    assert.match(got.demoDrv, /^\/nix\/store\/[^/]+-demo-1\.drv$/);
  },
});

/** What the test reads of `(pkgs.rocmNightly.stdenvFor target).mkDerivation { … }`. */
interface StdenvView {
  inputs: string[];
  packages: { pname: string; isas: string[]; pruned: boolean; src: string; installPhase: string }[];
  packageFor: string;
  hasPackageFor: boolean;
  hookCommand: string;
  packageOut: string;
  drv: string;
}

/** The GPU targets install.sh gets (what the setup hook makes CMAKE_HIP_ARCHITECTURES). */
function hipArchitectures(installPhase: string): string {
  const match = installPhase.match(/--hip-architectures (?:'([^']*)'|(\S+))/);
  assert.ok(match !== null, installPhase);
  return match[1] ?? match[2]!;
}

Deno.test({
  name:
    "overlay: rocmNightly.stdenvFor ISA (pruned), single-ISA and family targets; an unknown target's error; its hooks run",
  ignore: current === null,
  fn: async (t) => {
    const { nix: nixBin, overrideFlags, standin, nixpkgsLib } = current!;
    await withTempDir(async (dir) => {
      const flake = join(dir, "flake");
      await copyFlakeSources(flake);
      // A store of its own (as flake_current_nix_test.ts): nothing lands in the system store.
      const base = nixEnv({ HOME: join(dir, "home") });
      const env = { ...base, NIX_CONFIG: `${base.NIX_CONFIG}\nstore = ${join(dir, "store")}` };
      // The flake's overlay applied to the stand-in's pkgs, as a user's
      // `import nixpkgs { overlays = [ rocm-nightly.overlays.default ]; }`.
      const withOverlay = (body: string): Promise<RunResult> =>
        run(nixBin, [
          "eval",
          "--impure",
          "--json",
          `path:${flake}#overlays.default`,
          ...overrideFlags,
          "--apply",
          `overlay: let
            pkgs = (import ${standin}/default.nix { nixpkgs-lib = ${nixpkgsLib}; })
              .legacyPackages.x86_64-linux.extend overlay;
          in ${body}`,
        ], { env });

      const result = await withOverlay(`builtins.mapAttrs (_: target: let
          demo = (pkgs.rocmNightly.stdenvFor target).mkDerivation {
            pname = "demo"; version = "1"; nativeBuildInputs = [ pkgs.deno ];
          };
          packageFor = pkgs.rocmNightly.packageFor target;
          hook = builtins.head (builtins.filter
            (d: builtins.match ".*-compilers-hook" d.name != null) demo.nativeBuildInputs);
        in {
          inputs = map (d: d.name) demo.nativeBuildInputs;
          packages = map (p: {
            inherit (p) pname installPhase; inherit (p.passthru) isas pruned; src = p.src.name;
          }) (builtins.filter (d: d ? passthru.isas) demo.nativeBuildInputs);
          packageFor = packageFor.outPath;
          hasPackageFor = builtins.elem packageFor.outPath (map (d: d.outPath) demo.nativeBuildInputs);
          hookCommand = hook.buildCommand;
          packageOut = packageFor.outPath;
          drv = demo.drvPath;
        }) { isa = "gfx1100"; single = "gfx1151"; family = "gfx110X-all"; }`);
      assert.equal(result.code, 0, result.stderr);
      const views = JSON.parse(result.stdout) as Record<"isa" | "single" | "family", StdenvView>;

      await t.step("each stdenv's derivations get its package and the compilers hook", () => {
        for (const [name, view] of Object.entries(views)) {
          assert.equal(view.packages.length, 1, `${name}: ${view.inputs.join(" ")}`);
          assert.equal(view.hasPackageFor, true, `${name}: ${view.inputs.join(" ")}`);
          assert.deepEqual(view.inputs, [
            `${view.packages[0]!.pname}-7.14.0`,
            `${view.packages[0]!.pname}-compilers-hook`,
            "deno",
          ]);
          assert.ok(view.hookCommand.includes(`CC=${view.packageOut}/bin/amdclang `), name);
          assert.ok(view.hookCommand.includes(`CXX=${view.packageOut}/bin/amdclang++`), name);
          assert.match(view.drv, /^\/nix\/store\/[^/]+-demo-1\.drv$/);
        }
      });

      await t.step("an ISA of a family: the pruned package, its ISA alone for CMake", () => {
        const [isa] = views.isa.packages;
        assert.deepEqual([isa!.pname, isa!.isas, isa!.pruned], [
          "rocm-stable-gfx1100",
          ["gfx1100"],
          true,
        ]);
        assert.equal(isa!.src, views.family.packages[0]!.src); // the family's tarball
        assert.equal(hipArchitectures(isa!.installPhase), "gfx1100");
        const [single] = views.single.packages;
        assert.deepEqual([single!.pname, single!.pruned], ["rocm-stable-gfx1151", false]);
        assert.equal(hipArchitectures(single!.installPhase), "gfx1151");
      });

      await t.step("a family target: the whole package, all its ISAs for CMake", () => {
        const [family] = views.family.packages;
        assert.deepEqual([family!.pname, family!.pruned], ["rocm-stable-gfx110X-all", false]);
        assert.equal(hipArchitectures(family!.installPhase), family!.isas.join(";"));
        assert.deepEqual(family!.isas, ["gfx1100", "gfx1101", "gfx1102", "gfx1103"]);
      });

      await t.step("an unknown target fails with the resolver's message", async () => {
        const unknown = await withOverlay(
          `((pkgs.rocmNightly.stdenvFor "gfx9999").mkDerivation { pname = "demo"; version = "1"; }).drvPath`,
        );
        assert.notEqual(unknown.code, 0);
        assert.match(
          unknown.stderr,
          /rocm-nightly: unknown target "gfx9999": not an ISA or family of rocm-nightly's target table.*available targets: /,
        );
      });

      await t.step(
        "the hooks, run as stdenv runs them: CC/CXX the package's, CMake gets its ISA",
        async () => {
          // The package's own setup hook is install.sh's (the sample tree
          // installed with the ISA package's --hip-architectures); the
          // compilers hook is written by its own evaluated build command.
          const isa = views.isa;
          const out = await installWithCcWrapper(
            join(dir, "install"),
            hipArchitectures(isa.packages[0]!.installPhase),
          );
          const hookOut = join(dir, "compilers-hook");
          const write = await run("bash", ["-euc", isa.hookCommand], { env: { out: hookOut } });
          assert.equal(write.code, 0, write.stderr);
          const hooks = [
            join(out, "nix-support/setup-hook"),
            join(hookOut, "nix-support/setup-hook"),
          ];
          const got = await runPreConfigure(hooks);
          assert.deepEqual(got.vars, {
            CC: `${isa.packageOut}/bin/amdclang`,
            CXX: `${isa.packageOut}/bin/amdclang++`,
            HIPCXX: `${out}/bin/amdclang++`,
            CMAKE_HIP_ARCHITECTURES: "gfx1100",
          });
          assert.deepEqual(got.cmakeFlags, [
            `-DCMAKE_HIP_COMPILER=${out}/bin/amdclang++`,
            "-DCMAKE_HIP_ARCHITECTURES=gfx1100",
          ]);
        },
      );
    });
  },
});
