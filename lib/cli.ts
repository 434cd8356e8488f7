/**
 * The shared ending of every script: run `main`, turn a thrown error into one
 * line on stderr, and exit with a code that means something — 0 success,
 * 1 the job failed, 2 the command line was wrong, 130 interrupted.
 *
 * Built-ins only: check-output and image run inside the Nix build sandbox.
 *
 * @module
 */

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

/**
 * The user interrupted the script (Ctrl-C): it exits with code 130, as
 * shells report a SIGINT.
 *
 * @example Usage
 * ```ts
 * import { InterruptedError } from "./cli.ts";
 * const controller = new AbortController();
 * controller.abort(new InterruptedError());
 * ```
 */
export class InterruptedError extends Error {
  /** The error's name, for messages and logs. */
  override name = "InterruptedError";
  /** Creates the error with the message "Interrupted". */
  constructor() {
    super("Interrupted");
  }
}

/**
 * The exit code a script's error means: 2 for a usage error (including
 * `node:util` parseArgs' own), 130 for an interruption, 1 otherwise.
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
  if (error instanceof InterruptedError) return 130;
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
): Promise<never> {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // One line: parseArgs and some system errors append more lines.
    console.error(`${name}: ${message.split("\n")[0]}`);
    code = exitCodeOf(error);
  }
  Deno.exit(code);
}

/**
 * Aborts `controller` with an {@linkcode InterruptedError} on Ctrl-C, so
 * downloads stop and clean up, until the returned handle is disposed.
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
  const interrupt = (): void => controller.abort(new InterruptedError());
  Deno.addSignalListener("SIGINT", interrupt);
  return { [Symbol.dispose]: () => Deno.removeSignalListener("SIGINT", interrupt) };
}
