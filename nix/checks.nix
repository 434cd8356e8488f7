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
  summary =
    name: checks: value:
    assert lib.all lib.id checks;
    runCommand name {
      summary = builtins.unsafeDiscardStringContext (builtins.toJSON value);
      passAsFile = [ "summary" ];
    } ''cp "$summaryPath" "$out"'';

  evalSystemWith =
    extraModule: settings:
    (nixosSystem {
      modules = [
        nixosModule
        extraModule
        {
          nixpkgs.hostPlatform = "x86_64-linux";
          boot.loader.grub.enable = false;
          fileSystems."/" = {
            device = "none";
            fsType = "tmpfs";
          };
          system.stateVersion = "25.11";
          services.rocm-nightly = settings;
        }
      ]
      ;
    }).config;
  evalSystem = evalSystemWith { };

  stub = runCommand "rocm-nightly-stub" { } "mkdir -p $out/opt/rocm/lib";
  withStub = evalSystem {
    enable = true;
    target = "gfx1100";
    package = stub;
  };
  withDefault = evalSystem { enable = true; };
  withStable = evalSystem {
    enable = true;
    channel = "stable";
    target = "gfx1100";
  };
  withStableIsas = isas: evalSystem {
    enable = true;
    channel = "stable";
    target = "gfx1100";
    inherit isas;
  };
  withNixLd = evalSystemWith { programs.nix-ld.enable = true; } {
    enable = true;
    package = stub;
  };
  withOverride = hsaOverrideGfxVersion: evalSystem {
    enable = true;
    package = stub;
    inherit hsaOverrideGfxVersion;
  };
  failedAssertions = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  str = builtins.unsafeDiscardStringContext;

  # A package built by nix/package.nix from a generated ROCm-like tarball
  # (lib/package/sample_rocm.ts) instead of the real download.
  sampleTarball =
    runCommand "therock-dist-linux-gfx1151-sample.tar.gz" { nativeBuildInputs = [ deno ]; }
      ''
        export DENO_DIR="$TMPDIR/deno" HOME="$TMPDIR" DENO_NO_UPDATE_CHECK=1
        deno eval --no-config "
          import { writeSampleRocmTree } from '${src}/lib/package/sample_rocm.ts';
          await writeSampleRocmTree('tree', { isas: ['gfx1151'] });
        "
        tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -czf "$out" -C tree .
      '';
  samplePackage =
    (pkgs.callPackage ./package.nix {
      tarball = {
        target = "gfx1151";
        family = "gfx1151";
        version = "0.0.0-sample";
        pname = "rocm-nightly-sample";
        name = "therock-dist-linux-gfx1151-sample.tar.gz";
        urls = [ "file:///nonexistent/sample.tar.gz" ];
        hash = lib.fakeHash;
      };
      inherit src;
    }).overrideAttrs
      (_: {
        src = sampleTarball;
      });
  samplePrunedTarball =
    runCommand "therock-dist-linux-gfx110X-all-sample.tar.gz" { nativeBuildInputs = [ deno ]; }
      ''
        export DENO_DIR="$TMPDIR/deno" HOME="$TMPDIR" DENO_NO_UPDATE_CHECK=1
        deno eval --no-config "
          import { writeSampleRocmTree } from '${src}/lib/package/sample_rocm.ts';
          await writeSampleRocmTree('tree', { isas: ['gfx1100', 'gfx1101', 'gfx1102', 'gfx1103'] });
        "
        tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -czf "$out" -C tree .
      '';
  samplePrunedPackage =
    (pkgs.callPackage ./package.nix {
      tarball = {
        target = "gfx1100";
        family = "gfx110X-all";
        version = "0.0.0-sample";
        pname = "rocm-nightly-sample";
        name = "therock-dist-linux-gfx110X-all-sample.tar.gz";
        urls = [ "file:///nonexistent/sample.tar.gz" ];
        hash = lib.fakeHash;
      };
      inherit src;
    }).overrideAttrs
      (_: {
        src = samplePrunedTarball;
      });
in
{
  module-eval = summary "rocm-nightly-module-eval" [
    (expectEqual "systemPackages holds the package" (
      builtins.elem stub withStub.environment.systemPackages
    ) true)
    (expectEqual "the /opt/rocm tmpfiles rule" (builtins.elem "L+ /opt/rocm - - - - ${stub}/opt/rocm" withStub.systemd.tmpfiles.rules) true)
    (expectEqual "no ld.so.conf.d entry (Nix's glibc never reads it)" (withStub.environment.etc ? "ld.so.conf.d/rocm-nightly.conf") false)
    (expectEqual "no nix-ld libraries without nix-ld" (builtins.elem stub withStub.programs.nix-ld.libraries) false)
    (expectEqual "nix-ld libraries with nix-ld" (builtins.elem stub withNixLd.programs.nix-ld.libraries) true)
    (expectEqual "the OpenCL ICD package" (builtins.elem withDefault.services.rocm-nightly.package.openclIcd withDefault.hardware.graphics.extraPackages) true)
    (expectEqual "ROCM_PATH" withStub.environment.sessionVariables.ROCM_PATH "/opt/rocm")
    (expectEqual "HIP_PATH" withStub.environment.sessionVariables.HIP_PATH "/opt/rocm")
    (expectEqual "default target" withDefault.services.rocm-nightly.target resolver.defaultTarget)
    (expectEqual "default package" withDefault.services.rocm-nightly.package.pname
      (resolver.resolve resolver.defaultTarget).pname
    )
    (expectEqual "default channel" withDefault.services.rocm-nightly.channel rocm.defaultChannel)
    # An ISA target gets its family's tarball pruned to it; isas keeps several, null all.
    (expectEqual "channel = stable" withStable.services.rocm-nightly.package.pname "rocm-stable-gfx1100")
    (expectEqual "isas = two ISAs" (withStableIsas [ "gfx1101" "gfx1100" ]).services.rocm-nightly.package.pname
      "rocm-stable-gfx1100-gfx1101"
    )
    (expectEqual "isas = null" (withStableIsas null).services.rocm-nightly.package.pname
      (rocm.resolveIn "stable" "gfx1100").pname
    )
    (expectEqual "HSA_OVERRIDE_GFX_VERSION" (withOverride "10.3.0").environment.sessionVariables.HSA_OVERRIDE_GFX_VERSION "10.3.0")
    (expectEqual "no HSA_OVERRIDE_GFX_VERSION by default" (withStub.environment.variables ? HSA_OVERRIDE_GFX_VERSION) false)
    (expectEqual "a malformed hsaOverrideGfxVersion fails an assertion" (lib.any (
      lib.hasInfix "is not an HSA_OVERRIDE_GFX_VERSION"
    ) (failedAssertions (withOverride "11.0"))) true)
    (expectEqual "an override the target's tarball lacks warns" (lib.any (
      lib.hasInfix "makes ROCm run gfx1030 code"
    ) (withOverride "10.3.0").warnings) true)
  ] {
    defaultPackage = str withDefault.services.rocm-nightly.package.name;
    tmpfiles = map str withStub.systemd.tmpfiles.rules;
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
