/**
 * An HTTP/1.1 GET that checks the body's framing to the last byte.
 *
 * `fetch()` stops reading a body at its Content-Length and drops whatever the
 * server sends after it, so a server that sends more than it announced goes
 * unnoticed and the file's true size is unknown. curl and Nix do the same.
 * No HTTP library on npm reports it either, hence this client. It asks for
 * `Connection: close`, reads the body by its framing (Content-Length, chunked,
 * or until the connection closes) and then reads on until the server closes:
 * a single byte more is an error.
 *
 * With a {@linkcode ConnectionPool} it keeps connections open between
 * requests instead (a parallel download's ranges: no new TCP and TLS
 * handshake, and no TCP slow start, per range). Since requests are never
 * pipelined, every byte between one body's end and the next status line is
 * a byte too many: those already received at the end of the body fail it,
 * later ones fail the next response on that connection, and
 * {@linkcode ConnectionPool.drain} waits a moment for them on the connections
 * left idle at the end.
 *
 * It does what downloads need and no more: GET over http or https (TLS from
 * `Deno.connectTls`, with Deno's root certificates), no proxy, no cookies, no
 * compression, no redirects (the caller follows them, checking each hop).
 *
 * @module
 */

/**
 * The response broke HTTP/1.1 framing: a body longer or shorter than its
 * Content-Length, a malformed chunk, a malformed status line or header.
 *
 * @example Usage
 * ```ts ignore
 * import { fetchHttp1, ResponseFramingError } from "./http1_client.ts";
 *
 * try {
 *   await (await fetchHttp1(new URL("https://example.com/file"))).arrayBuffer();
 * } catch (error) {
 *   if (error instanceof ResponseFramingError && error.kind === "overlong") {
 *     // the server sent more bytes than its Content-Length
 *   }
 * }
 * ```
 */
export class ResponseFramingError extends Error {
  /**
   * `"overlong"`: bytes after the end of the body; `"truncated"`: the
   * connection closed before the body's end; `"malformed"`: bytes that are
   * not HTTP/1.1.
   */
  readonly kind: "overlong" | "truncated" | "malformed";

  /**
   * Creates the error.
   *
   * @param kind What was wrong with the framing.
   * @param message What the server sent, in words.
   */
  constructor(kind: "overlong" | "truncated" | "malformed", message: string) {
    super(message);
    this.name = "ResponseFramingError";
    this.kind = kind;
  }
}

/** Options for {@linkcode fetchHttp1}. */
export interface Http1Options {
  /**
   * Request headers besides Host, Connection and User-Agent.
   *
   * @default {{}}
   */
  headers?: Record<string, string>;
  /**
   * Closes the connection: a pending call or body read rejects with the
   * signal's reason.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Milliseconds to wait, after a complete body, for the server to close the
   * connection (or send stray bytes) before taking the body as it is. Servers
   * that honour `Connection: close` close at once.
   *
   * @default {1000}
   */
  closeGraceMs?: number;
  /**
   * Opens the connection (TLS included for https). Tests inject failures
   * here, e.g. the error a resolver gives for a name that does not exist.
   *
   * @default {Deno.connect or Deno.connectTls}
   */
  connect?: Connector;
  /**
   * Where idle connections wait between requests: an idle connection to the
   * same origin is reused, and this one goes back once its body has been
   * read to the exact end (or had none).
   *
   * @default {undefined (a new connection, closed after the response)}
   */
  pool?: ConnectionPool;
}

/** A connection and the bytes read from it but not yet consumed. */
interface OpenConnection {
  conn: Deno.Conn;
  reader: ConnectionReader;
}

/**
 * Idle HTTP/1.1 connections kept open for reuse by {@linkcode fetchHttp1},
 * by origin. Disposing of the pool closes them.
 *
 * @example Usage
 * ```ts ignore
 * import { ConnectionPool, fetchHttp1 } from "./http1_client.ts";
 *
 * using pool = new ConnectionPool();
 * for (const range of ["bytes=0-99", "bytes=100-199"]) {
 *   const response = await fetchHttp1(new URL("https://example.com/file"), {
 *     headers: { range },
 *     pool,
 *   });
 *   await response.arrayBuffer(); // read to the end: the connection goes back
 * }
 * pool.opened; // 1
 * ```
 */
