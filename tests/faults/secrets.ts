/**
 * Secrets in URLs and control characters from servers: credentials in a URL
 * (`http://user:secret@host/…`, given on the command line, written in
 * flake.nix or sent in a redirect's Location) never reach stdout, stderr or
 * `--json`; text a server chose (a reason phrase, a header value, a
 * Location) is printed with its control characters escaped, and one line
 * on stderr stays one line.
 *
 * @module
 */

import { doesNotMatch, equal, match } from "node:assert/strict";
import {
  assertFailedCleanly,
  type FaultCase,
  inTempDir,
  runScript,
  type ScriptResult,
  snapshot,
} from "./_harness.ts";
import { type RawReply, startRawServer } from "./_raw_server.ts";
import { ok, registry, tarballName, uniqueBytes, VERSION_NEW, VERSION_OLD } from "./_fixtures.ts";
import { renderTheRockIndex } from "../../lib/jobs/demo_mirror.ts";

const SECRET = "s3cr3t-pw";
/** A URL of `origin` with credentials in it. */
const withSecret = (origin: string, path: string, user = "user"): string =>
  origin.replace("http://", `http://${user}:${SECRET}@`) + path;
/** What a hostile server puts in its reason phrases and headers. */
const HOSTILE = "\x1b[31mOops\x1b[2J\x07\x08";
// deno-lint-ignore no-control-regex -- these are what must never be printed raw
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f]/;

/** Neither output holds the secret or a raw control character (newlines end lines). */
function assertClean(result: ScriptResult): void {
  for (const [name, text] of [["stdout", result.stdout], ["stderr", result.stderr]]) {
    doesNotMatch(text!, new RegExp(SECRET), `${name} holds the secret: ${JSON.stringify(text)}`);
    doesNotMatch(text!, RAW_CONTROL, `${name} holds a control character: ${JSON.stringify(text)}`);
  }
}

const head = (status: string, headers: string[] = []): string =>
  [`HTTP/1.1 ${status}`, "Connection: close", ...headers].join("\r\n");

/** prefetch of a URL with credentials against one raw answer: fails in one clean line. */
function prefetchFails(
  name: string,
  answer: (origin: string, path: string) => RawReply,
  stderr: RegExp,
): FaultCase {
  return {
    name: `prefetch: ${name}`,
    run: () =>
      inTempDir(async (dir) => {
        let origin = "";
        await using server = startRawServer((request) => answer(origin, request.path));
        origin = server.origin;
        const before = snapshot(dir);
        const result = await runScript("prefetch", [
          ...["--retries", "0", "-o", `${dir}/out.bin`],
          withSecret(server.origin, "/file.bin"),
        ]);
        assertClean(result);
        await assertFailedCleanly(result, { code: 1, stderr, unchanged: [before] });
      }),
  };
}

const INDEX = new TextEncoder().encode(renderTheRockIndex([
  { name: tarballName(VERSION_OLD), mtime: 1 },
  { name: tarballName(VERSION_NEW), mtime: 2 },
]));

