import assert from "node:assert/strict";
import {
  candidateFamilies,
  currentFamilyName,
  isKnownTarget,
  productsOf,
  resolveTarget,
  targetTable,
} from "../lib/targets.ts";
import { isValidFamily } from "../lib/tarball_name.ts";

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
