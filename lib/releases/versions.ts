/**
 * The version grammar of AMD's TheRock tarballs, and their order.
 *
 * Five shapes occur in the tarball names:
 *
 * | kind         | example                      | meaning                          |
 * | ------------ | ---------------------------- | -------------------------------- |
 * | `nightly`    | `7.12.0a20260308`            | nightly build (since 2025-10)    |
 * | `rc-nightly` | `7.0.0rc20250625`            | older nightly build              |
 * | `prerelease` | `7.0.0rc2`                   | release candidate                |
 * | `dev`        | `7.9.0.dev0+0123abcd`        | developer build of one commit    |
 * | `stable`     | `7.0.0`                      | release                          |
 *
 * Anything else is rejected: the version ends up inside URLs and flake.nix,
 * so the grammar is also the gate that keeps hostile text out of them.
 *
 * @module
 */

/** A parsed TheRock version. */
export interface TheRockVersion {
  /** The version exactly as written, e.g. `"7.12.0a20260308"`. */
  text: string;
  /** Which of the five shapes the version has. */
  kind: "nightly" | "rc-nightly" | "prerelease" | "dev" | "stable";
  /** The numeric `X.Y.Z` part. */
  base: [number, number, number];
  /** The build date `YYYYMMDD` of a nightly (`nightly` and `rc-nightly` only). */
  date?: string;
  /** The release candidate number (`prerelease` only). */
  rc?: number;
  /** The commit (hex) of a developer build (`dev` only). */
  dev?: string;
}

// Numbers without leading zeros and of a sane length; a date is eight digits,
// a release candidate number at most four.
const NUMBER = "(0|[1-9][0-9]{0,3})";
const GRAMMAR = new RegExp(
  `^${NUMBER}\\.${NUMBER}\\.${NUMBER}` +
    "(?:a([0-9]{8})|rc([0-9]{8})|rc(0|[1-9][0-9]{0,3})|\\.dev(0|[1-9][0-9]{0,3})\\+([0-9a-f]{7,64}))?$",
);

// Orders kinds of one base version the way PEP 440 (which TheRock's version
// strings follow) does: dev < alpha nightly < rc nightly < rc < release.
const KIND_RANK: Record<TheRockVersion["kind"], number> = {
  "dev": 0,
  "nightly": 1,
  "rc-nightly": 2,
  "prerelease": 3,
  "stable": 4,
};

/**
 * Parses a TheRock version string.
 *
 * @param text The version, e.g. `"7.12.0a20260308"` or `"7.9.0.dev0+0123abc"`.
 * @returns The parsed version.
 * @throws {SyntaxError} When `text` is not a version of the grammar, or a
 * nightly's date is not a calendar date.
 *
 * @example Usage
 * ```ts
 * import { parseVersion } from "./versions.ts";
 *
 * const version = parseVersion("10.0.0a20260815");
 * version.kind; // "nightly"
 * version.base; // [10, 0, 0]
 * version.date; // "20260815"
 * ```
 */
export function parseVersion(text: string): TheRockVersion {
  if (typeof text !== "string") {
    throw new TypeError(`Cannot parse version: expected a string, got ${typeof text}`);
  }
  const match = GRAMMAR.exec(text);
  if (match === null) {
    throw new SyntaxError(
      `Cannot parse version "${quoteForMessage(text)}": expected X.Y.Z, X.Y.ZaYYYYMMDD, ` +
        "X.Y.ZrcYYYYMMDD, X.Y.ZrcN or X.Y.Z.dev0+<hex>",
    );
  }
  const [, x, y, z, nightlyDate, rcDate, rc, , sha] = match;
  const base: [number, number, number] = [Number(x), Number(y), Number(z)];
  if (nightlyDate !== undefined || rcDate !== undefined) {
    const date = (nightlyDate ?? rcDate)!;
    if (!isCalendarDate(date)) {
      throw new SyntaxError(
        `Cannot parse version "${text}": "${date}" is not a calendar date (YYYYMMDD)`,
      );
    }
    return { text, kind: nightlyDate !== undefined ? "nightly" : "rc-nightly", base, date };
  }
  if (rc !== undefined) return { text, kind: "prerelease", base, rc: Number(rc) };
  if (sha !== undefined) return { text, kind: "dev", base, dev: sha };
  return { text, kind: "stable", base };
}

/**
 * Tells whether `text` is a version of the grammar (see {@linkcode parseVersion}).
 *
 * @param text The candidate version.
 * @returns `true` when {@linkcode parseVersion} would accept it.
 *
 * @example Usage
 * ```ts
 * import { isValidVersion } from "./versions.ts";
 *
 * isValidVersion("7.12.0a20260308"); // true
 * isValidVersion('7.12.0"; evil = "'); // false
 * ```
 */
export function isValidVersion(text: string): boolean {
  try {
    parseVersion(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Compares two versions for sorting, oldest first.
 *
 * When both versions carry a nightly date, the later date is newer (a nightly
 * of an older branch built later is newer than an earlier build of a newer
 * branch). Otherwise — and between builds of one date — the base version
 * decides numerically (so `10.0.0` follows `7.12.0`), then the kind (dev <
 * nightly < rc nightly < release candidate < release), then the release
 * candidate number. Versions that are still equal (two dev builds of one base,
 * say) compare as 0: break such ties by the files' modification times.
 *
 * The order mixes two clocks: among versions that all carry a date, or all
 * lack one, it is a total order; a dated and an undated version compare by
 * base version only, so a list mixing both can hold a cycle in rare cases
 * (sorting it never throws).
 *
 * @param a A version.
 * @param b Another version.
 * @returns A negative number when `a` is older, positive when newer, else 0.
 *
 * @example Usage
 * ```ts
 * import { compareVersions, parseVersion } from "./versions.ts";
 *
 * const names = ["10.0.0a20260815", "7.12.0a20260308", "7.0.0rc20250625"];
 * names.map(parseVersion).sort(compareVersions).map((v) => v.text);
 * // ["7.0.0rc20250625", "7.12.0a20260308", "10.0.0a20260815"]
 * ```
 */
export function compareVersions(a: TheRockVersion, b: TheRockVersion): number {
  if (a.date !== undefined && b.date !== undefined && a.date !== b.date) {
    return a.date < b.date ? -1 : 1;
  }
  for (let i = 0; i < 3; i++) {
    const difference = a.base[i]! - b.base[i]!;
    if (difference !== 0) return Math.sign(difference);
  }
  const kind = KIND_RANK[a.kind] - KIND_RANK[b.kind];
  if (kind !== 0) return Math.sign(kind);
  return Math.sign((a.rc ?? 0) - (b.rc ?? 0));
}

function isCalendarDate(date: string): boolean {
  const year = Number(date.slice(0, 4));
  const month = Number(date.slice(4, 6));
  const day = Number(date.slice(6, 8));
  if (year < 2000 || month < 1 || month > 12 || day < 1) return false;
  return day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

// Error messages quote the offending text, but a hostile value may be huge or
// hold control characters: show a bounded, escaped excerpt.
function quoteForMessage(text: string): string {
  const escaped = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
  return escaped.slice(1, -1);
}
