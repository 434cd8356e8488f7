// runGate(): the gate command runs in a process group of its own, and the
// whole group is ended (SIGTERM, a grace period, SIGKILL) before the copy of
// the flake goes, on an abort and after the command exits.
import assert from "node:assert/strict";
import { join } from "node:path";
import { runGate } from "../../lib/jobs/update_gate.ts";
import { pathExists, waitUntil, withTempDir } from "../_tools.ts";
import { killLeftovers, lingeringGates, stillRunning, writtenPids } from "../_gate_processes.ts";

const FLAKE = "{ outputs = _: { }; }\n";

/** Settles with `work`, or rejects after 20 s (the old runGate never returned here). */
function bounded<T>(work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("runGate() still running after 20 s")), 20_000);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A flake folder and, beside it, where the gate writes its PIDs and its copy's path. */
async function withFlake(
  fn: (flake: string, pidFile: string, copyFile: string) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "flake"));
    const flake = join(dir, "flake", "flake.nix");
    await Deno.writeTextFile(flake, FLAKE);
    const pidFile = join(dir, "pids");
    try {
      await fn(flake, pidFile, join(dir, "copy"));
      assert.equal(await Deno.readTextFile(flake), FLAKE, "flake.nix as it was");
    } finally {
      killLeftovers(pidFile);
    }
  });
}

for (const [index, { name }] of lingeringGates("").entries()) {
  Deno.test(`runGate() on abort ends the command's whole group: ${name}`, async () => {
    await withFlake(async (flake, pidFile, copyFile) => {
      const gate = lingeringGates(pidFile)[index]!;
      const controller = new AbortController();
      const reason = new Error("stop the gate");
      const command = `echo "$ROCM_NIGHTLY_FLAKE" > '${copyFile}'; ${gate.command}`;
      const gated = runGate(flake, "{ }\n", command, { signal: controller.signal });
      gated.catch(() => {});
      await waitUntil(
        () => writtenPids(pidFile).length === gate.pids,
        "the gate's processes",
        15_000,
        10,
      );
      controller.abort(reason);
      await assert.rejects(bounded(gated), (error) => error === reason);
      const pids = writtenPids(pidFile);
      assert.equal(pids.length, gate.pids);
      assert.deepEqual(stillRunning(pids), [], "no process of the gate runs");
      const copy = (await Deno.readTextFile(copyFile)).trim();
      assert.equal(await pathExists(copy), false, `the copy ${copy} is gone`);
    });
  });
}

Deno.test("runGate() that exits 0 ends what it left running, even holding its output", async () => {
  await withFlake(async (flake, pidFile) => {
    const command = `sleep 300 & echo $! >> '${pidFile}'; echo checked`;
    const lines = await bounded(runGate(flake, "{ }\n", command, {}));
    assert.deepEqual(lines, ["checked"]);
    const pids = writtenPids(pidFile);
    assert.equal(pids.length, 1);
    assert.deepEqual(stillRunning(pids), [], "the background sleep was ended");
  });
});

Deno.test("runGate() that fails keeps its last lines when a child it left is ended", async () => {
  await withFlake(async (flake, pidFile) => {
    const command = `sleep 300 >/dev/null 2>&1 & echo $! >> '${pidFile}'; ` +
      `echo one; echo two >&2; exit 4`;
    await assert.rejects(
      bounded(runGate(flake, "{ }\n", command, {})),
      (error: Error & { code?: number; tail?: string[] }) => {
        assert.equal(error.code, 4);
        assert.deepEqual([...(error.tail ?? [])].sort(), ["one", "two"]);
        return true;
      },
    );
    assert.deepEqual(stillRunning(writtenPids(pidFile)), [], "the background sleep was ended");
  });
});
