/**
 * A loopback HTTP/1.1 file server for tests, with fault modes.
 *
 * It speaks HTTP over raw TCP (`Deno.listen`) rather than `Deno.serve` so
 * that it can misbehave in ways a correct server library refuses to: lie
 * about Content-Length, cut a body short, answer a Range request with the
 * wrong range. Every response closes its connection, so each request is
 * independent and a fault never leaks into the next request, unless
 * `keepAlive` is set: then a request that asks for keep-alive gets it
 * (after a fault too, when the framing allows: bytes after a body then reach
 * the next response on that connection).
 *
 * @example Usage
 * ```ts
 * import { startFileServer } from "./_server.ts";
 *
 * await using server = startFileServer({
 *   routes: {
 *     "/ok.bin": { body: new Uint8Array(1000) },
 *     "/flaky.bin": { body: new Uint8Array(1000), resetAfter: 100, faultTimes: 1 },
 *     "/gone": { status: 404 },
 *   },
 * });
 * const response = await fetch(server.url("/ok.bin"));
 * (await response.arrayBuffer()).byteLength; // 1000
 * server.requests.length; // 1
 * ```
 *
 * Run as a program it serves a folder: `deno run -A tests/_server.ts DIR`
 * prints the port on stdout and serves until killed (the benchmarks use this
 * to keep the server out of the measured process); `--bytes-per-second`,
 * `--rtt-ms` and `--close-every-connection` set the options below.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** How one path answers. Fault fields apply to the first `faultTimes` requests of the path. */
export interface Route {
  /** The body: bytes, or the path of a file streamed from disk (for large bodies). */
  body?: Uint8Array | { file: string };
  /** The response status when there is no fault. @default {200, or 404 without a body} */
  status?: number;
  /** The Content-Type header. @default {"application/octet-stream"} */
  contentType?: string;
  /** Extra response headers for the body (e.g. a Content-Encoding). @default {{}} */
  headers?: Record<string, string>;
  /** Whether `Range: bytes=N-` requests get a 206 (and `Accept-Ranges: bytes` is sent). @default {true} */
  range?: boolean;
  /** A redirect: the status is 302 (or `status` when it is 3xx) with this Location. */
  redirect?: string;
  /** Fault: close the connection after this many body bytes (the client sees a truncated body). */
  resetAfter?: number;
  /** Fault: send this many body bytes, then stall without closing (for idle timeouts). */
  stallAfter?: number;
  /** Fault: answer with status 500 instead of the body. */
  serverError?: boolean;
  /**
   * Fault: send a Content-Length that is wrong: `"long"` claims 100 bytes
   * more than the body, `"short"` 100 bytes fewer (the rest follows anyway).
   */
  wrongLength?: "short" | "long";
  /** Send no Content-Length: the body ends when the connection closes. @default {false} */
  noLength?: boolean;
  /** Fault: answer a Range request with 206 but a Content-Range starting at 0 and the whole body. */
  badRange?: boolean;
  /** How many requests of this path get the faults above. @default {Infinity} */
  faultTimes?: number;
  /** How many requests of this path are served without faults before the faulty ones. @default {0} */
  faultAfter?: number;
  /**
   * The file changes: requests after the first `after` get this body and
   * these headers instead (e.g. a new ETag).
   */
  changeAfter?: { after: number; body: Uint8Array; headers?: Record<string, string> };
  /** Limits each connection to this many body bytes per second. @default {unlimited} */
  bytesPerSecond?: number;
  /** Fault: send this many bytes more than the Content-Length announced, after the body. */
  trailingBytes?: number;
  /** Delay in milliseconds between 64 KiB chunks of the body (a slow server). @default {0} */
  chunkDelayMs?: number;
}

/** Options for {@linkcode startFileServer}. */
export interface FileServerOptions {
  /** Paths (with leading `/`, without the query) and how they answer. */
  routes?: Record<string, Route>;
  /**
   * A folder to serve for paths not in `routes`, with a Content-Type by
   * extension (`.ts` → application/typescript, `.json` → application/json).
   */
  root?: string;
  /** Limits each connection to the folder's files to this many bytes per second. */
  bytesPerSecond?: number;
  /**
   * Keeps a connection open after a response when the request asked for it
   * (`Connection: keep-alive`) and the response's framing allows it.
   *
   * @default {false}
   */
  keepAlive?: boolean;
  /**
   * With `keepAlive`: closes a connection after this many responses
   * without a word, as a server does with an idle connection it times out.
   *
   * @default {Infinity}
   */
  keepAliveRequests?: number;
  /**
   * A network's round-trip time, in milliseconds, acted out: a new
   * connection waits 2 RTT before its first request is read (the TCP and
   * TLS 1.3 handshakes), each response 1 RTT before its head (the request
   * travelling, the answer's first byte travelling back), and a throttled
   * connection ramps up as TCP slow start does: 10 segments of 1448 bytes
   * in the first RTT, twice as many in each next one, up to the rate. A
   * kept-alive connection keeps its pace between responses.
   *
   * @default {0}
   */
  rttMs?: number;
}

