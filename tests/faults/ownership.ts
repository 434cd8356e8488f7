/**
 * A user's look-alike files, and SIGKILL at every stage: the sweep of
 * leftovers removes only what a run of this project provably made
 * (lib/fs/temporaries.ts), and every temporary a SIGKILL leaves is gone after
 * the next run.
 *
 * The look-alike cases fill each place a sweep runs (prefetch -o's folder,
 * rewrite's and update's flake folder, image --output's folder, TMPDIR of
 * update --gate) with files named like today's and the old scheme's
 * temporaries, old mtimes, a FIFO, a link to a user's folder and a folder
 * named like our private folder that is not ours; after real runs each stays
 * byte-identical. The SIGKILL cases kill each writer mid-write and show that
 * the next run leaves nothing: no private folder, no store file, no
 * temporary-roots file of the killed process.
 *
 * @module
 */

import { deepEqual, equal, ok as assert } from "node:assert/strict";
import {
  type FaultCase,
  inTempDir,
  runScript,
  type Snapshot,
  snapshot,
  waitUntil,
} from "./_harness.ts";
import { indexAndTarball, ok, registry, uniqueBytes } from "./_fixtures.ts";
import { type RawReply, startRawServer } from "./_raw_server.ts";
import { bigClosure } from "./signals.ts";
import { pathExistsSync, unregisteredInStore } from "../_tools.ts";
import { canLockIfFree } from "../../lib/fs/cleanup.ts";

const PRIVATE = ".rocm-nightly-tmp";
const STATE_DIR = "/nix/var/nix";

/** A user's files that look like our temporaries, old and new; `victim` is a folder of theirs. */
async function plantLookAlikes(dir: string, victim: string): Promise<void> {
  const old = new Date("2020-01-01T00:00:00Z");
  await Deno.mkdir(`${dir}/prefetch-2024-results`);
  await Deno.writeTextFile(`${dir}/prefetch-2024-results/data`, "the user's results\n");
  await Deno.writeTextFile(`${dir}/.notes.2024-draft.tmp`, "the user's draft\n");
  await Deno.writeTextFile(`${dir}/.flake.nix.4242-k3j5x.tmp`, "the user's file\n");
  await Deno.mkdir(`${dir}/.prefetch-1-abc`);
  await Deno.writeTextFile(`${dir}/.prefetch-1-abc/kept`, "x\n");
  for (const name of ["prefetch-2024-results", ".notes.2024-draft.tmp", ".prefetch-1-abc"]) {
    await Deno.utime(`${dir}/${name}`, old, old);
  }
  const fifo = new Deno.Command("mkfifo", { args: [`${dir}/.out.bin.1-fifo.tmp`] });
  equal((await fifo.output()).code, 0, "mkfifo");
  await Deno.symlink(victim, `${dir}/prefetch-99-link`);
  // Named like our private folder, but the user's: no marker, a group-writable mode.
  await Deno.mkdir(`${dir}/${PRIVATE}`);
  await Deno.chmod(`${dir}/${PRIVATE}`, 0o775);
  await Deno.writeTextFile(`${dir}/${PRIVATE}/123-out-bin`, "the user's\n");
  await Deno.writeTextFile(`${dir}/${PRIVATE}/123-out-bin.lock`, "");
  await Deno.utime(`${dir}/${PRIVATE}`, old, old);
}

/** A folder with look-alikes (and a victim folder they link to); returns the place. */
async function placeWithLookAlikes(dir: string, name = "place"): Promise<string> {
  const victim = `${dir}/victim`;
  await Deno.mkdir(victim, { recursive: true });
  await Deno.writeTextFile(`${victim}/precious`, "keep\n");
  const place = `${dir}/${name}`;
  await Deno.mkdir(place);
  await plantLookAlikes(place, victim);
  return place;
}

/** Asserts that `before`'s folder is as it was, but for `made` (what the run was asked to write). */
function assertSameBut(before: Snapshot, made: string[] = []): void {
  const after = snapshot(before.root);
  for (const name of made) {
    assert(after.entries.has(name), `the run wrote "${name}"`);
    for (const key of [...after.entries.keys()]) {
      if (key === name || key.startsWith(`${name}/`)) after.entries.delete(key);
    }
  }
  deepEqual(Object.fromEntries(after.entries), Object.fromEntries(before.entries));
}

/** The first 64 KiB of a body that promises more, then a stall. */
function stalling(body: Uint8Array): RawReply {
  return {
    head: `HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: ${body.length}`,
    body: body.subarray(0, 65536),
    stall: true,
  };
}

