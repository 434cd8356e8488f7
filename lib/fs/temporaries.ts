/**
 * Temporaries in a private folder: every temporary a script makes in a
 * folder (an atomic write's file, a lock's publishing file, image's OCI
 * folder, update's gate copy, the local store's journal) lives in that
 * folder's `.rocm-nightly-tmp/`, on the same file system as its destination
 * so that a rename out of it stays atomic. Nothing outside that folder is
 * ever swept, whatever its name, age or kind.
 *
 * The folder is ours only when it is provably so: a real directory (not a
 * link) owned by this process's user, that neither group nor others may
 * write (it is made with mode 0700), holding the marker file
 * `.rocm-nightly` with fixed contents. Deno tells a script its user id only
 * with `--allow-sys`, so the id is learnt from the owner of the marker this
 * process writes into a folder it has just made with mkdir(2); until then
 * an existing folder is never written into. A folder that is not provably
 * ours (a user's own folder of that name, another user's in a shared /tmp)
 * is never swept or written into: the next name, `.rocm-nightly-tmp-1` …
 * `-15`, is tried instead, and when all sixteen are taken the write fails
 * in one line. The folder is removed when its last entry goes. A SIGKILL
 * in the instant between its mkdir(2) and the marker's write leaves an
 * empty folder of this user's without the marker: the next sweep removes
 * that one with rmdir(2), which cannot remove anything but an empty folder.
 *
 * An entry `<id>` (a file or a folder) is alive while its owner holds an
 * exclusive flock(2) on its sibling `<id>.lock`, made first: the kernel drops
 * the lock when the owner dies, even by SIGKILL. The first temporary a
 * process makes in a folder sweeps that folder's private folders: each entry
 * whose lock is free, or that has no lock file, is removed (a folder
 * recursively, never following a link), then its lock file. An owner that
 * finds, once it holds the lock, that the path no longer names its lock file
 * (a sweeper took it in the instant between creation and lock) starts again
 * under a new id.
 *
 * Built-ins only: image runs inside the Nix build sandbox.
 *
 * @module
 */

import { writeAll } from "./bytes.ts";
import { lockIfFree, onCleanup } from "./cleanup.ts";
import { readRegularFile } from "./file_kind.ts";

/** The name of the private folder of temporaries; alternates add `-1` … `-15`. */
export const PRIVATE_FOLDER = ".rocm-nightly-tmp";
const SLOTS = 16;
const MARKER = ".rocm-nightly";
const MARKER_TEXT = "rocm-nightly temporaries: each <id> is alive while <id>.lock is flock(2)ed\n";
const MARKER_BYTES = new TextEncoder().encode(MARKER_TEXT);
/** At most this many entries of one private folder are looked at per sweep. */
const SWEEP_LIMIT = 10_000;
const ATTEMPTS = 10;

/** A private folder this process uses, and how many of its entries are alive. */
interface Folder {
  place: string;
  path: string;
  dev: number;
  ino: number;
  entries: number;
}

/** Learnt from the first marker this process writes (see the module comment). */
let ourUid: number | undefined;
const inUse = new Map<string, Folder>();
const sweptPlaces = new Set<string>();

/** A temporary in a private folder: a file or a folder at {@linkcode Temporary.path}. */
export interface Temporary extends Disposable {
  /** The temporary, inside the place's private folder. */
  readonly path: string;
  /**
   * Removes the temporary (a folder recursively, never following links) and
   * its lock, and the private folder when it was the last entry.
   */
  remove(): Promise<void>;
  /**
   * Lets go of a temporary that was moved away (renamed into place) or
   * removed already: its lock file goes, and the private folder when empty.
   */
  [Symbol.dispose](): void;
}

/** A temporary file, open for writing. */
export interface TemporaryFile extends Temporary {
  /** The open file; the caller closes it. */
  readonly file: Deno.FsFile;
}

/** Options for {@linkcode createTemporaryFile}. */
export interface TemporaryFileOptions {
  /**
   * Permission bits of the new file.
   *
   * @default {0o600}
   */
  mode?: number;
}

/** Options for {@linkcode sweepTemporaries}. */
export interface SweepOptions {
  /**
   * Called with a dead entry's path before it is removed (its lock is then
   * held): the local store reads its journal there. When it throws, the
   * entry is kept for a later sweep.
   */
  onDead?: (path: string) => Promise<void>;
}

