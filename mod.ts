/**
 * rocm-nightly: turn AMD's ROCm nightly "TheRock" tarballs into reproducible
 * Nix packages and OCI images, one per AMD GPU target.
 *
 * This module re-exports the library behind the scripts in `scripts/`.
 *
 * @module
 */

export * from "./lib/atomic_write.ts";
export * from "./lib/flake_edit.ts";
export * from "./lib/hash.ts";
export * from "./lib/nix32.ts";
export * from "./lib/unified_diff.ts";
export * from "./lib/versions.ts";
