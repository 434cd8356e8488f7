/**
 * Reading and writing the user's flake.nix as bytes: the file is decoded
 * only when it is UTF-8 throughout (a lossy decode would turn any other byte
 * into U+FFFD and write that back), and written through a symlink to its
 * target, so the link stays a link. `rewrite` and `update` share this path.
 *
 * An edit is made under the flake's edit lock ({@linkcode lockFlakeFile}),
 * which both take before they read, and is written only if the file still
 * holds the bytes it was made from, checked just before the rename: an edit
 * another process made meanwhile is never overwritten. The new file keeps
 * the old one's owner, group and mode; a hard-linked file is refused, since
 * a rename would split its names.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { assertSingleLink, DestinationChangedError, writeFileAtomic } from "../fs/atomic_write.ts";
import { readRegularFile } from "../fs/file_kind.ts";
import { acquireLock, type FileLock } from "../fs/file_lock.ts";

/**
 * The most bytes a flake file may hold when read by this project (a real
 * flake.nix is a few KiB): a bigger one, sparse or not, is refused before
 * it is read.
 *
 * @example Usage
 * ```ts
 * import { MAX_FLAKE_BYTES } from "./flake_file.ts";
 * MAX_FLAKE_BYTES; // 16777216
 * ```
 */
export const MAX_FLAKE_BYTES: number = 16 * 1024 * 1024;

/** A flake file as read by {@linkcode readFlakeFile}. */
export interface FlakeFile {
  /** The path as given (for messages). */
  path: string;
  /** The file itself, symlinks resolved: where a write goes. */
  realPath: string;
  /** The contents, decoded from UTF-8 exactly (a BOM is kept as U+FEFF). */
  text: string;
  /** The bytes read. */
  bytes: Uint8Array;
}

/**
 * Reads a Nix file for editing, refusing one that is not UTF-8 rather than
 * decoding it lossily.
 *
 * @example Usage
 * ```ts
 * import { readFlakeFile } from "./flake_file.ts";
 *
 * const path = await Deno.makeTempFile({ suffix: ".nix" });
 * await Deno.writeTextFile(path, "{ }\n");
 * (await readFlakeFile(path)).text; // "{ }\n"
 * ```
 *
 * @param path The file (a symlink is followed).
 * @returns The real path and the text.
 * @throws {Error} When the file cannot be read or is not UTF-8.
 */
export async function readFlakeFile(path: string): Promise<FlakeFile> {
  let realPath = path;
  let bytes: Uint8Array;
  try {
    realPath = await Deno.realPath(path);
    // A FIFO would block the read forever, a device might never end it.
    bytes = await readRegularFile(realPath, { maxBytes: MAX_FLAKE_BYTES });
  } catch (error) {
    const message = (error as Error).message;
    const own = `Cannot read "${realPath}": `;
    throw new Error(
      `Cannot read "${path}": ${message.startsWith(own) ? message.slice(own.length) : message}`,
    );
  }
  return { path, realPath, text: decodeFlake(path, bytes), bytes };
}

/**
 * Takes the edit lock of a flake file, `.<name>.update-lock` beside it (its
 * real path, so every name of it shares one lock, when it is a regular file). `update` and `rewrite`
 * both hold it from before they read the file until after they wrote it, so
 * neither can overwrite the other's edit.
 *
 * @example Usage
 * ```ts
 * import { lockFlakeFile } from "./flake_file.ts";
 *
 * const path = await Deno.makeTempFile({ suffix: ".nix" });
 * await using _lock = await lockFlakeFile(path, `rewrite "${path}"`);
 * // … read, edit and write the file …
 * ```
 *
 * @param path The flake file (a symlink is followed).
 * @param purpose What is done to it, for the message when the lock is held.
 * @returns The held lock.
 * @throws {LockHeldError} When another running process holds it, naming its PID.
 */
export async function lockFlakeFile(path: string, purpose: string): Promise<FileLock> {
  // Beside the file itself; beside the name given when that is no regular
  // file (a link to /dev/null), which readFlakeFile refuses next.
  const real = await Deno.realPath(path).catch(() => path);
  const isFile = await Deno.stat(real).then((info) => info.isFile, () => false);
  const file = isFile ? real : path;
  return await acquireLock(join(dirname(file), `.${basename(file)}.update-lock`), { purpose });
}

/** Commit options of every flake write: the same file, with new contents. */
const SAME_FILE = { keepOwner: true, keepLinks: true } as const;

/**
 * Replaces the file read by {@linkcode readFlakeFile} atomically with `text`,
 * at its real path, keeping its owner, group and mode, provided it still
 * holds the bytes read (checked just before the rename). Call it holding
 * {@linkcode lockFlakeFile}.
 *
 * @example Usage
 * ```ts
 * import { readFlakeFile, writeFlakeFile } from "./flake_file.ts";
 *
 * const path = await Deno.makeTempFile({ suffix: ".nix" });
 * await writeFlakeFile(await readFlakeFile(path), "{ a = 1; }\n");
 * ```
 *
 * @param file The file as read.
 * @param text The new contents.
 * @throws {Error} When the file cannot be written, changed since it was read,
 * has more than one hard link, or belongs to someone this process cannot
 * give the new file to.
 */
export async function writeFlakeFile(file: FlakeFile, text: string): Promise<void> {
  try {
    await writeFileAtomic(file.realPath, text, { ...SAME_FILE, expected: file.bytes });
  } catch (error) {
    const reason = error instanceof DestinationChangedError
      ? "the file changed since it was read (another process edited it) and is left as they " +
        "wrote it; run again"
      : (error as Error).message;
    throw new Error(`Cannot write "${file.path}": ${reason}`);
  }
}

/**
 * Refuses early, before work that takes long, a flake file that
 * {@linkcode writeFlakeFile} would refuse for its hard links.
 *
 * @example Usage
 * ```ts
 * import { checkFlakeWritable, readFlakeFile } from "./flake_file.ts";
 *
 * const path = await Deno.makeTempFile({ suffix: ".nix" });
 * await checkFlakeWritable(await readFlakeFile(path)); // one link: fine
 * ```
 *
 * @param file The file as read.
 * @throws {Error} When it has more than one hard link.
 */
export async function checkFlakeWritable(file: FlakeFile): Promise<void> {
  try {
    await assertSingleLink(file.realPath);
  } catch (error) {
    throw new Error(`Cannot write "${file.path}": ${(error as Error).message}`);
  }
}

function decodeFlake(path: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    const at = firstInvalidByte(bytes);
    throw new Error(
      `Cannot edit "${path}": it is not UTF-8 (byte 0x${
        bytes[at]?.toString(16).padStart(2, "0")
      } at offset ${at}); rewriting it would change bytes outside the values, so convert it to UTF-8 first`,
    );
  }
}

/** The offset of the first byte that does not begin a valid UTF-8 sequence. */
function firstInvalidByte(bytes: Uint8Array): number {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i]!;
    const length = b < 0x80 ? 1 : b >> 5 === 6 ? 2 : b >> 4 === 14 ? 3 : b >> 3 === 30 ? 4 : 0;
    try {
      if (length === 0) return i;
      decoder.decode(bytes.subarray(i, i + length));
    } catch {
      return i;
    }
    i += length;
  }
  return bytes.length;
}
