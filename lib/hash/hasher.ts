/**
 * Streaming SHA-256/SHA-512 over files, Web streams and async iterables, in
 * constant memory and at the speed of the CPU's native hash.
 *
 * `node:crypto` hashes natively (Deno binds it to Rust code using the CPU's
 * SHA extensions), while `crypto.subtle.digest` is one-shot and would need the
 * whole file in memory. Files are read into two large reused buffers: the next
 * read runs while the previous buffer is hashed, which is what brings the
 * throughput to `openssl dgst`'s (64 KiB chunks from `FsFile.readable` reach
 * about half of it).
 *
 * @module
 */

import { createHash, type Hash as NodeHash } from "node:crypto";
import { openRegularFile } from "../fs/file_kind.ts";
import type { Hash, HashAlgorithm } from "./hash.ts";

/** The result of hashing a whole input. */
export interface HashResult {
  /** The digest. */
  hash: Hash;
  /** The number of bytes hashed. */
  size: number;
}

/** Options for {@linkcode hashFile}, {@linkcode hashStream} and {@linkcode hashReader}. */
export interface HashOptions {
  /**
   * The hash algorithm.
   *
   * @default {"sha256"}
   */
  algorithm?: HashAlgorithm;
  /**
   * Called after each block with the number of bytes hashed so far.
   *
   * @default {undefined}
   */
  onProgress?: (received: number) => void;
  /**
   * Aborts hashing (checked between blocks).
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/** Options for {@linkcode hashReader}. */
export interface HashReaderOptions extends HashOptions {
  /**
   * Called with each block right after it is hashed, e.g. to copy the input
   * to a file in the same pass. The block's buffer is reused once the
   * returned promise settles.
   *
   * @default {undefined}
   */
  onBlock?: (block: Uint8Array) => Promise<void>;
  /**
   * The most bytes accepted: a longer input throws a RangeError as soon as
   * it passes the limit, before the block past it is hashed or handed on.
   *
   * @default {Infinity}
   */
  maxBytes?: number;
  /**
   * For an `onBlock` consumer that hashes the blocks itself (the Nix store
   * does): the digest of everything it was given, returned instead of
   * hashing the input a second time.
   *
   * @default {undefined}
   */
  digest?: () => Promise<Hash>;
}

/** The size of each of the two read buffers: large enough that syscalls and promise hops vanish. */
const BLOCK_SIZE = 4 * 1024 * 1024;

/**
 * An incremental hash that also counts the bytes fed to it.
 *
 * @example Usage
 * ```ts
 * import { Hasher } from "./hasher.ts";
 * import { formatHash } from "./hash.ts";
 *
 * const hasher = new Hasher("sha256");
 * hasher.update(new TextEncoder().encode("abc"));
 * formatHash(hasher.digest(), "nix32"); // "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"
 * ```
 */
export class Hasher {
  /** The hash algorithm. */
  readonly algorithm: HashAlgorithm;
  #hash: NodeHash;
  #size = 0;

  /**
   * Starts an empty hash.
   *
   * @param algorithm The hash algorithm.
   */
  constructor(algorithm: HashAlgorithm = "sha256") {
    if (algorithm !== "sha256" && algorithm !== "sha512") {
      throw new TypeError(`Cannot hash with "${algorithm}": use sha256 or sha512`);
    }
    this.algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }

  /** The number of bytes hashed so far. */
  get size(): number {
    return this.#size;
  }

  /**
   * Feeds bytes to the hash.
   *
   * @param chunk The next bytes of the input.
   */
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
  }

  /**
   * Finishes the hash. The hasher cannot be updated afterwards.
   *
   * @returns The digest of every byte fed so far.
   */
  digest(): Hash {
    return { algorithm: this.algorithm, digest: new Uint8Array(this.#hash.digest()) };
  }
}

/** Something that reads into a caller's buffer, as `Deno.FsFile` and `Deno.stdin` do. */
export interface BufferReader {
  /**
   * Reads up to `buffer.length` bytes into `buffer`.
   *
   * @param buffer Where to put the bytes.
   * @returns The number of bytes read, or `null` at the end of the input.
   */
  read(buffer: Uint8Array): Promise<number | null>;
}

/**
 * Hashes everything `reader` yields until its end, overlapping each read with
 * hashing the previous block. Memory: two 4 MiB buffers whatever the size.
 *
 * @example Usage
 * ```ts
 * import { hashReader } from "./hasher.ts";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abc");
 * using file = await Deno.open(path);
 * const { size } = await hashReader(file);
 * size; // 3
 * ```
 *
 * @param reader The input, e.g. an open `Deno.FsFile` or `Deno.stdin`.
 * @param options The algorithm, a progress callback, an abort signal and a block consumer.
 * @returns The digest and the number of bytes read.
 */
export async function hashReader(
  reader: BufferReader,
  options: HashReaderOptions = {},
): Promise<HashResult> {
  const hasher = options.digest === undefined ? new Hasher(options.algorithm) : undefined;
  let size = 0;
  let current = new Uint8Array(BLOCK_SIZE);
  let spare = new Uint8Array(BLOCK_SIZE);
  let count = await reader.read(current);
  while (count !== null) {
    options.signal?.throwIfAborted();
    const next = reader.read(spare);
    // A rejected read must not go unhandled while this block is processed.
    next.catch(() => {});
    const block = current.subarray(0, count);
    if (size + count > (options.maxBytes ?? Infinity)) {
      await next.catch(() => {});
      throw new RangeError(
        `the input exceeds the limit of ${options.maxBytes} bytes (raise it with --max-bytes)`,
      );
    }
    hasher?.update(block);
    size += count;
    if (options.onBlock !== undefined) await options.onBlock(block);
    options.onProgress?.(size);
    count = await next;
    [current, spare] = [spare, current];
  }
  return { hash: hasher?.digest() ?? await options.digest!(), size };
}

/**
 * Hashes a regular file in constant memory.
 *
 * @example Usage
 * ```ts
 * import { hashFile } from "./hasher.ts";
 * import { formatHash } from "./hash.ts";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abc");
 * const { hash, size } = await hashFile(path);
 * formatHash(hash, "nix32"); // "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"
 * size; // 3
 * ```
 *
 * @param path The file to hash.
 * @param options The algorithm, a progress callback and an abort signal.
 * @returns The digest and the file's size.
 * @throws {Error} When `path` is not a regular file (a directory, a device…).
 */
export async function hashFile(path: string, options: HashOptions = {}): Promise<HashResult> {
  using file = await openRegularFile(path);
  return await hashReader(file, options);
}

/**
 * Hashes a Web stream or an async iterable of byte chunks, holding one chunk
 * at a time.
 *
 * @example Usage
 * ```ts
 * import { hashStream } from "./hasher.ts";
 * import { formatHash } from "./hash.ts";
 *
 * const { hash } = await hashStream(new Blob(["abc"]).stream());
 * formatHash(hash, "sri"); // "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
 * ```
 *
 * @param source The bytes to hash.
 * @param options The algorithm, a progress callback and an abort signal.
 * @returns The digest and the number of bytes hashed.
 */
export async function hashStream(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  options: HashOptions = {},
): Promise<HashResult> {
  const hasher = new Hasher(options.algorithm);
  for await (const chunk of source) {
    options.signal?.throwIfAborted();
    if (!(chunk instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot hash a stream chunk of type "${typeof chunk}": expected Uint8Array`,
      );
    }
    hasher.update(chunk);
    options.onProgress?.(hasher.size);
  }
  return { hash: hasher.digest(), size: hasher.size };
}
