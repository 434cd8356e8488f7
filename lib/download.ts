/**
 * The download engine: one pass over the bytes of a URL, hashed and
 * (optionally) written to disk as they arrive, with bounded redirects,
 * retries with backoff and resumption by HTTP Range requests.
 *
 * @module
 */

import { Hasher } from "./hasher.ts";
import type { Hash, HashAlgorithm } from "./hash.ts";
import { fetchHttp1, ResponseFramingError } from "./http1_client.ts";

/**
 * Where downloaded bytes go besides the hash. `truncate()` is called when the
 * server cannot resume and the download starts over from byte 0.
 */
export interface DownloadWriter {
  /**
   * Appends bytes.
   *
   * @param chunk The next bytes of the body.
   */
  write(chunk: Uint8Array): Promise<void>;
  /** Discards everything written so far. */
  truncate(): Promise<void>;
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
  /** The attempt about to start (2 for the first retry). */
  attempt: number;
  /** The number of attempts allowed in all. */
  attempts: number;
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
    super(`Cannot download "${url}": HTTP ${status}${statusText ? ` ${statusText}` : ""}`);
    this.name = "HttpStatusError";
    this.status = status;
    this.url = url;
  }
}

/** A failure worth another attempt; the message already names the URL. */
class TransientError extends Error {
  override name = "TransientError";
}

