/**
 * The download cache: where `update` keeps the tarballs it downloads while
 * they arrive, so that a run that fails (one target's 404, a signal, a lost
 * connection) keeps the work it did, and the next run continues each file
 * with a `Range` request instead of starting over. With a Nix store, a
 * download goes straight into the store's file (no second copy), and only
 * if it is cut off do the bytes received move into the cache (see
 * {@linkcode CacheEntry.adopt}); a continued one continues in the store's
 * file too: the kept bytes are moved there (or, on another file system or
 * through nix-daemon, copied as they are read for the hash; see
 * {@linkcode CacheEntry.handOver}), so each byte is read at most once. Once a file is in the store its bytes leave the
 * cache and a small record of what was added stays, so that the next run
 * knows the file's hash without its bytes.
 *
 * The folder is `$XDG_CACHE_HOME/rocm-nightly`, else `~/.cache/rocm-nightly`.
 * It is used only when it is provably ours: a real directory (not a link)
 * that only its owner may enter (mode 0700), holding the marker file
 * `.rocm-nightly-cache` with fixed contents, owned by the user of this
 * process (shown by a temporary made in it through lib/fs/temporaries.ts).
 * An existing folder without the marker is adopted only when it is empty.
 * Otherwise the cache is not used, and the caller says why.
 *
 * One entry per URL, named by the SHA-256 of the URL:
 *
 * - `<key>.data`: the body's first bytes, as received;
 * - `<key>.json`: the URL, the response's validator (strong ETag, else
 *   Last-Modified) and length, and how many bytes of `.data` are on disk for
 *   sure (flushed with fdatasync(2) before the count is written, each 64 MiB
 *   and when the download ends, fails or is interrupted): a power loss never
 *   lets garbage into a resumed hash, and a record cut short does not parse
 *   (the entry then starts over);
 * - `<key>.lock`: held while a run uses the entry (lib/fs/file_lock.ts), so
 *   two runs never write one entry;
 * - `<key>.stored`: once the file was added to the Nix store, its URL,
 *   validator, size, store name, hash and store path (written atomically
 *   through lib/fs/; the bytes are then removed). A rerun takes the hash
 *   from it, without downloading, when the store path is still valid and the
 *   server still answers with the same validator and length.
 *
 * A resume sends `If-Range` with the validator: a file that changed on the
 * server (another ETag or length) is downloaded from byte 0. An entry
 * without a validator is never resumed, nor recorded as stored. Growth:
 * `update` removes an entry (bytes and record) once the flake holds its
 * hash; entries untouched for 30 days are removed by the next run; the
 * folder may be removed at any time.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { writeFileAtomic } from "../fs/atomic_write.ts";
import { writeAll } from "../fs/bytes.ts";
import { openRegularFile, readRegularFile } from "../fs/file_kind.ts";
import { acquireLock, type FileLock, LockHeldError } from "../fs/file_lock.ts";
import { createTemporaryFile, PRIVATE_FOLDER } from "../fs/temporaries.ts";
import type { DownloadResume, DownloadWriter } from "./download.ts";

const MARKER = ".rocm-nightly-cache";
const MARKER_TEXT = "rocm-nightly download cache: <sha256 of the URL>.data/.json/.lock\n";
const ENTRY = /^[0-9a-f]{64}\.(data|json|lock|stored)$/;
/** Bytes written between two flushes of an entry. */
const CHECKPOINT_BYTES = 64 * 1024 * 1024;
/** Entries untouched for this long are removed. */
const MAX_AGE_MS = 30 * 86_400_000;

/**
 * The cache folder for this user: `$XDG_CACHE_HOME/rocm-nightly` when that
 * is an absolute path, else `$HOME/.cache/rocm-nightly`.
 *
 * @param env Reads an environment variable.
 * @returns The folder, or `undefined` when neither variable says where.
 *
 * @example Usage
 * ```ts
 * import { defaultCacheFolder } from "./download_cache.ts";
 *
 * defaultCacheFolder((name) => name === "HOME" ? "/home/ada" : undefined);
 * // "/home/ada/.cache/rocm-nightly"
 * ```
 */
export function defaultCacheFolder(
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): string | undefined {
  const xdg = env("XDG_CACHE_HOME");
  if (xdg !== undefined && xdg.startsWith("/")) return `${xdg.replace(/\/+$/, "")}/rocm-nightly`;
  const home = env("HOME");
  if (home !== undefined && home.startsWith("/")) {
    return `${home.replace(/\/+$/, "")}/.cache/rocm-nightly`;
  }
  return undefined;
}

