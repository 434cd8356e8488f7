/**
 * Gate commands that leave processes behind, for the tests of `update
 * --gate`'s end (tests/jobs/update_gate_test.ts, tests/faults/gate.ts). Each
 * appends the PID of every process it starts to a file outside the flake's
 * copy, so the test can tell afterwards whether any of them still runs.
 *
 * @module
 */

/** A gate command, and how many PIDs it writes once all its processes run. */
export interface LingeringGate {
  /** What it does, for test names. */
  name: string;
  /** The `sh -c` command. */
  command: string;
  /** The number of PID lines written once everything runs. */
  pids: number;
}

/** Quotes `text` for sh. */
function quoted(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * The gates: (a) a background `sleep 300` child, waited for; (b) a shell that
 * ignores SIGTERM (so does its `sleep`, which inherits that); (c) a child
 * shell that catches SIGTERM and goes on looping.
 */
export function lingeringGates(pidFile: string): LingeringGate[] {
  const set = `PIDS=${quoted(pidFile)}; `;
  return [
    {
      name: "a gate waiting for a background sleep",
      command: `${set}sleep 300 & echo $! >> "$PIDS"; echo $$ >> "$PIDS"; wait`,
      pids: 2,
    },
    {
      name: "a gate that ignores SIGTERM",
      command: `${set}trap '' TERM; sleep 300 & echo $! >> "$PIDS"; echo $$ >> "$PIDS"; wait`,
      pids: 2,
    },
    {
      name: "a gate whose child catches SIGTERM",
      command: `${set}sh -c 'trap "echo caught TERM" TERM; echo $$ >> "$1"; ` +
        `while :; do sleep 1; done' sh "$PIDS" & echo $$ >> "$PIDS"; wait`,
      pids: 2,
    },
  ];
}

/** The PIDs written to `pidFile` so far. */
export function writtenPids(pidFile: string): number[] {
  let text = "";
  try {
    text = Deno.readTextFileSync(pidFile);
  } catch {
    return [];
  }
  return text.split("\n").filter((line) => /^\d+$/.test(line)).map(Number);
}

/** Those of `pids` that still run: alive and not a zombie (an init that never reaps keeps those). */
export function stillRunning(pids: number[]): number[] {
  return pids.filter((pid) => {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      return state !== "Z" && state !== "X";
    } catch {
      return false;
    }
  });
}

/** SIGKILLs whatever of `pidFile`'s PIDs still runs (a failed test's leftovers). */
export function killLeftovers(pidFile: string): void {
  for (const pid of stillRunning(writtenPids(pidFile))) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
}
