/**
 * Another writer, owners and hard links: update and rewrite edit flake.nix
 * as the user's file, not as any file of that name. An edit another process
 * makes while they write (their fsync slowed down with strace, so the edit
 * lands between the read and the rename) survives byte for byte and the tool
 * exits 1 saying so; the two tools exclude each other with one lock; run as
 * root they keep the file's owner, group and mode, and a user who cannot is
 * refused; a hard-linked flake.nix is refused rather than split.
 *
 * @module
 */

import { deepEqual, equal, match } from "node:assert/strict";
import { acquireLock } from "../../lib/fs/file_lock.ts";
import {
  assertFailedCleanly,
  type FaultCase,
  inTempDir,
  runScript,
  type ScriptResult,
  snapshot,
  waitUntil,
} from "./_harness.ts";
import {
  indexAndTarball,
  ok,
  registry,
  uniqueBytes,
  VERSION_NEW,
  VERSION_OLD,
} from "./_fixtures.ts";
import { type RawServer, startRawServer } from "./_raw_server.ts";
import { run } from "../_tools.ts";

const CHANGED =
  /^\w+: Cannot write ".*flake\.nix": the file changed since it was read .*; run again$/;
const HELD = (pid: number | string): RegExp =>
  new RegExp(
    `^\\w+: Cannot \\w+ ".*flake\\.nix": ".*/\\.flake\\.nix\\.update-lock" is held by process ${pid}\\b`,
  );
const HARD_LINKED =
  /^\w+: Cannot write ".*flake\.nix": it has 2 hard links, and replacing it would split them/;
const NOT_OURS =
  /^rewrite: Cannot write ".*flake\.nix": it belongs to uid 4321, gid 4321, .*run as its owner or as root$/;
const EDITED = "# edited by hand while the tool was writing\n";

/** Skips (or, with CI=true, fails) a case that needs what this machine lacks. */
function needs(what: string, ok: boolean): boolean {
  if (ok) return true;
  if (Deno.env.get("CI") === "true") throw new Error(`${what} (CI=true: these cases must run)`);
  console.log(`SKIP ${what}`);
  return false;
}

let tracing: Promise<boolean> | undefined;
/** Whether strace can delay a system call here (strace 5.3+, ptrace allowed). */
function canDelayFsync(): Promise<boolean> {
  return tracing ??= (async () => {
    const probe = await run("strace", [...slowFsync(1).slice(1), "true"]).catch(() => undefined);
    return needs(
      `edits made during the write: strace cannot delay fsync here (${probe?.stderr.trim()})`,
      probe?.code === 0,
    );
  })();
}

function asRoot(): boolean {
  return needs("owner cases: not root, so files cannot be given to another user", Deno.uid() === 0);
}

/** strace, delaying every fsync(2) by `ms`: the atomic write's flush, just before its check and rename. */
function slowFsync(ms: number): string[] {
  return [
    ...["strace", "-f", "--seccomp-bpf", "-o", "/dev/null", "-e", "trace=fsync"],
    ...["-e", `inject=fsync:delay_enter=${ms * 1000}`],
  ];
}

/** Whether flake.nix's temporary (`<random>-flake-nix`, not the lock's) is in `dir`'s private folder. */
function writingFlake(dir: string): boolean {
  const walk = (folder: string, depth: number): boolean =>
    [...Deno.readDirSync(folder)].some((entry) =>
      entry.isFile ? /^\d+-flake-nix$/.test(entry.name) : entry.isDirectory &&
        depth > 0 && walk(`${folder}/${entry.name}`, depth - 1)
    );
  try {
    return walk(dir, 1);
  } catch {
    return false; // an entry went while we looked
  }
}

/** Runs `act` once the tool is writing flake.nix's temporary, then waits for the tool. */
async function whileWriting(
  dir: string,
  running: Promise<ScriptResult>,
  act: () => Promise<void>,
): Promise<ScriptResult> {
  const ended = new AbortController();
  const result = running.finally(() => ended.abort());
  try {
    await waitUntil(() => writingFlake(dir), "flake.nix's temporary", 30_000, 2, ended.signal);
  } catch (error) {
    const early = await result;
    throw new Error(`${(error as Error).message}: ${JSON.stringify(early.stderr)}`);
  }
  await act();
  return await result;
}