export class ConnectionPool implements Disposable {
  constructor() {
    pools.set(this, { idle: new Map(), closed: false, opened: 0 });
  }

  /** How many connections requests through this pool have opened. */
  get opened(): number {
    return pools.get(this)!.opened;
  }

  /**
   * Waits up to `graceMs` for a stray byte on each idle connection, then
   * closes them all: the check for bytes after a body that the close of a
   * `Connection: close` response gives, for the last response on each.
   *
   * @param graceMs How long to wait, for all connections at once.
   * @throws {ResponseFramingError} When a server sent bytes after a body.
   */
  async drain(graceMs: number): Promise<void> {
    const state = pools.get(this)!;
    const idle = [...state.idle.values()].flat();
    state.idle.clear();
    state.closed = true;
    const stray = await Promise.all(idle.map(({ reader }) => reader.hasMore(graceMs)));
    for (const { conn } of idle) closeQuietly(conn);
    if (stray.includes(true)) {
      throw new ResponseFramingError(
        "overlong",
        "the server sent more than a response's Content-Length announced: bytes followed its body on a kept-alive connection",
      );
    }
  }

  /** Closes every idle connection; connections given back later are closed too. */
  close(): void {
    const state = pools.get(this)!;
    state.closed = true;
    for (const idle of state.idle.values()) for (const { conn } of idle) closeQuietly(conn);
    state.idle.clear();
  }

  /** Closes every idle connection. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** A pool's idle connections by origin, and what it counts. */
interface PoolState {
  idle: Map<string, OpenConnection[]>;
  closed: boolean;
  opened: number;
}
const pools = new WeakMap<ConnectionPool, PoolState>();

/** Takes an idle connection to `origin` from the pool, if there is one. */
function takeIdle(pool: ConnectionPool, origin: string): OpenConnection | undefined {
  return pools.get(pool)!.idle.get(origin)?.pop();
}

/** Gives a connection back to the pool (closed if the pool is). */
function giveBack(pool: ConnectionPool, origin: string, connection: OpenConnection): void {
  const state = pools.get(pool)!;
  if (state.closed) {
    closeQuietly(connection.conn);
    return;
  }
  const idle = state.idle.get(origin) ?? [];
  idle.push(connection);
  state.idle.set(origin, idle);
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** Opens a connection to `hostname:port`, over TLS when `tls` is set. */
export type Connector = (
  target: { hostname: string; port: number; tls: boolean },
) => Promise<Deno.Conn>;

/** Status line and headers together, the most a response head may take. */
const MAX_HEAD_BYTES = 64 * 1024;
/** A chunk-size line or trailer field, the most it may take. */
const MAX_LINE_BYTES = 8 * 1024;
/** Interim (1xx) responses skipped before the final one, at most. */
const MAX_INTERIM_RESPONSES = 16;
/** Each body read asks the stream for this much room. */
const READ_SIZE = 256 * 1024;
const NULL_BODY_STATUSES = new Set([204, 205, 304]);

/**
 * Sends `GET url` over a new connection and returns the response once its
 * head has arrived. Reading the body rejects with a
 * {@linkcode ResponseFramingError} when the server sends a byte past the
 * body's end or closes before it.
 *
 * @example Usage
 * ```ts ignore
 * import { fetchHttp1 } from "./http1_client.ts";
 *
 * const response = await fetchHttp1(new URL("https://example.com/file"));
 * const bytes = new Uint8Array(await response.arrayBuffer());
 * ```
 *
 * @param url An http: or https: URL.
 * @param options Headers, a signal, the close grace period.
 * @returns The response; its body is a byte stream.
 * @throws {Deno.errors.ConnectionRefused} and other connection errors.
 * @throws {ResponseFramingError} When the response head is not HTTP/1.1.
 */
export async function fetchHttp1(url: URL, options: Http1Options = {}): Promise<Response> {
  const { signal, pool } = options;
  signal?.throwIfAborted();
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`Cannot fetch "${url}": only http: and https: are supported`);
  }
  const idle = pool === undefined ? undefined : takeIdle(pool, url.origin);
  if (idle !== undefined) {
    try {
      return await exchange(url, idle, true, options);
    } catch (error) {
      // A server may close an idle connection whenever it likes; before it
      // sent a byte of the answer, asking again on a new one is safe (GET).
      if (signal?.aborted || idle.reader.received > 0) throw error;
    }
  }
  const conn = await connect(url, signal, options.connect);
  if (pool !== undefined) pools.get(pool)!.opened++;
  return await exchange(url, { conn, reader: new ConnectionReader(conn) }, false, options);
}

