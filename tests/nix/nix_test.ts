// The Nix side, evaluated by the real `nix` (no nixpkgs here): every file
// parses, and the pure parts (nix/resolve.nix, nix/scripts.nix, the flake's
// registry and `lib` output) give the expected values and error messages.
import assert from "node:assert/strict";
import { join } from "node:path";
import { scanBindings } from "../../lib/flake/nix_bindings.ts";
import { nixEnv, repoRoot, requireTools, run, runNixBuild } from "../_tools.ts";

const ok = await requireTools("Nix evaluation tests", "nix", "nix-instantiate");
const env = nixEnv();
const GFX1151 = "sha256-rUhZSqJaTpuc2l6D1Q29oC0yTcTRRU/NO/JAFxaaVRA=";
const OTHER = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/** Evaluates a Nix expression to JSON; rejects with stderr when it fails. */
async function nixEval(expr: string): Promise<unknown> {
  const result = await run("nix", ["eval", "--impure", "--json", "--expr", expr], { env });
  if (result.code !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout);
}

/** Evaluates an expression that must fail; resolves to its error text. */
async function nixEvalError(expr: string): Promise<string> {
  const result = await run("nix-instantiate", ["--eval", "--strict", "--expr", expr], { env });
  assert.notEqual(result.code, 0, `expected a failure, got ${result.stdout}`);
  return result.stderr;
}

/** A Nix string literal (JSON strings are valid Nix strings without `${`). */
function lit(value: string): string {
  assert.ok(!value.includes("${"));
  return JSON.stringify(value);
}

function resolver(srcHashes: Record<string, string | null>, extra = ""): string {
  const hashes = Object.entries(srcHashes)
    .map(([key, value]) => `${lit(key)} = ${value === null ? "null" : lit(value)};`)
    .join(" ");
  return `(import ${repoRoot}/nix/resolve.nix {
    registry = { baseUrl = "https://rocm.nightlies.amd.com/tarball/";
      version = "7.12.0a20260308"; srcHashes = { ${hashes} }; } // { ${extra} };
    targets = builtins.fromJSON (builtins.readFile ${repoRoot}/lib/releases/targets.json);
  })`;
}

async function nixFiles(): Promise<string[]> {
  const files = [join(repoRoot, "flake.nix")];
  for await (const entry of Deno.readDir(join(repoRoot, "nix"))) {
    if (entry.isFile && entry.name.endsWith(".nix")) files.push(join(repoRoot, "nix", entry.name));
  }
  return files.sort();
}

Deno.test({
  name: "nix-instantiate --parse accepts flake.nix and every nix/*.nix",
  ignore: !ok,
  fn: async () => {
    const files = await nixFiles();
    assert.ok(files.length >= 7, files.join(", "));
    for (const file of files) {
      const result = await run("nix-instantiate", ["--parse", file], { env });
      assert.equal(result.code, 0, `${file}: ${result.stderr}`);
    }
  },
});

Deno.test({
  name: "resolve.nix resolve() gives URL, hash, name and family of a pinned target",
  ignore: !ok,
  fn: async () => {
    const value = await nixEval(
      `${resolver({ gfx1151: GFX1151, "gfx110X-all": null })}.resolve "gfx1151"`,
    );
    assert.deepEqual(value, {
      target: "gfx1151",
      family: "gfx1151",
      version: "7.12.0a20260308",
      chain: ["gfx1151", "multiarch"],
      hash: GFX1151,
      channel: "nightly",
      urls: [
        "https://rocm.nightlies.amd.com/tarball/therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz",
      ],
      name: "therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz",
      pname: "rocm-nightly-gfx1151",
      url:
        "https://rocm.nightlies.amd.com/tarball/therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz",
    });
  },
});

Deno.test({
  name: "resolve.nix resolve() follows an ISA's fallback chain and renames",
  ignore: !ok,
  fn: async () => {
    const r = resolver({ gfx1151: GFX1151, "gfx110X-all": null, multiarch: OTHER });
    const families = await nixEval(
      `map (t: ${r}.resolve t) [ "gfx1100" "gfx1151" "gfx1201" ]`,
    ) as { family: string; url: string }[];
    assert.deepEqual(families.map((x) => x.family), ["multiarch", "gfx1151", "multiarch"]);
    assert.ok(families[0]!.url.endsWith("/therock-dist-linux-multiarch-7.12.0a20260308.tar.gz"));
    const renamed = await nixEval(
      `(${resolver({ "gfx110X-all": OTHER })}.resolve "gfx110X-dgpu").family`,
    );
    assert.equal(renamed, "gfx110X-all");
    const alias = await nixEval(`(${resolver({ "gfx110X-all": OTHER })}.resolve "gfx1103").url`);
    assert.equal(
      alias,
      "https://rocm.nightlies.amd.com/tarball/therock-dist-linux-gfx110X-all-7.12.0a20260308.tar.gz",
    );
  },
});

Deno.test({
  name: "resolve.nix packageTargets lists families with a hash and ISA aliases",
  ignore: !ok,
  fn: async () => {
    const r = resolver({ gfx1151: GFX1151, "gfx110X-all": OTHER, multiarch: null });
    const targets = await nixEval(`${r}.packageTargets`) as Record<string, string>;
    assert.deepEqual(targets, {
      "rocm-nightly-gfx1151": "gfx1151",
      "rocm-nightly-gfx110X-all": "gfx110X-all",
      "rocm-nightly-gfx1100": "gfx1100",
      "rocm-nightly-gfx1101": "gfx1101",
      "rocm-nightly-gfx1102": "gfx1102",
      "rocm-nightly-gfx1103": "gfx1103",
    });
    const unavailable = await nixEval(`${r}.unavailableTargets`) as Record<string, string>;
    assert.equal(unavailable["rocm-nightly-multiarch"], "multiarch");
    assert.equal(unavailable["rocm-nightly-gfx1201"], "gfx1201");
    assert.equal(unavailable["rocm-nightly-gfx1151"], undefined);
    assert.deepEqual(await nixEval(`${r}.available`), ["gfx110X-all", "gfx1151"]);
  },
});

