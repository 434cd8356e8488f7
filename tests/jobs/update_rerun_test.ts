/**
 * A rerun of `update` with a Nix store keeps the work of the run that
 * failed (#21.3): a tarball added to the store is not downloaded again
 * (its hash comes from the download cache's record, checked by a HEAD and
 * the store path's validity), and a download cut off midway continues by
 * Range. The tarballs are random bytes, so their store paths are this
 * test's alone; each is deleted at the end.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { DownloadCache } from "../../lib/fetch/download_cache.ts";
import { canLockIfFree } from "../../lib/fs/cleanup.ts";
import { renderTheRockIndex } from "../../lib/jobs/demo_mirror.ts";
import { updateFlake, type UpdateOptions } from "../../lib/jobs/update.ts";
import { deleteStorePath, isValidStorePath } from "../../lib/store/nix_store.ts";
import { type FileServer, type Route, startFileServer } from "../_server.ts";
import { randomBytes, requireWritableStore, sriOf } from "../_tools.ts";

const store = await requireWritableStore("update reruns with a store");

const VERSION = "7.12.0a20260310";
const FIRST = `therock-dist-linux-gfx1151-${VERSION}.tar.gz`;
const SECOND = `therock-dist-linux-gfx110X-all-${VERSION}.tar.gz`;
const OLD_HASH = "sha256-rUhZSqJaTpuc2l6D1Q29oC0yTcTRRU/NO/JAFxaaVRA=";

interface Rerun extends AsyncDisposable {
  server: FileServer;
  cache: DownloadCache;
  flake: string;
  update(options?: UpdateOptions): ReturnType<typeof updateFlake>;
  /** The requests for the first tarball since `from`: method and Range. */
  firstRequests(from: number): string[];
  /** The cache folder's entry files (locks aside), by suffix. */
  cached(): string[];
}

