/**
 * Typed access to the target table, lib/releases/targets.json: the GPU families AMD
 * builds TheRock tarballs for, the ISAs each covers, the products behind each
 * ISA, renamed families, and the order of families to try per ISA. Nix reads
 * the same file with `builtins.fromJSON`, so the table has one source.
 *
 * @module
 */

import { parseIsaName } from "./gfx_version.ts";
import table from "./targets.json" with { type: "json" };

/** One family of the table. */
export interface FamilyInfo {
  /** The ISAs the family's tarball has code for. */
  isas: string[];
  /** The family's current name, when AMD renamed it. */
  renamedTo?: string;
  /** The single-ISA families it was split into, when AMD split it. */
  splitInto?: string[];
}

/** One ISA of the table. */
export interface IsaInfo {
  /** Marketing names of the GPUs with this ISA. */
  products: string[];
  /** The families whose tarballs serve this ISA, best first. */
  fallback: string[];
}

/** The whole target table. */
export interface TargetTable {
  /** The target a flake builds when none is named. */
  defaultTarget: string;
  /** Families by name. */
  families: Record<string, FamilyInfo>;
  /** ISAs by name. */
  isas: Record<string, IsaInfo>;
  /**
   * For ISAs in no family: the supported ISA whose code each generation
   * (`gfx103X`: the ISA name with its stepping digit as X) can run under
   * `HSA_OVERRIDE_GFX_VERSION`. See {@linkcode nearestSupportedIsa}.
   */
  hsaOverrides: Record<string, string>;
}

/**
 * The target table of lib/releases/targets.json.
 *
 * @example Usage
 * ```ts
 * import { targetTable } from "./targets.ts";
 *
 * targetTable.families["gfx110X-all"]?.isas; // ["gfx1100", "gfx1101", "gfx1102", "gfx1103"]
 * ```
 */
export const targetTable: TargetTable = checkTable(table);

/** A target resolved to the family whose tarball provides it. */
export interface ResolvedTarget {
  /** The name that was asked for (an ISA or a family). */
  requested: string;
  /** The family to fetch, renames followed. */
  family: string;
  /** The ISAs that family covers. */
  isas: string[];
}

/**
 * Tells whether `name` is a family or an ISA of the table.
 *
 * @param name The candidate, e.g. `"gfx1100"` or `"gfx110X-all"`.
 * @returns `true` when the table knows it.
 *
 * @example Usage
 * ```ts
 * import { isKnownTarget } from "./targets.ts";
 *
 * isKnownTarget("gfx1100"); // true
 * isKnownTarget("gfx9999"); // false
 * ```
 */
export function isKnownTarget(name: string): boolean {
  return Object.hasOwn(targetTable.families, name) || Object.hasOwn(targetTable.isas, name);
}

/**
 * Follows a family's renames to its current name.
 *
 * @param family The family, e.g. `"gfx110X-dgpu"`.
 * @returns The current name, e.g. `"gfx110X-all"` (unknown families unchanged).
 *
 * @example Usage
 * ```ts
 * import { currentFamilyName } from "./targets.ts";
 *
 * currentFamilyName("gfx103X-dgpu"); // "gfx103X-all"
 * ```
 */
export function currentFamilyName(family: string): string {
  let name = family;
  // The table is data: bound the walk in case someone writes a cycle.
  for (let hops = 0; hops < 8; hops++) {
    const next = Object.hasOwn(targetTable.families, name)
      ? targetTable.families[name]!.renamedTo
      : undefined;
    if (next === undefined) return name;
    name = next;
  }
  throw new RangeError(`Cannot resolve family "${family}": renames form a cycle`);
}

/**
 * The families whose tarballs can serve an ISA or family, best first: for an
 * ISA its fallback list (which ends with `multiarch`), for a family the family
 * itself then its current name (as nix/resolve.nix does).
 *
 * @param name An ISA or family.
 * @returns The candidate families, without duplicates.
 * @throws {RangeError} When the table knows no such ISA or family.
 *
 * @example Usage
 * ```ts
 * import { candidateFamilies } from "./targets.ts";
 *
 * candidateFamilies("gfx1100"); // ["gfx110X-all", "gfx110X-dgpu", "multiarch"]
 * candidateFamilies("gfx1103"); // ["gfx110X-all", "multiarch"]
 * candidateFamilies("gfx110X-dgpu"); // ["gfx110X-dgpu", "gfx110X-all"]
 * ```
 */
export function candidateFamilies(name: string): string[] {
  let candidates: string[];
  if (Object.hasOwn(targetTable.isas, name)) {
    candidates = targetTable.isas[name]!.fallback;
  } else if (Object.hasOwn(targetTable.families, name)) {
    candidates = [name, currentFamilyName(name)];
  } else {
    throw new RangeError(
      `Cannot resolve target "${name}": not an ISA or family of the target table ` +
        "(list them: detect --list-targets)",
    );
  }
  return [...new Set(candidates)];
}

/**
 * Resolves an ISA or family to the family to fetch: a family is renamed to
 * its current name; an ISA goes to the first family of its fallback list.
 * With `available`, the first candidate family that is available wins.
 *
 * @param name An ISA (`"gfx1100"`) or family (`"gfx110X-dgpu"`).
 * @param options `available`: the families an index offers.
 * @returns The family and the ISAs it covers.
 * @throws {RangeError} When the table knows no such target.
 *
 * @example Usage
 * ```ts
 * import { resolveTarget } from "./targets.ts";
 *
 * resolveTarget("gfx1100").family; // "gfx110X-all"
 * resolveTarget("gfx1151", { available: new Set(["multiarch"]) }).family; // "multiarch"
 * ```
 */
