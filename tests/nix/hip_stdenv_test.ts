// nix/package.nix's HIP parts under a current Nix and the nixpkgs stand-in
// (whose stdenv is inert: this checks evaluation and structure; the compilers
// themselves are proven in hip_compile_test.ts): install.sh gets stdenv.cc as
// --cc-wrapper and the family's ISAs, passthru.tests.hip-compile builds for
// each ISA, and hipStdenv (the overlay's rocmNightly.stdenvFor) puts the
// package and a compilers hook into every derivation's nativeBuildInputs.
import assert from "node:assert/strict";
import { nixEnv, repoRoot, requireCurrentNix, run } from "../_tools.ts";

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
