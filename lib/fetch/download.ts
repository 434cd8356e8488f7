/**
 * The download engine: one pass over the bytes of a URL, hashed and
 * (optionally) written to disk as they arrive, with bounded redirects,
 * retries with backoff and resumption by HTTP Range requests.
 *
 * @module
 */

import { displayText, displayUrl } from "../cli/display.ts";
import { BlockPipeline } from "../hash/block_pipeline.ts";
import { describeNetworkFailure, networkFailure } from "./network_error.ts";
import type { Hash, HashAlgorithm } from "../hash/hash.ts";
import {
  ConnectionPool,
  type Connector,
  directBodyReader,
  fetchHttp1,
  ResponseFramingError,
} from "./http1_client.ts";

/**
 * Where downloaded bytes go besides the hash. `truncate()` is called when the
 * server cannot resume and the download starts over from byte 0.
 */
export interface DownloadWriter {
  /**
   * Appends bytes. The chunk's buffer is reused once the promise settles.
   *
   * @param chunk The next bytes of the body.
   */
  write(chunk: Uint8Array): Promise<void>;
  /** Discards everything written so far. */
  truncate(): Promise<void>;
  /**
   * For a writer that hashes the bytes itself (the Nix store does): the
   * digest of everything written, which {@linkcode download} then returns
   * instead of hashing the bytes a second time.
   */
  digest?: () => Promise<Hash>;
  /**
   * Called before the first byte is written (again after each truncation),
   * with the body's size when the server announced it, and the response's
   * validator (a strong ETag, else Last-Modified) when it sent one.
   */
  begin?: (size: number | undefined, validator?: string) => void;
}

/**
 * Bytes of the file kept from an earlier run (lib/fetch/download_cache.ts),
 * to continue after: they are read again for the hash, not written again,
 * and the first request asks for the rest with `Range` and `If-Range`. A
 * server that answers with anything but exactly the rest of the same file
 * (another validator or size) makes the download start over from byte 0
 * (the writer is truncated).
 */
export interface DownloadResume {
  /** How many bytes are kept; the writer holds them already. */
  size: number;
  /** The file's full size, as the earlier response announced it. */
  total: number;
  /** The earlier response's validator (strong ETag or Last-Modified), sent as If-Range. */
  validator: string;
  /**
   * Reads the kept bytes again, from the first, into `view`.
   *
   * @param view Where to read to.
   * @returns How many bytes were read; 0 at the end.
   */
  read(view: Uint8Array): Promise<number>;
  /**
   * `true` when `read` hashes the kept bytes into the writer's own hash (a
   * writer with `digest`: the Nix store's file they continue in does): the
   * download then hashes nothing itself, and returns the writer's digest.
   *
   * @default {false}
   */
  hashedByWriter?: boolean;
}

/** Progress of a download. */
export interface DownloadProgress {
  /** Bytes received so far (counting bytes kept from earlier attempts). */
  received: number;
  /** The full size when the server announced it. */
  total: number | undefined;
}

/** Why and when a download is retried, for {@linkcode DownloadOptions.onRetry}. */
export interface RetryInfo {
  /** The retry about to start: 1 for the first (the second attempt). */
  retry: number;
  /** The number of retries allowed in all (`DownloadOptions.retries`). */
  retries: number;
  /** The failure of the previous attempt. */
  error: Error;
  /** Bytes kept, from which the next attempt resumes. */
  received: number;
  /** Milliseconds waited before the next attempt. */
  delayMs: number;
}

/** Options for {@linkcode download}. */
export interface DownloadOptions {
  /**
   * The hash algorithm.
   *
   * @default {"sha256"}
   */
  algorithm?: HashAlgorithm;
  /**
   * Receives the bytes as they are hashed.
   *
   * @default {undefined}
   */
  writer?: DownloadWriter;
  /**
   * How many times a transient failure (connection error, 5xx, 408, 429,
   * idle timeout, truncated body) is retried.
   *
   * @default {5}
   */
  retries?: number;
  /**
   * Seconds to wait for the connection, the response headers, or the next
   * bytes of the body, per attempt. Not a limit on the whole download.
   *
   * @default {60}
   */
  timeoutSeconds?: number;
  /**
   * The largest body accepted, in bytes.
   *
   * @default {34359738368 (32 GiB)}
   */
  maxBytes?: number;
  /**
   * Whether plain `http:` is allowed for hosts other than loopback.
   *
   * @default {false}
   */
  allowHttp?: boolean;
  /**
   * How many redirects are followed.
   *
   * @default {10}
   */
  maxRedirects?: number;
  /**
   * Milliseconds before the first retry; each further retry waits twice as
   * long, up to 30 s.
   *
   * @default {1000}
   */
  retryDelayMs?: number;
  /**
   * Called as bytes arrive.
   *
   * @default {undefined}
   */
  onProgress?: (progress: DownloadProgress) => void;
  /**
   * Called before each retry.
   *
   * @default {undefined}
   */
  onRetry?: (info: RetryInfo) => void;
  /**
   * Cancels the download.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * The most connections to use. A file is fetched in ranges over several
   * connections when the server sends `Accept-Ranges: bytes`; with this
   * unset, only files of 256 MiB or more on a host other than loopback are,
   * over {@linkcode DEFAULT_CONNECTIONS}: a loopback server has no network
   * path whose per-connection limit extra connections would work around, so
   * they only cost CPU (a 2 GiB file took 2.0 s on one connection and 4.1 s
   * on four, `deno task bench download`). Memory: `(connections + 2) ×
   * rangeSize`.
   *
   * @default {4 for files ≥ 256 MiB not on loopback, else 1}
   */
  connections?: number;
  /**
   * The size of each range (and of each buffer), in bytes.
   *
   * @default {4194304 (4 MiB)}
   */
  rangeSize?: number;
  /**
   * Bytes kept from an earlier run, to continue after (see
   * {@linkcode DownloadResume}); not with a writer that hashes the bytes itself.
   *
   * @default {undefined}
   */
  resume?: DownloadResume;
  /**
   * Opens each direct (non-proxy) connection; for tests that inject
   * connection failures.
   *
   * @default {Deno.connect or Deno.connectTls}
   */
  connect?: Connector;
}

