/**
 * Parsing a Nix closure: the store paths an image holds and their references.
 *
 * Accepted forms (validated by hand: this runs inside Nix builds, where no
 * package registry is reachable):
 *
 * - `nix path-info --json --recursive` as Nix 2.8–2.18 print it: an array of
 *   `{ "path", "narSize", "references", … }`;
 * - the same command in newer Nix: an object keyed by store path, each value
 *   `{ "narSize", "references", … }` (references may be full paths or base names);
 * - `exportReferencesGraph` with structured attributes, as a list of
 *   `{ "path", "narSize", "references" }` or an object of such lists
 *   (`{ "closure": [ … ] }`);
 * - the `registration` file of nixpkgs' `closureInfo` (text: for each path,
 *   lines path, NAR hash, NAR size, deriver, reference count, references).
 *
 * @module
 */

/** One store path of a closure. */
export interface StorePathInfo {
  /** Absolute store path, e.g. `/nix/store/…-rocm-7.12.0`. */
  path: string;
  /** Size of the path's NAR serialisation, in bytes. */
  narSize: number;
  /** Store paths this path refers to (never itself), sorted. */
  references: string[];
}

/** A closed set of store paths: every reference is in the set. */
export interface Closure {
  /** The store directory every path lives in, e.g. `/nix/store`. */
  storeDir: string;
  /** The store paths, sorted by path. */
  paths: StorePathInfo[];
}

/** Options for {@linkcode parseClosure}. */
export interface ParseClosureOptions {
  /**
   * The store directory every path must be directly inside.
   *
   * @default {"/nix/store"}
   */
  storeDir?: string;
}

const BASE_NAME = /^[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]{1,211}$/;

/**
 * Parses and validates closure JSON.
 *
 * @param text The JSON text.
 * @param options The store directory.
 * @returns The closure, sorted by path.
 * @throws {SyntaxError} When the text is not JSON.
 * @throws {TypeError} When the JSON does not have one of the accepted shapes.
 * @throws {RangeError} When a path is outside the store directory, listed twice,
 *   or refers to a path missing from the closure.
 *
 * @example Usage
 * ```ts
 * import { parseClosure } from "./closure.ts";
 *
 * const closure = parseClosure(JSON.stringify([
 *   {
 *     path: "/nix/store/00000000000000000000000000000000-glibc",
 *     narSize: 8,
 *     references: ["/nix/store/00000000000000000000000000000000-glibc"],
 *   },
 * ]));
 * closure.paths[0]?.references; // [] (self references are dropped)
 * ```
 */
