/**
 * The gate of `update --gate CMD`: before flake.nix is rewritten, the
 * candidate flake is tried. The flake's folder is copied into a temporary
 * folder (without `.git`), the candidate flake.nix is written there, and
 * `sh -c CMD` runs in it with `ROCM_NIGHTLY_FLAKE` naming it — typically
 * `nix build "path:$ROCM_NIGHTLY_FLAKE#gpuChecks.x86_64-linux.smoke-gfx1151"`.
 * Exit 0 lets the update write; anything else stops it with the command's
 * last lines. The temporary folder is removed in every case.
 *
 * The command runs in a session (and process group) of its own, and the
 * whole group is ended before the folder goes: on a signal (an abort), and
 * after the command exits, whatever it left running. The group gets SIGTERM,
 * then {@linkcode GateOptions.graceMs} to end, then SIGKILL; the gate waits
 * until no live process of the group is left (zombies that an init which
 * does not reap keeps around do not count). The group is signalled and
 * watched through `sh` (`kill -s SIG -- -PGID`, /proc), within update's
 * `--allow-run=…,sh`: `Deno.kill` of a group would need `--allow-run` for
 * everything.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { onCleanup } from "../fs/cleanup.ts";
import { createTemporaryFolder, PRIVATE_FOLDER } from "../fs/temporaries.ts";

/** Options for {@linkcode runGate}. */
export interface GateOptions {
  /**
   * How many of the command's last output lines a failure shows.
   *
   * @default {20}
   */
  tailLines?: number;
  /**
   * Cancels the gate: the command's process group is ended (see
   * {@linkcode GateOptions.graceMs}) and the folder removed.
   */
  signal?: AbortSignal;
  /**
   * How long the command's process group gets to end after SIGTERM before
   * SIGKILL, in milliseconds. With the wait after SIGKILL it stays within
   * the 5 s a signalled script gives its work to unwind (lib/cli/cli.ts).
   *
   * @default {3000}
   */
  graceMs?: number;
}

/** Thrown when the gate command fails: the flake must not be written. */
export class GateFailedError extends Error {
  /** The command. */
  readonly command: string;
  /** Its exit code (128 + the signal's number when a signal ended it). */
  readonly code: number;
  /** Its last lines of output (stdout and stderr, interleaved as read). */
  readonly tail: string[];

  /**
   * Creates the error.
   *
   * @param command The gate command.
   * @param code Its exit code.
   * @param tail Its last lines of output.
   */
  constructor(command: string, code: number, tail: string[]) {
    super(
      `Cannot update: the gate ${JSON.stringify(command)} exited with ${code}; the flake was ` +
        `not changed\nIts last lines:\n${tail.map((line) => `  | ${line}`).join("\n")}`,
    );
    this.name = "GateFailedError";
    this.command = command;
    this.code = code;
    this.tail = tail;
  }
}

/**
 * Runs the gate command on a temporary copy of the flake's folder holding
 * the candidate flake.
 *
 * @param flake The flake file (its folder is copied).
 * @param candidate The candidate text of the flake file.
 * @param command The shell command (`sh -c`).
 * @param options Output lines to keep, cancellation.
 * @returns The command's last output lines when it exits 0.
 * @throws {GateFailedError} When the command exits non-zero.
 *
 * @example Usage
 * ```ts ignore
 * import { runGate } from "./update_gate.ts";
 *
 * await runGate("flake.nix", candidateText, 'nix flake check "path:$ROCM_NIGHTLY_FLAKE"');
 * ```
 */
export async function runGate(
  flake: string,
  candidate: string,
  command: string,
  options: GateOptions = {},
): Promise<string[]> {
  // Should the script exit before the command's group is ended (its work
  // took too long to unwind), runCleanups kills the group: registered before
  // the folder's removal, so it runs before it.
  const running: { group?: ProcessGroup | undefined } = {};
  using _group = onCleanup(() => running.group?.killSync());
  const folder = dirname(resolve(flake));
  // In TMPDIR's private folder (lib/fs/temporaries.ts): removed on a signal,
  // and swept by a later run after a SIGKILL, once its lock is free.
  const temporary = await createTemporaryFolder(temporaryDirectory(), "gate");
  const copy = join(temporary.path, "flake");
  try {
    await Deno.mkdir(copy);
    // The update's own lock file and our temporaries stay out too.
    const leaveOut = [".git", `.${basename(flake)}.update-lock`, PRIVATE_FOLDER];
    await copyTree(folder, copy, new Set(leaveOut));
    // A new file: were the copied flake.nix a symlink, writing through it
    // would change the user's real flake.
    const candidatePath = join(copy, basename(flake));
    await Deno.remove(candidatePath).catch(() => {});
    await Deno.writeTextFile(candidatePath, candidate, { createNew: true });
    const child = new Deno.Command("sh", {
      args: ["-c", command],
      cwd: copy,
      env: { ROCM_NIGHTLY_FLAKE: copy },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      // setsid(2): the command leads a process group of its own, which
      // holds everything it starts (unless that leaves the group itself).
      detached: true,
    }).spawn();
    const group = running.group = new ProcessGroup(child.pid, options.graceMs ?? 3000);
    const { promise: aborted, reject } = Promise.withResolvers<never>();
    const stop = (): void => reject(options.signal?.reason);
    aborted.catch(() => {});
    options.signal?.addEventListener("abort", stop, { once: true });
    if (options.signal?.aborted) stop();
    const tail = new Tail(options.tailLines ?? 20);
    const stopReading = new AbortController();
    const reading = Promise.all([
      tail.read(child.stdout, stopReading.signal),
      tail.read(child.stderr, stopReading.signal),
    ]);
    reading.catch(() => {});
    try {
      const status = await Promise.race([child.status, aborted]);
      // What the command left running goes too; then its pipes close.
      await group.end();
      await within(reading, DRAIN_MS);
      if (!status.success) throw new GateFailedError(command, status.code, tail.lines());
      return tail.lines();
    } finally {
      options.signal?.removeEventListener("abort", stop);
      // On an abort: SIGTERM, the grace period, SIGKILL, until none is left.
      await group.end();
      running.group = undefined;
      // A process that left the group may hold the pipes open: stop reading.
      stopReading.abort();
      await reading.catch(() => {});
      await within(child.status, DRAIN_MS);
    }
  } finally {
    await temporary.remove();
  }
}

