/**
 * Temporaries that must not outlive the process: the hidden
 * `.<name>.<random>.tmp` of an atomic write, a `prefetch-*` folder, update's
 * lock file. Whoever creates one registers how to remove it, synchronously,
 * and disposes of the registration once it is gone (or committed). When a
 * signal ends a script (lib/cli.ts), whatever is still registered is
 * removed before the process exits.
 *
 * SIGKILL cannot be caught. For it the names carry the owner's PID (see
 * {@linkcode temporaryName}), so the next run of any script in that folder
 * removes leftovers whose owner is dead ({@linkcode removeDeadTemporaries}).
 *
 * Built-ins only: check-output and image run inside the Nix build sandbox.
 *
 * @module
 */

const registered = new Set<() => void>();

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
 * A name for a temporary file beside `name`: `.<name>.<pid>-<random>.tmp`.
 * Hidden, and carrying the PID of its owner so that a leftover of a killed
 * process can be told from one still being written.
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

/** `.<name>.<pid>-<random>.tmp` files, and `prefetch-<pid>-…` folders (`.prefetch-` beside a file). */
const TEMPORARY = /^(?:\..+\.(\d+)-[0-9a-z]+\.tmp|\.?prefetch-(\d+)-\w+)$/;

/**
 * Removes the temporaries of {@linkcode temporaryName} in `dir` whose owner
 * no longer runs, and the `prefetch-<pid>-…` folders of lib/prefetch.ts and
 * lib/nix_store.ts: what a SIGKILL left behind. Nothing is removed where
 * liveness cannot be told (no `/proc`).
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
  if (!await exists("/proc/self")) return 0;
  let removed = 0;
  try {
    for await (const entry of Deno.readDir(dir)) {
      const match = TEMPORARY.exec(entry.name);
      const pid = match?.[1] ?? match?.[2];
      if (pid === undefined || Number(pid) === Deno.pid || await exists(`/proc/${pid}`)) continue;
      if (!(match?.[1] === undefined ? entry.isDirectory : entry.isFile)) continue;
      await Deno.remove(`${dir}/${entry.name}`, { recursive: true }).then(
        () => removed++,
        () => {},
      );
    }
  } catch {
    // an unreadable folder holds nothing we can sweep
  }
  return removed;
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

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
