/**
 * HTTP framing and status oddities, and redirects to every disallowed scheme
 * and host: prefetch (and update's index fetch) must fail in one line, keep
 * no partial output and add nothing to the store — or, where the oddity is a
 * resumable one, end with exactly the right bytes.
 *
 * @module
 */

import { equal } from "node:assert/strict";
import {
  assertFailedCleanly,
  type FaultCase,
  inTempDir,
  runScript,
  snapshot,
  sriOf,
} from "./_harness.ts";
import { requireWritableStore } from "../_tools.ts";
import { type RawReply, startRawServer } from "./_raw_server.ts";
import { indexAndTarball, ok, OLD_HASH, registry, uniqueBytes } from "./_fixtures.ts";

const SIZE = 204800;

/** prefetch -o DIR/out.bin --add-to-store URL against one raw answer; asserts the clean failure. */
function prefetchRefuses(
  name: string,
  answer: (body: Uint8Array, request: { headers: Record<string, string> }) => RawReply,
  stderr: RegExp,
): FaultCase {
  return {
    name: `prefetch: ${name}`,
    // It runs with --add-to-store, to show nothing is added.
    needs: () => requireWritableStore("prefetch fault cases run with --add-to-store"),
    run: () =>
      inTempDir(async (dir) => {
        const body = uniqueBytes(SIZE);
        await using server = startRawServer((request) => answer(body, request));
        const storeName = `fault-${crypto.randomUUID().slice(0, 8)}.bin`;
        const before = snapshot(dir);
        const result = await runScript("prefetch", [
          "--retries",
          "0",
          "--add-to-store",
          "--name",
          storeName,
          "-o",
          `${dir}/out.bin`,
          `${server.origin}/file.bin`,
        ]);
        await assertFailedCleanly(result, {
          code: 1,
          stderr,
          unchanged: [before],
          notInStore: [{ name: storeName, hash: sriOf(body), unique: true }],
        });
      }),
  };
}

const head = (status: string, headers: string[]): string =>
  [`HTTP/1.1 ${status}`, "Connection: close", ...headers].join("\r\n");

const partial = (range: string, length: number, bytes: Uint8Array): RawReply => ({
  head: head("206 Partial Content", [`Content-Range: ${range}`, `Content-Length: ${length}`]),
  body: bytes.subarray(0, length),
});

/** Resumable oddities: the first answer is cut short, the retry is odd; the result must be exact. */
function prefetchRecovers(
  name: string,
  retry: (body: Uint8Array, from: number) => RawReply,
): FaultCase {
  return {
    name: `prefetch: ${name}`,
    // It runs with --add-to-store, to show nothing is added.
    needs: () => requireWritableStore("prefetch fault cases run with --add-to-store"),
    run: () =>
      inTempDir(async (dir) => {
        const body = uniqueBytes(SIZE);
        let count = 0;
        await using server = startRawServer((request) => {
          count++;
          const from = Number(/bytes=(\d+)-/.exec(request.headers["range"] ?? "")?.[1] ?? 0);
          if (count === 1) {
            return {
              head: head("200 OK", [`Content-Length: ${SIZE}`, 'ETag: "v1"']),
              body: body.subarray(0, 1000),
            };
          }
          return from > 0 ? retry(body, from) : ok(body);
        });
        const result = await runScript("prefetch", [
          "--retries",
          "3",
          "-o",
          `${dir}/out.bin`,
          `${server.origin}/f`,
        ]);
        equal(result.code, 0, result.stderr);
        equal(result.stdout.trim(), sriOf(body));
        equal(sriOf(await Deno.readFile(`${dir}/out.bin`)), sriOf(body));
        equal([...Deno.readDirSync(dir)].length, 1, "only out.bin");
        await Deno.remove(result.tmpdir, { recursive: true });
      }),
  };
}