Deno.test({
  name: "resolve.nix resolve() escapes a dev version's + in the URL only",
  ignore: !ok,
  fn: async () => {
    const expr = `(import ${repoRoot}/nix/resolve.nix {
      registry = { baseUrl = "https://mirror.example/tarball"; version = "7.10.0.dev0+abc123";
        srcHashes.gfx1151 = ${lit(GFX1151)}; };
      targets = builtins.fromJSON (builtins.readFile ${repoRoot}/lib/releases/targets.json);
    }).resolve "gfx1151"`;
    const value = await nixEval(expr) as { url: string; name: string };
    assert.equal(
      value.url,
      "https://mirror.example/tarball/therock-dist-linux-gfx1151-7.10.0.dev0%2Babc123.tar.gz",
    );
    assert.equal(value.name, "therock-dist-linux-gfx1151-7.10.0.dev0+abc123.tar.gz");
  },
});

Deno.test({
  name: "resolve.nix resolve() of a null-hash target names the chain tried and what is available",
  ignore: !ok,
  fn: async () => {
    const r = resolver({ gfx1151: GFX1151, "gfx110X-all": null, multiarch: null });
    const error = await nixEvalError(`${r}.resolve "gfx1100"`);
    assert.match(error, /no tarball for target "gfx1100"/);
    assert.match(error, /tried gfx1100 → gfx110X-all → gfx110X-dgpu → multiarch/);
    assert.match(error, /gfx110X-all \(hash is null: not fetched\)/);
    assert.match(error, /gfx110X-dgpu \(not tracked in nightly.srcHashes\)/);
    assert.match(error, /available targets: gfx1151\b/);
    // An iGPU's chain skips the -dgpu family, which has no gfx1103 kernels.
    const igpu = await nixEvalError(`${r}.resolve "gfx1103"`);
    assert.match(igpu, /tried gfx1103 → gfx110X-all → multiarch —/);
  },
});

Deno.test({
  name: "resolve.nix resolve() of an unknown target names the available targets and what to run",
  ignore: !ok,
  fn: async () => {
    const error = await nixEvalError(`${resolver({ gfx1151: GFX1151 })}.resolve "gfx9999"`);
    // Only what a user of `nix build github:…` or of the NixOS module can act on:
    // the flake.nix binding, the pinned targets and the commands; no file of this repository.
    assert.match(
      error,
      /unknown target "gfx9999": not an ISA or family of rocm-nightly's target table, nor a key of nightly.srcHashes in flake.nix; available targets: gfx1151 \(`nix run .#detect -- --list-targets` lists every ISA and family the table knows; a family it does not know yet: `nix run .#update -- --target <family>` adds it to nightly.srcHashes\)/,
    );
    assert.doesNotMatch(error, /lib\/releases|targets\.json/);
    const stable = await nixEvalError(`(import ${repoRoot}/nix/resolve.nix {
      registry = { baseUrl = "https://repo.amd.com/rocm/tarball/"; version = "7.11.0";
        srcHashes.gfx1151 = ${lit(GFX1151)}; };
      targets = builtins.fromJSON (builtins.readFile ${repoRoot}/lib/releases/targets.json);
      channel = "stable";
    }).resolve "gfx9999"`);
    assert.match(stable, /nor a key of stable.srcHashes in flake.nix/);
    assert.match(stable, /`nix run .#update -- --channel stable --target <family>`/);
  },
});

Deno.test({
  name: "resolve.nix resolve() rejects a malformed registry with the offending value",
  ignore: !ok,
  fn: async () => {
    const badHash = await nixEvalError(
      `${resolver({ gfx1151: "sha256-short" })}.resolve "gfx1151"`,
    );
    assert.match(badHash, /nightly.srcHashes.gfx1151 = "sha256-short" is not a sha256 SRI hash/);
    const badVersion = await nixEvalError(
      `(${resolver({ gfx1151: GFX1151 }, `version = "latest";`)}.resolve "gfx1151").url`,
    );
    assert.match(badVersion, /nightly.version "latest" is not a TheRock version/);
    const badUrl = await nixEvalError(
      `(${resolver({ gfx1151: GFX1151 }, `baseUrl = "ftp://x/";`)}.resolve "gfx1151").url`,
    );
    assert.match(badUrl, /nightly.baseUrl "ftp:\/\/x\/" is not an http\(s\) URL/);
  },
});

const SCRIPTS = `(import ${repoRoot}/nix/scripts.nix)`;

Deno.test({
  name: "scripts.nix permissionsOf() reads exactly the shebang's permissions",
  ignore: !ok,
  fn: async () => {
    const text = "#!/usr/bin/env -S deno run --allow-read --allow-write=. --allow-run=nix-store\n";
    assert.deepEqual(await nixEval(`${SCRIPTS}.permissionsOf "x" ${lit(text)}`), [
      "--allow-read",
      "--allow-write=.",
      "--allow-run=nix-store",
    ]);
    assert.deepEqual(
      await nixEval(`${SCRIPTS}.permissionsOf "x" ${lit("#!/usr/bin/env -S deno run\n")}`),
      [],
    );
  },
});

