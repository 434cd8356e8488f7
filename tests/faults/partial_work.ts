/**
 * One target's failure keeps the others' work (#21.3, #21.4): update run as
 * a user runs it, one target failing, then run again. Without a store the
 * finished and partial downloads stay in the download cache
 * ($XDG_CACHE_HOME/rocm-nightly) and the rerun continues each by Range; the
 * error names the failing target and suggests --skip for a missing file.
 * With a store, a finished tarball is in the store and the rerun asks the
 * server one HEAD for it (no byte of its body), and a partial download is in
 * the download cache as without one.
 *
 * @module
 */

import { deepEqual, equal, match } from "node:assert/strict";
import { renderTheRockIndex } from "../../lib/jobs/demo_mirror.ts";
import { canLockIfFree } from "../../lib/fs/cleanup.ts";
import { parseHash } from "../../lib/hash/hash.ts";
import { deleteStorePath, fixedOutputPath, isValidStorePath } from "../../lib/store/nix_store.ts";
import { type FileServer, startFileServer } from "../_server.ts";
import {
  assertFailedCleanly,
  type FaultCase,
  inTempDir,
  runScript,
  type ScriptResult,
  snapshot,
  sriOf,
  waitUntil,
} from "./_harness.ts";
import { OLD_HASH, registry, uniqueBytes, VERSION_NEW } from "./_fixtures.ts";

const FIRST = `therock-dist-linux-gfx1151-${VERSION_NEW}.tar.gz`;
const SECOND = `therock-dist-linux-gfx110X-all-${VERSION_NEW}.tar.gz`;

/** A registry tracking gfx1151 and gfx110X-all, at the server's folder. */
function twoTargets(baseUrl: string): string {
  return registry(baseUrl).replace(
    `gfx1151 = "${OLD_HASH}";`,
    `gfx1151 = "${OLD_HASH}";\n      gfx110X-all = null;`,
  );
}

function indexPage(): Uint8Array {
  return new TextEncoder().encode(
    renderTheRockIndex([{ name: FIRST, mtime: 2 }, { name: SECOND, mtime: 2 }]),
  );
}

/** The cache's data files and their sizes. */
function cached(cache: string): number[] {
  const folder = `${cache}/rocm-nightly`;
  return [...Deno.readDirSync(folder)]
    .filter((e) => e.name.endsWith(".data"))
    .map((e) => Deno.statSync(`${folder}/${e.name}`).size)
    .sort((a, b) => a - b);
}

/** The store path `update --add-to-store` gives the first tarball with these bytes. */
const storePathOf = (bytes: Uint8Array): string => fixedOutputPath(FIRST, parseHash(sriOf(bytes)));

/**
 * Serves the index and the first tarball (the second is a 404); `stalled`
 * cuts the tarball off once, after 200 000 bytes.
 */
function serveFirst(body: Uint8Array, stalled = false): FileServer {
  return startFileServer({
    routes: {
      "/tarball/": { body: indexPage(), contentType: "text/html" },
      [`/tarball/${FIRST}`]: stalled
        ? { body, headers: { ETag: '"s"' }, stallAfter: 200_000, faultTimes: 1 }
        : { body, headers: { ETag: '"1"' } },
    },
  });
}

/** Runs update and sends it SIGTERM once the stalled tarball has sent its 200 000 bytes. */
function updateKilledMidDownload(
  server: FileServer,
  args: string[],
  cache: string,
): Promise<ScriptResult> {
  return runScript("update", args, {
    env: { XDG_CACHE_HOME: cache },
    signal: {
      name: "SIGTERM",
      when: async (_pid, exited) => {
        const asked = (): boolean => server.requests.some((r) => r.path.endsWith(".tar.gz"));
        await waitUntil(asked, "the tarball's request", 10_000, 25, exited);
        // The stalled response has sent its 200 000 bytes.
        await new Promise((resolve) => setTimeout(resolve, 500));
      },
    },
  });
}