/** One URL's entry, held by this run until {@linkcode CacheEntry.close}. */
export interface CacheEntry {
  /** Receives the body (appends to `<key>.data`). */
  readonly writer: DownloadWriter;
  /** The bytes kept from an earlier run, when they can be continued. */
  readonly resume: DownloadResume | undefined;
  /** The file holding the body (`<key>.data`), to read it back once it is whole. */
  readonly path: string;
  /**
   * Records that the whole body is in the Nix store (`<key>.stored`,
   * written atomically) and lets its bytes go when the entry closes.
   *
   * @param record What was added, for {@linkcode DownloadCache.stored}.
   */
  stored(record: StoredFile): Promise<void>;
  /**
   * Takes over the bytes of a download that went elsewhere (the Nix store's
   * file) and was cut off: `move` puts them at the given path, flushed, and
   * says how many there are; they are recorded as kept for the next run.
   *
   * @param move Moves the bytes to the path; resolves to their count, or `undefined`.
   * @param response The response's validator and full size.
   */
  adopt(
    move: (path: string) => Promise<number | undefined>,
    response: { validator: string; total: number },
  ): Promise<void>;
  /**
   * Records that the kept bytes left the entry (`<key>.data` was moved into
   * the Nix store's file, where the download continues): the entry then
   * keeps nothing when it closes, unless {@linkcode CacheEntry.adopt}
   * brings bytes back.
   */
  handOver(): void;
  /** Flushes what was received, records it, and lets go of the entry. */
  close(): Promise<void>;
}

/** A file added to the Nix store, as the cache records it. */
export interface StoredFile {
  /** The URL it was downloaded from. */
  url: string;
  /** The response's validator (strong ETag, else Last-Modified). */
  validator: string;
  /** Its size in bytes. */
  size: number;
  /** Its store name. */
  name: string;
  /** Its hash, in SRI form. */
  hash: string;
  /** Its store path. */
  storePath: string;
}

interface EntryInfo {
  url: string;
  validator: string;
  total: number;
  kept: number;
}

/**
 * A download cache folder (see the module documentation).
 *
 * @example Usage
 * ```ts ignore
 * import { DownloadCache } from "./download_cache.ts";
 * import { download } from "./download.ts";
 *
 * const cache = await DownloadCache.open("/home/ada/.cache/rocm-nightly");
 * const entry = await cache.entry("https://example.com/big.tar.gz");
 * try {
 *   await download("https://example.com/big.tar.gz", {
 *     writer: entry!.writer,
 *     ...(entry!.resume === undefined ? {} : { resume: entry!.resume }),
 *   });
 * } finally {
 *   await entry!.close();
 * }
 * await cache.remove("https://example.com/big.tar.gz");
 * ```
 */
export class DownloadCache {
  /** The folder. */
  readonly folder: string;

  private constructor(folder: string) {
    this.folder = folder;
  }

  /**
   * Opens this user's cache folder ({@linkcode defaultCacheFolder}) as
   * {@linkcode DownloadCache.open} does.
   *
   * @returns The cache.
   * @throws {Error} When neither `XDG_CACHE_HOME` nor `HOME` names a folder,
   * or the folder is not provably ours, or cannot be made.
   */
  static async openDefault(): Promise<DownloadCache> {
    const folder = defaultCacheFolder();
    if (folder === undefined) throw new Error("neither XDG_CACHE_HOME nor HOME names a folder");
    return await DownloadCache.open(folder);
  }