/** Sends the request on `connection` and reads the response head. */
async function exchange(
  url: URL,
  connection: OpenConnection,
  reused: boolean,
  options: Http1Options,
): Promise<Response> {
  const { signal, pool } = options;
  const { conn, reader } = connection;
  const keepAlive = pool !== undefined;
  const close = (): void => closeQuietly(conn);
  signal?.addEventListener("abort", close, { once: true });
  if (signal?.aborted) close(); // aborted while connecting
  let settled = false;
  /** The end of the exchange: the connection goes back to the pool when `reusable`, else closes. */
  const done = (reusable = false): void => {
    if (settled) return;
    settled = true;
    signal?.removeEventListener("abort", close);
    if (reusable && keepAlive) giveBack(pool!, url.origin, connection);
    else close();
  };
  try {
    reader.received = 0;
    await writeAll(
      conn,
      new TextEncoder().encode(requestHead(url, options.headers ?? {}, keepAlive)),
    );
    let head = await readHead(reader, reused);
    for (let interim = 0; head.status < 200; interim++) {
      if (interim === MAX_INTERIM_RESPONSES) {
        throw new ResponseFramingError(
          "malformed",
          `more than ${MAX_INTERIM_RESPONSES} interim (1xx) responses`,
        );
      }
      head = await readHead(reader, false);
    }
    const init = { status: head.status, statusText: head.statusText, headers: head.headers };
    const reusable = keepAlive && head.keepAlive;
    if (NULL_BODY_STATUSES.has(head.status)) {
      done(reusable && reader.buffered === 0);
      return new Response(null, init);
    }
    const framing = bodyFraming(head.headers, reader, {
      graceMs: options.closeGraceMs ?? 1000,
      keepAlive: reusable,
    });
    const response = new Response(bodyStream(framing, done, signal), init);
    directReaders.set(response, async (view) => {
      let n: number;
      try {
        n = await framing.read(view);
      } catch (error) {
        done();
        throw signal?.aborted ? signal.reason : error;
      }
      if (n === 0) done(framing.reusable);
      return n;
    });
    return response;
  } catch (error) {
    done();
    if (signal?.aborted) throw signal.reason;
    throw error;
  }
}

