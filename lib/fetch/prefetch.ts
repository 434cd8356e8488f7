/**
 * Prefetching: hash a URL, a file or stdin in one pass, optionally keeping
 * the bytes and seeding the Nix store the way `fetchurl` would — the engine
 * behind `scripts/prefetch.ts` and the update script.
 *
 * @module
 */

import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { displayText, displayUrl } from "../cli/display.ts";
import { AtomicFile } from "../fs/atomic_write.ts";
import { openRegularFile } from "../fs/file_kind.ts";
import {
  checkUrlAllowed,
  DEFAULT_MAX_BYTES,
  download,
  type DownloadResume,
  type DownloadWriter,
  type RetryInfo,
} from "./download.ts";
import type { CacheEntry, DownloadCache } from "./download_cache.ts";
import { probeUrl } from "./mirror_check.ts";
import { formatHash, type Hash, type HashAlgorithm, hashEquals, parseHash } from "../hash/hash.ts";
import { hashFile, hashReader } from "../hash/hasher.ts";
import {
  chooseLocalStore,
  type KeptBytes,
  type LocalStoreFile,
  openLocalStoreFile,
} from "../store/local_store.ts";
import { type StoreAddResult, StoreStream } from "../store/nix_daemon.ts";
import {
  checkStoreName,
  deleteStorePath,
  fixedOutputPath,
  isValidStorePath,
} from "../store/nix_store.ts";

/** Options for {@linkcode prefetch}. */
export interface PrefetchOptions {
  /**
   * The hash algorithm.
   *
   * @default {the algorithm of `expect`, else "sha256"}
   */
  algorithm?: HashAlgorithm;
  /**
   * The hash the bytes must have: on a mismatch a {@linkcode HashMismatchError}
   * is thrown and neither the output file nor the store is touched.
   *
   * @default {undefined}
   */
  expect?: Hash;
  /**
   * The store name.
   *
   * @default {the URL's last path component (as Nix's `baseNameOf`), or the file's base name}
   */
  name?: string;
  /**
   * Keep the bytes at this path (written atomically, only once verified).
   *
   * @default {undefined}
   */
  output?: string;
  /**
   * Add the bytes to the Nix store as `fetchurl` would (a flat fixed-output
   * path named `name`), so a later build does not download them again.
   *
   * @default {false}
   */
  addToStore?: boolean;
  /**
   * With `addToStore`, seed the store through `nix-daemon --stdio` even
   * when the local store is writable here. By default a writable local store
   * gets the file directly (lib/store/local_store.ts: one copy, no second read),
   * and any other store goes through the daemon.
   *
   * @default {false}
   */
  viaDaemon?: boolean;
  /**
   * Retries of a transient download failure.
   *
   * @default {5}
   */
  retries?: number;
  /**
   * Seconds without progress (connecting, waiting for headers or data) before an attempt fails.
   *
   * @default {60}
   */
  timeoutSeconds?: number;
  /**
   * The largest download accepted, in bytes.
   *
   * @default {34359738368 (32 GiB)}
   */
  maxBytes?: number;
  /**
   * Allow plain http to hosts other than loopback.
   *
   * @default {false}
   */
  allowHttp?: boolean;
  /**
   * Milliseconds before the first retry (doubling each time).
   *
   * @default {1000}
   */
  retryDelayMs?: number;
  /**
   * Called as bytes are read.
   *
   * @default {undefined}
   */
  onProgress?: (progress: { received: number; total: number | undefined }) => void;
  /**
   * Called before a download is retried.
   *
   * @default {undefined}
   */
  onRetry?: (info: RetryInfo) => void;
  /**
   * Cancels the prefetch; temporary files are removed.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * The most connections for a download (see lib/fetch/download.ts).
   *
   * @default {4 for files ≥ 256 MiB whose server accepts ranges, else 1}
   */
  connections?: number;
  /**
   * Keep a URL's bytes in this download cache while they arrive, and
   * continue what an earlier run kept there (lib/fetch/download_cache.ts).
   * With `addToStore`, the download goes into the store's file instead,
   * continuing the kept bytes there (moved, or copied as they are read: each
   * byte is read from disk at most once), and the cache records the store
   * path: a later prefetch of the URL reuses it without downloading while
   * the path is valid and the server answers with the same validator and
   * size. Used only for a URL written to no `output`; an entry another run
   * is using is passed by.
   *
   * @default {undefined}
   */
  cache?: DownloadCache;
}