/** The result of {@linkcode download}. */
export interface DownloadResult {
  /** The digest of the body. */
  hash: Hash;
  /** The body's size in bytes. */
  size: number;
  /** The URL the body came from, after redirects. */
  finalUrl: string;
}

/**
 * The server answered with a status that is not retried (a 4xx other than
 * 408/429), or kept answering with a retried one (5xx) until the retries ran
 * out.
 *
 * @example Usage
 * ```ts
 * import { download, HttpStatusError } from "./download.ts";
 *
 * try {
 *   await download("https://127.0.0.1:1/missing", { retries: 0 });
 * } catch (error) {
 *   if (error instanceof HttpStatusError && error.status === 404) {
 *     // the file does not exist
 *   }
 * }
 * ```
 */
export class HttpStatusError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The URL that answered it. */
  readonly url: string;

  /**
   * Creates the error for a response.
   *
   * @param url The URL that answered.
   * @param response The HTTP status and reason phrase.
   */
  constructor(url: string, response: { status: number; statusText?: string }) {
    const { status, statusText } = response;
    super(
      `Cannot download "${displayUrl(url)}": HTTP ${status}${statusText ? ` ${statusText}` : ""}`,
    );
    this.name = "HttpStatusError";
    this.status = status;
    this.url = url;
  }
}

/** A failure worth another attempt; the message already names the URL. */
class TransientError extends Error {
  override name = "TransientError";
}

/**
 * The server stopped serving ranges of the same file (it answered a range
 * with 200 or 416, or with another length or validator): the parallel
 * download starts over on one connection.
 */
class RangesRefusedError extends Error {
  override name = "RangesRefusedError";
}

/** The largest download (or local input) accepted by default: 32 GiB. */
export const DEFAULT_MAX_BYTES: number = 32 * 1024 ** 3;
/** The block (and range) size: few syscalls and messages, little memory. */
const BLOCK_SIZE = 4 * 1024 * 1024;
/** Blocks in flight on one connection: receiving, writing, hashing. */
const SEQUENTIAL_BLOCKS = 4;
/**
 * With a writer that hashes (the Nix store): one block received while the
 * other is written. Measured as fast as four into the local store, with
 * 8 MiB less memory.
 */
const SELF_HASHING_BLOCKS = 2;
/**
 * How much of each block one connection fills before handing it on, with a
 * writer that hashes: 512 KiB writes are as fast, and the untouched rest of
 * each 4 MiB block (kept whole for ranges) never becomes resident memory.
 */
const SELF_HASHING_FILL = 512 * 1024;
/** The most one read of the body takes from the connection (1 MiB: 10% less CPU than 256 KiB on loopback). */
const READ_SIZE = 1024 * 1024;
const MAX_RETRY_DELAY_MS = 30_000;
/**
 * How long the connections left open after the last range are watched for
 * stray bytes (a broken server sends them right after the body).
 */
const DRAIN_GRACE_MS = 100;
/**
 * Connections used by default for a file of at least
 * {@linkcode PARALLEL_MIN_BYTES} whose server accepts ranges (measured with
 * `deno task bench download`).
 */
export const DEFAULT_CONNECTIONS = 4;
/** Smaller files (and loopback hosts) take one connection unless `connections` asks for more. */
const PARALLEL_MIN_BYTES = 256 * 1024 * 1024;
const MAX_CONNECTIONS = 64;

/**
 * Whether `url` may be fetched: https always, http only for loopback hosts
 * (or with `allowHttp`), nothing else.
 *
 * @example Usage
 * ```ts
 * import { checkUrlAllowed } from "./download.ts";
 * checkUrlAllowed(new URL("http://127.0.0.1:8080/x")); // ok
 * // checkUrlAllowed(new URL("http://example.com/x")) throws a TypeError
 * ```
 *
 * @param url The URL.
 * @param options Whether plain http is allowed for any host.
 * @throws {TypeError} When the scheme is not allowed.
 */
export function checkUrlAllowed(url: URL, options: { allowHttp?: boolean } = {}): void {
  if (url.protocol === "https:") return;
  if (url.protocol === "http:") {
    if (options.allowHttp || isLoopbackHost(url.hostname)) return;
    throw new TypeError(
      `Cannot download "${
        displayUrl(url)
      }": plain http is only allowed for loopback hosts (use https, or --allow-http)`,
    );
  }
  throw new TypeError(
    `Cannot download "${displayUrl(url)}": unsupported scheme "${url.protocol}" (use https)`,
  );
}

/** The limits every client of this project follows redirects by, and where it is. */
export interface RedirectPolicy {
  /**
   * Allow plain `http:` to hosts other than loopback.
   *
   * @default {false}
   */
  allowHttp?: boolean;
  /**
   * How many redirects are followed.
   *
   * @default {10}
   */
  maxRedirects?: number;
  /**
   * How many redirects were followed before this response.
   *
   * @default {0}
   */
  hop?: number;
}