Deno.test({
  name: "scripts.nix permissionsOf() refuses -A, unknown flags and other first lines",
  ignore: !ok,
  fn: async () => {
    for (const flag of ["-A", "--allow-all", "--reload", "--allow-read;rm"]) {
      const line = `#!/usr/bin/env -S deno run --allow-read ${flag}\n`;
      const error = await nixEvalError(`${SCRIPTS}.permissionsOf "scripts/x.ts" ${lit(line)}`);
      assert.match(
        error,
        new RegExp(`scripts/x.ts: shebang flags "${flag.replace(/[-;]/g, "\\$&")}"`),
      );
    }
    const error = await nixEvalError(`${SCRIPTS}.permissionsOf "scripts/y.ts" ${lit("// hi\n")}`);
    assert.match(error, /scripts\/y.ts: the first line must be `#!\/usr\/bin\/env -S deno run/);
  },
});

Deno.test({
  name: "scripts.nix scriptsIn() covers every public .ts script with its first summary sentence",
  ignore: !ok,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "nix_test_scripts_" });
    try {
      await Deno.writeTextFile(
        join(dir, "alpha-one.ts"),
        "#!/usr/bin/env -S deno run --allow-net\n/**\n * Does alpha things to flake.nix, one\n * at a time. More text.\n *\n * @module\n */\n",
      );
      await Deno.writeTextFile(join(dir, "beta.ts"), "#!/usr/bin/env -S deno run\nexport {};\n");
      await Deno.writeTextFile(join(dir, "_private.ts"), "export {};\n");
      await Deno.writeTextFile(join(dir, "notes.md"), "# not a script\n");
      assert.deepEqual(await nixEval(`${SCRIPTS}.scriptsIn ${dir}`), {
        "alpha-one": {
          file: "alpha-one.ts",
          permissions: ["--allow-net"],
          description: "Does alpha things to flake.nix, one at a time.",
        },
        beta: { file: "beta.ts", permissions: [], description: "Runs scripts/beta.ts" },
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "scripts.nix scriptsIn() agrees with the shebang of every script in scripts/",
  ignore: !ok,
  fn: async () => {
    const scripts = await nixEval(`${SCRIPTS}.scriptsIn ${repoRoot}/scripts`) as Record<
      string,
      { permissions: string[]; description: string }
    >;
    const names: string[] = [];
    for await (const entry of Deno.readDir(join(repoRoot, "scripts"))) {
      if (!entry.isFile || !entry.name.endsWith(".ts") || entry.name.startsWith("_")) continue;
      const name = entry.name.slice(0, -3);
      names.push(name);
      const text = await Deno.readTextFile(join(repoRoot, "scripts", entry.name));
      const first = text.split("\n", 1)[0]!;
      const expected = first.replace("#!/usr/bin/env -S deno run", "").trim().split(/ +/)
        .filter(Boolean);
      assert.deepEqual(scripts[name]?.permissions, expected, name);
      assert.ok((scripts[name]?.description.length ?? 0) > 10, name);
    }
    assert.deepEqual(Object.keys(scripts).sort(), names.sort());
    assert.ok(names.includes("check-output"));
  },
});

/** The flake's outputs function applied without nixpkgs (only nixpkgs-free outputs work). */
const FLAKE = `((import ${repoRoot}/flake.nix).outputs { self = null; nixpkgs = null; })`;

Deno.test({
  name: "flake.nix registry is the contract's format and its lib output resolves the default",
  ignore: !ok,
  fn: async () => {
    type Registry = {
      baseUrl: string;
      version: string;
      srcHashes: Record<string, string | null>;
      mirrors: string[];
      skip: string[];
    };
    const registry = await nixEval(`${FLAKE}.lib.registry`) as Registry;
    assert.equal(registry.baseUrl, "https://nightly.repo.amd.com/rocm/core/tarball/");
    assert.match(registry.version, /^\d+\.\d+\.\d+a\d{8}$/);
    assert.ok(Object.keys(registry.srcHashes).includes("gfx1151"));
    // Nightly hashes stay null until update runs (the nightly workflow keeps them fresh).
    assert.ok(Object.values(registry.srcHashes).every((hash) => hash === null));
    assert.ok(registry.skip.includes("7.14.0a20260609"));
    const stable = await nixEval(`${FLAKE}.lib.channels.stable`) as Registry;
    assert.equal(stable.baseUrl, "https://repo.amd.com/rocm/tarball-multi-arch/");
    assert.equal(stable.version, "7.14.0");
    assert.deepEqual(stable.srcHashes, {
      gfx908: "sha256-FoYnDvouUjiJFo7GpDQ/LlPxc9YCb9ucazCNmfmdmfo=",
      gfx90a: "sha256-scrrt59UKVERTvZHjqWHppHQBcwTwu+t/sV3vYK2/Hg=",
      "gfx94X-dcgpu": "sha256-MuFtyn+EQKCKjWNqan2wA0xhUY8y6pFTR7mNn1UZmww=",
      "gfx950-dcgpu": "sha256-Eq/szQbmyvBpnYbWiPFgg6r6NUdNDsHYBjR3+1wRnUk=",
      "gfx101X-dgpu": "sha256-/bMC7kXp46bctrqylf3y5qTA+LLHpJN2mLGBeHFYItk=",
      "gfx103X-all": "sha256-zppb4rQ+4b3YXeP6nqPD1dy2h1RFrPcoHDdjpO54Pxk=",
      "gfx110X-all": "sha256-54pERcUth5+9B2XyTn+p3x4mKouvaBsRihPnU0ASASc=",
      gfx1150: "sha256-1z+OKaIdAxBRRm2tiNXbonNYKBlSH1kw2fEAp+fdCQU=",
      gfx1151: "sha256-JWfV405HDbEEpioCw2qncMsEMBdeSMHEbfDu/AXh13w=",
      gfx1152: "sha256-OQyH9Lys8CZXj7+zYmeiORJSTwI/d/f5Mi7Kr2HYi2A=",
      gfx1153: "sha256-VtwjOs50A2TcoGyhLCJ0moXl9fVK44EsokQm08XreH0=",
      "gfx120X-all": "sha256-KjBNB7klx+RuUfqPcZsZWpv+LfLMkg1wbxCinS0kca8=",
    });
    // A fresh clone builds the default target from stable (the nightly has no pin yet).
    assert.equal(await nixEval(`${FLAKE}.lib.defaultChannel`), "stable");
    const resolved = await nixEval(`${FLAKE}.lib.resolve ${FLAKE}.lib.defaultTarget`) as {
      url: string;
      hash: string;
      pname: string;
    };
    assert.equal(
      resolved.url,
      "https://repo.amd.com/rocm/tarball-multi-arch/therock-dist-linux-gfx1151-7.14.0.tar.gz",
    );
    assert.equal(resolved.hash, stable.srcHashes.gfx1151);
    assert.equal(resolved.pname, "rocm-stable-gfx1151");
    const targets = await nixEval(`${FLAKE}.lib.targets.defaultTarget`);
    const json = JSON.parse(await Deno.readTextFile(join(repoRoot, "lib/releases/targets.json")));
    assert.equal(targets, json.defaultTarget);
  },
});

Deno.test({
  name: "channels.nix names the channel that would serve a target another lacks",
  ignore: !ok,
  fn: async () => {
    const error = await nixEvalError(`${FLAKE}.lib.resolveIn "nightly" "gfx1100"`);
    assert.match(error, /no tarball for target "gfx1100" in the nightly channel/);
    assert.match(error, /another channel serves it: rocm-stable-gfx1100 \(stable 7\.14\.0\)/);
    const unknown = await nixEvalError(`${FLAKE}.lib.resolveIn "rc" "gfx1100"`);
    assert.match(unknown, /no channel "rc" in flake.nix \(channels: nightly, stable\)/);
    // Nothing serves gfx1250 yet: the plain message, without a hint.
    const none = await nixEvalError(`${FLAKE}.lib.resolveIn "stable" "gfx1250"`);
    assert.match(none, /no tarball for target "gfx1250" in the stable channel/);
    assert.doesNotMatch(none, /another channel/);
  },
});

Deno.test({
  name: "channels.nix serves an added rc channel and falls back to it for the default",
  ignore: !ok,
  fn: async () => {
    const channels = `(import ${repoRoot}/nix/channels.nix {
      channels = {
        nightly = { baseUrl = "https://n.example/"; version = "10.1.0a20260827";
          srcHashes = { gfx1151 = null; }; };
        rc = { baseUrl = "https://rc.repo.amd.com/rocm/core/tarball/"; version = "10.1.0rc0";
          srcHashes = { gfx1151 = ${lit(GFX1151)}; }; mirrors = [ ]; skip = [ ]; };
      };
      targets = builtins.fromJSON (builtins.readFile ${repoRoot}/lib/releases/targets.json);
    })`;
    const value = await nixEval(`let c = ${channels}; in {
      inherit (c) defaultChannel order defaultNotice;
      rc = c.packageTargets."rocm-rc-gfx1151";
      url = (c.resolveIn "rc" "gfx1151").url;
    }`);
    assert.deepEqual(value, {
      defaultChannel: "rc",
      order: ["nightly", "rc"],
      defaultNotice:
        "rocm-nightly: packages.default is rocm-rc-gfx1151 (rc 10.1.0rc0): the nightly channel has no pinned tarball for gfx1151 (`nix run .#update` pins one)",
      rc: { channel: "rc", target: "gfx1151" },
      url: "https://rc.repo.amd.com/rocm/core/tarball/therock-dist-linux-gfx1151-10.1.0rc0.tar.gz",
    });
  },
});

