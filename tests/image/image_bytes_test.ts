/**
 * The image writer's bytes, pinned: a small closure built from a fixed Nix
 * expression (so its store paths are the same on every machine) is written as
 * a docker-archive and as an OCI layout, and the digests must stay what they
 * are. A change of the writer that changes them must say why in its commit,
 * and here:
 *
 * - issue 11, hard links: `lib/libhard.so` was a hard-link entry to
 *   `lib/libhard.so.2`; it is now a regular file with its content.
 * - issue 11, GPU code by kind: `config_gfx942.h`, `hip-targets-gfx1100.cmake`
 *   and `tensile_gfx1100.py` moved from kernel layers (the header was missing
 *   from the gfx1100 and gfx1151 images) to the common layer.
 * - issue 9 (merged from main), container config: no `LD_LIBRARY_PATH`; the
 *   layers are unchanged, only the config (and so the archive) differs.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseClosure } from "../../lib/store/closure.ts";
import { writeImage } from "../../lib/image/image.ts";
import { buildStoreClosure, mkBinding, sha256File } from "../_store_closure.ts";
import { requireTools, withTempDir } from "../_tools.ts";

const ok = await requireTools("pinned image bytes (a real Nix closure)", "nix", "nix-build");

/** A base path and a ROCm-like tree referring to it; no file content repeats. */
const EXPRESSION = `let
${mkBinding()}  base = mk "pin-base-1" "mkdir -p $out/lib && seq 1 700 > $out/lib/libbase.so.1";
in mk "pin-rocm-1" ''
  set -e
  mkdir -p $out/bin $out/lib/cmake/hip $out/lib/python $out/include/rocwmma/internal \\
    $out/lib/rocblas/library $out/share/miopen/db $out/.kpack \\
    $out/share/doc/a-directory-name-long-enough-to-need-the-ustar-prefix-field/and-another-component
  printf '#!/bin/sh\\necho tool\\n' > $out/bin/tool && chmod 755 $out/bin/tool
  seq 1 3000 > $out/lib/libfoo.so.1 && ln -s libfoo.so.1 $out/lib/libfoo.so
  seq 3001 4000 > $out/lib/libhard.so.2 && ln $out/lib/libhard.so.2 $out/lib/libhard.so
  : > $out/lib/empty
  head -c 512 /dev/zero > $out/lib/block
  echo '#define X 1' > $out/include/rocwmma/internal/config_gfx942.h
  echo 'set(T gfx1100)' > $out/lib/cmake/hip/hip-targets-gfx1100.cmake
  echo 'ISA = "gfx1100"' > $out/lib/python/tensile_gfx1100.py
  seq 5000 5100 > $out/share/doc/a-directory-name-long-enough-to-need-the-ustar-prefix-field/and-another-component/a-file-name.txt
  kernels() {
    seq 1 $2 > $out/lib/rocblas/library/Kernels.so-000-$1.hsaco
    seq 2 $3 > $out/lib/rocblas/library/TensileLibrary_$1.dat
    seq 3 $2 > $out/share/miopen/db/"$1"_60.kdb
    seq 4 $3 > $out/.kpack/blas_lib_$1.kpack
  }
  kernels gfx1100 366 220
  kernels gfx1151 383 230
  seq 1 99 > $out/.kpack/rccl_gfx110X.kpack
  echo ${"$"}{base} > $out/lib/references
''
`;

Deno.test({
  name: "writeImage() writes the pinned bytes for a fixed closure",
  ignore: !ok,
  fn: () =>
    withTempDir(async (work) => {
      const closure = parseClosure((await buildStoreClosure(work, EXPRESSION)).pathInfo);
      const digests: Record<string, string> = {};
      for (const target of ["gfx1100", undefined]) {
        const output = join(work, `${target ?? "all"}.tar`);
        await writeImage(closure, { name: "pin", tag: target ?? "all", target, output });
        digests[`docker-archive ${target ?? "all"}`] = await sha256File(output);
      }
      const oci = await writeImage(closure, {
        name: "pin",
        target: "gfx1151",
        format: "oci",
        output: join(work, "oci"),
      });
      digests["oci gfx1151 manifest"] = oci.manifestDigest ?? "";
      assert.deepEqual(digests, {
        "docker-archive gfx1100":
          "3552a319f584f114cd70252a337d895ea6a32c646977ea55a5a7767c960dd87f",
        "docker-archive all": "ab2bb578dd8aa033b9a234b56776db37acfa6997c3bbdc7b94f632aa04f788ff",
        "oci gfx1151 manifest":
          "sha256:03244f49aab713c9e534896f5d2ffd357fbb7da1f9e8b7204b39e7fc1ce45d14",
      });
    }),
});
