// fetchHttp1 against raw loopback servers that write exact bytes: every
// framing (Content-Length, chunked, until close), the faults each can have,
// interim responses, aborts, and TLS with a certificate made by openssl.
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConnectionPool, fetchHttp1, ResponseFramingError } from "../../lib/fetch/http1_client.ts";
import { repoRoot, requireTools, run, withTempDir } from "../_tools.ts";

const encoder = new TextEncoder();

/** How a raw server answers one connection, after reading the request head. */
type Answer = (conn: Deno.Conn) => Promise<void>;

interface RawServer extends AsyncDisposable {
  url(path: string): URL;
  /** The request heads received, as text. */
  heads: string[];
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

async function readRequestHead(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(16 * 1024);
  let filled = 0;
  for (let reads = 0; reads < 100; reads++) {
    const n = await conn.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
    const text = new TextDecoder().decode(buffer.subarray(0, filled));
    if (text.includes("\r\n\r\n")) return text;
  }
  throw new Error("no request head");
}

/** Answers each connection with `answer`, then closes it unless `answer` kept it. */
function rawServer(answer: Answer, listener?: Deno.Listener): RawServer {
  const server = listener ?? Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = server.addr as Deno.NetAddr;
  const heads: string[] = [];
  const handlers = new Set<Promise<void>>();
  const accepting = (async () => {
    for await (const conn of server) {
      const handler = (async () => {
        heads.push(await readRequestHead(conn));
        await answer(conn);
      })().catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch { /* closed by the answer */ }
      });
      handlers.add(handler);
    }
  })().catch(() => {});
  const scheme = listener === undefined ? "http" : "https";
  return {
    url: (path) => new URL(`${scheme}://localhost:${port}${path}`),
    heads,
    async [Symbol.asyncDispose](): Promise<void> {
      server.close();
      await accepting;
      await Promise.all(handlers);
    },
  };
}

