import assert from "node:assert/strict";
import { join } from "node:path";
import { formatHash, type HashAlgorithm, parseHash } from "../../lib/hash/hash.ts";
import { HttpStatusError } from "../../lib/fetch/download.ts";
import { checkStoreName, fixedOutputPath } from "../../lib/store/nix_store.ts";
import { HashMismatchError, prefetch, type PrefetchOptions } from "../../lib/fetch/prefetch.ts";
import { type Route, startFileServer } from "../_server.ts";
import {
  nixEnv,
  randomBytes,
  repoRoot,
  requireTools,
  run,
  runNixBuild,
  type RunResult,
  withTempDir,
} from "../_tools.ts";

const SCRIPT = join(repoRoot, "scripts/prefetch.ts");
// The shebang's permissions, so these tests prove they suffice.
const PERMISSIONS = (await Deno.readTextFile(SCRIPT)).split("\n")[0]!
  .replace(/^#!\/usr\/bin\/env -S deno run /, "").split(" ");

/** The SRI hash computed independently of lib/ (WebCrypto). */
async function sri(
  bytes: Uint8Array<ArrayBuffer>,
  algorithm: HashAlgorithm = "sha256",
): Promise<string> {
  const digest = await crypto.subtle.digest(algorithm === "sha256" ? "SHA-256" : "SHA-512", bytes);
  return `${algorithm}-${btoa(String.fromCharCode(...new Uint8Array(digest)))}`;
}

function cli(
  args: string[],
  options: { cwd?: string; stdin?: Uint8Array } = {},
): Promise<RunResult> {
  // Into the system store only when a test asks (the default adds to it).
  const store = args.includes("--add-to-store") ? [] : ["--no-add-to-store"];
  return run(Deno.execPath(), ["run", ...PERMISSIONS, SCRIPT, ...store, ...args], {
    ...options,
    env: nixEnv(),
  });
}

/** A failed run: the exit code, one line on stderr matching `pattern`, nothing on stdout. */
function assertFailed(result: RunResult, code: number, pattern: RegExp): void {
  assert.equal(result.code, code, result.stderr);
  assert.equal(result.stdout, "");
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0]!, pattern);
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/** Serves `route` at /file.bin and runs prefetch() on it with fast retries. */
async function prefetchRoute(
  route: Route,
  options: PrefetchOptions = {},
): Promise<{ result: PrefetchResultOrError; requests: { path: string; range?: string }[] }> {
  await using server = startFileServer({ routes: { "/file.bin": route } });
  let result: PrefetchResultOrError;
  try {
    result = await prefetch(server.url("/file.bin"), { retryDelayMs: 10, ...options });
  } catch (error) {
    result = error as Error;
  }
  const requests = server.requests.map((r) => ({
    path: r.path,
    ...(r.headers["range"] === undefined ? {} : { range: r.headers["range"] }),
  }));
  return { result, requests };
}
type PrefetchResultOrError = Awaited<ReturnType<typeof prefetch>> | Error;

function ok(result: PrefetchResultOrError): Awaited<ReturnType<typeof prefetch>> {
  if (result instanceof Error) throw result;
  return result;
}

const BODY = randomBytes(1024 * 1024 + 123);
const BODY_SRI = await sri(BODY);

Deno.test("prefetch() resumes with a Range request after a connection reset", async () => {
  await withTempDir(async (dir) => {
    const output = join(dir, "out.bin");
    const { result, requests } = await prefetchRoute(
      { body: BODY, resetAfter: 300_000, faultTimes: 1 },
      { output },
    );
    assert.equal(formatHash(ok(result).hash, "sri"), BODY_SRI);
    assert.equal(requests.length, 2);
    assert.equal(requests[0]!.range, undefined);
    const start = Number(/^bytes=(\d+)-$/.exec(requests[1]!.range ?? "")?.[1]);
    assert.ok(start > 0 && start <= 300_000, `resumed from ${requests[1]!.range}`);
    assert.deepEqual(await Deno.readFile(output), BODY);
    assert.deepEqual(await listDir(dir), ["out.bin"]);
  });
});

