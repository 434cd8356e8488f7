/**
 * Reading the kernel's files under `/sys`, `/proc` and `/dev`, which Deno 2
 * reserves for `--allow-all`.
 *
 * The rule, in plain words (checked with Deno 2.9.6, denoland/deno#27564):
 * - Deno refuses every stat, lstat, realPath, readDir, open and readFile of a
 *   path under `/sys`, `/proc` or `/dev` (`/dev/null` excepted), after
 *   following symlinks, with `NotCapable: Requires all access`, whatever
 *   `--allow-read` names (`--allow-read=/sys` too) and with `--allow-sys`;
 *   `node:fs` and `fetch("file:…")` are refused the same way. Only
 *   `--allow-all` lifts it.
 * - A child process is not under Deno's permissions: with
 *   `--allow-run=cat,ls`, `cat` reads such a file and `ls` lists such a
 *   folder. That grants reading (what `--allow-read` already grants, plus
 *   those three trees), never writing, the network or other programs: far
 *   narrower than `--allow-all`.
 * - So each function here first asks Deno, and only when Deno answers
 *   `NotCapable` asks `cat` or `ls` (found on PATH, run with an empty
 *   environment and `LC_ALL=C`, so their messages are the C locale's). Their
 *   output is bounded in bytes and their run in time: a FIFO or `/dev/zero`
 *   reached through a symlink ends in an error, never a hang.
 * - A tool's "No such file or directory" becomes `Deno.errors.NotFound`,
 *   "Not a directory" `Deno.errors.NotADirectory`, "Permission denied"
 *   `Deno.errors.PermissionDenied`, as Deno's own reads would throw. When the
 *   tools may not run (no `--allow-run=cat,ls`) the error is
 *   `Deno.errors.NotCapable` and says which flag is missing; when they are
 *   not on PATH, {@linkcode KernelToolError}.
 *
 * @module
 */

import { readRegularFile } from "./file_kind.ts";

/** The programs the fallback runs, as `--allow-run` must name them. */
export const KERNEL_FILE_TOOLS: readonly string[] = ["cat", "ls"];

/** The flag that lets the fallback run (the shebang of scripts/detect.ts has it). */
export const KERNEL_FILE_RUN_FLAG = `--allow-run=${KERNEL_FILE_TOOLS.join(",")}`;

/**
 * `cat` or `ls` could not do its part: not on PATH, killed, timed out, or
 * output more than allowed. The message names the path and what to do.
 */
export class KernelToolError extends Error {
  /**
   * Creates the error.
   *
   * @param message What failed.
   */
  constructor(message: string) {
    super(message);
    this.name = "KernelToolError";
  }
}

/** Options of {@linkcode readKernelFile}. */
export interface ReadKernelFileOptions {
  /** The most bytes the file may hold; more is a `RangeError`. */
  maxBytes: number;
  /**
   * How long `cat` may take, in milliseconds.
   *
   * @default {10000}
   */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_LISTING_BYTES = 1024 * 1024;
const MAX_STDERR_BYTES = 4096;

/**
 * Reads a regular file (through `readRegularFile`, so a FIFO, device or
 * folder is refused), or, where Deno may not read it (`/sys`, `/proc`,
 * `/dev` without `--allow-all`), through `cat`.
 *
 * @example Usage
 * ```ts
 * import { readKernelFile } from "./special_files.ts";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "110501\n");
 * new TextDecoder().decode(await readKernelFile(path, { maxBytes: 64 })); // "110501\n"
 * ```
 *
 * @param path The file.
 * @param options Its bound in bytes, and `cat`'s in time.
 * @returns Its bytes.
 * @throws {Deno.errors.NotFound} When it does not exist.
 * @throws {Deno.errors.NotCapable} When neither Deno nor `cat` may read it.
 * @throws {TypeError} When Deno reads it and it is not a regular file.
 * @throws {RangeError} When it holds more than `maxBytes`.
 * @throws {KernelToolError} When `cat` is missing, fails or times out.
 */
export async function readKernelFile(
  path: string,
  options: ReadKernelFileOptions,
): Promise<Uint8Array> {
  try {
    return await readRegularFile(path, { maxBytes: options.maxBytes });
  } catch (error) {
    // The same words whoever read it, Deno or cat (a Deno that may read /sys
    // itself, before 2.7, gives the system's).
    if (error instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`Cannot read "${path}": No such file or directory`);
    }
    if (!(error instanceof Deno.errors.NotCapable)) throw error;
    const output = await runTool("cat", path, error, {
      maxBytes: options.maxBytes,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    });
    if (output.length > options.maxBytes) {
      throw new RangeError(`Cannot read "${path}": it holds more than ${options.maxBytes} bytes`);
    }
    return output;
  }
}

/**
 * The names in a folder (`Deno.readDir`, or `ls -A` where Deno may not list
 * it), in no particular order.
 *
 * @example Usage
 * ```ts
 * import { listKernelFolder } from "./special_files.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/0`);
 * await listKernelFolder(dir); // ["0"]
 * ```
 *
 * @param path The folder.
 * @returns The names of its entries.
 * @throws {Deno.errors.NotFound} When it does not exist.
 * @throws {Deno.errors.NotADirectory} When it is not a folder.
 * @throws {Deno.errors.NotCapable} When neither Deno nor `ls` may list it.
 * @throws {KernelToolError} When `ls` is missing, fails or times out.
 */