/** The statuses that redirect. */
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/**
 * Where a response redirects to, checked BEFORE anything is sent there: the
 * one policy of prefetch, update's index and status's probes. `undefined`
 * when the response is not a redirect.
 *
 * @param from The URL that answered.
 * @param response Its status and headers.
 * @param policy Whether plain http is allowed, how many hops, and how many
 * were followed before this one.
 * @returns The next URL to ask, or `undefined` for a final answer.
 * @throws {TypeError} When the redirect has no Location, is one too many, or
 * leads to a scheme or host {@linkcode checkUrlAllowed} refuses: nothing was
 * sent to its target.
 *
 * @example Usage
 * ```ts
 * import { redirectTarget } from "./download.ts";
 *
 * const response = new Response(null, { status: 301, headers: { location: "/b" } });
 * redirectTarget(new URL("https://a.example/a"), response)?.href; // "https://a.example/b"
 * ```
 */
export function redirectTarget(
  from: URL,
  response: { status: number; headers: Headers },
  policy: RedirectPolicy = {},
): URL | undefined {
  if (!REDIRECT_STATUSES.has(response.status)) return undefined;
  const location = response.headers.get("location");
  const maxRedirects = policy.maxRedirects ?? 10;
  if (location === null) {
    throw new TypeError(
      `Cannot download "${displayUrl(from)}": HTTP ${response.status} without a Location`,
    );
  }
  if ((policy.hop ?? 0) >= maxRedirects) {
    throw new TypeError(
      `Cannot download "${displayUrl(from)}": more than ${maxRedirects} redirects`,
    );
  }
  const next = URL.parse(location, from);
  if (next === null) {
    throw new TypeError(
      `Cannot download "${displayUrl(from)}": a redirect to "${
        displayText(location)
      }", which is not a URL`,
    );
  }
  checkUrlAllowed(next, policy);
  return next;
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * Downloads `url`, hashing the body and passing it to `options.writer` in
 * the same pass. Transient failures are retried with exponential backoff; a
 * retry asks for the rest of the body with `Range: bytes=<received>-` (and
 * `If-Range`, so a changed file is not spliced) and checks that the server
 * answered with exactly that range, else starts over from byte 0. A name
 * that does not resolve is not retried.
 *
 * With several connections (`connections`, by default 4 for files of
 * 256 MiB or more whose server sends `Accept-Ranges: bytes`), the file is
 * fetched as 4 MiB ranges, each retried and resumed on its own, and hashed
 * in order as the contiguous prefix completes. Every range must be exactly
 * the one asked for, of the same length and validator (ETag or
 * Last-Modified) as the first response; otherwise the download starts over
 * on one connection, so bytes of two versions are never mixed.
 *
 * Bytes are hashed on a worker thread (unless the writer hashes them).
 * Memory: at most `(connections + 2) × 4 MiB` of buffers (16 MiB on one
 * connection), whatever the size.
 *
 * @example Usage
 * ```ts ignore
 * import { download } from "./download.ts";
 * import { formatHash } from "../hash/hash.ts";
 *
 * const { hash, size } = await download("https://example.com/file.tar.gz");
 * console.log(formatHash(hash, "sri"), size);
 * ```
 *
 * @param url The URL (https, or http to a loopback host).
 * @param options The hash algorithm, a writer, retry and limit settings.
 * @returns The hash, size and final URL.
 * @throws {HttpStatusError} When the server answers with an error status.
 * @throws {TypeError} When the URL or a redirect target is not allowed.
 */
export async function download(
  url: string | URL,
  options: DownloadOptions = {},
): Promise<DownloadResult> {
  const start = new URL(url);
  const allowHttp = options.allowHttp ?? false;
  checkUrlAllowed(start, { allowHttp });
  const retries = options.retries ?? 5;
  const timeoutMs = (options.timeoutSeconds ?? 60) * 1000;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new RangeError(
      `Cannot download "${displayUrl(start)}": retries must be an integer ≥ 0, got ${retries}`,
    );
  }
  if (!(timeoutMs > 0)) {
    throw new RangeError(
      `Cannot download "${
        displayUrl(start)
      }": the timeout must be > 0 s, got ${options.timeoutSeconds}`,
    );
  }
  const connections = options.connections;
  if (
    connections !== undefined &&
    !(Number.isInteger(connections) && connections >= 1 && connections <= MAX_CONNECTIONS)
  ) {
    throw new RangeError(
      `Cannot download "${
        displayUrl(start)
      }": connections must be an integer from 1 to ${MAX_CONNECTIONS}, got ${connections}`,
    );
  }
  const rangeSize = options.rangeSize ?? BLOCK_SIZE;
  if (!(Number.isInteger(rangeSize) && rangeSize >= 1024)) {
    throw new RangeError(
      `Cannot download "${
        displayUrl(start)
      }": the range size must be an integer ≥ 1024, got ${rangeSize}`,
    );
  }
  const most = connections ?? DEFAULT_CONNECTIONS;
  const sequentialBlocks = options.writer?.digest === undefined
    ? SEQUENTIAL_BLOCKS
    : SELF_HASHING_BLOCKS;
  const resume = options.resume;
  if (resume !== undefined && options.writer?.digest !== undefined && !resume.hashedByWriter) {
    throw new TypeError(
      `Cannot download "${
        displayUrl(start)
      }": a writer that hashes the bytes cannot resume unless it hashed the kept ones`,
    );
  }
  const writer = resume === undefined || options.writer === undefined
    ? options.writer
    : skipKept(options.writer, resume.size);
  using pipeline = new BlockPipeline({
    ...(options.algorithm === undefined ? {} : { algorithm: options.algorithm }),
    ...(writer === undefined ? {} : { writer }),
    blockSize: rangeSize,
    blocks: sequentialBlocks,
  });
  const job: Job = {
    start,
    pipeline,
    total: undefined,
    validator: undefined,
    finalUrl: start.href,
    options: { ...options, allowHttp, timeoutMs, maxBytes, retries },
    parallel: (total) =>
      most > 1 && total > rangeSize &&
        (connections !== undefined ||
          (total >= PARALLEL_MIN_BYTES && !isLoopbackHost(new URL(job.finalUrl).hostname)))
        ? most
        : 1,
  };
  if (resume !== undefined && resume.size > 0) {
    await readKept(start, resume, pipeline, options.signal);
    job.total = resume.total;
    job.validator = resume.validator;
  }
  try {
    try {
      await withRetries(job, "", () => pipeline.size, () => runAttempt(job));
    } catch (error) {
      if (!(error instanceof RangesRefusedError)) throw error;
      // The ranges did not add up to one file: start over, on one connection.
      await pipeline.reset();
      job.total = undefined;
      job.parallel = () => 1;
      await withRetries(job, "", () => pipeline.size, () => runAttempt(job));
    }
  } catch (error) {
    // What arrived before the failure reaches the writer: a download cache
    // keeps it for the next run.
    if (writer !== undefined && writer.digest === undefined) await pipeline.flush().catch(() => {});
    throw error;
  }
  const size = pipeline.size;
  return { hash: await pipeline.digest(), size, finalUrl: job.finalUrl };
}

