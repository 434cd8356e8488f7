/**
 * rocm-nightly: turn AMD's ROCm nightly "TheRock" tarballs into reproducible
 * Nix packages and OCI images, one per AMD GPU target.
 *
 * This module re-exports the library behind the scripts in `scripts/`.
 *
 * The exports are grouped by the folders of `lib/`, lowest layer first
 * (docs/architecture.md).
 *
 * @module
 */

export * from "./lib/fs/atomic_write.ts";
export * from "./lib/fs/cleanup.ts";
export * from "./lib/fs/dir_reader.ts";
export * from "./lib/fs/file_kind.ts";
export * from "./lib/fs/file_lock.ts";
export * from "./lib/fs/special_files.ts";
export * from "./lib/fs/temporaries.ts";

export * from "./lib/cli/cli.ts";
export * from "./lib/cli/command_line.ts";
export * from "./lib/cli/display.ts";
export * from "./lib/cli/unified_diff.ts";

export * from "./lib/hash/block_pipeline.ts";
export * from "./lib/hash/hash.ts";
export * from "./lib/hash/hasher.ts";
export * from "./lib/hash/nix32.ts";

export * from "./lib/store/closure.ts";
export * from "./lib/store/local_store.ts";
export * from "./lib/store/nix_daemon.ts";
export * from "./lib/store/nix_store.ts";
export * from "./lib/store/store_scan.ts";

export * from "./lib/fetch/download.ts";
export * from "./lib/fetch/download_cache.ts";
export * from "./lib/fetch/http1_client.ts";
export * from "./lib/fetch/mirror_check.ts";
export * from "./lib/fetch/network_error.ts";
export * from "./lib/fetch/prefetch.ts";

export * from "./lib/releases/gfx_version.ts";
export * from "./lib/releases/index_listing.ts";
export * from "./lib/releases/isa_files.ts";
export * from "./lib/releases/kernel_files.ts";
export * from "./lib/releases/release_choice.ts";
export * from "./lib/releases/target_names.ts";
export * from "./lib/releases/tarball_name.ts";
export * from "./lib/releases/targets.ts";
export * from "./lib/releases/versions.ts";

export * from "./lib/flake/channels.ts";
export * from "./lib/flake/find_flake.ts";
export * from "./lib/flake/flake_edit.ts";
export * from "./lib/flake/flake_file.ts";

export * from "./lib/package/check_output.ts";
export * from "./lib/package/elf.ts";
export * from "./lib/package/elf_closure.ts";
export * from "./lib/package/prune.ts";
export * from "./lib/package/sample_rocm.ts";

export * from "./lib/image/block_writer.ts";
export * from "./lib/image/image.ts";
export * from "./lib/image/layers.ts";
export * from "./lib/image/oci.ts";
export * from "./lib/image/tar.ts";

export * from "./lib/jobs/detect.ts";
export * from "./lib/jobs/kfd_topology.ts";
export * from "./lib/jobs/status.ts";
export * from "./lib/jobs/update.ts";
export * from "./lib/jobs/update_commit.ts";
export * from "./lib/jobs/update_gate.ts";
