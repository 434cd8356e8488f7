import assert from "node:assert/strict";
import { tokenCoversIsa, tokensCoveringIsa } from "../../lib/releases/isa_files.ts";
import { targetTable } from "../../lib/releases/targets.ts";

Deno.test("tokenCoversIsa() knows LLVM's generic targets by their members", () => {
  const covered = (token: string): string[] =>
    Object.keys(targetTable.isas).concat(["gfx902", "gfx904", "gfx909", "gfx940", "gfx941"])
      .filter((isa) => tokenCoversIsa(token, isa)).sort();
  assert.deepEqual(covered("gfx9-generic"), [
    "gfx900",
    "gfx902",
    "gfx904",
    "gfx906",
    "gfx909",
    "gfx90c",
  ]);
  assert.deepEqual(covered("gfx9-4-generic"), ["gfx940", "gfx941", "gfx942", "gfx950"]);
  assert.ok(tokenCoversIsa("gfx11-generic", "gfx1153"));
  assert.ok(!tokenCoversIsa("gfx12-generic", "gfx1250"));
});

Deno.test("tokensCoveringIsa() lists the ISA, its family token and its generic targets", () => {
  assert.ok(tokensCoveringIsa("gfx950").includes("gfx9-4-generic"));
  assert.ok(!tokensCoveringIsa("gfx950").includes("gfx9-generic"));
  assert.ok(!tokensCoveringIsa("gfx908").includes("gfx9-generic"));
  assert.ok(tokensCoveringIsa("gfx90c").includes("gfx9-generic"));
  assert.ok(tokensCoveringIsa("gfx1151").includes("gfx115X"));
  for (const isa of Object.keys(targetTable.isas)) {
    const tokens = tokensCoveringIsa(isa);
    assert.equal(tokens[0], isa);
    assert.ok(tokens.every((token) => tokenCoversIsa(token, isa)), isa);
  }
});