/**
 * Creates a temporary file in the private folder of `place` (the folder of
 * the file it will become). Its name is `<random>-<hint>`.
 *
 * @example Usage
 * ```ts
 * import { createTemporaryFile } from "./temporaries.ts";
 *
 * const place = await Deno.makeTempDir();
 * const temporary = await createTemporaryFile(place, "out.bin");
 * await temporary.file.write(new TextEncoder().encode("complete\n"));
 * temporary.file.close();
 * await Deno.rename(temporary.path, `${place}/out.bin`);
 * temporary[Symbol.dispose](); // the private folder is gone again
 * ```
 *
 * @param place The folder it belongs to.
 * @param hint A word for people reading the name (e.g. the destination's name).
 * @param options The file's mode.
 * @returns The open temporary file.
 */
export async function createTemporaryFile(
  place: string,
  hint: string,
  options: TemporaryFileOptions = {},
): Promise<TemporaryFile> {
  const entry = await createEntry(
    place,
    hint,
    (path) => Deno.open(path, { write: true, createNew: true, mode: options.mode ?? 0o600 }),
  );
  return Object.assign(entry.temporary, { file: entry.made });
}

/**
 * Creates a temporary folder (mode 0700) in the private folder of `place`.
 *
 * @example Usage
 * ```ts
 * import { createTemporaryFolder } from "./temporaries.ts";
 *
 * const place = await Deno.makeTempDir();
 * const temporary = await createTemporaryFolder(place, "copy");
 * await Deno.writeTextFile(`${temporary.path}/a`, "a\n");
 * await temporary.remove();
 * ```
 *
 * @param place The folder it belongs to (e.g. TMPDIR).
 * @param hint A word for people reading the name.
 * @returns The temporary folder.
 */
export async function createTemporaryFolder(place: string, hint: string): Promise<Temporary> {
  return (await createEntry(place, hint, (path) => Deno.mkdir(path, { mode: 0o700 }))).temporary;
}

/**
 * Removes from the private folders of `place` (those provably this user's)
 * every entry whose owner is gone, and the private folders left empty. The
 * first temporary this process makes in a place does it; a caller that
 * needs a hook for dead entries calls it first.
 *
 * @example Usage
 * ```ts
 * import { sweepTemporaries } from "./temporaries.ts";
 * await sweepTemporaries(await Deno.makeTempDir()); // 0: nothing to sweep
 * ```
 *
 * @param place The folder whose private folders are swept.
 * @param options A hook for dead entries.
 * @returns How many entries were removed.
 */
export async function sweepTemporaries(place: string, options: SweepOptions = {}): Promise<number> {
  sweptPlaces.add(place);
  if (ourUid === undefined) {
    // Nothing can be proven ours yet: make (and release) the private folder
    // once, which learns the user id.
    const folder = await openFolder(place, false);
    folder.entries++;
    release(folder);
  }
  let removed = 0;
  for (let slot = 0; slot < SLOTS; slot++) {
    const path = `${place}/${slotName(slot)}`;
    if (await inspect(path) === undefined) {
      await removeUnfinished(path);
      continue;
    }
    removed += await sweepFolder(path, options);
    if (![...inUse.values()].some((folder) => folder.path === path)) removeFolderIfEmpty(path);
  }
  return removed;
}

function slotName(slot: number): string {
  return slot === 0 ? PRIVATE_FOLDER : `${PRIVATE_FOLDER}-${slot}`;
}

/**
 * The folder's identity when it is provably ours (see the module comment),
 * else `undefined`. Reads nothing through a link and opens nothing but a
 * regular file of the marker's size.
 */
async function inspect(path: string): Promise<{ dev: number; ino: number } | undefined> {
  if (ourUid === undefined) return undefined;
  try {
    const info = await Deno.lstat(path);
    // Group or others could swap our entries: not private.
    if (!info.isDirectory || info.uid !== ourUid || ((info.mode ?? 0o777) & 0o022) !== 0) {
      return undefined;
    }
    if (await readMarker(path, MARKER_BYTES.length) !== MARKER_TEXT) return undefined;
    return { dev: info.dev, ino: info.ino ?? 0 };
  } catch {
    return undefined;
  }
}

/**
 * The text of `<path>`'s marker: a regular file (not a link) of at most
 * `maxBytes` bytes, else it throws.
 */
async function readMarker(path: string, maxBytes: number): Promise<string> {
  const bytes = await readRegularFile(`${path}/${MARKER}`, { maxBytes, followSymlinks: false });
  return new TextDecoder().decode(bytes);
}

/**
 * The private folder of `place` this process uses: the first of the sixteen
 * names that is provably ours, else the first that does not exist (made
 * now). With `sweep`, the place's private folders are swept first (once per
 * process).
 */
