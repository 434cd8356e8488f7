/**
 * A full or read-only target folder: a tmpfs of a few MiB mounted by the
 * test (we are root here), filled up or remounted read-only. prefetch -o,
 * update and image --output must fail in one line, leaving the folder as it
 * was (no temporary), the flake untouched and the store without the file.
 *
 * @module
 */

import { equal } from "node:assert/strict";
import {
  assertFailedCleanly,
  type FaultCase,
  inTempDir,
  runScript,
  snapshot,
  sriOf,
} from "./_harness.ts";
import { indexAndTarball, ok, registry, uniqueBytes } from "./_fixtures.ts";
import { startRawServer } from "./_raw_server.ts";
import { bigClosure } from "./signals.ts";
import { run } from "../_tools.ts";

/** Whether tmpfs can be mounted here; prints why not once (CI requires it). */
let mountable: Promise<boolean> | undefined;
export function canMount(): Promise<boolean> {
  return mountable ??= (async () => {
    const probe = await Deno.makeTempDir({ prefix: "fault-mount-" });
    try {
      const mounted = await run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]);
      if (mounted.code === 0) {
        await run("umount", [probe]);
        return true;
      }
      const reason =
        `disk-full and read-only cases: cannot mount a tmpfs (${mounted.stderr.trim()})`;
      if (Deno.env.get("CI") === "true") throw new Error(`${reason} (CI=true: they must run)`);
      console.log(`SKIP ${reason}`);
      return false;
    } finally {
      await Deno.remove(probe).catch(() => {});
    }
  })();
}

/** Runs `fn` with a 4 MiB tmpfs at a fresh folder, unmounted afterwards; skips when none can be had. */
async function withTmpfs(
  fn: (mount: string, dir: string) => Promise<void>,
  options: { fill?: boolean; readOnly?: boolean; prepare?: (mount: string) => Promise<void> } = {},
): Promise<void> {
  if (!await canMount()) return;
  await inTempDir(async (dir) => {
    const mount = `${dir}/target`;
    await Deno.mkdir(mount);
    const mounted = await run("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mount]);
    equal(mounted.code, 0, mounted.stderr);
    try {
      await Deno.writeTextFile(`${mount}/mine.txt`, "the user's own file\n");
      await options.prepare?.(mount);
      if (options.readOnly) {
        const ro = await run("mount", ["-o", "remount,ro", mount]);
        equal(ro.code, 0, ro.stderr);
      }
      if (options.fill) {
        // Up to ENOSPC (dd stops there, failing), then one page free again:
        // room for a lock file, none for the data.
        await Deno.writeFile(`${mount}/reserve`, new Uint8Array(4096));
        await run("dd", ["if=/dev/zero", `of=${mount}/filler`, "bs=4k"]);
        await Deno.remove(`${mount}/reserve`);
      }
      await fn(mount, dir);
    } finally {
      const unmounted = await run("umount", [mount]);
      equal(unmounted.code, 0, unmounted.stderr);
    }
  });
}

const FULL = /No space left on device|os error 28/;
const READ_ONLY = /Read-only file system|os error 30/;

export const DISK_CASES: FaultCase[] = [
  ...[
    { what: "full", fill: true, message: FULL },
    { what: "read-only", fill: false, message: READ_ONLY },
  ].flatMap(({ what, fill, message }): FaultCase[] => {
    const setup = fill ? { fill: true } : { readOnly: true };
    return [
      {
        name: `prefetch --add-to-store -o into a ${what} folder`,
        run: () =>
          withTmpfs(async (mount) => {
            const body = uniqueBytes(8 * 1024 * 1024);
            await using server = startRawServer(() => ok(body));
            const before = snapshot(mount);
            const name = `fault-${crypto.randomUUID().slice(0, 8)}.bin`;
            const result = await runScript("prefetch", [
              ...["--add-to-store", "--name", name, "-o", `${mount}/out.bin`],
              `${server.origin}/f`,
            ]);
            await assertFailedCleanly(result, {
              code: 1,
              stderr: message,
              unchanged: [before],
              notInStore: [{ name, hash: sriOf(body), unique: true }],
            });
          }, setup),
      },
      {
        name: `update of a flake in a ${what} folder`,
        run: async () => {
          const body = uniqueBytes(4096);
          await using server = startRawServer(indexAndTarball(() => ok(body)));
          await withTmpfs(async (mount) => {
            const before = snapshot(mount);
            const result = await runScript("update", ["--flake", `${mount}/flake.nix`]);
            await assertFailedCleanly(result, { code: 1, stderr: message, unchanged: [before] });
          }, {
            ...setup,
            prepare: (mount) =>
              Deno.writeTextFile(`${mount}/flake.nix`, registry(`${server.origin}/tarball/`)),
          });
        },
      },
      // Images are not fsynced: ENOSPC must come from the write that meets it.
      ...(["docker-archive", "oci"] as const).map((format): FaultCase => ({
        name: `image --format ${format} --output into a ${what} folder`,
        run: () =>
          withTmpfs(async (mount) => {
            const closure = await bigClosure();
            const before = snapshot(mount);
            const output = `${mount}/${format === "oci" ? "big" : "big.tar"}`;
            const result = await runScript("image", [
              ...["--closure", closure, "--name", "big", "--format", format, "--output", output],
            ]);
            await assertFailedCleanly(result, { code: 1, stderr: message, unchanged: [before] });
          }, setup),
      })),
    ];
  }),
];
