{
  description = "AMD ROCm nightly (TheRock) tarballs as Nix packages, OCI images and a NixOS module, per GPU target";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      # The registry: one set per release channel. `nix run .#update
      # [--channel C]` rewrites these values in place (by attribute path, see
      # scripts/rewrite.ts): keep each path unique in this file. The keys of
      # srcHashes are the tracked targets; null means the tarball has not been
      # fetched yet. Tarballs come from baseUrl, then from each mirror (a
      # folder URL); update never picks a version in skip (known bad).
      nightly = {
        baseUrl = "https://nightly.repo.amd.com/rocm/core/tarball/";
        version = "10.1.0a20260827";
        srcHashes = {
          gfx1151 = null;
          gfx110X-all = null;
          multiarch = null;
        };
        mirrors = [ ];
        # Segfault in hsa_init on gfx1151 (AMD's CI skipped that GPU's tests).
        skip = [
          "7.14.0a20260609"
          "7.14.0a20260610"
          "7.14.0a20260611"
          "7.14.0a20260612"
        ];
      };

      # AMD's stable 7.14.0. AMD publishes no hashes: these SHA-256 are the
      # ones JuliaPackaging Yggdrasil's ROCm_Libs records, and those of
      # independent downloads.
      stable = {
        baseUrl = "https://repo.amd.com/rocm/tarball-multi-arch/";
        version = "7.14.0";
        srcHashes = {
          gfx908 = "sha256-FoYnDvouUjiJFo7GpDQ/LlPxc9YCb9ucazCNmfmdmfo=";
          gfx90a = "sha256-scrrt59UKVERTvZHjqWHppHQBcwTwu+t/sV3vYK2/Hg=";
          gfx94X-dcgpu = "sha256-MuFtyn+EQKCKjWNqan2wA0xhUY8y6pFTR7mNn1UZmww=";
          gfx950-dcgpu = "sha256-Eq/szQbmyvBpnYbWiPFgg6r6NUdNDsHYBjR3+1wRnUk=";
          gfx101X-dgpu = "sha256-/bMC7kXp46bctrqylf3y5qTA+LLHpJN2mLGBeHFYItk=";
          gfx103X-all = "sha256-zppb4rQ+4b3YXeP6nqPD1dy2h1RFrPcoHDdjpO54Pxk=";
          gfx110X-all = "sha256-54pERcUth5+9B2XyTn+p3x4mKouvaBsRihPnU0ASASc=";
          gfx1150 = "sha256-1z+OKaIdAxBRRm2tiNXbonNYKBlSH1kw2fEAp+fdCQU=";
          gfx1151 = "sha256-JWfV405HDbEEpioCw2qncMsEMBdeSMHEbfDu/AXh13w=";
          gfx1152 = "sha256-OQyH9Lys8CZXj7+zYmeiORJSTwI/d/f5Mi7Kr2HYi2A=";
          gfx1153 = "sha256-VtwjOs50A2TcoGyhLCJ0moXl9fVK44EsokQm08XreH0=";
          gfx120X-all = "sha256-KjBNB7klx+RuUfqPcZsZWpv+LfLMkg1wbxCinS0kca8=";
        };
        mirrors = [ ];
        skip = [ ];
      };

      # Every channel above. `nix run .#update -- --channel rc` adds an `rc`
      # set beside them, and here, to follow AMD's release candidates.
      channels = { inherit nightly stable; };

      # The one target table, shared with the TypeScript side.
      targets = builtins.fromJSON (builtins.readFile ./lib/releases/targets.json);
      rocm = import ./nix/channels.nix { inherit channels targets; };
      # The channel packages.default, the overlay's packageFor and the module default to.
      resolver = rocm.resolvers.${rocm.defaultChannel};

      system = "x86_64-linux";
      inherit (nixpkgs) lib;
      # One nixpkgs instance: the input's own. Its packages are built with
      # rocmNightlyFor (the overlay's function) instead of
      # `legacyPackages.extend overlays.default`, which would instantiate
      # nixpkgs a second time.
      pkgs = nixpkgs.legacyPackages.${system};
      rocmNightly = rocmNightlyFor pkgs;

      # What the scripts need at run time: editing README or CI rebuilds nothing.
      src = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [
          ./deno.json
          (lib.fileset.maybeMissing ./deno.lock)
          ./mod.ts
          ./lib
          ./scripts
        ];
      };

      # rocm-<channel>-<family> for each family with a hash (whole), and
      # rocm-<channel>-<isa> for each ISA reaching one through its fallback
      # chain: that tarball with other ISAs' GPU code left out.
      rocmPackages = rocmNightly.packages;

      # docker-<channel>-<target>: one image per package of every channel,
      # named rocm-<channel> (tagged with the target), so images of two
      # channels never share a name:tag.
      images = lib.mapAttrs' (
        name: p:
        lib.nameValuePair "docker-${p.channel}-${p.target}" (
          pkgs.callPackage ./nix/docker.nix {
            package = rocmPackages.${name};
            inherit (p) target;
            inherit src;
            name = "rocm-${p.channel}";
          }
        )
      ) rocm.packageTargets;
      # docker-<target>: the images of packages.default's channel (what
      # `detect` recommends), the same derivations as above.
      defaultImages = lib.mapAttrs' (
        _: target: lib.nameValuePair "docker-${target}" images."docker-${rocm.defaultChannel}-${target}"
      ) resolver.packageTargets;

      # The update app's program, for passthru.updateScript of every package.
      updateProgramFor =
        pkgs:
        (import ./nix/apps.nix {
          inherit (pkgs) lib writeShellScriptBin deno;
          inherit src;
          defaultPackage = null;
          flake = self;
        }).update.program;

      # pkgs.rocmNightly (overlays.default, nixosModules.default): the packages
      # of every channel, built with pkgs.callPackage of this flake's files.
      rocmNightlyFor =
        pkgs:
        let
          set = {
            inherit (rocm) defaultTarget defaultChannel resolveIn;
            inherit (resolver) resolve;
            channels = rocm.order;
            packageIn =
              channel: target:
              pkgs.callPackage ./nix/package.nix {
                tarball = rocm.resolveIn channel target;
                inherit src;
                updateProgram = updateProgramFor pkgs;
              };
            packageFor = (pkgs.rocmNightly or set).packageIn rocm.defaultChannel;
            # The target's tarball keeping only these ISAs' GPU code (several
            # GPUs in one machine); packageIn already keeps only an ISA target's.
            packageForIsas =
              channel: target: isas:
              pkgs.callPackage ./nix/package.nix {
                tarball = rocm.resolveIn channel target;
                inherit src isas;
                updateProgram = updateProgramFor pkgs;
              };
            # A stdenv building HIP code for `target` with its package's compilers.
            stdenvFor = target: ((pkgs.rocmNightly or set).packageFor target).hipStdenv;
            packages = builtins.mapAttrs (
              _: p: (pkgs.rocmNightly or set).packageIn p.channel p.target
            ) rocm.packageTargets;
          };
        in
        set;

      gpuChecks = lib.listToAttrs (
        map (isa: lib.nameValuePair "smoke-${isa}" (rocmNightly.packageIn "nightly" isa).tests."smoke-${isa}")
          (lib.filter (isa: rocm.resolvers ? nightly && rocm.resolvers.nightly.canResolve isa) (
            builtins.attrNames targets.isas
          ))
      );

      defaultPackage =
        # lib.warn: an evaluation warning (--abort-on-warn stops on it).
        let
          package = rocmNightly.packageFor rocm.defaultTarget;
        in
        if rocm.defaultNotice == null then package else lib.warn rocm.defaultNotice package;
    in
    {
      # The registry, the target table and the resolvers, for other flakes;
      # resolve and packageTargets are those of the default channel.
      lib = resolver // {
        registry = nightly;
        inherit channels targets;
        inherit (rocm) defaultChannel resolveIn;
        allPackageTargets = rocm.packageTargets;
        # gfx_target_version "110501" → "gfx1151"; an ISA in no family → its override.
        inherit (import ./nix/gfx_version.nix) targetOfGfxVersion;
        hsaOverrideFor = (import ./nix/gfx_version.nix).hsaOverrideFor targets;
      };

      overlays.default = final: _prev: {
        rocmNightly = rocmNightlyFor final;
        rocm-nightly = final.rocmNightly.packageFor rocm.defaultTarget;
      };

      # It sets no nixpkgs option (so it works with nixpkgs'
      # nixosModules.readOnlyPkgs and with a `nixpkgs.pkgs` the user passes):
      # the package comes from pkgs.rocmNightly when the overlay is applied,
      # else from pkgs.callPackage of this flake's files.
      nixosModules.default = {
        _class = "nixos";
        _file = "${toString ./flake.nix}#nixosModules.default";
        key = "rocm-nightly#nixosModules.default";
        imports = [
          (import ./nix/module.nix {
            inherit rocmNightlyFor;
            channels = rocm.order;
            targets = rocm.knownTargets;
          })
        ];
      };

      packages.${system} = rocmPackages // images // defaultImages // { default = defaultPackage; };

      # Targets that cannot be built yet: `nix build .#rocm-nightly-gfx1103`
      # finds them here and fails with the resolver's explanation (naming the
      # package of another channel that would serve the target).
      legacyPackages.${system} = builtins.mapAttrs (
        _: p: rocmNightly.packageIn p.channel p.target
      ) rocm.unavailableTargets;

      # Imported, not callPackage'd: callPackage would add `override` to the set.
      apps.${system} = import ./nix/apps.nix {
        inherit (pkgs) lib writeShellScriptBin deno;
        inherit src;
        inherit defaultPackage;
        # detect reads the registry of the flake its app comes from.
        flake = self;
      };

      devShells.${system}.default = pkgs.mkShell {
        packages = with pkgs; [
          deno
          nixfmt
          skopeo
          umoci
        ];
      };

      # `nix fmt` (Nix ≥ 2.25 passes no file names): nixpkgs' nixfmt-tree runs
      # nixfmt over the whole tree; plain nixfmt would wait on stdin.
      formatter.${system} = pkgs.nixfmt-tree;

      # GPU smoke tests of the nightly (each package's passthru.tests
      # smoke-<isa>): only a builder with that GPU, declaring the system
      # feature rocm-<isa>, builds one; `update --gate` runs one on a
      # candidate pin. Not in `checks`: `nix flake check` on any machine
      # would download the tarballs and then find no such builder.
      gpuChecks.${system} = gpuChecks;
      # Hydra: every package (each downloads its tarball), every image, the
      # checks, and the GPU smoke tests for builders with that GPU.
      # packages.default and the docker-<target> names are left out: they
      # are the same derivations under a second name.
      hydraJobs = {
        packages.${system} = rocmPackages;
        images.${system} = images;
        checks.${system} = self.checks.${system};
        gpuChecks.${system} = gpuChecks;
      };

      checks.${system} = import ./nix/checks.nix {
        inherit pkgs src resolver rocm;
        nixosSystem = nixpkgs.lib.nixosSystem;
        readOnlyPkgs = nixpkgs.nixosModules.readOnlyPkgs;
        nixosModule = self.nixosModules.default;
        apps = self.apps.${system};
        packages = self.packages.${system};
      };
    };
}
