import assert from "node:assert/strict";
import { join } from "node:path";
import { concatBytes } from "../../lib/fs/bytes.ts";
import {
  download,
  type DownloadOptions,
  type DownloadWriter,
  redirectTarget,
} from "../../lib/fetch/download.ts";
import { formatHash } from "../../lib/hash/hash.ts";
import {
  type FileServer,
  type FileServerOptions,
  type Route,
  startFileServer,
} from "../_server.ts";
import { randomBytes, repoRoot, run, sha256Sri } from "../_tools.ts";

const RANGE = 64 * 1024;

/** A writer that keeps the bytes in memory, as a file would hold them. */
function memoryWriter(): DownloadWriter & { bytes: () => Uint8Array; truncations: number } {
  const chunks: Uint8Array[] = [];
  const writer = {
    truncations: 0,
    write: (chunk: Uint8Array) => {
      chunks.push(chunk.slice());
      return Promise.resolve();
    },
    truncate: () => {
      chunks.length = 0;
      writer.truncations++;
      return Promise.resolve();
    },
    bytes: () => concatBytes(chunks),
  };
  return writer;
}

type Fetched = { server: FileServer; result: Awaited<ReturnType<typeof download>> | Error };

/** Serves `route` at /file.bin and downloads it over 4 connections in 64 KiB ranges. */
async function fetchRouteFrom(
  serverOptions: FileServerOptions,
  route: Route,
  options: DownloadOptions = {},
): Promise<Fetched> {
  const server = startFileServer({ ...serverOptions, routes: { "/file.bin": route } });
  try {
    const result = await download(server.url("/file.bin"), {
      connections: 4,
      rangeSize: RANGE,
      retryDelayMs: 10,
      ...options,
    }).catch((error: Error) => error);
    return { server, result };
  } finally {
    await server.close();
  }
}

/**
 * Registers the test twice: against a server that closes every connection,
 * and against one that keeps them alive (the ranges then share them).
 */
function forEachServer(
  name: string,
  fn: (fetchRoute: (route: Route, options?: DownloadOptions) => Promise<Fetched>) => Promise<void>,
): void {
  for (const keepAlive of [false, true]) {
    Deno.test(
      `${name} (${keepAlive ? "kept-alive connections" : "a connection per request"})`,
      () => fn((route, options) => fetchRouteFrom({ keepAlive }, route, options)),
    );
  }
}

function ok<T>(result: T | Error): T {
  if (result instanceof Error) throw result;
  return result;
}

const BODY = randomBytes(20 * RANGE + 123);
const BODY_SRI = await sha256Sri(BODY);
const ranges = (server: FileServer): (string | undefined)[] =>
  server.requests.map((r) => r.headers["range"]);

forEachServer(
  "download() fetches ranges over several connections, resuming a reset range on its own",
  async (fetchRoute) => {
    const writer = memoryWriter();
    const { server, result } = await fetchRoute(
      // The fourth request (a range) is cut after 20 000 bytes.
      { body: BODY, headers: { ETag: '"v1"' }, resetAfter: 20_000, faultAfter: 3, faultTimes: 1 },
      { writer },
    );
    const { hash, size } = ok(result);
    assert.equal(formatHash(hash, "sri"), BODY_SRI);
    assert.equal(size, BODY.length);
    assert.deepEqual(writer.bytes(), BODY);
    const asked = ranges(server);
    assert.equal(asked[0], undefined, "the first request is a plain GET");
    assert.equal(asked.length, 21 + 1, "21 ranges (the first from the GET) and one retry");
    for (const range of asked.slice(1)) {
      assert.match(range ?? "", /^bytes=\d+-\d+$/);
      assert.equal(server.requests[asked.indexOf(range)]!.headers["if-range"], '"v1"');
    }
    // The retry resumes 20 000 bytes into its range, not at its start.
    const resumed = asked.filter((range) =>
      range !== undefined && Number(/^bytes=(\d+)-/.exec(range)?.[1]) % RANGE !== 0
    );
    assert.equal(resumed.length, 1, `one range resumed: ${asked.join(" ")}`);
    const [first, last] = resumed[0]!.slice("bytes=".length).split("-").map(Number);
    assert.equal(first! % RANGE, 20_000);
    assert.equal(last, first! - 20_000 + RANGE - 1, "up to the end of the same range");
    assert.ok(server.peakConnections >= 2, `connections at once: ${server.peakConnections}`);
    assert.ok(server.peakConnections <= 4, `connections at once: ${server.peakConnections}`);
  },
);