export const SECRET_CASES: FaultCase[] = [
  prefetchFails(
    "a URL with credentials answered by a reason phrase with escape sequences",
    () => ({ head: head(`500 ${HOSTILE}`, ["Content-Length: 0"]) }),
    /Cannot download "http:\/\/\*\*\*@127\.0\.0\.1:\d+\/file\.bin": .*\\x1b\[31mOops/,
  ),
  prefetchFails(
    "a status line with a carriage return in it",
    () => ({ head: head("404 Not\rFound", ["Content-Length: 0"]) }),
    /\*\*\*@.*not start with an HTTP\/1\.x status line/,
  ),
  prefetchFails(
    "a redirect whose Location carries other credentials",
    (origin, path) =>
      path === "/file.bin"
        ? { head: head("302 Found", [`Location: ${withSecret(origin, "/gone", "bob")}`]) }
        : { head: head(`404 ${HOSTILE}`, ["Content-Length: 0"]) },
    /"http:\/\/\*\*\*@127\.0\.0\.1:\d+\/gone": .*\\x1b\[31mOops/,
  ),
  prefetchFails(
    "a redirect to a refused scheme, with credentials and escape sequences",
    () => ({
      head: head("302 Found", [`Location: ftp://eve:${SECRET}@127.0.0.1/${HOSTILE}`]),
    }),
    /ftp:\/\/\*\*\*@127\.0\.0\.1\/.*unsupported scheme/,
  ),
  prefetchFails(
    "a Content-Encoding header with escape sequences",
    () => ({ head: head("200 OK", ["Content-Length: 3", `Content-Encoding: gzip${HOSTILE}`]) }),
    /Content-Encoding "gzip\\x1b\[31mOops/,
  ),
  {
    name: "prefetch --json: a URL with credentials is shown as ***",
    run: () =>
      inTempDir(async () => {
        const body = uniqueBytes(1024);
        await using server = startRawServer(() => ok(body));
        const result = await runScript("prefetch", [
          "--json",
          withSecret(server.origin, "/file.bin"),
        ]);
        equal(result.code, 0, result.stderr);
        assertClean(result);
        equal(JSON.parse(result.stdout).url, `${server.origin.replace("//", "//***@")}/file.bin`);
        await Deno.remove(result.tmpdir, { recursive: true });
      }),
  },
  {
    name: "update: an index URL with credentials answered by a reason phrase with escape sequences",
    run: () =>
      inTempDir(async (dir) => {
        await using server = startRawServer(() => ({
          head: head(`503 ${HOSTILE}`, ["Content-Length: 0"]),
        }));
        await Deno.writeTextFile(`${dir}/flake.nix`, registry(`${server.origin}/tarball/`));
        const before = snapshot(dir);
        const result = await runScript("update", [
          ...["--flake", `${dir}/flake.nix`, "--no-progress"],
          ...["--index", withSecret(server.origin, "/tarball/")],
        ]);
        assertClean(result);
        await assertFailedCleanly(result, {
          code: 1,
          stderr: /Cannot list "http:\/\/\*\*\*@127\.0\.0\.1:\d+\/tarball\/"/,
          unchanged: [before],
        });
      }),
  },
  {
    name:
      "status --json and its text: credentials in a mirror and in a redirect's Location are ***",
    run: () =>
      inTempDir(async (dir) => {
        await using server = startRawServer((request): RawReply => {
          if (request.path === "/tarball/") return ok(INDEX, "\r\nContent-Type: text/html");
          if (request.path === `/tarball/${tarballName(VERSION_OLD)}`) return ok(new Uint8Array(5));
          if (request.path.startsWith("/mirror/")) {
            return {
              head: head("302 Found", [
                `Location: ftp://eve:${SECRET}@127.0.0.1/x`,
                "Content-Length: 0",
              ]),
            };
          }
          return { head: head(`500 ${HOSTILE}`, ["Content-Length: 0"]) };
        });
        await Deno.writeTextFile(
          `${dir}/flake.nix`,
          registry(`${server.origin}/tarball/`).replace(
            "  };\n}",
            `    mirrors = [ "${withSecret(server.origin, "/mirror/", "m")}" "${
              withSecret(server.origin, "/broken/", "b")
            }" ];\n  };\n}`,
          ),
        );
        for (const json of [true, false]) {
          const result = await runScript("status", [
            ...["--flake", `${dir}/flake.nix`],
            ...(json ? ["--json"] : []),
          ]);
          equal(result.code, 0, result.stderr);
          assertClean(result);
          match(result.stdout, /\*\*\*@127\.0\.0\.1/);
          // The finding is a line of the report (stdout), printed once.
          match(result.stdout, /mirror http:\/\/\*\*\*@.* not verified: .*ftp:\/\/\*\*\*@/);
          await Deno.remove(result.tmpdir, { recursive: true });
        }
      }),
  },
  {
    name: "rewrite and status: a baseUrl with credentials is refused without showing them",
    run: () =>
      inTempDir(async (dir) => {
        const flake = `${dir}/flake.nix`;
        await Deno.writeTextFile(flake, registry(withSecret("http://127.0.0.1:9", "/tarball/")));
        const before = snapshot(dir);
        const rewrite = await runScript("rewrite", [
          ...["--flake", flake, "--set"],
          `nightly.baseUrl=${withSecret("http://127.0.0.1:9", "/other/")}`,
        ]);
        assertClean(rewrite);
        await assertFailedCleanly(rewrite, {
          code: 1,
          stderr: /http:\/\/\*\*\*@127\.0\.0\.1:9\/other\/.*no credentials/,
          unchanged: [before],
        });
        const status = await runScript("status", ["--flake", flake]);
        assertClean(status);
        await assertFailedCleanly(status, {
          code: 1,
          stderr: /Cannot use base URL "http:\/\/\*\*\*@127\.0\.0\.1:9\/tarball\/"/,
          unchanged: [before],
        });
      }),
  },
];
