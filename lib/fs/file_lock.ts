/**
 * An exclusive lock file: one process at a time may hold it. The file is
 * published with link(2), which never replaces, so two processes can never
 * both succeed. Its holder keeps an flock(2) on it, which the kernel drops
 * when the holder dies (even by SIGKILL), so a lock left behind by a killed
 * process is recognised as stale and taken over; it also records the
 * holder's PID, for messages.
 *
 * @module
 */

import { basename, dirname } from "node:path";
import { writeAll } from "./bytes.ts";
import { onCleanup, ownerGone } from "./cleanup.ts";
import { readRegularFile } from "./file_kind.ts";
import { createTemporaryFile } from "./temporaries.ts";

/** Thrown when another running process holds the lock. */
export class LockHeldError extends Error {
  /** The lock file. */
  readonly path: string;
  /** The PID of the holder, when the lock file names one. */
  readonly pid: number | undefined;

  /**
   * Creates the error.
   *
   * @param path The lock file.
   * @param pid The holder's PID.
   * @param purpose What the lock protects, for the message.
   */
  constructor(path: string, pid: number | undefined, purpose: string) {
    super(
      `Cannot ${purpose}: "${path}" is held by ${
        pid === undefined ? "another process" : `process ${pid}`
      } (remove the file if no such process is running)`,
    );
    this.name = "LockHeldError";
    this.path = path;
    this.pid = pid;
  }
}

/** A held lock; release it (or let `await using` do it) when done. */
export interface FileLock extends AsyncDisposable {
  /** The lock file. */
  readonly path: string;
  /** Removes the lock file (once; later calls do nothing). */
  release(): Promise<void>;
}

/** Options for {@linkcode acquireLock}. */
export interface AcquireLockOptions {
  /**
   * What the lock protects, for error messages ("update flake.nix").
   *
   * @default {"lock"}
   */
  purpose?: string;
}

/**
 * Creates the lock file `path`, or throws {@linkcode LockHeldError} when a
 * running process holds it. A lock file whose PID is not running (on systems
 * with `/proc`) is stale and replaced.
 *
 * @param path The lock file, e.g. `flake.nix.update-lock` beside the file it guards.
 * @param options What the lock is for.
 * @returns The held lock.
 * @throws {LockHeldError} When another running process holds the lock.
 *
 * @example Usage
 * ```ts
 * import { acquireLock } from "./file_lock.ts";
 *
 * const dir = await Deno.makeTempDir();
 * {
 *   await using _lock = await acquireLock(`${dir}/flake.nix.update-lock`);
 *   // … only one process gets here at a time …
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function acquireLock(
  path: string,
  options: AcquireLockOptions = {},
): Promise<FileLock> {
  const purpose = options.purpose ?? "lock";
  const content = new TextEncoder().encode(
    `${JSON.stringify({ pid: Deno.pid, since: new Date().toISOString() })}\n`,
  );
  // Two rounds: a stale lock is removed once, then creation must succeed.
  for (let round = 0; round < 2; round++) {
    const file = await publish(path, content);
    if (file !== undefined) return held(path, file);
    const holder = await readHolder(path);
    if (holder.stale) {
      await Deno.remove(path).catch((error) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
      continue;
    }
    throw new LockHeldError(path, holder.pid, purpose);
  }
  throw new LockHeldError(path, undefined, purpose);
}

/**
 * Creates the lock file with its content already in it and flock(2)ed, or
 * returns `undefined` when it exists. Writing beside it and hard-linking into
 * place (link(2) never replaces) means no other process can read a lock that
 * names no holder yet, or find it unlocked.
 */
async function publish(path: string, content: Uint8Array): Promise<Deno.FsFile | undefined> {
  // In the private folder of lib/fs/temporaries.ts: on the same file system.
  const temporary = await createTemporaryFile(dirname(path), basename(path), { mode: 0o644 });
  const file = temporary.file;
  let published = false;
  try {
    await file.lock(true);
    await writeAll(file, content);
    await Deno.link(temporary.path, path);
    published = true;
    return file;
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return undefined;
    throw error;
  } finally {
    if (!published) file.close();
    await temporary.remove();
  }
}

function held(path: string, file: Deno.FsFile): FileLock {
  let released = false;
  // Removed if a signal ends the process while the lock is held.
  const cleanup = onCleanup(() => Deno.removeSync(path));
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    await Deno.remove(path).catch(() => {});
    file.close();
    cleanup[Symbol.dispose]();
  };
  return { path, release, [Symbol.asyncDispose]: release };
}

/** The most of a lock file read: acquireLock writes some 60 bytes. */
const MAX_LOCK_BYTES = 4096;

async function readHolder(path: string): Promise<{ pid: number | undefined; stale: boolean }> {
  let text: string;
  let age: number;
  try {
    // acquireLock writes a regular file of a line: anything else (a FIFO
    // would block the read, /dev/zero never end it, a symlink points at what
    // is not ours) is refused, never read, never removed as stale.
    const bytes = await readRegularFile(path, {
      maxBytes: MAX_LOCK_BYTES,
      what: "the lock file",
      followSymlinks: false,
    });
    text = new TextDecoder().decode(bytes);
    age = Date.now() - ((await Deno.lstat(path)).mtime?.getTime() ?? Date.now());
  } catch (error) {
    // Released between our attempt and this read: try again.
    if (error instanceof Deno.errors.NotFound) return { pid: undefined, stale: true };
    if (error instanceof TypeError || error instanceof RangeError) {
      const Class = error instanceof TypeError ? TypeError : RangeError;
      throw new Class(
        `${error.message}; this program writes its locks as small regular files, so move this one away`,
      );
    }
    throw error;
  }
  let pid: number | undefined;
  try {
    const value = (JSON.parse(text) as { pid?: unknown }).pid;
    if (typeof value === "number" && Number.isSafeInteger(value) && value > 0) pid = value;
  } catch {
    pid = undefined;
  }
  // A lock naming no holder was not written by acquireLock (which publishes
  // it whole); it only counts as stale once it is old.
  if (pid === undefined) return { pid, stale: age > 60_000 };
  return { pid, stale: await ownerGone(path) };
}