forEachServer(
  "download() uses one connection when the server does not accept ranges",
  async (fetchRoute) => {
    const { server, result } = await fetchRoute({ body: BODY, range: false });
    assert.equal(formatHash(ok(result).hash, "sri"), BODY_SRI);
    assert.deepEqual(ranges(server), [undefined]);
  },
);

forEachServer(
  "download() starts over on one connection when the server ignores Range after claiming it",
  async (fetchRoute) => {
    const writer = memoryWriter();
    const { server, result } = await fetchRoute(
      { body: BODY, range: false, headers: { "Accept-Ranges": "bytes" } },
      { writer },
    );
    assert.equal(formatHash(ok(result).hash, "sri"), BODY_SRI);
    assert.deepEqual(writer.bytes(), BODY);
    assert.equal(writer.truncations, 1);
    assert.equal(ranges(server).at(-1), undefined, "the last request is a plain GET");
  },
);

forEachServer(
  "download() never mixes two versions: a new ETag mid-download starts over",
  async (fetchRoute) => {
    const next = randomBytes(BODY.length);
    const writer = memoryWriter();
    const { result } = await fetchRoute({
      body: BODY,
      headers: { ETag: '"v1"' },
      changeAfter: { after: 6, body: next, headers: { ETag: '"v2"' } },
    }, { writer });
    assert.equal(formatHash(ok(result).hash, "sri"), await sha256Sri(next));
    assert.deepEqual(writer.bytes(), next);
  },
);

forEachServer("download() starts over when the length changes mid-download", async (fetchRoute) => {
  const next = randomBytes(BODY.length + 1000);
  const { result } = await fetchRoute({
    body: BODY,
    changeAfter: { after: 6, body: next },
  });
  assert.equal(formatHash(ok(result).hash, "sri"), await sha256Sri(next));
  assert.equal(ok(result).size, next.length);
});

forEachServer(
  "download() fails, without retrying, on a range longer than its Content-Length",
  async (fetchRoute) => {
    const { server, result } = await fetchRoute({
      body: BODY,
      trailingBytes: 10,
      faultAfter: 4,
      faultTimes: 1,
    });
    assert.ok(result instanceof Error);
    // The bytes come at the end of the body, or before the next status line.
    assert.match(result.message, /sent more than the .*Content-Length announced/);
    const asked = ranges(server);
    assert.equal(new Set(asked).size, asked.length, "no range asked twice");
  },
);

Deno.test("download() keeps range connections alive, and replaces those the server closes", async (t) => {
  for (const keepAliveRequests of [Infinity, 3]) {
    const closes = keepAliveRequests === Infinity ? "never" : `after ${keepAliveRequests}`;
    await t.step(`the server closes a connection ${closes}`, async () => {
      const writer = memoryWriter();
      const retried: string[] = [];
      const { server, result } = await fetchRouteFrom(
        { keepAlive: true, keepAliveRequests },
        { body: BODY, headers: { ETag: '"v1"' } },
        { writer, onRetry: ({ error }) => retried.push(error.message) },
      );
      assert.equal(formatHash(ok(result).hash, "sri"), BODY_SRI);
      assert.deepEqual(writer.bytes(), BODY);
      assert.deepEqual(retried, []);
      const asked = ranges(server);
      assert.equal(asked.length, 21, "each range asked once");
      assert.equal(server.requests[0]!.headers["connection"], "close", "the plain GET");
      for (const request of server.requests.slice(1)) {
        assert.equal(request.headers["connection"], "keep-alive");
      }
      // The plain GET's connection, then at most one per connection at a
      // time, or a new one after every third request.
      const expected = keepAliveRequests === Infinity ? 5 : 1 + Math.ceil(20 / 3) + 4;
      assert.ok(server.connections <= expected, `${server.connections} connections`);
      if (keepAliveRequests !== Infinity) assert.ok(server.connections > 5);
    });
  }
});