async function openFolder(place: string, sweep = true): Promise<Folder> {
  const open = inUse.get(place);
  if (open !== undefined) return open;
  if (sweep && !sweptPlaces.has(place)) await sweepTemporaries(place);
  const reopened = inUse.get(place);
  if (reopened !== undefined) return reopened;
  let retries = 0;
  for (let slot = 0; slot < SLOTS; slot++) {
    const path = `${place}/${slotName(slot)}`;
    const ours = await inspect(path);
    if (ours !== undefined) return use({ place, path, ...ours, entries: 0 });
    try {
      await Deno.mkdir(path, { mode: 0o700 });
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) continue;
      throw new Error(`Cannot make a temporary in "${place}": ${(error as Error).message}`);
    }
    // Made by us: write the marker, whose owner is this process's user.
    const made = await mark(path);
    if (made !== undefined) return use({ place, path, ...made, entries: 0 });
    // A concurrent sweep took it as unfinished (see removeUnfinished): again.
    if (++retries > ATTEMPTS) {
      throw new Error(
        `Cannot make a temporary in "${place}": "${path}" is not private once made ` +
          `(a file system that keeps no owner or mode?)`,
      );
    }
    slot--;
  }
  throw new Error(
    `Cannot make a temporary in "${place}": "${PRIVATE_FOLDER}" and its ${SLOTS - 1} alternates ` +
      `("${PRIVATE_FOLDER}-1" …) all exist and none is provably this user's (remove the ` +
      `ones no run of rocm-nightly uses)`,
  );
}

/** Writes the marker into a folder just made; its identity, or `undefined` when it went meanwhile. */
async function mark(path: string): Promise<{ dev: number; ino: number } | undefined> {
  try {
    using marker = await Deno.open(`${path}/${MARKER}`, {
      write: true,
      createNew: true,
      mode: 0o600,
    });
    await writeAll(marker, MARKER_BYTES);
    ourUid ??= (await marker.stat()).uid ?? undefined;
  } catch (error) {
    // Gone meanwhile (a concurrent sweep took it as unfinished), or a
    // concurrent run marked it first: inspect() decides.
    if (!(error instanceof Deno.errors.NotFound || error instanceof Deno.errors.AlreadyExists)) {
      throw error;
    }
  }
  return await inspect(path);
}

/**
 * A SIGKILL between mkdir(2) and the marker's write (or between the
 * marker's removal and rmdir(2)) leaves a private folder without its marker.
 * One that is this user's, private, and holds nothing but at most a
 * marker cut short is removed: with rmdir(2), which removes only an empty
 * folder, so nothing of anyone's is lost.
 */
async function removeUnfinished(path: string): Promise<void> {
  try {
    const info = await Deno.lstat(path);
    if (!info.isDirectory || info.uid !== ourUid || ((info.mode ?? 0o777) & 0o022) !== 0) return;
    const names: string[] = [];
    for await (const entry of Deno.readDir(path)) {
      names.push(entry.name);
      if (names.length > 1 || entry.name !== MARKER) return;
    }
    if (names.length === 1) {
      if (!MARKER_TEXT.startsWith(await readMarker(path, MARKER_BYTES.length - 1))) return;
      await Deno.remove(`${path}/${MARKER}`);
    }
    await Deno.remove(path);
  } catch {
    // gone, not empty, or not ours to judge
  }
}

function use(folder: Folder): Folder {
  const open = inUse.get(folder.place);
  if (open !== undefined) return open; // made meanwhile by a concurrent caller
  inUse.set(folder.place, folder);
  return folder;
}

/** One entry fewer: the private folder goes when it held the last. */
function release(folder: Folder): void {
  if (--folder.entries > 0) return;
  if (inUse.get(folder.place) === folder) inUse.delete(folder.place);
  removeFolderIfEmpty(folder.path);
}

/**
 * rmdir(2) of a private folder that holds only its marker. A concurrent run
 * may have put an entry in meanwhile: the marker is then written again.
 */
function removeFolderIfEmpty(path: string): void {
  try {
    for (const entry of Deno.readDirSync(path)) if (entry.name !== MARKER) return;
    Deno.removeSync(`${path}/${MARKER}`);
    Deno.removeSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    try {
      const marker = Deno.openSync(`${path}/${MARKER}`, {
        write: true,
        createNew: true,
        mode: 0o600,
      });
      try {
        marker.writeSync(MARKER_BYTES);
      } finally {
        marker.close();
      }
    } catch {
      // still there, or the folder is gone
    }
  }
}

/**
 * Makes `<id>.lock`, holds it, checks that the path still names it, then
 * makes the entry `<id>` with `make`. Starts again under a new id (and a new
 * private folder, when it went) after a sweeper's interference.
 */
