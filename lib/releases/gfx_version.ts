/**
 * The two spellings of an AMD GPU instruction set: the kernel's
 * `gfx_target_version` number (KFD topology) and the ISA name LLVM and
 * TheRock use. The number is major·10000 + minor·100 + stepping; the name is
 * `gfx` + the major in decimal + the minor and the stepping as one hex digit
 * each: 110501 is gfx1151, 90010 is gfx90a. ROCm's `HSA_OVERRIDE_GFX_VERSION`
 * writes the same three parts in decimal: `11.5.1`.
 *
 * A minor or stepping above 15 has no ISA name, so it is rejected, as is 0
 * (the value of a CPU node).
 *
 * nix/gfx_version.nix does the same conversion in pure Nix.
 *
 * @module
 */

/** An ISA's version, the three parts of a `gfx_target_version`. */
export interface GfxVersion {
  /** The major version, e.g. 11 for gfx1151. */
  major: number;
  /** The minor version, 0–15, e.g. 5 for gfx1151. */
  minor: number;
  /** The stepping, 0–15, e.g. 1 for gfx1151 or 10 for gfx90a. */
  stepping: number;
}

const ISA_NAME = /^gfx([1-9][0-9]?)([0-9a-f])([0-9a-f])$/;
const MAX_MAJOR = 99;

/**
 * Splits a KFD `gfx_target_version` into major, minor and stepping.
 *
 * @example Usage
 * ```ts
 * import { parseGfxTargetVersion } from "./gfx_version.ts";
 *
 * parseGfxTargetVersion("90010"); // { major: 9, minor: 0, stepping: 10 }
 * ```
 *
 * @param value The number, or its decimal text as sysfs writes it.
 * @returns The three parts.
 * @throws {SyntaxError} When text is not a plain decimal number.
 * @throws {RangeError} When the value is 0 (a CPU node), or its major is
 * above 99 or its minor or stepping above 15 (no ISA name can say them).
 */
export function parseGfxTargetVersion(value: number | string): GfxVersion {
  let number: number;
  if (typeof value === "string") {
    if (!/^[0-9]{1,9}$/.test(value)) {
      throw new SyntaxError(
        `Invalid gfx_target_version "${value}": expected a decimal number such as 110501`,
      );
    }
    number = Number(value);
  } else {
    number = value;
  }
  if (!Number.isSafeInteger(number) || number <= 0) {
    throw new RangeError(
      `Invalid gfx_target_version ${value}: expected a positive whole number (0 is a CPU node)`,
    );
  }
  const version = {
    major: Math.floor(number / 10000),
    minor: Math.floor(number / 100) % 100,
    stepping: number % 100,
  };
  checkParts(version, `gfx_target_version ${value}`);
  return version;
}

/**
 * The ISA name of a KFD `gfx_target_version`.
 *
 * @example Usage
 * ```ts
 * import { isaOfGfxTargetVersion } from "./gfx_version.ts";
 *
 * isaOfGfxTargetVersion(110501); // "gfx1151"
 * isaOfGfxTargetVersion("90010"); // "gfx90a"
 * ```
 *
 * @param value The number, or its decimal text as sysfs writes it.
 * @returns The ISA name, e.g. `"gfx1100"`.
 * @throws {SyntaxError} When text is not a plain decimal number.
 * @throws {RangeError} When the value has no ISA name (see
 * {@linkcode parseGfxTargetVersion}).
 */
export function isaOfGfxTargetVersion(value: number | string): string {
  const { major, minor, stepping } = parseGfxTargetVersion(value);
  return `gfx${major}${minor.toString(16)}${stepping.toString(16)}`;
}

/**
 * Splits an ISA name into major, minor and stepping.
 *
 * @example Usage
 * ```ts
 * import { parseIsaName } from "./gfx_version.ts";
 *
 * parseIsaName("gfx942"); // { major: 9, minor: 4, stepping: 2 }
 * ```
 *
 * @param isa The ISA, e.g. `"gfx1151"` (lower-case hex digits, as LLVM writes it).
 * @returns The three parts.
 * @throws {SyntaxError} When `isa` is not an ISA name.
 */