/**
 * Update is killed mid-download (the cache then keeps its 200 000 bytes),
 * `betweenRuns` checks what it must, and a rerun continues by Range: the
 * server sends the rest alone, and the flake gets the whole file's hash.
 */
async function killThenRerun(run: {
  server: FileServer;
  args: string[];
  cache: string;
  dir: string;
  body: Uint8Array;
  betweenRuns?: () => Promise<void>;
}): Promise<void> {
  const { server, args, cache, dir, body } = run;
  const killed = await updateKilledMidDownload(server, args, cache);
  await Deno.remove(killed.tmpdir, { recursive: true }).catch(() => {});
  equal(killed.code, 143, killed.stderr);
  deepEqual(cached(cache), [200_000]);
  await run.betweenRuns?.();
  const count = server.requests.length;
  const rerun = await runScript("update", args, { env: { XDG_CACHE_HOME: cache } });
  await Deno.remove(rerun.tmpdir, { recursive: true }).catch(() => {});
  equal(rerun.code, 0, rerun.stderr);
  const ranges = server.requests.slice(count).filter((r) => r.path.endsWith(".tar.gz"))
    .map((r) => r.headers["range"]);
  // 400 000 bytes served the second time, not 600 000.
  deepEqual(ranges, ["bytes=200000-"]);
  match(
    await Deno.readTextFile(`${dir}/flake.nix`),
    new RegExp(`gfx1151 = "${sriOf(body).replace(/[+/]/g, "\\$&")}"`),
  );
}

/** The cache folder's files with this suffix. */
const entries = (cache: string, suffix: string): string[] =>
  [...Deno.readDirSync(`${cache}/rocm-nightly`)].map((e) => e.name)
    .filter((name) => name.endsWith(suffix));