Deno.test("prefetch() resumes in memory without an output file", async () => {
  const { result, requests } = await prefetchRoute({
    body: BODY,
    resetAfter: 500_000,
    faultTimes: 2,
  });
  assert.equal(formatHash(ok(result).hash, "sri"), BODY_SRI);
  assert.equal(ok(result).size, BODY.length);
  assert.equal(requests.length, 3);
  assert.match(requests[2]!.range ?? "", /^bytes=\d+-$/);
});

Deno.test("prefetch() starts over when the server ignores Range", async () => {
  await withTempDir(async (dir) => {
    const output = join(dir, "out.bin");
    const { result, requests } = await prefetchRoute(
      { body: BODY, range: false, resetAfter: 300_000, faultTimes: 1 },
      { output },
    );
    assert.equal(formatHash(ok(result).hash, "sri"), BODY_SRI);
    assert.equal(requests.length, 2);
    assert.deepEqual(await Deno.readFile(output), BODY);
  });
});

Deno.test("prefetch() starts over when a 206 has the wrong Content-Range", async () => {
  await withTempDir(async (dir) => {
    const output = join(dir, "out.bin");
    const { result, requests } = await prefetchRoute(
      { body: BODY, resetAfter: 300_000, badRange: true, faultTimes: 2 },
      { output },
    );
    assert.equal(formatHash(ok(result).hash, "sri"), BODY_SRI);
    assert.equal(requests.length, 3);
    assert.match(requests[1]!.range ?? "", /^bytes=\d+-$/);
    assert.equal(requests[2]!.range, undefined);
    assert.deepEqual(await Deno.readFile(output), BODY);
  });
});

Deno.test("prefetch() retries a 500 and gives up after the retries", async () => {
  const flaky = await prefetchRoute({ body: BODY, serverError: true, faultTimes: 2 });
  assert.equal(formatHash(ok(flaky.result).hash, "sri"), BODY_SRI);
  assert.equal(flaky.requests.length, 3);
  const broken = await prefetchRoute({ body: BODY, serverError: true }, { retries: 2 });
  assert.ok(broken.result instanceof HttpStatusError);
  assert.equal(broken.result.status, 500);
  assert.match(broken.result.message, /HTTP 500.*after 3 attempts/);
  assert.equal(broken.requests.length, 3);
});

Deno.test("prefetch() does not retry a 404", async () => {
  const { result, requests } = await prefetchRoute({ status: 404 });
  assert.ok(result instanceof HttpStatusError);
  assert.equal(result.status, 404);
  assert.equal(requests.length, 1);
});

