/**
 * Which files of a ROCm tree are specific to GPU instruction sets (ISAs).
 *
 * TheRock names its per-ISA device code after the ISA (`gfx1100`, `gfx90a`),
 * after an ISA family (`gfx110X`) or after a generic target (`gfx11-generic`):
 * `.kpack/blas_lib_gfx1100.kpack`, `Kernels.so-000-gfx1151.hsaco`,
 * `extop_gfx1100.co`, `gfx1100_60.kdb`, `.kpack/rccl_gfx110X.kpack`. Device
 * code whose path carries such a token is needed only on the GPUs the token
 * covers; which files are device code is lib/releases/kernel_files.ts's table (a
 * header or CMake file named after an ISA is not).
 *
 * Family membership comes from lib/releases/targets.json (through lib/releases/targets.ts) (the family `gfx110X-all`
 * gives the token `gfx110X`); a family token missing from the table covers the
 * ISAs it spells (`X` standing for one digit or letter).
 *
 * @module
 */

import { unknownTargetMessage } from "./target_names.ts";
import { targetTable as targets } from "./targets.ts";

// An ISA (gfx900, gfx90a, gfx1151), a family (gfx90X, gfx110X) or a generic
// target (gfx11-generic, gfx10-3-generic), not inside a longer word.
const TOKEN =
  /(?<![0-9A-Za-z])gfx(\d{1,2}(?:-\d)?-generic|\d{3,4}|\d{2}[a-f]|\d{2,3}[Xx])(?![0-9A-Za-z])/g;
const ISA = /^gfx(?:\d{3,4}|\d{2}[a-f])$/;

/**
 * The GPU ISA tokens in a path, normalized (`gfx110x` → `gfx110X`), sorted and
 * without duplicates. An empty list means the path is not ISA-specific.
 *
 * @param path A file path (any part of it may carry a token).
 * @returns The tokens found.
 *
 * @example Usage
 * ```ts
 * import { isaTokens } from "./isa_files.ts";
 *
 * isaTokens(".kpack/blas_lib_gfx1100.kpack"); // ["gfx1100"]
 * isaTokens("lib/rocblas/library/TensileLibrary_gfx110X.dat"); // ["gfx110X"]
 * isaTokens("lib/libamdhip64.so"); // []
 * ```
 */
export function isaTokens(path: string): string[] {
  const found = new Set<string>();
  for (const match of path.matchAll(TOKEN)) {
    const token = match[0];
    found.add(/[Xx]$/.test(token) ? `${token.slice(0, -1)}X` : token);
  }
  return [...found].sort();
}

/**
 * Whether a token (`gfx1100`, `gfx110X`, `gfx11-generic`) covers an ISA.
 *
 * @param token A token from {@linkcode isaTokens}.
 * @param isa An ISA such as `gfx1100`.
 * @returns `true` when device code named by the token runs on the ISA.
 *
 * @example Usage
 * ```ts
 * import { tokenCoversIsa } from "./isa_files.ts";
 *
 * tokenCoversIsa("gfx110X", "gfx1101"); // true
 * tokenCoversIsa("gfx1100", "gfx1151"); // false
 * ```
 */
export function tokenCoversIsa(token: string, isa: string): boolean {
  if (token === isa) return true;
  if (token.endsWith("X")) {
    const members = familyMembers.get(token);
    if (members !== undefined) return members.has(isa);
    const stem = token.slice(0, -1);
    return isa.length === token.length && isa.startsWith(stem);
  }
  const members = GENERIC_TARGETS[token];
  if (members !== undefined) return members.includes(isa);
  // A generic target LLVM added after this table: assume it spans its version.
  const generic = /^gfx(\d{1,2})(?:-(\d))?-generic$/.exec(token);
  if (generic === null || !ISA.test(isa)) return false;
  const [major, minor] = majorMinor(isa);
  if (major !== generic[1]) return false;
  return generic[2] === undefined || minor === generic[2];
}

/**
 * The ISAs a target names: an ISA of lib/releases/targets.json (`gfx1151`) or one of its
 * families (`gfx110X-all`), whose ISAs are all included.
 *
 * @param target An ISA or a family name.
 * @returns The ISAs, sorted.
 * @throws {RangeError} When the target table knows neither an ISA nor a family by that name
 * (the message names the nearest one).
 *
 * @example Usage
 * ```ts
 * import { targetIsas } from "./isa_files.ts";
 *
 * targetIsas("gfx1151"); // ["gfx1151"]
 * targetIsas("gfx120X-all"); // ["gfx1200", "gfx1201"]
 * ```
 */