/** A writer that drops the first `kept` bytes (it holds them already) until truncated. */
function skipKept(writer: DownloadWriter, kept: number): DownloadWriter {
  let skip = kept;
  return {
    write: async (chunk) => {
      if (skip >= chunk.length) {
        skip -= chunk.length;
        return;
      }
      const rest = chunk.subarray(skip);
      skip = 0;
      await writer.write(rest);
    },
    truncate: async () => {
      skip = 0;
      await writer.truncate();
    },
    ...(writer.begin === undefined ? {} : { begin: writer.begin }),
    ...(writer.digest === undefined ? {} : { digest: writer.digest }),
  };
}

/**
 * Reads the kept bytes of a resumed download into the pipeline, which hashes
 * them (or, with a writer that hashes, `resume.read` did); they pass the
 * writer, which drops them.
 */
async function readKept(
  start: URL,
  resume: DownloadResume,
  pipeline: BlockPipeline,
  signal: AbortSignal | undefined,
): Promise<void> {
  while (pipeline.size < resume.size) {
    signal?.throwIfAborted();
    const block = new Uint8Array(await pipeline.acquire(signal));
    const want = Math.min(block.length, resume.size - pipeline.size);
    let filled = 0;
    while (filled < want) {
      const n = await resume.read(block.subarray(filled, want));
      if (n === 0) break;
      filled += n;
    }
    pipeline.push(block.subarray(0, filled));
    if (filled < want) {
      throw new Error(
        `Cannot resume "${
          displayUrl(start)
        }": the kept bytes ended at ${pipeline.size} of ${resume.size}`,
      );
    }
  }
}

/** One download: what every attempt and every connection shares. */
interface Job {
  start: URL;
  pipeline: BlockPipeline;
  total: number | undefined;
  /** A strong ETag or Last-Modified date of the first response, for If-Range. */
  validator: string | undefined;
  finalUrl: string;
  options: AttemptOptions;
  /** How many connections a file of `total` bytes gets. */
  parallel: (total: number) => number;
}

type AttemptOptions = DownloadOptions & {
  allowHttp: boolean;
  timeoutMs: number;
  maxBytes: number;
  retries: number;
};

function isRetriedStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/**
 * Runs `attempt` until it succeeds, retrying transient failures with
 * exponential backoff. `what` names the part (a range) in the retry notice.
 */
async function withRetries(
  job: Job,
  what: string,
  received: () => number,
  attempt: () => Promise<void>,
  signal: AbortSignal | undefined = job.options.signal,
): Promise<void> {
  const { options } = job;
  const attempts = options.retries + 1;
  for (let number = 1;; number++) {
    signal?.throwIfAborted();
    try {
      return await attempt();
    } catch (error) {
      signal?.throwIfAborted();
      const retryable = error instanceof TransientError ||
        (error instanceof HttpStatusError && isRetriedStatus(error.status));
      if (!retryable || number >= attempts) {
        if (retryable && attempts > 1 && error instanceof Error) {
          error.message += ` (after ${attempts} attempts)`;
        }
        throw error;
      }
      const delayMs = Math.min(
        (options.retryDelayMs ?? 1000) * 2 ** (number - 1),
        MAX_RETRY_DELAY_MS,
      );
      const failure = error as Error;
      if (what !== "") failure.message = `${failure.message} (${what})`;
      options.onRetry?.({
        retry: number,
        retries: options.retries,
        error: failure,
        received: received(),
        delayMs,
      });
      await sleep(delayMs, signal);
    }
  }
}

/** An abort controller tied to the caller's signal, with an idle timer that aborts it. */
class AttemptControl implements Disposable {
  readonly controller = new AbortController();
  #signal: AbortSignal | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #url: URL;
  #timeoutMs: number;
  #onAbort = (): void => this.controller.abort(this.#signal?.reason);

