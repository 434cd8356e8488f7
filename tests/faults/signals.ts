/**
 * Every catchable signal (SIGTERM, SIGHUP, SIGINT) at every stage: listing
 * the index, downloading, adding to the store, rewriting flake.nix, writing
 * an image, checking an output. Loopback servers stall at the right moment
 * (or the test waits for the stage's temporary to appear) so the signal
 * lands mid-stage. Each run must exit 128 + the signal's number, print one
 * line, keep the user's files, leave no temporary and add nothing to the
 * store. SIGKILL cannot be caught: its leftovers are swept by the next run.
 *
 * @module
 */

import { equal, ok as assert } from "node:assert/strict";
import {
  assertFailedCleanly,
  type FaultCase,
  inTempDir,
  runScript,
  shared,
  snapshot,
  sriOf,
  waitUntil,
} from "./_harness.ts";
import { indexAndTarball, registry, uniqueBytes } from "./_fixtures.ts";
import { type RawReply, startRawServer } from "./_raw_server.ts";
import { markingNixDaemon, nixEnv, pathExistsSync, run } from "../_tools.ts";
import { canLockIfFree } from "../../lib/fs/cleanup.ts";

const SIGNALS = [
  { name: "SIGTERM", code: 143 },
  { name: "SIGHUP", code: 129 },
  { name: "SIGINT", code: 130 },
] as const;

const SIZE = 1024 * 1024;
const INTERRUPTED = (signal: string): RegExp =>
  new RegExp(`^\\w[\\w-]*: Interrupted by ${signal}$`);

/** The first 64 KiB of a body that promises more, then a stall. */
function stalling(body: Uint8Array): RawReply {
  return {
    head: `HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: ${body.length}`,
    body: body.subarray(0, 65536),
    stall: true,
  };
}

/** Whether a temporary of lib/fs/temporaries.ts for `name` exists in `dir`'s private folder. */
function hasTemporary(dir: string, name: string): boolean {
  const word = name.replace(/[^A-Za-z0-9_-]+/g, "-");
  try {
    return [...Deno.readDirSync(`${dir}/.rocm-nightly-tmp`)].some((e) =>
      e.name.endsWith(`-${word}`)
    );
  } catch {
    return false;
  }
}

/** A store path of `size` deterministic bytes (the same path on every run), and its closure file. */
async function makeBigClosure(dir: string, size: number): Promise<string> {
  const tree = `${dir}/big-tree`;
  await Deno.mkdir(`${tree}/lib`, { recursive: true });
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) bytes[i] = (i / 4096) & 0xff;
  await Deno.writeFile(`${tree}/lib/big.so`, bytes);
  await Deno.writeTextFile(`${tree}/README`, "a big file for the fault suite\n");
  const added = await run("nix-store", ["--add", tree], { env: nixEnv() });
  equal(added.code, 0, added.stderr);
  const info = await run("nix", ["path-info", "--json", added.stdout.trim()], { env: nixEnv() });
  equal(info.code, 0, info.stderr);
  await Deno.writeTextFile(`${dir}/closure.json`, info.stdout);
  return `${dir}/closure.json`;
}

/** Whether the store folder holds an entry named `<hash>-<name>` (valid or not). */
async function storeHolds(name: string): Promise<boolean> {
  for await (const entry of Deno.readDir("/nix/store")) {
    if (entry.name.endsWith(`-${name}`)) return true;
  }
  return false;
}

/** 64 MiB: writing its archive takes long enough for the signal to land mid-write. */
const BIG_CLOSURE = shared((dir) => makeBigClosure(dir, 64 * 1024 * 1024));

/** The closure file of a 64 MiB store path (shared; see disposeSignalFixtures). */
export function bigClosure(): Promise<string> {
  return BIG_CLOSURE.get();
}

/** 1,500 folders of 40 empty files: long enough a walk for the signal to land inside it. */
const BIG_OUTPUT = shared(async (dir) => {
  const out = `${dir}/out`;
  const made = await run("bash", [
    "-c",
    `mkdir -p "$1" && cd "$1" && mkdir {1..1500} && printf '%s\\n' {1..1500}/{1..40} | xargs touch`,
    "bash",
    out,
  ]);
  equal(made.code, 0, made.stderr);
  return out;
});