/** Every file below `dir`, relative: what a run leaves must be flake.nix (and the user's own). */
function filesIn(dir: string, prefix = ""): string[] {
  return [...Deno.readDirSync(dir)].flatMap((entry) =>
    entry.isDirectory
      ? filesIn(`${dir}/${entry.name}`, `${prefix}${entry.name}/`)
      : [`${prefix}${entry.name}`]
  ).sort();
}

const setVersion = (flake: string): string[] => [
  ...["--flake", flake, "--set", `nightly.version=${VERSION_NEW}`],
];

/** A flake in `dir` served by a loopback index whose new tarball is `body`. */
async function servedFlake(
  dir: string,
  body: Uint8Array,
): Promise<{ server: RawServer; flake: string; text: string }> {
  const server = startRawServer(indexAndTarball(() => ok(body)));
  const flake = `${dir}/flake.nix`;
  const text = registry(`${server.origin}/tarball/`);
  await Deno.writeTextFile(flake, text);
  return { server, flake, text };
}

export const EDIT_CASES: FaultCase[] = [
  {
    name: "rewrite: flake.nix edited in place while the new file is fsynced",
    run: async () => {
      if (!await canDelayFsync()) return;
      await inTempDir(async (dir) => {
        const flake = `${dir}/flake.nix`;
        const text = registry("https://example.com/tarball/");
        await Deno.writeTextFile(flake, text);
        const result = await whileWriting(
          dir,
          runScript("rewrite", setVersion(flake), { under: slowFsync(1500) }),
          () => Deno.writeTextFile(flake, text + EDITED),
        );
        await assertFailedCleanly(result, { code: 1, stderr: CHANGED });
        equal(await Deno.readTextFile(flake), text + EDITED, "the other edit survives");
        deepEqual(filesIn(dir), ["flake.nix"], "no temporary, no lock");
      });
    },
  },
  {
    name: "update: flake.nix replaced by an editor while the new file is fsynced",
    run: async () => {
      if (!await canDelayFsync()) return;
      await inTempDir(async (dir) => {
        const { server, flake, text } = await servedFlake(dir, uniqueBytes(4096));
        await using _server = server;
        const result = await whileWriting(
          dir,
          runScript("update", ["--flake", flake], { under: slowFsync(1500) }),
          async () => {
            // As editors save: a new file renamed over the old one.
            await Deno.writeTextFile(`${dir}/flake.nix~`, text + EDITED);
            await Deno.rename(`${dir}/flake.nix~`, flake);
          },
        );
        await assertFailedCleanly(result, { code: 1, stderr: CHANGED });
        equal(await Deno.readTextFile(flake), text + EDITED, "the other edit survives");
        deepEqual(filesIn(dir), ["flake.nix"], "no temporary, no lock");
      });
    },
  },
  {
    name: "update while a rewrite of the same flake is writing: refused, naming the holder",
    run: async () => {
      if (!await canDelayFsync()) return;
      await inTempDir(async (dir) => {
        const flake = `${dir}/flake.nix`;
        // No request is made: the lock is taken before the file is read.
        const text = registry("http://127.0.0.1:9/tarball/");
        await Deno.writeTextFile(flake, text);
        let update: ScriptResult | undefined;
        // Long enough for update to start and reach the lock while rewrite holds it.
        const rewrite = await whileWriting(
          dir,
          runScript("rewrite", setVersion(flake), { under: slowFsync(5000) }),
          async () => void (update = await runScript("update", ["--flake", flake])),
        );
        await assertFailedCleanly(update!, { code: 1, stderr: HELD("\\d+") });
        equal(rewrite.code, 0, rewrite.stderr);
        await Deno.remove(rewrite.tmpdir, { recursive: true });
        equal(await Deno.readTextFile(flake), text.replace(VERSION_OLD, VERSION_NEW));
        deepEqual(filesIn(dir), ["flake.nix"], "no temporary, no lock");
      });
    },
  },
  {
    name: "rewrite while an update holds the flake's lock: refused, naming the holder",
    run: () =>
      inTempDir(async (dir) => {
        const flake = `${dir}/flake.nix`;
        await Deno.writeTextFile(flake, registry("https://example.com/tarball/"));
        await using _held = await acquireLock(`${dir}/.flake.nix.update-lock`);
        const before = snapshot(dir);
        const result = await runScript("rewrite", setVersion(flake));
        await assertFailedCleanly(result, { code: 1, stderr: HELD(Deno.pid), unchanged: [before] });
      }),
  },
  ...(["rewrite", "update"] as const).map((tool): FaultCase => ({
    name: `${tool} as root keeps flake.nix's owner 1234:5678 and mode 0640`,
    run: async () => {
      if (!asRoot()) return;
      await inTempDir(async (dir) => {
        const { server, flake } = await servedFlake(dir, uniqueBytes(4096));
        await using _server = server;
        await Deno.chown(flake, 1234, 5678);
        await Deno.chmod(flake, 0o640);
        const args = tool === "rewrite" ? setVersion(flake) : ["--flake", flake];
        const result = await runScript(tool, args);
        await Deno.remove(result.tmpdir, { recursive: true });
        equal(result.code, 0, result.stderr);
        match(await Deno.readTextFile(flake), new RegExp(`version = "${VERSION_NEW}"`));
        const info = await Deno.stat(flake);
        deepEqual([info.uid, info.gid, info.mode! & 0o7777], [1234, 5678, 0o640]);
      });
    },
  })),
  ...(["rewrite", "update"] as const).map((tool): FaultCase => ({
    name: `${tool} of a hard-linked flake.nix: refused, both names as they were`,
    run: () =>
      inTempDir(async (dir) => {
        const { server, flake } = await servedFlake(dir, uniqueBytes(4096));
        await using _server = server;
        await Deno.link(flake, `${dir}/registry.nix`);
        const before = snapshot(dir);
        const args = tool === "rewrite" ? setVersion(flake) : ["--flake", flake];
        const result = await runScript(tool, args);
        await assertFailedCleanly(result, { code: 1, stderr: HARD_LINKED, unchanged: [before] });
        // update refuses before it lists or downloads anything.
        deepEqual(server.requests.map((r) => r.path), []);
      }),
  })),
  {
    name: "rewrite by a user who is not flake.nix's owner: refused, owner and bytes kept",
    run: async () => {
      if (!asRoot() || !needs("the other-user case: setpriv is missing", await hasSetpriv())) {
        return;
      }
      await inTempDir(async (dir) => {
        // A folder the user may write in, a file of someone else they may write to.
        await Deno.chmod(dir, 0o777);
        const flake = `${dir}/flake.nix`;
        await Deno.writeTextFile(flake, registry("https://example.com/tarball/"));
        await Deno.chown(flake, 4321, 4321);
        await Deno.chmod(flake, 0o666);
        const denoDir = await Deno.makeTempDir({ prefix: "fault-deno-dir-" });
        try {
          await Deno.chown(denoDir, 1234, 5678);
          const before = snapshot(dir);
          const result = await runScript("rewrite", setVersion(flake), {
            under: ["setpriv", "--reuid=1234", "--regid=5678", "--clear-groups"],
            env: { DENO_DIR: denoDir, HOME: denoDir },
          });
          await assertFailedCleanly(result, { code: 1, stderr: NOT_OURS, unchanged: [before] });
          equal((await Deno.stat(flake)).uid, 4321);
        } finally {
          await Deno.remove(denoDir, { recursive: true });
        }
      });
    },
  },
];

async function hasSetpriv(): Promise<boolean> {
  return (await run("setpriv", ["--version"]).catch(() => undefined))?.code === 0;
}
