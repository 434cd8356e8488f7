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
 * Telling whether an owner lives takes a lock without waiting
 * (`Deno.FsFile.tryLock`, Deno 2.7 and later). An older Deno (nixpkgs'
 * 2.6) has none, and a blocking lock would wait for the owner to end: there
 * {@linkcode lockIfFree} answers "held", so every owner counts as alive and
 * nothing is swept or taken over. The next run under a newer Deno removes
 * what is left.
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
    return await lockIfFree(file, true);
  } catch {
    return false;
  }
}

/** `Deno.FsFile.tryLock`, which Deno 2.7 added (nixpkgs' 2.6 has none). */
type TryLock = (this: Deno.FsFile, exclusive?: boolean) => Promise<boolean>;
const tryLock = (Deno.FsFile.prototype as unknown as { tryLock?: TryLock }).tryLock;

/**
 * Whether this Deno takes a lock without waiting (`Deno.FsFile.tryLock`,
 * Deno 2.7 and later). Without it {@linkcode lockIfFree} always answers
 * "held", so whatever needs to know that a lock is free (the local store's
 * GC lock) must not be done at all.
 *
 * @example Usage
 * ```ts
 * import { canLockIfFree } from "./cleanup.ts";
 * console.log(canLockIfFree ? "liveness known" : "every owner counts as alive");
 * ```
 */
export const canLockIfFree: boolean = typeof tryLock === "function";

/**
 * Takes an flock(2) on `file` without waiting: `true` when taken, `false`
 * when another process holds a conflicting one — or when this Deno cannot
 * try without waiting ({@linkcode canLockIfFree} is `false`), so that a
 * caller keeps what it cannot prove dead.
 *
 * @example Usage
 * ```ts
 * import { lockIfFree } from "./cleanup.ts";
 * using file = await Deno.open(await Deno.makeTempFile(), { read: true });
 * await lockIfFree(file, true); // true (on Deno 2.7 and later): nobody holds it
 * ```
 *
 * @param file The open file.
 * @param exclusive An exclusive lock, else a shared one.
 * @returns Whether the lock is now held by `file`.
 */
export async function lockIfFree(file: Deno.FsFile, exclusive: boolean): Promise<boolean> {
  if (tryLock === undefined) return false;
  return await tryLock.call(file, exclusive);
}