export function parseIsaName(isa: string): GfxVersion {
  const match = ISA_NAME.exec(isa);
  if (match === null) {
    throw new SyntaxError(
      `Invalid ISA name "${isa}": expected gfx<major><minor hex digit><stepping hex digit>, e.g. gfx1151 or gfx90a`,
    );
  }
  return {
    major: Number(match[1]),
    minor: parseInt(match[2]!, 16),
    stepping: parseInt(match[3]!, 16),
  };
}

/**
 * The KFD `gfx_target_version` of an ISA name.
 *
 * @example Usage
 * ```ts
 * import { gfxTargetVersionOfIsa } from "./gfx_version.ts";
 *
 * gfxTargetVersionOfIsa("gfx1151"); // 110501
 * gfxTargetVersionOfIsa("gfx90a"); // 90010
 * ```
 *
 * @param isa The ISA name.
 * @returns major·10000 + minor·100 + stepping.
 * @throws {SyntaxError} When `isa` is not an ISA name.
 */
export function gfxTargetVersionOfIsa(isa: string): number {
  const { major, minor, stepping } = parseIsaName(isa);
  return major * 10000 + minor * 100 + stepping;
}

/**
 * The `HSA_OVERRIDE_GFX_VERSION` value that makes ROCm treat a GPU as `isa`:
 * its three parts in decimal.
 *
 * @example Usage
 * ```ts
 * import { hsaOverrideOfIsa } from "./gfx_version.ts";
 *
 * hsaOverrideOfIsa("gfx1030"); // "10.3.0"
 * hsaOverrideOfIsa("gfx90a"); // "9.0.10"
 * ```
 *
 * @param isa The ISA name.
 * @returns `major.minor.stepping`.
 * @throws {SyntaxError} When `isa` is not an ISA name.
 */
export function hsaOverrideOfIsa(isa: string): string {
  const { major, minor, stepping } = parseIsaName(isa);
  return `${major}.${minor}.${stepping}`;
}

/**
 * The ISA an `HSA_OVERRIDE_GFX_VERSION` value stands for.
 *
 * @example Usage
 * ```ts
 * import { isaOfHsaOverride } from "./gfx_version.ts";
 *
 * isaOfHsaOverride("11.0.0"); // "gfx1100"
 * ```
 *
 * @param value The value, e.g. `"10.3.0"`.
 * @returns The ISA name.
 * @throws {SyntaxError} When `value` is not three dot-separated decimal numbers.
 * @throws {RangeError} When a part has no ISA name (major above 99, minor or
 * stepping above 15).
 */
export function isaOfHsaOverride(value: string): string {
  const match = /^([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{1,2})$/.exec(value);
  if (match === null) {
    throw new SyntaxError(
      `Invalid HSA_OVERRIDE_GFX_VERSION "${value}": expected <major>.<minor>.<stepping> in decimal, e.g. 11.0.0`,
    );
  }
  const version = { major: Number(match[1]), minor: Number(match[2]), stepping: Number(match[3]) };
  checkParts(version, `HSA_OVERRIDE_GFX_VERSION "${value}"`);
  return `gfx${version.major}${version.minor.toString(16)}${version.stepping.toString(16)}`;
}

function checkParts(version: GfxVersion, what: string): void {
  if (version.major < 1 || version.major > MAX_MAJOR) {
    throw new RangeError(`Invalid ${what}: major ${version.major} is not 1 to ${MAX_MAJOR}`);
  }
  for (const part of ["minor", "stepping"] as const) {
    if (version[part] > 15) {
      throw new RangeError(
        `Invalid ${what}: ${part} ${
          version[part]
        } is above 15 (an ISA name writes it as one hex digit)`,
      );
    }
  }
}
