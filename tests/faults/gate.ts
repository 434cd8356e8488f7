/**
 * A signal while `update --gate` runs a command that leaves processes
 * behind: a background child, a shell that ignores SIGTERM, a child that
 * catches it. update must end the command's whole process group (SIGTERM,
 * then SIGKILL after a grace period), wait for it, and only then remove the
 * flake's copy and exit 128 + N: afterwards no process of the gate runs, the
 * copy is gone (TMPDIR is empty) and flake.nix is byte-identical.
 *
 * @module
 */

import { deepEqual, equal } from "node:assert/strict";
import {
  assertFailedCleanly,
  type FaultCase,
  inTempDir,
  runScript,
  snapshot,
  waitUntil,
} from "./_harness.ts";
import { indexAndTarball, ok, registry, uniqueBytes } from "./_fixtures.ts";
import { startRawServer } from "./_raw_server.ts";
import { killLeftovers, lingeringGates, stillRunning, writtenPids } from "../_gate_processes.ts";

const SIGNALS = [
  { name: "SIGTERM", code: 143 },
  { name: "SIGINT", code: 130 },
  { name: "SIGHUP", code: 129 },
] as const;

function gateCase(index: number, signal: (typeof SIGNALS)[number]): FaultCase {
  return {
    name: `${signal.name} while update --gate runs ${lingeringGates("")[index]!.name}`,
    run: () =>
      inTempDir(async (dir) => {
        await using server = startRawServer(indexAndTarball(() => ok(uniqueBytes(4096))));
        await Deno.mkdir(`${dir}/flake`);
        await Deno.writeTextFile(`${dir}/flake/flake.nix`, registry(`${server.origin}/tarball/`));
        const before = snapshot(`${dir}/flake`);
        // Outside the flake's folder and its copy.
        const pidFile = `${dir}/pids`;
        const gate = lingeringGates(pidFile)[index]!;
        try {
          const result = await runScript("update", [
            ...["--flake", `${dir}/flake/flake.nix`, "--gate", gate.command],
          ], {
            signal: {
              name: signal.name,
              when: (_, exited) =>
                waitUntil(
                  () => writtenPids(pidFile).length === gate.pids,
                  "the gate's processes",
                  15_000,
                  5,
                  exited,
                ),
            },
          });
          const pids = writtenPids(pidFile);
          equal(pids.length, gate.pids, `the gate wrote its PIDs: ${JSON.stringify(result)}`);
          // update has exited: what of the gate it left would still run now.
          deepEqual(stillRunning(pids), [], "no process of the gate runs");
          await assertFailedCleanly(result, {
            code: signal.code,
            stderr: new RegExp(`^update: Interrupted by ${signal.name}$`),
            unchanged: [before],
          });
        } finally {
          killLeftovers(pidFile);
        }
      }),
  };
}

export const GATE_CASES: FaultCase[] = lingeringGates("").flatMap((_, index) =>
  SIGNALS.map((signal) => gateCase(index, signal))
);
