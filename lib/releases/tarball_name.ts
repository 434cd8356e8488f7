/**
 * TheRock tarball file names: `therock-dist-linux-<family>-<version>.tar.gz`.
 *
 * Names come from an index page on the network, and the family and version
 * they carry end up in download URLs and in flake.nix. Parsing here is
 * therefore a gate: a name passes only when its family and version match
 * their grammars exactly, so quotes, `${`, slashes or `..` never get through.
 *
 * @module
 */

import { displayUrl } from "../cli/display.ts";
import { isValidVersion } from "./versions.ts";

/** A Linux TheRock tarball name, split into its parts. */
export interface TarballName {
  /** The file name, e.g. `"therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz"`. */
  name: string;
  /** The GPU family, e.g. `"gfx1151"`, `"gfx110X-all"` or `"multiarch"`. */
  family: string;
  /** The version, e.g. `"7.12.0a20260308"` (a dev build's `+` decoded). */
  version: string;
}

const PREFIX = "therock-dist-";
const SUFFIX = ".tar.gz";
const FAMILY = /^(?:gfx[0-9a-zA-Z]{1,8}(?:-[a-z]{1,12})?|multiarch)$/;

/**
 * Tells whether `text` is a family name of the grammar: `gfx` with up to
 * eight letters or digits and an optional lowercase suffix (`gfx110X-all`,
 * `gfx94X-dcgpu`), or `multiarch`.
 *
 * @param text The candidate family.
 * @returns `true` when `text` can be used as a family.
 *
 * @example Usage
 * ```ts
 * import { isValidFamily } from "./tarball_name.ts";
 *
 * isValidFamily("gfx110X-all"); // true
 * isValidFamily("gfx1151/../x"); // false
 * ```
 */
export function isValidFamily(text: string): boolean {
  return typeof text === "string" && FAMILY.test(text);
}

/**
 * Parses a tarball file name. Returns `undefined` for every name that is not
 * a usable Linux tarball: Windows builds, `-tests-` tarballs, `ADHOCBUILD`
 * builds, other files, and any name whose family or version is outside the
 * grammar.
 *
 * @param name A file name as listed by the index, already URL-decoded
 * (a dev build's version holds a literal `+`).
 * @returns The parts, or `undefined` when the name is to be skipped.
 *
 * @example Usage
 * ```ts
 * import { parseTarballName } from "./tarball_name.ts";
 *
 * parseTarballName("therock-dist-linux-gfx110X-all-7.12.0a20260308.tar.gz");
 * // { name: "therock-dist-linux-gfx110X-all-7.12.0a20260308.tar.gz",
 * //   family: "gfx110X-all", version: "7.12.0a20260308" }
 * parseTarballName("therock-dist-windows-gfx1151-7.12.0a20260308.tar.gz"); // undefined
 * ```
 */
export function parseTarballName(name: string): TarballName | undefined {
  if (typeof name !== "string" || name.length > 255) return undefined;
  if (!name.startsWith(PREFIX) || !name.endsWith(SUFFIX)) return undefined;
  if (name.includes("-tests-") || name.includes("ADHOCBUILD")) return undefined;
  const middle = name.slice(PREFIX.length, -SUFFIX.length);
  if (!middle.startsWith("linux-")) return undefined;
  // Families hold at most one dash and versions none, so the version is
  // whatever follows the last dash.
  const rest = middle.slice("linux-".length);
  const dash = rest.lastIndexOf("-");
  if (dash <= 0) return undefined;
  const family = rest.slice(0, dash);
  const version = rest.slice(dash + 1);
  if (!isValidFamily(family) || !isValidVersion(version)) return undefined;
  return { name, family, version };
}

/**
 * Builds the file name of the Linux tarball of one family and version.
 *
 * @param family The family, e.g. `"gfx1151"` or `"multiarch"`.
 * @param version The version, e.g. `"7.12.0a20260308"`.
 * @returns The file name (not URL-encoded; see {@linkcode tarballUrl}).
 * @throws {SyntaxError} When the family or version is outside its grammar.
 *
 * @example Usage
 * ```ts
 * import { tarballFileName } from "./tarball_name.ts";
 *
 * tarballFileName("gfx1151", "7.12.0a20260308");
 * // "therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz"
 * ```
 */
export function tarballFileName(family: string, version: string): string {
  if (!isValidFamily(family)) {
    throw new SyntaxError(
      `Cannot build a tarball name for family ${JSON.stringify(family)}: ` +
        "expected gfx<isa>[-<suffix>] or multiarch",
    );
  }
  if (!isValidVersion(version)) {
    throw new SyntaxError(
      `Cannot build a tarball name for version ${JSON.stringify(version)}: not a TheRock version`,
    );
  }
  return `${PREFIX}linux-${family}-${version}${SUFFIX}`;
}

/**
 * Builds the download URL of one tarball: the base URL followed by the
 * URL-encoded file name (a dev build's `+` becomes `%2B`, as S3 requires).
 *
 * @param baseUrl The folder URL, e.g. `"https://rocm.nightlies.amd.com/tarball/"`
 * (a missing final `/` is added).
 * @param family The family.
 * @param version The version.
 * @returns The absolute URL.
 * @throws {TypeError} When `baseUrl` is not an http(s) URL without query or fragment.
 * @throws {SyntaxError} When the family or version is outside its grammar.
 *
 * @example Usage
 * ```ts
 * import { tarballUrl } from "./tarball_name.ts";
 *
 * tarballUrl("https://rocm.nightlies.amd.com/tarball/", "gfx1151", "7.9.0.dev0+abcdef1");
 * // "https://rocm.nightlies.amd.com/tarball/therock-dist-linux-gfx1151-7.9.0.dev0%2Babcdef1.tar.gz"
 * ```
 */
export function tarballUrl(baseUrl: string, family: string, version: string): string {
  const base = folderUrl(baseUrl);
  return base.href + encodeURIComponent(tarballFileName(family, version));
}

/**
 * Normalises a folder URL: checks it is http(s) without query or fragment
 * and ends it with `/`.
 *
 * @param baseUrl The folder URL.
 * @returns The parsed URL, ending with `/`.
 * @throws {TypeError} When `baseUrl` is not such a URL.
 *
 * @example Usage
 * ```ts
 * import { folderUrl } from "./tarball_name.ts";
 *
 * folderUrl("https://rocm.nightlies.amd.com/tarball").href;
 * // "https://rocm.nightlies.amd.com/tarball/"
 * ```
 */
export function folderUrl(baseUrl: string): URL {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TypeError(`Cannot use base URL "${displayUrl(baseUrl)}": not a URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new TypeError(`Cannot use base URL "${displayUrl(baseUrl)}": not http(s)`);
  }
  if (url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    throw new TypeError(
      `Cannot use base URL "${
        displayUrl(baseUrl)
      }": a folder URL has no query, fragment or credentials`,
    );
  }
  // A base URL ends up in flake.nix between quotes: refuse what Nix would
  // interpolate or what would end the string.
  if (/["\\$\s`]/.test(baseUrl)) {
    throw new TypeError(`Cannot use base URL "${displayUrl(baseUrl)}": unsafe characters`);
  }
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url;
}