/** What the signal cases share, removed after them. */
export async function disposeSignalFixtures(): Promise<void> {
  await BIG_CLOSURE.dispose();
  await BIG_OUTPUT.dispose();
}

function stages(signal: (typeof SIGNALS)[number]): FaultCase[] {
  const { name: sig, code } = signal;
  const at = (when: (pid: number, exited: AbortSignal) => Promise<void>) => ({
    name: sig as Deno.Signal,
    when,
  });
  return [
    {
      name: `${sig} while update lists the index`,
      run: () =>
        inTempDir(async (dir) => {
          await using server = startRawServer(() => stalling(uniqueBytes(SIZE)));
          await Deno.writeTextFile(`${dir}/flake.nix`, registry(`${server.origin}/tarball/`));
          const before = snapshot(dir);
          const result = await runScript("update", ["--flake", `${dir}/flake.nix`], {
            signal: at(() => server.stalled("/tarball/")),
          });
          await assertFailedCleanly(result, {
            code,
            stderr: INTERRUPTED(sig),
            unchanged: [before],
          });
        }),
    },
    {
      name: `${sig} while prefetch -o --add-to-store downloads`,
      run: () =>
        inTempDir(async (dir) => {
          const body = uniqueBytes(SIZE);
          await using server = startRawServer(() => stalling(body));
          const before = snapshot(dir);
          const storeName = `fault-${crypto.randomUUID().slice(0, 8)}.bin`;
          const result = await runScript("prefetch", [
            ...["--add-to-store", "--name", storeName, "-o", `${dir}/out.bin`],
            `${server.origin}/f`,
          ], { signal: at(() => server.stalled("/f")) });
          await assertFailedCleanly(result, {
            code,
            stderr: INTERRUPTED(sig),
            unchanged: [before],
            notInStore: [{ name: storeName, hash: sriOf(body), unique: true }],
          });
        }),
    },
    {
      name: `${sig} while update --add-to-store downloads (lock and flake as they were)`,
      run: () =>
        inTempDir(async (dir) => {
          const body = uniqueBytes(SIZE);
          await using server = startRawServer(indexAndTarball(() => stalling(body)));
          await Deno.writeTextFile(`${dir}/flake.nix`, registry(`${server.origin}/tarball/`));
          const before = snapshot(dir);
          const { tarballName } = await import("./_fixtures.ts");
          const result = await runScript("update", [
            "--flake",
            `${dir}/flake.nix`,
            "--add-to-store",
          ], {
            signal: at(() => server.stalled(`/tarball/${tarballName()}`)),
          });
          await assertFailedCleanly(result, {
            code,
            stderr: INTERRUPTED(sig),
            unchanged: [before],
            notInStore: [{ name: tarballName(), hash: sriOf(body) }],
          });
        }),
    },
    ...(["daemon", "local"] as const).map((route) => ({
      name: route === "daemon"
        ? `${sig} while the download streams into the store through nix-daemon (nothing is added)`
        : `${sig} while the download is written into the local store (nothing is added or left)`,
      run: () =>
        inTempDir(async (dir) => {
          if (route !== "daemon" && !canLockIfFree) {
            // Before Deno 2.7 (no FsFile.tryLock) the store is written through nix-daemon.
            return console.log("  (no local-store route before Deno 2.7)");
          }
          const body = uniqueBytes(8192);
          const { ok } = await import("./_fixtures.ts");
          // Half the body, then a stall: the store file waits for the rest.
          await using server = startRawServer(() => ({
            ...ok(body),
            body: body.subarray(0, 4096),
            stall: true,
          }));
          const fake = await markingNixDaemon(dir);
          const storeName = `fault-${crypto.randomUUID().slice(0, 8)}.bin`;
          const started = route === "daemon" ? fake.ran : () => storeHolds(storeName);
          const result = await runScript("prefetch", [
            "--add-to-store",
            ...(route === "daemon" ? ["--via-daemon"] : []),
            "--name",
            storeName,
            `${server.origin}/f`,
          ], {
            env: { PATH: fake.PATH },
            signal: at(async (_, exited) => {
              await waitUntil(started, `the ${route} store file`, 15_000, 5, exited);
              await server.stalled("/f");
            }),
          });
          await assertFailedCleanly(result, {
            code,
            stderr: INTERRUPTED(sig),
            notInStore: [{ name: storeName, hash: sriOf(body), unique: true }],
          });
          if (route === "local") equal(await fake.ran(), false, "no nix-daemon was run");
        }),
    })),
    {
      name: `${sig} while rewrite writes flake.nix`,
      run: () =>
        inTempDir(async (dir) => {
          // 8 MiB of comment: the atomic write takes long enough to be caught in the act.
          const padding = `# ${"x".repeat(1022)}\n`.repeat(8 * 1024);
          const original = padding + registry("https://example.com/tarball/");
          await untilCaught(async () => {
            await Deno.writeTextFile(`${dir}/flake.nix`, original);
            const before = snapshot(dir);
            const result = await runScript("rewrite", [
              ...["--flake", `${dir}/flake.nix`, "--set", "nightly.version=7.12.0a20260310"],
            ], {
              signal: at((_, exited) =>
                waitUntil(() => hasTemporary(dir, "flake.nix"), "the temporary", 30_000, 1, exited)
              ),
            });
            if (result.code === 0) {
              // Done before the signal came: then it must be whole.
              equal(
                await Deno.readTextFile(`${dir}/flake.nix`),
                original.replace("7.12.0a20260308", "7.12.0a20260310"),
              );
              await Deno.remove(result.tmpdir, { recursive: true });
              return false;
            }
            await assertFailedCleanly(result, {
              code,
              stderr: INTERRUPTED(sig),
              unchanged: [before],
            });
            return true;
          });
        }),
    },
    imageCase(signal, "docker-archive"),
  ];
}

