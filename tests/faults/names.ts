/**
 * Bytes that are not UTF-8: in flake.nix (update and rewrite refuse it, byte
 * for byte untouched, never a U+FFFD written back) and in file names
 * (check-output checks them for real; image refuses them in one line).
 *
 * @module
 */

import { equal, match } from "node:assert/strict";
import { assertFailedCleanly, type FaultCase, inTempDir, runScript, snapshot } from "./_harness.ts";
import { registry } from "./_fixtures.ts";
import { goodOutput } from "../_elf_fixtures.ts";
import { nixEnv, repoRoot, run } from "../_tools.ts";
import { listsEveryName } from "../../lib/fs/dir_reader.ts";

const encoder = new TextEncoder();

/** Places in flake.nix for a byte sequence that is not UTF-8. */
const FLAKE_BYTES: { name: string; bytes: number[]; where: "comment" | "string" }[] = [
  { name: "a Latin-1 é in a comment (#14.3)", bytes: [0xe9], where: "comment" },
  { name: "a lone continuation byte in a string", bytes: [0x80], where: "string" },
  { name: "an overlong encoding of /", bytes: [0xc0, 0xaf], where: "comment" },
  { name: "an encoded surrogate (CESU-8)", bytes: [0xed, 0xa0, 0x80], where: "comment" },
];

function flakeWith(bytes: number[], where: "comment" | "string"): Uint8Array {
  const text = registry("http://127.0.0.1:9/tarball/", where === "comment" ? " by @@" : "")
    .replace(
      "srcHashes = {",
      where === "string" ? 'description = "@@";\n    srcHashes = {' : "srcHashes = {",
    );
  const [before, after] = text.split("@@") as [string, string];
  return Uint8Array.from([...encoder.encode(before), ...bytes, ...encoder.encode(after)]);
}

/** A tree with names in every shape getdents64 can return. */
async function writeOddNames(root: string): Promise<void> {
  const script = `
    set -e
    cd "$1"
    e=$(printf '\\351'); f=$(printf '\\377')
    printf 'x' > "caf$e"
    mkdir "d$f" && printf 'y' > "d$f/inside" && printf 'z' > "d$f/n$e"
    ln -s "caf$e" "link-to-caf$e"
    ln -s "d$f/n$e" "deep$e"
    ln -s "../caf$e" "d$f/up$e"
  `;
  const result = await run("sh", ["-c", script, "sh", root]);
  equal(result.code, 0, result.stderr);
}

interface Report {
  ok: boolean;
  failures: { check: string; path?: string; message: string }[];
}

