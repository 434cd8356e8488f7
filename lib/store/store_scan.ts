/**
 * Reading the metadata of store paths (never their contents) for layering.
 *
 * The walk uses lstat only and never follows a symlink, so nothing outside
 * the listed store paths is read.
 *
 * @module
 */

import { join } from "node:path";

/** One file system object inside a store path. */
export interface StoreFile {
  /** Absolute path on disk, which is also its path in the image. */
  path: string;
  /** What the object is (the store holds nothing else). */
  type: "file" | "directory" | "symlink";
  /** Permission bits. */
  mode: number;
  /** Size in bytes (0 for directories and symlinks). */
  size: number;
  /** Target of a symlink. */
  linkTarget?: string;
}

/**
 * Lists a store path and everything below it, sorted with
 * {@linkcode compareTreePaths} (a directory precedes its contents).
 *
 * @param path An absolute store path.
 * @returns The objects, the store path itself first.
 * @throws {TypeError} When the tree holds something other than files, directories and symlinks.
 *
 * @example Usage
 * ```ts
 * import { scanStorePath } from "./store_scan.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a`, "a");
 * const files = await scanStorePath(dir);
 * files.map((file) => file.type); // ["directory", "file"]
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function scanStorePath(path: string): Promise<StoreFile[]> {
  const out: StoreFile[] = [];
  const stack = [path];
  while (stack.length > 0) {
    const current = stack.pop()!;
    const info = await lstatNamed(current);
    const mode = (info.mode ?? 0) & 0o7777;
    if (info.isSymlink) {
      out.push({
        path: current,
        type: "symlink",
        mode,
        size: 0,
        linkTarget: await Deno.readLink(current),
      });
    } else if (info.isFile) {
      out.push({ path: current, type: "file", mode, size: info.size });
    } else if (info.isDirectory) {
      out.push({ path: current, type: "directory", mode, size: 0 });
      for await (const child of Deno.readDir(current)) stack.push(join(current, child.name));
    } else {
      throw new TypeError(`Cannot put "${current}" in an image: not a file, directory or symlink`);
    }
  }
  return out.sort((a, b) => compareTreePaths(a.path, b.path));
}

/**
 * Deno decodes a file name that is not UTF-8 with U+FFFD and its file APIs
 * take only text, so such a name (Nix allows any bytes but "/" and NUL) can
 * be listed but never opened: say so plainly instead of "No such file".
 */
async function lstatNamed(path: string): Promise<Deno.FileInfo> {
  try {
    return await Deno.lstat(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound) || !path.includes("\ufffd")) throw error;
    throw new TypeError(
      `Cannot put ${
        JSON.stringify(path).replaceAll("\ufffd", "\\ufffd")
      } in an image: its name is not UTF-8 (shown with U+FFFD), which Deno cannot open; rename it in the package`,
    );
  }
}

/** The files of a closure's store paths, from {@linkcode scanClosure}. */
export interface ClosureFiles {
  /** Each store path's files, as {@linkcode scanStorePath} lists them. */
  files: Map<string, StoreFile[]>;
  /** Every directory, by path (layers need their parents' modes). */
  directories: Map<string, StoreFile>;
}

/**
 * Lists every store path of a closure ({@linkcode scanStorePath}).
 *
 * @param closure The store paths (from `parseClosure` of lib/store/closure.ts).
 * @returns The files by store path, and every directory by path.
 *
 * @example Usage
 * ```ts
 * import { scanClosure } from "./store_scan.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const { files } = await scanClosure({ paths: [{ path: dir }] });
 * files.get(dir)?.length; // 1
 * await Deno.remove(dir);
 * ```
 */
export async function scanClosure(
  closure: { paths: readonly { path: string }[] },
): Promise<ClosureFiles> {
  const files = new Map<string, StoreFile[]>();
  const directories = new Map<string, StoreFile>();
  for (const { path } of closure.paths) {
    const list = await scanStorePath(path);
    files.set(path, list);
    for (const file of list) if (file.type === "directory") directories.set(file.path, file);
  }
  return { files, directories };
}

/**
 * Orders paths component by component (`a/b/c` before `a/b.txt`), so that a
 * directory's contents follow it directly: the order of a depth-first walk
 * with sorted names.
 *
 * @param a A path.
 * @param b Another path.
 * @returns A negative number, zero or a positive number, as for `Array.sort`.
 *
 * @example Usage
 * ```ts
 * import { compareTreePaths } from "./store_scan.ts";
 *
 * ["a/b.txt", "a/b/c", "a"].sort(compareTreePaths); // ["a", "a/b/c", "a/b.txt"]
 * ```
 */
export function compareTreePaths(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x === 0x2f) return -1;
    if (y === 0x2f) return 1;
    return x - y;
  }
  return a.length - b.length;
}
