/**
 * The gate of `update --gate CMD`: before flake.nix is rewritten, the
 * candidate flake is tried. The flake's folder is copied into a temporary
 * folder (without `.git`), the candidate flake.nix is written there, and
 * `sh -c CMD` runs in it with `ROCM_NIGHTLY_FLAKE` naming it — typically
 * `nix build "path:$ROCM_NIGHTLY_FLAKE#gpuChecks.x86_64-linux.smoke-gfx1151"`.
 * Exit 0 lets the update write; anything else stops it with the command's
 * last lines. The temporary folder is removed in every case.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { holdTemporary, makeTemporaryFolder, onCleanup } from "../fs/cleanup.ts";

/** Options for {@linkcode runGate}. */
export interface GateOptions {
  /**
   * How many of the command's last output lines a failure shows.
   *
   * @default {20}
   */
  tailLines?: number;
  /** Cancels the gate: the command is killed and the folder removed. */
  signal?: AbortSignal;
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
  const folder = dirname(resolve(flake));
  // A temporary folder like prefetch's: removed on a signal (lib/fs/cleanup.ts),
  // and swept by a later run after a SIGKILL, once its owner file is unlocked.
  const temporary = await makeTemporaryFolder();
  using _cleanup = onCleanup(() => Deno.removeSync(temporary, { recursive: true }));
  const copy = join(temporary, "flake");
  try {
    using owner = await Deno.open(join(temporary, "owner"), { write: true, createNew: true });
    await holdTemporary(owner);
    await Deno.mkdir(copy);
    // The update's own lock file stays out too.
    await copyTree(folder, copy, new Set([".git", `.${basename(flake)}.update-lock`]));
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
    }).spawn();
    const { promise: aborted, reject } = Promise.withResolvers<never>();
    const kill = (): void => {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      reject(options.signal?.reason);
    };
    aborted.catch(() => {});
    options.signal?.addEventListener("abort", kill, { once: true });
    if (options.signal?.aborted) kill();
    try {
      const tail = new Tail(options.tailLines ?? 20);
      // On abort, stop waiting: the command's own children may hold its pipes open.
      await Promise.race([
        Promise.all([tail.read(child.stdout), tail.read(child.stderr)]),
        aborted,
      ]);
      const status = await Promise.race([child.status, aborted]);
      if (!status.success) throw new GateFailedError(command, status.code, tail.lines());
      return tail.lines();
    } finally {
      options.signal?.removeEventListener("abort", kill);
    }
  } finally {
    await Deno.remove(temporary, { recursive: true });
  }
}

// The last lines of two streams, bounded in memory whatever the command prints.
class Tail {
  #max: number;
  #lines: string[] = [];
  constructor(max: number) {
    this.#max = max;
  }
  async read(stream: ReadableStream<Uint8Array>): Promise<void> {
    let partial = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
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
