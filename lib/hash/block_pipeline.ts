/**
 * The path downloaded bytes take once they are in order: each block is
 * written (to a file, to the Nix store) and then hashed on a worker thread,
 * so the thread that receives from the network never waits for SHA-256.
 *
 * Memory is a fixed pool of blocks: the receiver fills a free block, pushes
 * it, and the block comes back to the pool once written and hashed (it is
 * transferred to the hashing thread, not copied). When every block is in
 * flight the receiver waits, which is the back-pressure that keeps memory
 * at `blocks × blockSize` however fast the network is.
 *
 * @module
 */

import type { Hash, HashAlgorithm } from "./hash.ts";

/** Where the in-order bytes go besides the hash (see lib/fetch/download.ts's DownloadWriter). */
export interface PipelineWriter {
  /**
   * Appends bytes; the view's buffer is reused once the promise settles.
   *
   * @param chunk The next bytes.
   */
  write(chunk: Uint8Array): Promise<void>;
  /** Discards everything written so far. */
  truncate(): Promise<void>;
  /**
   * For a writer that hashes the bytes itself (the Nix store does): the
   * digest of everything written. The pipeline then hashes nothing.
   */
  digest?: () => Promise<Hash>;
}

/** Options for {@linkcode BlockPipeline}. */
export interface BlockPipelineOptions {
  /**
   * The hash algorithm.
   *
   * @default {"sha256"}
   */
  algorithm?: HashAlgorithm;
  /**
   * Receives each block, in order, before it is hashed.
   *
   * @default {undefined}
   */
  writer?: PipelineWriter;
  /**
   * The most blocks in memory at once.
   *
   * @default {4}
   */
  blocks?: number;
  /**
   * The size of each block in bytes.
   *
   * @default {4194304 (4 MiB)}
   */
  blockSize?: number;
}

/**
 * Writes and hashes blocks in the order they are pushed, hashing on a
 * worker thread.
 *
 * @example Usage
 * ```ts
 * import { BlockPipeline } from "./block_pipeline.ts";
 * import { formatHash } from "./hash.ts";
 *
 * using pipeline = new BlockPipeline();
 * const block = await pipeline.acquire();
 * const bytes = new Uint8Array(block, 0, 3);
 * bytes.set(new TextEncoder().encode("abc"));
 * pipeline.push(bytes);
 * formatHash(await pipeline.digest(), "nix32"); // "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"
 * ```
 */
export class BlockPipeline implements Disposable {
  /** The hash algorithm. */
  readonly algorithm: HashAlgorithm;
  /** The size of each block. */
  readonly blockSize: number;
  #writer: PipelineWriter | undefined;
  #maxBlocks: number;
  #allocated = 0;
  #free: ArrayBuffer[] = [];
  #waiting: (() => void)[] = [];
  #queue: Uint8Array[] = [];
  #pumping: Promise<void> | undefined;
  #inFlight = 0;
  #drained: (() => void)[] = [];
  #digested: ((digest: Uint8Array) => void) | undefined;
  #error: unknown;
  #size = 0;
  #worker: Worker | undefined;

