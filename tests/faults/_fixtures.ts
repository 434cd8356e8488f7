/**
 * What the fault cases share: a flake registry, a TheRock index served by
 * the raw server, and bytes unique to each case (so that "nothing added to
 * the store" is a question about a path no other test makes).
 *
 * @module
 */

import { renderTheRockIndex } from "../../lib/jobs/demo_mirror.ts";
import type { RawReply, RawRequest } from "./_raw_server.ts";

export const VERSION_OLD = "7.12.0a20260308";
export const VERSION_NEW = "7.12.0a20260310";
export const OLD_HASH = "sha256-rUhZSqJaTpuc2l6D1Q29oC0yTcTRRU/NO/JAFxaaVRA=";
const encoder = new TextEncoder();

/** A registry as flake.nix holds it, tracking gfx1151, pinned to the old version. */
export function registry(baseUrl: string, extra = ""): string {
  return `# rocm-nightly registry${extra}
{
  nightly = {
    baseUrl = "${baseUrl}";
    version = "${VERSION_OLD}";
    srcHashes = {
      gfx1151 = "${OLD_HASH}";
    };
  };
}
`;
}

/** The tarball name of gfx1151 at `version`. */
export function tarballName(version = VERSION_NEW): string {
  return `therock-dist-linux-gfx1151-${version}.tar.gz`;
}

/** Random bytes: no other run can have added them to the store. */
export function uniqueBytes(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(size, offset + 65536)));
  }
  return bytes;
}

/** A 200 with an honest Content-Length. */
export function ok(body: Uint8Array, headers = ""): RawReply {
  return {
    head: `HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: ${body.length}${headers}`,
    body,
  };
}

/**
 * Answers `/tarball/` with a TheRock index listing gfx1151 at VERSION_OLD and
 * VERSION_NEW, and the new tarball with `tarball(request)`.
 */
export function indexAndTarball(
  tarball: (request: RawRequest) => RawReply,
): (request: RawRequest) => RawReply {
  const page = encoder.encode(renderTheRockIndex([
    { name: tarballName(VERSION_OLD), mtime: 1 },
    { name: tarballName(VERSION_NEW), mtime: 2 },
  ]));
  return (request) => {
    if (request.path === "/tarball/") return ok(page, "\r\nContent-Type: text/html");
    if (request.path === `/tarball/${tarballName()}`) return tarball(request);
    return { head: "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0" };
  };
}
