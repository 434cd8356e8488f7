# Flake apps: one per scripts/*.ts (found with readDir, so a new script is an
# app without editing this file), plus `default` running rocminfo (when
# defaultPackage is not null).
#
# Each app runs `deno run` on the script inside the whole source tree (its
# relative imports need lib/), with exactly the permissions of the script's
# shebang line, the committed lockfile under --frozen, and a writable DENO_DIR
# (the store is read-only) for the npm packages the lockfile pins.
{
  lib,
  writeShellScriptBin,
  deno,
  src,
  defaultPackage,
  flake ? null,
}:
let
  # Listed and read from this repository's own files, which `src` holds too:
  # reading `src` at evaluation would need it in the store first, and
  # `nix flake check --no-build` writes nothing there.
  scripts = (import ./scripts.nix).scriptsIn ../scripts;

  lockFlags =
    if builtins.pathExists ../deno.lock then
      [
        "--frozen"
        "--lock=${src}/deno.lock"
      ]
    else
      [ "--no-lock" ];

  appFor =
    name: script:
    let
      runner = writeShellScriptBin "rocm-nightly-${name}" ''
        export DENO_DIR="''${XDG_CACHE_HOME:-$HOME/.cache}/rocm-nightly/deno"
        mkdir -p "$DENO_DIR"
        ${
          # The flake.nix whose registry `detect` reports on when run away
          # from a checkout (only the runner depends on the whole source).
          if flake == null then "" else ''export ROCM_NIGHTLY_APP_FLAKE="${flake}/flake.nix"''
        }
        exec ${lib.getExe deno} run ${
          lib.escapeShellArgs (
            lockFlags
            ++ [
              "--config"
              "${src}/deno.json"
            ]
            ++ script.permissions
          )
        } ${src}/scripts/${script.file} "$@"
      '';
    in
    {
      type = "app";
      program = "${runner}/bin/rocm-nightly-${name}";
      meta.description = script.description;
    };
in
builtins.mapAttrs appFor scripts
# defaultPackage = null: only the scripts' apps (the packages' updateScript).
// lib.optionalAttrs (defaultPackage != null) {
  default = {
    type = "app";
    program = lib.getExe defaultPackage;
    meta.description = "Runs rocminfo from ${defaultPackage.name}";
  };
}
