/**
 * status's and update's mirror probes follow redirects with prefetch's
 * policy, hop by hop: a hop the policy refuses is never contacted, even when
 * something listens there, and the URL is reported as not verified — never
 * as served. Each refused target here is a second loopback server that
 * counts what it receives.
 *
 * @module
 */

import { equal, match } from "node:assert/strict";
import { inTempDir, runScript } from "./_harness.ts";
import { type RawReply, type RawServer, startRawServer } from "./_raw_server.ts";
import { ok, registry, tarballName, uniqueBytes, VERSION_NEW, VERSION_OLD } from "./_fixtures.ts";
import type { FaultCase } from "./_harness.ts";
import { renderTheRockIndex } from "../../lib/jobs/demo_mirror.ts";

const encoder = new TextEncoder();
const redirect = (location: string): RawReply => ({
  head: `HTTP/1.1 302 Found\r\nConnection: close\r\nLocation: ${location}\r\nContent-Length: 0`,
});
const notFound: RawReply = {
  head: "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0",
};

/** A TheRock index of gfx1151 at the old and new versions. */
const INDEX = encoder.encode(renderTheRockIndex([
  { name: tarballName(VERSION_OLD), mtime: 1 },
  { name: tarballName(VERSION_NEW), mtime: 2 },
]));

/** Where a refused hop would land: a listening server on another port. */
interface Target {
  /** The Location that points at the forbidden server. */
  location: (forbidden: RawServer) => string;
  /** How many hops on the first server come before it. */
  hops: number;
}

const TARGETS: Record<string, Target> = {
  // The 11th redirect: prefetch follows 10.
  "an 11th redirect": { location: (b) => `${b.origin}/file`, hops: 10 },
  // 0.0.0.0 reaches this machine's listeners, but it is not a loopback name:
  // plain http to it is refused like plain http to any other host.
  "plain http to a host that is not loopback (0.0.0.0)": {
    location: (b) => b.origin.replace("127.0.0.1", "0.0.0.0") + "/file",
    hops: 0,
  },
  "ftp:": { location: (b) => `${b.origin.replace("http:", "ftp:")}/file`, hops: 0 },
};

/** Answers `/hop/<n>` by redirecting to the next hop, the last one to the forbidden server. */
function chain(target: Target, forbidden: RawServer, path: string): RawReply {
  const n = Number(/^\/hop\/(\d+)$/.exec(path)?.[1] ?? -1);
  if (n < 0) return notFound;
  return n < target.hops ? redirect(`/hop/${n + 1}`) : redirect(target.location(forbidden));
}

const statusCases = Object.entries(TARGETS).map(([what, target]): FaultCase => ({
  name: `status: a pinned URL whose redirect goes to ${what} is not verified, and not contacted`,
  run: () =>
    inTempDir(async (dir) => {
      await using forbidden = startRawServer(() => ok(new Uint8Array(10)));
      await using server = startRawServer((request) =>
        request.path === "/tarball/"
          ? ok(INDEX, "\r\nContent-Type: text/html")
          : request.path === `/tarball/${tarballName(VERSION_OLD)}`
          ? redirect("/hop/0")
          : chain(target, forbidden, request.path)
      );
      await Deno.writeTextFile(`${dir}/flake.nix`, registry(`${server.origin}/tarball/`));
      const result = await runScript("status", ["--flake", `${dir}/flake.nix`]);
      equal(forbidden.requests.length, 0, "nothing was sent to the refused hop");
      equal(result.code, 1, result.stderr);
      match(result.stderr, /status: nightly\.gfx1151 is not verified/);
      match(result.stdout, /gfx1151: NOT VERIFIED/);
      match(
        result.stdout,
        /not verified: .*(more than 10 redirects|plain http|unsupported scheme)/,
      );
      equal([...Deno.readDirSync(result.tmpdir)].length, 0, "TMPDIR left empty");
      await Deno.remove(result.tmpdir, { recursive: true });
    }),
}));

export const PROBE_REDIRECT_CASES: FaultCase[] = [
  ...statusCases,
  {
    name:
      "update: a mirror that redirects to plain http on 0.0.0.0 is not contacted, and warned of",
    run: () =>
      inTempDir(async (dir) => {
        const body = uniqueBytes(4096);
        const target = TARGETS["plain http to a host that is not loopback (0.0.0.0)"]!;
        await using forbidden = startRawServer(() => ok(body));
        await using server = startRawServer((request) =>
          request.path === "/tarball/"
            ? ok(INDEX, "\r\nContent-Type: text/html")
            : request.path === `/tarball/${tarballName()}`
            ? ok(body)
            : request.path.startsWith("/mirror/")
            ? redirect("/hop/0")
            : chain(target, forbidden, request.path)
        );
        await Deno.writeTextFile(
          `${dir}/flake.nix`,
          registry(`${server.origin}/tarball/`).replace(
            "  };\n}",
            `    mirrors = [ "${server.origin}/mirror/" ];\n  };\n}`,
          ),
        );
        const result = await runScript("update", ["--flake", `${dir}/flake.nix`]);
        equal(forbidden.requests.length, 0, "nothing was sent to the refused hop");
        equal(result.code, 0, result.stderr);
        match(
          result.stderr,
          /update: warning: gfx1151: mirror .* not verified: "http:\/\/0\.0\.0\.0:\d+\/file": plain http/,
        );
        match(await Deno.readTextFile(`${dir}/flake.nix`), new RegExp(VERSION_NEW));
        await Deno.remove(result.tmpdir, { recursive: true });
      }),
  },
];