/** TMPDIR, else /tmp: where Deno.makeTempDir would make a folder. */
function temporaryDirectory(): string {
  return Deno.env.get("TMPDIR") || "/tmp";
}

// The last lines of two streams, bounded in memory whatever the command prints.
class Tail {
  #max: number;
  #lines: string[] = [];
  constructor(max: number) {
    this.#max = max;
  }
  async read(stream: ReadableStream<Uint8Array>, signal: AbortSignal): Promise<void> {
    let partial = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream(), { signal })) {
      const parts = (partial + text).split("\n");
      partial = parts.pop()!.slice(-4096);
      for (const line of parts) this.#push(line);
    }
    if (partial !== "") this.#push(partial);
  }
  lines(): string[] {
    return [...this.#lines];
  }
  #push(line: string): void {
    this.#lines.push(line.length > 4096 ? `${line.slice(0, 4096)}…` : line);
    if (this.#lines.length > this.#max) this.#lines.shift();
  }
}

/** How long the output (and the command's status) is waited for once its group is gone. */
const DRAIN_MS = 2000;

/** Waits for `work` to settle, at most `ms`. */
async function within(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      work.catch(() => {}),
      new Promise((resolve) => timer = setTimeout(resolve, ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// `alive PGID`: whether the group still holds a live process. kill(2) with
// signal 0 answers for zombies too, and an init that does not reap (a
// container's) keeps killed orphans as zombies for good, so /proc tells the
// live ones (after the command name: field 1 the state, field 3 the group).
const ALIVE = `alive() {
  kill -s 0 -- "-$1" 2>/dev/null || return 1
  [ -r /proc/self/stat ] || return 0
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$f" || continue
    set -- "$1" \${line##*) }
    [ "$4" = "$1" ] && [ "$2" != Z ] && [ "$2" != X ] && return 0
  done
  return 1
}
`;

/** How long the group gets to go after SIGKILL. */
const KILL_WAIT_MS = 1000;

/**
 * The gate command's process group (its PGID is the command's PID: it is a
 * session leader). While a process of the group lives, no other process can
 * be given that number, so what is signalled is the command's own.
 */
class ProcessGroup {
  #pgid: string;
  #graceMs: number;
  #ending: Promise<void> | undefined;
  constructor(pgid: number, graceMs: number) {
    this.#pgid = String(pgid);
    this.#graceMs = graceMs;
  }

  /** Ends the group (once): SIGTERM, the grace period, SIGKILL; resolves when none is left. */
  end(): Promise<void> {
    return this.#ending ??= (async () => {
      if (!(await this.#alive())) return;
      await this.#signal("TERM");
      if (await this.#goneWithin(this.#graceMs)) return;
      await this.#signal("KILL");
      await this.#goneWithin(KILL_WAIT_MS);
    })();
  }

  /** SIGKILL and a bounded wait, synchronously: for a process about to exit. */
  killSync(): void {
    new Deno.Command("sh", {
      args: [
        "-c",
        `${ALIVE}kill -s KILL -- "-$1"\n` +
        `i=0; while alive "$1" && [ $i -lt 100 ]; do sleep 0.01; i=$((i + 1)); done`,
        "sh",
        this.#pgid,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).outputSync();
  }

  async #signal(name: "TERM" | "KILL"): Promise<void> {
    await this.#sh(`kill -s ${name} -- "-$1"`);
  }

  async #alive(): Promise<boolean> {
    return await this.#sh(`${ALIVE}alive "$1"`);
  }

  /** Polls until the group is gone, at most `ms` (and 200 polls). */
  async #goneWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    let pause = 10;
    for (let polls = 0; polls < 200; polls++) {
      if (!(await this.#alive())) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
      pause = Math.min(pause * 2, 200);
    }
    return !(await this.#alive());
  }

  async #sh(script: string): Promise<boolean> {
    const { success } = await new Deno.Command("sh", {
      args: ["-c", script, "sh", this.#pgid],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  }
}

// Files, folders and symlinks (as links); the flake's .git stays out (the
// copy is evaluated as a path, and a repository can be large).
async function copyTree(from: string, to: string, leaveOut: Set<string>): Promise<void> {
  for await (const entry of Deno.readDir(from)) {
    if (leaveOut.has(entry.name)) continue;
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isSymlink) await Deno.symlink(await Deno.readLink(source), target);
    else if (entry.isDirectory) {
      await Deno.mkdir(target);
      await copyTree(source, target, new Set([".git"]));
    } else if (entry.isFile) await Deno.copyFile(source, target);
  }
}
