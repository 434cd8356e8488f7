/**
 * Seeding the Nix store with a downloaded file, under exactly the path that
 * nixpkgs' `fetchurl` (and `<nix/fetchurl.nix>`) would produce: a flat
 * fixed-output path named after the file. A later build that needs the file
 * then finds it valid in the store and downloads nothing.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { makeTemporaryFolder, onCleanup } from "./cleanup.ts";
import { formatHash, type Hash } from "./hash.ts";
import { encodeNix32 } from "./nix32.ts";

/** Options for {@linkcode fixedOutputPath} and {@linkcode addToStore}. */
export interface StoreOptions {
  /**
   * The Nix store directory.
   *
   * @default {"/nix/store"}
   */
  storeDir?: string;
}

/** Options for {@linkcode addToStore}. */
export interface AddToStoreOptions extends StoreOptions {
  /**
   * The store name.
   *
   * @default {the file's base name}
   */
  name?: string;
  /**
   * Cancels the addition: nix-store is killed, and a path it registered
   * meanwhile is deleted again.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/** The longest name Nix accepts in a store path. */
const MAX_NAME_LENGTH = 211;

/**
 * Checks that `name` can name a store path: letters, digits and `+-._?=`,
 * not starting with a dot, at most 211 characters. (Nix 2.4–2.18 accept a
 * leading dot, but older and newer Nix reject it, NixOS/nix#9095: such a
 * path would not work everywhere.)
 *
 * @example Usage
 * ```ts
 * import { checkStoreName } from "./nix_store.ts";
 * checkStoreName("rocm-7.12.0.tar.gz"); // ok
 * // checkStoreName("rocm-7.12.0.dev0%2Bab12.tar.gz") throws a TypeError
 * ```
 *
 * @param name The candidate name.
 * @throws {TypeError} When Nix would refuse the name.
 */
export function checkStoreName(name: string): void {
  const fail = (detail: string): never => {
    throw new TypeError(
      `Cannot use "${name}" as a Nix store name: ${detail} (choose another name with --name)`,
    );
  };
  if (name.length === 0) fail("it is empty");
  if (name.length > MAX_NAME_LENGTH) fail(`it is longer than ${MAX_NAME_LENGTH} characters`);
  if (name.startsWith(".")) fail("it starts with a dot");
  const bad = /[^A-Za-z0-9+\-._?=]/.exec(name);
  if (bad !== null) fail(`"${bad[0]}" is not allowed (only letters, digits and +-._?=)`);
}

/**
 * Computes the store path of a flat fixed-output file, as Nix's
 * `makeFixedOutputPath` does (the path `nix-store --add-fixed` and a
 * `fetchurl` with this hash and name produce).
 *
 * @example Usage
 * ```ts
 * import { fixedOutputPath } from "./nix_store.ts";
 * import { parseSri } from "./hash.ts";
 *
 * const hash = parseSri("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
 * fixedOutputPath("empty", hash); // "/nix/store/…-empty"
 * ```
 *
 * @param name The store name (checked with {@linkcode checkStoreName}).
 * @param hash The hash of the file's contents.
 * @param options The store directory.
 * @returns The absolute store path.
 */
export function fixedOutputPath(name: string, hash: Hash, options: StoreOptions = {}): string {
  checkStoreName(name);
  const storeDir = options.storeDir ?? "/nix/store";
  const inner = sha256Hex(`fixed:out:${hash.algorithm}:${formatHash(hash, "hex")}:`);
  const outer = createHash("sha256")
    .update(`output:out:sha256:${inner}:${storeDir}:${name}`)
    .digest();
  // Nix folds the 32-byte digest to 20 bytes by XOR before encoding it.
  const folded = new Uint8Array(20);
  for (let i = 0; i < outer.length; i++) folded[i % 20]! ^= outer[i]!;
  return `${storeDir}/${encodeNix32(folded)}-${name}`;
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Whether `path` is a valid (present and registered) store path.
 *
 * @example Usage
 * ```ts ignore
 * import { isValidStorePath } from "./nix_store.ts";
 * await isValidStorePath("/nix/store/…-file.tar.gz"); // false unless added
 * ```
 *
 * @param path The store path.
 * @returns `true` when `nix-store --check-validity` accepts it.
 */
export async function isValidStorePath(path: string): Promise<boolean> {
  const { success } = await nixStore(["--check-validity", path], "null");
  return success;
}

/** Runs nix-store, turning "not installed" into a clear error. */
async function nixStore(
  args: string[],
  output: "null" | "piped",
  signal?: AbortSignal,
): Promise<Deno.CommandOutput> {
  try {
    return await new Deno.Command("nix-store", {
      args,
      stdout: output,
      stderr: output,
      ...(signal === undefined ? {} : { signal }),
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot run "nix-store": it is not on PATH (is Nix installed?)`);
    }
    throw error;
  }
}

/**
 * Adds a file to the Nix store as a flat fixed-output path named `name`,
 * unless that path is already valid. `hash` must be the file's hash (the
 * caller checked it); the path Nix reports is verified against it.
 *
 * `nix-store --add-fixed` names the path after the file it is given (and
 * does not follow symlinks), so a file with another base name is hard-linked
 * (or, across file systems, copied) into a temporary folder under `name`.
 *
 * @example Usage
 * ```ts ignore
 * import { addToStore } from "./nix_store.ts";
 * import { hashFile } from "./hasher.ts";
 *
 * const { hash } = await hashFile("./therock.tar.gz");
 * await addToStore("./therock.tar.gz", hash); // "/nix/store/…-therock.tar.gz"
 * ```
 *
 * @param path The file to add.
 * @param hash The file's hash; its algorithm is the one the path is computed with.
 * @param options The store name and directory.
 * @returns The store path.
 * @throws {TypeError} When the name is not a valid store name.
 */
export async function addToStore(
  path: string,
  hash: Hash,
  options: AddToStoreOptions = {},
): Promise<string> {
  const name = options.name ?? basename(path);
  const expected = fixedOutputPath(name, hash, options);
  if (await isValidStorePath(expected)) return expected;
  const signal = options.signal;
  try {
    signal?.throwIfAborted();
    return await addNamed(path, name, hash, expected, signal);
  } catch (error) {
    // Killed mid-way, nix-store may still have registered the path: a
    // cancelled addition adds nothing.
    if (signal?.aborted) await deleteStorePath(expected);
    throw signal?.aborted ? signal.reason : error;
  }
}

/**
 * Deletes a store path that nothing references (what an addition that is
 * being undone made); a path in use is left alone.
 *
 * @example Usage
 * ```ts ignore
 * import { deleteStorePath } from "./nix_store.ts";
 * await deleteStorePath("/nix/store/…-file.tar.gz"); // false when still referenced
 * ```
 *
 * @param path The store path.
 * @returns Whether it was deleted (or was not there).
 */
export async function deleteStorePath(path: string): Promise<boolean> {
  if (!await isValidStorePath(path)) return true;
  return (await nixStore(["--delete", path], "null")).success;
}

async function addNamed(
  path: string,
  name: string,
  hash: Hash,
  expected: string,
  signal: AbortSignal | undefined,
): Promise<string> {
  if (basename(path) === name) return await addFixed(path, hash, expected, signal);
  const dir = await makeTempDirBeside(path);
  using _cleanup = onCleanup(() => Deno.removeSync(dir, { recursive: true }));
  try {
    const named = join(dir, name);
    try {
      await Deno.link(path, named);
    } catch {
      await Deno.copyFile(path, named);
    }
    return await addFixed(named, hash, expected, signal);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** A temporary folder on the same file system as `path` if possible, so a hard link works. */
async function makeTempDirBeside(path: string): Promise<string> {
  try {
    return await makeTemporaryFolder(dirname(path));
  } catch {
    return await makeTemporaryFolder();
  }
}

async function addFixed(
  path: string,
  hash: Hash,
  expected: string,
  signal: AbortSignal | undefined,
): Promise<string> {
  const { success, stdout, stderr } = await nixStore(
    ["--add-fixed", hash.algorithm, path],
    "piped",
    signal,
  );
  const decoder = new TextDecoder();
  if (!success) {
    const detail = decoder.decode(stderr).trim().split("\n").at(-1) ?? "";
    throw new Error(`Cannot add "${path}" to the Nix store: nix-store failed: ${detail}`);
  }
  const added = decoder.decode(stdout).trim();
  if (added !== expected) {
    throw new Error(
      `Cannot add "${path}" to the Nix store: nix-store made "${added}", expected "${expected}" (did the file change?)`,
    );
  }
  return added;
}