/** A signal while image writes a docker archive (a file) or an OCI layout (a folder). */
function imageCase(signal: (typeof SIGNALS)[number], format: "docker-archive" | "oci"): FaultCase {
  const { name: sig, code } = signal;
  const output = format === "oci" ? "big" : "big.tar";
  return {
    name: `${sig} while image writes ${format === "oci" ? "an OCI layout" : "an archive"}`,
    run: () =>
      inTempDir(async (dir) => {
        const closure = await BIG_CLOSURE.get();
        const images = `${dir}/images`;
        await Deno.mkdir(images);
        const before = snapshot(images);
        await untilCaught(async () => {
          const result = await runScript("image", [
            ...["--closure", closure, "--name", "big", "--format", format],
            ...["--output", `${images}/${output}`],
          ], {
            signal: {
              name: sig,
              when: (_, exited) =>
                waitUntil(() => hasTemporary(images, output), "the image", 30_000, 1, exited),
            },
          });
          if (result.code === 0) {
            await Deno.remove(`${images}/${output}`, { recursive: true });
            await Deno.remove(result.tmpdir, { recursive: true });
            return false;
          }
          await assertFailedCleanly(result, {
            code,
            stderr: INTERRUPTED(sig),
            unchanged: [before],
          });
          return true;
        });
      }),
  };
}

/**
 * Runs `attempt` until the signal lands mid-stage (it returns `true`), at
 * most 3 times: a stage that finished first (`false`) proved only that it
 * ends whole.
 */
async function untilCaught(attempt: () => Promise<boolean>): Promise<void> {
  for (let n = 0; n < 3; n++) if (await attempt()) return;
  throw new Error("the signal never landed mid-stage in 3 attempts");
}