/** The largest download (or local input) accepted by default: 32 GiB. */
export const DEFAULT_MAX_BYTES: number = 32 * 1024 ** 3;
/** Bytes gathered before each write: few syscalls, little memory. */
const BLOCK_SIZE = 1024 * 1024;
/** The most one read of the body takes from the connection. */
const READ_SIZE = 256 * 1024;
const MAX_RETRY_DELAY_MS = 30_000;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

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
      `Cannot download "${url}": plain http is only allowed for loopback hosts (use https, or --allow-http)`,
    );
  }
  throw new TypeError(`Cannot download "${url}": unsupported scheme "${url.protocol}" (use https)`);
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * Downloads `url`, hashing the body and passing it to `options.writer` in
 * the same pass. Transient failures are retried with exponential backoff; a
 * retry asks for the rest of the body with `Range: bytes=<received>-` (and
 * `If-Range`, so a changed file is not spliced) and checks that the server
 * answered with exactly that range, else starts over from byte 0.
 *
 * The hash state always covers exactly the bytes received, so resuming needs
 * no partial file: the writer is only for callers who keep the bytes.
 *
 * @example Usage
 * ```ts ignore
 * import { download } from "./download.ts";
 * import { formatHash } from "./hash.ts";
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
      `Cannot download "${start}": retries must be an integer ≥ 0, got ${retries}`,
    );
  }
  if (!(timeoutMs > 0)) {
    throw new RangeError(
      `Cannot download "${start}": the timeout must be > 0 s, got ${options.timeoutSeconds}`,
    );
  }
  const state: AttemptState = {
    hasher: new Hasher(options.algorithm),
    total: undefined,
    validator: undefined,
    finalUrl: start.href,
  };
  const attempts = retries + 1;
  for (let attempt = 1;; attempt++) {
    options.signal?.throwIfAborted();
    try {
      await runAttempt(start, state, { ...options, allowHttp, timeoutMs, maxBytes });
      return { hash: state.hasher.digest(), size: state.hasher.size, finalUrl: state.finalUrl };
    } catch (error) {
      options.signal?.throwIfAborted();
      const retryable = error instanceof TransientError ||
        (error instanceof HttpStatusError && isRetriedStatus(error.status));
      if (!retryable || attempt >= attempts) {
        if (retryable && attempts > 1 && error instanceof Error) {
          error.message += ` (after ${attempts} attempts)`;
        }
        throw error;
      }
      const delayMs = Math.min(
        (options.retryDelayMs ?? 1000) * 2 ** (attempt - 1),
        MAX_RETRY_DELAY_MS,
      );
      options.onRetry?.({
        attempt: attempt + 1,
        attempts,
        error: error as Error,
        received: state.hasher.size,
        delayMs,
      });
      await sleep(delayMs, options.signal);
    }
  }
}

interface AttemptState {
  hasher: Hasher;
  total: number | undefined;
  /** A strong ETag or Last-Modified date of the first response, for If-Range. */
  validator: string | undefined;
  finalUrl: string;
}

type AttemptOptions = DownloadOptions & { allowHttp: boolean; timeoutMs: number; maxBytes: number };

function isRetriedStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** One attempt: request (resuming when bytes were kept), follow redirects, stream the body. */
async function runAttempt(start: URL, state: AttemptState, options: AttemptOptions): Promise<void> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = (what: string): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      controller.abort(
        new TransientError(
          `Cannot download "${start}": no ${what} for ${options.timeoutMs / 1000} s`,
        ),
      );
    }, options.timeoutMs);
  };
  try {
    arm("response");
    let resumeFrom = state.hasher.size;
    let response = await request(start, state, resumeFrom, controller.signal, options);
    const answered = response.status === 200 || response.status === 206 || response.status === 416;
    if (resumeFrom > 0 && answered && !rangeHonoured(response, resumeFrom, state.total)) {
      // The server sent something other than the rest of the same file: a
      // full 200 body (no range support, or If-Range saw a change) is usable
      // from byte 0; anything else is discarded and asked for again.
      if (response.status !== 200) {
        await response.body?.cancel();
        arm("response");
        response = await request(start, state, 0, controller.signal, options);
      }
      resumeFrom = 0;
      state.hasher = new Hasher(state.hasher.algorithm);
      state.total = undefined;
      await options.writer?.truncate();
    }
    if (response.status !== 200 && response.status !== 206) {
      await response.body?.cancel();
      throw new HttpStatusError(state.finalUrl, response);
    }
    if (resumeFrom === 0 && response.status === 206) {
      const problem = partialAsWhole(response);
      if (problem !== undefined) {
        await response.body?.cancel();
        throw new Error(`Cannot download "${start}": ${problem}`);
      }
    }
    const encoding = response.headers.get("content-encoding");
    if (encoding !== null && encoding.toLowerCase() !== "identity") {
      // Sent despite "Accept-Encoding: identity". Nix's fetchurl decodes
      // such a body before hashing, while these bytes are the encoded file:
      // either hash would be wrong for someone.
      await response.body?.cancel();
      throw new Error(
        `Cannot download "${start}": the server sent Content-Encoding "${encoding}" although none was accepted, so the file's hash is ambiguous`,
      );
    }
    const length = parseLength(response.headers.get("content-length"));
    const expectedEnd = length === undefined ? undefined : resumeFrom + length;
    if (resumeFrom === 0) {
      state.total = expectedEnd;
      state.validator = validatorOf(response.headers);
    }
    const total = state.total;
    if (total !== undefined && total > options.maxBytes) {
      await response.body?.cancel();
      throw new RangeError(
        `Cannot download "${start}": its size, ${total} bytes, exceeds the limit of ${options.maxBytes} bytes (raise it with --max-bytes)`,
      );
    }
    options.onProgress?.({ received: state.hasher.size, total });
    if (response.body === null) {
      throw new TransientError(`Cannot download "${start}": the response has no body`);
    }
    arm("data");
    await readBody(response.body, {
      arm: () => arm("data"),
      consume: async (block) => {
        if (state.hasher.size + block.length > options.maxBytes) {
          throw new RangeError(
            `Cannot download "${start}": the body exceeds the limit of ${options.maxBytes} bytes (raise it with --max-bytes)`,
          );
        }
        // Hashed only once written, so the hash never covers bytes the file
        // lacks: a resume continues both from the same byte.
        await options.writer?.write(block);
        state.hasher.update(block);
      },
      progress: (pending) => options.onProgress?.({ received: state.hasher.size + pending, total }),
      failed: (error) => {
        if (controller.signal.aborted) return controller.signal.reason;
        if (error instanceof ResponseFramingError) return framingFailure(start, error);
        const detail = error instanceof Error ? error.message : String(error);
        return new TransientError(
          `Cannot download "${start}": the connection failed after ${state.hasher.size} bytes: ${detail}`,
        );
      },
    });
    if (expectedEnd !== undefined && state.hasher.size !== expectedEnd) {
      throw new TransientError(
        `Cannot download "${start}": the body ended at byte ${state.hasher.size}, but Content-Length promised ${expectedEnd}`,
      );
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Reads a body with a BYOB reader into a reused buffer (no allocation per
 * chunk, so memory stays flat however large the body), gathers the bytes into
 * a block and hands each full block to `consume`. A failed read detaches its
 * buffer, which is why the block is a separate copy: when the connection
 * fails the bytes already received are consumed first, so a resume starts
 * right after them.
 */
async function readBody(
  body: ReadableStream<Uint8Array>,
  hooks: {
    arm: () => void;
    consume: (block: Uint8Array) => Promise<void>;
    progress: (pending: number) => void;
    failed: (error: unknown) => unknown;
  },
): Promise<void> {
  const reader = body.getReader({ mode: "byob" });
  let chunk = new ArrayBuffer(READ_SIZE);
  const block = new Uint8Array(BLOCK_SIZE);
  let filled = 0;
  try {
    for (;;) {
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read(new Uint8Array(chunk));
      } catch (error) {
        if (filled > 0) await hooks.consume(block.subarray(0, filled));
        throw hooks.failed(error);
      }
      hooks.arm();
      let bytes = step.value ?? new Uint8Array();
      if (step.value !== undefined) chunk = step.value.buffer as ArrayBuffer;
      while (bytes.length > 0) {
        const taken = Math.min(bytes.length, BLOCK_SIZE - filled);
        block.set(bytes.subarray(0, taken), filled);
        filled += taken;
        bytes = bytes.subarray(taken);
        if (filled === BLOCK_SIZE) {
          await hooks.consume(block);
          filled = 0;
        }
      }
      if (step.done) {
        if (filled > 0) await hooks.consume(block.subarray(0, filled));
        return;
      }
      hooks.progress(filled);
    }
  } finally {
    reader.releaseLock();
    await body.cancel().catch(() => {});
  }
}

