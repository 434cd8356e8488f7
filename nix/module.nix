# NixOS module `services.rocm-nightly`: installs one ROCm nightly package and
# exposes it where ROCm software expects it (/opt/rocm, ROCM_PATH, nix-ld's
# libraries, the OpenCL ICD folder). The package comes from the overlay
# (pkgs.rocmNightly, added by the flake's nixosModules.default); nothing is
# built here.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.rocm-nightly;
  rocmNightly =
    pkgs.rocmNightly
      or (throw "services.rocm-nightly: pkgs.rocmNightly is missing: add the rocm-nightly flake's overlays.default to nixpkgs.overlays (its nixosModules.default does this)");
in
{
  options.services.rocm-nightly = {
    enable = lib.mkEnableOption "AMD ROCm nightly (TheRock) under /opt/rocm";

    target = lib.mkOption {
      type = lib.types.str;
      default = rocmNightly.defaultTarget;
      defaultText = lib.literalExpression "pkgs.rocmNightly.defaultTarget";
      example = "gfx1100";
      description = ''
        The GPU to install ROCm for: an ISA such as `gfx1100` (resolved through
        its fallback chain, e.g. gfx110X-all then multiarch) or a TheRock
        family such as `gfx110X-all`. Evaluation fails with the list of
        available targets when none of the chain has a pinned tarball.
      '';
    };

    package = lib.mkOption {
      type = lib.types.package;
      default = rocmNightly.packageFor cfg.target;
      defaultText = lib.literalExpression "pkgs.rocmNightly.packageFor config.services.rocm-nightly.target";
      description = "The ROCm nightly package to install.";
    };
  };

  config = lib.mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];

    # Many ROCm tools and build systems look in /opt/rocm first.
    systemd.tmpfiles.rules = [ "L+ /opt/rocm - - - - ${cfg.package}/opt/rocm" ];

    # Programs not built by Nix find ROCm's libraries through nix-ld's loader
    # (Nix's glibc never reads /etc/ld.so.conf.d). The package's lib/ leads
    # into opt/rocm/lib.
    programs.nix-ld.libraries = lib.mkIf config.programs.nix-ld.enable [ cfg.package ];

    # An OpenCL ICD the tree ships goes where NixOS's ICD loader looks
    # (/run/opengl-driver/etc/OpenCL/vendors). `openclIcd` holds only the
    # .icd files (none when the tree has none), so nothing is read at
    # evaluation time, and ROCm's lib/ stays out of /run/opengl-driver/lib,
    # which other programs search.
    hardware.graphics.extraPackages = lib.optional (cfg.package ? openclIcd) cfg.package.openclIcd;

    environment.variables = {
      ROCM_PATH = "/opt/rocm";
      HIP_PATH = "/opt/rocm";
    };
  };
}