export function resolveTarget(
  name: string,
  options: { available?: ReadonlySet<string> } = {},
): ResolvedTarget {
  const candidates = candidateFamilies(name);
  const preferred = Object.hasOwn(targetTable.families, name)
    ? currentFamilyName(name)
    : currentFamilyName(candidates[0]!);
  const family = options.available === undefined
    ? preferred
    : (candidates.find((c) => options.available!.has(c)) ?? preferred);
  return { requested: name, family, isas: targetTable.families[family]?.isas ?? [] };
}

/**
 * The products (GPU names) a family serves, for messages and docs.
 *
 * @param family A family.
 * @returns The product names of its ISAs (empty for unknown families).
 *
 * @example Usage
 * ```ts
 * import { productsOf } from "./targets.ts";
 *
 * productsOf("gfx1151"); // ["Radeon 8060S (Strix Halo)"]
 * ```
 */
export function productsOf(family: string): string[] {
  const isas = Object.hasOwn(targetTable.families, family)
    ? targetTable.families[family]!.isas
    : [];
  return isas.flatMap((isa) => targetTable.isas[isa]?.products ?? []);
}

/**
 * Tells whether AMD ships code for an ISA: whether a family of the table
 * lists it.
 *
 * @param isa The ISA, e.g. `"gfx1100"`.
 * @returns `true` when a family's tarball has code for it.
 *
 * @example Usage
 * ```ts
 * import { isSupportedIsa } from "./targets.ts";
 *
 * isSupportedIsa("gfx1100"); // true
 * isSupportedIsa("gfx1013"); // false
 * ```
 */
export function isSupportedIsa(isa: string): boolean {
  return Object.values(targetTable.families).some((family) => family.isas.includes(isa));
}

/**
 * The supported ISA whose code an ISA in no family can run, unsupported by
 * AMD, with `HSA_OVERRIDE_GFX_VERSION` set to it: the table's choice for the
 * ISA's generation (`hsaOverrides` of lib/releases/targets.json, keyed like `gfx103X`).
 *
 * @param isa The ISA, e.g. `"gfx1013"`.
 * @returns The nearest supported ISA, or `undefined` when the table has none
 * for its generation (a supported ISA is its own nearest).
 * @throws {SyntaxError} When `isa` is not an ISA name.
 *
 * @example Usage
 * ```ts
 * import { nearestSupportedIsa } from "./targets.ts";
 *
 * nearestSupportedIsa("gfx1013"); // "gfx1010"
 * nearestSupportedIsa("gfx1151"); // "gfx1151"
 * ```
 */
export function nearestSupportedIsa(isa: string): string | undefined {
  parseIsaName(isa);
  if (isSupportedIsa(isa)) return isa;
  const generation = `${isa.slice(0, -1)}X`;
  return Object.hasOwn(targetTable.hsaOverrides, generation)
    ? targetTable.hsaOverrides[generation]
    : undefined;
}

// The JSON is part of the repository, but Nix and people edit it too: catch a
// broken table at load time instead of as odd behaviour later.
function checkTable(data: unknown): TargetTable {
  const fail = (detail: string): never => {
    throw new TypeError(`Cannot load lib/releases/targets.json: ${detail}`);
  };
  const t = data as Partial<TargetTable>;
  if (typeof t !== "object" || t === null) fail("not an object");
  if (typeof t.defaultTarget !== "string") fail("defaultTarget is not a string");
  if (typeof t.families !== "object" || typeof t.isas !== "object") fail("no families/isas");
  const families = t.families!;
  const isas = t.isas!;
  for (const [name, family] of Object.entries(families)) {
    if (!Array.isArray(family.isas)) fail(`families.${name}.isas is not a list`);
    for (const isa of family.isas) {
      if (!Object.hasOwn(isas, isa)) fail(`families.${name} names unknown ISA "${isa}"`);
    }
    if (family.renamedTo !== undefined && !Object.hasOwn(families, family.renamedTo)) {
      fail(`families.${name}.renamedTo names unknown family "${family.renamedTo}"`);
    }
  }
  for (const [name, isa] of Object.entries(isas)) {
    if (!Array.isArray(isa.products) || !Array.isArray(isa.fallback)) {
      fail(`isas.${name} needs products and fallback lists`);
    }
    for (const family of isa.fallback) {
      if (!Object.hasOwn(families, family)) fail(`isas.${name}.fallback names "${family}"`);
      // A family without the ISA's kernels cannot serve it (gfx1103 is not in gfx110X-dgpu).
      if (!families[family]!.isas.includes(name)) {
        fail(`isas.${name}.fallback names "${family}", which lacks ${name}`);
      }
    }
  }
  if (typeof t.hsaOverrides !== "object" || t.hsaOverrides === null) fail("no hsaOverrides");
  for (const [generation, isa] of Object.entries(t.hsaOverrides!)) {
    if (generation.startsWith("$")) continue;
    if (!/^gfx[1-9][0-9]?[0-9a-f]X$/.test(generation)) {
      fail(`hsaOverrides key "${generation}" is not a generation like gfx103X`);
    }
    const inFamily = Object.values(families).some((family) => family.isas.includes(isa));
    if (!isa.startsWith(generation.slice(0, -1)) || !inFamily) {
      fail(`hsaOverrides.${generation} = "${isa}" is not a supported ISA of that generation`);
    }
  }
  if (!Object.hasOwn(families, t.defaultTarget!) && !Object.hasOwn(isas, t.defaultTarget!)) {
    fail(`defaultTarget "${t.defaultTarget}" is not a family or ISA`);
  }
  return t as TargetTable;
}
