# A layered Docker image of a ROCm package for one GPU target, written by
# scripts/image.ts inside the build (it imports only Deno built-ins and lib/:
# the sandbox has no network). The result is a docker-archive:
# `docker load < result`.
#
#   pkgs.callPackage ./nix/docker.nix {
#     package = rocm-nightly-gfx1151; # its closure goes into the image
#     target = "gfx1151";             # ISA or family of lib/releases/targets.json: kernels kept
#     src = ./.;                      # this repository (scripts/, lib/)
#     name = "rocm-nightly";          # image name      (default "rocm-nightly")
#     tag = "gfx1151";                # image tag       (default: target)
#     containerConfig = { Cmd = [ "…" ]; }; # container settings merged over
#                                     # image.ts's defaults (Env, Cmd = rocminfo, labels)
#     maxLayers = 100;                # at most 125
#     created = null;                 # seconds; null: SOURCE_DATE_EPOCH of the build
#   }
#
# Images for several targets built from the same package share their common
# layers (same digests): only the kernel layers differ.
{
  lib,
  runCommand,
  deno,
  closureInfo,
  package,
  target,
  src,
  name ? "rocm-nightly",
  tag ? target,
  # Not `config`: callPackage fills optional arguments from pkgs too, and
  # pkgs.config is nixpkgs' configuration (it holds functions).
  containerConfig ? { },
  maxLayers ? 100,
  created ? null,
}:
let
  script = "${src}/scripts/image.ts";
  # The permissions come from the script's shebang, as for the flake apps.
  # Read from this repository's own file, not from `src`: reading a store
  # path at evaluation would need it built first (import from derivation),
  # and `nix flake check --no-build` writes nothing to the store.
  permissions = builtins.filter (word: builtins.isString word && builtins.match "--allow-.*" word != null) (
    builtins.split " " (builtins.head (builtins.split "\n" (builtins.readFile ../scripts/image.ts)))
  );
  # Its registration file lists every path of the closure with its references;
  # depending on it also brings the closure into the build sandbox.
  closure = closureInfo { rootPaths = [ package ]; };
  args =
    [
      "--closure"
      "${closure}/registration"
      "--name"
      name
      "--tag"
      tag
      "--target"
      target
      "--max-layers"
      (toString maxLayers)
    ]
    ++ lib.optionals (created != null) [
      "--created"
      (toString created)
    ];
in
runCommand "docker-image-${name}-${tag}.tar"
  {
    nativeBuildInputs = [ deno ];
    containerConfig = builtins.toJSON containerConfig;
    passAsFile = [ "containerConfig" ];
  }
  ''
    # Deno wants a writable cache even when it downloads nothing.
    export HOME="$TMPDIR" DENO_DIR="$TMPDIR/deno" DENO_NO_UPDATE_CHECK=1 NO_COLOR=1
    deno run --no-config ${lib.escapeShellArgs permissions} ${lib.escapeShellArg script} \
      ${lib.escapeShellArgs args} --config "$containerConfigPath" --output "$out"
  ''
