/**
 * The image writer's hot loop: bytes and file contents go into one of four
 * reused 4 MiB blocks; a full block is hashed (the ranges that belong to an
 * open hash) and handed to the sink while the next one fills. Four, not two,
 * so that a write held up for a moment (a pipe's reader, the disk) does not
 * stall the reading and hashing.
 *
 * Files are read with `readSync` straight into the block, so every byte is
 * copied once from the page cache and hashed once, in large runs, by
 * `node:crypto`'s native SHA-256. The write of a block is the only awaited
 * step: it runs on Deno's I/O thread while the next block is read and hashed,
 * which keeps the output's cost (a file, a pipe) off the hashing core. Nothing
 * is flushed to disk here: whether a file must be durable is for its owner to
 * say (lib/fs/atomic_write.ts). Nested Web Streams with an awaited pull per
 * chunk and a fresh buffer per read, which this replaces, cost six times as
 * much.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";

/** Something bytes can be written to: a file, stdout. */
export interface ByteSink {
  /** Writes all of `chunk` (may write it partly and return the count, like `Deno.FsFile`). */
  write(chunk: Uint8Array): Promise<number | void>;
}

/** Options for {@linkcode BlockWriter}. */
export interface BlockWriterOptions {
  /**
   * Size of each block, in bytes.
   *
   * @default {4194304}
   */
  blockSize?: number;
  /**
   * How many blocks: one fills while the others are being written.
   *
   * @default {4}
   */
  blocks?: number;
}

const WOULD_BLOCK_PAUSE_MS = 1;

/**
 * Writes bytes and file contents to a sink in large blocks, hashing the bytes
 * between {@linkcode BlockWriter.beginHash} and {@linkcode BlockWriter.endHash}
 * on the way. Memory use is the blocks (16 MiB), whatever the sizes written.
 *
 * @example Usage
 * ```ts
 * import { BlockWriter } from "./block_writer.ts";
 *
 * const chunks: Uint8Array[] = [];
 * const writer = new BlockWriter({ write: (chunk) => { chunks.push(chunk.slice()); return Promise.resolve(); } });
 * await writer.bytes(new TextEncoder().encode("header "));
 * writer.beginHash();
 * await writer.bytes(new TextEncoder().encode("abc"));
 * writer.endHash(); // "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
 * await writer.close();
 * ```
 */
export class BlockWriter {
  #sink: ByteSink;
  #blocks: Uint8Array[];
  /** Per block: its last write, awaited before the block is filled again. */
  #writes: Promise<void>[];
  #index = 0;
  #block: Uint8Array;
  #fill = 0;
  #hash: Hash | undefined;
  #hashFrom = 0;
  #written = 0;
  /** The last write queued: writes run one after another, in order. */
  #pending: Promise<void> = Promise.resolve();

  /**
   * Allocates the blocks.
   *
   * @param sink Where the bytes go.
   * @param options The block size and count.
   * @throws {RangeError} For a block size under 512 bytes.
   */
  constructor(sink: ByteSink, options: BlockWriterOptions = {}) {
    const size = options.blockSize ?? 4 * 1024 * 1024;
    if (!Number.isSafeInteger(size) || size < 512) {
      throw new RangeError(`Invalid block size ${size}: expected at least 512 bytes`);
    }
    this.#sink = sink;
    const count = options.blocks ?? 4;
    if (!Number.isSafeInteger(count) || count < 2) {
      throw new RangeError(`Invalid block count ${count}: expected at least 2`);
    }
    this.#blocks = Array.from({ length: count }, () => new Uint8Array(size));
    this.#writes = this.#blocks.map(() => Promise.resolve());
    this.#block = this.#blocks[0]!;
  }

  /** Bytes handed to the writer so far (written or buffered). */
  get position(): number {
    return this.#written + this.#fill;
  }

