/**
 * The Nix store paths of downloaded files, exactly as nixpkgs' `fetchurl`
 * (and `<nix/fetchurl.nix>`) names them: flat fixed-output paths named after
 * the file, checked for validity and deleted again through `nix-store`. The
 * bytes themselves reach the store through lib/store/local_store.ts (written
 * straight in) or lib/store/nix_daemon.ts (through the daemon).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { formatHash, type Hash } from "../hash/hash.ts";
import { encodeNix32 } from "../hash/nix32.ts";

/** Options for {@linkcode fixedOutputPath}. */
export interface StoreOptions {
  /**
   * The Nix store directory.
   *
   * @default {"/nix/store"}
   */
  storeDir?: string;
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
 * import { parseSri } from "../hash/hash.ts";
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
  const { success } = await nixStore(["--check-validity", path]);
  return success;
}

/** Whether a Nix store can be asked here, or why not. */
export type StoreUsability = { usable: true } | { usable: false; reason: string };

/**
 * Tells whether the Nix store is usable from this process: `nix-store` is
 * on PATH and reaches the store (a local store it may open, or a daemon).
 * It asks the store whether a path that cannot exist is valid: a store that
 * answers, even "no", is usable.
 *
 * @example Usage
 * ```ts ignore
 * import { storeUsability } from "./nix_store.ts";
 *
 * const store = await storeUsability();
 * if (!store.usable) console.error(`not adding to the Nix store: ${store.reason}`);
 * ```
 *
 * @returns Usable, or the reason it is not (one line).
 */
export async function storeUsability(): Promise<StoreUsability> {
  const probe = "/nix/store/00000000000000000000000000000000-rocm-nightly-probe";
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("nix-store", {
      args: ["--check-validity", "--print-invalid", probe],
      stdout: "null",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { usable: false, reason: "nix-store is not on PATH (is Nix installed?)" };
    }
    return { usable: false, reason: `cannot run nix-store: ${(error as Error).message}` };
  }
  if (output.success) return { usable: true };
  const lines = new TextDecoder().decode(output.stderr).split("\n")
    // deno-lint-ignore no-control-regex -- Nix colours its messages
    .map((line) => line.replace(/\x1b\[[0-9;]*m/g, "").trim())
    .filter((line) => line !== "" && !line.startsWith("warning:"));
  const reason = lines.find((line) => line.startsWith("error:")) ?? lines[0] ??
    `nix-store exited with ${output.code}`;
  return { usable: false, reason: reason.replace(/^error: /, "").slice(0, 300) };
}

/** Runs nix-store for its exit status, turning "not installed" into a clear error. */
async function nixStore(args: string[]): Promise<Deno.CommandOutput> {
  try {
    return await new Deno.Command("nix-store", { args, stdout: "null", stderr: "null" }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot run "nix-store": it is not on PATH (is Nix installed?)`);
    }
    throw error;
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
  return (await nixStore(["--delete", path])).success;
}

/**
 * Whether to add downloads to the Nix store when a command line says neither
 * `--add-to-store` nor `--no-add-to-store` (`update`, `prefetch`): as
 * `nix-prefetch-url` does, yes when the store is usable
 * ({@linkcode storeUsability}); else no, with the one line to say so.
 *
 * @example Usage
 * ```ts ignore
 * import { addToStoreByDefault } from "./nix_store.ts";
 *
 * const store = await addToStoreByDefault();
 * if (!store.add) console.error(`prefetch: ${store.notice}`);
 * ```
 *
 * @returns `add: true`, or `add: false` and the notice (`not adding to the Nix store: <why>`).
 */
export async function addToStoreByDefault(): Promise<
  { add: true } | { add: false; notice: string }
> {
  const store = await storeUsability();
  return store.usable
    ? { add: true }
    : { add: false, notice: `not adding to the Nix store: ${store.reason}` };
}