Deno.test({
  name: "smoke.nix passes when rocminfo lists the ISA's agent, fails otherwise, needs rocm-<isa>",
  ignore: !ok,
  fn: async () => {
    // A package whose rocminfo prints one agent (or fails), and nixpkgs' runCommand in small.
    const smoke = (agent: string, exit = 0): string =>
      `let
        system = "x86_64-linux";
        runCommand = name: env: script: derivation (env // {
          inherit name system; builder = "/bin/sh"; args = [ "-c" script ]; PATH = "/usr/bin:/bin";
        });
        package = derivation {
          name = "fake-rocm-${agent}-${exit}"; inherit system; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
          args = [ "-c" "mkdir -p $out/bin && printf '#!/bin/sh\\necho \\"  Name:                    ${agent}\\"\\nexit ${exit}\\n' > $out/bin/rocminfo && chmod +x $out/bin/rocminfo" ];
        };
      in import ${repoRoot}/nix/smoke.nix { inherit runCommand package; isa = "gfx1151"; }`;
    const build = (expr: string, features: string) =>
      runNixBuild("nix-build", [
        "--no-out-link",
        ...["--option", "system-features", features],
        "--expr",
        expr,
      ], { env });
    const pass = await build(smoke("gfx1151"), "rocm-gfx1151");
    assert.equal(pass.code, 0, pass.stderr);
    assert.match(await Deno.readTextFile(pass.stdout.trim()), /Name: +gfx1151/);
    const other = await build(smoke("gfx1100"), "rocm-gfx1151");
    assert.notEqual(other.code, 0);
    assert.match(
      other.stderr,
      /smoke-gfx1151: rocminfo of fake-rocm-gfx1100-0 \(exit 0\) lists no gfx1151 agent/,
    );
    const crashed = await build(smoke("gfx1151", 139), "rocm-gfx1151");
    assert.match(crashed.stderr, /\(exit 139\) lists no gfx1151 agent/);
    // Without the feature, Nix refuses to build it here at all.
    const elsewhere = await build(smoke("gfx1151", 1), "kvm");
    assert.notEqual(elsewhere.code, 0);
    assert.match(elsewhere.stderr, /rocm-gfx1151/);
  },
});

Deno.test({
  name: "resolve.nix puts the channel's mirrors after baseUrl and refuses a skipped version",
  ignore: !ok,
  fn: async () => {
    const r = resolver(
      { "gfx1151": GFX1151 },
      `mirrors = [ "http://127.0.0.1:1/m" "https://mirror.example/rocm/" ];`,
    );
    assert.deepEqual(await nixEval(`(${r}.resolve "gfx1151").urls`), [
      "https://rocm.nightlies.amd.com/tarball/therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz",
      "http://127.0.0.1:1/m/therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz",
      "https://mirror.example/rocm/therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz",
    ]);
    const badMirror = await nixEvalError(
      `(${resolver({ gfx1151: GFX1151 }, `mirrors = [ "ftp://m/" ];`)}.resolve "gfx1151").urls`,
    );
    assert.match(badMirror, /a URL of nightly.mirrors "ftp:\/\/m\/" is not an http\(s\) URL/);
    const skipped = resolver({ gfx1151: GFX1151 }, `skip = [ "7.12.0a20260308" ];`);
    const error = await nixEvalError(`${skipped}.resolve "gfx1151"`);
    assert.match(error, /nightly.version "7.12.0a20260308" is in nightly.skip \(known bad\)/);
    assert.deepEqual(await nixEval(`${skipped}.packageTargets`), {});
  },
});

