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
 * A file a user edits can be committed as the same file with new contents
 * ({@linkcode CommitOptions}): only if it still holds the bytes the edit was
 * made from (checked after the flush, just before the rename), with its
 * owner and group, and not when hard links would be split.
 *
 * @module
 */

import { basename, dirname } from "node:path";
import { writeAll } from "./bytes.ts";
import { interruption } from "./cleanup.ts";
import { createTemporaryFile, type TemporaryFile } from "./temporaries.ts";
import { describeKind, readRegularFile } from "./file_kind.ts";

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
 * Options for {@linkcode AtomicFile.commit} and {@linkcode writeFileAtomic}:
 * what the destination must still be when the new file is renamed over it.
 * They serve a file a user edits (flake.nix), which must come out of the
 * rename as the same file with new contents.
 */
export interface CommitOptions {
  /**
   * The bytes the destination must hold at the rename: the bytes the new
   * contents were made from. When it holds anything else, or is gone
   * (another process wrote it since it was read), nothing is renamed and
   * {@linkcode DestinationChangedError} is thrown. The check is the last
   * step before rename(2); a writer that takes no lock can still slip into
   * the few instructions between the two, which only the kernel could close.
   *
   * @default {no check}
   */
  expected?: Uint8Array;
  /**
   * Give the new file the destination's owner and group (as root does with
   * chown(2)), as an edit in place would keep them. When this process cannot
   * (it is not root and the destination is another user's, or of a group it
   * is not in), the commit is refused rather than change the owner.
   *
   * @default {false}
   */
  keepOwner?: boolean;
  /**
   * Refuse a destination with more than one hard link: a rename would give
   * this name a new file while the other names kept the old one.
   *
   * @default {false}
   */
  keepLinks?: boolean;
}

/**
 * Thrown by {@linkcode AtomicFile.commit} when the destination no longer
 * holds the bytes the new contents were made from: another process wrote it
 * meanwhile, and its contents are kept.
 *
 * @example Usage
 * ```ts
 * import { DestinationChangedError, writeFileAtomic } from "./atomic_write.ts";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "edited by someone else\n");
 * try {
 *   await writeFileAtomic(path, "new\n", { expected: new Uint8Array() });
 * } catch (error) {
 *   error instanceof DestinationChangedError; // true, and the file is as they left it
 * }
 * ```
 */
export class DestinationChangedError extends Error {
  /** The destination. */
  readonly path: string;

  /**
   * Creates the error.
   *
   * @param path The destination.
   */
  constructor(path: string) {
    super(
      "it changed since it was read (another process wrote it), and is left as that " +
        "process wrote it; run again",
    );
    this.name = "DestinationChangedError";
    this.path = path;
  }
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
    await writeAll(file, chunk);
  }

  /**
   * Flushes the bytes to disk (unless created with `durable: false`) and
   * renames the temporary file over the destination. With `options`, the
   * destination is checked first (after the flush, so the check is as late
   * as it can be): it must still hold the `expected` bytes, may be refused
   * for its hard links, and gives the new file its owner and group.
   *
   * @param options What the destination must still be at the rename.
   * @throws {DestinationChangedError} When the destination no longer holds
   * `options.expected`; nothing was renamed.
   * @throws {Error} When `keepLinks` or `keepOwner` cannot be honoured.
   */
  async commit(options: CommitOptions = {}): Promise<void> {
    const file = this.#open();
    if (this.#durable) await file.sync();
    file.close();
    this.#file = undefined;
    if (options.keepLinks) await assertSingleLink(this.path);
    // chown(2) clears set-user-ID bits, so the mode comes after it.
    if (options.keepOwner) await takeOwner(this.tempPath, this.path);
    await Deno.chmod(this.tempPath, this.#mode);
    // The commit point: a signal that came before it leaves the old file.
    interruption.throwIfAborted();
    if (options.expected !== undefined && !await holdsExactly(this.path, options.expected)) {
      throw new DestinationChangedError(this.path);
    }
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
 * @param options The file mode, whether it is flushed to disk before the
 * rename, and what the destination must still be then (see {@linkcode CommitOptions}).
 * @throws {DestinationChangedError} When the destination no longer holds
 * `options.expected`; it is left as it is.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions & CommitOptions = {},
): Promise<void> {
  const file = await AtomicFile.create(path, options);
  try {
    await file.write(typeof data === "string" ? new TextEncoder().encode(data) : data);
    await file.commit(options);
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

/**
 * Throws when `path` has more than one hard link, saying why a rename over it
 * would be wrong and what to do: the other names would keep the old contents.
 *
 * @example Usage
 * ```ts
 * import { assertSingleLink } from "./atomic_write.ts";
 *
 * const path = await Deno.makeTempFile();
 * await assertSingleLink(path); // one link: fine
 * await Deno.link(path, `${path}.other`);
 * await assertSingleLink(path).catch((error) => error.message); // "it has 2 hard links: …"
 * ```
 *
 * @param path The destination (a symlink is followed).
 * @throws {Error} When the file has two hard links or more.
 */
export async function assertSingleLink(path: string): Promise<void> {
  const links = (await Deno.stat(path)).nlink ?? 1;
  if (links > 1) {
    throw new Error(
      `it has ${links} hard links, and replacing it would split them (the other names would ` +
        "keep the old contents); break the link first (copy the file, then move the copy over " +
        "it) or edit the file in place",
    );
  }
}

/** Gives `temp` the owner and group of `path`, or refuses when this process cannot. */
async function takeOwner(temp: string, path: string): Promise<void> {
  const [want, have] = await Promise.all([Deno.stat(path), Deno.stat(temp)]);
  if (want.uid === null || want.gid === null) return; // no owners on this system
  if (want.uid === have.uid && want.gid === have.gid) return;
  try {
    await Deno.chown(temp, want.uid, want.gid);
  } catch (error) {
    if (!(error instanceof Deno.errors.PermissionDenied)) throw error;
    throw new Error(
      `it belongs to uid ${want.uid}, gid ${want.gid}, and this process cannot give the new ` +
        `file that owner (it would belong to uid ${have.uid}, gid ${have.gid}); ` +
        "run as its owner or as root",
    );
  }
}

/**
 * Whether `path` is a regular file holding exactly `expected`; reads at most
 * one byte more than that, whatever the file has become.
 */
async function holdsExactly(path: string, expected: Uint8Array): Promise<boolean> {
  let now: Uint8Array;
  try {
    now = await readRegularFile(path, { maxBytes: expected.length });
  } catch (error) {
    // Gone, not a file (a FIFO would block the read), or bigger: changed.
    if (
      error instanceof Deno.errors.NotFound || error instanceof TypeError ||
      error instanceof RangeError
    ) return false;
    throw error;
  }
  return now.length === expected.length && expected.every((byte, i) => byte === now[i]);
}
