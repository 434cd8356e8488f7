# NixOS module `services.rocm-nightly`: installs one ROCm nightly package and
# exposes it where ROCm software expects it (/opt/rocm, ROCM_PATH, nix-ld's
# libraries, the OpenCL ICD folder). The flake's nixosModules.default imports
# it as `import ./nix/module.nix { inherit rocmNightlyFor; }`: the packages
# come from pkgs.rocmNightly when the overlay is applied, else from
# `rocmNightlyFor pkgs` (pkgs.callPackage of the flake's files). It sets no
# nixpkgs option, so nixpkgs' read-only pkgs (nixosModules.readOnlyPkgs) work.
# `channels` and `targets` are what the flake knows (the registry's channels;
# every ISA and family of lib/releases/targets.json and of the registry): the
# `channel` and `target` options are enums of them, so a typo fails with the
# list of valid values before anything is resolved.
{
  rocmNightlyFor ? null,
  channels ? [
    "nightly"
    "stable"
  ],
  # null: the ISAs and families of lib/releases/targets.json.
  targets ? null,
}:
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.rocm-nightly;
  gfxVersion = import ./gfx_version.nix;
  # The ISA whose code HSA_OVERRIDE_GFX_VERSION makes ROCm run, and the ISAs
  # the target's tarball has code for (null when either is unknown).
  overrideIsa =
    if cfg.hsaOverrideGfxVersion == null then null else gfxVersion.targetOfHsaOverride cfg.hsaOverrideGfxVersion;
  table = builtins.fromJSON (builtins.readFile ../lib/releases/targets.json);
  inherit (table) families;
  knownTargets = if targets != null then targets else builtins.attrNames (table.isas // families);
  resolved = builtins.tryEval ((rocmNightly.resolveIn or (_: _: throw "")) cfg.channel cfg.target).family;
  targetIsaNames = (builtins.fromJSON (builtins.readFile ../lib/releases/targets.json)).isas;
  targetIsas = if resolved.success then families.${resolved.value}.isas or null else null;
  rocmNightly =
    if pkgs ? rocmNightly then
      pkgs.rocmNightly
    else if rocmNightlyFor != null then
      rocmNightlyFor pkgs
    else
      throw "services.rocm-nightly: pkgs.rocmNightly is missing: import the rocm-nightly flake's nixosModules.default (not nix/module.nix on its own), or add its overlays.default to nixpkgs.overlays";
in
{
  options.services.rocm-nightly = {
    enable = lib.mkEnableOption "AMD ROCm nightly (TheRock) under /opt/rocm";

    channel = lib.mkOption {
      type = lib.types.enum channels;
      default = rocmNightly.defaultChannel;
      defaultText = lib.literalExpression "pkgs.rocmNightly.defaultChannel";
      example = "stable";
      description = ''
        The release channel of the flake's registry to install from: one of
        the channels of its flake.nix, `nightly`, `stable` (and `rc` once
        `nix run .#update -- --channel rc` added it). The default is
        the nightly when it pins the default target, else stable. Evaluation
        fails naming the channel that would serve the target when this one
        has no pinned tarball for it.
      '';
    };

    target = lib.mkOption {
      type = lib.types.enum knownTargets;
      default = rocmNightly.defaultTarget;
      defaultText = lib.literalExpression "pkgs.rocmNightly.defaultTarget";
      example = "gfx1100";
      description = ''
        The GPU to install ROCm for: an ISA such as `gfx1100` (resolved through
        its fallback chain, e.g. gfx110X-all then multiarch) or a TheRock
        family such as `gfx110X-all`: one the flake's target table or registry
        knows. Evaluation fails with the list of available targets when none
        of the chain has a pinned tarball.
      '';
    };

    hsaOverrideGfxVersion = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "10.3.0";
      description = ''
        Sets `HSA_OVERRIDE_GFX_VERSION` system-wide, so ROCm runs the code of
        the ISA it names (`major.minor.stepping` in decimal: "10.3.0" is
        gfx1030, "11.0.0" gfx1100) on a GPU whose own ISA AMD ships in no
        family: unsupported by AMD, and applied to every GPU. `detect` (`nix
        run .#detect`) prints the value and the matching `target` for this
        machine's GPU; a warning names the target to set when the target's
        tarball has no code for that ISA. `null` leaves the variable unset.
      '';
    };

    isas = lib.mkOption {
      type = lib.types.nullOr (lib.types.nonEmptyListOf lib.types.str);
      default = if targetIsaNames ? ${cfg.target} then [ cfg.target ] else null;
      defaultText = lib.literalExpression ''if target is an ISA then [ target ] else null'';
      example = [
        "gfx1100"
        "gfx1101"
      ];
      description = ''
        The GPU ISAs to keep code for: the package is the target's tarball
        with the GPU code of every other ISA left out (shared libraries stay
        whole), for a machine with GPUs of several ISAs of one family (set
        `target` to the family, or to one of the ISAs). `null` keeps the
        whole tarball.
      '';
    };

    package = lib.mkOption {
      type = lib.types.package;
      default =
        # null: the whole tarball, the family package of the target.
        if cfg.isas == null then
          rocmNightly.packageIn cfg.channel (rocmNightly.resolveIn cfg.channel cfg.target).family
        else
          rocmNightly.packageForIsas cfg.channel cfg.target cfg.isas;
      defaultText = lib.literalExpression "pkgs.rocmNightly.packageForIsas config.services.rocm-nightly.channel config.services.rocm-nightly.target config.services.rocm-nightly.isas";
      description = "The ROCm package to install.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion =
          cfg.hsaOverrideGfxVersion == null || gfxVersion.targetOfHsaOverride cfg.hsaOverrideGfxVersion != null;
        message = "services.rocm-nightly.hsaOverrideGfxVersion = ${builtins.toJSON cfg.hsaOverrideGfxVersion} is not an HSA_OVERRIDE_GFX_VERSION: expected <major>.<minor>.<stepping> in decimal with minor and stepping 0 to 15, such as \"10.3.0\" (runs gfx1030 code) or \"11.0.0\" (gfx1100); `nix run .#detect` prints the value for this machine's GPU";
      }
    ];
    warnings =
      # The ICD reaches /run/opengl-driver only with hardware.graphics.
      lib.optional (cfg.package ? openclIcd && !config.hardware.graphics.enable) "services.rocm-nightly: the package's OpenCL ICD reaches /run/opengl-driver/etc/OpenCL/vendors only with hardware.graphics.enable = true; set it for OpenCL programs to find ROCm"
      ++ lib.optional (overrideIsa != null && targetIsas != null && !(builtins.elem overrideIsa targetIsas)) "services.rocm-nightly.hsaOverrideGfxVersion = ${builtins.toJSON cfg.hsaOverrideGfxVersion} makes ROCm run ${overrideIsa} code, which the ${resolved.value} tarball of target ${builtins.toJSON cfg.target} does not have: set services.rocm-nightly.target = \"${overrideIsa}\" (as `nix run .#detect` prints)";
    # sessionVariables: pam_env sets them for every session (services,
    # graphical logins), and NixOS copies them into the shells' variables.
    environment.sessionVariables.HSA_OVERRIDE_GFX_VERSION = lib.mkIf (
      cfg.hsaOverrideGfxVersion != null
    ) cfg.hsaOverrideGfxVersion;

    environment.systemPackages = [ cfg.package ];

    # Many ROCm tools and build systems look in /opt/rocm first. `L+`
    # replaces whatever /opt/rocm was with the link (tmpfiles.d(5)); nixpkgs
    # writes this as lib/tmpfiles.d/rocm-nightly.conf.
    systemd.tmpfiles.settings.rocm-nightly."/opt/rocm"."L+".argument = "${cfg.package}/opt/rocm";

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

    environment.sessionVariables = {
      ROCM_PATH = "/opt/rocm";
      HIP_PATH = "/opt/rocm";
      # The wrappers of every package of this flake (nix/install.sh) take a
      # ROCM_PATH or HIP_PATH equal to this for the system's default, not a
      # choice of the caller, and use their own tree.
      ROCM_NIGHTLY_MODULE_PATH = "/opt/rocm";
    };
  };
}