Deno.test({
  name: "resolve.nix: versions.<family> pins one tarball apart from the channel's version",
  ignore: !ok,
  fn: async () => {
    const r = resolver(
      { gfx1151: GFX1151, "gfx110X-all": OTHER },
      `versions = { gfx1151 = "7.12.0a20260311"; "gfx110X-all" = null; };`,
    );
    assert.deepEqual(
      await nixEval(
        `map (t: { inherit (${r}.resolve t) url hash version; }) [ "gfx1151" "gfx1100" ]`,
      ),
      [
        {
          url:
            "https://rocm.nightlies.amd.com/tarball/therock-dist-linux-gfx1151-7.12.0a20260311.tar.gz",
          hash: GFX1151,
          version: "7.12.0a20260311",
        },
        {
          url:
            "https://rocm.nightlies.amd.com/tarball/therock-dist-linux-gfx110X-all-7.12.0a20260308.tar.gz",
          hash: OTHER,
          version: "7.12.0a20260308",
        },
      ],
    );
    // A skipped per-target version is refused by its own name; the others still resolve.
    const skipped = resolver(
      { gfx1151: GFX1151, "gfx110X-all": OTHER },
      `versions.gfx1151 = "7.12.0a20260311"; skip = [ "7.12.0a20260311" ];`,
    );
    assert.match(
      await nixEvalError(`${skipped}.resolve "gfx1151"`),
      /nightly.versions.gfx1151 "7.12.0a20260311" is in nightly.skip \(known bad\)/,
    );
    const names = Object.keys(await nixEval(`${skipped}.packageTargets`) as object);
    assert.ok(names.includes("rocm-nightly-gfx110X-all"), names.join(" "));
    assert.ok(!names.includes("rocm-nightly-gfx1151"), names.join(" "));
    assert.match(
      await nixEvalError(`${resolver({ gfx1151: GFX1151 }, `versions = [ ];`)}.resolve "gfx1151"`),
      /nightly.versions must be an attribute set, got list/,
    );
  },
});