/** check-output leaves signals their default action (it writes nothing): it ends at once, by the signal. */
function checkOutputCase(signal: (typeof SIGNALS)[number]): FaultCase {
  return {
    name:
      `${signal.name} while check-output walks an output (killed by the signal, nothing printed)`,
    run: async () => {
      const out = await BIG_OUTPUT.get();
      await untilCaught(async () => {
        const result = await runScript("check-output", [out], {
          signal: {
            name: signal.name,
            // Mid-walk: the walk holds a folder of the output open.
            when: (pid, exited) => watchFor(() => holdsFolderBelow(pid, out), 20_000, exited),
          },
        });
        await Deno.remove(result.tmpdir, { recursive: true });
        if (result.signal === null) return false; // the walk ended before it was seen
        equal(result.signal, signal.name, `ended by ${signal.name}: ${JSON.stringify(result)}`);
        equal(result.stdout, "", "no report");
        return true;
      });
    },
  };
}

/**
 * Polls `predicate` as fast as it can (50 checks between yields), at most
 * `timeoutMs`: a walk of a folder is over in microseconds. Resolves either
 * way; the caller tells a missed walk by its outcome.
 */
async function watchFor(
  predicate: () => boolean,
  timeoutMs: number,
  stop: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !stop.aborted) {
    for (let i = 0; i < 50; i++) if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  throw new Error("never seen");
}

function holdsFolderBelow(pid: number, folder: string): boolean {
  try {
    for (const fd of Deno.readDirSync(`/proc/${pid}/fd`)) {
      try {
        if (Deno.readLinkSync(`/proc/${pid}/fd/${fd.name}`).startsWith(`${folder}/`)) return true;
      } catch { /* closed meanwhile */ }
    }
  } catch { /* not started, or gone */ }
  return false;
}

export const SIGNAL_CASES: FaultCase[] = [
  ...SIGNALS.flatMap((signal) => [...stages(signal), checkOutputCase(signal)]),
  imageCase(SIGNALS[0], "oci"),
  {
    name: "SIGTERM while update's --gate runs: the command stops, its candidate copy is removed",
    run: () =>
      inTempDir(async (dir) => {
        const { ok } = await import("./_fixtures.ts");
        await using server = startRawServer(indexAndTarball(() => ok(uniqueBytes(4096))));
        await Deno.writeTextFile(`${dir}/flake.nix`, registry(`${server.origin}/tarball/`));
        const before = snapshot(dir);
        const marks = await Deno.makeTempDir({ prefix: "fault-gate-" });
        try {
          const started = `${marks}/started`;
          const result = await runScript("update", [
            ...["--flake", `${dir}/flake.nix`],
            ...["--gate", `touch '${started}'; exec sleep 30`],
          ], {
            signal: {
              name: "SIGTERM",
              when: (_, exited) =>
                waitUntil(() => pathExistsSync(started), "the gate", 15_000, 5, exited),
            },
          });
          await assertFailedCleanly(result, {
            code: 143,
            stderr: INTERRUPTED("SIGTERM"),
            unchanged: [before],
          });
        } finally {
          await Deno.remove(marks, { recursive: true });
        }
      }),
  },
  {
    name: "SIGKILL mid-download: the next run in that folder sweeps the leftover temporary",
    run: () =>
      inTempDir(async (dir) => {
        const body = uniqueBytes(SIZE);
        await using server = startRawServer(() => stalling(body));
        const killed = await runScript("prefetch", ["-o", `${dir}/out.bin`, `${server.origin}/f`], {
          signal: { name: "SIGKILL", when: () => server.stalled("/f") },
        });
        equal(killed.signal, "SIGKILL");
        assert(hasTemporary(dir, "out.bin"), "SIGKILL leaves the temporary");
        await Deno.remove(killed.tmpdir, { recursive: true });
        const { ok } = await import("./_fixtures.ts");
        await using good = startRawServer(() => ok(body));
        const next = await runScript("prefetch", ["-o", `${dir}/other.bin`, `${good.origin}/f`]);
        equal(next.code, 0, next.stderr);
        // Before Deno 2.7 no owner can be proved dead: the leftover is kept, never swept.
        equal(
          [...Deno.readDirSync(dir)].map((e) => e.name).sort().join(),
          canLockIfFree ? "other.bin" : ".rocm-nightly-tmp,other.bin",
        );
        await Deno.remove(next.tmpdir, { recursive: true });
      }),
  },
];