export async function listKernelFolder(path: string): Promise<string[]> {
  try {
    const names: string[] = [];
    for await (const entry of Deno.readDir(path)) names.push(entry.name);
    return names;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable)) throw error;
    const output = await runTool("ls", path, error, {
      maxBytes: MAX_LISTING_BYTES,
      timeoutMs: DEFAULT_TIMEOUT_MS,
      args: ["-A", "--", path],
    });
    if (output.length > MAX_LISTING_BYTES) {
      throw new RangeError(`Cannot list "${path}": more than ${MAX_LISTING_BYTES} bytes of names`);
    }
    return new TextDecoder().decode(output).split("\n").filter((name) => name !== "");
  }
}

/** What {@linkcode kernelPathKind} found. */
export type KernelPathKind = "folder" | "missing" | "other";

/**
 * Whether a path is a folder (following symlinks), is missing, or is
 * something else: `Deno.stat`, or `ls -d PATH/` where Deno may not look.
 *
 * @example Usage
 * ```ts
 * import { kernelPathKind } from "./special_files.ts";
 *
 * await kernelPathKind(await Deno.makeTempDir()); // "folder"
 * await kernelPathKind("/nonexistent/folder"); // "missing"
 * ```
 *
 * @param path The path.
 * @returns Its kind.
 * @throws {Deno.errors.NotCapable} When neither Deno nor `ls` may look.
 * @throws {Error} When it cannot be looked at (permission denied, a loop…).
 */
export async function kernelPathKind(path: string): Promise<KernelPathKind> {
  try {
    return (await Deno.stat(path)).isDirectory ? "folder" : "other";
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "missing";
    if (!(error instanceof Deno.errors.NotCapable)) throw error;
    try {
      await runTool("ls", path, error, {
        maxBytes: MAX_STDERR_BYTES,
        timeoutMs: DEFAULT_TIMEOUT_MS,
        args: ["-d", "--", `${path}/`],
      });
      return "folder";
    } catch (failure) {
      if (failure instanceof Deno.errors.NotFound) return "missing";
      if (failure instanceof Deno.errors.NotADirectory) return "other";
      throw failure;
    }
  }
}

interface ToolRun {
  maxBytes: number;
  timeoutMs: number;
  args?: string[];
}

// Runs `tool` (default arguments: `-- path`) and returns at most
// maxBytes + 1 bytes of its stdout; a failure becomes the error Deno's own
// call would have thrown, or a KernelToolError.
async function runTool(
  tool: "cat" | "ls",
  path: string,
  refusal: Error,
  run: ToolRun,
): Promise<Uint8Array> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(tool, {
      args: run.args ?? ["--", path],
      // An empty environment: C-locale messages, and none of the variables
      // (LD_PRELOAD…) for which Deno refuses a spawn without --allow-all.
      clearEnv: true,
      env: { LC_ALL: "C" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      throw new Deno.errors.NotCapable(
        `Cannot read "${path}": ${refusal.message.replace(/, run again.*$/s, "")}; ` +
          `Deno reads /sys, /proc and /dev only with --allow-all, and without it this ` +
          `reads them through \`${tool}\`, which needs ${KERNEL_FILE_RUN_FLAG}`,
      );
    }
    throw new KernelToolError(
      `Cannot read "${path}": cannot run \`${tool}\` (${(error as Error).message}); ` +
        `Deno reads /sys, /proc and /dev only with --allow-all, so this reads them through ` +
        `\`${tool}\`: put coreutils on PATH`,
    );
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    kill(child);
  }, run.timeoutMs);
  try {
    const [stdout, stderr, status] = await Promise.all([
      readBounded(child.stdout, run.maxBytes + 1, () => kill(child)),
      readBounded(child.stderr, MAX_STDERR_BYTES, () => {}),
      child.status,
    ]);
    if (timedOut) {
      throw new KernelToolError(
        `Cannot read "${path}": \`${tool}\` gave no answer in ${run.timeoutMs / 1000} s ` +
          "(a FIFO or a device where a kernel file belongs?)",
      );
    }
    if (stdout.length > run.maxBytes) return stdout;
    if (status.success) return stdout;
    throw toolFailure(tool, path, new TextDecoder().decode(stderr), status);
  } finally {
    clearTimeout(timer);
  }
}

function kill(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch {
    // already ended
  }
}

// Reads a stream to its end, keeping at most `limit` bytes; at the limit it
// calls `full` (which kills the writer) and keeps draining.
async function readBounded(
  stream: ReadableStream<Uint8Array>,
  limit: number,
  full: () => void,
): Promise<Uint8Array> {
  const kept = new Uint8Array(limit);
  let filled = 0;
  for await (const chunk of stream) {
    const room = limit - filled;
    kept.set(chunk.subarray(0, room), filled);
    filled += Math.min(room, chunk.length);
    if (filled === limit) full();
  }
  return kept.subarray(0, filled);
}

function toolFailure(
  tool: string,
  path: string,
  stderr: string,
  status: Deno.CommandStatus,
): Error {
  const said = stderr.trim().split("\n").at(-1) ?? "";
  const reason = said.slice(said.lastIndexOf(": ") + 2);
  const message = `Cannot read "${path}": ${reason || `${tool} failed`}`;
  if (/No such file or directory/.test(said)) return new Deno.errors.NotFound(message);
  if (/Not a directory/.test(said)) return new Deno.errors.NotADirectory(message);
  if (/Permission denied/.test(said)) return new Deno.errors.PermissionDenied(message);
  if (/Is a directory/.test(said)) return new Deno.errors.IsADirectory(message);
  return new KernelToolError(
    `${message} (\`${tool}\` ended with ${
      status.signal === null ? `exit code ${status.code}` : status.signal
    })`,
  );
}
