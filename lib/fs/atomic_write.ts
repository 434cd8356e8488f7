/**
 * Atomic file replacement: write beside the destination, then rename.
 *
 * A reader of the destination sees either the old file or the complete new
 * one, never a prefix, and a failure at any point leaves the old file as it
 * was. The temporary file lives in the private folder of the destination's
 * folder (lib/fs/temporaries.ts: `.rocm-nightly-tmp/`) because rename(2) is
 * atomic only within one file system.
 *
 * By default the bytes are flushed to disk (`fsync`) before the rename, so
 * that after a crash the destination is the old file or the new one, never
 * an empty one. A caller writing a regenerable artifact can turn that off
 * with `durable: false`: the rename is still atomic for every reader while
 * the system runs, and ENOSPC is still reported by the write that meets it.
 *
 * @module
 */

import { basename, dirname } from "node:path";
import { interruption } from "./cleanup.ts";
import { createTemporaryFile, type TemporaryFile } from "./temporaries.ts";
import { describeKind } from "./file_kind.ts";

/** Options for {@linkcode AtomicFile.create} and {@linkcode writeFileAtomic}. */
export interface AtomicWriteOptions {
  /**
   * Permission bits of the new file. When the destination exists its mode is
   * kept unless this is given.
   *
   * @default {0o644, or the existing file's mode}
   */
  mode?: number;
  /**
   * Whether {@linkcode AtomicFile.commit} flushes the bytes to disk (`fsync`)
   * before the rename. `false` suits output that can be made again, such as
   * an image: Nix builders, `tar` and `cp` do not fsync either, and a 2 GiB
   * fsync costs more than writing the file. Keep it for files a user owns or
   * that are expensive to get again (flake.nix, a downloaded tarball).
   *
   * @default {true}
   */
  durable?: boolean;
}

/**
 * A file being written under a temporary name, renamed over its destination
 * by {@linkcode AtomicFile.commit} or removed by {@linkcode AtomicFile.abort}.
 *
 * @example Usage
 * ```ts
 * import { AtomicFile } from "./atomic_write.ts";
 *
 * const path = await Deno.makeTempFile();
 * const file = await AtomicFile.create(path);
 * try {
 *   await file.write(new TextEncoder().encode("complete contents\n"));
 *   await file.commit();
 * } finally {
 *   await file.abort(); // no-op after commit
 * }
 * ```
 */
export class AtomicFile {
  /** The destination path. */
  readonly path: string;
  /** The temporary path the bytes are written to until commit. */
  readonly tempPath: string;
  #file: Deno.FsFile | undefined;
  #mode: number;
  #durable: boolean;
  #done = false;
  /** The temporary's hold: removed if a signal ends the process before commit or abort. */
  #cleanup: Disposable;

  private constructor(
    path: string,
    temporary: TemporaryFile,
    options: { mode: number; durable: boolean },
  ) {
    this.path = path;
    this.tempPath = temporary.path;
    this.#file = temporary.file;
    this.#mode = options.mode;
    this.#durable = options.durable;
    this.#cleanup = temporary;
  }

  /**
   * Opens a new temporary file in the private folder of `path`'s folder
   * (`.rocm-nightly-tmp/<random>-<name>`, lib/fs/temporaries.ts); what killed
   * runs left there is removed first. An existing destination must be a regular
   * file (or a link to one): anything else could never be replaced, and
   * finding out only at commit would be after the work was done.
   *
   * @param path The destination path.
   * @param options The file mode and whether commit flushes to disk.
   * @returns The open atomic file.
   * @throws {TypeError} When the destination exists and is not a regular file.
   */
  static async create(path: string, options: AtomicWriteOptions = {}): Promise<AtomicFile> {
    const existing = await existingMode(path);
    const mode = options.mode ?? existing ?? 0o644;
    const temporary = await createTemporaryFile(dirname(path), basename(path));
    return new AtomicFile(path, temporary, { mode, durable: options.durable ?? true });
  }

  /**
   * Appends bytes to the temporary file.
   *
   * @param chunk The bytes to append.
   */
  async write(chunk: Uint8Array): Promise<void> {
    const file = this.#open();
    interruption.throwIfAborted();
    let offset = 0;
    while (offset < chunk.length) {
      offset += await file.write(chunk.subarray(offset));
    }
  }

  /**
   * Flushes the bytes to disk (unless created with `durable: false`) and
   * renames the temporary file over the destination.
   */
  async commit(): Promise<void> {
    const file = this.#open();
    if (this.#durable) await file.sync();
    file.close();
    this.#file = undefined;
    await Deno.chmod(this.tempPath, this.#mode);
    // The commit point: a signal that came before it leaves the old file.
    interruption.throwIfAborted();
    await Deno.rename(this.tempPath, this.path);
    this.#done = true;
    this.#cleanup[Symbol.dispose]();
  }

  /** Removes the temporary file, leaving the destination untouched. Safe to call twice. */
  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    this.#file?.close();
    this.#file = undefined;
    await Deno.remove(this.tempPath).catch(() => {});
    this.#cleanup[Symbol.dispose]();
  }

  #open(): Deno.FsFile {
    if (this.#done || this.#file === undefined) {
      throw new Error(
        `Cannot write "${this.path}": the atomic file was already committed or aborted`,
      );
    }
    return this.#file;
  }
}

/**
 * Replaces the contents of `path` atomically, keeping its mode.
 *
 * @example Usage
 * ```ts
 * import { writeFileAtomic } from "./atomic_write.ts";
 *
 * const path = await Deno.makeTempFile();
 * await writeFileAtomic(path, "new contents\n");
 * ```
 *
 * @param path The destination path.
 * @param data The complete new contents.
 * @param options The file mode and whether it is flushed to disk before the rename.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const file = await AtomicFile.create(path, options);
  try {
    await file.write(typeof data === "string" ? new TextEncoder().encode(data) : data);
    await file.commit();
  } finally {
    await file.abort();
  }
}

async function existingMode(path: string): Promise<number | undefined> {
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw new TypeError(`it is ${describeKind(info)}, not a file`);
    return info.mode === null ? undefined : info.mode & 0o7777;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}