  constructor(url: URL, options: { signal?: AbortSignal; timeoutMs: number }) {
    this.#url = url;
    this.#timeoutMs = options.timeoutMs;
    this.#signal = options.signal;
    if (this.#signal?.aborted) this.#onAbort();
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** (Re)starts the idle timer: `what` is awaited for at most the timeout. */
  arm(what: string): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.controller.abort(
        new TransientError(
          `Cannot download "${displayUrl(this.#url)}": timed out: no ${what} for ${
            this.#timeoutMs / 1000
          } s`,
        ),
      );
    }, this.#timeoutMs);
  }

  /** Stops the idle timer. */
  disarm(): void {
    clearTimeout(this.#timer);
  }

  [Symbol.dispose](): void {
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }
}

/** One attempt: request (resuming when bytes were kept), follow redirects, stream the body. */
async function runAttempt(job: Job): Promise<void> {
  const { start, pipeline, options } = job;
  using control = new AttemptControl(start, options);
  control.arm("response");
  let resumeFrom = pipeline.size;
  let response = await request(start, job, { first: resumeFrom }, control.signal);
  const answered = response.status === 200 || response.status === 206 || response.status === 416;
  if (resumeFrom > 0 && answered && !rangeHonoured(response, resumeFrom, job.total)) {
    // The server sent something other than the rest of the same file: a
    // full 200 body (no range support, or If-Range saw a change) is usable
    // from byte 0; anything else is discarded and asked for again.
    if (response.status !== 200) {
      await response.body?.cancel();
      control.arm("response");
      response = await request(start, job, { first: 0 }, control.signal);
    }
    resumeFrom = 0;
    job.total = undefined;
    await pipeline.reset();
  }
  const length = checkBody(response, job, resumeFrom === 0);
  const expectedEnd = length === undefined ? undefined : resumeFrom + length;
  if (resumeFrom === 0) {
    job.total = expectedEnd;
    job.validator = validatorOf(response.headers);
    options.writer?.begin?.(expectedEnd, job.validator);
  }
  const total = job.total;
  checkSize(job, total, response);
  options.onProgress?.({ received: pipeline.size, total });
  if (response.body === null) {
    throw new TransientError(`Cannot download "${displayUrl(start)}": the response has no body`);
  }
  const connections = resumeFrom === 0 && total !== undefined && acceptsRanges(response)
    ? job.parallel(total)
    : 1;
  control.arm("data");
  if (connections > 1) {
    // This response supplies the first range; the rest come in parallel.
    const sequentialBlocks = pipeline.blocks;
    pipeline.blocks = connections + 2;
    try {
      await downloadRanges(job, bodyReader(response), connections, control);
    } finally {
      pipeline.blocks = sequentialBlocks;
    }
    return;
  }
  await readBody(bodyReader(response), pipeline, {
    fill: options.writer?.digest === undefined ? pipeline.blockSize : SELF_HASHING_FILL,
    arm: () => control.arm("data"),
    limit: (pending) => {
      if (pipeline.size + pending > options.maxBytes) {
        throw new RangeError(
          `Cannot download "${
            displayUrl(start)
          }": the body exceeds the limit of ${options.maxBytes} bytes (raise it with --max-bytes)`,
        );
      }
    },
    progress: (pending) => options.onProgress?.({ received: pipeline.size + pending, total }),
    failed: (error) => bodyFailure(start, error, control.signal, pipeline.size),
  });
  if (expectedEnd !== undefined && pipeline.size !== expectedEnd) {
    throw new TransientError(
      `Cannot download "${
        displayUrl(start)
      }": the body ended at byte ${pipeline.size}, but Content-Length promised ${expectedEnd}`,
    );
  }
}

/**
 * Checks what every response must satisfy before its body is read — an
 * ordinary status, a 206 to a request for the `whole` file only when it is
 * all of it, no content coding — and returns its Content-Length. Both the
 * single-connection path and each range go through it.
 */
function checkBody(response: Response, job: Job, whole: boolean): number | undefined {
  if (response.status !== 200 && response.status !== 206) {
    response.body?.cancel().catch(() => {});
    throw new HttpStatusError(job.finalUrl, response);
  }
  if (whole && response.status === 206) {
    const problem = partialAsWhole(response);
    if (problem !== undefined) {
      response.body?.cancel().catch(() => {});
      throw new Error(`Cannot download "${displayUrl(job.start)}": ${problem}`);
    }
  }
  const encoding = response.headers.get("content-encoding");
  if (encoding !== null && encoding.toLowerCase() !== "identity") {
    // Sent despite "Accept-Encoding: identity". Nix's fetchurl decodes
    // such a body before hashing, while these bytes are the encoded file:
    // either hash would be wrong for someone.
    response.body?.cancel().catch(() => {});
    throw new Error(
      `Cannot download "${displayUrl(job.start)}": the server sent Content-Encoding "${
        displayText(encoding)
      }" although none was accepted, so the file's hash is ambiguous`,
    );
  }
  return parseLength(response.headers.get("content-length"));
}

function checkSize(job: Job, total: number | undefined, response: Response): void {
  if (total !== undefined && total > job.options.maxBytes) {
    response.body?.cancel().catch(() => {});
    throw new RangeError(
      `Cannot download "${
        displayUrl(job.start)
      }": its size, ${total} bytes, exceeds the limit of ${job.options.maxBytes} bytes (raise it with --max-bytes)`,
    );
  }
}

function acceptsRanges(response: Response): boolean {
  return response.status === 200 &&
    /(^|,)\s*bytes\s*(,|$)/i.test(response.headers.get("accept-ranges") ?? "");
}

/** A failed body read as a download failure. */
function bodyFailure(url: URL, error: unknown, signal: AbortSignal, received: number): unknown {
  if (signal.aborted) return signal.reason;
  if (error instanceof ResponseFramingError) return framingFailure(url, error);
  const detail = networkFailure(error, { url })?.words ??
    (error instanceof Error ? error.message : String(error));
  return new TransientError(
    `Cannot download "${displayUrl(url)}": the connection failed after ${received} bytes: ${
      displayText(detail)
    }`,
  );
}

/**
 * Reads of a response body into the caller's view, which keeps its buffer:
 * straight from lib/fetch/http1_client.ts's connection, or, for a fetch()
 * response (through a proxy), from the body stream through a buffer of its
 * own and a copy (a failed BYOB read detaches the buffer it was given, and
 * the bytes already in a block must survive it for the resume).
 */
interface BodyReader {
  /** Fills up to `view.length` bytes; 0 at the end of the body. */
  read(view: Uint8Array): Promise<number>;
  /** Stops reading (closes the connection); also after the end. */
  cancel(): Promise<void>;
}

function bodyReader(response: Response): BodyReader {
  const body = response.body!;
  const direct = directBodyReader(response);
  if (direct !== undefined) {
    return { read: direct, cancel: () => body.cancel().catch(() => {}) };
  }
  const reader = body.getReader({ mode: "byob" });
  let chunk = new ArrayBuffer(READ_SIZE);
  return {
    async read(view: Uint8Array): Promise<number> {
      const step = await reader.read(new Uint8Array(chunk, 0, Math.min(READ_SIZE, view.length)));
      if (step.value === undefined) return 0;
      chunk = step.value.buffer as ArrayBuffer;
      view.set(step.value);
      return step.value.length;
    },
    async cancel(): Promise<void> {
      reader.releaseLock();
      await body.cancel().catch(() => {});
    },
  };
}

/**
 * Reads a body into pipeline blocks of `hooks.fill` bytes, pushing each
 * when full and the last part at the end; on a failure the bytes received
 * so far are pushed too, so the next attempt resumes after them.
 */
async function readBody(
  body: BodyReader,
  pipeline: BlockPipeline,
  hooks: {
    /** Bytes of a block filled before it is pushed (at most its size). */
    fill: number;
    arm: () => void;
    limit: (pending: number) => void;
    progress: (pending: number) => void;
    failed: (error: unknown) => unknown;
  },
): Promise<void> {
  let block: Uint8Array | undefined;
  let filled = 0;
  const push = (): void => {
    pipeline.push(block!.subarray(0, filled));
    block = undefined;
    filled = 0;
  };
  try {
    for (;;) {
      block ??= new Uint8Array(await pipeline.acquire());
      const end = Math.min(block.length, hooks.fill);
      let n: number;
      try {
        n = await body.read(block.subarray(filled, end));
      } catch (error) {
        push();
        throw hooks.failed(error);
      }
      hooks.arm();
      if (n === 0) {
        push();
        return;
      }
      hooks.limit(filled + n);
      filled += n;
      if (filled === end) push();
      else hooks.progress(filled);
    }
  } finally {
    if (block !== undefined) pipeline.release(block.buffer as ArrayBuffer);
    await body.cancel();
  }
}

/** One range of a parallel download: bytes `first`–`last` (inclusive), read into `block`. */
interface Range {
  index: number;
  first: number;
  last: number;
  block: ArrayBuffer;
  filled: number;
  done: boolean;
}

/**
 * Fetches the file as ranges of one block each over `connections`
 * connections. `head` reads the body of the first (plain) response: its first
 * block is range 0, then it is closed. Completed ranges are pushed in order,
 * so at most `connections` blocks wait, plus those being written and hashed.
 */
async function downloadRanges(
  job: Job,
  head: BodyReader,
  connections: number,
  headControl: AttemptControl,
): Promise<void> {
  const { pipeline, options } = job;
  const total = job.total!;
  const size = pipeline.blockSize;
  const count = Math.ceil(total / size);
  const ranges = new Map<number, Range>();
  let next = 0;
  let pushed = 0;
  let received = 0;
  const stop = new AbortController();
  const signal = options.signal === undefined
    ? stop.signal
    : AbortSignal.any([stop.signal, options.signal]);
  const progress = (): void => options.onProgress?.({ received, total });
  // Ranges after the first reuse connections: no handshake and no TCP slow
  // start per range.
  using pool = new ConnectionPool();

  const take = async (): Promise<Range | undefined> => {
    if (next >= count) return undefined;
    const block = await pipeline.acquire(stop.signal);
    if (next >= count) {
      pipeline.release(block);
      return undefined;
    }
    const index = next++;
    const range: Range = {
      index,
      first: index * size,
      last: Math.min(total, (index + 1) * size) - 1,
      block,
      filled: 0,
      done: false,
    };
    ranges.set(index, range);
    return range;
  };
  const complete = (range: Range): void => {
    range.done = true;
    for (let ready = ranges.get(pushed); ready?.done; ready = ranges.get(pushed)) {
      ranges.delete(pushed);
      pipeline.push(new Uint8Array(ready.block, 0, ready.last - ready.first + 1));
      pushed++;
    }
  };
  const fetchRange = async (range: Range, opened?: BodyReader): Promise<void> => {
    const what = `bytes ${range.first}-${range.last}`;
    try {
      await withRetries(job, what, () => received, async () => {
        const url = new URL(job.finalUrl);
        using control = new AttemptControl(url, { signal, timeoutMs: options.timeoutMs });
        let body = opened;
        opened = undefined;
        // The first response is read only up to the end of range 0.
        const whole = body !== undefined;
        const active = whole ? headControl : control;
        if (body === undefined) {
          control.arm("response");
          const from = range.first + range.filled;
          const response = await request(
            url,
            job,
            { first: from, last: range.last },
            control.signal,
            pool,
          );
          checkRange(response, job, from, range.last);
          body = bodyReader(response);
        }
        active.arm("data");
        try {
          await readRange(body, range, {
            arm: () => active.arm("data"),
            received: (bytes) => {
              received += bytes;
              progress();
            },
            failed: (error) => bodyFailure(url, error, active.signal, range.first + range.filled),
            whole,
          });
        } finally {
          if (whole) headControl.disarm();
        }
      }, signal);
    } catch (error) {
      // Its own retries are spent: the download fails (the whole is not retried again).
      if (error instanceof TransientError) throw new Error(error.message);
      throw error;
    }
    complete(range);
  };

  const worker = async (range: Range | undefined, opened?: BodyReader) => {
    for (; range !== undefined; range = await take()) {
      await fetchRange(range, range.index === 0 ? opened : undefined);
    }
  };
  try {
    const workers = [worker(await take(), head)];
    for (let k = 1; k < connections; k++) workers.push(worker(await take()));
    const results = await Promise.allSettled(workers.map((running) =>
      running.catch((error) => {
        if (!stop.signal.aborted) stop.abort(error);
        throw error;
      })
    ));
    if (results.some((result) => result.status === "rejected")) throw stop.signal.reason;
    await pool.drain(DRAIN_GRACE_MS).catch((error) => {
      throw error instanceof ResponseFramingError
        ? framingFailure(new URL(job.finalUrl), error)
        : error;
    });
  } finally {
    stop.abort();
    await head.cancel();
    for (const range of ranges.values()) pipeline.release(range.block);
    ranges.clear();
  }
  if (pipeline.size !== total) {
    throw new RangesRefusedError(
      `Cannot download "${displayUrl(job.start)}": the ranges do not add up`,
    );
  }
}

/**
 * Checks that a response to `Range: bytes=<first>-<last>` is exactly that
 * range of the same file: else the file changed or the server stopped
 * honouring ranges, and the download starts over.
 */
function checkRange(response: Response, job: Job, first: number, last: number): void {
  if (response.status === 200 || response.status === 416) {
    response.body?.cancel().catch(() => {});
    throw new RangesRefusedError(
      `Cannot download "${
        displayUrl(job.finalUrl)
      }": the server answered a range with HTTP ${response.status}`,
    );
  }
  const length = checkBody(response, job, false);
  const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get("content-range") ?? "");
  const validator = validatorOf(response.headers);
  const changed = match === null || Number(match[1]) !== first || Number(match[2]) !== last ||
    Number(match[3]) !== job.total || (length !== undefined && length !== last - first + 1) ||
    (job.validator !== undefined && validator !== job.validator);
  if (changed) {
    response.body?.cancel().catch(() => {});
    throw new RangesRefusedError(
      `Cannot download "${
        displayUrl(job.finalUrl)
      }": the answer to bytes ${first}-${last} is another range or version (Content-Range ${
        JSON.stringify(response.headers.get("content-range"))
      }, validator ${JSON.stringify(validator ?? null)})`,
    );
  }
  if (response.body === null) {
    throw new TransientError(
      `Cannot download "${displayUrl(job.finalUrl)}": the response has no body`,
    );
  }
}