  /** Starts hashing: the bytes given from now on, until {@linkcode BlockWriter.endHash}. */
  beginHash(): void {
    if (this.#hash !== undefined) throw new Error("Cannot begin a hash: one is already open");
    this.#hash = createHash("sha256");
    this.#hashFrom = this.#fill;
  }

  /**
   * Ends the open hash.
   *
   * @returns The digest of the bytes given since {@linkcode BlockWriter.beginHash}, `sha256:…`.
   */
  endHash(): string {
    const hash = this.#hash;
    if (hash === undefined) throw new Error("Cannot end a hash: none is open");
    hash.update(this.#block.subarray(this.#hashFrom, this.#fill));
    this.#hash = undefined;
    return `sha256:${hash.digest("hex")}`;
  }

  /**
   * Appends bytes.
   *
   * @param data The bytes (copied; the caller may reuse them).
   */
  async bytes(data: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      const count = Math.min(data.length - offset, this.#block.length - this.#fill);
      this.#block.set(data.subarray(offset, offset + count), this.#fill);
      this.#fill += count;
      offset += count;
      if (this.#fill === this.#block.length) await this.#flush();
    }
  }

  /**
   * Appends `count` zero bytes.
   *
   * @param count How many.
   */
  async zeros(count: number): Promise<void> {
    let left = count;
    while (left > 0) {
      const run = Math.min(left, this.#block.length - this.#fill);
      this.#block.fill(0, this.#fill, this.#fill + run);
      this.#fill += run;
      left -= run;
      if (this.#fill === this.#block.length) await this.#flush();
    }
  }

  /**
   * Appends the contents of a regular file, which must be exactly `size` bytes
   * long from open to end of reading.
   *
   * @param path The file.
   * @param size Its size when it was listed.
   * @throws {RangeError} When the file is not a regular file of that size, or
   *   grows or shrinks while it is read.
   */
  async file(path: string, size: number): Promise<void> {
    using file = Deno.openSync(path, { read: true });
    const info = file.statSync();
    if (!info.isFile || info.size !== size) {
      throw new RangeError(
        `Cannot read "${path}": it changed since it was listed (${info.size} bytes, expected ${size})`,
      );
    }
    let left = size;
    for (;;) {
      if (this.#fill === this.#block.length) await this.#flush();
      // Ask for one byte more than is left (when there is room): getting it
      // means the file grew, and a short read confirms the end in the same call.
      const want = Math.min(this.#block.length - this.#fill, left + 1);
      const count = file.readSync(this.#block.subarray(this.#fill, this.#fill + want)) ?? 0;
      if (count > left) {
        throw new RangeError(`Cannot read "${path}": it grew while reading (expected ${size})`);
      }
      this.#fill += count;
      left -= count;
      if (count === 0) {
        if (left > 0) throw new RangeError(`Cannot read "${path}": it shrank while reading`);
        return;
      }
      if (left === 0 && count < want) return;
    }
  }

  /** Writes what is buffered and waits until the sink has taken every byte. */
  async close(): Promise<void> {
    if (this.#fill > 0) await this.#flush();
    await this.#pending;
  }

  async #flush(): Promise<void> {
    const full = this.#block.subarray(0, this.#fill);
    if (this.#hash !== undefined) this.#hash.update(full.subarray(this.#hashFrom));
    this.#hashFrom = 0;
    const sink = this.#sink;
    const write = this.#pending.then(() => writeAll(sink, full));
    // A failed write fails every later one, and surfaces when a block is
    // reused or at close(), never as an unhandled rejection.
    write.catch(() => {});
    this.#pending = write;
    this.#writes[this.#index] = write;
    this.#written += this.#fill;
    this.#index = (this.#index + 1) % this.#blocks.length;
    this.#block = this.#blocks[this.#index]!;
    this.#fill = 0;
    // The next block's previous write must be done before it is refilled.
    await this.#writes[this.#index];
  }
}

/** Writes all of `chunk`, through partial writes and a non-blocking descriptor's EAGAIN. */
async function writeAll(sink: ByteSink, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    let count: number | void;
    try {
      count = await sink.write(offset === 0 ? chunk : chunk.subarray(offset));
    } catch (error) {
      if (!(error instanceof Deno.errors.WouldBlock)) throw error;
      await new Promise((resolve) => setTimeout(resolve, WOULD_BLOCK_PAUSE_MS));
      continue;
    }
    offset = typeof count === "number" ? offset + count : chunk.length;
  }
}