/** A request as the server saw it. */
export interface LoggedRequest {
  method: string;
  path: string;
  /** Request headers, names lower-cased. */
  headers: Record<string, string>;
  /** Which connection it came on: 1 for the first accepted, and so on. */
  connection: number;
}

/** A running server. */
export interface FileServer extends AsyncDisposable {
  /** The port on 127.0.0.1. */
  port: number;
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  /** Every request received, in order. */
  requests: LoggedRequest[];
  /** The most connections that were open at once. */
  readonly peakConnections: number;
  /** How many connections were accepted. */
  readonly connections: number;
  /** The absolute URL of `path` on this server. */
  url(path: string): string;
  /** Stops listening, drops open connections and waits for every handler. */
  close(): Promise<void>;
}

const CHUNK = 64 * 1024;
const encoder = new TextEncoder();
const CONTENT_TYPES: Record<string, string> = {
  ".ts": "application/typescript",
  ".json": "application/json",
  ".md": "text/markdown",
  ".nix": "text/plain",
};

/**
 * Starts a server on 127.0.0.1, port chosen by the system.
 *
 * @param options The routes and an optional folder to serve.
 * @returns The running server; `await using` or `close()` stops it.
 */
export function startFileServer(options: FileServerOptions = {}): FileServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  const origin = `http://127.0.0.1:${port}`;
  const requests: LoggedRequest[] = [];
  const counts = new Map<string, number>();
  const open = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  let peak = 0;
  let accepted = 0;
  const { promise: closed, resolve: markClosed } = Promise.withResolvers<void>();

  const accepting = (async () => {
    for await (const conn of listener) {
      open.add(conn);
      peak = Math.max(peak, open.size);
      const handler = handle(conn, ++accepted).catch(() => {}).finally(() => {
        open.delete(conn);
        handlers.delete(handler);
        try {
          conn.close();
        } catch { /* already closed */ }
      });
      handlers.add(handler);
    }
  })().catch(() => {});

  async function handle(conn: Deno.Conn, connection: number): Promise<void> {
    const pace: Pace = { rttMs: options.rttMs ?? 0, sent: 0 };
    if (pace.rttMs > 0) await delay(2 * pace.rttMs, closed);
    for (let answered = 0; answered < (options.keepAliveRequests ?? Infinity); answered++) {
      const request = await readRequest(conn, connection);
      if (request === undefined) return;
      // HTTP/1.1 connections persist unless the request says otherwise.
      const keepAlive = options.keepAlive === true &&
        !/(^|,)\s*close\s*(,|$)/i.test(request.headers["connection"] ?? "");
      if (!await answer(conn, request, keepAlive, pace)) return;
    }
  }

  /** Answers one request; whether the connection stays open for the next. */
  async function answer(
    conn: Deno.Conn,
    request: LoggedRequest,
    keepAlive: boolean,
    pace: Pace,
  ): Promise<boolean> {
    requests.push(request);
    const seen = (counts.get(request.path) ?? 0) + 1;
    counts.set(request.path, seen);
    let route = options.routes?.[request.path];
    if (route === undefined && options.root !== undefined) {
      route = await routeFromRoot(options.root, request.path);
      if (route !== undefined && options.bytesPerSecond !== undefined) {
        route.bytesPerSecond = options.bytesPerSecond;
      }
    }
    if (route === undefined) route = { status: 404 };
    if (route.changeAfter !== undefined && seen > route.changeAfter.after) {
      const { body, headers } = route.changeAfter;
      route = { ...route, body, headers: { ...route.headers, ...headers } };
    }
    const skipped = route.faultAfter ?? 0;
    const faulty = seen > skipped && seen <= skipped + (route.faultTimes ?? Infinity);
    return await respond(conn, request, route, faulty, closed, keepAlive, pace);
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      markClosed();
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
      await accepting;
      await Promise.all([...handlers]);
    })();
    return closing;
  };

  return {
    port,
    origin,
    requests,
    get peakConnections(): number {
      return peak;
    },
    get connections(): number {
      return accepted;
    },
    url: (path: string) => `${origin}${path}`,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Reads one request's head from `conn` (at most 16 KiB), or `undefined` when it closes first. */
export async function readRequest(
  conn: Deno.Conn,
  connection = 1,
): Promise<LoggedRequest | undefined> {
  const buffer = new Uint8Array(16 * 1024);
  let length = 0;
  for (;;) {
    const n = await conn.read(buffer.subarray(length)).catch(() => null);
    if (n === null) return undefined;
    length += n;
    const text = new TextDecoder().decode(buffer.subarray(0, length));
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const [requestLine = "", ...lines] = text.slice(0, end).split("\r\n");
      const [method = "GET", target = "/"] = requestLine.split(" ");
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(":");
        if (colon > 0) {
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
      }
      return { method, path: target.split("?")[0] ?? "/", headers, connection };
    }
    if (length === buffer.length) return undefined;
  }
}