/** Sends the request, following redirects by hand so that each hop's scheme is checked. */
async function request(
  start: URL,
  state: AttemptState,
  resumeFrom: number,
  signal: AbortSignal,
  options: AttemptOptions,
): Promise<Response> {
  let url = start;
  const maxRedirects = options.maxRedirects ?? 10;
  for (let hop = 0;; hop++) {
    // Compressed transfer would hash the decoded bytes, not the file.
    const headers: Record<string, string> = { "accept-encoding": "identity" };
    if (resumeFrom > 0) {
      headers["range"] = `bytes=${resumeFrom}-`;
      if (state.validator !== undefined) headers["if-range"] = state.validator;
    }
    let response: Response;
    try {
      response = usesProxy(url)
        ? await fetch(url, { headers, redirect: "manual", signal })
        : await fetchHttp1(url, { headers, signal });
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if (error instanceof ResponseFramingError) throw framingFailure(url, error);
      throw new TransientError(`Cannot download "${url}": ${connectionFailure(error)}`);
    }
    state.finalUrl = url.href;
    if (!REDIRECTS.has(response.status)) return response;
    await response.body?.cancel();
    const location = response.headers.get("location");
    if (location === null) {
      throw new TypeError(`Cannot download "${url}": HTTP ${response.status} without a Location`);
    }
    if (hop >= maxRedirects) {
      throw new TypeError(`Cannot download "${start}": more than ${maxRedirects} redirects`);
    }
    const next = new URL(location, url);
    checkUrlAllowed(next, options);
    url = next;
  }
}

/**
 * The environment variables through which `fetch()` reaches a proxy. When one
 * is set for the URL's scheme, or cannot be read (no `--allow-env` for it),
 * the download goes through `fetch()`, which honours them, instead of
 * lib/http1_client.ts, which speaks to the origin directly: a proxy re-frames
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
  const message = `Cannot download "${url}": ${error.message}`;
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
  const detail = `the server answered 206 (Partial Content) with Content-Range "${range}" ` +
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

function validatorOf(headers: Headers): string | undefined {
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

/**
 * The reason a request failed to connect. fetch() reports only "fetch
 * failed"; the reason (refused, reset, no such host) is in its cause, after
 * a prefix repeating the URL.
 */
function connectionFailure(error: unknown): string {
  let reason = error instanceof Error ? error.message : String(error);
  for (
    let cause = (error as Error)?.cause, depth = 0;
    cause instanceof Error && depth < 8;
    depth++
  ) {
    reason = cause.message;
    cause = cause.cause;
  }
  return reason.replace(/^error sending request for url \([^)]*\): /, "");
}