/** The names in `dir`. */
function entries(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name);
}

/** The store's journal entries (lib/store/local_store.ts) naming `what`. */
function journalsNaming(what: string): string[] {
  const found: string[] = [];
  for (let slot = 0; slot < 16; slot++) {
    const folder = `${STATE_DIR}/${slot === 0 ? PRIVATE : `${PRIVATE}-${slot}`}`;
    try {
      for (const entry of Deno.readDirSync(folder)) {
        if (!entry.isFile || entry.name.endsWith(".lock") || entry.name.startsWith(".")) continue;
        try {
          if (Deno.readTextFileSync(`${folder}/${entry.name}`).includes(what)) {
            found.push(`${folder}/${entry.name}`);
          }
        } catch { /* removed meanwhile */ }
      }
    } catch { /* no such folder */ }
  }
  return found;
}

async function cleanRun(
  script: string,
  args: string[],
  options: Parameters<typeof runScript>[2] = {},
): Promise<void> {
  const result = await runScript(script, args, options);
  try {
    equal(result.code, 0, `${script} succeeds: ${result.stderr}`);
    if (options.env?.TMPDIR === undefined) {
      deepEqual([...Deno.readDirSync(result.tmpdir)].map((e) => e.name), [], "TMPDIR left empty");
    }
  } finally {
    await Deno.remove(result.tmpdir, { recursive: true }).catch(() => {});
  }
}

const LOOK_ALIKES: FaultCase[] = [
  {
    name: "look-alikes in prefetch -o's folder stay byte-identical",
    run: () =>
      inTempDir(async (dir) => {
        const place = await placeWithLookAlikes(dir);
        const before = snapshot(place);
        await using server = startRawServer(() => ok(uniqueBytes(4096)));
        await cleanRun("prefetch", ["-o", `${place}/out.bin`, `${server.origin}/f`]);
        assertSameBut(before, ["out.bin"]);
      }),
  },
  {
    name: "look-alikes in rewrite's flake folder stay byte-identical",
    run: () =>
      inTempDir(async (dir) => {
        const place = await placeWithLookAlikes(dir);
        await Deno.writeTextFile(`${place}/flake.nix`, registry("https://example.com/tarball/"));
        const before = snapshot(place);
        await cleanRun("rewrite", [
          ...["--flake", `${place}/flake.nix`, "--set", "nightly.version=7.12.0a20260310"],
        ]);
        before.entries.delete("flake.nix");
        assertSameBut(before, ["flake.nix"]);
      }),
  },
  {
    name: "look-alikes in update's flake folder and in its --gate's TMPDIR stay byte-identical",
    run: () =>
      inTempDir(async (dir) => {
        const place = await placeWithLookAlikes(dir);
        const tmpdir = await placeWithLookAlikes(dir, "tmpdir");
        await using server = startRawServer(indexAndTarball(() => ok(uniqueBytes(4096))));
        await Deno.writeTextFile(`${place}/flake.nix`, registry(`${server.origin}/tarball/`));
        const before = snapshot(place);
        const beforeTmp = snapshot(tmpdir);
        await cleanRun("update", ["--flake", `${place}/flake.nix`, "--gate", "true"], {
          env: { TMPDIR: tmpdir },
        });
        before.entries.delete("flake.nix");
        assertSameBut(before, ["flake.nix"]);
        assertSameBut(beforeTmp);
      }),
  },
  {
    name: "look-alikes in image --output's folder stay byte-identical (an archive, an OCI layout)",
    run: () =>
      inTempDir(async (dir) => {
        const place = await placeWithLookAlikes(dir);
        const before = snapshot(place);
        for (const format of ["docker-archive", "oci"]) {
          await cleanRun("image", [
            ...["--closure", await bigClosure(), "--name", "big", "--format", format],
            ...["--output", `${place}/${format}`],
          ]);
        }
        assertSameBut(before, ["docker-archive", "oci"]);
      }),
  },
];

/** SIGKILLs `script` once `when` holds; the kill must land (the run must not end by itself). */
async function killWhen(
  script: string,
  args: string[],
  when: (pid: number, exited: AbortSignal) => Promise<void>,
  env: Record<string, string> = {},
): Promise<number> {
  let pid = 0;
  const result = await runScript(script, args, {
    env,
    signal: {
      name: "SIGKILL",
      when: async (child, exited) => {
        pid = child;
        await when(child, exited);
      },
    },
  });
  await Deno.remove(result.tmpdir, { recursive: true }).catch(() => {});
  equal(result.signal, "SIGKILL", `killed mid-stage: ${result.stderr}`);
  return pid;
}

