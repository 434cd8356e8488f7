/**
 * Temporaries that must not outlive the process: the temporaries of
 * lib/fs/temporaries.ts (an atomic write's file, image's OCI folder, update's
 * gate copy), update's lock file, a file being written into the local store.
 * Whoever creates one registers how to remove it, synchronously, and
 * disposes of the registration once it is gone (or committed). When a
 * signal ends a script (lib/cli/cli.ts), whatever is still registered is
 * removed before the process exits.
 *
 * SIGKILL cannot be caught: lib/fs/temporaries.ts keeps each temporary in a
 * private folder under an flock(2) that the kernel drops with its owner, so
 * the next run removes what a killed one left.
 *
 * Built-ins only: check-output and image run inside the Nix build sandbox.
 *
 * @module
 */

const registered = new Set<() => void>();
const interruptController = new AbortController();

/**
 * Aborted, with an error saying which signal, when a signal interrupts the
 * process (lib/cli/cli.ts). Work that commits (the rename of an atomic write)
 * checks it just before, so a signal that came first leaves the old file.
 *
 * @example Usage
 * ```ts
 * import { interruption } from "./cleanup.ts";
 * interruption.throwIfAborted(); // throws once a signal came
 * ```
 */
export const interruption: AbortSignal = interruptController.signal;

/**
 * Marks the process as interrupted: aborts {@linkcode interruption} (once).
 *
 * @example Usage
 * ```ts ignore
 * import { interrupt } from "./cleanup.ts";
 * interrupt(new Error("Interrupted by SIGTERM"));
 * ```
 *
 * @param reason Why, as the error work will throw.
 */
export function interrupt(reason: Error): void {
  if (!interruption.aborted) interruptController.abort(reason);
}

/**
 * Registers `remove`, which deletes one temporary synchronously, to run if
 * the process is ended by a signal before the returned handle is disposed.
 *
 * @example Usage
 * ```ts
 * import { onCleanup } from "./cleanup.ts";
 *
 * const path = await Deno.makeTempFile();
 * const cleanup = onCleanup(() => Deno.removeSync(path));
 * // … work with the file …
 * await Deno.remove(path);
 * cleanup[Symbol.dispose]();
 * ```
 *
 * @param remove Removes the temporary; errors it throws are ignored.
 * @returns A handle whose disposal unregisters `remove` (without running it).
 */
export function onCleanup(remove: () => void): Disposable {
  registered.add(remove);
  return { [Symbol.dispose]: () => void registered.delete(remove) };
}

/**
 * Runs every registered removal once and forgets it: what a signal handler
 * calls just before the process exits.
 *
 * @example Usage
 * ```ts
 * import { onCleanup, runCleanups } from "./cleanup.ts";
 *
 * const path = await Deno.makeTempFile();
 * onCleanup(() => Deno.removeSync(path));
 * runCleanups(); // the file is gone
 * ```
 */
export function runCleanups(): void {
  for (const remove of [...registered]) {
    registered.delete(remove);
    try {
      remove();
    } catch {
      // already gone, or not ours to remove any more
    }
  }
}

/**
 * Whether no process holds a flock(2) on `path`: the owner of a temporary
 * (or of a lock file) is gone.
 *
 * @example Usage
 * ```ts
 * import { ownerGone } from "./cleanup.ts";
 * await ownerGone(await Deno.makeTempFile()); // true: nobody holds it
 * ```
 *
 * @param path The file.
 * @returns `false` while its owner lives, or when it cannot be opened.
 */
export async function ownerGone(path: string): Promise<boolean> {
  try {
    using file = await Deno.open(path, { read: true });
    return await file.tryLock(true);
  } catch {
    return false;
  }
}