export function targetIsas(target: string): string[] {
  if (Object.hasOwn(targets.isas, target) && ISA.test(target)) return [target];
  const family = targets.families[target];
  if (Object.hasOwn(targets.families, target) && family !== undefined) {
    return [...family.isas].sort();
  }
  throw new RangeError(unknownTargetMessage(target));
}

/**
 * Whether a file carrying `tokens` belongs in the image for `isas`.
 *
 * @param tokens The file's tokens from {@linkcode isaTokens} (empty: common to all targets).
 * @param isas The target's ISAs from {@linkcode targetIsas}.
 * @returns `true` when some token covers some ISA, or when there are no tokens.
 *
 * @example Usage
 * ```ts
 * import { tokensMatchTarget } from "./isa_files.ts";
 *
 * tokensMatchTarget(["gfx110X"], ["gfx1100"]); // true
 * tokensMatchTarget(["gfx1151"], ["gfx1100"]); // false
 * ```
 */
export function tokensMatchTarget(tokens: readonly string[], isas: readonly string[]): boolean {
  if (tokens.length === 0) return true;
  return tokens.some((token) => isas.some((isa) => tokenCoversIsa(token, isa)));
}

/**
 * LLVM's generic targets and the ISAs whose code objects they run on
 * (AMDGPUUsage, "Generic processors"). They do not follow the version digits:
 * gfx9-generic leaves out gfx908/gfx90a, and gfx9-4-generic takes in gfx950.
 */
const GENERIC_TARGETS: Readonly<Record<string, readonly string[]>> = {
  "gfx9-generic": ["gfx900", "gfx902", "gfx904", "gfx906", "gfx909", "gfx90c"],
  "gfx9-4-generic": ["gfx940", "gfx941", "gfx942", "gfx950"],
  "gfx10-1-generic": ["gfx1010", "gfx1011", "gfx1012", "gfx1013"],
  "gfx10-3-generic": ["gfx1030", "gfx1031", "gfx1032", "gfx1033", "gfx1034", "gfx1035", "gfx1036"],
  "gfx11-generic": [
    "gfx1100",
    "gfx1101",
    "gfx1102",
    "gfx1103",
    "gfx1150",
    "gfx1151",
    "gfx1152",
    "gfx1153",
  ],
  "gfx12-generic": ["gfx1200", "gfx1201"],
};

/**
 * The tokens that can cover an ISA: the ISA itself, its family token and
 * the generic targets that include it (check-output builds one pattern of
 * these per ISA).
 *
 * @param isa An ISA such as `gfx950`.
 * @returns The tokens, each confirmed by {@linkcode tokenCoversIsa}.
 *
 * @example Usage
 * ```ts
 * import { tokensCoveringIsa } from "./isa_files.ts";
 *
 * tokensCoveringIsa("gfx950").includes("gfx9-4-generic"); // true
 * ```
 */
export function tokensCoveringIsa(isa: string): string[] {
  const [major, minor] = majorMinor(isa);
  const candidates = [
    isa,
    `${isa.slice(0, -1)}X`,
    `gfx${major}-generic`,
    `gfx${major}-${minor}-generic`,
    ...Object.keys(GENERIC_TARGETS),
  ];
  return [...new Set(candidates)].filter((token) => tokenCoversIsa(token, isa));
}

const familyMembers: Map<string, Set<string>> = (() => {
  const members = new Map<string, Set<string>>();
  for (const [name, family] of Object.entries(targets.families)) {
    const token = name.split("-")[0] ?? name;
    if (!token.endsWith("X")) continue;
    const set = members.get(token) ?? new Set<string>();
    for (const isa of family.isas) set.add(isa);
    members.set(token, set);
  }
  return members;
})();

// gfx9xx has a one-digit major version, gfx1xxx a two-digit one.
function majorMinor(isa: string): [string, string] {
  return isa.length === 6 ? [isa.slice(3, 4), isa.slice(4, 5)] : [isa.slice(3, 5), isa.slice(5, 6)];
}
