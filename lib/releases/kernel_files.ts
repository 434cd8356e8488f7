/**
 * Which files of a ROCm tree are GPU code: the one table of file kinds that
 * per-target images may leave out.
 *
 * A file goes into a per-ISA kernel layer only when both hold: its kind is
 * GPU device code or a per-ISA kernel database ({@linkcode KERNEL_KINDS}),
 * and its path carries a GPU ISA token (`isaTokens` of lib/releases/isa_files.ts).
 * Everything else — headers, CMake and pkg-config files, Python, docs, host
 * libraries — stays in every target's image even when its name carries a
 * token (`config_gfx942.h`, `hip-targets-gfx1100.cmake`), because host code
 * and build tooling for any target may need it.
 *
 * Shared libraries are never pruned, even per-ISA ones such as MIOpen's
 * `libMIOpenCKGroupedConv_gfx1100.so`: another library may link them by name,
 * and a missing `DT_NEEDED` breaks loading on every GPU, not just others'.
 *
 * @module
 */

import { isaTokens } from "./isa_files.ts";

/** One kind of GPU code file, matched on the path inside its store path. */
export interface KernelKind {
  /** What the files are, for messages and docs. */
  name: string;
  /** Matches the path (`/`-separated, relative to the store path or absolute). */
  pattern: RegExp;
  /**
   * The ISA tokens of a matching path, when its names do not spell them as
   * whole words.
   *
   * @default {isaTokens of lib/releases/isa_files.ts}
   */
  tokens?: (path: string) => string[];
}

/**
 * The kinds of per-ISA GPU code, each with the evidence that its files are
 * device code or kernel data loaded only on the ISA they name.
 */
export const KERNEL_KINDS: readonly KernelKind[] = [
  // AMDGPU code objects (ELF for the amdgcn target): HIP offload bundles
  // extracted per ISA, e.g. rocBLAS `library/Kernels.so-000-gfx90a.hsaco`,
  // hipBLASLt `library/extop_gfx942.co`, Tensile `TensileLibrary_*_gfx1100.co`;
  // the runtime loads only the one matching the device's ISA.
  { name: "AMDGPU code object", pattern: /\.(?:co|hsaco)$/ },
  // TheRock's kpack archives (rocm-kpack): the device code split out of fat
  // binaries, one archive per architecture or family (`.kpack/blas_lib_gfx1100.kpack`,
  // `.kpack/rccl_gfx110X.kpack`); host libraries find them through a manifest.
  { name: "kpack device code archive", pattern: /\.kpack$/ },
  // Tensile/hipBLASLt/hipSPARSELt solution libraries (msgpack or YAML) that
  // index the code objects of one ISA: `lib/rocblas/library/TensileLibrary_lazy_gfx90a.dat`.
  // Only under a `library/` folder: elsewhere `.dat` is any data.
  {
    name: "Tensile solution library",
    pattern: /(?:^|\/)library\/(?:[^/]+\/)*[^/]+\.(?:dat|yaml)$/,
  },
  // MIOpen's precompiled kernel databases (SQLite), one per ISA and CU count:
  // `share/miopen/db/gfx90a68.kdb`, `gfx1030_36.kdb` (MIOpen's install docs:
  // the per-architecture "kernels package").
  { name: "MIOpen kernel database", pattern: /\.kdb$/, tokens: miopenTokens },
  // MIOpen's find and performance databases and its tuning models, named by
  // ISA (and CU count) and read for that device only:
  // `share/miopen/db/gfx1030_36.HIP.fdb.txt`, `gfx90a68.db.txt`, `gfx90a68.db`,
  // `gfx908.tn.model`, `gfx90a_ConvHipIgemmGroupFwdXdlops_encoder.ktn.model`.
  {
    name: "MIOpen find/performance database or tuning model",
    pattern: /(?:^|\/)miopen\/db\/[^/]+\.(?:fdb\.txt|db\.txt|db|k?tn\.model)$/,
    tokens: miopenTokens,
  },
  // AOTriton's kernel images (AKS2 archives of code objects), in per-ISA
  // folders: `lib/aotriton.images/amd-gfx942/flash/…/*.aks2`.
  { name: "AOTriton kernel image", pattern: /\.aks2$/ },
];

/** A shared library: `libX.so`, `libX.so.1.2` (the digits cannot cross a `/`). */
const SHARED_LIBRARY = /\.so(?:\.[0-9.]+)?$/;

/**
 * The kind of GPU code a path holds, if it is one of {@linkcode KERNEL_KINDS}.
 * A shared library (`*.so`, `*.so.N`) is never GPU code, whatever the table
 * says (see the module comment).
 *
 * @param path A path inside a ROCm tree.
 * @param kinds The table of kinds (a test may pass a wrong one).
 * @returns The kind, or `undefined` for any other file.
 *
 * @example Usage
 * ```ts
 * import { kernelKind } from "./kernel_files.ts";
 *
 * kernelKind(".kpack/blas_lib_gfx1100.kpack")?.name; // "kpack device code archive"
 * kernelKind("include/rocwmma/config_gfx942.h"); // undefined
 * ```
 */
export function kernelKind(
  path: string,
  kinds: readonly KernelKind[] = KERNEL_KINDS,
): KernelKind | undefined {
  const kind = kinds.find((k) => k.pattern.test(path));
  return kind === undefined || SHARED_LIBRARY.test(path) ? undefined : kind;
}

/**
 * The ISA tokens that make a file target-specific: those of its path when it
 * is GPU code ({@linkcode kernelKind}), none otherwise.
 *
 * @param path A path inside a ROCm tree.
 * @param kinds The table of kinds.
 * @returns The tokens (`["gfx1100"]`); empty when every target needs the file.
 *
 * @example Usage
 * ```ts
 * import { kernelTokens } from "./kernel_files.ts";
 *
 * kernelTokens("lib/rocblas/library/Kernels.so-000-gfx1151.hsaco"); // ["gfx1151"]
 * kernelTokens("lib/cmake/hip/hip-targets-gfx1100.cmake"); // []
 * ```
 */
export function kernelTokens(path: string, kinds: readonly KernelKind[] = KERNEL_KINDS): string[] {
  const kind = kernelKind(path, kinds);
  if (kind === undefined) return [];
  return kind.tokens?.(path) ?? isaTokens(path);
}

/**
 * MIOpen names its databases `<ISA><CU count>` and glues the two together
 * for three-character ISAs (`gfx90a68.kdb`, `gfx90878.db.txt`, beside
 * `gfx1030_36.HIP.fdb.txt`): the ISA is `gfx1` and three digits, or `gfx` and
 * three characters for GCN/CDNA (gfx8xx, gfx9xx).
 */
function miopenTokens(path: string): string[] {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const isa = /^gfx(?:1\d{3}|[89]\d[0-9a-f])/.exec(name)?.[0];
  return isa === undefined ? isaTokens(path) : [isa];
}
