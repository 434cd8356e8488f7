// The whole flake under a current Nix (2.26, .ci/current-nix) against the
// nixpkgs stand-in (tests/fixtures/nixpkgs-standin: nixpkgs' real lib, a pkgs
// whose top level carries the names real pkgs carries, inert packages):
// `nix flake check --no-build`, `nix flake show`, the drvPath of every
// package, image, check and devShell, and the formatter. Real nixpkgs is
// GitHub's workflow's to check.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFlakeSources,
  nixEnv,
  repoRoot,
  requireCurrentNix,
  run,
  type RunResult,
} from "../_tools.ts";

const current = await requireCurrentNix("flake checks with a current Nix");

const GFX1151 = "sha256-rUhZSqJaTpuc2l6D1Q29oC0yTcTRRU/NO/JAFxaaVRA=";
const SYSTEM = "x86_64-linux";
// Trace lines of the stand-in (tests/fixtures/nixpkgs-standin).
const NIXOS_EVALUATION = "nixpkgs-standin: lib.nixosSystem evaluation";
const PKGS_INSTANCE = "nixpkgs-standin: pkgs instantiated";

/** How many of `stderr`'s lines are the stand-in's trace `what`. */
function traces(stderr: string, what: string): number {
  return stderr.split("\n").filter((line) => line === `trace: ${what}`).length;
}