Deno.test("download() finds bytes past the last range's Content-Length on the connection left open", async () => {
  // The 21st request is the last: nothing follows it on its connection, so
  // only the watch on the idle connections at the end can see the bytes.
  const { server, result } = await fetchRouteFrom(
    { keepAlive: true },
    { body: BODY, trailingBytes: 10, faultAfter: 20, faultTimes: 1 },
  );
  assert.ok(result instanceof Error, "the download was accepted");
  assert.match(result.message, /sent more than .*Content-Length announced/);
  assert.match(result.message, /the file's size is in doubt/);
  assert.equal(server.requests.length, 21, "no range asked twice");
});

Deno.test("download() fails at once when the name does not resolve", async () => {
  let calls = 0;
  const started = performance.now();
  const result = await download("https://no-such-host.invalid/file.bin", {
    retries: 5,
    retryDelayMs: 1000,
    connect: () => {
      calls++;
      // What Deno's resolver reports for a name that does not exist.
      return Promise.reject(
        new Error("failed to lookup address information: Name or service not known"),
      );
    },
  }).catch((error: Error) => error);
  assert.ok(result instanceof Error);
  assert.equal(
    result.message,
    'Cannot download "https://no-such-host.invalid/file.bin": name not found: "no-such-host.invalid" does not resolve (DNS)',
  );
  assert.equal(calls, 1);
  assert.ok(performance.now() - started < 1000);
});

Deno.test("download() still retries a refused connection", async () => {
  let calls = 0;
  const retried: string[] = [];
  const result = await download("https://127.0.0.1:9/file.bin", {
    retries: 2,
    retryDelayMs: 1,
    onRetry: ({ error }) => retried.push(error.message),
    connect: () => {
      calls++;
      return Promise.reject(new Deno.errors.ConnectionRefused("Connection refused (os error 111)"));
    },
  }).catch((error: Error) => error);
  assert.ok(result instanceof Error);
  assert.match(result.message, /connection refused by 127\.0\.0\.1:9 .*after 3 attempts/);
  assert.equal(calls, 3);
  assert.equal(retried.length, 2);
});

forEachServer(
  "download() fails when a range keeps failing, and stops the other connections",
  async (fetchRoute) => {
    const started = performance.now();
    const { server, result } = await fetchRoute(
      { body: BODY, serverError: true, faultAfter: 2 },
      { retries: 2, retryDelayMs: 200 },
    );
    assert.ok(result instanceof Error);
    assert.match(result.message, /HTTP 500.*\(after 3 attempts\)/);
    // Each of the 4 connections makes at most 3 attempts at the range it holds
    // (plus one more in flight when the first gives up), then takes no other.
    assert.ok(server.requests.length <= 2 + 4 * 3 + 4, `${server.requests.length} requests`);
    assert.ok(performance.now() - started < 5000);
  },
);

Deno.test("prefetch CLI fetches ranges through the proxy that HTTP_PROXY names", async () => {
  const script = join(repoRoot, "scripts/prefetch.ts");
  const permissions = (await Deno.readTextFile(script)).split("\n")[0]!
    .replace(/^#!\/usr\/bin\/env -S deno run /, "").split(" ");
  const url = "http://rocm.example.invalid:8080/file.bin";
  const body = randomBytes(10 * 1024 * 1024 + 5);
  // The file server answers absolute-form requests by their whole target: a stand-in proxy.
  await using proxy = startFileServer({ routes: { [url]: { body, headers: { ETag: '"p"' } } } });
  const result = await run(
    Deno.execPath(),
    [
      "run",
      ...permissions,
      script,
      "--no-add-to-store",
      "--no-progress",
      "--allow-http",
      "--connections",
      "3",
      url,
    ],
    { env: { HTTP_PROXY: proxy.origin } },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout.trim(), await sha256Sri(body));
  assert.ok(proxy.requests.every((r) => r.path === url), "every request went to the proxy");
  // A range retried on a loaded machine is asked twice; stderr says why.
  assert.deepEqual(
    [...new Set(proxy.requests.map((r) => r.headers["range"] ?? ""))].sort(),
    ["", "bytes=4194304-8388607", "bytes=8388608-10485764"],
    result.stderr,
  );
});

Deno.test("redirectTarget() checks a hop before it is followed", () => {
  const from = new URL("https://a.example/x/y");
  const to = (location: string | null, status = 302): Response =>
    new Response(null, { status, headers: location === null ? {} : { location } });
  assert.equal(redirectTarget(from, new Response("", { status: 200 })), undefined);
  assert.equal(redirectTarget(from, to("z"))?.href, "https://a.example/x/z");
  assert.equal(redirectTarget(from, to("http://127.0.0.1:8/f", 308))?.href, "http://127.0.0.1:8/f");
  assert.throws(() => redirectTarget(from, to(null)), /HTTP 302 without a Location/);
  assert.throws(() => redirectTarget(from, to("z"), { hop: 10 }), /more than 10 redirects/);
  assert.equal(
    redirectTarget(from, to("z"), { hop: 2, maxRedirects: 3 })?.href,
    "https://a.example/x/z",
  );
  assert.throws(() => redirectTarget(from, to("http://b.example/f")), /plain http/);
  assert.equal(
    redirectTarget(from, to("http://b.example/f"), { allowHttp: true })?.href,
    "http://b.example/f",
  );
  assert.throws(() => redirectTarget(from, to("file:///etc/passwd")), /unsupported scheme/);
  assert.throws(
    () => redirectTarget(from, to("ftp://u:secret@h/f")),
    (error: Error) => error instanceof TypeError && /ftp:\/\/\*\*\*@h\/f/.test(error.message),
  );
  assert.throws(() => redirectTarget(from, to("http://[bad")), /which is not a URL/);
});

Deno.test("download() resumes into a writer that hashes only when the kept bytes were hashed into it", async (t) => {
  const body = randomBytes(300_000);
  const kept = 100_000;
  await using server = startFileServer({
    routes: { "/f.bin": { body, headers: { ETag: '"v"' } } },
  });
  const url = server.url("/f.bin");
  // A writer that hashes what it gets, as the Nix store's file does.
  const hashing = (): DownloadWriter & { got: number; read: number } => {
    const writer = {
      got: 0,
      read: 0,
      write: (chunk: Uint8Array) => {
        writer.got += chunk.length;
        return Promise.resolve();
      },
      truncate: () => Promise.resolve(),
      digest: () => Promise.resolve({ algorithm: "sha256" as const, digest: new Uint8Array(32) }),
    };
    return writer;
  };
  const resumeInto = (writer: ReturnType<typeof hashing>, hashedByWriter?: boolean) => {
    let at = 0;
    return {
      size: kept,
      total: body.length,
      validator: '"v"',
      read: (view: Uint8Array) => {
        const n = Math.min(view.length, kept - at);
        view.set(body.subarray(at, at + n));
        at += n;
        writer.read += n;
        return Promise.resolve(n);
      },
      ...(hashedByWriter === undefined ? {} : { hashedByWriter }),
    };
  };
  await t.step("a hashing writer that did not hash the kept bytes is refused", async () => {
    const writer = hashing();
    await assert.rejects(
      download(url, { writer, resume: resumeInto(writer) }),
      (error: Error) =>
        error instanceof TypeError && /unless it hashed the kept ones/.test(error.message),
    );
  });
  await t.step("one that did gets the rest alone, and its digest is the download's", async () => {
    const writer = hashing();
    const result = await download(url, { writer, resume: resumeInto(writer, true) });
    assert.equal(writer.read, kept);
    assert.equal(writer.got, body.length - kept);
    assert.equal(result.size, body.length);
    assert.deepEqual(result.hash.digest, new Uint8Array(32));
  });
});
