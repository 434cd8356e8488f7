/**
 * A small generated tree shaped like an unpacked TheRock ROCm tarball, for
 * tests, benchmarks and the demo (the real tarballs are 4–15 GB).
 *
 * The tree is a tarbomb layout (top-level `bin/`, `lib/`, `include/`,
 * `share/`, `.kpack/`, `.info/`) with the features the tools must handle:
 * executables, symlinks, a hard-link pair, a path longer than 100 bytes,
 * dot-directories, and per-ISA kernel files named the way TheRock names them.
 *
 * @module
 */

import { join } from "node:path";
import targets from "../releases/targets.json" with { type: "json" };
import { tokensCoveringIsa } from "../releases/isa_files.ts";

/** Options for {@linkcode writeSampleRocmTree}. */
export interface SampleRocmOptions {
  /**
   * GPU ISAs to generate kernel files for (one set of files per ISA, plus the
   * family-token files of ISAs that belong to a `gfxNNNX` family).
   *
   * @default {["gfx1100", "gfx1151"]}
   */
  isas?: string[];
  /**
   * Version written to `.info/version` and printed by the sample executables.
   *
   * @default {"7.12.0a20260308"}
   */
  version?: string;
  /**
   * Size in bytes of each generated kernel file.
   *
   * @default {64}
   */
  kernelBytes?: number;
  /**
   * Also write every other kind of GPU code of lib/releases/kernel_files.ts
   * (MIOpen find/performance databases and tuning models, AOTriton images
   * in per-ISA folders), code for the generic targets covering the ISAs
   * (`gfx11-generic`), and the files named after an ISA that are not GPU
   * code (a per-ISA shared library, a header, a CMake file): what pruning
   * must remove and what it must leave.
   *
   * @default {false}
   */
  everyKind?: boolean;
}

const ISA_PATTERN = /^gfx[0-9a-z]{2,6}$/;
const VERSION_PATTERN = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,99}$/;
const encoder = new TextEncoder();

/**
 * Writes a ROCm-like tarbomb tree into `dir` (created when missing).
 *
 * Contents are deterministic: the same options give byte-identical files.
 * Existing files at the generated paths are replaced.
 *
 * @param dir Folder to fill.
 * @param options ISAs, version and kernel file size.
 * @returns A promise that resolves once every file is written.
 * @throws {SyntaxError} When an ISA or the version is malformed.
 * @throws {RangeError} When `kernelBytes` is not a non-negative safe integer.
 *
 * @example Usage
 * ```ts
 * import { writeSampleRocmTree } from "./sample_rocm.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await writeSampleRocmTree(dir, { isas: ["gfx1100"] });
 * await Deno.stat(`${dir}/.kpack/blas_lib_gfx1100.kpack`);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeSampleRocmTree(
  dir: string,
  options: SampleRocmOptions = {},
): Promise<void> {
  const isas = options.isas ?? ["gfx1100", "gfx1151"];
  const version = options.version ?? "7.12.0a20260308";
  const kernelBytes = options.kernelBytes ?? 64;
  for (const isa of isas) {
    if (!ISA_PATTERN.test(isa)) {
      throw new SyntaxError(`Cannot generate a sample ROCm tree for ISA "${isa}": not a gfx ISA`);
    }
  }
  if (!VERSION_PATTERN.test(version)) {
    throw new SyntaxError(`Cannot generate a sample ROCm tree for version "${version}": malformed`);
  }
  if (!Number.isSafeInteger(kernelBytes) || kernelBytes < 0) {
    throw new RangeError(
      `Cannot generate a sample ROCm tree with kernelBytes ${kernelBytes}: not a non-negative integer`,
    );
  }

  const text = (path: string, content: string, mode = 0o644): Promise<void> =>
    writeBytes(join(dir, path), encoder.encode(content), mode);
  const blob = (path: string, size: number): Promise<void> =>
    writeBytes(join(dir, path), patternBytes(path, size), 0o644);
  const script = (name: string): string =>
    `#!/bin/sh\necho "${name} ${version} (sample ROCm tree)"\n`;

  for (const name of ["rocminfo", "hipcc", "amd-smi"]) {
    await text(`bin/${name}`, script(name), 0o755);
  }
  await text("lib/llvm/bin/clang", script("clang"), 0o755);
  await symlink(dir, "bin/clang", "../lib/llvm/bin/clang");

  await blob("lib/libamdhip64.so.7", 256);
  await symlink(dir, "lib/libamdhip64.so", "libamdhip64.so.7");
  await blob("lib/libhsa-runtime64.so.1.18.0", 128);
  await link(dir, "lib/libhsa-runtime64.so.1.18.0", "lib/libhsa-runtime64.so.1");
  await blob("lib/llvm/amdgcn/bitcode/ocml.bc", 96);

  await text("include/hip/hip_runtime.h", "#pragma once\n/* sample HIP runtime header */\n");
  await text(
    "share/doc/rocm-sample/very-long-directory-name-to-exceed-the-ustar-limit/" +
      "another-long-component-for-pax-headers/README-long-path.txt",
    "A path longer than 100 bytes, which plain ustar headers cannot hold.\n",
  );
  await text(".info/version", `${version}\n`);
  await text("LICENSE", "Sample license text (MIT-style) for the generated ROCm tree.\n");

  for (const isa of isas) {
    await blob(`lib/rocblas/library/Kernels.so-000-${isa}.hsaco`, kernelBytes);
    await blob(`lib/rocblas/library/TensileLibrary_lazy_${isa}.dat`, kernelBytes);
    await blob(`lib/hipblaslt/library/extop_${isa}.co`, kernelBytes);
    await blob(`share/miopen/db/${isa}_60.kdb`, kernelBytes);
    await blob(`.kpack/blas_lib_${isa}.kpack`, kernelBytes);
  }
  const tokens = new Set(isas.flatMap(familyTokens));
  for (const token of [...tokens].sort()) {
    await blob(`.kpack/rccl_${token}.kpack`, kernelBytes);
  }
  if (!options.everyKind) return;
  for (const isa of isas) {
    await blob(`share/miopen/db/${isa}_60.HIP.fdb.txt`, kernelBytes);
    await blob(`share/miopen/db/${isa}.tn.model`, kernelBytes);
    await blob(`lib/aotriton.images/amd-${isa}/flash/attn_fwd/FONLY__default.aks2`, kernelBytes);
    // Not GPU code, though named after an ISA: they stay in every package.
    await blob(`lib/libMIOpenCKGroupedConv_${isa}.so`, 128);
    await text(`include/rocwmma/config_${isa}.h`, `#define ROCWMMA_ARCH "${isa}"\n`);
    await text(`lib/cmake/hip/hip-targets-${isa}.cmake`, `# targets for ${isa}\n`);
  }
  const generics = new Set(isas.flatMap(genericTokens));
  for (const token of [...generics].sort()) {
    await blob(`lib/rocblas/library/Kernels.so-000-${token}.hsaco`, kernelBytes);
    await blob(`.kpack/blas_lib_${token}.kpack`, kernelBytes);
  }
}

