import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkTargetName,
  coveringFamily,
  formatTargetList,
  suggestTarget,
  targetName,
} from "../../lib/releases/target_names.ts";
import { ValueError } from "../../lib/cli/command_line.ts";
import { targetTable } from "../../lib/releases/targets.ts";
import { repoRoot, run, withTempDir } from "../_tools.ts";

Deno.test("suggestTarget() names the family or ISA a typo or a product meant", () => {
  const cases: [string, string | undefined][] = [
    ["gfx1115", "gfx1151"],
    ["gfx1510", "gfx1150"],
    ["GFX1151", "gfx1151"],
    ["gfx110x-all", "gfx110X-all"],
    ["multiarc", "multiarch"],
    ["Radeon 8060S", "gfx1151"],
    ["8060s", "gfx1151"],
    ["Strix Halo", "gfx1151"],
    ["RX 7900 XTX", "gfx1100"],
    ["MI300X", "gfx942"],
    ["Steam Deck", "gfx1033"],
    ["gfx9999", undefined],
    ["radeon", undefined],
    ["banana", undefined],
  ];
  for (const [typed, meant] of cases) assert.equal(suggestTarget(typed), meant, typed);
});

Deno.test("checkTargetName() refuses an unknown name with the nearest one, no repository path", () => {
  assert.equal(checkTargetName("gfx110X-all"), "gfx110X-all");
  assert.equal(checkTargetName("gfx1201"), "gfx1201");
  assert.throws(
    () => checkTargetName("gfx1115"),
    /^RangeError: unknown GPU target "gfx1115": did you mean gfx1151 \(Radeon 8060S \(Strix Halo\)\)\? detect --list-targets lists them all$/,
  );
  assert.throws(() => checkTargetName("banana"), (error: Error) => {
    assert.match(error.message, /not a family or ISA of the target table/);
    assert.doesNotMatch(error.message, /targets\.json|lib\//);
    return true;
  });
  assert.throws(() => targetName("Radeon 8060S"), ValueError);
});

Deno.test("coveringFamily() names a tracked family that already serves a target", () => {
  assert.equal(coveringFamily("gfx1201", ["gfx1151", "multiarch"]), "multiarch");
  assert.equal(coveringFamily("gfx120X-all", ["multiarch"]), "multiarch");
  assert.equal(coveringFamily("gfx1103", ["gfx110X-all"]), "gfx110X-all");
  assert.equal(coveringFamily("gfx1201", ["gfx1151"]), undefined);
  assert.equal(coveringFamily("multiarch", ["multiarch"]), undefined);
  assert.equal(coveringFamily("multiarch", ["gfx120X-all"]), undefined);
});

Deno.test("formatTargetList() lists every family, ISA and product, and each channel's pins", () => {
  const text = formatTargetList([
    { channel: "nightly", version: "7.12.0a20260308", srcHashes: { gfx1151: "sha256-x", a: null } },
  ]);
  for (const family of Object.keys(targetTable.families)) assert.ok(text.includes(`  ${family} `));
  for (const isa of Object.keys(targetTable.isas)) assert.ok(text.includes(`\n  ${isa} `), isa);
  assert.ok(text.includes("Radeon 8060S (Strix Halo); gfx1151 > multiarch"));
  assert.ok(text.endsWith("\n  nightly: 7.12.0a20260308; gfx1151, a (no hash)"), text);
  assert.match(formatTargetList([]), /no flake at hand/);
});

const DETECT = ["run", "--allow-read", "--allow-env=ROCM_NIGHTLY_APP_FLAKE"];

Deno.test("detect --list-targets needs no file of the repository", async () => {
  await withTempDir(async (dir) => {
    // Reads allowed only in an empty folder: the table comes with the module.
    const script = join(repoRoot, "scripts/detect.ts");
    const bare = await run(Deno.execPath(), [
      ...DETECT.map((p) => p === "--allow-read" ? `--allow-read=${dir}` : p),
      script,
      "--list-targets",
    ], { cwd: dir });
    assert.equal(bare.code, 0, bare.stderr);
    assert.match(bare.stdout, /^Families \(the tarballs AMD builds\) and their ISAs:\n {2}gfx900 /);
    assert.match(bare.stdout, /\n {2}gfx1151 {2}Radeon 8060S/);
    assert.match(bare.stdout, /\nPins: no flake at hand/);
    await Deno.writeTextFile(
      join(dir, "flake.nix"),
      '{ nightly = { baseUrl = "https://x.example/"; version = "7.12.0a20260308"; ' +
        "srcHashes = { gfx1151 = null; }; }; }\n",
    );
    const pinned = await run(Deno.execPath(), [...DETECT, script, "--list-targets", "--json"], {
      cwd: dir,
    });
    assert.equal(pinned.code, 0, pinned.stderr);
    const json = JSON.parse(pinned.stdout);
    assert.deepEqual(Object.keys(json), ["families", "isas", "channels"]);
    assert.deepEqual(json.channels.map((c: { channel: string }) => c.channel), ["nightly"]);
  });
});

Deno.test("every script that takes --target or --channel refuses an unknown one with a hint, exit 2", async () => {
  const cases: [string, string[], string[], RegExp][] = [
    ["update", ["--allow-all"], ["--target", "gfx1115"], /did you mean gfx1151/],
    ["update", ["--allow-all"], ["--target", "Radeon 8060S"], /did you mean gfx1151/],
    ["update", ["--allow-all"], ["--channel", "nigthly"], /did you mean nightly/],
    ["status", ["--allow-all"], ["--channel", "stabel"], /did you mean stable/],
    ["image", ["--allow-all"], ["--target", "gfx1115", "--closure", "-", "--name", "x"], /gfx1151/],
    ["check-output", ["--allow-all"], [".", "--target", "gfx1115"], /did you mean gfx1151/],
  ];
  for (const [name, permissions, args, hint] of cases) {
    const result = await run(Deno.execPath(), [
      "run",
      ...permissions,
      join(repoRoot, `scripts/${name}.ts`),
      ...args,
    ]);
    assert.equal(result.code, 2, `${name} ${args.join(" ")}: ${result.stderr}`);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, new RegExp(`^${name}: invalid --(target|channel) "`));
    assert.match(result.stderr, hint);
    assert.equal(result.stderr.split("\n").length, 2, result.stderr);
    assert.doesNotMatch(result.stderr, /targets\.json/);
  }
});