Deno.test("prefetch() retries a body shorter than its Content-Length", async () => {
  const flaky = await prefetchRoute({ body: BODY, wrongLength: "long", faultTimes: 1 });
  assert.equal(formatHash(ok(flaky.result).hash, "sri"), BODY_SRI);
  await withTempDir(async (dir) => {
    const output = join(dir, "out.bin");
    const broken = await prefetchRoute({ body: BODY, wrongLength: "long" }, { retries: 1, output });
    assert.ok(broken.result instanceof Error);
    assert.match(broken.result.message, /connection failed|Content-Length/);
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("prefetch() fails, without retrying, on a body longer than its Content-Length", async () => {
  await withTempDir(async (dir) => {
    const output = join(dir, "out.bin");
    const { result, requests } = await prefetchRoute(
      { body: BODY, wrongLength: "short" },
      { output, retries: 3 },
    );
    assert.ok(result instanceof Error);
    assert.match(
      result.message,
      new RegExp(
        `more than the ${
          BODY.length - 100
        } bytes its Content-Length announced; the file's size is in doubt`,
      ),
    );
    assert.equal(requests.length, 1); // the server's fault, not the network's: no retry
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("prefetch() fails an attempt after the idle timeout and resumes", async () => {
  const stalled = await prefetchRoute(
    { body: BODY, stallAfter: 200_000, faultTimes: 1 },
    { timeoutSeconds: 0.5 },
  );
  assert.equal(formatHash(ok(stalled.result).hash, "sri"), BODY_SRI);
  assert.equal(stalled.requests.length, 2);
  assert.match(stalled.requests[1]!.range ?? "", /^bytes=\d+-$/);
  const dead = await prefetchRoute({ body: BODY, stallAfter: 1000 }, {
    timeoutSeconds: 0.5,
    retries: 0,
  });
  assert.ok(dead.result instanceof Error);
  assert.match(dead.result.message, /no data for 0\.5 s/);
});

Deno.test("prefetch() slow server: the timeout is per chunk, not for the whole download", async () => {
  // 17 chunks 100 ms apart: 1.7 s in all, never 0.5 s without data.
  const { result } = await prefetchRoute({ body: BODY, chunkDelayMs: 100 }, {
    timeoutSeconds: 0.5,
    retries: 0,
  });
  assert.equal(formatHash(ok(result).hash, "sri"), BODY_SRI);
});

Deno.test("prefetch() refuses a body larger than maxBytes without retrying", async () => {
  const { result, requests } = await prefetchRoute({ body: BODY }, { maxBytes: 1000 });
  assert.ok(result instanceof RangeError);
  assert.match(result.message, /exceeds the limit of 1000 bytes/);
  assert.equal(requests.length, 1);
  // Without a Content-Length the limit is enforced as the bytes arrive.
  const unknown = await prefetchRoute({ body: BODY, noLength: true }, { maxBytes: 1000 });
  assert.ok(unknown.result instanceof RangeError);
  assert.match(unknown.result.message, /the body exceeds the limit of 1000 bytes/);
  assert.equal(unknown.requests.length, 1);
});

Deno.test("prefetch() follows relative redirects and bounds them", async () => {
  await using server = startFileServer({
    routes: {
      "/file.bin": { body: BODY },
      "/a": { redirect: "/b", status: 301 },
      "/b": { redirect: "file.bin", status: 307 },
      "/loop": { redirect: "/loop" },
      "/away": { redirect: "http://example.invalid/file.bin" },
    },
  });
  const result = await prefetch(server.url("/a"));
  assert.equal(formatHash(result.hash, "sri"), BODY_SRI);
  assert.equal(result.url, server.url("/a"));
  assert.equal(result.name, "a");
  await assert.rejects(() => prefetch(server.url("/loop")), /more than 10 redirects/);
  await assert.rejects(() => prefetch(server.url("/away")), {
    name: "TypeError",
    message: /plain http is only allowed for loopback hosts/,
  });
});

Deno.test("prefetch() refuses a body sent with a Content-Encoding", async () => {
  const { result, requests } = await prefetchRoute({
    body: BODY,
    headers: { "Content-Encoding": "gzip" },
  });
  assert.ok(result instanceof Error);
  assert.match(result.message, /Content-Encoding "gzip".*ambiguous/);
  assert.equal(requests.length, 1, "not retried");
  assert.equal(requests[0]!.path, "/file.bin");
});

Deno.test("prefetch() reports progress, with the total when it is known", async () => {
  for (const noLength of [false, true]) {
    const seen: Array<{ received: number; total: number | undefined }> = [];
    const { result } = await prefetchRoute({ body: BODY, noLength }, {
      onProgress: (progress) => seen.push(progress),
    });
    assert.equal(formatHash(ok(result).hash, "sri"), BODY_SRI);
    assert.ok(seen.length > 1);
    assert.deepEqual(seen.at(-1), {
      received: BODY.length,
      total: noLength ? undefined : BODY.length,
    });
  }
});

Deno.test("prefetch() leaves an existing output untouched on a hash mismatch", async () => {
  await withTempDir(async (dir) => {
    const output = join(dir, "out.bin");
    await Deno.writeTextFile(output, "old contents\n");
    const { result } = await prefetchRoute({ body: BODY }, {
      output,
      expect: parseHash(await sri(new Uint8Array(1))),
    });
    assert.ok(result instanceof HashMismatchError);
    assert.equal(await Deno.readTextFile(output), "old contents\n");
    assert.deepEqual(await listDir(dir), ["out.bin"]);
  });
});

// --- the CLI, run as a user runs it ---

Deno.test("prefetch CLI prints the SRI hash, or --json with every encoding", async () => {
  await using server = startFileServer({ routes: { "/dir/data.bin": { body: BODY } } });
  const plain = await cli([server.url("/dir/data.bin")]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout, `${BODY_SRI}\n`);
  assert.equal(plain.stderr, "", "no progress bar when stderr is not a terminal");
  const json = await cli(["--json", "--algo", "sha512", server.url("/dir/data.bin")]);
  assert.equal(json.code, 0, json.stderr);
  const object = JSON.parse(json.stdout);
  const hash = parseHash(await sri(BODY, "sha512"));
  assert.deepEqual(object, {
    name: "data.bin",
    size: BODY.length,
    hash: await sri(BODY, "sha512"),
    nix32: formatHash(hash, "nix32"),
    hex: formatHash(hash, "hex"),
    url: server.url("/dir/data.bin"),
    storePath: null,
  });
});

Deno.test("prefetch CLI hashes files and stdin and keeps --output", async () => {
  await withTempDir(async (dir) => {
    const input = join(dir, "in.bin");
    await Deno.writeFile(input, BODY);
    const file = await cli(["--json", input]);
    assert.equal(file.code, 0, file.stderr);
    assert.equal(JSON.parse(file.stdout).hash, BODY_SRI);
    assert.equal(JSON.parse(file.stdout).path, input);
    const stdin = await cli(["-o", join(dir, "copy.bin"), "-"], { stdin: BODY });
    assert.equal(stdin.code, 0, stdin.stderr);
    assert.equal(stdin.stdout, `${BODY_SRI}\n`);
    assert.deepEqual(await Deno.readFile(join(dir, "copy.bin")), BODY);
    assert.deepEqual(await listDir(dir), ["copy.bin", "in.bin"]);
  });
});

Deno.test("prefetch CLI --expect accepts any encoding and fails on a mismatch", async () => {
  await using server = startFileServer({ routes: { "/f.bin": { body: BODY } } });
  const hash = parseHash(BODY_SRI);
  for (const encoding of ["nix32", "hex"] as const) {
    const good = await cli(["--expect", formatHash(hash, encoding), server.url("/f.bin")]);
    assert.equal(good.code, 0, good.stderr);
  }
  await withTempDir(async (dir) => {
    const output = join(dir, "f.bin");
    const wrong = await sri(new Uint8Array(3));
    const bad = await cli(["--expect", wrong, "--output", output, server.url("/f.bin")]);
    assertFailed(bad, 1, /Hash mismatch/);
    assert.ok(bad.stderr.includes(wrong) && bad.stderr.includes(BODY_SRI), "both hashes shown");
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("prefetch CLI failures: one line on stderr, exit 1, nothing written", async () => {
  await using server = startFileServer({
    routes: {
      "/reset.bin": { body: BODY, resetAfter: 1000 },
      "/short.bin": { body: BODY, wrongLength: "long" },
      "/long.bin": { body: BODY, wrongLength: "short" },
      "/500.bin": { body: BODY, serverError: true },
    },
  });
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = closed.addr.port;
  closed.close();
  await withTempDir(async (dir) => {
    const output = join(dir, "out.bin");
    const cases: Array<[string[], RegExp]> = [
      [[server.url("/missing.bin")], /HTTP 404/],
      [
        ["--retries", "1", server.url("/reset.bin")],
        /closed after 1000 of the \d+ bytes its Content-Length announced \(after 2 attempts\)$/,
      ],
      [
        ["--retries", "0", server.url("/short.bin")],
        /closed after \d+ of the \d+ bytes its Content-Length announced$/,
      ],
      [
        ["--retries", "3", server.url("/long.bin")],
        /more than the \d+ bytes its Content-Length announced; the file's size is in doubt/,
      ],
      [["--retries", "0", server.url("/500.bin")], /HTTP 500/],
      [
        ["--retries", "0", `http://127.0.0.1:${deadPort}/x.bin`],
        /Cannot download .*connection refused by 127\.0\.0\.1:\d+ \(nothing listens there\)/,
      ],
      [[dir], /is a directory/],
      [[join(dir, "missing.bin")], /Cannot read .*missing\.bin/],
    ];
    for (const [args, pattern] of cases) {
      const result = await cli(["--output", output, ...args]);
      assertFailed(result, 1, pattern);
      assert.deepEqual(await listDir(dir), [], `nothing left by ${args.join(" ")}`);
    }
  });
});

Deno.test("prefetch CLI goes through the proxy that HTTP_PROXY names, except to loopback", async () => {
  // A stand-in proxy: it answers the absolute-form request itself.
  const proxy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen: string[] = [];
  const serving = (async () => {
    for await (const conn of proxy) {
      const head = new Uint8Array(16 * 1024);
      const n = await conn.read(head);
      seen.push(new TextDecoder().decode(head.subarray(0, n ?? 0)).split("\r\n")[0]!);
      await conn.write(
        new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
      );
      conn.close();
    }
  })().catch(() => {});
  try {
    const url = "http://rocm.example.invalid:8080/file.bin";
    const result = await run(
      Deno.execPath(),
      ["run", ...PERMISSIONS, SCRIPT, "--no-add-to-store", "--no-progress", "--allow-http", url],
      { env: { HTTP_PROXY: `http://127.0.0.1:${(proxy.addr as Deno.NetAddr).port}` } },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), await sri(new TextEncoder().encode("hello")));
    assert.deepEqual(seen, [`GET ${url} HTTP/1.1`]);
    // Loopback is reached directly, proxy or not.
    await using server = startFileServer({ routes: { "/file.bin": { body: BODY } } });
    const local = await run(
      Deno.execPath(),
      [
        "run",
        ...PERMISSIONS,
        SCRIPT,
        "--no-add-to-store",
        "--no-progress",
        server.url("/file.bin"),
      ],
      { env: { HTTP_PROXY: `http://127.0.0.1:${(proxy.addr as Deno.NetAddr).port}` } },
    );
    assert.equal(local.stdout.trim(), BODY_SRI, local.stderr);
    assert.equal(seen.length, 1);
  } finally {
    proxy.close();
    await serving;
  }
});

// Root reads any file, so as root the CLI runs without the capabilities
// that let it (setpriv drops them from the bounding set).
const root = Deno.uid() === 0;
const dropCapabilities = root &&
  await requireTools("the unreadable-file test as root (it drops root's read override)", "setpriv");

Deno.test({
  name: "prefetch CLI on an unreadable file: one line on stderr, exit 1",
  ignore: root && !dropCapabilities,
  fn: async () => {
    await withTempDir(async (dir) => {
      const locked = join(dir, "locked.bin");
      await Deno.writeFile(locked, BODY, { mode: 0o000 });
      await Deno.chmod(locked, 0o000);
      const command = [
        ...[Deno.execPath(), "run", ...PERMISSIONS, SCRIPT],
        ...["--no-add-to-store", "--no-progress", locked],
      ];
      const result = root
        ? await run("setpriv", ["--bounding-set=-dac_override,-dac_read_search", ...command])
        : await run(command[0]!, command.slice(1));
      assertFailed(result, 1, /^prefetch: Cannot read ".*locked\.bin": Permission denied/);
    });
  },
});

Deno.test("prefetch CLI usage errors exit 2", async () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /missing <url \| path \| ->/],
    [["a", "b"], /unexpected argument "b"/],
    [["--bogus", "x"], /bogus/],
    [["--algo", "md5", "x"], /invalid --algo "md5"/],
    [["--expect", "sha256-notbase64!", "x"], /Cannot parse hash/],
    [["--expect", "abc", "x"], /Cannot parse hash/],
    [["--algo", "sha256", "--expect", BODY_SRI.replace("sha256", "sha512"), "x"], /hash/],
    [["--retries=-1", "x"], /invalid --retries/],
    [["--timeout", "0", "x"], /invalid --timeout/],
    [["--max-bytes", "1X", "x"], /invalid --max-bytes/],
    [["--connections", "0", "x"], /invalid --connections "0"/],
    [["--connections", "65", "x"], /invalid --connections "65"/],
    [["http://example.com/x.tar.gz"], /plain http is only allowed for loopback hosts/],
    [["ftp://example.com/x.tar.gz"], /unsupported/],
    [["--add-to-store", "-"], /without a name \(use --name\)/],
    [["--add-to-store", "https://example.com/rocm-7.0.0.dev0%2Bab12.tar.gz"], /--name/],
  ];
  for (const [args, pattern] of cases) assertFailed(await cli(args), 2, pattern);
  const help = await cli(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: prefetch/);
  assert.match(help.stdout, /Examples:/);
});

// --- the Nix store ---

const nix = await requireTools("prefetch --add-to-store tests", "nix-store", "nix-build");

async function isValid(path: string): Promise<boolean> {
  return (await run("nix-store", ["--check-validity", path], { env: nixEnv() })).code === 0;
}

for (const algorithm of ["sha256", "sha512"] as const) {
  Deno.test({
    name: `prefetch CLI --add-to-store (${algorithm}) seeds exactly the path fetchurl builds`,
    ignore: !nix,
    fn: async () => {
      const body = randomBytes(200_000);
      const expected = await sri(body, algorithm);
      const server = startFileServer({ routes: { "/pkg/rocm-test.tar.gz": { body } } });
      const url = server.url("/pkg/rocm-test.tar.gz");
      let storePath: string;
      try {
        const result = await cli(["--add-to-store", "--json", "--algo", algorithm, url]);
        assert.equal(result.code, 0, result.stderr);
        const object = JSON.parse(result.stdout);
        assert.equal(object.hash, expected);
        storePath = object.storePath;
        assert.equal(storePath, fixedOutputPath("rocm-test.tar.gz", parseHash(expected)));
        assert.ok(await isValid(storePath));
        assert.deepEqual(await Deno.readFile(storePath), body);
      } finally {
        await server.close();
      }
      // The server is gone: the build can only succeed from the seeded path.
      const build = await runNixBuild("nix-build", [
        "--no-out-link",
        "-E",
        `import <nix/fetchurl.nix> { url = "${url}"; hash = "${expected}"; }`,
      ], { env: nixEnv() });
      assert.equal(build.code, 0, build.stderr);
      assert.equal(build.stdout.trim(), storePath);
    },
  });
}

Deno.test({
  name: "prefetch CLI --add-to-store with --name and --output, and nothing added on a mismatch",
  ignore: !nix,
  fn: async () => {
    const body = randomBytes(100_000);
    const expected = await sri(body);
    await using server = startFileServer({
      routes: { "/rocm-7.0.0.dev0%2Bab12.tar.gz": { body } },
    });
    const url = server.url("/rocm-7.0.0.dev0%2Bab12.tar.gz");
    await withTempDir(async (dir) => {
      const output = join(dir, "keep.tar.gz");
      const wrong = await sri(randomBytes(10));
      const bad = await cli([
        "--add-to-store",
        "--name",
        "rocm.tar.gz",
        "-o",
        output,
        "--expect",
        wrong,
        url,
      ]);
      assertFailed(bad, 1, /Hash mismatch/);
      assert.equal(await isValid(fixedOutputPath("rocm.tar.gz", parseHash(expected))), false);
      assert.deepEqual(await listDir(dir), []);

      const good = await cli(["--add-to-store", "--name", "rocm.tar.gz", "-o", output, url]);
      assert.equal(good.code, 0, good.stderr);
      const storePath = fixedOutputPath("rocm.tar.gz", parseHash(expected));
      assert.equal(good.stdout, `${expected}\n${storePath}\n`);
      assert.ok(await isValid(storePath));
      assert.deepEqual(await Deno.readFile(output), body);
      assert.deepEqual(await listDir(dir), ["keep.tar.gz"]);

      // Seeding a file under another name: the path is computed, not guessed.
      const local = await cli(["--add-to-store", "--name", "other.bin", output]);
      assert.equal(local.code, 0, local.stderr);
      assert.equal(local.stdout.split("\n")[1], fixedOutputPath("other.bin", parseHash(expected)));
      assert.deepEqual(await listDir(dir), ["keep.tar.gz"]);
    });
  },
});

Deno.test({
  name: "fixedOutputPath() equals nix-store --print-fixed-path for sha256 and sha512",
  ignore: !nix,
  fn: async () => {
    for (const algorithm of ["sha256", "sha512"] as const) {
      const hash = parseHash(await sri(randomBytes(64), algorithm));
      for (const name of ["rocm.tar.gz", "a+b=c?d_e-1.2"]) {
        const printed = await run("nix-store", [
          "--print-fixed-path",
          algorithm,
          formatHash(hash, "hex"),
          name,
        ], { env: nixEnv() });
        assert.equal(printed.code, 0, printed.stderr);
        assert.equal(fixedOutputPath(name, hash), printed.stdout.trim());
      }
    }
  },
});

Deno.test("checkStoreName() rejects what Nix rejects", () => {
  checkStoreName("therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz");
  for (const bad of ["", ".hidden", "a%2Bb", "a/b", "a b", "x".repeat(212)]) {
    assert.throws(() => checkStoreName(bad), { name: "TypeError", message: /--name/ }, bad);
  }
  checkStoreName("x".repeat(211));
});

const pty = await requireTools(
  "prefetch progress bar tests (a terminal from util-linux script)",
  "script",
);

Deno.test({
  name: "prefetch CLI draws a progress bar only on a terminal stderr, honouring NO_COLOR",
  ignore: !pty,
  fn: async () => {
    await using server = startFileServer({
      routes: { "/slow.bin": { body: BODY, chunkDelayMs: 20 } },
    });
    await withTempDir(async (dir) => {
      const quote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;
      const out = join(dir, "stdout.txt");
      for (const noColor of [false, true]) {
        const command = "stty cols 150; " +
          [
            Deno.execPath(),
            "run",
            ...PERMISSIONS,
            SCRIPT,
            "--no-add-to-store",
            server.url("/slow.bin"),
          ]
            .map(quote).join(" ") +
          ` > ${quote(out)}`;
        const env: Record<string, string> = { ...nixEnv(), TERM: "xterm" };
        if (noColor) env["NO_COLOR"] = "1";
        const terminal = await run("script", ["-qec", command, "/dev/null"], { env });
        assert.equal(terminal.code, 0, terminal.stdout);
        assert.equal(await Deno.readTextFile(out), `${BODY_SRI}\n`, "stdout holds only the hash");
        // deno-lint-ignore no-control-regex
        const text = terminal.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
        // The final frame: done, size, time taken, the name, the hash.
        assert.ok(text.includes(`slow.bin  ${BODY_SRI}`), text);
        assert.match(text, /done +1\.00 MiB in \d+:\d\d +slow\.bin/);
        assert.equal(terminal.stdout.includes("\x1b[32mdone"), !noColor, "colour unless NO_COLOR");
      }
      const quiet = await run("script", [
        "-qec",
        [
          Deno.execPath(),
          "run",
          ...PERMISSIONS,
          SCRIPT,
          "--no-add-to-store",
          "--no-progress",
          server.url("/slow.bin"),
        ].map(quote).join(" ") + ` > ${quote(out)}`,
        "/dev/null",
      ], { env: nixEnv() });
      assert.equal(quiet.code, 0);
      assert.doesNotMatch(quiet.stdout, /100%|done/);
    });
  },
});

Deno.test({
  name: "prefetch CLI adds a URL to the store by default, as nix-prefetch-url does",
  ignore: !nix,
  fn: async () => {
    const body = crypto.getRandomValues(new Uint8Array(4096));
    await using server = startFileServer({ routes: { "/default.bin": { body } } });
    const expected = await sri(body);
    const storePath = fixedOutputPath("default.bin", parseHash(expected));
    try {
      const result = await run(Deno.execPath(), [
        ...["run", ...PERMISSIONS, SCRIPT, "--no-progress", server.url("/default.bin")],
      ], { env: nixEnv() });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `${expected}\n${storePath}\n`);
      assert.ok(await isValid(storePath));
    } finally {
      await run("nix-store", ["--delete", storePath], { env: nixEnv() });
    }
  },
});