/** LLVM's generic targets (`gfx11-generic`) that run on `isa`. */
function genericTokens(isa: string): string[] {
  return tokensCoveringIsa(isa).filter((token) => LLVM_GENERIC_TARGETS.includes(token));
}

const LLVM_GENERIC_TARGETS = [
  "gfx9-generic",
  "gfx9-4-generic",
  "gfx10-1-generic",
  "gfx10-3-generic",
  "gfx11-generic",
  "gfx12-generic",
];

/**
 * Family tokens (`gfx110X`) of the families in lib/releases/targets.json that contain
 * `isa`, as TheRock spells them inside file names.
 */
function familyTokens(isa: string): string[] {
  const tokens: string[] = [];
  for (const [name, family] of Object.entries(targets.families)) {
    const token = name.split("-")[0] ?? name;
    if (token.endsWith("X") && family.isas.includes(isa)) tokens.push(token);
  }
  return tokens;
}

/** Deterministic, path-dependent filler bytes (xorshift32 seeded by FNV-1a). */
function patternBytes(seed: string, size: number): Uint8Array {
  let state = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    state = Math.imul(state ^ seed.charCodeAt(i), 0x01000193) >>> 0;
  }
  if (state === 0) state = 1;
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    bytes[i] = state & 0xff;
  }
  // Never start with the ELF magic: these are not real objects.
  if (bytes[0] === 0x7f) bytes[0] = 0;
  return bytes;
}

async function writeBytes(path: string, bytes: Uint8Array, mode: number): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeFile(path, bytes, { mode });
  // writeFile's mode is filtered by the umask and ignored for existing files.
  await Deno.chmod(path, mode);
}

async function symlink(dir: string, path: string, target: string): Promise<void> {
  const full = join(dir, path);
  await Deno.mkdir(join(full, ".."), { recursive: true });
  await Deno.remove(full).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await Deno.symlink(target, full);
}

async function link(dir: string, existing: string, path: string): Promise<void> {
  const full = join(dir, path);
  await Deno.remove(full).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await Deno.link(join(dir, existing), full);
}
