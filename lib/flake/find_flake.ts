/**
 * Which flake.nix `update`, `rewrite` and `status` work on when none is
 * named: the one `nix` would use.
 *
 * The rule, in plain words (Nix's own, from its flake reference parser):
 * - Start in the current folder. If it holds `flake.nix`, that is the one.
 * - Otherwise go up one folder at a time. In each, a `flake.nix` is the
 *   one; else a `.git` ends the search (a git repository's root belongs to
 *   itself, not to a flake above it); else a folder on another file system
 *   than the start ends it (a mount boundary); the file system's root `/`
 *   is never searched.
 * - Nothing found is a {@linkcode FlakeNotFoundError}: "No flake.nix here or
 *   above: pass --flake PATH", naming where the search stopped and why.
 *
 * A `flake.nix` counts when anything of that name is there (as for Nix,
 * which does not follow it first): reading it later refuses a folder or a
 * FIFO, with its own message.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";

/** Where {@linkcode findFlake} found a flake.nix. */
export interface FoundFlake {
  /**
   * The path to use: `"flake.nix"` when it is in the starting folder (as a
   * relative path, so messages read as before), else an absolute path.
   */
  path: string;
  /** The absolute path of the flake.nix. */
  absolute: string;
  /** Whether it is in a folder above the starting one (worth saying). */
  above: boolean;
}

/** Options of {@linkcode findFlake}. */
export interface FindFlakeOptions {
  /**
   * The folder the search starts in.
   *
   * @default {Deno.cwd()}
   */
  from?: string;
}

/** No flake.nix in the starting folder or any folder the search may reach. */
export class FlakeNotFoundError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was searched, and what to do.
   */
  constructor(message: string) {
    super(message);
    this.name = "FlakeNotFoundError";
  }
}

/**
 * Finds the flake.nix that `nix` would use from a folder: there, or in the
 * nearest folder above it, stopping at a git repository's root, a file
 * system boundary, or `/`.
 *
 * @example Usage
 * ```ts
 * import { findFlake } from "./find_flake.ts";
 *
 * const project = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${project}/flake.nix`, "{ outputs = _: { }; }\n");
 * await Deno.mkdir(`${project}/docs`);
 * const found = await findFlake({ from: `${project}/docs` });
 * found.above; // true
 * found.path === `${project}/flake.nix`; // true
 * ```
 *
 * @param options Where to start.
 * @returns The flake.nix found.
 * @throws {FlakeNotFoundError} When there is none.
 */
export async function findFlake(options: FindFlakeOptions = {}): Promise<FoundFlake> {
  const start = resolve(options.from ?? Deno.cwd());
  if (await present(join(start, "flake.nix"))) {
    return { path: "flake.nix", absolute: join(start, "flake.nix"), above: false };
  }
  const device = (await Deno.stat(start)).dev;
  let stop = "the file system's root";
  for (let dir = start; dir !== dirname(dir); dir = dirname(dir)) {
    if (await present(join(dir, "flake.nix"))) {
      const absolute = join(dir, "flake.nix");
      return { path: dir === start ? "flake.nix" : absolute, absolute, above: dir !== start };
    }
    if (await present(join(dir, ".git"))) {
      stop = `${dir}, a git repository's root`;
      break;
    }
    if ((await Deno.stat(dir)).dev !== device) {
      stop = `${dir}, on another file system`;
      break;
    }
  }
  throw new FlakeNotFoundError(
    "No flake.nix here or above: pass --flake PATH " +
      `(searched ${start} and up to ${stop}, where nix stops too)`,
  );
}

// Whether anything is at `path` (a dangling symlink too, as for Nix's lstat).
async function present(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return false;
    }
    throw error;
  }
}