export const HTTP_CASES: FaultCase[] = [
  prefetchRefuses(
    "206 with Content-Range 0-999/204800 to a request without Range (#14.1)",
    (body) => partial(`bytes 0-999/${SIZE}`, 1000, body),
    /206.*bytes 0-999\/204800.*not all of it/,
  ),
  prefetchRefuses(
    "206 covering 0-(N-1)/N but a Content-Length of less",
    (body) => partial(`bytes 0-${SIZE - 1}/${SIZE}`, 1000, body),
    /but Content-Length is 1000/,
  ),
  prefetchRefuses(
    "206 without Content-Range",
    (body) => ({ head: head("206 Partial Content", [`Content-Length: ${SIZE}`]), body }),
    /206.*Content-Range ""/,
  ),
  prefetchRefuses(
    "206 whose range does not start at 0",
    (body) => partial(`bytes 100-${SIZE - 1}/${SIZE}`, SIZE - 100, body),
    /not all of it/,
  ),
  prefetchRefuses(
    "206 with an unknown total (bytes 0-999/*)",
    (body) => partial("bytes 0-999/*", 1000, body),
    /not all of it/,
  ),
  prefetchRefuses(
    "a Content-Length longer than the body",
    (body) => ({ head: head("200 OK", [`Content-Length: ${SIZE + 100}`]), body }),
    /closed after 204800 of the 204900 bytes/,
  ),
  prefetchRefuses(
    "a body longer than its Content-Length",
    (body) => ({ head: head("200 OK", [`Content-Length: ${SIZE - 100}`]), body }),
    /Content-Length|size is in doubt/,
  ),
  prefetchRefuses(
    "two Content-Length headers that disagree",
    (body) => ({ head: head("200 OK", [`Content-Length: ${SIZE}`, "Content-Length: 5"]), body }),
    /Content-Length/i,
  ),
  prefetchRefuses(
    "a Content-Encoding that was not asked for",
    (body) => ({
      head: head("200 OK", [`Content-Length: ${SIZE}`, "Content-Encoding: gzip"]),
      body,
    }),
    /Content-Encoding "gzip"/,
  ),
  prefetchRefuses(
    "a status line that is not HTTP",
    (body) => ({ head: "ICY 200 OK", body }),
    /Cannot download/,
  ),
  prefetchRefuses(
    "404",
    () => ({ head: head("404 Not Found", ["Content-Length: 0"]) }),
    /HTTP 404/,
  ),
  prefetchRefuses(
    "500 until the retries run out",
    () => ({ head: head("500 Oops", ["Content-Length: 0"]) }),
    /HTTP 500/,
  ),
  prefetchRefuses(
    "a redirect without Location",
    () => ({ head: head("302 Found", ["Content-Length: 0"]) }),
    /without a Location/,
  ),
  prefetchRefuses(
    "a redirect loop",
    () => ({ head: head("302 Found", ["Location: /file.bin", "Content-Length: 0"]) }),
    /more than 10 redirects/,
  ),
  {
    name: "prefetch: a body larger than --max-bytes (announced by Content-Length)",
    run: () =>
      inTempDir(async (dir) => {
        const body = uniqueBytes(SIZE);
        await using server = startRawServer(() => ok(body));
        const before = snapshot(dir);
        const result = await runScript("prefetch", [
          "--max-bytes",
          "100K",
          "-o",
          `${dir}/out.bin`,
          `${server.origin}/f`,
        ]);
        await assertFailedCleanly(result, {
          code: 1,
          stderr: /exceeds the limit of 102400 bytes/,
          unchanged: [before],
        });
      }),
  },
  prefetchRecovers(
    "a resume answered 206 with a Content-Range that starts at 0",
    (body) => partial(`bytes 0-${SIZE - 1}/${SIZE}`, SIZE, body),
  ),
  prefetchRecovers(
    "a resume answered 206 with another total",
    (_body, from) =>
      partial(
        `bytes ${from}-${SIZE + 9}/${SIZE + 10}`,
        SIZE + 10 - from,
        new Uint8Array(SIZE + 10).fill(1).subarray(from),
      ),
  ),
  prefetchRecovers("a resume answered 200 with the whole file", (body) => ok(body)),
];
/** Redirect targets that must be refused before anything is sent to them. */
const DISALLOWED = [
  "http://example.invalid/file.bin",
  "ftp://127.0.0.1/file.bin",
  "file:///etc/passwd",
  "data:application/octet-stream,abc",
  "javascript:alert(1)",
  "ws://127.0.0.1/file.bin",
];