/** Two targets at VERSION: the first served by `first`, the second a 404 unless `second`. */
async function setUp(first: Route, second?: Route): Promise<Rerun> {
  const dir = await Deno.makeTempDir({ prefix: "update-rerun-" });
  const page = new TextEncoder().encode(
    renderTheRockIndex([{ name: FIRST, mtime: 2 }, { name: SECOND, mtime: 2 }]),
  );
  const server = startFileServer({
    routes: {
      "/tarball/": { body: page, contentType: "text/html" },
      [`/tarball/${FIRST}`]: first,
      ...(second === undefined ? {} : { [`/tarball/${SECOND}`]: second }),
    },
  });
  const flake = join(dir, "flake.nix");
  await Deno.writeTextFile(
    flake,
    `{
  nightly = {
    baseUrl = "${server.url("/tarball/")}";
    version = "7.12.0a20260308";
    srcHashes = {
      gfx1151 = "${OLD_HASH}";
      gfx110X-all = null;
    };
  };
}
`,
  );
  const cache = await DownloadCache.open(join(dir, "cache"));
  const paths = new Set<string>();
  return {
    server,
    cache,
    flake,
    update: async (options = {}) => {
      const result = await updateFlake({
        flake,
        retries: 0,
        jobs: 1,
        addToStore: true,
        cache,
        ...options,
      });
      for (const t of result.targets) if (t.storePath !== undefined) paths.add(t.storePath);
      return result;
    },
    firstRequests: (from) =>
      server.requests.slice(from).filter((r) => r.path === `/tarball/${FIRST}`)
        .map((r) =>
          `${r.method}${r.headers["range"] === undefined ? "" : ` ${r.headers["range"]}`}`
        ),
    cached: () =>
      [...Deno.readDirSync(cache.folder)].map((e) => e.name.replace(/^[0-9a-f]{64}/, ""))
        .filter((n) => n !== ".rocm-nightly-cache" && n !== ".lock").sort(),
    [Symbol.asyncDispose]: async () => {
      await server.close();
      for (const path of paths) await deleteStorePath(path);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Fails on the 404 of the second target; returns the first's store path, as recorded. */
async function failOnSecond(r: Rerun, body: Uint8Array): Promise<string> {
  await assert.rejects(
    r.update(),
    /fetching gfx110X-all .*HTTP 404.*gfx1151 is in the Nix store/,
  );
  // The bytes went into the store; the cache keeps only the record.
  assert.deepEqual(r.cached(), [".stored"]);
  const record = await r.cache.stored(r.server.url(`/tarball/${FIRST}`));
  assert.ok(record !== undefined);
  assert.equal(record.hash, sriOf(body));
  assert.equal(record.size, body.length);
  assert.ok(await isValidStorePath(record.storePath), record.storePath);
  return record.storePath;
}

Deno.test({
  name: "updateFlake() with a store: after a 404 on the second target, " +
    "the rerun serves no byte of the first (in the store): one HEAD",
  ignore: !store,
  fn: async () => {
    const body = randomBytes(70_000);
    await using r = await setUp({ body, headers: { ETag: '"1"' } });
    const storePath = await failOnSecond(r, body);
    const count = r.server.requests.length;
    const result = await r.update({ only: ["gfx1151"] });
    assert.deepEqual(r.firstRequests(count), ["HEAD"]);
    const first = result.targets.find((t) => t.target === "gfx1151")!;
    assert.equal(first.newHash, sriOf(body));
    assert.equal(first.storePath, storePath);
    assert.match(
      await Deno.readTextFile(r.flake),
      new RegExp(`"${sriOf(body).replace(/[+/]/g, "\\$&")}"`),
    );
    // The flake holds the hash: the record has served.
    assert.deepEqual(r.cached(), []);
  },
});

Deno.test({
  name: "updateFlake() with a store downloads again when the server's ETag changed",
  ignore: !store,
  fn: async () => {
    const body = randomBytes(70_000);
    const changed = randomBytes(70_000);
    await using r = await setUp({
      body,
      headers: { ETag: '"1"' },
      changeAfter: { after: 1, body: changed, headers: { ETag: '"2"' } },
    });
    await failOnSecond(r, body);
    const count = r.server.requests.length;
    const result = await r.update({ only: ["gfx1151"] });
    assert.deepEqual(r.firstRequests(count), ["HEAD", "GET"]);
    assert.equal(result.targets.find((t) => t.target === "gfx1151")!.newHash, sriOf(changed));
  },
});

Deno.test({
  name: "updateFlake() with a store downloads again when the recorded store path was deleted",
  ignore: !store,
  fn: async () => {
    const body = randomBytes(70_000);
    await using r = await setUp({ body, headers: { ETag: '"1"' } });
    const storePath = await failOnSecond(r, body);
    assert.ok(await deleteStorePath(storePath));
    const count = r.server.requests.length;
    const result = await r.update({ only: ["gfx1151"] });
    // Not even a HEAD: the path's validity is asked first.
    assert.deepEqual(r.firstRequests(count), ["GET"]);
    const first = result.targets.find((t) => t.target === "gfx1151")!;
    assert.equal(first.newHash, sriOf(body));
    assert.equal(first.storePath, storePath);
    assert.ok(await isValidStorePath(storePath));
  },
});

Deno.test({
  name: "updateFlake() with a store: a download cut off midway continues by Range on the rerun",
  // Before Deno 2.7 (no FsFile.tryLock) the store is written through
  // nix-daemon, whose bytes a cut-off download cannot keep.
  ignore: !store || !canLockIfFree,
  fn: async () => {
    const body = randomBytes(600_000);
    await using r = await setUp({
      body,
      headers: { ETag: '"s"' },
      stallAfter: 200_000,
      faultTimes: 1,
    }, { body: randomBytes(1000) });
    const controller = new AbortController();
    let received = 0;
    const cut = r.update({
      signal: controller.signal,
      onProgress: (target, bytes) => {
        if (target !== "gfx1151") return;
        received = bytes;
        if (bytes >= 200_000) controller.abort(new Error("interrupted"));
      },
    });
    await assert.rejects(cut, /interrupted/);
    assert.equal(received, 200_000);
    assert.deepEqual(r.cached(), [".data", ".json"]);
    const count = r.server.requests.length;
    const result = await r.update();
    assert.deepEqual(r.firstRequests(count), ["GET bytes=200000-"]);
    const first = result.targets.find((t) => t.target === "gfx1151")!;
    assert.equal(first.newHash, sriOf(body));
    assert.ok(await isValidStorePath(first.storePath!));
    assert.deepEqual(r.cached(), []);
  },
});
