# `nix flake check`: evaluations of the module and the flake's outputs, and
# the package and its output-structure test built from a small generated
# tarball. Never a multi-GB download: nothing here depends on the real
# packages' outputs (their store paths are only compared as strings). The
# GPU smoke tests (nix/smoke.nix) are not here: they are the packages'
# passthru.tests and the flake's gpuChecks, for a builder with that GPU.
{
  pkgs,
  src,
  resolver,
  rocm,
  nixosSystem,
  readOnlyPkgs,
  nixosModule,
  apps,
  packages,
}:
let
  inherit (pkgs) lib runCommand deno;

  # Fails the evaluation with both values when they differ.
  expectEqual =
    what: actual: expected:
    if actual == expected then
      true
    else
      throw "rocm-nightly check: ${what}: expected ${builtins.toJSON expected}, got ${builtins.toJSON actual}";

  # A summary file built from evaluated values; their string context is
  # dropped so the check never depends on (downloads) what they mention.
  # The assertions sit inside the summary text, not around the derivation:
  # listing the checks (`nix flake show` reads each one's name) forces none
  # of the NixOS evaluations below; its drvPath (`nix flake check`) forces
  # them all.
  summary =
    name: checks: value:
    runCommand name {
      summary = builtins.unsafeDiscardStringContext (
        builtins.toJSON (
          assert lib.all lib.id checks;
          value
        )
      );
      passAsFile = [ "summary" ];
    } ''cp "$summaryPath" "$out"'';

  # Each NixOS evaluation is the costly part of `nix flake check` with real
  # nixpkgs: three cover every case, each setting several of them at once.
  evalSystemWith =
    extraModules: settings:
    (nixosSystem {
      modules = [
        nixosModule
        {
          boot.loader.grub.enable = false;
          fileSystems."/" = {
            device = "none";
            fsType = "tmpfs";
          };
          system.stateVersion = "25.11";
          services.rocm-nightly = settings;
        }
      ]
      ++ extraModules;
    }).config;
  # As most users write it: NixOS instantiates nixpkgs for the platform.
  ownPkgs = [ { nixpkgs.hostPlatform = "x86_64-linux"; } ];
  # nixpkgs' read-only pkgs given this flake's own pkgs: no further nixpkgs
  # instance, and the module must set no nixpkgs option.
  sharedPkgs = [
    readOnlyPkgs
    { nixpkgs.pkgs = pkgs; }
  ];

  stub = runCommand "rocm-nightly-stub" { } "mkdir -p $out/opt/rocm/lib";
  # The defaults: channel, target and package from the flake, no
  # hardware.graphics (the ICD warning), no nix-ld, no override.
  withDefault = evalSystemWith ownPkgs { enable = true; };
  defaultPackage = withDefault.services.rocm-nightly.package;
  # A package of one's own, nix-ld and graphics on, an override whose ISA
  # the default target's tarball lacks.
  withStub = evalSystemWith (
    sharedPkgs
    ++ [
      {
        programs.nix-ld.enable = true;
        hardware.graphics.enable = true;
      }
    ]
  ) {
    enable = true;
    package = stub;
    hsaOverrideGfxVersion = "10.3.0";
  };
  # Another channel and target, two ISAs kept, and a malformed override.
  withStable = evalSystemWith sharedPkgs {
    enable = true;
    channel = "stable";
    target = "gfx1100";
    isas = [
      "gfx1101"
      "gfx1100"
    ];
    hsaOverrideGfxVersion = "11.0";
  };
  failedAssertions = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  str = builtins.unsafeDiscardStringContext;
  optRocm = config: config.systemd.tmpfiles.settings.rocm-nightly."/opt/rocm"."L+";

  # A package built by nix/package.nix from a generated ROCm-like tarball
  # (lib/package/sample_rocm.ts) holding GPU code for `isas`, instead of the
  # real download of `family`.
  samplePackageFor =
    {
      target,
      family,
      isas,
    }:
    let
      name = "therock-dist-linux-${family}-sample.tar.gz";
      quoted = builtins.concatStringsSep ", " (map (isa: "'${isa}'") isas);
      sampleTarball = runCommand name { nativeBuildInputs = [ deno ]; } ''
        export DENO_DIR="$TMPDIR/deno" HOME="$TMPDIR" DENO_NO_UPDATE_CHECK=1
        deno eval --no-config "
          import { writeSampleRocmTree } from '${src}/lib/package/sample_rocm.ts';
          await writeSampleRocmTree('tree', { isas: [${quoted}] });
        "
        tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -czf "$out" -C tree .
      '';
    in
    (pkgs.callPackage ./package.nix {
      tarball = {
        inherit target family name;
        version = "0.0.0-sample";
        pname = "rocm-nightly-sample";
        urls = [ "file:///nonexistent/sample.tar.gz" ];
        hash = lib.fakeHash;
      };
      inherit src;
    }).overrideAttrs
      (_: {
        src = sampleTarball;
      });
  samplePackage = samplePackageFor {
    target = "gfx1151";
    family = "gfx1151";
    isas = [ "gfx1151" ];
  };
  samplePrunedPackage = samplePackageFor {
    target = "gfx1100";
    family = "gfx110X-all";
    isas = [
      "gfx1100"
      "gfx1101"
      "gfx1102"
      "gfx1103"
    ];
  };
