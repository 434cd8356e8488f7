/**
 * Test closures in the real Nix store, built from `builtins.derivation`s, and
 * the file digests the image tests compare.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { nixEnv, run, runNixBuild } from "./_tools.ts";

/**
 * The `mk name script` binding the test expressions use: a derivation whose
 * builder is `/bin/sh -c script`, with extra attributes (a nonce) when given.
 */
export function mkBinding(extra: Record<string, string> = {}): string {
  const attributes = Object.entries(extra).map(([key, value]) =>
    `    ${key} = ${JSON.stringify(value)};\n`
  ).join("");
  return `  mk = name: script: builtins.derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/bin:/bin";
${attributes}  };
`;
}

/**
 * Builds a Nix expression (no out-link) and lists its closure.
 *
 * @returns The built path and `nix path-info --json --recursive` of it.
 */
export async function buildStoreClosure(
  work: string,
  expression: string,
): Promise<{ root: string; pathInfo: string }> {
  const file = join(work, `closure-${crypto.randomUUID()}.nix`);
  await Deno.writeTextFile(file, expression);
  const built = await runNixBuild("nix-build", [file, "--no-out-link"], { env: nixEnv() });
  assert.equal(built.code, 0, built.stderr);
  const root = built.stdout.trim();
  const info = await run("nix", ["path-info", "--json", "--recursive", root], { env: nixEnv() });
  assert.equal(info.code, 0, info.stderr);
  return { root, pathInfo: info.stdout };
}

/** The SHA-256 of a file, hex. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}