async function routeFromRoot(root: string, path: string): Promise<Route | undefined> {
  const relative = decodeURIComponent(path).replace(/^\/+/, "");
  if (relative.split("/").includes("..")) return undefined;
  const file = `${root.replace(/\/$/, "")}/${relative}`;
  try {
    if (!(await Deno.stat(file)).isFile) return undefined;
  } catch {
    return undefined;
  }
  const extension = /\.[^./]+$/.exec(relative)?.[0] ?? "";
  return {
    body: { file },
    contentType: CONTENT_TYPES[extension] ?? "application/octet-stream",
  };
}

async function respond(
  conn: Deno.Conn,
  request: LoggedRequest,
  route: Route,
  faulty: boolean,
  closed: Promise<void>,
  keepAlive: boolean,
  pace: Pace,
): Promise<boolean> {
  if (pace.rttMs > 0) await delay(pace.rttMs, closed);
  // Faults that end the body by closing keep nothing alive.
  const keep = keepAlive && !route.noLength &&
    !(faulty && (route.resetAfter ?? route.stallAfter ?? route.wrongLength) !== undefined);
  const write = async (bytes: Uint8Array): Promise<void> => {
    let offset = 0;
    while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
  };
  const head = async (status: number, headers: Record<string, string | number>): Promise<void> => {
    const lines = [
      `HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}`,
      keep ? "Connection: keep-alive" : "Connection: close",
    ];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    await write(encoder.encode(lines.join("\r\n") + "\r\n\r\n"));
  };

  if (route.redirect !== undefined) {
    const status = route.status !== undefined && route.status >= 300 && route.status < 400
      ? route.status
      : 302;
    await head(status, { Location: route.redirect, "Content-Length": 0 });
    return keep;
  }
  if (faulty && route.serverError) {
    const body = encoder.encode("injected failure\n");
    await head(500, { "Content-Type": "text/plain", "Content-Length": body.length });
    await write(body);
    return keep;
  }
  if (route.body === undefined || (route.status !== undefined && route.status !== 200)) {
    const status = route.status ?? 404;
    const body = encoder.encode(`${REASONS[status] ?? "Status"}\n`);
    await head(status, { "Content-Type": "text/plain", "Content-Length": body.length });
    await write(body);
    return keep;
  }

  const total = route.body instanceof Uint8Array
    ? route.body.length
    : (await Deno.stat(route.body.file)).size;
  const rangeSupported = route.range ?? true;
  let start = 0;
  let status = 200;
  const headers: Record<string, string | number> = {
    "Content-Type": route.contentType ?? "application/octet-stream",
    ...route.headers,
  };
  if (rangeSupported) headers["Accept-Ranges"] = "bytes";
  const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers["range"] ?? "");
  let end = total; // exclusive
  if (rangeSupported && range !== null) {
    start = Number(range[1]);
    if (start >= total) {
      await head(416, { "Content-Range": `bytes */${total}`, "Content-Length": 0 });
      return keep;
    }
    if (range[2] !== "") end = Math.min(total, Number(range[2]) + 1);
    status = 206;
    if (faulty && route.badRange) start = 0;
    headers["Content-Range"] = `bytes ${start}-${end - 1}/${total}`;
  }
  let length = end - start;
  let declared = length;
  if (faulty && route.wrongLength === "long") declared = length + 100;
  if (faulty && route.wrongLength === "short") declared = Math.max(0, length - 100);
  if (!route.noLength) headers["Content-Length"] = declared;
  await head(status, headers);
  if (request.method === "HEAD") return keep;

  let limit = length;
  if (faulty && route.resetAfter !== undefined) limit = Math.min(limit, route.resetAfter);
  if (faulty && route.stallAfter !== undefined) limit = Math.min(limit, route.stallAfter);
  length = limit;
  // The connection's pace resumes where its last response left it: idle
  // time between responses earns no burst.
  const began = performance.now() - sendingTime(pace.sent, route.bytesPerSecond, pace.rttMs);
  // Throttled: pieces of 1/128 s of the rate (64 KiB to 1 MiB), each sent no
  // sooner than the rate allows. At benchmark rates (64 MiB/s) 64 KiB pieces
  // cost the server half a core in timers and writes, which the measured
  // client then lacks on a 2-core machine.
  const pieceSize = Math.min(
    16 * CHUNK,
    Math.max(CHUNK, Math.floor((route.bytesPerSecond ?? 0) / 128)),
  );
  for await (const chunk of bodyChunks(route.body, start, length)) {
    if (!route.bytesPerSecond) await write(chunk);
    for (let at = 0; route.bytesPerSecond && at < chunk.length; at += pieceSize) {
      const piece = chunk.subarray(at, at + pieceSize);
      const wait = began + sendingTime(pace.sent + piece.length, route.bytesPerSecond, pace.rttMs) -
        performance.now();
      if (wait > 1) await delay(wait, closed);
      await write(piece);
      pace.sent += piece.length;
    }
    if (route.chunkDelayMs) await delay(route.chunkDelayMs, closed);
  }
  if (faulty && route.trailingBytes !== undefined) await write(new Uint8Array(route.trailingBytes));
  if (faulty && route.stallAfter !== undefined) await closed;
  return keep;
}