async function createEntry<T>(
  place: string,
  hint: string,
  make: (path: string) => Promise<T>,
): Promise<{ temporary: Temporary; made: T }> {
  const word = hint.replace(/[^A-Za-z0-9_-]+/g, "-").slice(0, 48) || "tmp";
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const folder = await openFolder(place);
    const id = `${crypto.getRandomValues(new Uint32Array(2)).join("").slice(0, 12)}-${word}`;
    const path = `${folder.path}/${id}`;
    let lock: Deno.FsFile;
    try {
      lock = await Deno.open(`${path}.lock`, { read: true, write: true, createNew: true });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        // A sweep of another run removed the folder: make it again.
        if (inUse.get(place) === folder) inUse.delete(place);
        continue;
      }
      if (error instanceof Deno.errors.AlreadyExists) continue;
      throw new Error(`Cannot make a temporary in "${place}": ${(error as Error).message}`);
    }
    folder.entries++;
    let kept = false;
    try {
      await lock.lock(true);
      if (!(await stillNames(`${path}.lock`, lock)) || !(await sameFolder(folder))) {
        if (inUse.get(place) === folder) inUse.delete(place);
        continue;
      }
      const made = await make(path);
      kept = true;
      return { temporary: temporary(folder, path, lock), made };
    } finally {
      if (!kept) {
        await Deno.remove(`${path}.lock`).catch(() => {});
        lock.close();
        release(folder);
      }
    }
  }
  throw new Error(
    `Cannot make a temporary in "${place}": its private folder kept changing (${ATTEMPTS} attempts)`,
  );
}

/** Whether `path` is still the file open as `file` (not removed and made anew). */
async function stillNames(path: string, file: Deno.FsFile): Promise<boolean> {
  try {
    const [now, held] = await Promise.all([Deno.lstat(path), file.stat()]);
    return now.dev === held.dev && now.ino === held.ino;
  } catch {
    return false;
  }
}

async function sameFolder(folder: Folder): Promise<boolean> {
  const now = await inspect(folder.path);
  return now !== undefined && now.dev === folder.dev && now.ino === folder.ino;
}

function temporary(folder: Folder, path: string, lock: Deno.FsFile): Temporary {
  let done = false;
  const letGo = (): void => {
    if (done) return;
    done = true;
    registration[Symbol.dispose]();
    try {
      Deno.removeSync(`${path}.lock`);
    } catch {
      // gone already
    }
    lock.close();
    release(folder);
  };
  // A signal that ends the process first still takes the entry away.
  const registration = onCleanup(() => {
    try {
      Deno.removeSync(path, { recursive: true });
    } finally {
      letGo();
    }
  });
  return {
    path,
    remove: async () => {
      if (done) return;
      await Deno.remove(path, { recursive: true }).catch((error) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
      letGo();
    },
    [Symbol.dispose]: letGo,
  };
}

/** Removes the dead entries of one private folder (see the module comment). */
async function sweepFolder(folder: string, options: SweepOptions): Promise<number> {
  const names = new Set<string>();
  try {
    for await (const entry of Deno.readDir(folder)) {
      if (entry.name !== MARKER) names.add(entry.name);
      if (names.size >= SWEEP_LIMIT) break;
    }
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const lockName = name.endsWith(".lock") ? name : `${name}.lock`;
    const entryName = lockName.slice(0, -".lock".length);
    // An entry and its lock are one: handled once, by the entry's name when listed.
    if (name === lockName && names.has(entryName)) continue;
    if (await removeIfDead(`${folder}/${entryName}`, `${folder}/${lockName}`, options)) removed++;
  }
  return removed;
}

/**
 * Takes the entry's lock (without waiting); when it is free, or the lock
 * file is missing, the owner is gone: the entry is removed, then the lock.
 */
async function removeIfDead(
  entry: string,
  lockPath: string,
  options: SweepOptions,
): Promise<boolean> {
  let lock: Deno.FsFile | undefined;
  try {
    const info = await Deno.lstat(lockPath);
    if (info.isFile) {
      lock = await Deno.open(lockPath, { read: true });
      if (!(await lockIfFree(lock, true)) || !(await stillNames(lockPath, lock))) {
        lock.close(); // alive (or, before Deno 2.7, not known to be dead): kept
        return false;
      }
    }
  } catch (error) {
    lock?.close();
    if (!(error instanceof Deno.errors.NotFound)) return false;
    lock = undefined;
  }
  try {
    if (options.onDead !== undefined && await exists(entry)) await options.onDead(entry);
    await Deno.remove(entry, { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    await Deno.remove(lockPath, { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    return true;
  } catch {
    return false;
  } finally {
    lock?.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