Deno.test("flake.nix binds each registry path exactly once (tools edit it by path)", async () => {
  const text = await Deno.readTextFile(join(repoRoot, "flake.nix"));
  const { bindings } = scanBindings(text);
  const paths = bindings.map((b) => b.path.join("."));
  for (const channel of ["nightly", "stable"]) {
    for (const name of ["", ".baseUrl", ".version", ".srcHashes", ".mirrors", ".skip"]) {
      const count = paths.filter((path) => path === `${channel}${name}`).length;
      assert.equal(count, 1, `${channel}${name} is bound ${count} times`);
    }
  }
  const code = text.split("\n").map((line) => line.replace(/#.*$/, "")).join("\n");
  assert.equal(code.match(/nightly\.version/g), null);
  assert.match(
    text,
    /\n {6}nightly = \{\n {8}baseUrl = "[^"]+";\n {8}version = "[^"]+";\n {8}srcHashes = \{\n/,
  );
});

Deno.test({
  name: "flake.lock pins nixpkgs and nix flake metadata accepts the flake",
  ignore: !ok,
  fn: async () => {
    const lock = JSON.parse(await Deno.readTextFile(join(repoRoot, "flake.lock")));
    assert.equal(lock.version, 7);
    assert.deepEqual(lock.nodes.nixpkgs.locked, {
      lastModified: 1770197578,
      narHash: "sha256-AYqlWrX09+HvGs8zM6ebZ1pwUqjkfpnv8mewYwAo+iM=",
      owner: "NixOS",
      repo: "nixpkgs",
      rev: "00c21e4c93d963c50d4c0c89bfa84ed6e0694df2",
      type: "github",
    });
    assert.equal(lock.nodes.nixpkgs.original.ref, "nixos-unstable");
    // A copy of only what the flake reads, so the store does not get the work tree.
    const dir = await Deno.makeTempDir({ prefix: "nix_test_flake_" });
    try {
      for (const path of ["flake.nix", "flake.lock", "lib/releases/targets.json"]) {
        await Deno.mkdir(join(dir, path, ".."), { recursive: true });
        await Deno.copyFile(join(repoRoot, path), join(dir, path));
      }
      const result = await run("nix", ["flake", "metadata", "--json", `path:${dir}`], { env });
      assert.equal(result.code, 0, result.stderr);
      const metadata = JSON.parse(result.stdout);
      assert.equal(metadata.locks.nodes.nixpkgs.locked.rev, lock.nodes.nixpkgs.locked.rev);
      assert.match(metadata.description, /ROCm/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * A stand-in for nixpkgs with just what flake.nix calls (builtins.derivation
 * underneath), so the flake's real outputs evaluate here without nixpkgs.
 * It checks wiring (attribute names, the resolver behind packages, apps and
 * their runners, legacyPackages' errors), not nixpkgs' own semantics: CI's
 * `nix flake check` with the pinned nixpkgs covers those.
 */
const STUB_NIXPKGS = String.raw`{
  outputs = { self }:
    let
      system = "x86_64-linux";
      lib = rec {
        id = x: x;
        warn = msg: builtins.trace "warning: ${"$"}{msg}";
        all = pred: builtins.all pred;
        filter = builtins.filter;
        listToAttrs = builtins.listToAttrs;
        mapAttrs = builtins.mapAttrs;
        optionals = cond: list: if cond then list else [ ];
        optionalAttrs = cond: set: if cond then set else { };
        nameValuePair = name: value: { inherit name value; };
        mapAttrs' = f: set: builtins.listToAttrs (map (n: f n set.${"$"}{n}) (builtins.attrNames set));
        escapeShellArg = arg: "'${"$"}{builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";
        escapeShellArgs = args: builtins.concatStringsSep " " (map escapeShellArg args);
        getExe = pkg: "${"$"}{pkg}/bin/${"$"}{pkg.meta.mainProgram}";
        licenses = { mit = "mit"; ncsa = "ncsa"; asl20 = "asl20"; };
        sourceTypes.binaryNativeCode = "binaryNativeCode";
        fakeHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        fileset = {
          maybeMissing = path: if builtins.pathExists path then [ path ] else [ ];
          unions = builtins.foldl' (acc: x: acc ++ (if builtins.isList x then x else [ x ])) [ ];
          toSource = { root, fileset }:
            let
              keep = map toString fileset;
              under = a: b: builtins.substring 0 (builtins.stringLength a + 1) b == "${"$"}{a}/";
            in
            builtins.path {
              name = "source";
              path = root;
              filter = path: type: builtins.any (k: k == path || under k path || under path k) keep;
            };
        };
      };
      drv = name: script: derivation {
        inherit name system;
        builder = "/bin/sh";
        args = [ "-c" script ];
        PATH = "/usr/bin:/bin";
      };
      makePkgs = overlays:
        let
          base = final: {
            inherit lib;
            # Like nixpkgs' makeOverridable: an attribute set result gains override.
            callPackage = fn: args:
              let
                f = if builtins.isFunction fn then fn else import fn;
                result = f (builtins.intersectAttrs (builtins.functionArgs f) final // args);
              in
              if builtins.isAttrs result then result // { override = _: result; } else result;
            runtimeShell = "/bin/sh";
            # The compiler wrapper (--cc-wrapper: the sample tree has no clang
            # to wrap), its loader, and the host library folders and
            # interpreters package.nix hands install.sh.
            stdenv.cc = drv "gcc-wrapper" (
              "mkdir -p $out/nix-support && cd $out/nix-support && echo /lib64/ld-linux-x86-64.so.2 > dynamic-linker"
              + " && echo $out > orig-cc && echo $out > orig-libc"
            ) // {
              bintools.dynamicLinker = "/lib64/ld-linux-x86-64.so.2";
              cc.lib = drv "gcc-lib" "mkdir -p $out/lib";
            };
            gfortran.cc.lib = drv "gfortran-lib" "mkdir -p $out/lib";
            ocl-icd = drv "ocl-icd" "mkdir -p $out/lib";
            libtool.lib = drv "libtool-lib" "mkdir -p $out/lib";
            python3 = let python = drv "python3" "mkdir -p $out/bin $out/lib"; in
              python // { interpreter = "${"$"}{python}/bin/python3"; };
            perl = drv "perl" "mkdir -p $out/bin";
            coreutils = drv "coreutils" "mkdir -p $out/bin";
            patchelf = drv "patchelf" "mkdir $out" // { meta.mainProgram = "patchelf"; };
            deno = drv "deno" "mkdir -p $out/bin && ln -s ${Deno.execPath()} $out/bin/deno"
              // { meta.mainProgram = "deno"; };
            nixfmt = drv "nixfmt" "mkdir $out";
            skopeo = drv "skopeo" "mkdir $out";
            umoci = drv "umoci" "mkdir $out";
            closureInfo = { rootPaths }: drv "closure-info" "mkdir $out";
            mkShell = { packages }: drv "shell" "mkdir $out";
            fetchurl = { urls, hash, name }: derivation {
              inherit name system urls;
              url = builtins.head urls;
              builder = "/bin/sh";
              args = [ "-c" "exit 1" ];
              outputHashMode = "flat";
              outputHash = hash;
            };
            # Like nixpkgs: nativeBuildInputs on PATH, passAsFile as files.
            runCommand = name: env: script:
              let
                inputs = env.nativeBuildInputs or [ ];
                files = map (n: "${"$"}{n}Path=$TMPDIR/${"$"}{n}; printf %s \"\$${"$"}{n}\" > \$${"$"}{n}Path;") (env.passAsFile or [ ]);
              in
              derivation (builtins.removeAttrs env [ "nativeBuildInputs" "passAsFile" ] // {
                inherit name system;
                builder = "/bin/bash";
                PATH = builtins.concatStringsSep ":" (map (p: "${"$"}{p}/bin") inputs ++ [ "/usr/bin" "/bin" ]);
                args = [ "-c" "set -e; ${"$"}{builtins.concatStringsSep " " files} ${"$"}{script}" ];
              });
            writeShellScriptBin = name: text: derivation {
              inherit name system text;
              builder = "/bin/sh";
              PATH = "/usr/bin:/bin";
              args = [ "-c" "mkdir -p $out/bin && printf '#!/bin/sh\\n%s' \"$text\" > $out/bin/${"$"}{name} && chmod +x $out/bin/${"$"}{name}" ];
            };
            stdenvNoCC.mkDerivation = fn:
              let
                make = attrsOf:
                  let
                    attrs = attrsOf (attrs // { finalPackage = pkg; });
                    # Runs the installPhase with stub stdenv hooks.
                    build = derivation {
                      name = "${"$"}{attrs.pname}-${"$"}{attrs.version}";
                      inherit system;
                      inherit (attrs) src;
                      builder = "/bin/bash";
                      PATH = builtins.concatStringsSep ":" (map (p: "${"$"}{p}/bin") (attrs.nativeBuildInputs or [ ]) ++ [ "/usr/bin" "/bin" ]);
                      args = [ "-c" "set -e; runHook() { :; }; patchShebangs() { :; }; ${"$"}{attrs.installPhase}" ];
                    };
                    pkg = build // {
                      inherit (attrs) pname version meta src;
                      passthru = attrs.passthru or { };
                      overrideAttrs = g: make (fa: let a = attrsOf fa; in a // g a);
                    } // (attrs.passthru or { });
                  in
                  pkg;
              in
              make (if builtins.isFunction fn then fn else _: fn);
          };
          fix = f: let x = f x; in x;
          pkgs = fix (final: builtins.foldl' (prev: overlay: prev // overlay final prev) (base final) overlays);
        in
        pkgs // { extend = overlay: makePkgs (overlays ++ [ overlay ]); };
    in
    {
      inherit lib;
      legacyPackages.${"$"}{system} = makePkgs [ ];
    };
}
`;

Deno.test({
  name: "flake.nix outputs evaluate against a stub nixpkgs: packages, errors, apps",
  ignore: !ok,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "nix_test_stub_" });
    try {
      await Deno.mkdir(join(dir, "nixpkgs"));
      await Deno.writeTextFile(join(dir, "nixpkgs/flake.nix"), STUB_NIXPKGS);
      const flake = join(dir, "flake");
      const copy = await run("sh", [
        "-c",
        'mkdir "$2" && cd "$1" && cp -r flake.nix flake.lock deno.json mod.ts lib nix scripts "$2"/ && { [ ! -e deno.lock ] || cp deno.lock "$2"/; }',
        "sh",
        repoRoot,
        flake,
      ]);
      assert.equal(copy.code, 0, copy.stderr);
      const home = join(dir, "home");
      const flags = [
        "--no-write-lock-file",
        ...["--override-input", "nixpkgs", `path:${dir}/nixpkgs`],
      ];
      // Builds run as the calling user: with build users, any other Nix
      // process on the machine whose user pool differs (a --store chroot) may
      // kill our builder (SIGKILL) when it starts a build as the same nixbld user.
      const buildEnv = nixEnv({ HOME: home });
      buildEnv.NIX_CONFIG = `${buildEnv.NIX_CONFIG}\nbuild-users-group =`;
      const nix = (args: string[]) =>
        runNixBuild("nix", [args[0]!, ...flags, ...args.slice(1)], { env: buildEnv });
      const evalJson = async (attr: string, apply?: string): Promise<unknown> => {
        const result = await nix([
          "eval",
          "--json",
          `path:${flake}#${attr}`,
          ...(apply === undefined ? [] : ["--apply", apply]),
        ]);
        assert.equal(result.code, 0, result.stderr);
        return JSON.parse(result.stdout);
      };
      const lib = await evalJson(
        "lib",
        "l: { inherit (l) packageTargets allPackageTargets defaultTarget; }",
      ) as {
        packageTargets: Record<string, string>;
        allPackageTargets: Record<string, { channel: string; target: string }>;
        defaultTarget: string;
      };

      await t.step("packages: one per resolvable target, its image, and default", async () => {
        const names = await evalJson("packages.x86_64-linux", "builtins.attrNames");
        const targets = Object.keys(lib.allPackageTargets);
        // docker-<target> (packages.default's channel) and docker-<channel>-<target>.
        const images = [
          ...Object.values(lib.packageTargets).map((target) => `docker-${target}`),
          ...Object.values(lib.allPackageTargets).map(({ channel, target }) =>
            `docker-${channel}-${target}`
          ),
        ];
        assert.deepEqual(names, ["default", ...images, ...targets].sort());
        const main = await evalJson(
          "packages.x86_64-linux.default",
          "p: { inherit (p) pname; url = p.src.url; hash = p.src.outputHash; inherit (p.meta) mainProgram platforms; drv = p.drvPath; }",
        ) as Record<string, unknown>;
        const resolved = await evalJson("lib", `l: l.resolve l.defaultTarget`) as Record<
          string,
          string
        >;
        assert.equal(main.pname, resolved.pname);
        assert.equal(main.url, resolved.url);
        assert.equal(main.hash, resolved.hash);
        assert.equal(main.mainProgram, "rocminfo");
        assert.deepEqual(main.platforms, ["x86_64-linux"]);
        assert.match(String(main.drv), /^\/nix\/store\/.+\.drv$/);
        const image = await evalJson(
          `packages.x86_64-linux.docker-${lib.defaultTarget}`,
          "p: p.drvPath",
        );
        // Named after its channel: a fresh clone's default channel is stable.
        assert.match(String(image), /docker-image-rocm-stable-.+\.drv$/);
        // A fresh clone: packages.default is stable's, with a warning naming the channel.
        const trace = await nix([
          "eval",
          "--raw",
          `path:${flake}#packages.x86_64-linux.default.pname`,
        ]);
        assert.equal(trace.stdout, "rocm-stable-gfx1151");
        assert.match(
          trace.stderr,
          /warning: rocm-nightly: packages.default is rocm-stable-gfx1151 \(stable 7\.14\.0\): the nightly channel has no pinned tarball for gfx1151/,
        );
      });

      await t.step(
        "per-ISA packages prune the family tarball; family packages stay whole",
        async () => {
          const view =
            'p: { inherit (p) pname; inherit (p.passthru) isas pruned; src = p.src.drvPath; prunes = builtins.match ".*scripts/prune.ts.*--isa.*gfx1100.*" (builtins.concatStringsSep " " p.args) != null; }';
          const isa = await evalJson("packages.x86_64-linux.rocm-stable-gfx1100", view) as Record<
            string,
            unknown
          >;
          const family = await evalJson(
            "packages.x86_64-linux.rocm-stable-gfx110X-all",
            view,
          ) as Record<
            string,
            unknown
          >;
          assert.equal(isa.src, family.src); // the same fixed-output tarball
          assert.deepEqual({ ...isa, src: null }, {
            pname: "rocm-stable-gfx1100",
            isas: ["gfx1100"],
            pruned: true,
            prunes: true,
            src: null,
          });
          assert.deepEqual({ ...family, src: null }, {
            pname: "rocm-stable-gfx110X-all",
            isas: ["gfx1100", "gfx1101", "gfx1102", "gfx1103"],
            pruned: false,
            prunes: false,
            src: null,
          });
        },
      );

      await t.step("a nightly package without a pin names the stable package", async () => {
        const result = await nix(["eval", `path:${flake}#rocm-nightly-gfx1151`]);
        assert.notEqual(result.code, 0);
        assert.match(result.stderr, /no tarball for target "gfx1151" in the nightly channel/);
        assert.match(result.stderr, /rocm-stable-gfx1151 \(stable 7\.14\.0\)/);
      });

      await t.step(
        "mirrors and GPU smoke checks of a pinned nightly, in fetchurl's urls",
        async () => {
          const pinned = join(dir, "pinned");
          await Deno.mkdir(pinned);
          const copied = await run("cp", [
            "-r",
            ...["flake.nix", "flake.lock", "deno.json", "mod.ts", "lib", "nix", "scripts"].map((
              p,
            ) => join(flake, p)),
            pinned,
          ]);
          assert.equal(copied.code, 0, copied.stderr);
          const text = await Deno.readTextFile(join(pinned, "flake.nix"));
          await Deno.writeTextFile(
            join(pinned, "flake.nix"),
            text.replace("gfx1151 = null;", `gfx1151 = "${GFX1151}";`)
              .replace("mirrors = [ ];", 'mirrors = [ "http://127.0.0.1:9/keep/" ];'),
          );
          const evalPinned = async (attr: string, apply: string): Promise<unknown> => {
            const result = await nix([
              "eval",
              "--json",
              `path:${pinned}#${attr}`,
              "--apply",
              apply,
            ]);
            assert.equal(result.code, 0, result.stderr);
            assert.doesNotMatch(result.stderr, /packages.default is/);
            return JSON.parse(result.stdout);
          };
          const src = await evalPinned(
            "packages.x86_64-linux.default",
            "p: { inherit (p) pname; inherit (p.src) urls outputHash; }",
          );
          assert.deepEqual(src, {
            pname: "rocm-nightly-gfx1151",
            outputHash: GFX1151,
            urls: [
              "https://nightly.repo.amd.com/rocm/core/tarball/therock-dist-linux-gfx1151-10.1.0a20260827.tar.gz",
              "http://127.0.0.1:9/keep/therock-dist-linux-gfx1151-10.1.0a20260827.tar.gz",
            ],
          });
          // The GPU smoke tests are gpuChecks (a builder with the GPU), not checks.
          const smoke = await evalPinned(
            "gpuChecks.x86_64-linux",
            "builtins.mapAttrs (_: d: d.requiredSystemFeatures)",
          );
          assert.deepEqual(smoke, { "smoke-gfx1151": ["rocm-gfx1151"] });
          const checks = await evalPinned("checks.x86_64-linux", "builtins.attrNames") as string[];
          assert.deepEqual(checks.filter((name) => name.startsWith("smoke-")), []);
          // The fresh clone's nightly has no pin: no smoke checks yet.
          assert.deepEqual(await evalJson("gpuChecks.x86_64-linux", "builtins.attrNames"), []);
        },
      );

      await t.step("nix eval .#rocm-nightly-<unavailable> explains the chain tried", async () => {
        const unavailable = await evalJson("lib", "l: l.unavailableTargets") as Record<
          string,
          string
        >;
        const name = "rocm-stable-gfx1250";
        assert.ok(Object.hasOwn(unavailable, name));
        const result = await nix(["eval", `path:${flake}#${name}`]);
        assert.notEqual(result.code, 0);
        assert.match(result.stderr, /rocm-nightly: no tarball for target "gfx1.*tried gfx1.* → /);
        assert.match(result.stderr, /available targets: /);
        const unknown = await nix(["eval", `path:${flake}#rocm-nightly-gfx9999`]);
        assert.match(unknown.stderr, /does not provide attribute/);
      });

      await t.step("apps: every script with its description, default runs rocminfo", async () => {
        const apps = await evalJson(
          "apps.x86_64-linux",
          "builtins.mapAttrs (n: a: { inherit (a) type program; description = a.meta.description; })",
        ) as Record<string, { type: string; program: string; description: string }>;
        const scripts = [...Deno.readDirSync(join(repoRoot, "scripts"))]
          .filter((e) => e.isFile && e.name.endsWith(".ts") && !e.name.startsWith("_"))
          .map((e) => e.name.slice(0, -3));
        assert.deepEqual(Object.keys(apps).sort(), ["default", ...scripts].sort());
        for (const [name, app] of Object.entries(apps)) {
          assert.equal(app.type, "app", name);
          assert.ok(app.description.length > 10, name);
        }
        assert.match(apps.default!.program, /-rocm-stable-gfx1151-.+\/bin\/rocminfo$/);
      });

      await t.step(
        "nix run .#check-output runs the script with its shebang's permissions",
        async () => {
          const out = join(dir, "out");
          const tree = join(dir, "tree");
          const { writeSampleRocmTree } = await import("../../lib/package/sample_rocm.ts");
          await writeSampleRocmTree(tree, { isas: ["gfx1151"] });
          const install = await run("bash", [
            join(repoRoot, "nix/install.sh"),
            ...["--source", tree, "--out", out, "--pname", "p"],
          ]);
          assert.equal(install.code, 0, install.stderr);
          const pass = await nix([
            "run",
            `path:${flake}#check-output`,
            "--",
            out,
            "--target",
            "gfx1151",
          ]);
          assert.equal(pass.code, 0, pass.stderr);
          assert.match(pass.stdout, /: ok \(/);
          await Deno.remove(join(out, "nix-support"), { recursive: true });
          const fail = await nix(["run", `path:${flake}#check-output`, "--", out, "--json"]);
          assert.equal(fail.code, 1, fail.stderr);
          assert.equal(JSON.parse(fail.stdout).failures[0].check, "setup-hook");
          // The runner: exact permissions, frozen lockfile, a writable DENO_DIR.
          const program = String(await evalJson("apps.x86_64-linux.check-output.program"));
          const runner = await Deno.readTextFile(program);
          const src = runner.match(/(\/nix\/store\/[^/ ']+)\/scripts\/check-output\.ts/)?.[1];
          assert.ok(src, runner);
          assert.match(runner, /\/rocm-nightly\/deno"/);
          const lock = (await Deno.stat(join(repoRoot, "deno.lock")).catch(() => null)) === null
            ? "'--no-lock'"
            : `'--frozen' '--lock=${src}/deno.lock'`;
          assert.ok(
            runner.includes(
              `run ${lock} '--config' '${src}/deno.json' '--allow-read' '--allow-ffi' ${src}/scripts/check-output.ts "$@"`,
            ),
            runner,
          );
          await Deno.stat(join(home, ".cache/rocm-nightly/deno"));
        },
      );

      await t.step(
        "checks: the package built from a sample tarball passes check-output",
        async () => {
          const build = async (check: string) =>
            await nix([
              "build",
              "--no-link",
              "--json",
              `path:${flake}#checks.x86_64-linux.${check}`,
            ]);
          const structure = await build("sample-output-structure");
          assert.equal(structure.code, 0, structure.stderr);
          // The family sample pruned to gfx1100 in a Nix build, then check-output --isa.
          const pruned = await build("sample-pruned-output-structure");
          assert.equal(pruned.code, 0, pruned.stderr);
          const out = await build("sample-pruned-package");
          assert.equal(out.code, 0, out.stderr);
          const record = JSON.parse(
            await Deno.readTextFile(
              join(JSON.parse(out.stdout)[0].outputs.out, "nix-support/pruned"),
            ),
          );
          assert.deepEqual(record.isas, ["gfx1100"]);
          assert.ok(
            record.files.some((f: { path: string }) => f.path === ".kpack/blas_lib_gfx1101.kpack"),
          );
          const metadata = await build("flake-metadata");
          assert.equal(metadata.code, 0, metadata.stderr);
          const summaryPath = JSON.parse(metadata.stdout)[0].outputs.out;
          const summary = JSON.parse(await Deno.readTextFile(summaryPath));
          assert.equal(summary.defaultTarget, lib.defaultTarget);
          assert.deepEqual(summary.permissions["check-output"], ["--allow-read", "--allow-ffi"]);
          assert.ok(summary.packages.includes("default"));
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