/** The result of {@linkcode prefetch}. */
export interface PrefetchResult {
  /** The store name (also reported when nothing was added). */
  name: string;
  /** Size in bytes. */
  size: number;
  /** The hash. */
  hash: Hash;
  /** The URL, for a URL source. */
  url?: string;
  /** The path (`"-"` for stdin), for a file source. */
  path?: string;
  /** The store path, when added to the store. */
  storePath: string | null;
  /**
   * Whether this prefetch made the store path (it was not valid before), so
   * that a caller whose larger job fails can take it out again.
   */
  addedToStore?: boolean;
}

/**
 * The bytes did not have the expected hash.
 *
 * @example Usage
 * ```ts
 * import { HashMismatchError, prefetch } from "./prefetch.ts";
 * import { parseHash } from "../hash/hash.ts";
 *
 * const path = await Deno.makeTempFile();
 * const expect = parseHash("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
 * await Deno.writeTextFile(path, "not empty");
 * try {
 *   await prefetch(path, { expect });
 * } catch (error) {
 *   error instanceof HashMismatchError; // true
 * }
 * ```
 */
export class HashMismatchError extends Error {
  /** The hash that was expected. */
  readonly expected: Hash;
  /** The hash of the bytes. */
  readonly actual: Hash;

  /**
   * Creates the error for one source.
   *
   * @param source What was hashed (URL or path).
   * @param hashes The expected hash and the hash of the bytes.
   */
  constructor(source: string, hashes: { expected: Hash; actual: Hash }) {
    const { expected, actual } = hashes;
    super(
      `Hash mismatch for "${displayText(source)}": expected ${formatHash(expected, "sri")}, got ${
        formatHash(actual, "sri")
      }`,
    );
    this.name = "HashMismatchError";
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * The name a source gets in the store by default: for a URL, Nix's
 * `baseNameOf` of the URL as written (the text after the last `/`, ignoring
 * one trailing `/`), which is the name `fetchurl` gives its output; for a
 * file, its base name; for stdin, `"stdin"`.
 *
 * @example Usage
 * ```ts
 * import { defaultName } from "./prefetch.ts";
 * defaultName("https://example.com/a/rocm.tar.gz"); // "rocm.tar.gz"
 * defaultName("./downloads/rocm.tar.gz"); // "rocm.tar.gz"
 * ```
 *
 * @param source A URL, a path or `"-"`.
 * @returns The name.
 */
export function defaultName(source: string): string {
  const where = classify(source);
  if (where.kind === "stdin") return "stdin";
  if (where.kind === "file" && !source.startsWith("file:")) return basename(where.path);
  const trimmed = source.endsWith("/") ? source.slice(0, -1) : source;
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

type Source =
  | { kind: "url"; url: URL }
  | { kind: "file"; path: string }
  | { kind: "stdin" };

function classify(source: string): Source {
  if (source === "-") return { kind: "stdin" };
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(source)) return { kind: "file", path: source };
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    throw new TypeError(`Cannot prefetch "${displayText(source)}": not a valid URL`);
  }
  if (url.protocol === "file:") return { kind: "file", path: fileURLToPath(url) };
  return { kind: "url", url };
}

/**
 * Hashes a URL, a file or stdin (`"-"`), reading the bytes once: they are
 * hashed, written to `output` and/or a store-bound file in the same pass.
 * The expected hash is checked before anything is committed, so on any
 * failure `output` is untouched and nothing is added to the store.
 *
 * @example Usage
 * ```ts
 * import { prefetch } from "./prefetch.ts";
 * import { formatHash } from "../hash/hash.ts";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abc");
 * const result = await prefetch(path);
 * formatHash(result.hash, "sri"); // "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
 * result.size; // 3
 * ```
 *
 * @param source An https URL (http for loopback hosts), a path, or `"-"` for stdin.
 * @param options The algorithm, expected hash, destinations and download settings.
 * @returns The name, size, hash and store path.
 * @throws {HashMismatchError} When `expect` is given and differs.
 * @throws {TypeError} For a bad source, an invalid store name or conflicting options.
 */
export async function prefetch(
  source: string,
  options: PrefetchOptions = {},
): Promise<PrefetchResult> {
  checkPrefetch(source, options);
  const where = classify(source);
  const algorithm = options.algorithm ?? options.expect?.algorithm ?? "sha256";
  const name = options.name ?? defaultName(source);
  if (where.kind === "url" && options.cache !== undefined && options.output === undefined) {
    const through = await prefetchCached(source, where.url, options.cache, {
      ...options,
      algorithm,
      name,
    });
    // Undefined: another run is using the entry; go around the cache.
    if (through !== undefined) return through;
  }

  const sink = await Sink.open(name, {
    output: options.output,
    store: options.addToStore === true ? algorithm : undefined,
    viaDaemon: options.viaDaemon === true,
    // With nothing left to check after the last byte (no expected hash, no
    // output to commit), the daemon's hash is the file's: one SHA-256 pass
    // less, and the path is registered as the download ends.
    storeHashes: options.expect === undefined && options.output === undefined &&
      where.kind === "url",
  });
  let added: string | undefined;
  try {
    let hash: Hash;
    let size: number;
    if (where.kind === "url") {
      const writer = sink.writer;
      ({ hash, size } = await download(where.url, {
        algorithm,
        ...(writer === undefined ? {} : { writer }),
        ...pick(options, DOWNLOAD_OPTIONS),
      }));
    } else {
      ({ hash, size } = await readLocal(where, algorithm, sink, options));
    }
    checkExpected(source, hash, options.expect);
    let storePath: string | null = null;
    if (options.addToStore) {
      const finished = await sink.finishStore(fixedOutputPath(name, hash));
      storePath = finished.path;
      // A run that fails after this point must not leave the path it added.
      if (!finished.existed) added = storePath;
    }
    options.signal?.throwIfAborted();
    await sink.commit();
    const addedToStore = added !== undefined;
    added = undefined;
    return {
      name,
      size,
      hash,
      ...(where.kind === "url" ? { url: source } : { path: source }),
      storePath,
      ...(addedToStore ? { addedToStore } : {}),
    };
  } finally {
    if (added !== undefined) await deleteStorePath(added);
    await sink.abort();
  }
}

const DOWNLOAD_OPTIONS = [
  "retries",
  "timeoutSeconds",
  "maxBytes",
  "allowHttp",
  "retryDelayMs",
  "onProgress",
  "onRetry",
  "signal",
  "connections",
] as const;

/**
 * A URL through the download cache: with a store, first the cache's record
 * of an earlier addition (reused when the path is valid and the server's
 * file the same: no byte downloaded), else the download goes into the
 * store ({@linkcode prefetchToStore}); without one, the bytes go into the
 * cache entry (continuing what it kept). `undefined` when another run holds
 * the entry.
 */
async function prefetchCached(
  source: string,
  url: URL,
  cache: DownloadCache,
  options: PrefetchOptions & { algorithm: HashAlgorithm; name: string },
): Promise<PrefetchResult | undefined> {
  const { algorithm, name } = options;
  const store = options.addToStore === true;
  if (store) {
    const reused = await reuseStored(source, cache, options);
    if (reused !== undefined) return reused;
  }
  const cached = await cache.entry(source);
  if (cached === undefined) return undefined;
  // With a store, the bytes go straight into the store's file, continuing
  // what the cache kept (see prefetchToStore); the cache takes them only if
  // the download is cut off.
  if (store) return await prefetchToStore(source, url, cached, options);
  try {
    const response: ServerFile = {
      total: cached.resume?.total,
      validator: cached.resume?.validator,
    };
    const { hash, size } = await download(url, {
      algorithm,
      writer: noting(cached.writer, response),
      ...(cached.resume === undefined ? {} : { resume: cached.resume }),
      ...pick(options, DOWNLOAD_OPTIONS),
    });
    checkExpected(source, hash, options.expect);
    return { name, size, hash, url: source, storePath: null };
  } finally {
    await cached.close();
  }
}

/** What the server said of the file (kept with the store record), as far as it did. */
interface ServerFile {
  /** The body's full size. */
  total?: number | undefined;
  /** The response's validator. */
  validator?: string | undefined;
}

/** `writer`, noting in `response` what the server says of the file as each body begins. */
function noting(writer: DownloadWriter, response: ServerFile): DownloadWriter {
  return {
    ...writer,
    begin: (size, validator) => {
      response.total = size;
      response.validator = validator;
      writer.begin?.(size, validator);
    },
  };
}

/**
 * One writer for two: each chunk goes to both. It does not hash for the
 * download (no `digest`): the download hashes the bytes itself.
 */
function both(first: DownloadWriter, second: DownloadWriter): DownloadWriter {
  return {
    write: async (chunk) => {
      await Promise.all([first.write(chunk), second.write(chunk)]);
    },
    truncate: async () => {
      await first.truncate();
      await second.truncate();
    },
    begin: (size, validator) => {
      first.begin?.(size, validator);
      second.begin?.(size, validator);
    },
  };
}

/** Throws a {@linkcode HashMismatchError} when `expect` is given and `hash` is not it. */
function checkExpected(source: string, hash: Hash, expect: Hash | undefined): void {
  if (expect !== undefined && !hashEquals(expect, hash)) {
    throw new HashMismatchError(source, { expected: expect, actual: hash });
  }
}

/**
 * Adds a downloaded tarball to the store (`add`), then records it in its
 * cache entry (URL, the server's validator, size, hash, store path) so that
 * a rerun reuses it without a download: only for a whole download whose
 * server named a validator. A path this run made is taken out again when a
 * later step fails (a signal, the record).
 */
async function addAndRecord(
  cached: CacheEntry,
  file: { name: string; size: number; hash: Hash; url: string },
  response: ServerFile,
  add: () => Promise<{ path: string; existed: boolean }>,
  signal: AbortSignal | undefined,
): Promise<PrefetchResult> {
  const finished = await add();
  try {
    signal?.throwIfAborted();
    if (response.validator !== undefined && response.total === file.size) {
      await cached.stored({
        url: file.url,
        validator: response.validator,
        size: file.size,
        name: file.name,
        hash: formatHash(file.hash, "sri"),
        storePath: finished.path,
      });
    }
  } catch (error) {
    if (!finished.existed) await deleteStorePath(finished.path);
    throw error;
  }
  return {
    ...file,
    storePath: finished.path,
    ...(finished.existed ? {} : { addedToStore: true }),
  };
}

/**
 * A download into the store, as {@linkcode prefetch} does without a cache
 * (the same writer: one copy, hashed as it is written), recorded in the
 * cache entry once added. A download the cache kept bytes of continues in
 * the store's file: the kept bytes are moved there (the local store route,
 * on the cache's file system) or copied there as they are read for the
 * hash, so that each byte is read from disk at most once and the bytes
 * after them never (lib/store/local_store.ts `continueFrom`; through
 * nix-daemon they are copied, and the rest goes to the cache as well). If
 * the download is cut off, the bytes that are in the store's file alone
 * move from the store folder into the entry, for the next run to continue
 * (the local store route; through nix-daemon they cannot be taken back).
 */
async function prefetchToStore(
  source: string,
  url: URL,
  cached: CacheEntry,
  options: PrefetchOptions & { algorithm: HashAlgorithm; name: string },
): Promise<PrefetchResult> {
  const { algorithm, name } = options;
  const resume = cached.resume;
  let sink: Sink | undefined;
  const response: ServerFile = { total: resume?.total, validator: resume?.validator };
  // Whether the bytes received so far are in the store's file alone.
  let storeAlone = resume === undefined;
  let downloaded = false;
  try {
    const opened = sink = await Sink.open(name, {
      output: undefined,
      store: algorithm,
      viaDaemon: options.viaDaemon === true,
      storeHashes: options.expect === undefined && resume === undefined,
    });
    let writer = opened.writer!;
    let kept: DownloadResume | undefined;
    if (resume !== undefined) {
      const continued = await opened.continueFrom(cached.path, resume.size, resume.total);
      if (continued.moved) {
        storeAlone = true;
        // A SIGKILL from here on loses them: the next run's sweep removes
        // the store's file, and the download starts over (docs/guarantees.md).
        cached.handOver();
      } else {
        // A copy: the cache keeps the rest too, in case the download is cut off.
        writer = both(cached.writer, writer);
      }
      // Moved, they are hashed by the store's file as the download reads them
      // (one hash for the whole file, as for a fresh download); copied, by the
      // download, the store's file hashing what it writes.
      kept = { ...resume, read: continued.read, hashedByWriter: continued.moved };
    }
    const { hash, size } = await download(url, {
      algorithm,
      writer: noting(writer, response),
      ...(kept === undefined ? {} : { resume: kept }),
      ...pick(options, DOWNLOAD_OPTIONS),
    });
    downloaded = true;
    checkExpected(source, hash, options.expect);
    return await addAndRecord(
      cached,
      { name, size, hash, url: source },
      response,
      () => opened.finishStore(fixedOutputPath(name, hash)),
      options.signal,
    );
  } catch (error) {
    // Cut off (not a wrong hash): what arrived is kept for the next run.
    const { validator, total } = response;
    if (
      !downloaded && storeAlone && sink !== undefined && validator !== undefined &&
      total !== undefined
    ) {
      const opened = sink;
      await cached.adopt((path) => opened.moveOut(path), { validator, total }).catch(() => {});
    }
    throw error;
  } finally {
    await sink?.abort();
    await cached.close();
  }
}

/**
 * The cache's record of `source` in the store, when it still holds: the
 * record agrees with itself, its store path is valid, and the server
 * answers a HEAD (or a 1-byte range GET) with the same validator and size.
 */
async function reuseStored(
  source: string,
  cache: DownloadCache,
  options: PrefetchOptions & { algorithm: HashAlgorithm; name: string },
): Promise<PrefetchResult | undefined> {
  const record = await cache.stored(source);
  if (record === undefined || record.name !== options.name) return undefined;
  let hash: Hash;
  try {
    hash = parseHash(record.hash);
  } catch {
    return undefined;
  }
  if (
    hash.algorithm !== options.algorithm || fixedOutputPath(options.name, hash) !== record.storePath
  ) {
    return undefined;
  }
  if (options.expect !== undefined && !hashEquals(options.expect, hash)) return undefined;
  if (!await isValidStorePath(record.storePath)) return undefined;
  const probe = await probeUrl(source, {
    allowHttp: options.allowHttp ?? false,
    ...pick(options, ["timeoutSeconds", "signal"]),
  });
  if (probe.state !== "ok" || probe.validator !== record.validator || probe.size !== record.size) {
    return undefined;
  }
  options.onProgress?.({ received: record.size, total: record.size });
  return { name: options.name, size: record.size, hash, url: source, storePath: record.storePath };
}

/**
 * Checks what {@linkcode prefetch} can check before reading a byte: the
 * source's form and scheme, the store name, and that the options agree.
 * Every problem it finds is in the caller's request, not in the source.
 *
 * @example Usage
 * ```ts
 * import { checkPrefetch } from "./prefetch.ts";
 * checkPrefetch("https://example.com/rocm.tar.gz", { addToStore: true }); // ok
 * // checkPrefetch("http://example.com/x", {}) throws: plain http
 * ```
 *
 * @param source A URL, a path or `"-"`.
 * @param options The options `prefetch` would get.
 * @throws {TypeError} When the request cannot succeed as given.
 */
export function checkPrefetch(source: string, options: PrefetchOptions = {}): void {
  const where = classify(source);
  if (where.kind === "url") checkUrlAllowed(where.url, { allowHttp: options.allowHttp ?? false });
  const algorithm = options.algorithm ?? options.expect?.algorithm ?? "sha256";
  if (options.expect !== undefined && options.expect.algorithm !== algorithm) {
    throw new TypeError(
      `Cannot prefetch "${
        displayText(source)
      }": the expected hash is ${options.expect.algorithm}, but the algorithm is ${algorithm}`,
    );
  }
  if (!options.addToStore) return;
  if (where.kind === "stdin" && options.name === undefined) {
    throw new TypeError(`Cannot add stdin to the Nix store without a name (use --name)`);
  }
  checkStoreName(options.name ?? defaultName(source));
}

/** The JSON form of a {@linkcode PrefetchResult}, as `prefetch --json` prints it. */
export interface PrefetchJson {
  /** The store name. */
  name: string;
  /** Size in bytes. */
  size: number;
  /** SRI hash. */
  hash: string;
  /** The digest in Nix's base32. */
  nix32: string;
  /** The digest in hex. */
  hex: string;
  /** The URL, for a URL source. */
  url?: string;
  /** The path, for a file source. */
  path?: string;
  /** The store path, or `null`. */
  storePath: string | null;
}

/**
 * Converts a result to its JSON form, with the hash in every encoding.
 *
 * @example Usage
 * ```ts
 * import { prefetch, prefetchJson } from "./prefetch.ts";
 *
 * const path = await Deno.makeTempFile();
 * const json = prefetchJson(await prefetch(path));
 * json.hash; // "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
 * ```
 *
 * @param result The result of {@linkcode prefetch}.
 * @returns The object `prefetch --json` prints.
 */
export function prefetchJson(result: PrefetchResult): PrefetchJson {
  return {
    name: result.name,
    size: result.size,
    hash: formatHash(result.hash, "sri"),
    nix32: formatHash(result.hash, "nix32"),
    hex: formatHash(result.hash, "hex"),
    ...(result.url === undefined ? { path: result.path ?? "-" } : { url: displayUrl(result.url) }),
    storePath: result.storePath,
  };
}

async function readLocal(
  where: { kind: "file"; path: string } | { kind: "stdin" },
  algorithm: HashAlgorithm,
  sink: Sink,
  options: PrefetchOptions,
): Promise<{ hash: Hash; size: number }> {
  const label = where.kind === "file" ? where.path : "stdin";
  let file: Deno.FsFile | undefined;
  let total: number | undefined;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (where.kind === "file") {
    try {
      file = await openRegularFile(where.path);
      total = (await file.stat()).size;
    } catch (error) {
      const message = (error as Error).message;
      throw new Error(
        message.startsWith("Cannot ") ? message : `Cannot read "${label}": ${message}`,
      );
    }
    if (total > maxBytes) {
      file.close();
      throw new RangeError(
        `Cannot read "${label}": its size, ${total} bytes, exceeds the limit of ${maxBytes} bytes (raise it with --max-bytes)`,
      );
    }
  }
  try {
    const writer = sink.writer;
    // A file's size is known: the store can hash its NAR in the same pass.
    writer?.begin?.(total);
    return await hashReader(file ?? Deno.stdin, {
      algorithm,
      maxBytes,
      ...(writer === undefined ? {} : { onBlock: (block: Uint8Array) => writer.write(block) }),
      // The local store hashes what it writes: the file is hashed once.
      ...(writer?.digest === undefined ? {} : { digest: writer.digest }),
      ...(options.onProgress === undefined
        ? {}
        : { onProgress: (received: number) => options.onProgress?.({ received, total }) }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  } catch (error) {
    if (error instanceof RangeError) {
      throw new RangeError(`Cannot read "${label}": ${error.message}`);
    }
    throw error;
  } finally {
    file?.close();
  }
}

/**
 * Where the bytes go while they are read: the `output` file (under a
 * temporary name until commit) and/or the Nix store, streamed to the daemon
 * as they arrive (registered only at commit, so a failed run adds nothing).
 * With neither, the bytes are only hashed and kept nowhere: resuming a
 * download needs no partial file, since the hash state covers exactly the
 * bytes received and the Range request continues after them.
 */
class Sink {
  writer: DownloadWriter | undefined;
  #atomic: AtomicFile | undefined;
  #store: StoreStream | undefined;
  #local: LocalStoreFile | undefined;
  #added: StoreAddResult | undefined;
  /** When the store connection opened, in Unix seconds (Nix's registration times). */
  #openedAt = 0;
  /** The kept bytes being sent to the daemon (see {@linkcode Sink.continueFrom}). */
  #source: Deno.FsFile | undefined;

  static async open(
    name: string,
    options: {
      output: string | undefined;
      store: HashAlgorithm | undefined;
      /** Whether the store's hash is the result (the bytes are not hashed here). */
      storeHashes: boolean;
      /** Whether the store is reached through nix-daemon even when it is local and writable. */
      viaDaemon: boolean;
    },
  ): Promise<Sink> {
    const sink = new Sink();
    const { output, store } = options;
    const local = store === undefined || options.viaDaemon ? undefined : chooseLocalStore().layout;
    const openOutput = async (): Promise<void> => {
      if (output === undefined) return;
      try {
        sink.#atomic = await AtomicFile.create(output);
      } catch (error) {
        throw new Error(`Cannot write "${output}": ${(error as Error).message}`);
      }
    };
    const openStore = async (): Promise<void> => {
      if (store === undefined) return;
      if (local !== undefined) {
        sink.#local = await openLocalStoreFile(local, name, store);
        if (sink.#local !== undefined) return;
      }
      sink.#openedAt = Math.floor(Date.now() / 1000);
      sink.#store = await StoreStream.open(name, store);
    };
    await openOutput();
    try {
      await openStore();
    } catch (error) {
      await sink.abort();
      throw error;
    }
    if (output === undefined && store === undefined) return sink;
    sink.writer = {
      write: async (chunk) => {
        await Promise.all([
          sink.#atomic?.write(chunk),
          sink.#store?.write(chunk),
          sink.#local?.write(chunk),
        ]);
      },
      truncate: async () => {
        await sink.abort();
        await openOutput();
        await openStore();
      },
    };
    if (sink.#local !== undefined) {
      // The file is hashed as it is written: no hashing thread, one pass.
      sink.writer.digest = () => sink.#local!.digest();
      sink.writer.begin = (size) => sink.#local?.begin(size);
    } else if (store !== undefined && options.storeHashes) {
      sink.writer.digest = async () => {
        const added = sink.#added = await sink.#store!.finish();
        sink.#store = undefined;
        if (added.ca !== "") return parseHash(added.ca.replace(/^fixed:/, ""));
        // Valid before, and registered without a content address (as the
        // local store route and nix-store --register-validity register): the
        // daemon does not say the file's hash, so it is read back once.
        return (await hashFile(added.path, { algorithm: store })).hash;
      };
    }
    return sink;
  }

  /**
   * When the store registered the path already (it hashed the bytes):
   * whether the path was valid before this run (registered before the
   * connection opened), else `undefined`.
   */
  get existedBefore(): boolean | undefined {
    if (this.#added === undefined) return undefined;
    return this.#added.registrationTime < this.#openedAt;
  }

  /**
   * Registers the store path, checked against `storePath`, the path the
   * hash gives.
   *
   * @returns The store path, and whether it was valid before this run.
   */
  async finishStore(storePath: string): Promise<{ path: string; existed: boolean }> {
    if (this.#local !== undefined) {
      const local = this.#local;
      this.#local = undefined;
      return await local.finish(storePath);
    }
    const existed = this.existedBefore ?? await isValidStorePath(storePath);
    if (this.#store !== undefined) {
      this.#added = await this.#store.finish();
      this.#store = undefined;
    }
    const result = this.#added!;
    if (result.path !== storePath) {
      throw new Error(
        `Cannot add "${storePath}" to the Nix store: the daemon made "${result.path}" (did the bytes change?)`,
      );
    }
    return { path: result.path, existed };
  }

  /**
   * Starts the store's file with the first `size` bytes of `source`, for a
   * download that continues after them: on the local store route as
   * {@linkcode LocalStoreFile.continueFrom} does (moved when it can be,
   * else copied as they are read); through nix-daemon, sent to it as they
   * are read.
   *
   * @returns Whether the bytes were moved, and the reader of the kept bytes.
   */
  async continueFrom(source: string, size: number, total: number): Promise<KeptBytes> {
    if (this.#local !== undefined) return await this.#local.continueFrom(source, size, total);
    const store = this.#store;
    if (store === undefined) throw new Error(`Cannot continue "${source}": no store file is open`);
    const file = this.#source = await openRegularFile(source, { followSymlinks: false });
    let left = size;
    const read = async (view: Uint8Array): Promise<number> => {
      if (left === 0) return 0;
      const n = await file.read(left < view.length ? view.subarray(0, left) : view) ?? 0;
      left = n === 0 ? 0 : left - n;
      if (n > 0) await store.write(view.subarray(0, n));
      return n;
    };
    return { moved: false, read };
  }

  /**
   * Moves the bytes written so far to `target`, when they are in a file of
   * the local store route (see {@linkcode LocalStoreFile.moveOut}).
   *
   * @returns How many bytes were moved, or `undefined` when none were.
   */
  async moveOut(target: string): Promise<number | undefined> {
    const local = this.#local;
    this.#local = undefined;
    return await local?.moveOut(target);
  }

  /** Renames the output into place. */
  async commit(): Promise<void> {
    await this.#atomic?.commit();
  }

  async abort(): Promise<void> {
    this.#source?.close();
    this.#source = undefined;
    await this.#atomic?.abort();
    await this.#store?.abort();
    this.#store = undefined;
    await this.#local?.abort();
    this.#local = undefined;
  }
}

function pick<T extends object, K extends keyof T>(
  object: T,
  keys: readonly K[],
): Partial<Pick<T, K>> {
  const picked: Partial<Pick<T, K>> = {};
  for (const key of keys) if (object[key] !== undefined) picked[key] = object[key];
  return picked;
}