Deno.test({
  name: "flake (current Nix, nixpkgs stand-in): flake check, show, every drvPath, formatter",
  ignore: current === null,
  fn: async (t) => {
    const { nix: nixBin, overrideFlags, standin, nixpkgsLib } = current!;
    const dir = await Deno.makeTempDir({ prefix: "flake_current_nix_" });
    try {
      const flake = join(dir, "flake");
      await copyFlakeSources(flake);
      // A store of its own, empty as on a user's first run: the system store
      // may already hold what this flake's evaluation needs, put there by
      // Nix 2.8's tests, which hid an evaluation that read a path it had not
      // written. Nothing is added to the system store either.
      const base = nixEnv({ HOME: join(dir, "home") });
      const env = {
        ...base,
        NIX_CONFIG: `${base.NIX_CONFIG ?? ""}\nstore = ${join(dir, "store")}`,
      };
      const nix = (args: string[]): Promise<RunResult> =>
        run(nixBin, [...args, ...overrideFlags], { env });
      const evalJson = async (ref: string, apply: string): Promise<unknown> => {
        const result = await nix(["eval", "--json", ref, "--apply", apply]);
        assert.equal(result.code, 0, `nix eval ${ref}: ${result.stderr}`);
        return JSON.parse(result.stdout);
      };
      const drvPaths = "builtins.mapAttrs (_: d: d.drvPath)";

      await t.step("nix flake check --no-build passes, with three NixOS evaluations", async () => {
        const check = await nix(["flake", "check", "--no-build", `path:${flake}`]);
        assert.equal(check.code, 0, check.stderr);
        // The stand-in traces each NixOS evaluation and each nixpkgs
        // instance, the costly parts with real nixpkgs: three evaluations
        // cover every module case; one is a user's (nixpkgs instantiated
        // for hostPlatform), the others share the flake's pkgs.
        assert.equal(traces(check.stderr, NIXOS_EVALUATION), 3, check.stderr);
        assert.equal(traces(check.stderr, PKGS_INSTANCE), 2, check.stderr);
      });

      await t.step("nix flake show lists every output", async () => {
        const show = await nix(["flake", "show", "--json", `path:${flake}`]);
        assert.equal(show.code, 0, show.stderr);
        // Listing the checks reads their names: no NixOS evaluation, and the
        // input's pkgs is the only nixpkgs instance (no extend).
        assert.equal(traces(show.stderr, NIXOS_EVALUATION), 0, show.stderr);
        assert.equal(traces(show.stderr, PKGS_INSTANCE), 1, show.stderr);
        const outputs = JSON.parse(show.stdout) as Record<string, Record<string, unknown>>;
        for (
          const name of [
            "packages",
            "apps",
            "checks",
            "devShells",
            "formatter",
            "nixosModules",
            "overlays",
            "lib",
          ]
        ) {
          assert.ok(Object.hasOwn(outputs, name), `flake show lacks ${name}`);
        }
        const packages = outputs.packages![SYSTEM] as Record<string, unknown>;
        assert.ok(Object.hasOwn(packages, "default"));
        assert.ok(Object.hasOwn(packages, "docker-gfx1151"));
        assert.ok(Object.hasOwn(packages, "docker-stable-gfx1151"));
        for (const job of ["packages", "images", "checks", "gpuChecks"]) {
          assert.ok(Object.hasOwn(outputs.hydraJobs ?? {}, job), `hydraJobs lacks ${job}`);
        }
      });

      await t.step("every package carries nixpkgs' meta, updateScript and fixup", async () => {
        const meta = await evalJson(
          `path:${flake}#packages.${SYSTEM}`,
          `ps: builtins.mapAttrs (_: p: {
            inherit (p.meta) description sourceProvenance platforms mainProgram changelog;
            licenses = map (l: l.spdxId) p.meta.license;
            inherit (p.passthru.tarball) channel family version;
            updateScript = p.passthru.updateScript or null;
          }) (removeAttrs ps (builtins.filter (n: builtins.substring 0 7 n == "docker-") (builtins.attrNames ps)))`,
        ) as Record<string, {
          description: string;
          sourceProvenance: unknown;
          platforms: string[];
          mainProgram: string;
          changelog: string;
          licenses: string[];
          channel: string;
          family: string;
          version: string;
          updateScript: string[] | null;
        }>;
        const updateProgram = await evalJson(
          `path:${flake}#apps.${SYSTEM}.update`,
          "app: app.program",
        ) as string;
        assert.ok(Object.keys(meta).length > 1);
        for (const [name, m] of Object.entries(meta)) {
          assert.equal(
            m.description,
            `AMD ROCm ${m.channel} (TheRock ${m.version}) for GPU family ${m.family}`,
            name,
          );
          assert.deepEqual(m.sourceProvenance, [{
            isSource: false,
            shortName: "binaryNativeCode",
          }]);
          assert.deepEqual(m.platforms, [SYSTEM]);
          assert.equal(m.mainProgram, "rocminfo");
          assert.deepEqual(m.licenses, ["MIT", "NCSA", "Apache-2.0"]);
          assert.equal(
            m.changelog,
            m.channel === "stable"
              ? `https://rocm.docs.amd.com/en/docs-${m.version}/about/release-notes.html`
              : "https://github.com/ROCm/TheRock/commits/main",
          );
          // nixpkgs' update convention: the flake's update app, this
          // package's channel and family.
          assert.deepEqual(
            m.updateScript,
            [updateProgram, "--channel", m.channel, "--target", m.family],
            name,
          );
        }
        assert.equal(meta["rocm-stable-gfx1100"]?.family, "gfx110X-all");
        // Fixup runs, except what would change TheRock's tree.
        const drv = await evalJson(
          `path:${flake}#packages.${SYSTEM}.rocm-stable-gfx1151`,
          "p: p.drvPath",
        ) as string;
        const show = await run(nixBin, ["derivation", "show", drv], { env });
        assert.equal(show.code, 0, show.stderr);
        const derivationEnv = Object.values(
          JSON.parse(show.stdout) as Record<string, { env: Record<string, string> }>,
        )[0]!.env;
        assert.equal(derivationEnv.dontFixup, undefined, "dontFixup is set");
        for (
          const flag of [
            "dontStrip",
            "dontPatchELF",
            "dontPatchShebangs",
            "dontMoveSystemdUserUnits",
            "dontCheckForBrokenSymlinks",
          ]
        ) {
          assert.equal(derivationEnv[flag], "1", flag);
        }
      });

      await t.step(
        "images are named per channel; hydraJobs hold packages, images, checks",
        async () => {
          const images = await evalJson(
            `path:${flake}#packages.${SYSTEM}`,
            `ps: builtins.mapAttrs (_: p: { inherit (p) name drvPath; })
            (builtins.intersectAttrs { docker-gfx1151 = 0; docker-stable-gfx1151 = 0; docker-stable-gfx1100 = 0; } ps)`,
          ) as Record<string, { name: string; drvPath: string }>;
          assert.equal(
            images["docker-stable-gfx1151"]?.name,
            "docker-image-rocm-stable-gfx1151.tar",
          );
          assert.equal(
            images["docker-stable-gfx1100"]?.name,
            "docker-image-rocm-stable-gfx1100.tar",
          );
          // docker-<target>: packages.default's channel (stable here), the same derivation.
          assert.equal(images["docker-gfx1151"]?.drvPath, images["docker-stable-gfx1151"]?.drvPath);
          const packages = await evalJson(`path:${flake}#packages.${SYSTEM}`, drvPaths) as Record<
            string,
            string
          >;
          const jobs = await evalJson(
            `path:${flake}#hydraJobs`,
            `j: builtins.mapAttrs (_: s: builtins.mapAttrs (_: d: d.drvPath) s.${SYSTEM}) j`,
          ) as Record<string, Record<string, string>>;
          const pick = (test: (name: string) => boolean): Record<string, string> =>
            Object.fromEntries(Object.entries(packages).filter(([name]) => test(name)));
          assert.deepEqual(jobs.packages, pick((name) => name.startsWith("rocm-")));
          assert.deepEqual(jobs.images, pick((name) => /^docker-(nightly|stable)-/.test(name)));
          assert.deepEqual(
            jobs.checks,
            await evalJson(`path:${flake}#checks.${SYSTEM}`, drvPaths),
          );
          assert.deepEqual(jobs.gpuChecks, {});
        },
      );

      await t.step("every package, image, check and devShell has a drvPath", async () => {
        for (const output of ["packages", "checks", "devShells"]) {
          const paths = await evalJson(`path:${flake}#${output}.${SYSTEM}`, drvPaths) as Record<
            string,
            string
          >;
          assert.ok(Object.keys(paths).length > 0, output);
          for (const [name, path] of Object.entries(paths)) {
            assert.match(path, /^\/nix\/store\/[^/]+\.drv$/, `${output}.${name}`);
          }
          if (output === "packages") {
            assert.ok(Object.keys(paths).some((name) => name.startsWith("docker-")));
          }
        }
      });

      await t.step(
        "per-ISA packages: the family tarball pruned, family packages whole",
        async () => {
          const view =
            'p: { inherit (p) pname; inherit (p.passthru) isas pruned; src = p.src.drvPath; tests = builtins.attrNames p.passthru.tests; deno = map (d: d.name) (p.nativeBuildInputs or [ ]); prunes = builtins.match ".*scripts/prune.ts.*--isa.*" p.installPhase != null; }';
          const packages = `path:${flake}#packages.${SYSTEM}`;
          const isa = await evalJson(`${packages}.rocm-stable-gfx1100`, view) as Record<
            string,
            unknown
          >;
          const family = await evalJson(`${packages}.rocm-stable-gfx110X-all`, view) as Record<
            string,
            unknown
          >;
          const single = await evalJson(`${packages}.rocm-stable-gfx1151`, view) as Record<
            string,
            unknown
          >;
          assert.equal(isa.src, family.src); // one fixed-output tarball, one download
          assert.deepEqual({ ...isa, src: null, deno: null }, {
            pname: "rocm-stable-gfx1100",
            isas: ["gfx1100"],
            pruned: true,
            src: null,
            tests: ["hip-compile", "output-structure", "smoke-gfx1100"],
            deno: null,
            prunes: true,
          });
          assert.equal((isa.deno as string[]).length, 1);
          assert.deepEqual([family.pname, family.isas, family.pruned, family.prunes], [
            "rocm-stable-gfx110X-all",
            ["gfx1100", "gfx1101", "gfx1102", "gfx1103"],
            false,
            false,
          ]);
          // An ISA that is its own family's only one: nothing to prune.
          assert.deepEqual([single.pname, single.pruned], ["rocm-stable-gfx1151", false]);
          // The image of an ISA takes its pruned package.
          const image = await evalJson(`${packages}.docker-gfx1100`, "p: p.drvPath") as string;
          const show = await nix(["derivation", "show", "--recursive", image]);
          assert.equal(show.code, 0, show.stderr);
          assert.match(show.stdout, /rocm-stable-gfx1100-7\.14\.0\.drv/);
          assert.doesNotMatch(show.stdout, /rocm-stable-gfx110X-all-7\.14\.0\.drv/);
        },
      );

      await t.step("the formatter is nixpkgs' nixfmt-tree (nix fmt passes no files)", async () => {
        const formatter = await evalJson(`path:${flake}#formatter.${SYSTEM}`, "f: f.drvPath");
        const standinOverride = ["--override-input", "nixpkgs-lib", `path:${nixpkgsLib}`];
        const expected = await run(nixBin, [
          "eval",
          "--no-write-lock-file",
          ...standinOverride,
          "--raw",
          `path:${standin}#legacyPackages.${SYSTEM}.nixfmt-tree.drvPath`,
        ], { env });
        assert.equal(expected.code, 0, expected.stderr);
        assert.equal(formatter, expected.stdout);
      });

      await t.step(
        "packages.default's fallback notice is a warning (--abort-on-warn)",
        async () => {
          const ref = `path:${flake}#packages.${SYSTEM}.default.pname`;
          const warned = await nix(["eval", "--raw", ref]);
          assert.equal(warned.code, 0, warned.stderr);
          assert.match(
            warned.stderr,
            /warning: rocm-nightly: packages.default is rocm-stable-gfx1151/,
          );
          const aborted = await nix(["eval", "--raw", "--abort-on-warn", ref]);
          assert.notEqual(aborted.code, 0);
        },
      );

      await t.step("a pinned nightly: GPU smoke tests in gpuChecks, not checks", async () => {
        const pinned = join(dir, "pinned");
        await copyFlakeSources(pinned);
        const text = await Deno.readTextFile(join(pinned, "flake.nix"));
        const edited = text.replace("gfx1151 = null;", `gfx1151 = "${GFX1151}";`);
        assert.notEqual(edited, text);
        await Deno.writeTextFile(join(pinned, "flake.nix"), edited);
        const check = await nix(["flake", "check", "--no-build", `path:${pinned}`]);
        assert.equal(check.code, 0, check.stderr);
        const features = await evalJson(
          `path:${pinned}#checks.${SYSTEM}`,
          "builtins.mapAttrs (_: d: d.requiredSystemFeatures or [ ])",
        ) as Record<string, string[]>;
        for (const [name, list] of Object.entries(features)) {
          assert.deepEqual(list, [], `checks.${name} needs a special builder`);
        }
        const gpu = await evalJson(`path:${pinned}#gpuChecks.${SYSTEM}`, drvPaths) as Record<
          string,
          string
        >;
        assert.deepEqual(Object.keys(gpu), ["smoke-gfx1151"]);
        const passthru = await evalJson(
          `path:${pinned}#packages.${SYSTEM}.rocm-nightly-gfx1151`,
          "p: { smoke = p.passthru.tests.smoke-gfx1151.drvPath; features = p.passthru.tests.smoke-gfx1151.requiredSystemFeatures; }",
        ) as { smoke: string; features: string[] };
        assert.equal(passthru.smoke, gpu["smoke-gfx1151"]);
        assert.deepEqual(passthru.features, ["rocm-gfx1151"]);
        const hydra = await evalJson(`path:${pinned}#hydraJobs.gpuChecks.${SYSTEM}`, drvPaths);
        assert.deepEqual(hydra, gpu);
        // With the nightly pinned, docker-<target> is the nightly's image.
        const images = await evalJson(
          `path:${pinned}#packages.${SYSTEM}`,
          `ps: builtins.mapAttrs (_: p: { inherit (p) name drvPath; })
            (builtins.intersectAttrs { docker-gfx1151 = 0; docker-nightly-gfx1151 = 0; } ps)`,
        ) as Record<string, { name: string; drvPath: string }>;
        assert.equal(
          images["docker-nightly-gfx1151"]?.name,
          "docker-image-rocm-nightly-gfx1151.tar",
        );
        assert.equal(images["docker-gfx1151"]?.drvPath, images["docker-nightly-gfx1151"]?.drvPath);
        // Nothing `nix flake check` builds downloads a ROCm tarball: no
        // derivation in the checks' closures fetches from the registry.
        const checkDrvs = Object.values(
          await evalJson(`path:${pinned}#checks.${SYSTEM}`, drvPaths) as Record<string, string>,
        );
        const show = await run(nixBin, ["derivation", "show", "--recursive", ...checkDrvs], {
          env,
        });
        assert.equal(show.code, 0, show.stderr);
        const derivations = JSON.parse(show.stdout) as Record<
          string,
          { env: Record<string, string> }
        >;
        const fetches = Object.entries(derivations)
          .filter(([, d]) => /repo\.amd\.com|therock-dist/.test(d.env.urls ?? d.env.url ?? ""))
          .map(([path]) => path);
        assert.deepEqual(fetches, []);
      });
    } finally {
      // Store folders are read-only, even to their owner.
      await run("chmod", ["-R", "u+w", dir]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "no callPackage'd file of nix/ has an optional argument that pkgs fills instead",
  ignore: current === null,
  fn: async () => {
    // callPackage fills every argument pkgs carries, optional ones included:
    // an optional argument named after a pkgs attribute (`config ? { }`)
    // silently gets pkgs' value instead of its default.
    const files = new Set<string>();
    for (
      const path of [
        "flake.nix",
        ...[...Deno.readDirSync(join(repoRoot, "nix"))].map((e) => `nix/${e.name}`),
      ]
    ) {
      if (!path.endsWith(".nix")) continue;
      const text = await Deno.readTextFile(join(repoRoot, path));
      for (const match of text.matchAll(/callPackage \.\/(?:nix\/)?([\w-]+\.nix)/g)) {
        files.add(`nix/${match[1]}`);
      }
    }
    assert.ok(files.has("nix/docker.nix") && files.has("nix/package.nix"), [...files].join(" "));
    const { nix, standin, nixpkgsLib } = current!;
    const expr = `let
      pkgs = (import ${standin}/default.nix { nixpkgs-lib = ${nixpkgsLib}; }).legacyPackages.x86_64-linux;
      clashes = file: builtins.filter (arg: (builtins.functionArgs (import file)).\${arg} && pkgs ? \${arg})
        (builtins.attrNames (builtins.functionArgs (import file)));
    in builtins.listToAttrs (map (file: { name = file; value = clashes (${repoRoot} + "/\${file}"); })
      ${JSON.stringify([...files].sort()).replaceAll(",", " ")})`;
    const result = await run(nix, ["eval", "--impure", "--json", "--expr", expr], {
      env: nixEnv(),
    });
    assert.equal(result.code, 0, result.stderr);
    const clashes = JSON.parse(result.stdout) as Record<string, string[]>;
    assert.deepEqual(
      Object.entries(clashes).filter(([, args]) => args.length > 0),
      [],
      "optional arguments that pkgs carries (rename them)",
    );
  },
});
