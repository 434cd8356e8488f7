import assert from "node:assert/strict";
import {
  candidateFamilies,
  currentFamilyName,
  isKnownTarget,
  productsOf,
  resolveTarget,
  targetTable,
} from "../../lib/releases/targets.ts";
import { isValidFamily } from "../../lib/releases/tarball_name.ts";

Deno.test("targetTable is consistent with the tarball name grammar", () => {
  for (const family of Object.keys(targetTable.families)) assert.ok(isValidFamily(family), family);
  assert.ok(isKnownTarget(targetTable.defaultTarget));
  // Every ISA is served by some family, and its fallback ends with multiarch.
  for (const [isa, info] of Object.entries(targetTable.isas)) {
    assert.ok(info.fallback.length > 0, isa);
    assert.equal(info.fallback.at(-1), "multiarch", isa);
    assert.ok(targetTable.families.multiarch!.isas.includes(isa), isa);
  }
});

Deno.test("currentFamilyName() follows the renames", () => {
  assert.equal(currentFamilyName("gfx110X-dgpu"), "gfx110X-all");
  assert.equal(currentFamilyName("gfx103X-dgpu"), "gfx103X-all");
  assert.equal(currentFamilyName("gfx1151"), "gfx1151");
  assert.equal(currentFamilyName("gfx9999-new"), "gfx9999-new");
});

Deno.test("resolveTarget() maps ISAs and families to the family to fetch", () => {
  assert.equal(resolveTarget("gfx1100").family, "gfx110X-all");
  assert.deepEqual(resolveTarget("gfx1032").isas.length, 7);
  assert.equal(resolveTarget("gfx110X-dgpu").family, "gfx110X-all");
  assert.equal(resolveTarget("gfx1151").family, "gfx1151");
  assert.equal(resolveTarget("gfx942").family, "gfx94X-dcgpu");
  // With a listing: the first candidate the index has.
  const multi = new Set(["multiarch"]);
  assert.equal(resolveTarget("gfx1151", { available: multi }).family, "multiarch");
  const old = new Set(["gfx110X-dgpu"]);
  assert.equal(resolveTarget("gfx1101", { available: old }).family, "gfx110X-dgpu");
  assert.equal(resolveTarget("gfx1151", { available: new Set() }).family, "gfx1151");
  assert.throws(() => resolveTarget("gfx9999"), RangeError);
});

Deno.test("candidateFamilies() lists without duplicates", () => {
  assert.deepEqual(candidateFamilies("multiarch"), ["multiarch"]);
  assert.deepEqual(candidateFamilies("gfx906"), ["gfx906", "gfx90X-dcgpu", "multiarch"]);
  // A family never falls back to multiarch (as in nix/resolve.nix): it names one tarball.
  assert.deepEqual(candidateFamilies("gfx110X-dgpu"), ["gfx110X-dgpu", "gfx110X-all"]);
  assert.deepEqual(candidateFamilies("gfx94X-dcgpu"), ["gfx94X-dcgpu"]);
});

Deno.test("productsOf() names the GPUs of a family", () => {
  assert.ok(productsOf("gfx110X-all").some((p) => p.includes("7900")));
  assert.deepEqual(productsOf("nope"), []);
});

Deno.test("targetTable families hold TheRock's members (cmake/therock_amdgpu_targets.cmake)", () => {
  const isas = (family: string): string[] | undefined => targetTable.families[family]?.isas;
  assert.deepEqual(isas("gfx110X-dgpu"), ["gfx1100", "gfx1101", "gfx1102"]);
  assert.deepEqual(isas("gfx110X-all"), ["gfx1100", "gfx1101", "gfx1102", "gfx1103"]);
  assert.deepEqual(isas("gfx103X-dgpu"), ["gfx1030", "gfx1031", "gfx1032", "gfx1034"]);
  assert.deepEqual(isas("gfx103X-all"), [
    "gfx1030",
    "gfx1031",
    "gfx1032",
    "gfx1033",
    "gfx1034",
    "gfx1035",
    "gfx1036",
  ]);
  assert.deepEqual(isas("gfx101X-dgpu"), ["gfx1010", "gfx1011", "gfx1012"]);
  assert.deepEqual(isas("gfx120X-all"), ["gfx1200", "gfx1201"]);
  assert.deepEqual(productsOf("gfx1153"), ["Radeon 820M"]);
});

Deno.test("candidateFamilies() never sends an iGPU through a -dgpu family", () => {
  for (const igpu of ["gfx1033", "gfx1035", "gfx1036"]) {
    assert.deepEqual(candidateFamilies(igpu), ["gfx103X-all", "multiarch"], igpu);
  }
  assert.deepEqual(candidateFamilies("gfx1103"), ["gfx110X-all", "multiarch"]);
  for (const dgpu of ["gfx1030", "gfx1031", "gfx1032", "gfx1034"]) {
    assert.deepEqual(candidateFamilies(dgpu), ["gfx103X-all", "gfx103X-dgpu", "multiarch"], dgpu);
  }
  for (const dgpu of ["gfx1100", "gfx1101", "gfx1102"]) {
    assert.deepEqual(candidateFamilies(dgpu), ["gfx110X-all", "gfx110X-dgpu", "multiarch"], dgpu);
  }
  // Every family of every chain carries the ISA's kernels.
  for (const [isa, info] of Object.entries(targetTable.isas)) {
    for (const family of info.fallback) {
      assert.ok(targetTable.families[family]!.isas.includes(isa), `${isa} via ${family}`);
    }
  }
  // On an old index with only gfx110X-dgpu, gfx1103 takes multiarch, not the dGPU tarball.
  const old = new Set(["gfx110X-dgpu", "multiarch"]);
  assert.equal(resolveTarget("gfx1103", { available: old }).family, "multiarch");
});
