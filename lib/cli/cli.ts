/**
 * The shared ending of every script: run `main`, turn a thrown error into one
 * line on stderr, and exit with a code that means something — 0 success,
 * 1 the job failed, 2 the command line was wrong, 128 + the signal's number
 * when a signal ended it (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
 *
 * On SIGINT, SIGTERM or SIGHUP the in-flight work is aborted (see
 * {@linkcode abortOnInterrupt}); once it has unwound, or after at most 5 s,
 * the temporaries registered with lib/fs/cleanup.ts are removed and the process
 * exits. CI cancellation, `timeout` and systemd send SIGTERM, a closed
 * terminal SIGHUP.
 *
 * Built-ins only: check-output and image run inside the Nix build sandbox.
 *
 * @module
 */

import { interrupt, interruption, runCleanups } from "../fs/cleanup.ts";
import { displayText } from "./display.ts";

/**
 * A mistake on the command line: the script exits with code 2.
 *
 * @example Usage
 * ```ts
 * import { UsageError } from "./cli.ts";
 * const error = new UsageError('Invalid --jobs "x": expected a whole number');
 * error.name; // "UsageError"
 * ```
 */
export class UsageError extends Error {
  /** The error's name, for messages and logs. */
  override name = "UsageError";
}

/** A signal a script handles: SIGINT (Ctrl-C), SIGTERM or SIGHUP. */
export type HandledSignal = "SIGHUP" | "SIGINT" | "SIGTERM";

/** The signals a script handles, with their numbers on Linux. */
const SIGNALS: Record<HandledSignal, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/**
 * A signal (Ctrl-C by default) interrupted the script: it exits with code
 * 128 + the signal's number, as shells report it (130 for SIGINT).
 *
 * @example Usage
 * ```ts
 * import { InterruptedError } from "./cli.ts";
 * const controller = new AbortController();
 * controller.abort(new InterruptedError("SIGTERM"));
 * ```
 */
export class InterruptedError extends Error {
  /** The error's name, for messages and logs. */
  override name = "InterruptedError";
  /** The signal that interrupted the script. */
  readonly signal: HandledSignal;
  /**
   * Creates the error with the message "Interrupted by <signal>".
   *
   * @param signal The signal received.
   */
  constructor(signal: HandledSignal = "SIGINT") {
    super(`Interrupted by ${signal}`);
    this.signal = signal;
  }
}

/**
 * The exit code a script's error means: 2 for a usage error (including
 * `node:util` parseArgs' own), 128 + the signal's number for an interruption
 * (130 for SIGINT), 1 otherwise.
 *
 * @example Usage
 * ```ts
 * import { exitCodeOf, UsageError } from "./cli.ts";
 * exitCodeOf(new UsageError("no URL given")); // 2
 * exitCodeOf(new Error("HTTP 404")); // 1
 * ```
 *
 * @param error What the script threw.
 * @returns The exit code.
 */
export function exitCodeOf(error: unknown): number {
  if (error instanceof InterruptedError) return 128 + SIGNALS[error.signal];
  if (error instanceof UsageError) return 2;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS") ? 2 : 1;
}

/**
 * Runs a script's `main` with the process arguments and exits: with its
 * result, or after printing `<name>: <first line of the error>` on stderr with
 * {@linkcode exitCodeOf}'s code.
 *
 * @example Usage
 * ```ts ignore
 * import { runMain } from "./cli.ts";
 * async function main(args: string[]): Promise<number> {
 *   return args.length === 0 ? 0 : 1;
 * }
 * if (import.meta.main) await runMain("example", main);
 * ```
 *
 * @param name The script's name, prefixed to error lines.
 * @param main The script's body; resolves to its exit code.
 * @returns Never: the process exits.
 */
export async function runMain(
  name: string,
  main: (args: string[]) => Promise<number>,
  options: RunMainOptions = {},
): Promise<never> {
  if (options.handleSignals ?? true) listenForSignals();
  const stopped = new Promise<never>((_, reject) => {
    // The work gets a bounded time to unwind (an atomic write refuses to
    // commit once interrupted); then its temporaries are removed below.
    interrupts.addEventListener("abort", () => {
      setTimeout(() => reject(interrupts.reason), CLEANUP_BOUND_MS);
    }, { once: true });
  });
  stopped.catch(() => {});
  let code: number;
  try {
    code = await Promise.race([main(Deno.args), stopped]);
  } catch (error) {
    // Whatever a signal made the work throw, the signal is what ended it.
    const reason = interrupts.aborted ? interrupts.reason : error;
    const message = reason instanceof Error ? reason.message : String(reason);
    // One line: parseArgs and some system errors append more lines. No
    // secret of a URL and no control character a server sent gets through.
    console.error(`${name}: ${displayText(message.split("\n")[0]!)}`);
    code = exitCodeOf(reason);
  }
  // Work that finished despite the signal (it came after the commit) keeps
  // its exit code: its result stands, and was printed.
  if (interrupts.aborted) runCleanups();
  Deno.exit(code);
}

/** Options for {@linkcode runMain}. */
export interface RunMainOptions {
  /**
   * Whether SIGINT, SIGTERM and SIGHUP are caught to clean up. A script that
   * writes nothing and works synchronously (check-output) leaves them to
   * their default action, which ends it at once, mid-walk: a listener would
   * only run once the synchronous work was over.
   *
   * @default {true}
   */
  handleSignals?: boolean;
}

/** How long a signalled script waits for its work to unwind before it exits anyway. */
const CLEANUP_BOUND_MS = 5000;

/** Aborted with an {@linkcode InterruptedError} by the first handled signal. */
const interrupts: AbortSignal = interruption;
let listening = false;

/** Installs the listeners for SIGINT, SIGTERM and SIGHUP, once. */
function listenForSignals(): void {
  if (listening) return;
  listening = true;
  for (const signal of Object.keys(SIGNALS) as HandledSignal[]) {
    Deno.addSignalListener(signal, () => {
      interrupt(new InterruptedError(signal));
    });
  }
}

/**
 * Aborts `controller` with an {@linkcode InterruptedError} on SIGINT (Ctrl-C),
 * SIGTERM or SIGHUP, so downloads stop and clean up, until the returned
 * handle is disposed. Under {@linkcode runMain} the script then exits with
 * 128 + the signal's number.
 *
 * @example Usage
 * ```ts ignore
 * import { abortOnInterrupt } from "./cli.ts";
 * const controller = new AbortController();
 * using _interrupt = abortOnInterrupt(controller);
 * // … pass controller.signal to the work …
 * ```
 *
 * @param controller The controller to abort.
 * @returns A handle that removes the signal listener when disposed.
 */
export function abortOnInterrupt(controller: AbortController): Disposable {
  listenForSignals();
  const interrupt = (): void => controller.abort(interrupts.reason);
  if (interrupts.aborted) interrupt();
  interrupts.addEventListener("abort", interrupt, { once: true });
  return { [Symbol.dispose]: () => interrupts.removeEventListener("abort", interrupt) };
}