export const NAME_CASES: FaultCase[] = [
  ...FLAKE_BYTES.flatMap(({ name, bytes, where }): FaultCase[] => [
    {
      name: `update: flake.nix holds ${name}`,
      run: () =>
        inTempDir(async (dir) => {
          await Deno.writeFile(`${dir}/flake.nix`, flakeWith(bytes, where));
          const before = snapshot(dir);
          const result = await runScript("update", ["--flake", `${dir}/flake.nix`]);
          await assertFailedCleanly(result, {
            code: 1,
            stderr: /is not UTF-8 \(byte 0x/,
            unchanged: [before],
          });
        }),
    },
    {
      name: `rewrite: flake.nix holds ${name}`,
      run: () =>
        inTempDir(async (dir) => {
          await Deno.writeFile(`${dir}/flake.nix`, flakeWith(bytes, where));
          const before = snapshot(dir);
          const result = await runScript("rewrite", [
            "--flake",
            `${dir}/flake.nix`,
            "--set",
            "nightly.version=7.12.0a20260310",
          ]);
          await assertFailedCleanly(result, {
            code: 1,
            stderr: /is not UTF-8 \(byte 0x/,
            unchanged: [before],
          });
        }),
    },
  ]),
  {
    name: "check-output: names that are not UTF-8 are checked, with no false failure (#14.9)",
    run: () =>
      inTempDir(async (dir) => {
        const out = await goodOutput(dir);
        await writeOddNames(`${out}/share`);
        const elfFiles = async (): Promise<number> => {
          const result = await runScript("check-output", ["--json", out]);
          await Deno.remove(result.tmpdir, { recursive: true });
          const report = JSON.parse(result.stdout) as Report & { counts: { elfFiles: number } };
          equal(result.code, 0, JSON.stringify(report.failures));
          equal(report.ok, true);
          return report.counts.elfFiles;
        };
        const before = await elfFiles();
        // An ELF library named so: the ELF reader opens it by its bytes and checks it.
        const copied = await run("sh", [
          "-c",
          `cp "$1/opt/rocm/lib/libfence.so.1" "$1/opt/rocm/lib/libf$(printf '\\351').so"`,
          "sh",
          out,
        ]);
        equal(copied.code, 0, copied.stderr);
        equal(await elfFiles(), before + 1, "the library named in Latin-1 was read");
      }),
  },
  {
    name: "check-output: a dangling link with a name that is not UTF-8 is one finding, escaped",
    run: () =>
      inTempDir(async (dir) => {
        const out = await goodOutput(dir);
        await writeOddNames(`${out}/share`);
        const made = await run("sh", [
          "-c",
          `ln -s nowhere "$1/share/gone$(printf '\\351')"`,
          "sh",
          out,
        ]);
        equal(made.code, 0);
        const result = await runScript("check-output", ["--json", out]);
        const report = JSON.parse(result.stdout) as Report;
        equal(result.code, 1);
        equal(report.failures.length, 1, JSON.stringify(report.failures));
        equal(report.failures[0]!.check, "dangling-symlink");
        equal(report.failures[0]!.path, "share/gone\\xe9");
        await Deno.remove(result.tmpdir, { recursive: true });
      }),
  },
  {
    name: 'check-output without --allow-ffi: such names are explicit findings, never "dangling"',
    run: () =>
      inTempDir(async (dir) => {
        const out = await goodOutput(dir);
        await writeOddNames(`${out}/share`);
        const result = await run(Deno.execPath(), [
          "run",
          "--allow-read",
          `${repoRoot}/scripts/check-output.ts`,
          "--json",
          out,
        ]);
        const report = JSON.parse(result.stdout) as Report;
        if (!listsEveryName) {
          // Before Deno 2.8.2 such names are not even listed: said on stderr, never silent.
          match(result.stderr, /warning: .*not UTF-8.*--allow-ffi/);
          return;
        }
        equal(result.code, 1);
        equal(
          report.failures.every((f) => f.check === "unreadable"),
          true,
          JSON.stringify(report.failures),
        );
        for (const failure of report.failures) match(failure.message, /not UTF-8.*--allow-ffi/);
      }),
  },
  {
    name:
      "image: a store path with a name that is not UTF-8 is refused in one line, nothing written",
    run: () =>
      inTempDir(async (dir) => {
        const tree = `${dir}/odd-names`;
        await Deno.mkdir(tree);
        await writeOddNames(tree);
        const added = await run("nix-store", ["--add", tree]);
        equal(added.code, 0, added.stderr);
        const storePath = added.stdout.trim();
        const info = await run("nix", ["path-info", "--json", storePath], { env: nixEnv() });
        equal(info.code, 0, info.stderr);
        await Deno.writeTextFile(`${dir}/closure.json`, info.stdout);
        await Deno.mkdir(`${dir}/images`);
        const before = snapshot(`${dir}/images`);
        const result = await runScript("image", [
          "--closure",
          `${dir}/closure.json`,
          "--name",
          "odd",
          "--output",
          `${dir}/images/odd.tar`,
        ]);
        await assertFailedCleanly(result, {
          code: 1,
          stderr: /name is not UTF-8.*rename it/,
          unchanged: [before],
        });
      }),
  },
];