  /**
   * Starts the hashing thread.
   *
   * @param options The algorithm, a writer and the memory bound.
   */
  constructor(options: BlockPipelineOptions = {}) {
    this.algorithm = options.algorithm ?? "sha256";
    if (this.algorithm !== "sha256" && this.algorithm !== "sha512") {
      throw new TypeError(`Cannot hash with "${this.algorithm}": use sha256 or sha512`);
    }
    this.blockSize = options.blockSize ?? 4 * 1024 * 1024;
    this.#maxBlocks = Math.max(2, options.blocks ?? 4);
    this.#writer = options.writer;
    if (this.#writer?.digest !== undefined) return;
    const worker = new Worker(new URL("./_hash_worker.ts", import.meta.url), { type: "module" });
    worker.onmessage = (event: MessageEvent): void => this.#onMessage(event.data);
    worker.onerror = (event: ErrorEvent): void => {
      event.preventDefault();
      this.#fail(new Error(`The hashing thread failed: ${event.message}`));
    };
    worker.postMessage({ start: this.algorithm });
    this.#worker = worker;
  }

  /** The most blocks in memory at once (lowering it takes effect as blocks come back). */
  get blocks(): number {
    return this.#maxBlocks;
  }

  set blocks(count: number) {
    this.#maxBlocks = Math.max(2, count);
    this.#wake();
  }

  /** The number of bytes pushed so far (they will be written and hashed, in order). */
  get size(): number {
    return this.#size;
  }

  /**
   * A free block of {@linkcode BlockPipeline.blockSize} bytes, waiting for one
   * when all are in use.
   *
   * @param signal Stops waiting.
   * @returns The block; the caller pushes a view of it or gives it back.
   */
  async acquire(signal?: AbortSignal): Promise<ArrayBuffer> {
    for (;;) {
      this.#throwIfFailed();
      signal?.throwIfAborted();
      if (this.#allocated > this.#maxBlocks && this.#free.length > 0) {
        this.#free.pop();
        this.#allocated--;
        continue;
      }
      const block = this.#free.pop();
      if (block !== undefined) return block;
      if (this.#allocated < this.#maxBlocks) {
        this.#allocated++;
        return new ArrayBuffer(this.blockSize);
      }
      await new Promise<void>((resolve) => {
        this.#waiting.push(resolve);
        signal?.addEventListener("abort", () => resolve(), { once: true });
      });
    }
  }

  /**
   * Gives back a block that was acquired and not pushed.
   *
   * @param block The block.
   */
  release(block: ArrayBuffer): void {
    if (block.byteLength !== this.blockSize) {
      this.forget();
      return;
    }
    this.#free.push(block);
    this.#wake();
  }

  /** Accounts for an acquired block that was lost (detached), so a new one can be made. */
  forget(): void {
    this.#allocated--;
    this.#wake();
  }

  /**
   * Appends the next bytes: a view of an acquired block, which belongs to
   * the pipeline from now on. An empty view just gives the block back.
   *
   * @param bytes The bytes, at the start of their block.
   */
  push(bytes: Uint8Array): void {
    this.#throwIfFailed();
    if (bytes.length === 0) {
      this.release(bytes.buffer as ArrayBuffer);
      return;
    }
    this.#size += bytes.length;
    this.#queue.push(bytes);
    this.#pumping ??= this.#pump().finally(() => this.#pumping = undefined);
  }

  /** Resolves once every pushed block is written and hashed; rejects with the first failure. */
  async flush(): Promise<void> {
    while (this.#pumping !== undefined) await this.#pumping;
    if (this.#inFlight > 0) await new Promise<void>((resolve) => this.#drained.push(resolve));
    this.#throwIfFailed();
  }

  /**
   * Waits for every block, then finishes the hash; the pipeline starts a new
   * hash afterwards.
   *
   * @returns The digest of every byte pushed since the start (or the last reset).
   */
  async digest(): Promise<Hash> {
    await this.flush();
    const worker = this.#worker;
    if (worker === undefined) {
      this.#size = 0;
      return await this.#writer!.digest!();
    }
    const digest = await new Promise<Uint8Array>((resolve) => {
      this.#digested = resolve;
      worker.postMessage({ digest: true });
    });
    this.#throwIfFailed();
    worker.postMessage({ start: this.algorithm });
    this.#size = 0;
    return { algorithm: this.algorithm, digest };
  }

  /** Discards what was pushed: the hash starts over and the writer is truncated. */
  async reset(): Promise<void> {
    await this.flush();
    if (this.#worker !== undefined) await this.digest();
    this.#size = 0;
    await this.#writer?.truncate();
  }

  /** Stops the hashing thread. */
  close(): void {
    this.#worker?.terminate();
    this.#fail(new Error("The block pipeline is closed"));
  }

  /** Stops the hashing thread. */
  [Symbol.dispose](): void {
    this.close();
  }

  async #pump(): Promise<void> {
    for (let bytes = this.#queue.shift(); bytes !== undefined; bytes = this.#queue.shift()) {
      if (this.#error !== undefined) return;
      try {
        await this.#writer?.write(bytes);
      } catch (error) {
        this.#fail(error);
        return;
      }
      const buffer = bytes.buffer as ArrayBuffer;
      if (this.#worker === undefined) {
        this.release(buffer);
        continue;
      }
      this.#inFlight++;
      this.#worker.postMessage({ buffer, length: bytes.length }, [buffer]);
    }
  }

  #onMessage(message: { buffer: ArrayBuffer } | { digest: Uint8Array }): void {
    if ("digest" in message) {
      this.#digested?.(message.digest);
      this.#digested = undefined;
      return;
    }
    this.#inFlight--;
    this.release(message.buffer);
    if (this.#inFlight === 0) { for (const resolve of this.#drained.splice(0)) resolve(); }
  }

  /** Wakes every waiter: each checks again (one that gave up just returns). */
  #wake(): void {
    for (const resolve of this.#waiting.splice(0)) resolve();
  }

  #fail(error: unknown): void {
    this.#error ??= error;
    for (const resolve of this.#waiting.splice(0)) resolve();
    for (const resolve of this.#drained.splice(0)) resolve();
    this.#digested?.(new Uint8Array());
  }

  #throwIfFailed(): void {
    if (this.#error !== undefined) throw this.#error;
  }
}
