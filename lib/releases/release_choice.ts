/**
 * Choosing the release to pin: one version for every tracked target.
 *
 * A flake pins one version for all its targets, so the version chosen is the
 * newest one the index offers for every tracked target that the index carries
 * at all. A target the index does not carry in any version (the multi-arch
 * index has no per-family tarballs, say) does not hold the others back: it is
 * reported in `absent` and pinned to `null` ("not available"), unless the
 * caller marked it `required`, in which case the choice is refused. When the
 * index carries none of the targets, the choice is refused too.
 *
 * @module
 */

import type { IndexEntry } from "./index_listing.ts";
import { compareVersions, parseVersion, type TheRockVersion } from "./versions.ts";

/** Options for {@linkcode chooseRelease}. */
export interface ChooseReleaseOptions {
  /** Pin exactly this version instead of the newest one. */
  version?: string;
  /**
   * Targets that must be in the index (those named on the command line).
   *
   * @default {[]}
   */
  required?: string[];
}

/** A newer version that some targets lack. */
export interface HeldBack {
  /** The newest version the index has for any tracked target. */
  version: string;
  /** The tracked targets that do not have it. */
  by: string[];
}

/** The outcome of {@linkcode chooseRelease}. */
export interface ReleaseChoice {
  /** The version to pin. */
  version: string;
  /** Per tracked target: its tarball of that version, or `null` when the index lacks the target. */
  entries: Record<string, IndexEntry | null>;
  /** Tracked targets the index has in no version at all. */
  absent: string[];
  /** Set when a newer version exists for some but not all targets. */
  heldBack?: HeldBack;
}

/**
 * Picks the version to pin for a set of targets (families) from a listing.
 *
 * Versions are ordered by {@linkcode compareVersions}; ties (two dev builds of
 * one base) go to the later modification time, then to the name.
 *
 * @param entries The tarballs of the index.
 * @param targets The tracked targets: family names as they appear in tarball names.
 * @param options `version` to pin exactly, `required` targets.
 * @returns The version, the tarball per target, and what held back a newer one.
 * @throws {Error} When no version is available for every target carried by the
 * index, the index carries none of the targets or a required one, or
 * `options.version` is missing for some target.
 * @throws {SyntaxError} When `options.version` is not a TheRock version.
 *
 * @example Usage
 * ```ts
 * import { chooseRelease } from "./release_choice.ts";
 * import { parseIndexPage } from "./index_listing.ts";
 *
 * const names = [
 *   "therock-dist-linux-gfx1151-7.12.0a20260309.tar.gz",
 *   "therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz",
 *   "therock-dist-linux-gfx110X-all-7.12.0a20260308.tar.gz",
 * ];
 * const page = parseIndexPage(
 *   `const files = ${JSON.stringify(names.map((name) => ({ name })))};`,
 *   "https://rocm.nightlies.amd.com/tarball/",
 * );
 * const choice = chooseRelease(page.entries, ["gfx1151", "gfx110X-all"]);
 * choice.version; // "7.12.0a20260308"
 * choice.heldBack; // { version: "7.12.0a20260309", by: ["gfx110X-all"] }
 * ```
 */
export function chooseRelease(
  entries: IndexEntry[],
  targets: string[],
  options: ChooseReleaseOptions = {},
): ReleaseChoice {
  if (targets.length === 0) throw new TypeError("Cannot choose a release: no targets tracked");
  const byFamily = new Map<string, Map<string, IndexEntry>>();
  for (const entry of entries) {
    let versions = byFamily.get(entry.family);
    if (versions === undefined) byFamily.set(entry.family, versions = new Map());
    const known = versions.get(entry.version);
    // One file listed twice (two pages, two spellings): keep the later one.
    if (known === undefined || (entry.mtime ?? 0) > (known.mtime ?? 0)) {
      versions.set(entry.version, entry);
    }
  }
  const present = targets.filter((target) => byFamily.has(target));
  const absent = targets.filter((target) => !byFamily.has(target));
  const missingRequired = (options.required ?? []).filter((target) => !byFamily.has(target));
  if (missingRequired.length > 0 || present.length === 0) {
    const offered = [...byFamily.keys()].sort().join(", ") || "none";
    const which = missingRequired.length > 0 ? missingRequired : targets;
    throw new Error(
      `Cannot choose a release for ${which.map((t) => `"${t}"`).join(", ")}: ` +
        `not in the index (families there: ${offered})`,
    );
  }

  const parsed = new Map<string, TheRockVersion>();
  for (const versions of byFamily.values()) {
    for (const version of versions.keys()) {
      if (!parsed.has(version)) parsed.set(version, parseVersion(version));
    }
  }
  const newestMtime = (version: string): number =>
    Math.max(...present.map((target) => byFamily.get(target)!.get(version)?.mtime ?? 0));
  const newer = (a: string, b: string): boolean => {
    const order = compareVersions(parsed.get(a)!, parsed.get(b)!) ||
      Math.sign(newestMtime(a) - newestMtime(b)) || (a > b ? 1 : a < b ? -1 : 0);
    return order > 0;
  };
  const newestOf = (versions: Iterable<string>): string | undefined => {
    let best: string | undefined;
    for (const version of [...versions].sort()) {
      if (best === undefined || newer(version, best)) best = version;
    }
    return best;
  };

  let version: string;
  if (options.version !== undefined) {
    parseVersion(options.version);
    version = options.version;
    const lacking = present.filter((target) => !byFamily.get(target)!.has(version));
    if (lacking.length > 0) {
      throw new Error(
        `Cannot pin version "${version}": the index has no tarball of it for ` +
          lacking.map((t) => `"${t}"`).join(", "),
      );
    }
  } else {
    const common = [...byFamily.get(present[0]!)!.keys()].filter((v) =>
      present.every((target) => byFamily.get(target)!.has(v))
    );
    const chosen = newestOf(common);
    if (chosen === undefined) {
      const newest = present.map((t) => `${t} ${newestOf(byFamily.get(t)!.keys())}`);
      throw new Error(
        `Cannot choose a release: no version is available for every target ` +
          `(newest per target: ${newest.join(", ")})`,
      );
    }
    version = chosen;
  }

  const result: ReleaseChoice = { version, entries: {}, absent };
  for (const target of targets) {
    result.entries[target] = byFamily.get(target)?.get(version) ?? null;
  }
  const overall = newestOf(present.flatMap((target) => [...byFamily.get(target)!.keys()]));
  const by = overall === undefined
    ? []
    : present.filter((target) => !byFamily.get(target)!.has(overall));
  if (options.version === undefined && overall !== version && by.length > 0) {
    result.heldBack = { version: overall!, by };
  }
  return result;
}
