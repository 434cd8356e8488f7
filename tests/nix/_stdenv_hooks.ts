// Setup hooks run as nixpkgs' stdenv runs them, without nixpkgs: through
// tests/nix/_stdenv_setup.sh (a stand-in of pkgs/stdenv/generic/setup.sh's
// hook protocol: each hook sourced under `set -eu -o pipefail`, then
// `runHook preConfigure`), in an environment of only the derivation's.
import { join } from "node:path";
import { writeSampleRocmTree } from "../../lib/package/sample_rocm.ts";
import { repoRoot, run } from "../_tools.ts";

const SETUP = join(repoRoot, "tests/nix/_stdenv_setup.sh");

/** What a derivation gives the builder: environment, and cmakeFlags as a string or an array. */
export interface Derivation {
  env?: Record<string, string>;
  /** A string (the environment variable) or, with __structuredAttrs, an array. */
  cmakeFlags?: string | string[];
}

/** The variables and CMake flags after `runHook preConfigure`. */
export interface PreConfigure {
  vars: Record<string, string>;
  cmakeFlags: string[];
}

/** Sources `hooks` and runs the preConfigure hooks of a derivation `drv`; throws on failure. */
export async function runPreConfigure(
  hooks: string[],
  drv: Derivation = {},
): Promise<PreConfigure> {
  const structured = Array.isArray(drv.cmakeFlags) ? ["--structured", ...drv.cmakeFlags, "--"] : [];
  const env: Record<string, string> = { PATH: "/usr/bin:/bin", ...drv.env };
  if (typeof drv.cmakeFlags === "string") env.cmakeFlags = drv.cmakeFlags;
  // Only the derivation's environment, as in a build (`env -i`).
  const result = await run("env", [
    "-i",
    ...Object.entries(env).map(([name, value]) => `${name}=${value}`),
    ...["bash", SETUP, ...structured, ...hooks],
  ]);
  if (result.code !== 0) {
    throw new Error(`the setup hooks failed (exit ${result.code}): ${result.stderr}`);
  }
  const vars: Record<string, string> = {};
  const cmakeFlags: string[] = [];
  for (const line of result.stdout.split("\n")) {
    const at = line.indexOf("=");
    if (at < 0) continue;
    const [name, value] = [line.slice(0, at), line.slice(at + 1)];
    if (name === "flag") cmakeFlags.push(value);
    else vars[name] = value;
  }
  return { vars, cmakeFlags };
}

/**
 * The sample ROCm tree installed into `<dir>/out` by install.sh with a stand-in
 * `--cc-wrapper` (only the nix-support files install.sh requires: the sample
 * clang is a script, nothing is compiled) and `--hip-architectures`. Returns
 * the output's real path.
 */
export async function installWithCcWrapper(
  dir: string,
  hipArchitectures: string,
): Promise<string> {
  const tree = join(dir, "tree");
  await writeSampleRocmTree(tree, { isas: ["gfx1100", "gfx1151"] });
  const support = join(dir, "gcc-wrapper/nix-support");
  await Deno.mkdir(support, { recursive: true });
  const files = {
    "orig-cc": "/nix/store/00000000000000000000000000000000-gcc-12.2.0",
    "orig-libc": "/nix/store/00000000000000000000000000000000-glibc-2.36",
    "dynamic-linker":
      "/nix/store/00000000000000000000000000000000-glibc-2.36/lib/ld-linux-x86-64.so.2",
  };
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(join(support, name), `${text}\n`);
  }
  const out = join(dir, "out");
  const install = await run("bash", [
    join(repoRoot, "nix/install.sh"),
    ...["--source", tree, "--out", out, "--pname", "p"],
    ...["--cc-wrapper", join(dir, "gcc-wrapper"), "--hip-architectures", hipArchitectures],
  ]);
  if (install.code !== 0) throw new Error(`install.sh failed: ${install.stderr}`);
  return await Deno.realPath(out);
}