  /**
   * Opens (making it if needed) a cache folder that is provably ours, and
   * removes its entries untouched for 30 days.
   *
   * @param folder The folder, e.g. {@linkcode defaultCacheFolder}'s.
   * @returns The cache.
   * @throws {Error} When the folder is not provably ours, or cannot be made;
   * the message says which and what to do.
   */
  static async open(folder: string): Promise<DownloadCache> {
    const refuse = (detail: string): never => {
      throw new Error(`Cannot use the download cache "${folder}": ${detail}`);
    };
    let made = false;
    try {
      await Deno.mkdir(folder.slice(0, folder.lastIndexOf("/")) || "/", { recursive: true });
      await Deno.mkdir(folder, { mode: 0o700 });
      made = true;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) refuse((error as Error).message);
    }
    const info = await Deno.lstat(folder);
    if (!info.isDirectory) refuse("it is not a directory (a link or a file)");
    if (((info.mode ?? 0o777) & 0o077) !== 0) {
      refuse(`others may enter it (mode ${((info.mode ?? 0) & 0o777).toString(8)}, not 700)`);
    }
    const marker = `${folder}/${MARKER}`;
    let marked = false;
    try {
      const text = new TextDecoder().decode(
        await readRegularFile(marker, { maxBytes: 1024, followSymlinks: false }),
      );
      if (text !== MARKER_TEXT) refuse(`"${MARKER}" is not rocm-nightly's marker`);
      marked = true;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    // Written by this user? A temporary made in it is this user's: compare owners.
    const probe = await createTemporaryFile(folder, "owner");
    let owner: number | null;
    try {
      owner = (await probe.file.stat()).uid;
    } finally {
      probe.file.close();
      await probe.remove();
    }
    if (owner !== info.uid) refuse("it belongs to another user");
    if (!marked) {
      if (!made) {
        for await (const entry of Deno.readDir(folder)) {
          if (!entry.name.startsWith(PRIVATE_FOLDER)) {
            refuse(`it holds files rocm-nightly did not make ("${entry.name}"); remove it`);
          }
        }
      }
      await writeFileAtomic(marker, MARKER_TEXT, { mode: 0o600 });
    }
    const cache = new DownloadCache(folder);
    await cache.#expire();
    return cache;
  }

  /**
   * Takes the entry of `url`: what an earlier run kept of it, and a writer
   * for the rest.
   *
   * @param url The URL.
   * @returns The entry, or `undefined` when another run is using it.
   */
  async entry(url: string): Promise<CacheEntry | undefined> {
    const base = `${this.folder}/${keyOf(url)}`;
    const lock = await lockEntry(base, `use the cached download of ${url}`);
    if (lock === undefined) return undefined;
    try {
      return await openEntry(base, url, lock);
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  /**
   * What the cache recorded of `url` being added to the Nix store, when it
   * did (see {@linkcode CacheEntry.stored}). The caller checks that the
   * store path is still valid and the server's file the same.
   *
   * @param url The URL.
   * @returns The record, or `undefined` when there is none (or it does not parse).
   */
  async stored(url: string): Promise<StoredFile | undefined> {
    const record = await readJson(`${this.folder}/${keyOf(url)}.stored`);
    if (
      record === undefined || record.url !== url || typeof record.validator !== "string" ||
      !Number.isSafeInteger(record.size) || typeof record.name !== "string" ||
      typeof record.hash !== "string" || typeof record.storePath !== "string"
    ) {
      return undefined;
    }
    return record as unknown as StoredFile;
  }

  /**
   * Removes the entry of `url` (once its hash is written where it belongs).
   *
   * @param url The URL.
   */
  async remove(url: string): Promise<void> {
    const base = `${this.folder}/${keyOf(url)}`;
    const lock = await lockEntry(base, `remove the cached download of ${url}`);
    if (lock === undefined) return;
    try {
      await removeQuietly(`${base}.data`);
      await removeQuietly(`${base}.json`);
      await removeQuietly(`${base}.stored`);
    } finally {
      await lock.release();
    }
  }

  /** Removes entries (data and record) untouched for 30 days and not in use. */
  async #expire(): Promise<void> {
    const now = Date.now();
    const old = new Set<string>();
    for await (const entry of Deno.readDir(this.folder)) {
      const match = ENTRY.exec(entry.name);
      if (match === null || (match[1] !== "json" && match[1] !== "stored") || !entry.isFile) {
        continue;
      }
      const info = await Deno.lstat(`${this.folder}/${entry.name}`).catch(() => undefined);
      const time = info?.mtime?.getTime();
      if (time !== undefined && now - time > MAX_AGE_MS) old.add(entry.name);
    }
    for (const name of old) {
      const url = await readJson(`${this.folder}/${name}`).then((i) => i?.url);
      if (typeof url === "string" && keyOf(url) === name.slice(0, 64)) await this.remove(url);
    }
  }
}

/** The lock of the entry at `base`, or `undefined` when another run holds it. */
async function lockEntry(base: string, purpose: string): Promise<FileLock | undefined> {
  try {
    return await acquireLock(`${base}.lock`, { purpose });
  } catch (error) {
    if (error instanceof LockHeldError) return undefined;
    throw error;
  }
}

/**
 * Writes an entry's record in place, also while a signal unwinds the run
 * (atomic writes refuse then): a torn or lost write does not parse, and the
 * entry then starts over.
 */
async function writeInfo(base: string, info: EntryInfo): Promise<void> {
  await Deno.writeTextFile(`${base}.json`, `${JSON.stringify(info)}\n`, { mode: 0o600 });
}

function keyOf(url: string): string {
  return createHash("sha256").update(url).digest("hex");
}

async function removeQuietly(path: string): Promise<void> {
  await Deno.remove(path).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    const bytes = await readRegularFile(path, { maxBytes: 64 * 1024, followSymlinks: false });
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return typeof value === "object" && value !== null
      ? value as Record<string, unknown>
      : undefined;
  } catch {
    // Missing, not a regular file, not ours to read, or cut short: no record.
    return undefined;
  }
}