export const PARTIAL_WORK_CASES: FaultCase[] = [
  {
    name: "update: a 404 on the second target keeps the first in the download cache, " +
      "names the target and suggests --skip; the rerun fetches one byte of it",
    run: () =>
      inTempDir(async (dir) => {
        const first = uniqueBytes(50_000);
        await using server = serveFirst(first);
        const cache = `${dir}/cache`;
        await Deno.mkdir(`${dir}/flake`);
        await Deno.writeTextFile(`${dir}/flake/flake.nix`, twoTargets(server.url("/tarball/")));
        const before = snapshot(`${dir}/flake`);
        const args = ["--flake", `${dir}/flake/flake.nix`, "--jobs", "1"];
        const failed = await runScript("update", args, { env: { XDG_CACHE_HOME: cache } });
        await assertFailedCleanly(failed, {
          code: 1,
          stderr: new RegExp(
            `fetching gfx110X-all \\(${VERSION_NEW}\\) failed, nothing was written .*HTTP 404.*` +
              `gfx1151 is in the download cache; if ${VERSION_NEW} is broken for gfx110X-all, ` +
              `pass --skip ${VERSION_NEW}, or update the others alone: update gfx1151$`,
          ),
          unchanged: [before],
        });
        deepEqual(cached(cache), [first.length], "the finished download is kept");
        // The rerun the error suggests: the finished file is confirmed by its last byte.
        const count = server.requests.length;
        const rerun = await runScript("update", [...args, "gfx1151"], {
          env: { XDG_CACHE_HOME: cache },
        });
        await Deno.remove(rerun.tmpdir, { recursive: true }).catch(() => {});
        equal(rerun.code, 0, rerun.stderr);
        deepEqual(
          server.requests.slice(count).filter((r) => r.path.endsWith(".tar.gz"))
            .map((r) => [r.path, r.headers["range"]]),
          [[`/tarball/${FIRST}`, `bytes=${first.length - 1}-`]],
        );
        match(
          await Deno.readTextFile(`${dir}/flake/flake.nix`),
          new RegExp(
            `gfx1151 = "${sriOf(first).replace(/[+/]/g, "\\$&")}"`,
          ),
        );
        deepEqual(cached(cache), []);
      }),
  },
  {
    name:
      "update: SIGTERM mid-download without a store keeps the bytes; the rerun continues by Range",
    run: () =>
      inTempDir(async (dir) => {
        const body = uniqueBytes(600_000);
        await using server = serveFirst(body, true);
        const cache = `${dir}/cache`;
        await Deno.writeTextFile(`${dir}/flake.nix`, registry(server.url("/tarball/")));
        const args = ["--flake", `${dir}/flake.nix`, "--no-progress"];
        await killThenRerun({ server, args, cache, dir, body });
        deepEqual(cached(cache), [], "the entry goes once the flake holds the hash");
      }),
  },
  {
    name: "update --add-to-store: a 404 on the second target keeps the first in the store; " +
      "the rerun asks the server one HEAD for it, no byte of its body",
    run: () =>
      inTempDir(async (dir) => {
        const first = uniqueBytes(50_000);
        const storePath = storePathOf(first);
        await using server = serveFirst(first);
        try {
          const cache = `${dir}/cache`;
          await Deno.mkdir(`${dir}/flake`);
          await Deno.writeTextFile(`${dir}/flake/flake.nix`, twoTargets(server.url("/tarball/")));
          const before = snapshot(`${dir}/flake`);
          const args = ["--flake", `${dir}/flake/flake.nix`, "--jobs", "1", "--add-to-store"];
          const failed = await runScript("update", args, { env: { XDG_CACHE_HOME: cache } });
          await assertFailedCleanly(failed, {
            code: 1,
            stderr: new RegExp(
              `fetching gfx110X-all \\(${VERSION_NEW}\\) failed, nothing was written .*HTTP 404.*` +
                `gfx1151 is in the Nix store; if ${VERSION_NEW} is broken for gfx110X-all, `,
            ),
            unchanged: [before],
          });
          equal(await isValidStorePath(storePath), true, `${storePath} is in the store`);
          deepEqual(entries(cache, ".data"), [], "the bytes are in the store only");
          equal(entries(cache, ".stored").length, 1, "with a record in the download cache");
          const count = server.requests.length;
          const rerun = await runScript("update", [...args, "gfx1151"], {
            env: { XDG_CACHE_HOME: cache },
          });
          await Deno.remove(rerun.tmpdir, { recursive: true }).catch(() => {});
          equal(rerun.code, 0, rerun.stderr);
          deepEqual(
            server.requests.slice(count).filter((r) => r.path.endsWith(".tar.gz"))
              .map((r) => [r.method, r.path]),
            [["HEAD", `/tarball/${FIRST}`]],
          );
          match(
            await Deno.readTextFile(`${dir}/flake/flake.nix`),
            new RegExp(`gfx1151 = "${sriOf(first).replace(/[+/]/g, "\\$&")}"`),
          );
          deepEqual(entries(cache, ".stored"), [], "the record goes once the flake holds the hash");
        } finally {
          await deleteStorePath(storePath);
        }
      }),
  },
  {
    name: "update --add-to-store: SIGTERM mid-download keeps the bytes in the download cache; " +
      "the rerun continues by Range and adds the whole file to the store",
    run: () =>
      inTempDir(async (dir) => {
        if (!canLockIfFree) {
          // Before Deno 2.7 (no FsFile.tryLock) the store is written through
          // nix-daemon, whose bytes a cut-off download cannot keep.
          return console.log("  (no local-store route before Deno 2.7)");
        }
        const body = uniqueBytes(600_000);
        const storePath = storePathOf(body);
        await using server = serveFirst(body, true);
        try {
          const cache = `${dir}/cache`;
          await Deno.writeTextFile(`${dir}/flake.nix`, registry(server.url("/tarball/")));
          const args = ["--flake", `${dir}/flake.nix`, "--no-progress", "--add-to-store"];
          await killThenRerun({
            server,
            args,
            cache,
            dir,
            body,
            betweenRuns: async () =>
              equal(await isValidStorePath(storePath), false, "nothing in the store yet"),
          });
          equal(await isValidStorePath(storePath), true, `${storePath} is in the store`);
          deepEqual(cached(cache), [], "the bytes left the cache for the store");
        } finally {
          await deleteStorePath(storePath);
        }
      }),
  },
];
