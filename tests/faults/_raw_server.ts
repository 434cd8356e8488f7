/**
 * A loopback server that answers each request with exactly the bytes a case
 * gives — any status line, any headers, any body, true or not — and can
 * stall mid-answer until it is closed, so a signal lands at a known stage.
 *
 * @module
 */

import { type LoggedRequest, readRequest } from "../_server.ts";

/** What one request gets. */
export interface RawReply {
  /** The status line and headers, without the final blank line ("HTTP/1.1 200 OK\r\nX: y"). */
  head: string;
  /** The body bytes sent after the head. */
  body?: Uint8Array;
  /** Keep the connection open after sending, until the server closes (a stall). */
  stall?: boolean;
}

/** A request as seen. */
export type RawRequest = LoggedRequest;

/** A running raw server. */
export interface RawServer extends AsyncDisposable {
  origin: string;
  requests: RawRequest[];
  /** Resolves once a request for `path` has been answered up to its stall. */
  stalled(path: string): Promise<void>;
  close(): Promise<void>;
}

const encoder = new TextEncoder();

/** Starts the server on 127.0.0.1; `reply` decides each answer (by path). */
export function startRawServer(reply: (request: RawRequest) => RawReply): RawServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: RawRequest[] = [];
  const open = new Set<Deno.Conn>();
  const waiting = new Map<string, PromiseWithResolvers<void>>();
  const { promise: closed, resolve: markClosed } = Promise.withResolvers<void>();
  const stalledAt = (path: string): PromiseWithResolvers<void> => {
    let entry = waiting.get(path);
    if (entry === undefined) waiting.set(path, entry = Promise.withResolvers<void>());
    return entry;
  };
  const handlers = new Set<Promise<void>>();
  const accepting = (async () => {
    for await (const conn of listener) {
      open.add(conn);
      const handler = handle(conn).catch(() => {}).finally(() => {
        open.delete(conn);
        handlers.delete(handler);
        try {
          conn.close();
        } catch { /* closed */ }
      });
      handlers.add(handler);
    }
  })().catch(() => {});

  async function handle(conn: Deno.Conn): Promise<void> {
    const request = await readRequest(conn);
    if (request === undefined) return;
    requests.push(request);
    const answer = reply(request);
    await writeAll(conn, encoder.encode(`${answer.head}\r\n\r\n`));
    if (answer.body !== undefined) await writeAll(conn, answer.body);
    if (answer.stall) {
      stalledAt(request.path).resolve();
      await closed;
    }
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    closing ??= (async () => {
      markClosed();
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await accepting;
      await Promise.all([...handlers]);
    })();
  return {
    origin: `http://127.0.0.1:${listener.addr.port}`,
    requests,
    stalled: (path) => stalledAt(path).promise,
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += await conn.write(bytes.subarray(offset));
}
