/**
 * Writing a downloaded file straight into a local Nix store, the way Nix's
 * own installer fills a store: the bytes go into a file in the store folder
 * as they arrive, and once the download is hashed the file is renamed to
 * its fixed-output path and registered with `nix-store --register-validity`.
 * One copy of the bytes, no daemon in between: the daemon route
 * (lib/store/nix_daemon.ts) writes them too, but then reads the whole file again
 * for its NAR hash after the last byte.
 *
 * It takes the locks Nix takes, so a running garbage collector or a
 * concurrent `nix-store --add-fixed` of the same path cannot get in the way:
 *
 * - the file being written and the final path are temporary GC roots of this
 *   process (`<state>/temproots/<pid>`, flock'ed while the process lives;
 *   while a collection runs, each root is also sent to its socket,
 *   `<state>/gc-socket/socket`), so the collector neither deletes the file
 *   mid-download nor the path between the rename and its registration;
 * - the final path is locked (`<path>.lock`) while it is checked, renamed
 *   into place and registered, as Nix's addToStore locks it.
 *
 * A SIGKILL leaves the file being written and the temporary-roots file
 * behind, so each is named first in a journal: a temporary of
 * lib/fs/temporaries.ts in the private folder of the state folder
 * (`<state>/.rocm-nightly-tmp/`), alive while its process is. The next run
 * that opens the store reads the journals of dead processes and removes
 * what they name: the file, unless it is a valid store path, and the
 * temporary-roots file, unless it is locked or is another inode by now.
 *
 * The route applies when this process can write the store's database, as
 * root on a single-user or multi-user install, and Nix would use that local
 * store: `NIX_REMOTE` unset, empty, `auto` or `local`, no `store =`
 * setting naming another store, and a Deno that takes a lock without
 * waiting (2.7 and later: the GC lock is shared unless a collector runs,
 * which must then be told of each root through its socket). Otherwise {@linkcode openLocalStoreFile}
 * returns `undefined` and the caller uses the daemon. A path registered this
 * way has no content-address (`ca`) field: Nix 2.8's register-validity
 * cannot record one. Nix verifies it by its NAR hash like any other path.
 *
 * @module
 */

import { concatBytes, writeAll } from "../fs/bytes.ts";
import { canLockIfFree, lockIfFree, onCleanup } from "../fs/cleanup.ts";
import { openRegularFile, readRegularFile } from "../fs/file_kind.ts";
import { createTemporaryFile, sweepTemporaries, type Temporary } from "../fs/temporaries.ts";
import { Hasher } from "../hash/hasher.ts";
import { formatHash, type Hash, type HashAlgorithm } from "../hash/hash.ts";
import { encodeNix32 } from "../hash/nix32.ts";
import { isValidStorePath } from "./nix_store.ts";
import { wireNumber, wirePadding, wireString } from "./nix_wire.ts";

/** Where a local store lives: its store folder and its state folder. */
export interface LocalStoreLayout {
  /** The store folder: `/nix/store` (the folder `fetchurl`'s paths are computed for). */
  storeDir: string;
  /** The state folder, `/nix/var/nix` unless `NIX_STATE_DIR` says otherwise. */
  stateDir: string;
}

/** The local store this process would write, or why the daemon route is taken. */
export type LocalStoreChoice =
  | { layout: LocalStoreLayout }
  | { layout?: undefined; reason: string };

/** Options for {@linkcode chooseLocalStore}. */
export interface ChooseLocalStoreOptions {
  /**
   * Reads an environment variable (NIX_REMOTE, NIX_CONFIG, NIX_CONF_DIR,
   * NIX_STORE_DIR, NIX_STATE_DIR), for a decision about another
   * environment than this process's.
   *
   * @default {(name) => Deno.env.get(name)}
   */
  env?: (name: string) => string | undefined;
}

/**
 * Decides whether the store Nix would use here is a local store this
 * process can write (see the module documentation).
 *
 * @example Usage
 * ```ts ignore
 * import { chooseLocalStore } from "./local_store.ts";
 * const choice = chooseLocalStore();
 * if (choice.layout === undefined) console.log(`through nix-daemon: ${choice.reason}`);
 * ```
 *
 * @param options Where the environment is read from.
 * @returns The layout, or the reason the daemon route applies.
 */
