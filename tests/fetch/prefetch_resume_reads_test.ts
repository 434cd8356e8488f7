/**
 * A download the cache kept bytes of, continued into the local Nix store,
 * reads each byte of the file from disk at most once: the kept bytes are
 * read once (for the hash) and the rest not at all. strace records every
 * read of the file, wherever it is (the cache's `.data`, or its name in
 * the store folder), by the descriptor's path (-y).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { canLockIfFree } from "../../lib/fs/cleanup.ts";
import { deleteStorePath } from "../../lib/store/nix_store.ts";
import { startFileServer } from "../_server.ts";
import { randomBytes, requireLocalStore, requireTools } from "../_tools.ts";
import {
  assertCacheKeepsNothing,
  assertStored,
  keepInCache,
  runPrefetch,
  tracedReads,
} from "./_resume.ts";

const ok = await requireTools("reads of a resumed download (system calls traced)", "strace") &&
  await requireLocalStore("a resumed download into the local store");

for (const via of ["local", "daemon"]) {
  Deno.test({
    name:
      `prefetch() with a cache and a store (${via}) reads a resumed download's bytes at most once`,
    // Before Deno 2.7 (no FsFile.tryLock) the store is written through nix-daemon alone.
    ignore: !ok || (via === "local" && !canLockIfFree),
    fn: () => resumeOnce(via),
  });
}

/** Continues a cut-off download into the store (moved on the local route, sent to the daemon on its route). */
async function resumeOnce(via: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "resume-reads-" });
  const body = randomBytes(4 * 1024 * 1024 + 123);
  const kept = 1_500_000;
  await using server = startFileServer({
    routes: { "/f.bin": { body, headers: { ETag: '"r"' } } },
  });
  const url = server.url("/f.bin");
  const name = `resume-reads-${crypto.randomUUID().slice(0, 8)}.bin`;
  let storePath: string | undefined;
  try {
    // An earlier run kept the first bytes (as a cut-off download leaves them).
    const folder = join(dir, "cache");
    const data = await keepInCache(folder, url, body, kept);

    const trace = join(dir, "trace");
    const result = await runPrefetch(dir, { url, folder, name, via }, trace);
    assert.equal(result.code, 0, result.stderr);
    const printed = JSON.parse(result.stdout) as { storePath: string; size: number };
    storePath = printed.storePath;
    assert.equal(printed.size, body.length);

    // The kept bytes, once (on the local route from where they were moved
    // to in the store folder); before the change: those, then the whole file
    // again. nix-daemon (Nix 2.8) reads the path it wrote once more, for its
    // NAR hash; the local route reads nothing back.
    const { read, fromCache, summary } = await tracedReads(trace, data, name);
    const ours = via === "daemon" ? fromCache : read;
    assert.ok(ours >= kept && ours < body.length, summary);
    assert.ok(read - ours <= (via === "daemon" ? body.length : 0), summary);
    assert.deepEqual(
      server.requests.filter((r) => r.method === "GET").map((r) => r.headers["range"]),
      [`bytes=${kept}-`],
    );

    // The store path is the fetchurl path of the bytes, valid, with their NAR hash.
    await assertStored(storePath, body);
    // The cache keeps only the record of the addition.
    assertCacheKeepsNothing(folder);
  } finally {
    if (storePath !== undefined) await deleteStorePath(storePath);
    await Deno.remove(dir, { recursive: true });
  }
}