export function parseClosure(text: string, options: ParseClosureOptions = {}): Closure {
  const storeDir = options.storeDir ?? "/nix/store";
  if (!storeDir.startsWith("/") || storeDir.length < 2 || storeDir.endsWith("/")) {
    throw new TypeError(`Invalid store directory "${storeDir}": not an absolute path`);
  }
  if (storeDir.split("/").slice(1).some((part) => part === "" || part === "." || part === "..")) {
    throw new TypeError(`Invalid store directory "${storeDir}": not a normalized path`);
  }
  let json: unknown;
  if (text.startsWith("/")) json = parseRegistration(text);
  else {
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new SyntaxError(`Cannot parse closure JSON: ${(error as Error).message}`);
    }
  }

  const raw: { path: unknown; info: unknown }[] = [];
  if (Array.isArray(json)) {
    for (const item of json) raw.push({ path: (item as { path?: unknown })?.path, info: item });
  } else if (isRecord(json)) {
    const keys = Object.keys(json);
    if (keys.length > 0 && keys.every((key) => key.startsWith("/"))) {
      for (const key of keys) raw.push({ path: key, info: json[key] });
    } else if (keys.length > 0 && keys.every((key) => Array.isArray(json[key]))) {
      for (const key of keys) {
        for (const item of json[key] as unknown[]) {
          raw.push({ path: (item as { path?: unknown })?.path, info: item });
        }
      }
    } else {
      throw new TypeError(
        "Cannot read closure JSON: expected a list of store paths, an object keyed by store path, " +
          "or an object of such lists",
      );
    }
  } else {
    throw new TypeError("Cannot read closure JSON: expected an array or an object");
  }
  if (raw.length === 0) throw new TypeError("Cannot read closure JSON: it lists no store paths");

  const byPath = new Map<string, StorePathInfo>();
  for (const { path, info } of raw) {
    const where = typeof path === "string" ? `"${path}"` : JSON.stringify(path);
    if (!isRecord(info)) throw new TypeError(`Invalid closure entry ${where}: not an object`);
    if (info.valid === false) {
      throw new RangeError(`Invalid closure entry ${where}: not a valid path in the store`);
    }
    const storePath = checkStorePath(path, storeDir, "closure entry");
    const { narSize, references } = info;
    if (typeof narSize !== "number" || !Number.isSafeInteger(narSize) || narSize < 0) {
      throw new TypeError(
        `Invalid closure entry ${where}: "narSize" ${narSize} is not a byte count`,
      );
    }
    if (!Array.isArray(references)) {
      throw new TypeError(`Invalid closure entry ${where}: "references" is not a list`);
    }
    const refs = new Set<string>();
    for (const reference of references) {
      const full = typeof reference === "string" && !reference.includes("/")
        ? `${storeDir}/${reference}`
        : reference;
      const ref = checkStorePath(full, storeDir, `reference of ${where}`);
      if (ref !== storePath) refs.add(ref);
    }
    const entry = { path: storePath, narSize, references: [...refs].sort() };
    const seen = byPath.get(storePath);
    if (seen !== undefined) {
      if (JSON.stringify(seen) === JSON.stringify(entry)) continue;
      throw new RangeError(`Invalid closure: "${storePath}" is listed twice with different data`);
    }
    byPath.set(storePath, entry);
  }
  for (const info of byPath.values()) {
    for (const ref of info.references) {
      if (!byPath.has(ref)) {
        throw new RangeError(
          `Invalid closure: "${info.path}" refers to "${ref}", which the closure does not list`,
        );
      }
    }
  }
  const paths = [...byPath.values()].sort((a, b) => compare(a.path, b.path));
  return { storeDir, paths };
}

/** closureInfo's `registration` as the JSON list form (store paths are checked later). */
function parseRegistration(
  text: string,
): { path: string; narSize: number; references: string[] }[] {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const out: { path: string; narSize: number; references: string[] }[] = [];
  let i = 0;
  const take = (what: string): string => {
    const line = lines[i++];
    if (line === undefined) {
      throw new SyntaxError(`Cannot parse closure registration: missing ${what} at line ${i}`);
    }
    return line;
  };
  const count = (what: string): number => {
    const line = take(what);
    if (!/^\d{1,15}$/.test(line)) {
      throw new SyntaxError(`Cannot parse closure registration: ${what} "${line}" at line ${i}`);
    }
    return Number(line);
  };
  while (i < lines.length) {
    const path = take("store path");
    if (take("NAR hash") === "") {
      throw new SyntaxError(`Cannot parse closure registration: empty NAR hash at line ${i}`);
    }
    const narSize = count("NAR size");
    take("deriver");
    const references: string[] = [];
    for (let n = count("reference count"); n > 0; n--) references.push(take("reference"));
    out.push({ path, narSize, references });
  }
  return out;
}

function checkStorePath(value: unknown, storeDir: string, what: string): string {
  if (typeof value !== "string") {
    throw new TypeError(`Invalid ${what} ${JSON.stringify(value)}: not a store path string`);
  }
  const slash = value.lastIndexOf("/");
  const dir = value.slice(0, slash);
  const base = value.slice(slash + 1);
  if (dir !== storeDir || !BASE_NAME.test(base) || base === "." || base === "..") {
    throw new RangeError(`Invalid ${what} "${value}": not a path directly inside "${storeDir}"`);
  }
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