export function chooseLocalStore(options: ChooseLocalStoreOptions = {}): LocalStoreChoice {
  // Adding a temporary root takes the GC lock without waiting, and asks a
  // running collector through its socket when that fails (as Nix does).
  // Without such a lock (Deno before 2.7) a running collector cannot be told
  // from a free lock; nix-daemon takes its own locks, so it adds the path.
  if (!canLockIfFree) {
    return {
      reason: `Deno ${Deno.version.deno} cannot take the GC lock without waiting (Deno 2.7 can)`,
    };
  }
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const storeDir = env("NIX_STORE_DIR");
  if (storeDir !== undefined && storeDir !== "/nix/store") {
    return { reason: `NIX_STORE_DIR is "${storeDir}" (only /nix/store is written directly)` };
  }
  const remote = env("NIX_REMOTE") ?? "";
  if (!["", "auto", "local"].includes(remote)) return { reason: `NIX_REMOTE is "${remote}"` };
  const configured = storeSetting(env);
  if (configured !== undefined && !["auto", "local"].includes(configured)) {
    return { reason: `the Nix setting "store" is "${configured}"` };
  }
  const layout = {
    storeDir: "/nix/store",
    stateDir: env("NIX_STATE_DIR") ?? "/nix/var/nix",
  };
  // Nix's own test for "auto": can this process write the database?
  try {
    Deno.openSync(`${layout.stateDir}/db/big-lock`, { read: true, write: true }).close();
  } catch (error) {
    return { reason: `"${layout.stateDir}/db" is not writable here (${(error as Error).name})` };
  }
  return { layout };
}

/** The last `store = …` of NIX_CONFIG, else of /etc/nix/nix.conf (NIX_CONFIG wins in Nix). */
function storeSetting(env: (name: string) => string | undefined): string | undefined {
  const find = (text: string): string | undefined =>
    [...text.matchAll(/^[ \t]*store[ \t]*=[ \t]*(\S*)[ \t]*$/gm)].at(-1)?.[1];
  const fromEnv = find(env("NIX_CONFIG") ?? "");
  if (fromEnv !== undefined) return fromEnv;
  const confDir = env("NIX_CONF_DIR") ?? "/etc/nix";
  try {
    return find(Deno.readTextFileSync(`${confDir}/nix.conf`));
  } catch {
    return undefined;
  }
}

/** What {@linkcode LocalStoreFile.finish} did. */
export interface LocalStoreResult {
  /** The store path. */
  path: string;
  /** Whether the path was valid before (then this file was discarded). */
  existed: boolean;
}

/**
 * Starts a file bound for the local store at `layout`, or returns
 * `undefined` when the store folder cannot be written (the caller then
 * takes the daemon route).
 *
 * @example Usage
 * ```ts ignore
 * import { chooseLocalStore, openLocalStoreFile } from "./local_store.ts";
 * import { fixedOutputPath } from "./nix_store.ts";
 *
 * const { layout } = chooseLocalStore();
 * const file = layout && await openLocalStoreFile(layout, "hello.txt", "sha256");
 * if (file !== undefined) {
 *   await file.write(new TextEncoder().encode("hello\n"));
 *   const { path } = await file.finish(fixedOutputPath("hello.txt", await file.digest()));
 * }
 * ```
 *
 * @param layout The store, from {@linkcode chooseLocalStore}.
 * @param name The store name (the caller checked it).
 * @param algorithm The hash algorithm of the fixed-output path.
 * @returns The open file, or `undefined`.
 */
export async function openLocalStoreFile(
  layout: LocalStoreLayout,
  name: string,
  algorithm: HashAlgorithm,
): Promise<LocalStoreFile | undefined> {
  if (!canLockIfFree) return undefined; // see chooseLocalStore
  const roots = await tempRoots(layout);
  for (let attempt = 0; attempt < 10; attempt++) {
    // A store path of its own (a random hash part), so that the collector
    // can be told to keep it: temporary roots must be store paths.
    const random = encodeNix32(crypto.getRandomValues(new Uint8Array(20)));
    const path = `${layout.storeDir}/${random}-${name}`;
    // Named in the journal before it exists: a SIGKILL from here on leaves
    // it to the next run's sweep.
    const journal = await writeJournal(layout.stateDir, "store-file", { partial: path });
    await roots.add(path);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
    } catch (error) {
      await journal.remove();
      if (error instanceof Deno.errors.AlreadyExists) continue;
      // Not this process's to write (NixOS mounts the store read-only; Nix
      // itself remounts it in a namespace of its own, which Deno cannot).
      const code = (error as { code?: string }).code;
      if (error instanceof Deno.errors.PermissionDenied || code === "EROFS" || code === "EPERM") {
        await roots.remove([path]);
        return undefined;
      }
      throw new Error(
        `Cannot write the Nix store "${layout.storeDir}": ${(error as Error).message}`,
      );
    }
    return new LocalStoreFile(layout, path, file, algorithm, journal);
  }
  throw new Error(`Cannot create a file in "${layout.storeDir}": ten random names were taken`);
}

