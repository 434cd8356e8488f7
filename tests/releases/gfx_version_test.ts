// lib/releases/gfx_version.ts and nix/gfx_version.nix: the same conversions, checked
// against the kernel's facts and against each other (the Nix side by the
// real `nix eval`).
import assert from "node:assert/strict";
import {
  gfxTargetVersionOfIsa,
  hsaOverrideOfIsa,
  isaOfGfxTargetVersion,
  isaOfHsaOverride,
  parseGfxTargetVersion,
  parseIsaName,
} from "../../lib/releases/gfx_version.ts";
import { isSupportedIsa, nearestSupportedIsa, targetTable } from "../../lib/releases/targets.ts";
import { assertThrowsWith, nixEnv, repoRoot, requireTools, run } from "../_tools.ts";

const FACTS: [number, string][] = [
  [110501, "gfx1151"],
  [110000, "gfx1100"],
  [100300, "gfx1030"],
  [100301, "gfx1031"],
  [90010, "gfx90a"],
  [90402, "gfx942"],
  [90500, "gfx950"],
  [120001, "gfx1201"],
];

Deno.test("isaOfGfxTargetVersion() and gfxTargetVersionOfIsa() agree with the kernel's numbering", () => {
  for (const [version, isa] of FACTS) {
    assert.equal(isaOfGfxTargetVersion(version), isa);
    assert.equal(isaOfGfxTargetVersion(String(version)), isa);
    assert.equal(gfxTargetVersionOfIsa(isa), version);
  }
  assert.deepEqual(parseGfxTargetVersion("90012"), { major: 9, minor: 0, stepping: 12 });
  assert.deepEqual(parseIsaName("gfx90c"), { major: 9, minor: 0, stepping: 12 });
});

Deno.test("isaOfGfxTargetVersion() rejects CPU nodes, out-of-range parts and non-numbers", () => {
  assertThrowsWith(() => isaOfGfxTargetVersion(0), RangeError, "0 is a CPU node");
  assertThrowsWith(() => isaOfGfxTargetVersion("0"), RangeError, "CPU node");
  assertThrowsWith(() => isaOfGfxTargetVersion(101600), RangeError, "minor 16 is above 15");
  assertThrowsWith(() => isaOfGfxTargetVersion(110016), RangeError, "stepping 16 is above 15");
  assertThrowsWith(() => isaOfGfxTargetVersion(1000000), RangeError, "major 100");
  assertThrowsWith(() => isaOfGfxTargetVersion(-110000), RangeError, "positive");
  assertThrowsWith(() => isaOfGfxTargetVersion(1.5), RangeError, "whole number");
  for (const text of ["", "0x1b", "11 0501", "-1", "1e5", "1234567890"]) {
    assertThrowsWith(() => isaOfGfxTargetVersion(text), SyntaxError, "decimal number");
  }
});

Deno.test("parseIsaName() rejects what is not an ISA name", () => {
  for (const name of ["gfx", "gfx11", "gfx110X-all", "GFX1100", "gfx11A0", "gfx01100", "sm_90"]) {
    assertThrowsWith(() => parseIsaName(name), SyntaxError, `"${name}"`);
  }
});

Deno.test("hsaOverrideOfIsa() and isaOfHsaOverride() write the parts in decimal", () => {
  assert.equal(hsaOverrideOfIsa("gfx1030"), "10.3.0");
  assert.equal(hsaOverrideOfIsa("gfx1100"), "11.0.0");
  assert.equal(hsaOverrideOfIsa("gfx90a"), "9.0.10");
  assert.equal(isaOfHsaOverride("9.0.10"), "gfx90a");
  assert.equal(isaOfHsaOverride("11.5.1"), "gfx1151");
  assertThrowsWith(() => isaOfHsaOverride("11.0"), SyntaxError, '"11.0"');
  assertThrowsWith(() => isaOfHsaOverride("gfx1100"), SyntaxError, "major>.<minor>.<stepping");
  assertThrowsWith(() => isaOfHsaOverride("10.16.0"), RangeError, "minor 16");
});

Deno.test("every ISA of the target table round-trips through gfx_target_version", () => {
  for (const isa of Object.keys(targetTable.isas)) {
    assert.equal(isaOfGfxTargetVersion(gfxTargetVersionOfIsa(isa)), isa);
    assert.equal(isaOfHsaOverride(hsaOverrideOfIsa(isa)), isa);
  }
});