in
{
  module-eval = summary "rocm-nightly-module-eval" [
    (expectEqual "systemPackages holds the package" (builtins.elem defaultPackage withDefault.environment.systemPackages) true)
    (expectEqual "systemPackages holds a package of one's own" (builtins.elem stub withStub.environment.systemPackages) true)
    (expectEqual "the /opt/rocm tmpfiles entry" (str (optRocm withDefault).argument) (str "${defaultPackage}/opt/rocm"))
    (expectEqual "the /opt/rocm tmpfiles type" (optRocm withStub).type "L+")
    (expectEqual "no /opt/rocm tmpfiles rule (settings instead)" (lib.filter (lib.hasInfix "/opt/rocm") withDefault.systemd.tmpfiles.rules) [ ])
    (expectEqual "no ld.so.conf.d entry (Nix's glibc never reads it)" (withDefault.environment.etc ? "ld.so.conf.d/rocm-nightly.conf") false)
    (expectEqual "no nix-ld libraries without nix-ld" (builtins.elem defaultPackage withDefault.programs.nix-ld.libraries) false)
    (expectEqual "nix-ld libraries with nix-ld" (builtins.elem stub withStub.programs.nix-ld.libraries) true)
    (expectEqual "the OpenCL ICD package" (builtins.elem defaultPackage.openclIcd withDefault.hardware.graphics.extraPackages) true)
    (expectEqual "a warning when the ICD cannot show up" (lib.any (lib.hasInfix "only with hardware.graphics.enable") withDefault.warnings) true)
    (expectEqual "ROCM_PATH" withDefault.environment.sessionVariables.ROCM_PATH "/opt/rocm")
    (expectEqual "HIP_PATH" withDefault.environment.sessionVariables.HIP_PATH "/opt/rocm")
    (expectEqual "default target" withDefault.services.rocm-nightly.target resolver.defaultTarget)
    (expectEqual "default package" defaultPackage.pname (resolver.resolve resolver.defaultTarget).pname)
    (expectEqual "default channel" withDefault.services.rocm-nightly.channel rocm.defaultChannel)
    # An ISA target's package is its family's tarball keeping that ISA's GPU
    # code; isas keeps several.
    (expectEqual "channel = stable, isas = two ISAs" withStable.services.rocm-nightly.package.pname
      "rocm-stable-gfx1100-gfx1101"
    )
    (expectEqual "the same tarball as the family's" withStable.services.rocm-nightly.package.passthru.tarball.hash
      (rocm.resolveIn "stable" "gfx1100").hash
    )
    (expectEqual "HSA_OVERRIDE_GFX_VERSION" withStub.environment.sessionVariables.HSA_OVERRIDE_GFX_VERSION "10.3.0")
    (expectEqual "no HSA_OVERRIDE_GFX_VERSION by default" (withDefault.environment.sessionVariables ? HSA_OVERRIDE_GFX_VERSION) false)
    (expectEqual "a malformed hsaOverrideGfxVersion fails an assertion" (lib.any (
      lib.hasInfix "is not an HSA_OVERRIDE_GFX_VERSION"
    ) (failedAssertions withStable)) true)
    (expectEqual "an override the target's tarball lacks warns" (lib.any (
      lib.hasInfix "makes ROCm run gfx1030 code"
    ) withStub.warnings) true)
    (expectEqual "no assertion of the module fails otherwise" (lib.filter (lib.hasInfix "rocm-nightly") (
      failedAssertions withDefault ++ failedAssertions withStub
    )) [ ])
  ] {
    defaultPackage = str defaultPackage.name;
    tmpfiles = str (optRocm withDefault).argument;
  };

  flake-metadata =
    let
      appsWithoutDescription = lib.filter (name: (apps.${name}.meta.description or "") == "") (
        builtins.attrNames apps
      );
      scripts = (import ./scripts.nix).scriptsIn ../scripts;
    in
    summary "rocm-nightly-flake-metadata"
      [
        (expectEqual "apps without meta.description" appsWithoutDescription [ ])
        (expectEqual "scripts without an app" (lib.filter (name: !(apps ? ${name})) (
          builtins.attrNames scripts
        )) [ ])
        (expectEqual "packages without a resolvable target" (lib.filter (
          name: !(resolver.canResolve resolver.packageTargets.${name})
        ) (builtins.attrNames resolver.packageTargets)) [ ])
        (expectEqual "packages.default" packages.default.pname (resolver.resolve resolver.defaultTarget).pname)
      ]
      {
        inherit (resolver) tracked available defaultTarget;
        packages = builtins.attrNames packages;
        apps = lib.mapAttrs (_: app: app.meta.description) apps;
        permissions = lib.mapAttrs (_: script: script.permissions) scripts;
        tarball = resolver.resolve resolver.defaultTarget;
      };

  sample-package = samplePackage;
  sample-output-structure = samplePackage.passthru.tests.output-structure;
  # One package per GPU: a family sample tarball pruned to gfx1100 (the
  # prune step fails the build when a kept ISA lost its code), checked with
  # check-output --isa.
  sample-pruned-package = samplePrunedPackage;
  sample-pruned-output-structure = samplePrunedPackage.passthru.tests.output-structure;
  sample-image = pkgs.callPackage ./docker.nix {
    package = samplePackage;
    target = "gfx1151";
    inherit src;
  };
}
