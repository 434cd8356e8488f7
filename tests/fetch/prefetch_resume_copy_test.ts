/**
 * A download the cache kept bytes of, continued into the local Nix store
 * when the cache is on another file system than the store folder: the kept
 * bytes cannot be moved (rename(2) fails with EXDEV), so they are copied
 * into the store's file as they are read for the hash. The cache lives
 * under /dev/shm (tmpfs), the store on the root file system. Each kept byte
 * is read once, the path is what fetchurl makes, the cache keeps nothing
 * after it, and a download cut off on this route leaves the cache able to
 * continue it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { canLockIfFree } from "../../lib/fs/cleanup.ts";
import { deleteStorePath } from "../../lib/store/nix_store.ts";
import { startFileServer } from "../_server.ts";
import { randomBytes, requireLocalStore, requireTools, skip } from "../_tools.ts";
import {
  assertCacheKeepsNothing,
  assertStored,
  keepInCache,
  runPrefetch,
  tracedReads,
} from "./_resume.ts";

const PURPOSE = "a resumed download copied into the local store from another file system";
const SHM = "/dev/shm";

/** Why /dev/shm cannot hold a cache on another file system than /nix/store, or `undefined`. */
async function otherFileSystem(): Promise<string | undefined> {
  try {
    const [shm, store] = await Promise.all([Deno.stat(SHM), Deno.stat("/nix/store")]);
    if (!shm.isDirectory) return `${SHM} is not a folder`;
    if (shm.dev === store.dev) return `${SHM} and /nix/store are one file system (dev ${shm.dev})`;
    await Deno.makeTempDir({ dir: SHM, prefix: "resume-copy-probe-" }).then((d) => Deno.remove(d));
    return undefined;
  } catch (error) {
    return `${SHM} is not usable: ${(error as Error).message}`;
  }
}

const ok = await requireTools(PURPOSE, "strace") && await requireLocalStore(PURPOSE) &&
  await otherFileSystem().then((why) => why === undefined || skip(PURPOSE, why));

Deno.test({
  name:
    "prefetch() with a cache on another file system copies the kept bytes into the local store once, and keeps a cut-off download",
  // Before Deno 2.7 (no FsFile.tryLock) the store is written through nix-daemon alone.
  ignore: !ok || !canLockIfFree,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "resume-copy-" });
    const shm = await Deno.makeTempDir({ dir: SHM, prefix: "resume-copy-" });
    const body = randomBytes(4 * 1024 * 1024 + 123);
    const kept = 1_500_000;
    const cut = 1_000_000;
    // The first GET is cut off after `cut` bytes; the next one is served whole.
    await using server = startFileServer({
      routes: { "/f.bin": { body, headers: { ETag: '"r"' }, resetAfter: cut, faultTimes: 1 } },
    });
    const url = server.url("/f.bin");
    const name = `resume-copy-${crypto.randomUUID().slice(0, 8)}.bin`;
    const ranges = (): (string | undefined)[] =>
      server.requests.filter((r) => r.method === "GET").map((r) => r.headers["range"]);
    let storePath: string | undefined;
    try {
      const folder = join(shm, "cache");
      const data = await keepInCache(folder, url, body, kept);
      assert.notEqual((await Deno.stat(folder)).dev, (await Deno.stat("/nix/store")).dev);

      // Cut off on the copy route: the cache keeps what it had and what arrived.
      const first = await runPrefetch(dir, { url, folder, name, via: "local" }, join(dir, "t1"));
      assert.notEqual(first.code, 0, first.stdout);
      assert.deepEqual(ranges(), [`bytes=${kept}-`]);
      assert.ok(
        (await tracedReads(join(dir, "t1"), data, name)).crossDeviceRenames >= 1,
        "the kept bytes were not refused a move across file systems",
      );
      assert.equal((await Deno.stat(data)).size, kept + cut);

      // Continued from where it stopped, not from 0, the kept bytes copied.
      const trace = join(dir, "t2");
      const result = await runPrefetch(dir, { url, folder, name, via: "local" }, trace);
      assert.equal(result.code, 0, result.stderr);
      const printed = JSON.parse(result.stdout) as { storePath: string; size: number };
      storePath = printed.storePath;
      assert.equal(printed.size, body.length);
      assert.deepEqual(ranges(), [`bytes=${kept}-`, `bytes=${kept + cut}-`]);

      // The kept bytes read once, from the cache (copied as they were read);
      // the store's file is never read back.
      const reads = await tracedReads(trace, data, name);
      assert.ok(reads.crossDeviceRenames >= 1, reads.summary);
      assert.equal(reads.fromCache, kept + cut, reads.summary);
      assert.equal(reads.read, reads.fromCache, reads.summary);

      await assertStored(storePath, body);
      assertCacheKeepsNothing(folder);
    } finally {
      if (storePath !== undefined) await deleteStorePath(storePath);
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(shm, { recursive: true });
    }
  },
});
