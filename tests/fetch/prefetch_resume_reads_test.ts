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
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DownloadCache } from "../../lib/fetch/download_cache.ts";
import { flatFileNar } from "../../lib/store/local_store.ts";
import { deleteStorePath } from "../../lib/store/nix_store.ts";
import { startFileServer } from "../_server.ts";
import { randomBytes, repoRoot, requireLocalStore, requireTools, run } from "../_tools.ts";

const ok = await requireTools("reads of a resumed download (system calls traced)", "strace") &&
  await requireLocalStore("a resumed download into the local store");

const PROGRAM = `
import { DownloadCache, prefetch } from ${JSON.stringify(`${repoRoot}/mod.ts`)};
const [url, folder, name, via] = Deno.args;
const cache = await DownloadCache.open(folder);
const viaDaemon = via === "daemon";
const result = await prefetch(url, { cache, addToStore: true, name, retries: 0, viaDaemon });
console.log(JSON.stringify({ storePath: result.storePath, size: result.size }));
`;

const READ = /^(?:read|pread64|readv|preadv2?)\(\d+<([^>]*)>.*\)\s+=\s+(\d+)$/;

for (const via of ["local", "daemon"]) {
  Deno.test({
    name:
      `prefetch() with a cache and a store (${via}) reads a resumed download's bytes at most once`,
    ignore: !ok,
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
    const cache = await DownloadCache.open(folder);
    const entry = (await cache.entry(url))!;
    entry.writer.begin?.(body.length, '"r"');
    await entry.writer.write(body.subarray(0, kept));
    await entry.close();
    const data = join(folder, `${createHash("sha256").update(url).digest("hex")}.data`);

    const program = join(dir, "program.ts");
    await Deno.writeTextFile(program, PROGRAM);
    const log = join(dir, "strace");
    const result = await run("strace", [
      ...["-f", "-ff", "-y", "-s", "0", "-o", log],
      ...["-e", "trace=read,pread64,readv,preadv,preadv2", "-e", "signal=none"],
      ...[Deno.execPath(), "run", "--no-config", "--allow-all", program, url, folder, name, via],
    ]);
    assert.equal(result.code, 0, result.stderr);
    const printed = JSON.parse(result.stdout) as { storePath: string; size: number };
    storePath = printed.storePath;
    assert.equal(printed.size, body.length);

    // Every read of the file, under either of its names (store paths of this name).
    let read = 0;
    let fromCache = 0;
    const byThread: string[] = [];
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.name.startsWith("strace.")) continue;
      for (const line of (await Deno.readTextFile(join(dir, entry.name))).split("\n")) {
        const match = READ.exec(line);
        if (match === null) continue;
        const path = match[1]!;
        if (path === data || (path.startsWith("/nix/store/") && path.endsWith(`-${name}`))) {
          read += Number(match[2]);
          if (path === data) fromCache += Number(match[2]);
          byThread.push(`${entry.name}: ${match[2]} from ${path}`);
        }
      }
    }
    // The kept bytes, once (on the local route from where they were moved
    // to in the store folder); before the change: those, then the whole file
    // again. nix-daemon (Nix 2.8) reads the path it wrote once more, for its
    // NAR hash; the local route reads nothing back.
    const reads = `bytes read from the file: ${read}\n${summary(byThread)}`;
    const ours = via === "daemon" ? fromCache : read;
    assert.ok(ours >= kept && ours < body.length, reads);
    assert.ok(read - ours <= (via === "daemon" ? body.length : 0), reads);
    assert.deepEqual(
      server.requests.filter((r) => r.method === "GET").map((r) => r.headers["range"]),
      [`bytes=${kept}-`],
    );

    // The store path is the fetchurl path of the bytes, valid, with their NAR hash.
    const hash = (await run("nix-store", ["-q", "--hash", storePath])).stdout.trim();
    const { head, tail } = flatFileNar(body.length);
    const nar = createHash("sha256").update(head).update(body).update(tail).digest("hex");
    const base16 = (await run("nix", ["hash", "to-base16", hash], {
      env: { NIX_CONFIG: "experimental-features = nix-command" },
    })).stdout.trim();
    assert.equal(base16, nar);
    const verify = await run("nix-store", ["--verify-path", storePath]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.deepEqual(await Deno.readFile(storePath), body);
    const info = await Deno.lstat(storePath);
    assert.equal(info.mode! & 0o777, 0o444);
    assert.equal(info.mtime?.getTime(), 1000);
    // The cache keeps only the record of the addition.
    assert.deepEqual(
      [...Deno.readDirSync(folder)].map((e) => e.name.slice(64)).filter((n) =>
        n === ".data" || n === ".json"
      ),
      [],
    );
  } finally {
    if (storePath !== undefined) await deleteStorePath(storePath);
    await Deno.remove(dir, { recursive: true });
  }
}

/** The reads, summed by thread and path. */
function summary(reads: string[]): string {
  const sums = new Map<string, number>();
  for (const line of reads) {
    const [, thread, n, path] = /^(\S+): (\d+) from (.*)$/.exec(line)!;
    sums.set(`${thread} ${path}`, (sums.get(`${thread} ${path}`) ?? 0) + Number(n));
  }
  return [...sums].map(([where, n]) => `${where}: ${n}`).join("\n");
}