/**
 * Reads a range's body into its block, after the bytes it already holds (a
 * retry resumes after them). For the first response (`whole`, a plain GET
 * of the whole file), only the first block is read, then the connection is
 * closed; any other body must end with the range (the framing checks run
 * then).
 */
async function readRange(
  body: BodyReader,
  range: Range,
  hooks: {
    arm: () => void;
    received: (bytes: number) => void;
    failed: (error: unknown) => unknown;
    whole: boolean;
  },
): Promise<void> {
  const length = range.last - range.first + 1;
  const block = new Uint8Array(range.block, 0, length);
  try {
    for (let got = -1; got !== 0 && range.filled < length;) {
      try {
        got = await body.read(block.subarray(range.filled));
      } catch (error) {
        throw hooks.failed(error);
      }
      hooks.arm();
      range.filled += got;
      hooks.received(got);
    }
    if (range.filled === length && !hooks.whole) {
      let more: number;
      try {
        more = await body.read(new Uint8Array(1));
      } catch (error) {
        throw hooks.failed(error);
      }
      if (more > 0) {
        throw new Error(
          `Cannot download: the server sent more than bytes ${range.first}-${range.last}`,
        );
      }
    }
  } finally {
    await body.cancel();
  }
  if (range.filled !== length) {
    throw new TransientError(
      `Cannot download: bytes ${range.first}-${range.last} ended after ${range.filled} bytes`,
    );
  }
}