export const REDIRECT_CASES: FaultCase[] = [
  ...DISALLOWED.map((location) =>
    prefetchRefuses(
      `a redirect to ${location}`,
      () => ({
        head: head("301 Moved Permanently", [`Location: ${location}`, "Content-Length: 0"]),
      }),
      /plain http is only allowed for loopback|unsupported scheme/,
    )
  ),
  ...DISALLOWED.map((location): FaultCase => ({
    name: `update: the index redirects to ${location} (checked before it is followed, #14.12)`,
    run: () =>
      inTempDir(async (dir) => {
        await using server = startRawServer(() => ({
          head: head("301 Moved Permanently", [`Location: ${location}`, "Content-Length: 0"]),
        }));
        await Deno.writeTextFile(`${dir}/flake.nix`, registry(`${server.origin}/tarball/`));
        const before = snapshot(dir);
        const result = await runScript("update", ["--flake", `${dir}/flake.nix`, "--no-progress"]);
        await assertFailedCleanly(result, {
          code: 1,
          stderr: /Cannot list .*(plain http is only allowed for loopback|unsupported scheme)/,
          unchanged: [before],
        });
        equal(server.requests.length, 1, "only the index itself was requested");
      }),
  })),
  {
    name: "update: an index that redirects more than 10 times",
    run: () =>
      inTempDir(async (dir) => {
        await using server = startRawServer((request) => ({
          head: head("302 Found", [`Location: ${request.path}x`, "Content-Length: 0"]),
        }));
        await Deno.writeTextFile(`${dir}/flake.nix`, registry(`${server.origin}/tarball/`));
        const before = snapshot(dir);
        const result = await runScript("update", ["--flake", `${dir}/flake.nix`]);
        await assertFailedCleanly(result, {
          code: 1,
          stderr: /more than 10 redirects/,
          unchanged: [before],
        });
        equal(server.requests.length, 11);
      }),
  },
  {
    name:
      "update --add-to-store: a second tarball's 404 keeps the first one in the store, names the target, suggests --skip",
    run: () =>
      inTempDir(async (dir) => {
        const { renderTheRockIndex } = await import("../../lib/jobs/demo_mirror.ts");
        const { tarballName, VERSION_NEW } = await import("./_fixtures.ts");
        const body = uniqueBytes(4096);
        const other = `therock-dist-linux-gfx110X-all-${VERSION_NEW}.tar.gz`;
        const page = new TextEncoder().encode(renderTheRockIndex([
          { name: tarballName(), mtime: 2 },
          { name: other, mtime: 2 },
        ]));
        await using server = startRawServer((request) =>
          request.path === "/tarball/"
            ? ok(page)
            : request.path === `/tarball/${tarballName()}`
            ? ok(body)
            : { head: head("404 Not Found", ["Content-Length: 0"]) }
        );
        await Deno.writeTextFile(
          `${dir}/flake.nix`,
          registry(`${server.origin}/tarball/`).replace(
            `gfx1151 = "${OLD_HASH}";`,
            `gfx1151 = "${OLD_HASH}";\n      gfx110X-all = null;`,
          ),
        );
        const before = snapshot(dir);
        const result = await runScript("update", [
          ...["--flake", `${dir}/flake.nix`, "--add-to-store", "--jobs", "1"],
        ]);
        const { fixedOutputPath, isValidStorePath, deleteStorePath } = await import(
          "../../lib/store/nix_store.ts"
        );
        const { parseSri } = await import("../../lib/hash/hash.ts");
        const kept = fixedOutputPath(tarballName(), parseSri(sriOf(body)));
        try {
          await assertFailedCleanly(result, {
            code: 1,
            stderr: new RegExp(
              `fetching gfx110X-all \\(${VERSION_NEW}\\) failed.*HTTP 404.*gfx1151 is in the ` +
                `Nix store; if ${VERSION_NEW} is broken for gfx110X-all, pass --skip ${VERSION_NEW}`,
            ),
            unchanged: [before],
          });
          equal(await isValidStorePath(kept), true, `${kept} kept for the rerun`);
        } finally {
          await deleteStorePath(kept);
        }
        equal(server.requests.some((r) => r.path === `/tarball/${tarballName()}`), true);
      }),
  },
  {
    name: "update: a tarball that is a 206 fragment is not pinned (#14.1)",
    needs: () => requireWritableStore("update fault cases run with --add-to-store"),
    run: () =>
      inTempDir(async (dir) => {
        const body = uniqueBytes(SIZE);
        await using server = startRawServer(
          indexAndTarball(() => partial(`bytes 0-999/${SIZE}`, 1000, body)),
        );
        await Deno.writeTextFile(`${dir}/flake.nix`, registry(`${server.origin}/tarball/`));
        const before = snapshot(dir);
        const result = await runScript("update", ["--flake", `${dir}/flake.nix`, "--add-to-store"]);
        await assertFailedCleanly(result, {
          code: 1,
          stderr: /not all of it/,
          unchanged: [before],
        });
      }),
  },
];