/** An answer that writes `text` (latin1) in one go, or in pieces with pauses. */
function writes(...pieces: (string | Uint8Array)[]): Answer {
  return async (conn) => {
    for (const piece of pieces) {
      await writeAll(conn, typeof piece === "string" ? encoder.encode(piece) : piece);
      if (pieces.length > 1) await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
}

async function bodyOf(url: URL, closeGraceMs?: number): Promise<string> {
  const response = await fetchHttp1(url, closeGraceMs === undefined ? {} : { closeGraceMs });
  return await response.text();
}

async function framingError(url: URL): Promise<ResponseFramingError> {
  try {
    await bodyOf(url);
  } catch (error) {
    assert.ok(error instanceof ResponseFramingError, String(error));
    return error;
  }
  assert.fail("the response was accepted");
}

Deno.test("fetchHttp1() reads each framing and sends a Connection: close request", async (t) => {
  await t.step("Content-Length", async () => {
    await using server = rawServer(
      writes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello"),
    );
    const response = await fetchHttp1(server.url("/dir/file.tar.gz?x=1"), {
      headers: { range: "bytes=0-" },
    });
    assert.equal(response.status, 200);
    assert.equal(response.statusText, "OK");
    assert.equal(response.headers.get("x-a"), "1");
    assert.equal(await response.text(), "hello");
    const head = server.heads[0]!;
    assert.match(head, /^GET \/dir\/file\.tar\.gz\?x=1 HTTP\/1\.1\r\n/);
    assert.match(head, /\r\nHost: localhost:\d+\r\n/);
    assert.match(head, /\r\nConnection: close\r\n/);
    assert.match(head, /\r\nrange: bytes=0-\r\n/);
  });

  await t.step("chunked, with extensions and trailers, split across writes", async () => {
    await using server = rawServer(writes(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel",
      "lo\r\n",
      "6\r\n world\r\n0\r\nX-Trailer: t\r\n",
      "\r\n",
    ));
    assert.equal(await bodyOf(server.url("/")), "hello world");
  });

  await t.step("until the connection closes", async () => {
    await using server = rawServer(writes("HTTP/1.0 200 OK\r\n\r\nno length", " at all"));
    assert.equal(await bodyOf(server.url("/")), "no length at all");
  });

  await t.step("interim responses before the final one", async () => {
    await using server = rawServer(
      writes(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      ),
    );
    assert.equal(await bodyOf(server.url("/")), "ok");
  });

  await t.step("no body for 204 and 304", async () => {
    await using server = rawServer(
      writes("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"),
    );
    const response = await fetchHttp1(server.url("/"));
    assert.equal(response.status, 304);
    assert.equal(response.body, null);
  });

  await t.step("a server that keeps the connection open after the body", async () => {
    await using server = rawServer(async (conn) => {
      await writes("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody")(conn);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    });
    const start = performance.now();
    assert.equal(await bodyOf(server.url("/"), 100), "body");
    assert.ok(performance.now() - start < 1500, "waited the grace period, not for the close");
  });
});

Deno.test("fetchHttp1() reports every framing fault", async (t) => {
  const cases: [string, Answer, ResponseFramingError["kind"], RegExp][] = [
    [
      "bytes past Content-Length",
      writes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and more"),
      "overlong",
      /more than the 5 bytes its Content-Length announced/,
    ],
    [
      "bytes past Content-Length, sent later",
      writes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "!"),
      "overlong",
      /more than the 5 bytes/,
    ],
    [
      "a body shorter than Content-Length",
      writes("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello"),
      "truncated",
      /closed after 5 of the 50 bytes/,
    ],
    [
      "bytes after the last chunk",
      writes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nextra"),
      "overlong",
      /bytes after the last chunk/,
    ],
    [
      "a chunk longer than its size",
      writes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokay\r\n0\r\n\r\n"),
      "malformed",
      /longer than/,
    ],
    [
      "an invalid chunk size",
      writes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n"),
      "malformed",
      /invalid chunk size line "zz"/,
    ],
    [
      "a connection closed inside a chunk",
      writes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort"),
      "truncated",
      /inside a chunk/,
    ],
    [
      "conflicting Content-Length values",
      writes("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello"),
      "malformed",
      /invalid Content-Length "5, 6"/,
    ],
    ["not HTTP", writes("SSH-2.0-OpenSSH_9.2\r\n\r\n"), "malformed", /HTTP\/1\.x status line/],
    [
      "a malformed header",
      writes("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"),
      "malformed",
      /malformed header line "no colon here"/,
    ],
    [
      "a head cut short",
      writes("HTTP/1.1 200 OK\r\nContent-"),
      "truncated",
      /inside the response head/,
    ],
  ];
  for (const [name, answer, kind, pattern] of cases) {
    await t.step(name, async () => {
      await using server = rawServer(answer);
      const error = await framingError(server.url("/"));
      assert.equal(error.kind, kind);
      assert.match(error.message, pattern);
    });
  }
});

Deno.test("fetchHttp1() rejects with the signal's reason on abort, mid-body too", async () => {
  await using server = rawServer(async (conn) => {
    await writes("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstart")(conn);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  });
  const controller = new AbortController();
  const response = await fetchHttp1(server.url("/"), { signal: controller.signal });
  const reader = response.body!.getReader();
  assert.equal(new TextDecoder().decode((await reader.read()).value), "start");
  const reason = new Error("stop");
  setTimeout(() => controller.abort(reason), 20);
  await assert.rejects(reader.read(), (error) => error === reason);
  controller.abort();
  const aborted = new AbortController();
  aborted.abort(reason);
  await assert.rejects(
    fetchHttp1(server.url("/"), { signal: aborted.signal }),
    (e) => e === reason,
  );
});

/**
 * Answers up to `count` requests on each connection with "hello" and
 * `Connection: keep-alive`; `after` is written after each body (stray bytes),
 * at once or after a pause. Then the server closes without a word.
 */
function keptAlive(
  count: number,
  after?: { bytes: string; pauseMs: number },
  heads: string[] = [],
): Answer {
  return async (conn) => {
    for (let answered = 0; answered < count; answered++) {
      if (answered > 0) heads.push(await readRequestHead(conn));
      const head = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello";
      if (after?.pauseMs === 0) {
        await writes(head + after.bytes)(conn);
        continue;
      }
      await writes(head)(conn);
      if (after === undefined) continue;
      await new Promise((resolve) => setTimeout(resolve, after.pauseMs));
      await writes(after.bytes)(conn);
    }
  };
}

Deno.test("fetchHttp1() with a pool keeps connections alive, and checks every byte between responses", async (t) => {
  const get = async (server: RawServer, pool: ConnectionPool): Promise<string> =>
    await (await fetchHttp1(server.url("/"), { pool })).text();

  await t.step("three requests, one connection, each asking for keep-alive", async () => {
    const later: string[] = [];
    await using server = rawServer(keptAlive(3, undefined, later));
    using pool = new ConnectionPool();
    for (let i = 0; i < 3; i++) assert.equal(await get(server, pool), "hello");
    assert.equal(pool.opened, 1);
    const heads = [...server.heads, ...later];
    assert.equal(heads.length, 3);
    for (const head of heads) assert.match(head, /\r\nConnection: keep-alive\r\n/);
  });

  await t.step("a connection the server closed while idle is replaced, once", async () => {
    await using server = rawServer(keptAlive(1));
    using pool = new ConnectionPool();
    assert.equal(await get(server, pool), "hello");
    await new Promise((resolve) => setTimeout(resolve, 20)); // the server has closed it
    assert.equal(await get(server, pool), "hello");
    assert.equal(pool.opened, 2);
  });

  await t.step("stray bytes received with the body fail it", async () => {
    await using server = rawServer(keptAlive(1, { bytes: "!!", pauseMs: 0 }));
    using pool = new ConnectionPool();
    await assert.rejects(
      get(server, pool),
      (error) => error instanceof ResponseFramingError && error.kind === "overlong",
    );
  });

  await t.step("stray bytes sent later fail the next response on that connection", async () => {
    await using server = rawServer(keptAlive(2, { bytes: "!!", pauseMs: 20 }));
    using pool = new ConnectionPool();
    assert.equal(await get(server, pool), "hello");
    await new Promise((resolve) => setTimeout(resolve, 60));
    await assert.rejects(
      get(server, pool),
      (error) =>
        error instanceof ResponseFramingError && error.kind === "overlong" &&
        /"!!HTTP\/1\.1 200 OK" came before the next status line/.test(error.message),
    );
    assert.equal(pool.opened, 1, "not taken for a closed connection and retried");
  });

  await t.step("drain() finds stray bytes on a connection left idle", async () => {
    await using server = rawServer(keptAlive(1, { bytes: "!!", pauseMs: 20 }));
    const pool = new ConnectionPool();
    assert.equal(await get(server, pool), "hello");
    await assert.rejects(
      pool.drain(500),
      (error) => error instanceof ResponseFramingError && error.kind === "overlong",
    );
  });

  await t.step(
    "drain() of quiet connections waits its grace period once, not per connection",
    async () => {
      // Each server waits for a second request, keeping its connection open.
      await using first = rawServer(keptAlive(2));
      await using second = rawServer(keptAlive(2));
      await using third = rawServer(keptAlive(2));
      const pool = new ConnectionPool();
      for (const server of [first, second, third]) assert.equal(await get(server, pool), "hello");
      const started = performance.now();
      await pool.drain(250);
      const waited = performance.now() - started;
      // One grace period, not three in a row (750 ms); a busy machine delays
      // timers, so the bound leaves it most of a period.
      assert.ok(waited >= 240 && waited < 700, `drained in ${waited} ms`);
      assert.equal(pool.opened, 3);
    },
  );
});

Deno.test("fetchHttp1() refuses header injection and other schemes", async () => {
  await assert.rejects(
    fetchHttp1(new URL("ftp://127.0.0.1/x")),
    /only http: and https: are supported/,
  );
  await using server = rawServer(writes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  await assert.rejects(
    fetchHttp1(server.url("/"), { headers: { "x-a": "1\r\nInjected: yes" } }),
    TypeError,
  );
});

const openssl = await requireTools(
  "the TLS test of fetchHttp1 (a certificate to trust)",
  "openssl",
);

Deno.test({
  name: "fetchHttp1() over TLS: a good body, and bytes past Content-Length",
  ignore: !openssl,
  fn: async () => {
    await withTempDir(async (dir) => {
      // A CA, and a certificate for localhost that it signs.
      const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
      const path = (name: string) => join(dir, name);
      await Deno.writeTextFile(
        path("leaf.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
      );
      const commands = [
        ["req", "-x509", ...ec, "-days", "1", "-subj", "/CN=rocm-nightly test CA"]
          .concat(["-keyout", path("ca.key"), "-out", path("ca.pem")]),
        [
          "req",
          ...ec,
          "-subj",
          "/CN=localhost",
          "-keyout",
          path("key.pem"),
          "-out",
          path("leaf.csr"),
        ],
        ["x509", "-req", "-in", path("leaf.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key")]
          .concat(["-CAcreateserial", "-days", "1", "-extfile", path("leaf.ext")])
          .concat(["-out", path("cert.pem")]),
      ];
      for (const args of commands) {
        const made = await run("openssl", args);
        assert.equal(made.code, 0, made.stderr);
      }
      const listener = Deno.listenTls({
        hostname: "127.0.0.1",
        port: 0,
        cert: await Deno.readTextFile(join(dir, "cert.pem")),
        key: await Deno.readTextFile(join(dir, "key.pem")),
      });
      let overlong = false;
      await using server = rawServer(async (conn) => {
        const body = overlong ? "hello!!" : "hello";
        overlong = true;
        await writes(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n${body}`)(conn);
      }, listener);
      // A separate process trusts the certificate as a user would: --cert.
      const script = join(dir, "get.ts");
      const client = new URL("lib/fetch/http1_client.ts", `file://${repoRoot}/`).href;
      await Deno.writeTextFile(
        script,
        `import { fetchHttp1 } from ${JSON.stringify(client)};
try {
  console.log(await (await fetchHttp1(new URL(Deno.args[0]!))).text());
} catch (error) {
  console.log(String(error));
}
`,
      );
      const get = () =>
        run(Deno.execPath(), [
          ...["run", "--no-lock", "--allow-net", "--allow-read", "--cert", path("ca.pem")],
          ...[script, server.url("/").href],
        ]);
      const good = await get();
      assert.equal(good.stdout, "hello\n", good.stderr);
      const bad = await get();
      assert.match(
        bad.stdout,
        /ResponseFramingError: the server sent more than the 5 bytes/,
        bad.stderr,
      );
    });
  },
});
