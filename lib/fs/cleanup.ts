/**
 * Temporaries that must not outlive the process: the hidden
 * `.<name>.<random>.tmp` of an atomic write, a `prefetch-*` folder, update's
 * lock file. Whoever creates one registers how to remove it, synchronously,
 * and disposes of the registration once it is gone (or committed). When a
 * signal ends a script (lib/cli/cli.ts), whatever is still registered is
 * removed before the process exits.
 *
 * SIGKILL cannot be caught. For it each temporary is flock(2)ed by its
 * owner while alive (see {@linkcode temporaryName}), so the next run of a
 * script in that folder removes leftovers whose owner is gone
 * ({@linkcode removeDeadTemporaries}).
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
 * A name for a temporary file beside `name`: `.<name>.<pid>-<random>.tmp`,
 * hidden, and naming its owner for people. Its owner holds an exclusive
 * flock(2) on it while it lives ({@linkcode holdTemporary}), which the kernel
 * drops when the owner dies, even by SIGKILL: that is how
 * {@linkcode removeDeadTemporaries} tells a leftover from a file being
 * written (Deno's permissions keep /proc out of reach of these scripts).
 *
 * @example Usage
 * ```ts
 * import { temporaryName } from "./cleanup.ts";
 * temporaryName("flake.nix"); // ".flake.nix.4242-k3j5x.tmp"
 * ```
 *
 * @param name The base name of the file the temporary will become.
 * @returns The temporary's base name.
 */
export function temporaryName(name: string): string {
  const random = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36);
  return `.${name}.${Deno.pid}-${random}.tmp`;
}

/**
 * Marks an open temporary as alive: an exclusive flock(2) on it, held until
 * the file is closed or the process ends.
 *
 * @example Usage
 * ```ts
 * import { holdTemporary } from "./cleanup.ts";
 * const path = await Deno.makeTempFile();
 * using file = await Deno.open(path, { write: true });
 * await holdTemporary(file);
 * ```
 *
 * @param file The open temporary.
 */
export async function holdTemporary(file: Deno.FsFile): Promise<void> {
  await file.tryLock(true);
}

/** `.<name>.<pid>-<random>.tmp` files, and `prefetch-<pid>-…` folders (`.prefetch-` beside a file). */
const TEMPORARY = /^(?:\..+\.\d+-[0-9a-z]+\.tmp|\.?prefetch-\d+-\w+)$/;
/** A folder younger than this may not hold its locked file yet. */
const FOLDER_GRACE_MS = 60_000;

/**
 * Removes the temporaries of {@linkcode temporaryName} in `dir` whose owner
 * is gone (no flock held on them), and the `prefetch-<pid>-…` folders of
 * lib/fetch/prefetch.ts that are over a minute old and hold
 * no locked file: what a SIGKILL left behind.
 *
 * @example Usage
 * ```ts
 * import { removeDeadTemporaries } from "./cleanup.ts";
 * await removeDeadTemporaries(await Deno.makeTempDir()); // 0
 * ```
 *
 * @param dir The folder to sweep.
 * @returns How many leftovers were removed.
 */
export async function removeDeadTemporaries(dir: string): Promise<number> {
  let removed = 0;
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!TEMPORARY.test(entry.name)) continue;
      const path = `${dir}/${entry.name}`;
      const dead = entry.isFile
        ? await ownerGone(path)
        : entry.isDirectory && await abandonedFolder(path);
      if (dead) await Deno.remove(path, { recursive: true }).then(() => removed++, () => {});
    }
  } catch {
    // an unreadable folder holds nothing we can sweep
  }
  return removed;
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

async function abandonedFolder(path: string): Promise<boolean> {
  const info = await Deno.lstat(path);
  if (Date.now() - (info.mtime?.getTime() ?? Date.now()) < FOLDER_GRACE_MS) return false;
  for await (const entry of Deno.readDir(path)) {
    if (entry.isFile && !await ownerGone(`${path}/${entry.name}`)) return false;
  }
  return true;
}

/**
 * Makes a `prefetch-<pid>-<random>` folder in `dir` (default: the system's
 * temporary folder), after sweeping that folder of the ones whose owner is
 * dead. The caller registers its removal with {@linkcode onCleanup}.
 *
 * @example Usage
 * ```ts
 * import { makeTemporaryFolder } from "./cleanup.ts";
 * const dir = await makeTemporaryFolder();
 * await Deno.remove(dir);
 * ```
 *
 * @param dir Where to make it.
 * @returns The new folder's path.
 */
export async function makeTemporaryFolder(dir?: string): Promise<string> {
  const prefix = `${dir === undefined ? "" : "."}prefetch-${Deno.pid}-`;
  const made = await Deno.makeTempDir(dir === undefined ? { prefix } : { dir, prefix });
  await removeDeadTemporaries(made.slice(0, made.lastIndexOf("/")) || "/");
  return made;
}