/** A connection's pace: its round-trip time and the body bytes it has sent. */
interface Pace {
  rttMs: number;
  sent: number;
}

/** TCP's initial window (RFC 6928): 10 segments of 1448 bytes. */
const INITIAL_WINDOW = 10 * 1448;

/**
 * The milliseconds a connection takes to send its first `bytes` at
 * `bytesPerSecond`, after a slow start when `rttMs` is set: a window of
 * {@linkcode INITIAL_WINDOW} bytes per RTT, doubled each RTT until it
 * carries the rate.
 */
function sendingTime(bytes: number, bytesPerSecond: number | undefined, rttMs: number): number {
  if (!bytesPerSecond) return 0;
  let time = 0;
  let sent = 0;
  for (let window = INITIAL_WINDOW; rttMs > 0 && window < (bytesPerSecond * rttMs) / 1000;) {
    if (bytes <= sent + window) return time + ((bytes - sent) / window) * rttMs;
    sent += window;
    time += rttMs;
    window *= 2;
  }
  return time + ((bytes - sent) / bytesPerSecond) * 1000;
}

/** 64 KiB, or 1 MiB from a file: fewer syscalls for the large bodies of benchmarks. */
async function* bodyChunks(
  body: Uint8Array | { file: string },
  start: number,
  length: number,
): AsyncGenerator<Uint8Array> {
  if (body instanceof Uint8Array) {
    for (let offset = start; offset < start + length; offset += CHUNK) {
      yield body.subarray(offset, Math.min(offset + CHUNK, start + length));
    }
    return;
  }
  using file = await Deno.open(body.file);
  await file.seek(start, Deno.SeekMode.Start);
  const buffer = new Uint8Array(16 * CHUNK);
  let left = length;
  while (left > 0) {
    const n = await file.read(buffer.subarray(0, Math.min(buffer.length, left)));
    if (n === null) return;
    left -= n;
    yield buffer.subarray(0, n);
  }
}

function delay(ms: number, closed: Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    new Promise<void>((resolve) => timer = setTimeout(resolve, ms)),
    closed,
  ]).finally(() => clearTimeout(timer));
}

const REASONS: Record<number, string> = {
  200: "OK",
  206: "Partial Content",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  403: "Forbidden",
  404: "Not Found",
  416: "Range Not Satisfiable",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: {
      "bytes-per-second": { type: "string" },
      "rtt-ms": { type: "string" },
      "close-every-connection": { type: "boolean" },
    },
    allowPositionals: true,
  });
  const numbers = [values["bytes-per-second"], values["rtt-ms"]];
  if (positionals.length !== 1 || numbers.some((n) => n !== undefined && !/^\d+$/.test(n))) {
    console.error(
      "usage: deno run -A tests/_server.ts [--bytes-per-second N] [--rtt-ms N] [--close-every-connection] DIR",
    );
    Deno.exit(2);
  }
  // As servers on the Internet do, connections are kept alive on request,
  // unless told otherwise.
  const server = startFileServer({
    root: positionals[0]!,
    keepAlive: !values["close-every-connection"],
    ...(numbers[0] === undefined ? {} : { bytesPerSecond: Number(numbers[0]) }),
    ...(numbers[1] === undefined ? {} : { rttMs: Number(numbers[1]) }),
  });
  console.log(server.port);
}