Deno.test("nearestSupportedIsa() uses the table's generation entry for ISAs in no family", () => {
  assert.equal(nearestSupportedIsa("gfx1151"), "gfx1151");
  assert.equal(nearestSupportedIsa("gfx1037"), "gfx1030");
  assert.equal(nearestSupportedIsa("gfx1104"), "gfx1100");
  assert.equal(nearestSupportedIsa("gfx1013"), "gfx1010");
  assert.equal(nearestSupportedIsa("gfx909"), "gfx900");
  assert.equal(nearestSupportedIsa("gfx1300"), undefined);
  assert.equal(nearestSupportedIsa("gfx803"), undefined);
  assertThrowsWith(() => nearestSupportedIsa("gfx110X-all"), SyntaxError, "gfx110X-all");
  // Each entry names a supported ISA of its own generation.
  for (const [generation, isa] of Object.entries(targetTable.hsaOverrides)) {
    if (generation.startsWith("$")) continue;
    assert.ok(isSupportedIsa(isa), isa);
    assert.equal(`${isa.slice(0, -1)}X`, generation);
  }
});

const nix = await requireTools("Nix gfx_version tests", "nix", "nix-instantiate");
const env = nixEnv();
const GFX = `(import ${repoRoot}/nix/gfx_version.nix)`;
const TABLE = `(builtins.fromJSON (builtins.readFile ${repoRoot}/lib/releases/targets.json))`;

async function nixEval(expr: string): Promise<unknown> {
  const result = await run("nix", ["eval", "--impure", "--json", "--expr", expr], { env });
  if (result.code !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout);
}

Deno.test({
  name: "gfx_version.nix targetOfGfxVersion agrees with the TypeScript side",
  ignore: !nix,
  fn: async () => {
    const versions = [
      ...FACTS.map(([v]) => v),
      ...Object.keys(targetTable.isas).map(gfxTargetVersionOfIsa),
    ];
    const fromNix = await nixEval(
      `map ${GFX}.targetOfGfxVersion [ ${versions.map((v) => `"${v}"`).join(" ")} 110501 ]`,
    );
    assert.deepEqual(fromNix, [...versions.map((v) => isaOfGfxTargetVersion(v)), "gfx1151"]);
    const overrides = await nixEval(
      `map ${GFX}.targetOfHsaOverride [ "11.0.0" "10.3.0" "9.0.10" "11.0" "10.16.0" "gfx1100" "1.2.3.4" ]`,
    );
    assert.deepEqual(overrides, ["gfx1100", "gfx1030", "gfx90a", null, null, null, null]);
  },
});

Deno.test({
  name: "gfx_version.nix targetOfGfxVersion throws, quoting the value, for what is not a GPU's",
  ignore: !nix,
  fn: async () => {
    const cases: [string, RegExp][] = [
      ['"0"', /targetOfGfxVersion: "0" is not a gfx_target_version: .*0 is a CPU node/],
      [
        '"101600"',
        /"101600" is not a gfx_target_version: its minor \(16\) or stepping \(0\) is above 15/,
      ],
      ['"110016"', /its minor \(0\) or stepping \(16\) is above 15/],
      ['"gfx1151"', /"gfx1151" is not a gfx_target_version: expected the decimal number/],
      ['"0110501"', /"0110501" is not a gfx_target_version/],
      ["[ 1 ]", /\[1\] is not a gfx_target_version/],
    ];
    for (const [value, expected] of cases) {
      const result = await run(
        "nix-instantiate",
        ["--eval", "--strict", "--expr", `${GFX}.targetOfGfxVersion ${value}`],
        { env },
      );
      assert.notEqual(result.code, 0, value);
      assert.match(result.stderr, expected);
      assert.match(result.stderr, /error: rocm-nightly: /);
    }
  },
});

Deno.test({
  name:
    "gfx_version.nix hsaOverrideFor reads the target table's override data like nearestSupportedIsa()",
  ignore: !nix,
  fn: async () => {
    const isas = ["gfx1037", "gfx1104", "gfx1013", "gfx909", "gfx1151", "gfx1300", "gfx803"];
    const fromNix = await nixEval(
      `map (${GFX}.hsaOverrideFor ${TABLE}) [ ${isas.map((i) => `"${i}"`).join(" ")} ]`,
    );
    assert.deepEqual(
      fromNix,
      isas.map((isa) => {
        const nearest = nearestSupportedIsa(isa);
        return nearest === undefined || nearest === isa
          ? null
          : { isa: nearest, hsaOverrideGfxVersion: hsaOverrideOfIsa(nearest) };
      }),
    );
    // The flake's lib exposes both.
    const flake = `((import ${repoRoot}/flake.nix).outputs { self = null; nixpkgs = null; }).lib`;
    assert.deepEqual(
      await nixEval(
        `[ (${flake}.targetOfGfxVersion "110501") (${flake}.hsaOverrideFor "gfx1037") ]`,
      ),
      ["gfx1151", { isa: "gfx1030", hsaOverrideGfxVersion: "10.3.0" }],
    );
  },
});