/**
 * A file being written into the store folder and hashed as it is written
 * (on this thread: the write itself runs on Deno's I/O thread meanwhile).
 * {@linkcode LocalStoreFile.finish} moves it to its store path and registers
 * it; {@linkcode LocalStoreFile.abort} removes it.
 */
export class LocalStoreFile {
  #layout: LocalStoreLayout;
  #temporary: string;
  #file: Deno.FsFile | undefined;
  #hasher: Hasher;
  #cleanup: Disposable;
  /** The journal entry naming the file (see the module documentation). */
  #journal: Temporary | undefined;
  #done = false;
  #written = 0;
  /** The NAR hash, computed in the same pass when the size was announced first. */
  #nar: { hasher: Hasher; framing: NarFraming; size: number } | undefined;
  /** The file the kept bytes are copied from (see {@linkcode LocalStoreFile.continueFrom}). */
  #source: Deno.FsFile | undefined;
  /** How many kept bytes were moved in (on disk here before they are read). */
  #movedIn = 0;

  /** Use {@linkcode openLocalStoreFile}. */
  constructor(
    layout: LocalStoreLayout,
    temporary: string,
    file: Deno.FsFile,
    algorithm: HashAlgorithm,
    journal?: Temporary,
  ) {
    this.#layout = layout;
    this.#journal = journal;
    this.#temporary = temporary;
    this.#file = file;
    this.#hasher = new Hasher(algorithm);
    // A signal that outruns the unwinding still takes the file away.
    this.#cleanup = onCleanup(() => Deno.removeSync(temporary));
  }

  /** The file being written, under its temporary store name. */
  get temporaryPath(): string {
    return this.#temporary;
  }

