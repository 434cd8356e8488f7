/**
 * rocm-nightly: turn AMD's ROCm nightly "TheRock" tarballs into reproducible
 * Nix packages and OCI images, one per AMD GPU target.
 *
 * This module re-exports the library behind the scripts in `scripts/`.
 *
 * @module
 */

export * from "./lib/atomic_write.ts";
export * from "./lib/block_pipeline.ts";
export * from "./lib/block_writer.ts";
export * from "./lib/channels.ts";
export * from "./lib/check_output.ts";
export * from "./lib/cli.ts";
export * from "./lib/cleanup.ts";
export * from "./lib/closure.ts";
export * from "./lib/detect.ts";
export * from "./lib/dir_reader.ts";
export * from "./lib/download.ts";
export * from "./lib/elf.ts";
export * from "./lib/elf_closure.ts";
export * from "./lib/file_kind.ts";
export * from "./lib/file_lock.ts";
export * from "./lib/flake_edit.ts";
export * from "./lib/flake_file.ts";
export * from "./lib/gfx_version.ts";
export * from "./lib/hash.ts";
export * from "./lib/hasher.ts";
export * from "./lib/http1_client.ts";
export * from "./lib/image.ts";
export * from "./lib/index_listing.ts";
export * from "./lib/isa_files.ts";
export * from "./lib/kernel_files.ts";
export * from "./lib/kfd_topology.ts";
export * from "./lib/layers.ts";
export * from "./lib/mirror_check.ts";
export * from "./lib/nix32.ts";
export * from "./lib/local_store.ts";
export * from "./lib/nix_daemon.ts";
export * from "./lib/nix_store.ts";
export * from "./lib/oci.ts";
export * from "./lib/prefetch.ts";
export * from "./lib/release_choice.ts";
export * from "./lib/sample_rocm.ts";
export * from "./lib/status.ts";
export * from "./lib/store_scan.ts";
export * from "./lib/tar.ts";
export * from "./lib/tarball_name.ts";
export * from "./lib/targets.ts";
export * from "./lib/unified_diff.ts";
export * from "./lib/update.ts";
export * from "./lib/update_gate.ts";
export * from "./lib/versions.ts";
