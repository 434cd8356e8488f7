import { deepEqual, equal, match } from "node:assert/strict";
import { repoRoot, requireTools, run, type RunResult } from "../_tools.ts";

const script = `${repoRoot}/scripts/rewrite.ts`;
const fixtures = `${repoRoot}/tests/fixtures/flakes`;
const shebang = (await Deno.readTextFile(script)).split("\n")[0]!;
// Run with exactly the permissions the shebang grants (nix/apps.nix reads them too).
const permissions = shebang.replace("#!/usr/bin/env -S deno run", "").trim().split(/\s+/);

const PIN = "sha256-rUhZSqJaTpuc2l6D1Q29oC0yTcTRRU/NO/JAFxaaVRA=";
const EMPTY = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

/** A temporary folder holding `flake.nix` (a copy of a fixture) with mode 0640. */
async function withFlake(
  fixture: string,
  fn: (dir: string, original: Uint8Array) => Promise<void>,
  transform: (text: string) => string = (text) => text,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rewrite_test" });
  try {
    const text = transform(await Deno.readTextFile(`${fixtures}/${fixture}.nix`));
    await Deno.writeTextFile(`${dir}/flake.nix`, text, { mode: 0o640 });
    await Deno.chmod(`${dir}/flake.nix`, 0o640);
    await fn(dir, await Deno.readFile(`${dir}/flake.nix`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function rewrite(dir: string, ...args: string[]): Promise<RunResult> {
  return run(Deno.execPath(), ["run", ...permissions, script, ...args], {
    cwd: dir,
    env: { NO_COLOR: "1" },
  });
}

/** The file is byte for byte what it was, with its mode, and no temporary file was left. */
async function assertUnchanged(dir: string, original: Uint8Array): Promise<void> {
  deepEqual(await Deno.readFile(`${dir}/flake.nix`), original);
  equal((await Deno.stat(`${dir}/flake.nix`)).mode! & 0o777, 0o640);
  const names = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  deepEqual(names, ["flake.nix"]);
}

Deno.test("rewrite.ts has the exact, narrow shebang", () => {
  equal(shebang, "#!/usr/bin/env -S deno run --allow-read --allow-write");
});

Deno.test("rewrite.ts sets values, prints one line per change and keeps the mode", async () => {
  await withFlake("registry", async (dir, original) => {
    const result = await rewrite(
      dir,
      "--add",
      "--set",
      "nightly.version=7.12.0a20260309",
      "--set",
      `nightly.srcHashes."gfx110X-all"=${EMPTY}`,
      "--set",
      "nightly.srcHashes.gfx1151=null",
      "--set",
      `nightly.srcHashes.gfx1200=${PIN}`,
    );
    equal(result.code, 0, result.stderr);
    equal(
      result.stdout,
      'nightly.version: "7.12.0a20260308" → "7.12.0a20260309"\n' +
        `nightly.srcHashes."gfx110X-all": null → "${EMPTY}"\n` +
        `nightly.srcHashes.gfx1151: "${PIN}" → null\n` +
        `nightly.srcHashes.gfx1200: (added) → "${PIN}"\n`,
    );
    equal(result.stderr, "");
    const expected = new TextDecoder().decode(original)
      .replace('"7.12.0a20260308"', '"7.12.0a20260309"')
      .replace(`gfx1151 = "${PIN}";`, "gfx1151 = null;")
      .replace(
        "gfx110X-all = null; # not fetched yet\n",
        `gfx110X-all = "${EMPTY}"; # not fetched yet\n      gfx1200 = "${PIN}";\n`,
      );
    equal(await Deno.readTextFile(`${dir}/flake.nix`), expected);
    equal((await Deno.stat(`${dir}/flake.nix`)).mode! & 0o777, 0o640);
  });
});

Deno.test("rewrite.ts with nothing to change says so and leaves the file alone", async () => {
  await withFlake("registry", async (dir, original) => {
    const before = (await Deno.stat(`${dir}/flake.nix`)).mtime;
    const result = await rewrite(dir, "--set", "nightly.version=7.12.0a20260308");
    equal(result.code, 0, result.stderr);
    equal(result.stdout, "flake.nix: no changes\n");
    await assertUnchanged(dir, original);
    deepEqual((await Deno.stat(`${dir}/flake.nix`)).mtime, before);
  });
});

const hasPatch = await requireTools("--dry-run diffs must apply with patch(1)", "patch");

Deno.test({
  name: "rewrite.ts --dry-run prints a diff that patch applies, and writes nothing",
  ignore: !hasPatch,
  fn: async () => {
    for (const crlf of [false, true]) {
      await withFlake("lookalike", async (dir, original) => {
        const sets = [
          "--add",
          "--set",
          "nightly.version=7.12.0a20260309",
          "--set",
          `nightly.srcHashes.gfx1200=${EMPTY}`,
        ];
        const dry = await rewrite(dir, "--dry-run", ...sets);
        equal(dry.code, 0, dry.stderr);
        match(dry.stdout, /^--- a\/flake\.nix\n\+\+\+ b\/flake\.nix\n@@ -12,10 \+12,11 @@\n/);
        await assertUnchanged(dir, original);

        await Deno.writeTextFile(`${dir}/patch.diff`, dry.stdout);
        await Deno.writeFile(`${dir}/old.nix`, original);
        const patched = await run(
          "patch",
          ["--binary", "-o", "patched.nix", "flake.nix", "patch.diff"],
          { cwd: dir },
        );
        equal(patched.code, 0, patched.stdout + patched.stderr);
        equal((await rewrite(dir, ...sets)).code, 0);
        deepEqual(
          await Deno.readFile(`${dir}/patched.nix`),
          await Deno.readFile(`${dir}/flake.nix`),
        );
        // The hunks are those diff(1) computes (its header lines carry timestamps).
        const reference = await run("diff", ["-u", "old.nix", "flake.nix"], { cwd: dir });
        equal(
          reference.stdout.split("\n").slice(2).join("\n"),
          dry.stdout.split("\n").slice(2).join("\n"),
        );
        for (const name of ["patch.diff", "old.nix", "patched.nix"]) {
          await Deno.remove(`${dir}/${name}`);
        }
      }, crlf ? (text) => text.replaceAll("\n", "\r\n") : undefined);
    }
  },
});

Deno.test("rewrite.ts writes through a symlink, keeping the link", async () => {
  await withFlake("registry", async (dir) => {
    await Deno.rename(`${dir}/flake.nix`, `${dir}/registry.nix`);
    await Deno.symlink("registry.nix", `${dir}/flake.nix`);
    const result = await rewrite(dir, "--set", "nightly.version=7.12.0a20260309");
    equal(result.code, 0, result.stderr);
    equal(await Deno.readLink(`${dir}/flake.nix`), "registry.nix");
    match(await Deno.readTextFile(`${dir}/registry.nix`), /version = "7\.12\.0a20260309";/);
    equal((await Deno.stat(`${dir}/registry.nix`)).mode! & 0o777, 0o640);
  });
});

Deno.test("rewrite.ts --check exits 1 when changes are pending, 0 when none", async () => {
  await withFlake("classic", async (dir, original) => {
    const pending = await rewrite(dir, "--check", "--set", "version=7.12.0a20260309");
    equal(pending.code, 1);
    equal(pending.stdout, 'version: "7.12.0a20260308" → "7.12.0a20260309"\n');
    await assertUnchanged(dir, original);
    const current = await rewrite(dir, "--check", "--set", `srcHash=${PIN}`);
    equal(current.code, 0, current.stderr);
    await assertUnchanged(dir, original);
  });
});

Deno.test("rewrite.ts --json prints the changes", async () => {
  await withFlake("registry", async (dir) => {
    const result = await rewrite(dir, "--json", "--add", "--set", "nightly.srcHashes.gfx1200=null");
    equal(result.code, 0, result.stderr);
    deepEqual(JSON.parse(result.stdout), {
      file: "flake.nix",
      written: true,
      changes: [
        {
          path: "nightly.srcHashes.gfx1200",
          line: 10,
          oldValue: null,
          newValue: null,
          added: true,
        },
      ],
    });
  });
});

Deno.test("rewrite.ts refuses ambiguous, missing and invalid edits with one line, writing nothing", async () => {
  const cases: [fixture: string, args: string[], message: RegExp][] = [
    [
      "duplicates",
      ["--set", "nightly.version=7.12.0a20260309"],
      /^rewrite: Cannot rewrite "nightly\.version" in flake\.nix: found 2 bindings \(lines 3, 8\)\n$/,
    ],
    [
      "registry",
      ["--set", "nightly.mirror.url=https://x.org/"],
      /^rewrite: Cannot rewrite "nightly\.mirror\.url" in flake\.nix: no such binding \(nearest existing: "nightly"\)\n$/,
    ],
    // A missing key is refused unless --add says it is meant.
    [
      "registry",
      ["--set", "nightly.srcHashes.gfx1200=null"],
      /^rewrite: Cannot rewrite "nightly\.srcHashes\.gfx1200" in flake\.nix: no such binding \(nearest existing: "nightly\.srcHashes"\)\n$/,
    ],
    ["registry", ["--set", "nightly.version=7.12"], /^rewrite: Cannot set "nightly\.version".*\n$/],
    // All or nothing: the valid first edit is not written either.
    [
      "registry",
      ["--set", "nightly.version=7.12.0a20260309", "--set", "nightly.srcHashes.gfx1151=sha256-x"],
      /^rewrite: Cannot set "nightly\.srcHashes\.gfx1151".*\n$/,
    ],
    [
      "registry",
      ["--flake", "missing.nix", "--set", "a.b=c"],
      /^rewrite: Cannot read "missing\.nix": .*\n$/,
    ],
  ];
  for (const hostile of ['x"; evil = "', "${builtins.readFile /etc/passwd}", "a\\b", "a\nb"]) {
    cases.push(["classic", ["--set", `description=${hostile}`], /may not contain/]);
    cases.push([
      "registry",
      ["--set", `nightly.version=${hostile}`],
      /Cannot set "nightly\.version"/,
    ]);
  }
  for (const [fixture, args, message] of cases) {
    await withFlake(fixture, async (dir, original) => {
      const result = await rewrite(dir, ...args);
      equal(result.code, 1, `${args.join(" ")}: ${result.stderr}`);
      match(result.stderr, message);
      equal(result.stdout, "");
      await assertUnchanged(dir, original);
    });
  }
});

Deno.test("rewrite.ts exits 2 on a wrong command line", async () => {
  await withFlake("registry", async (dir, original) => {
    for (
      const [args, message] of [
        [[], /give at least one --set/],
        [["--set", "nightly.version"], /expected PATH=VALUE/],
        [["--set", "=1"], /expected PATH=VALUE/],
        [["--set", "nightly..version=1"], /Cannot parse attribute path/],
        [["--sett", "a=1"], /--sett/],
        [["stray", "--set", "a=1"], /stray|positional/i],
      ] as const
    ) {
      const result = await rewrite(dir, ...args);
      equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      match(result.stderr, message);
      equal(result.stderr.trimEnd().split("\n").length, 1, "one line");
    }
    await assertUnchanged(dir, original);
    const help = await rewrite(dir, "--help");
    equal(help.code, 0);
    match(help.stdout, /^Usage: rewrite \[options\]\n/);
    match(help.stdout, /Examples:\n {2}rewrite --set nightly\.version=/);
  });
});

Deno.test("rewrite.ts takes --flake PATH, and --file PATH as its older spelling; --help shows --flake", async () => {
  await withFlake("registry", async (dir) => {
    // Neither file is the flake.nix the folder holds, so only the flag can name it.
    await Deno.copyFile(`${dir}/flake.nix`, `${dir}/a.nix`);
    await Deno.copyFile(`${dir}/flake.nix`, `${dir}/b.nix`);
    for (const [flag, file] of [["--flake", "a.nix"], ["--file", "b.nix"]] as const) {
      const result = await rewrite(dir, flag, file, "--set", "nightly.version=7.12.0a20260309");
      equal(result.code, 0, result.stderr);
      match(await Deno.readTextFile(`${dir}/${file}`), /version = "7\.12\.0a20260309"/);
    }
    match(await Deno.readTextFile(`${dir}/flake.nix`), /version = "7\.12\.0a20260308"/);
    const help = await rewrite(dir, "--help");
    match(help.stdout, /^ {2}--flake PATH {6}the flake\.nix to edit/m);
    equal(help.stdout.includes("--file"), false);
  });
  // With none found, the message names the flag to pass.
  const empty = await Deno.makeTempDir({ prefix: "rewrite_test" });
  try {
    await Deno.mkdir(`${empty}/.git`);
    const result = await rewrite(empty, "--set", "nightly.version=7.12.0a20260309");
    equal(result.code, 1);
    match(result.stderr, /^rewrite: No flake\.nix here or above: pass --flake PATH /);
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});