async function readInfo(path: string): Promise<EntryInfo | undefined> {
  const info = await readJson(path) as Partial<EntryInfo> | undefined;
  if (
    info === undefined || typeof info.url !== "string" || typeof info.validator !== "string" ||
    !Number.isSafeInteger(info.total) || !Number.isSafeInteger(info.kept)
  ) {
    return undefined;
  }
  return info as EntryInfo;
}

async function openEntry(base: string, url: string, lock: FileLock): Promise<CacheEntry> {
  const info = await readInfo(`${base}.json`);
  const data = await Deno.open(`${base}.data`, {
    read: true,
    write: true,
    create: true,
    mode: 0o600,
  });
  try {
    const stat = await data.stat();
    if (!stat.isFile || stat.nlink !== 1) {
      throw new Error(`Cannot use the cached download "${base}.data": it is not a plain file`);
    }
    // What is on disk for sure, and one byte less than the whole file: the
    // server confirms the rest (even if that is only the last byte) with If-Range.
    let kept = 0;
    if (info !== undefined && info.url === url && info.total > 0) {
      kept = Math.min(info.kept, stat.size, info.total - 1);
    }
    await data.truncate(kept);
    await data.seek(kept, Deno.SeekMode.Start);
    let record: EntryInfo | undefined = kept > 0 ? { ...info!, kept } : undefined;
    let written = kept;
    let unsynced = 0;
    const checkpoint = async (): Promise<void> => {
      await data.syncData();
      unsynced = 0;
      if (record === undefined) {
        await removeQuietly(`${base}.json`);
        return;
      }
      record.kept = written;
      // The count is written only after the bytes are flushed.
      await writeInfo(base, record);
    };
    let reader: Deno.FsFile | undefined;
    const resume: DownloadResume | undefined = record === undefined ? undefined : {
      size: kept,
      total: record.total,
      validator: record.validator,
      read: async (view) => {
        reader ??= await openRegularFile(`${base}.data`, { followSymlinks: false });
        return await reader.read(view) ?? 0;
      },
    };
    const writer: DownloadWriter = {
      begin: (size, validator) => {
        record = size === undefined || validator === undefined
          ? undefined
          : { url, validator, total: size, kept: 0 };
      },
      write: async (chunk) => {
        await writeAll(data, chunk);
        written += chunk.length;
        unsynced += chunk.length;
        if (unsynced >= CHECKPOINT_BYTES) await checkpoint();
      },
      truncate: async () => {
        await data.truncate(0);
        await data.seek(0, Deno.SeekMode.Start);
        written = 0;
        record = undefined;
        await checkpoint();
      },
    };
    let closed = false;
    let inStore = false;
    let handedOver = false;
    let adopted = false;
    return {
      writer,
      resume,
      path: `${base}.data`,
      stored: async (stored) => {
        await writeFileAtomic(`${base}.stored`, `${JSON.stringify(stored)}\n`, { mode: 0o600 });
        inStore = true;
      },
      adopt: async (move, response) => {
        const size = await move(`${base}.data`);
        if (size === undefined) return;
        adopted = true;
        // In place, as a checkpoint writes it (a signal may be unwinding the run).
        await writeInfo(base, { url, ...response, kept: size });
      },
      handOver: () => {
        handedOver = true;
      },
      close: async () => {
        if (closed) return;
        closed = true;
        try {
          reader?.close();
          if (adopted) return;
          if (inStore || handedOver) {
            // In the store, or gone into its file: the bytes have served.
            await removeQuietly(`${base}.json`);
            await removeQuietly(`${base}.data`);
            return;
          }
          await checkpoint();
          // Nothing that could be continued (no validator, or no byte): no entry.
          if (record === undefined) await removeQuietly(`${base}.data`);
        } finally {
          data.close();
          await lock.release();
        }
      },
    };
  } catch (error) {
    data.close();
    throw error;
  }
}