/** Sends the request, following redirects by hand so that each hop's scheme is checked. */
async function request(
  start: URL,
  job: Job,
  range: { first: number; last?: number },
  signal: AbortSignal,
  pool?: ConnectionPool,
): Promise<Response> {
  const { options } = job;
  let url = start;
  for (let hop = 0;; hop++) {
    // Compressed transfer would hash the decoded bytes, not the file.
    const headers: Record<string, string> = { "accept-encoding": "identity" };
    if (range.first > 0 || range.last !== undefined) {
      headers["range"] = `bytes=${range.first}-${range.last ?? ""}`;
      if (job.validator !== undefined) headers["if-range"] = job.validator;
    }
    let response: Response;
    try {
      response = usesProxy(url)
        ? await fetch(url, { headers, redirect: "manual", signal })
        : await fetchHttp1(url, {
          headers,
          signal,
          ...(options.connect === undefined ? {} : { connect: options.connect }),
          ...(pool === undefined ? {} : { pool }),
        });
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if (error instanceof ResponseFramingError) throw framingFailure(url, error);
      const failure = networkFailure(error, { url });
      const reason = failure?.words ?? describeNetworkFailure(error);
      if (failure?.kind === "name-not-found" || failure?.kind === "name-lookup-failed") {
        // Retrying does not make a name exist: fail at once.
        throw new Error(`Cannot download "${displayUrl(url)}": ${displayText(reason)}`);
      }
      throw new TransientError(`Cannot download "${displayUrl(url)}": ${displayText(reason)}`);
    }
    job.finalUrl = url.href;
    let next: URL | undefined;
    try {
      next = redirectTarget(url, response, { ...options, hop });
    } catch (error) {
      await response.body?.cancel(); // a refused hop: its connection goes too
      throw error;
    }
    if (next === undefined) return response;
    await response.body?.cancel();
    url = next;
  }
}