const SIGKILLS: FaultCase[] = [
  {
    name: "SIGKILL while rewrite writes flake.nix: the next rewrite leaves no temporary",
    run: () =>
      inTempDir(async (dir) => {
        if (!canLockIfFree) return noSweep();
        const padding = `# ${"x".repeat(1022)}\n`.repeat(8 * 1024);
        await Deno.writeTextFile(`${dir}/flake.nix`, padding + registry("https://e.com/t/"));
        const args = ["--flake", `${dir}/flake.nix`, "--set", "nightly.version=7.12.0a20260310"];
        await killWhen("rewrite", args, (_, exited) =>
          waitUntil(
            () => entries(dir).length > 1,
            "the temporary",
            30_000,
            1,
            exited,
          ));
        assert(entries(dir).length > 1, "SIGKILL leaves the temporary");
        await cleanRun("rewrite", args);
        deepEqual(entries(dir), ["flake.nix"]);
      }),
  },
  {
    name: "SIGKILL while update --add-to-store downloads: the next update removes its store file",
    run: () =>
      inTempDir(async (dir) => {
        if (!canLockIfFree) return noLocalStore();
        const body = uniqueBytes(1024 * 1024);
        await using slow = startRawServer(indexAndTarball(() => stalling(body)));
        await Deno.writeTextFile(`${dir}/flake.nix`, registry(`${slow.origin}/tarball/`));
        const { tarballName } = await import("./_fixtures.ts");
        const args = ["--flake", `${dir}/flake.nix`, "--add-to-store"];
        // The store file the run writes, as its temporary roots name it just before the kill.
        let partials: string[] = [];
        const pid = await killWhen("update", args, async (child) => {
          await slow.stalled(`/tarball/${tarballName()}`);
          const roots = Deno.readTextFileSync(`${STATE_DIR}/temproots/${child}`);
          partials = roots.split("\0").filter((p) => p !== "");
        });
        const roots = `${STATE_DIR}/temproots/${pid}`;
        assert(partials.length > 0, "the run was writing a store file");
        await using server = startRawServer(indexAndTarball(() => ok(body)));
        await Deno.writeTextFile(`${dir}/flake.nix`, registry(`${server.origin}/tarball/`));
        await cleanRun("update", args);
        deepEqual(partials.filter(pathExistsSync), [], "the store file is gone");
        equal(pathExistsSync(roots), false, "the temporary-roots file is gone");
        deepEqual(entries(dir), ["flake.nix"]);
      }),
  },
  {
    name: "SIGKILL while prefetch -o downloads: the next prefetch leaves no temporary",
    run: () =>
      inTempDir(async (dir) => {
        const body = uniqueBytes(1024 * 1024);
        await using slow = startRawServer(() => stalling(body));
        await killWhen("prefetch", ["-o", `${dir}/out.bin`, `${slow.origin}/f`], () =>
          slow.stalled("/f"));
        assert(entries(dir).length > 0, "SIGKILL leaves the temporary");
        await using good = startRawServer(() =>
          ok(body)
        );
        await cleanRun("prefetch", ["-o", `${dir}/other.bin`, `${good.origin}/f`]);
        // Before Deno 2.7 no owner can be proved dead: the leftover is kept, never swept.
        deepEqual(entries(dir), canLockIfFree ? ["other.bin"] : [".rocm-nightly-tmp", "other.bin"]);
      }),
  },
  ...([false, true] as const).map((withOutput) => ({
    name: `SIGKILL while prefetch ${
      withOutput ? "-o " : ""
    }writes into the local store: the next run removes the store file and the temporary-roots file`,
    run: () =>
      inTempDir(async (dir) => {
        if (!canLockIfFree) return noLocalStore();
        const body = uniqueBytes(8192);
        const storeName = `fault-${crypto.randomUUID().slice(0, 8)}.bin`;
        await using slow = startRawServer(() => ({
          ...ok(body),
          body: body.subarray(0, 4096),
          stall: true,
        }));
        const output = withOutput ? ["-o", `${dir}/out.bin`] : [];
        const args = ["--add-to-store", "--name", storeName, ...output];
        const pid = await killWhen("prefetch", [...args, `${slow.origin}/f`], async (_, exited) => {
          await waitUntil(
            async () => (await unregisteredInStore(storeName)).length > 0,
            "the store file",
            15_000,
            5,
            exited,
          );
          await slow.stalled("/f");
        });
        // What the kill left (the store file, the temporary-roots file) may be
        // swept already by a run of a case beside this one: the next run's own.
        await using good = startRawServer(() => ok(body));
        const other = `fault-${crypto.randomUUID().slice(0, 8)}.bin`;
        await cleanRun("prefetch", ["--add-to-store", "--name", other, `${good.origin}/f`]);
        deepEqual(await unregisteredInStore(storeName), [], "the store file is gone");
        equal(
          pathExistsSync(`${STATE_DIR}/temproots/${pid}`),
          false,
          "the temporary-roots file is gone",
        );
        deepEqual(journalsNaming(storeName), [], "and its journal");
        if (withOutput) {
          await cleanRun("prefetch", ["-o", `${dir}/again.bin`, `${good.origin}/f`]);
          deepEqual(entries(dir), ["again.bin"]);
        }
      }),
  })),
  {
    name: "SIGKILL while image writes an OCI layout: the next image run leaves no temporary",
    run: () =>
      inTempDir(async (dir) => {
        if (!canLockIfFree) return noSweep();
        const closure = await bigClosure();
        const args = (out: string): string[] => [
          ...["--closure", closure, "--name", "big", "--format", "oci", "--output", out],
        ];
        // At most three tries: the write may end before it is seen.
        for (let attempt = 0;; attempt++) {
          const result = await runScript("image", args(`${dir}/big`), {
            signal: {
              name: "SIGKILL",
              when: (_, exited) =>
                waitUntil(() => entries(dir).length > 0, "the image", 30_000, 1, exited),
            },
          });
          await Deno.remove(result.tmpdir, { recursive: true });
          if (result.signal === "SIGKILL") break;
          await Deno.remove(`${dir}/big`, { recursive: true });
          if (attempt === 2) throw new Error("the image was never caught mid-write");
        }
        assert(entries(dir).length > 0, "SIGKILL leaves the temporary folder");
        await cleanRun("image", args(`${dir}/small`));
        deepEqual(entries(dir), ["small"]);
      }),
  },
  {
    name: "SIGKILL while update's --gate runs: the next update leaves its TMPDIR empty",
    run: () =>
      inTempDir(async (dir) => {
        await using server = startRawServer(indexAndTarball(() => ok(uniqueBytes(4096))));
        const flake = `${dir}/flake/flake.nix`;
        await Deno.mkdir(`${dir}/flake`);
        await Deno.writeTextFile(flake, registry(`${server.origin}/tarball/`));
        const tmpdir = `${dir}/tmp`;
        await Deno.mkdir(tmpdir);
        const started = `${dir}/gate-pid`;
        try {
          await killWhen(
            "update",
            ["--flake", flake, "--gate", `echo $$ > '${started}'; exec sleep 30`],
            (_, exited) => waitUntil(() => pathExistsSync(started), "the gate", 15_000, 5, exited),
            { TMPDIR: tmpdir },
          );
        } finally {
          // The gate outlives a SIGKILLed update: end it here.
          await waitUntil(() => Deno.readTextFileSync(started).trim() !== "", "its pid", 5_000)
            .catch(() => {});
          const gate = Number(Deno.readTextFileSync(started).trim());
          if (gate > 0) Deno.kill(gate, "SIGKILL");
        }
        assert([...Deno.readDirSync(tmpdir)].length > 0, "SIGKILL leaves the gate's copy");
        if (!canLockIfFree) {
          // Before Deno 2.7 the killed update's lock cannot be proved stale: refused, kept.
          const next = await runScript("update", ["--flake", flake, "--gate", "true"], {
            env: { TMPDIR: tmpdir },
          });
          equal(next.code, 1, next.stderr);
          assert(/update-lock" is held by process \d+/.test(next.stderr), next.stderr);
          await Deno.remove(next.tmpdir, { recursive: true });
          return;
        }
        await cleanRun("update", ["--flake", flake, "--gate", "true"], { env: { TMPDIR: tmpdir } });
        deepEqual(entries(tmpdir), [], "TMPDIR left empty");
      }),
  },
];

/** Deno before 2.7 never takes the local-store route (lib/store/local_store.ts). */
function noSweep(): void {
  console.log(
    `  (Before Deno 2.7 (no FsFile.tryLock) no run can tell a killed owner from a live one: its leftovers, and its lock, are kept)`,
  );
}

function noLocalStore(): void {
  console.log(
    `  (Before Deno 2.7 (no FsFile.tryLock) the store is written through nix-daemon: no local-store file to kill)`,
  );
}

export const OWNERSHIP_CASES: FaultCase[] = [...LOOK_ALIKES, ...SIGKILLS];
