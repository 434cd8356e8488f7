/**
 * `update --commit`, as nix-update's `--commit`: once flake.nix is written,
 * commit it with git, with the message update printed. Only flake.nix goes
 * into the commit: whatever else is staged stays staged, uncommitted
 * (`git commit -- <file>` commits the named path only). A flake.nix git does
 * not track yet is added first. Needs `--allow-run=git`.
 *
 * @module
 */

import { basename, dirname } from "node:path";

/** Options for {@linkcode commitFile}. */
export interface GitCommitOptions {
  /** Stops git (it is killed) and fails the commit. */
  signal?: AbortSignal;
}

/**
 * Commits one file with git in its folder's repository, with `message`.
 *
 * @example Usage
 * ```ts ignore
 * import { commitFile } from "./update_commit.ts";
 *
 * const commit = await commitFile("flake.nix", "rocm-nightly: 7.12.0a20260308 -> 7.12.0a20260309");
 * console.log(`committed ${commit}`);
 * ```
 *
 * @param file The file (flake.nix), as given to update.
 * @param message The commit message.
 * @param options A signal to stop git.
 * @returns The new commit's abbreviated hash.
 * @throws {Error} When git is missing, not allowed, the folder is in no
 * repository, or the commit fails: the message ends with git's last line.
 */
export async function commitFile(
  file: string,
  message: string,
  options: GitCommitOptions = {},
): Promise<string> {
  const folder = dirname(file);
  const name = basename(file);
  const git = async (args: string[]): Promise<string> => {
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command("git", {
        args: ["-C", folder, ...args],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      }).output();
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound
        ? "git is not installed (not found on PATH)"
        : error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied
        ? "running git is not allowed (needs --allow-run=git)"
        : (error as Error).message;
      throw new Error(`Cannot commit "${file}": ${why}`);
    }
    options.signal?.throwIfAborted();
    if (!output.success) {
      const said = new TextDecoder().decode(output.stderr).trim().split("\n").at(-1);
      throw new Error(
        `Cannot commit "${file}": git ${args[0]} exited ${output.code}${
          said === undefined || said === "" ? "" : `: ${said}`
        }`,
      );
    }
    return new TextDecoder().decode(output.stdout).trim();
  };
  await git(["add", "--", name]);
  await git(["commit", "--quiet", "--no-edit", "--message", message, "--", name]);
  return await git(["rev-parse", "--short", "HEAD"]);
}
