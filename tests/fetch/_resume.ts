/**
 * Helpers for the tests of a download the cache kept bytes of, continued
 * into the Nix store: an earlier run's kept bytes, a prefetch in a process
 * of its own (traced by strace when asked), the reads of the file it made,
 * and the checks of the store path and of the cache it leaves.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DownloadCache } from "../../lib/fetch/download_cache.ts";
import { flatFileNar } from "../../lib/store/local_store.ts";
import { repoRoot, run, type RunResult } from "../_tools.ts";

/** Prefetches `url` into the store through the cache `folder`; prints the result as JSON. */
const PROGRAM = `
import { DownloadCache, prefetch } from ${JSON.stringify(`${repoRoot}/mod.ts`)};
const [url, folder, name, via] = Deno.args;
const cache = await DownloadCache.open(folder);
const viaDaemon = via === "daemon";
const result = await prefetch(url, { cache, addToStore: true, name, retries: 0, viaDaemon });
console.log(JSON.stringify({ storePath: result.storePath, size: result.size }));
`;

const READ = /^(?:read|pread64|readv|preadv2?)\(\d+<([^>]*)>.*\)\s+=\s+(\d+)$/;
const CROSS_DEVICE_RENAME = /^rename(?:at2?)?\(.*\)\s+=\s+-1 EXDEV\b/;

/**
 * Keeps the first `kept` bytes of `body` in the cache at `folder` for `url`,
 * as a cut-off download leaves them (ETag `"r"`).
 *
 * @returns The path of the entry's `.data` file.
 */
export async function keepInCache(
  folder: string,
  url: string,
  body: Uint8Array,
  kept: number,
): Promise<string> {
  const cache = await DownloadCache.open(folder);
  const entry = (await cache.entry(url))!;
  entry.writer.begin?.(body.length, '"r"');
  await entry.writer.write(body.subarray(0, kept));
  await entry.close();
  return dataPath(folder, url);
}

/** The `.data` file of `url`'s entry in the cache at `folder`. */
export function dataPath(folder: string, url: string): string {
  return join(folder, `${createHash("sha256").update(url).digest("hex")}.data`);
}

/** A prefetch run, and where its trace went. */
export interface PrefetchRun extends RunResult {
  /** The folder of the trace files (`strace.<pid>`), when traced. */
  traced?: string;
}

/**
 * Runs a prefetch of `url` into the store (`via` "local" or "daemon")
 * through the cache at `folder` in a process of its own, under strace
 * (reads and renames, by the descriptor's path) when `trace` names a folder.
 */
export async function runPrefetch(
  dir: string,
  args: { url: string; folder: string; name: string; via: string },
  trace?: string,
): Promise<PrefetchRun> {
  const program = join(dir, "program.ts");
  await Deno.writeTextFile(program, PROGRAM);
  const deno = [
    Deno.execPath(),
    ...["run", "--no-config", "--allow-all", program],
    ...[args.url, args.folder, args.name, args.via],
  ];
  if (trace === undefined) return await run(deno[0]!, deno.slice(1));
  await Deno.mkdir(trace, { recursive: true });
  const calls = "read,pread64,readv,preadv,preadv2,rename,renameat,renameat2";
  const result = await run("strace", [
    ...["-f", "-ff", "-y", "-s", "0", "-o", join(trace, "strace")],
    ...["-e", `trace=${calls}`, "-e", "signal=none"],
    ...deno,
  ]);
  return { ...result, traced: trace };
}

/** What a traced run read of the file, under either of its names. */
export interface TracedReads {
  /** Bytes read from the cache's `.data` or from a store path named `name`. */
  read: number;
  /** Of those, bytes read from the cache's `.data`. */
  fromCache: number;
  /** The reads summed by thread and path, for a failure's message. */
  summary: string;
  /** How many renames failed with EXDEV (across file systems). */
  crossDeviceRenames: number;
}

/** Sums the reads of the file (`data`, or a store path ending in `-name`) in a trace folder. */
export async function tracedReads(trace: string, data: string, name: string): Promise<TracedReads> {
  let read = 0;
  let fromCache = 0;
  let crossDeviceRenames = 0;
  const sums = new Map<string, number>();
  for await (const entry of Deno.readDir(trace)) {
    if (!entry.name.startsWith("strace.")) continue;
    for (const line of (await Deno.readTextFile(join(trace, entry.name))).split("\n")) {
      if (CROSS_DEVICE_RENAME.test(line)) crossDeviceRenames++;
      const match = READ.exec(line);
      if (match === null) continue;
      const path = match[1]!;
      const n = Number(match[2]);
      if (path === data || (path.startsWith("/nix/store/") && path.endsWith(`-${name}`))) {
        read += n;
        if (path === data) fromCache += n;
        const where = `${entry.name} ${path}`;
        sums.set(where, (sums.get(where) ?? 0) + n);
      }
    }
  }
  const summary = [`bytes read from the file: ${read}`, ...sums].map((line) =>
    typeof line === "string" ? line : `${line[0]}: ${line[1]}`
  ).join("\n");
  return { read, fromCache, summary, crossDeviceRenames };
}

/**
 * Checks that `storePath` holds `body` as fetchurl adds it: valid, with the
 * NAR hash of the bytes, mode 0444, mtime 1.
 */
export async function assertStored(storePath: string, body: Uint8Array): Promise<void> {
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
}

/** Checks that the cache at `folder` keeps no bytes and no partial record (only records of additions). */
export function assertCacheKeepsNothing(folder: string): void {
  assert.deepEqual(
    [...Deno.readDirSync(folder)].map((e) => e.name.slice(64)).filter((n) =>
      n === ".data" || n === ".json"
    ),
    [],
  );
}