  /**
   * Announces the file's size before its first byte (a download's
   * Content-Length): the NAR hash is then computed in the same pass, and
   * registration reads nothing back. Without it, nix-store hashes the file.
   *
   * @param size The size the file will have, when known.
   */
  begin(size: number | undefined): void {
    this.#nar = undefined;
    if (size === undefined || this.#written !== 0) return;
    const framing = flatFileNar(size);
    const hasher = new Hasher("sha256");
    hasher.update(framing.head);
    this.#nar = { hasher, framing, size };
  }

  /**
   * Starts the file with the first `size` bytes of `source`: a download cut
   * off earlier (the download cache's file), which continues after them
   * through {@linkcode LocalStoreFile.write}. `source` is moved into the
   * store folder by rename(2) when it can be (the same file system; it is
   * then gone from where it was), else its bytes are copied as they are
   * read. Either way the returned reader reads each kept byte once, for the
   * download's hash, and hashes it here too (the NAR hash included, `total`
   * being the whole file's size): registration reads nothing back, and the
   * bytes after them are never read.
   *
   * @param source The file holding the kept bytes (flushed, not written meanwhile).
   * @param size How many of its bytes are kept.
   * @param total The whole file's size.
   * @returns Whether the bytes were moved, and the reader of the kept bytes.
   * @throws {Error} When the file was written to already, or `source` is not a plain file.
   */
  async continueFrom(source: string, size: number, total: number): Promise<KeptBytes> {
    if (this.#file === undefined || this.#done || this.#written !== 0) {
      throw new Error(`Cannot continue "${source}" in "${this.#temporary}": it was written to`);
    }
    this.begin(total);
    let moved = false;
    try {
      // Over the empty file this process made: the journal and the GC root
      // that name it now cover the kept bytes.
      await Deno.rename(source, this.#temporary);
      moved = true;
    } catch {
      // Another file system (or not ours to move): copied as they are read.
    }
    if (moved) {
      this.#file.close();
      this.#file = undefined;
      const file = await Deno.open(this.#temporary, { read: true, write: true });
      this.#file = file;
      const info = await file.stat();
      if (!info.isFile || info.nlink !== 1 || info.size < size) {
        throw new Error(
          `Cannot continue "${source}" in the Nix store: it is not a plain file of ${size} bytes`,
        );
      }
      // Read from the first byte; the download's bytes then follow the kept ones.
      await file.truncate(size);
      await file.seek(0, Deno.SeekMode.Start);
      this.#movedIn = size;
    } else {
      this.#source = await openRegularFile(source, { followSymlinks: false });
    }
    let left = size;
    const read = async (view: Uint8Array): Promise<number> => {
      const from = moved ? this.#file : this.#source;
      if (left === 0 || from === undefined) return 0;
      const n = await from.read(left < view.length ? view.subarray(0, left) : view) ?? 0;
      left = n === 0 ? 0 : left - n;
      if (left === 0) this.#closeSource();
      const chunk = view.subarray(0, n);
      if (!moved) {
        await this.write(chunk);
        return n;
      }
      this.#hasher.update(chunk);
      this.#nar?.hasher.update(chunk);
      this.#written += n;
      return n;
    };
    return { moved, read };
  }

  #closeSource(): void {
    this.#source?.close();
    this.#source = undefined;
  }

  /**
   * Appends bytes and hashes them; the chunk may be reused once the promise
   * settles.
   *
   * @param chunk The next bytes.
   */
  async write(chunk: Uint8Array): Promise<void> {
    const file = this.#file;
    if (file === undefined) throw new Error("The store file is closed");
    // The write goes to Deno's blocking-I/O thread: hash while it runs.
    let written = file.write(chunk);
    this.#hasher.update(chunk);
    this.#nar?.hasher.update(chunk);
    this.#written += chunk.length;
    for (let at = await written; at < chunk.length; at += await written) {
      written = file.write(chunk.subarray(at));
    }
  }

  /** Discards everything written so far (a download that starts over). */
  async truncate(): Promise<void> {
    this.#closeSource();
    await this.#file?.truncate(0);
    await this.#file?.seek(0, Deno.SeekMode.Start);
    this.#hasher = new Hasher(this.#hasher.algorithm);
    this.#written = 0;
    this.#movedIn = 0;
    this.#nar = undefined;
  }

  /**
   * The digest of every byte written.
   *
   * @returns The flat hash of the file.
   */
  digest(): Promise<Hash> {
    return Promise.resolve(this.#hasher.digest());
  }

  /**
   * Moves the file to `storePath` (the fixed-output path of its hash) and
   * registers it, unless that path is valid already: then the file is
   * discarded and the store is left as it was.
   *
   * @param storePath The path the file's hash gives.
   * @returns The path, and whether it existed.
   * @throws {Error} When nix-store refuses the registration (the file is then removed).
   */
  async finish(storePath: string): Promise<LocalStoreResult> {
    this.#closeSource();
    this.#file?.close();
    this.#file = undefined;
    const roots = await tempRoots(this.#layout);
    await roots.add(storePath);
    try {
      return await this.#moveIntoPlace(storePath);
    } catch (error) {
      await this.abort(); // the file, unless it was moved already
      throw error;
    } finally {
      // The path is registered (or was there, or is gone): as collectable as
      // nix-prefetch-url leaves it, and the caller can still delete it.
      await roots.remove([this.#temporary, storePath]);
    }
  }

  async #moveIntoPlace(storePath: string): Promise<LocalStoreResult> {
    await using _lock = await lockPath(`${storePath}.lock`);
    if (await isValidStorePath(storePath)) {
      await this.abort();
      return { path: storePath, existed: true };
    }
    // A file there is not valid: what an interrupted addition left, as Nix
    // itself would see it.
    await Deno.remove(storePath, { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    await Deno.chmod(this.#temporary, 0o444);
    await Deno.rename(this.#temporary, storePath);
    this.#done = true;
    this.#cleanup[Symbol.dispose]();
    await this.#journal?.remove();
    let nar: { hex: string; size: number } | undefined;
    if (this.#nar !== undefined && this.#nar.size === this.#written) {
      const { hasher, framing } = this.#nar;
      hasher.update(framing.tail);
      nar = { hex: formatHash(hasher.digest(), "hex"), size: framing.narSize };
    }
    try {
      await register(storePath, nar);
    } catch (error) {
      await Deno.remove(storePath).catch(() => {});
      throw error;
    }
    return { path: storePath, existed: false };
  }

  /**
   * Moves what was written so far out of the store folder to `target` (a
   * download cut off midway, kept for a later run to continue), flushed to
   * disk first. Only a rename: when `target` is on another file system the
   * file is removed as by {@linkcode LocalStoreFile.abort}.
   *
   * @param target Where the bytes go (replaced if it exists).
   * @returns How many bytes were moved, or `undefined` when none were.
   */
  async moveOut(target: string): Promise<number | undefined> {
    this.#closeSource();
    const file = this.#file;
    // The bytes on disk: those written, or those moved in and not all read yet.
    const size = Math.max(this.#written, this.#movedIn);
    if (file === undefined || this.#done || size === 0) {
      await this.abort();
      return undefined;
    }
    try {
      await file.syncData();
      await Deno.rename(this.#temporary, target);
    } catch {
      await this.abort();
      return undefined;
    }
    file.close();
    this.#file = undefined;
    this.#done = true;
    this.#cleanup[Symbol.dispose]();
    await this.#journal?.remove();
    await (await tempRoots(this.#layout)).remove([this.#temporary]);
    return size;
  }

  /** Removes the file (nothing reaches the store). */
  async abort(): Promise<void> {
    this.#closeSource();
    this.#file?.close();
    this.#file = undefined;
    if (this.#done) return;
    this.#done = true;
    this.#cleanup[Symbol.dispose]();
    await Deno.remove(this.#temporary).catch(() => {});
    await this.#journal?.remove();
    await (await tempRoots(this.#layout)).remove([this.#temporary]);
  }
}

/** The kept bytes a store file continues after (see {@linkcode LocalStoreFile.continueFrom}). */
export interface KeptBytes {
  /** Whether they were moved into the store folder (else they are copied as they are read). */
  moved: boolean;
  /**
   * Reads the next kept bytes into `view`, from the first, hashing them.
   *
   * @param view Where to read to.
   * @returns How many bytes were read; 0 at the end.
   */
  read(view: Uint8Array): Promise<number>;
}

/** The bytes around a regular file's contents in its NAR serialisation. */
export interface NarFraming {
  /** Everything before the contents. */
  head: Uint8Array;
  /** The contents' zero padding to 8 bytes, and the closing parenthesis. */
  tail: Uint8Array;
  /** The size of the whole NAR. */
  narSize: number;
}

/**
 * The NAR framing of a flat, non-executable file of `size` bytes (what a
 * fixed-output `fetchurl` path is): its NAR hash is the SHA-256 of head,
 * contents and tail, so it can be computed while the contents stream by.
 *
 * @example Usage
 * ```ts
 * import { flatFileNar } from "./local_store.ts";
 * flatFileNar(3).narSize; // 120: 112 bytes of framing, 3 of contents, 5 of padding
 * ```
 *
 * @param size The file's size.
 * @returns The framing.
 */
export function flatFileNar(size: number): NarFraming {
  const head = concatBytes([
    ...["nix-archive-1", "(", "type", "regular", "contents"].map(wireString),
    wireNumber(size),
  ]);
  const tail = concatBytes([new Uint8Array(wirePadding(size)), wireString(")")]);
  return { head, tail, narSize: head.length + size + tail.length };
}

/**
 * `nix-store --register-validity`: it canonicalises the file (mode 0444,
 * mtime 1), and hashes its NAR unless `nar` gives the hash and size.
 */
async function register(path: string, nar?: { hex: string; size: number }): Promise<void> {
  const child = new Deno.Command("nix-store", {
    args: ["--register-validity", ...(nar === undefined ? [] : ["--hash-given"])],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  // The path, [its NAR hash and size,] no deriver, no references.
  const given = nar === undefined ? "" : `sha256:${nar.hex}\n${nar.size}\n`;
  try {
    await writer.write(new TextEncoder().encode(`${path}\n${given}\n0\n`));
    await writer.close();
  } catch {
    // nix-store exited without reading: its exit status and stderr say why.
  }
  const { success, stderr } = await child.output();
  if (!success) {
    const detail = new TextDecoder().decode(stderr).trim().split("\n").at(-1) ?? "";
    throw new Error(`Cannot register "${path}" in the Nix store: nix-store failed: ${detail}`);
  }
}

/**
 * Locks `lockFile` as Nix's PathLocks do: an exclusive flock on a file that
 * is removed on release, with a "d" written into it so that a process
 * waiting on the same file knows to open it anew.
 */
async function lockPath(lockFile: string): Promise<AsyncDisposable> {
  const file = await lockEmptyFile(lockFile);
  if (file === undefined) {
    throw new Error(`Cannot lock "${lockFile}": it was replaced 100 times in a row`);
  }
  return {
    [Symbol.asyncDispose]: async () => {
      await Deno.remove(lockFile).catch(() => {});
      await file.write(new TextEncoder().encode("d")).catch(() => 0);
      file.close();
    },
  };
}

/**
 * Opens `path` (made when missing) under an exclusive flock, as Nix's
 * PathLocks and temporary roots do: one whose holder deleted it while this
 * process waited has a "d" in it, and the path is opened anew (100 tries,
 * then `undefined`). `before` runs before each try.
 */
async function lockEmptyFile(
  path: string,
  before?: () => Promise<void>,
): Promise<Deno.FsFile | undefined> {
  for (let attempt = 0; attempt < 100; attempt++) {
    await before?.();
    const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    await file.lock(true);
    if ((await file.stat()).size === 0) return file;
    file.close(); // its holder removed it: take the new one
  }
  return undefined;
}

/** This process's temporary GC roots, one file per store (by state folder). */
interface TempRoots {
  add(path: string): Promise<void>;
  /** Drops roots again: a registered path is then as collectable as any other unreferenced one. */
  remove(paths: readonly string[]): Promise<void>;
}

const rootsByState = new Map<string, Promise<TempRoots>>();

function tempRoots(layout: LocalStoreLayout): Promise<TempRoots> {
  let roots = rootsByState.get(layout.stateDir);
  if (roots === undefined) {
    // What killed runs left goes first (once per process and store).
    roots = sweepJournals(layout).then(() => openTempRoots(layout.stateDir));
    rootsByState.set(layout.stateDir, roots);
    roots.catch(() => rootsByState.delete(layout.stateDir));
  }
  return roots;
}

/**
 * Nix's temporary-roots protocol (libstore/gc.cc): `<state>/temproots/<pid>`
 * holds NUL-terminated store paths under an exclusive flock kept while the
 * process lives. A collector that can take the lock knows the owner is dead
 * and deletes the file (writing "d" into it), hence the retry on a non-empty
 * file. A root is added with a shared lock on `<state>/gc.lock`; when that
 * fails, a collection is running and gets the root through its socket.
 */
async function openTempRoots(stateDir: string): Promise<TempRoots> {
  const dir = `${stateDir}/temproots`;
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/${Deno.pid}`;
  // Another process of this pid is dead: its file is stale.
  const held = await lockEmptyFile(path, () => Deno.remove(path).catch(() => {}));
  if (held === undefined) throw new Error(`Cannot create "${path}": a collector kept deleting it`);
  const { dev, ino } = await held.stat();
  const journal = await writeJournal(stateDir, "temproots", {
    temproots: path,
    dev,
    ino: ino ?? 0,
  });
  onCleanup(() => Deno.removeSync(path));
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(path);
      Deno.removeSync(journal.path);
    } catch {
      // gone already
    }
    journal[Symbol.dispose]();
  });
  const encoder = new TextEncoder();
  const openGcLock = (): Promise<Deno.FsFile> =>
    Deno.open(`${stateDir}/gc.lock`, { read: true, write: true, create: true, mode: 0o600 });
  let roots: string[] = [];
  // One change at a time: concurrent downloads (update --jobs) share the file.
  let last: Promise<unknown> = Promise.resolve();
  const serially = <T>(change: () => Promise<T>): Promise<T> => {
    const next = last.then(change, change);
    last = next.catch(() => {});
    return next;
  };
  const add = async (root: string): Promise<void> => {
    using gcLock = await openGcLock();
    for (let attempt = 0; !(await lockIfFree(gcLock, false)); attempt++) {
      if (attempt === 100) throw new Error(`Cannot add a GC root: the collector never answered`);
      if (await sendToCollector(`${stateDir}/gc-socket/socket`, root)) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    roots.push(root);
    await writeAll(held, encoder.encode(`${root}\0`));
  };
  const remove = async (paths: readonly string[]): Promise<void> => {
    // No collection may read the file while it is rewritten. One that is
    // running holds the lock until it ends: the roots then stay until this
    // process exits (harmless, and rare).
    using gcLock = await openGcLock();
    if (!(await lockIfFree(gcLock, false))) return;
    roots = roots.filter((root) => !paths.includes(root));
    await held.truncate(0);
    await held.seek(0, Deno.SeekMode.Start);
    await writeAll(held, encoder.encode(roots.map((root) => `${root}\0`).join("")));
  };
  return {
    add: (root) => serially(() => add(root)),
    remove: (paths) => serially(() => remove(paths)),
  };
}

/** Tells a running collector about a root; `false` when it is gone (then the lock is free). */
async function sendToCollector(socket: string, root: string): Promise<boolean> {
  let connection: Deno.UnixConn;
  try {
    connection = await Deno.connect({ transport: "unix", path: socket });
  } catch {
    return false;
  }
  try {
    await connection.write(new TextEncoder().encode(`${root}\n`));
    const ack = new Uint8Array(1);
    return (await connection.read(ack)) === 1 && ack[0] === 0x31; // "1"
  } catch {
    return false;
  } finally {
    connection.close();
  }
}

/** What a journal entry names: a file being written into the store, or a temporary-roots file. */
interface JournalRecord {
  partial?: string;
  temproots?: string;
  dev?: number;
  ino?: number;
}

/** A journal entry holding `record`, alive while this process is. */
async function writeJournal(
  stateDir: string,
  hint: string,
  record: JournalRecord,
): Promise<Temporary> {
  const journal = await createTemporaryFile(stateDir, hint);
  try {
    await writeAll(journal.file, new TextEncoder().encode(`${JSON.stringify(record)}\n`));
  } catch (error) {
    await journal.remove();
    throw error;
  } finally {
    journal.file.close();
  }
  return journal;
}

/** Removes what the journals of dead processes name (see the module documentation). */
async function sweepJournals(layout: LocalStoreLayout): Promise<void> {
  await sweepTemporaries(layout.stateDir, {
    onDead: async (entry) => {
      let record: JournalRecord;
      try {
        const bytes = await readRegularFile(entry, { maxBytes: 4096, followSymlinks: false });
        record = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        // Not a journal (a folder, a link, too big): nothing to read; or cut
        // short by the kill, before the file it names was made.
        return;
      }
      if (typeof record.partial === "string") await removePartial(layout, record.partial);
      if (typeof record.temproots === "string") await removeDeadRoots(layout, record);
    },
  });
}

/** A dead process's file in the store folder, unless it is (by now) a valid path. */
async function removePartial(layout: LocalStoreLayout, path: string): Promise<void> {
  const name = path.slice(layout.storeDir.length + 1);
  if (!path.startsWith(`${layout.storeDir}/`) || !/^[0-9a-df-np-sv-z]{32}-[^/]+$/.test(name)) {
    return;
  }
  try {
    if (!(await Deno.lstat(path)).isFile) return;
  } catch {
    return; // never made, or renamed to its store path
  }
  if (await isValidStorePath(path)) return;
  await Deno.remove(path).catch(() => {});
}

/**
 * A dead process's temporary-roots file: only when no one holds it and it is
 * still the inode the journal names (a process of the same pid makes its
 * own). As Nix's collector does, "d" is written into it once it is unlinked,
 * so that a process that opened it meanwhile knows to make a new one.
 */
async function removeDeadRoots(layout: LocalStoreLayout, record: JournalRecord): Promise<void> {
  const path = record.temproots!;
  if (!/^\d+$/.test(path.slice(`${layout.stateDir}/temproots/`.length))) return;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, write: true });
  } catch {
    return; // gone already (the collector takes dead ones too)
  }
  try {
    if (!(await lockIfFree(file, true))) return;
    const [now, held] = await Promise.all([Deno.lstat(path), file.stat()]);
    if (held.dev !== record.dev || held.ino !== record.ino) return;
    if (now.dev !== held.dev || now.ino !== held.ino) return;
    await Deno.remove(path);
    await file.write(new TextEncoder().encode("d"));
  } finally {
    file.close();
  }
}