async function connect(
  url: URL,
  signal: AbortSignal | undefined,
  connector: Connector = defaultConnector,
): Promise<Deno.Conn> {
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const tls = url.protocol === "https:";
  const port = url.port === "" ? (tls ? 443 : 80) : Number(url.port);
  const connecting = connector({ hostname, port, tls });
  if (signal === undefined) return await connecting;
  // Deno.connect takes no signal: on abort, stop waiting and close the
  // connection if it comes after all.
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([connecting, aborted]);
  } catch (error) {
    connecting.then((conn) => conn.close(), () => {});
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function defaultConnector(
  target: { hostname: string; port: number; tls: boolean },
): Promise<Deno.Conn> {
  const { hostname, port } = target;
  return target.tls
    ? Deno.connectTls({ hostname, port, alpnProtocols: ["http/1.1"] })
    : Deno.connect({ hostname, port });
}

function requestHead(url: URL, headers: Record<string, string>, keepAlive: boolean): string {
  const lines = [
    `GET ${url.pathname}${url.search} HTTP/1.1`,
    `Host: ${url.host}`,
    "User-Agent: rocm-nightly",
    "Accept: */*",
    keepAlive ? "Connection: keep-alive" : "Connection: close",
  ];
  for (const [name, value] of Object.entries(headers)) {
    if (/[\r\n]/.test(name + value)) throw new TypeError(`Invalid header ${JSON.stringify(name)}`);
    lines.push(`${name}: ${value}`);
  }
  return `${lines.join("\r\n")}\r\n\r\n`;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/**
 * Buffered reads from the connection: the head and chunk-size lines come
 * through the buffer, body bytes go straight into the caller's view once the
 * buffer is empty.
 */
class ConnectionReader {
  #conn: Deno.Conn;
  // Grows up to MAX_HEAD_BYTES only for a head that needs it: a parallel
  // download opens thousands of connections.
  #buffer = new Uint8Array(16 * 1024);
  #start = 0;
  #end = 0;
  /** Bytes received since the last request was sent (set to 0 then). */
  received = 0;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async #receive(view: Uint8Array): Promise<number> {
    const n = await readConnection(this.#conn, view);
    this.received += n;
    return n;
  }

  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Reads into `view`, buffered bytes first; 0 at the end of the stream. */
  async read(view: Uint8Array): Promise<number> {
    if (this.buffered > 0) {
      const n = Math.min(view.length, this.buffered);
      view.set(this.#buffer.subarray(this.#start, this.#start + n));
      this.#start += n;
      return n;
    }
    return await this.#receive(view);
  }

  /**
   * The bytes up to `delimiter` (excluded; consumed), at most `limit` bytes.
   * Throws a framing error past the limit or at the end of the stream.
   */
  async readUntil(delimiter: Uint8Array, limit: number, what: string): Promise<Uint8Array> {
    for (let searched = this.#start;;) {
      const at = indexOf(this.#buffer.subarray(0, this.#end), delimiter, searched);
      if (at >= 0) {
        const found = this.#buffer.slice(this.#start, at);
        this.#start = at + delimiter.length;
        return found;
      }
      if (this.buffered >= limit) {
        throw new ResponseFramingError("malformed", `the ${what} is longer than ${limit} bytes`);
      }
      searched = Math.max(this.#start, this.#end - delimiter.length + 1);
      if (this.#start > 0) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
        searched -= this.#start;
        this.#end -= this.#start;
        this.#start = 0;
      }
      if (this.#end === this.#buffer.length) {
        const grown = new Uint8Array(Math.min(this.#buffer.length * 2, MAX_HEAD_BYTES));
        grown.set(this.#buffer.subarray(0, this.#end));
        this.#buffer = grown;
      }
      const n = await this.#receive(this.#buffer.subarray(this.#end));
      if (n === 0) {
        throw new ResponseFramingError("truncated", `the connection closed inside the ${what}`);
      }
      this.#end += n;
    }
  }

  /**
   * Whether anything follows: waits up to `graceMs` for a byte or the end
   * of the stream. A server that keeps the connection open past the grace
   * period has sent nothing more.
   */
  async hasMore(graceMs: number): Promise<boolean> {
    if (this.buffered > 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const quiet = new Promise<number>((resolve) => timer = setTimeout(() => resolve(0), graceMs));
    // An error after a complete body (a reset, or the close that follows a
    // quiet grace period) means nothing more came.
    const next = readConnection(this.#conn, new Uint8Array(1)).catch(() => 0);
    try {
      return await Promise.race([next, quiet]) > 0;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * One read; 0 at the end of the stream. A TLS peer that closes without
 * close_notify is taken as an end too (most servers do): the framing checks
 * catch a body that ends early.
 */
async function readConnection(conn: Deno.Conn, view: Uint8Array): Promise<number> {
  try {
    return (await conn.read(view)) ?? 0;
  } catch (error) {
    if (error instanceof Deno.errors.UnexpectedEof) return 0;
    throw error;
  }
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  for (
    let i = haystack.indexOf(needle[0]!, from);
    i >= 0;
    i = haystack.indexOf(needle[0]!, i + 1)
  ) {
    if (i + needle.length > haystack.length) return -1;
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

const CRLF = new Uint8Array([13, 10]);
const CRLF_CRLF = new Uint8Array([13, 10, 13, 10]);
const latin1 = new TextDecoder("latin1");

interface ResponseHead {
  status: number;
  statusText: string;
  headers: Headers;
  /** HTTP/1.1 without `Connection: close`: the server keeps the connection open. */
  keepAlive: boolean;
}

/**
 * Reads a response head. On a `reused` connection, anything before the
 * status line was sent after the previous body: bytes past its end.
 */
async function readHead(reader: ConnectionReader, reused: boolean): Promise<ResponseHead> {
  const text = latin1.decode(await reader.readUntil(CRLF_CRLF, MAX_HEAD_BYTES, "response head"));
  const [statusLine = "", ...fields] = text.split("\r\n");
  const status = /^HTTP\/1\.([01]) ([1-5]\d\d)(?: (.*))?$/.exec(statusLine);
  if (status === null && reused) {
    throw new ResponseFramingError(
      "overlong",
      `the server sent more than the previous response's Content-Length announced on this connection: ${
        JSON.stringify(statusLine.slice(0, 80))
      } came before the next status line`,
    );
  }
  if (status === null) {
    throw new ResponseFramingError(
      "malformed",
      `the response does not start with an HTTP/1.x status line: ${
        JSON.stringify(statusLine.slice(0, 80))
      }`,
    );
  }
  const headers = new Headers();
  for (const field of fields) {
    const match = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/.exec(field);
    if (match === null) {
      throw new ResponseFramingError(
        "malformed",
        `malformed header line ${JSON.stringify(field.slice(0, 80))}`,
      );
    }
    headers.append(match[1]!, match[2]!);
  }
  const keepAlive = status[1] === "1" &&
    !/(^|,)\s*close\s*(,|$)/i.test(headers.get("connection") ?? "");
  return { status: Number(status[2]), statusText: status[3] ?? "", headers, keepAlive };
}

/** Reads the body into a view: the byte count, 0 once the body is complete. */
type Framing = (view: Uint8Array) => Promise<number>;

/** Whether any byte follows the body's end (it is then an error). */
type AfterBody = () => Promise<boolean>;

/** A body's framing, and whether its connection can carry another request after its end. */
interface BodyFraming {
  read: Framing;
  reusable: boolean;
}

/**
 * The body's framing as RFC 9112 §6.3 orders it: chunked, Content-Length,
 * or until close. With `keepAlive`, the bytes after the end that count are
 * those already received; otherwise the server's close is awaited.
 */
function bodyFraming(
  headers: Headers,
  reader: ConnectionReader,
  options: { graceMs: number; keepAlive: boolean },
): BodyFraming {
  const afterBody: AfterBody = options.keepAlive
    ? () => Promise.resolve(reader.buffered > 0)
    : () => reader.hasMore(options.graceMs);
  const transferEncoding = headers.get("transfer-encoding");
  if (transferEncoding !== null) {
    if (!/(^|,)\s*chunked\s*$/i.test(transferEncoding)) return untilClose(reader);
    return { read: chunked(reader, afterBody), reusable: options.keepAlive };
  }
  const contentLength = headers.get("content-length");
  if (contentLength === null) return untilClose(reader);
  const values = new Set(contentLength.split(",").map((value) => value.trim()));
  const [value] = values;
  if (values.size !== 1 || !/^\d+$/.test(value!)) {
    throw new ResponseFramingError(
      "malformed",
      `invalid Content-Length ${JSON.stringify(contentLength)}`,
    );
  }
  const length = Number(value);
  let remaining = length;
  const read: Framing = async (view) => {
    if (remaining === 0) {
      if (await afterBody()) {
        throw new ResponseFramingError(
          "overlong",
          `the server sent more than the ${length} bytes its Content-Length announced`,
        );
      }
      return 0;
    }
    const n = await reader.read(view.subarray(0, Math.min(view.length, remaining)));
    if (n === 0) {
      throw new ResponseFramingError(
        "truncated",
        `the connection closed after ${
          length - remaining
        } of the ${length} bytes its Content-Length announced`,
      );
    }
    remaining -= n;
    return n;
  };
  return { read, reusable: options.keepAlive };
}

function untilClose(reader: ConnectionReader): BodyFraming {
  return { read: (view) => reader.read(view), reusable: false };
}

function chunked(reader: ConnectionReader, afterBody: AfterBody): Framing {
  let remaining = 0; // of the current chunk
  let finished = false;
  return async (view) => {
    if (finished) return 0;
    if (remaining === 0) {
      const line = latin1.decode(await reader.readUntil(CRLF, MAX_LINE_BYTES, "chunk size line"));
      const size = /^([0-9A-Fa-f]{1,12})[ \t]*(;.*)?$/.exec(line);
      if (size === null) {
        throw new ResponseFramingError(
          "malformed",
          `invalid chunk size line ${JSON.stringify(line.slice(0, 80))}`,
        );
      }
      remaining = parseInt(size[1]!, 16);
      if (remaining === 0) {
        // Trailer fields, if any, up to the empty line; then nothing more.
        for (
          let field = 0;
          (await reader.readUntil(CRLF, MAX_LINE_BYTES, "trailer")).length > 0;
          field++
        ) {
          if (field === 100) {
            throw new ResponseFramingError("malformed", "more than 100 trailer fields");
          }
        }
        if (await afterBody()) {
          throw new ResponseFramingError("overlong", "the server sent bytes after the last chunk");
        }
        finished = true;
        return 0;
      }
    }
    const n = await reader.read(view.subarray(0, Math.min(view.length, remaining)));
    if (n === 0) {
      throw new ResponseFramingError("truncated", "the connection closed inside a chunk");
    }
    remaining -= n;
    if (remaining === 0 && (await reader.readUntil(CRLF, 2, "chunk end")).length !== 0) {
      throw new ResponseFramingError("malformed", "a chunk is longer than its size");
    }
    return n;
  };
}

/** Reads of a response's body straight into the caller's buffer (see {@linkcode directBodyReader}). */
const directReaders = new WeakMap<Response, (view: Uint8Array) => Promise<number>>();

/**
 * For a response of {@linkcode fetchHttp1} whose body has not been touched:
 * a function that reads the next bytes of the body into `view` (at most its
 * length) and returns how many, 0 at the end, with the same framing checks
 * as the body stream and none of its per-read promise hops or buffer
 * transfers. The view keeps its buffer, so bytes read before a failure stay
 * where they are. Use it or the body stream, not both; cancel the body
 * (`response.body.cancel()`) to stop early.
 *
 * @example Usage
 * ```ts ignore
 * import { directBodyReader, fetchHttp1 } from "./http1_client.ts";
 *
 * const response = await fetchHttp1(new URL("http://127.0.0.1:8080/file"));
 * const read = directBodyReader(response)!;
 * const buffer = new Uint8Array(1 << 20);
 * for (let n = await read(buffer); n > 0; n = await read(buffer)) console.log(n);
 * ```
 *
 * @param response A response.
 * @returns The reader, or `undefined` for a response from elsewhere (fetch()).
 */
export function directBodyReader(
  response: Response,
): ((view: Uint8Array) => Promise<number>) | undefined {
  return response.bodyUsed || response.body?.locked ? undefined : directReaders.get(response);
}

/** The body as a byte stream: BYOB reads land in the caller's buffer. */
function bodyStream(
  framing: BodyFraming,
  done: (reusable?: boolean) => void,
  signal: AbortSignal | undefined,
): ReadableStream<Uint8Array> {
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: READ_SIZE,
    async pull(controller): Promise<void> {
      const request = controller.byobRequest!;
      const { buffer, byteOffset, byteLength } = request.view!;
      let n: number;
      try {
        n = await framing.read(new Uint8Array(buffer, byteOffset, byteLength));
      } catch (error) {
        done();
        throw signal?.aborted ? signal.reason : error;
      }
      if (n > 0) {
        request.respond(n);
        return;
      }
      done(framing.reusable);
      controller.close();
      request.respond(0);
    },
    cancel(): void {
      done();
    },
  });
}