/**
 * The environment variables through which `fetch()` reaches a proxy. When one
 * is set for the URL's scheme, or cannot be read (no `--allow-env` for it),
 * the download goes through `fetch()`, which honours them, instead of
 * lib/fetch/http1_client.ts, which speaks to the origin directly: a proxy re-frames
 * the body anyway, so only a direct connection can see bytes past the
 * Content-Length. Loopback hosts are always reached directly.
 */
const PROXY_VARIABLES = {
  "http:": ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"],
  "https:": ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"],
} as const;

function usesProxy(url: URL): boolean {
  if (isLoopbackHost(url.hostname)) return false; // never worth a proxy
  const names = PROXY_VARIABLES[url.protocol as keyof typeof PROXY_VARIABLES] ?? [];
  return names.some((variable) =>
    Deno.permissions.querySync({ name: "env", variable }).state !== "granted" ||
    (Deno.env.get(variable) ?? "") !== ""
  );
}

/**
 * A framing error as a download failure: a body cut short is retried (and
 * resumed), bytes past the end or a malformed response are not, since the
 * file's size is in doubt.
 */
function framingFailure(url: URL, error: ResponseFramingError): Error {
  const message = `Cannot download "${displayUrl(url)}": ${error.message}`;
  if (error.kind === "truncated") return new TransientError(message);
  return new Error(
    error.kind === "overlong"
      ? `${message}; the file's size is in doubt, so it is not hashed (a broken server or middlebox)`
      : message,
  );
}

/** Whether a response to `Range: bytes=<from>-` is exactly the rest of the same file. */
function rangeHonoured(response: Response, from: number, total: number | undefined): boolean {
  if (response.status !== 206) return false;
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get("content-range") ?? "");
  if (match === null) return false;
  const [, first, last, size] = match;
  if (Number(first) !== from) return false;
  if (size !== "*" && Number(last) !== Number(size) - 1) return false;
  if (total !== undefined && size !== String(total)) return false;
  const length = parseLength(response.headers.get("content-length"));
  return length === undefined || length === Number(last) - from + 1;
}

/**
 * Why a 206 answer to a request for the whole file (no `Range`) is not the
 * whole file, or `undefined` when it is: only `Content-Range: bytes 0-(N-1)/N`
 * with a Content-Length of N (or none) covers every byte. Nix's fetchurl
 * accepts any 206 body, so a fragment taken here would be pinned and would
 * "verify" forever after.
 */
function partialAsWhole(response: Response): string | undefined {
  const range = response.headers.get("content-range") ?? "";
  const match = /^bytes 0-(\d+)\/(\d+)$/.exec(range);
  const detail =
    `the server answered 206 (Partial Content) with Content-Range "${displayText(range)}" ` +
    `to a request for the whole file`;
  if (match === null || Number(match[1]) + 1 !== Number(match[2])) {
    return `${detail}, which is not all of it`;
  }
  const length = parseLength(response.headers.get("content-length"));
  if (length !== undefined && length !== Number(match[2])) {
    return `${detail}, but Content-Length is ${length}`;
  }
  return undefined;
}

/**
 * The validator of a response, as a resume's `If-Range` sends it and the
 * download cache records it: a strong ETag, else Last-Modified.
 *
 * @example Usage
 * ```ts
 * import { validatorOf } from "./download.ts";
 * validatorOf(new Headers({ etag: '"v1"' })); // '"v1"'
 * validatorOf(new Headers({ etag: 'W/"v1"' })); // undefined (a weak ETag)
 * ```
 *
 * @param headers The response's headers.
 * @returns The validator, or `undefined` when the response has none.
 */
export function validatorOf(headers: Headers): string | undefined {
  const etag = headers.get("etag");
  if (etag !== null && !etag.startsWith("W/")) return etag;
  return headers.get("last-modified") ?? undefined;
}

function parseLength(text: string | null): number | undefined {
  if (text === null || !/^\d+$/.test(text)) return undefined;
  return Number(text);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
