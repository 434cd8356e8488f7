{
  description = "AMD ROCm nightly (TheRock) tarballs as Nix packages, OCI images and a NixOS module, per GPU target";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      # The registry. `nix run .#update` rewrites these values in place (by
      # attribute path, see scripts/rewrite.ts): keep each name unique in this
      # file. The keys of srcHashes are the tracked targets; null means the
      # tarball has not been fetched yet.
      nightly = {
        baseUrl = "https://rocm.nightlies.amd.com/tarball/";
        version = "7.12.0a20260308";
        srcHashes = {
          gfx1151 = "sha256-rUhZSqJaTpuc2l6D1Q29oC0yTcTRRU/NO/JAFxaaVRA=";
          gfx110X-all = null;
          multiarch = null;
        };
      };

      # The one target table, shared with the TypeScript side.
      targets = builtins.fromJSON (builtins.readFile ./lib/targets.json);
      resolver = import ./nix/resolve.nix {
        registry = nightly;
        inherit targets;
      };

      system = "x86_64-linux";
      inherit (nixpkgs) lib;
      pkgs = nixpkgs.legacyPackages.${system}.extend self.overlays.default;

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

      # rocm-nightly-<family> for each family with a hash, and
      # rocm-nightly-<isa> aliases reaching one through their fallback chain.
      rocmPackages = pkgs.rocmNightly.packages;

      images = lib.mapAttrs' (
        name: target:
        lib.nameValuePair "docker-${target}" (
          pkgs.callPackage ./nix/docker.nix {
            package = rocmPackages.${name};
            inherit target src;
          }
        )
      ) resolver.packageTargets;
    in
    {
      # The registry, the target table and the resolver, for other flakes.
      lib = resolver // {
        registry = nightly;
        inherit targets;
        # gfx_target_version "110501" → "gfx1151"; an ISA in no family → its override.
        inherit (import ./nix/gfx_version.nix) targetOfGfxVersion;
        hsaOverrideFor = (import ./nix/gfx_version.nix).hsaOverrideFor targets;
      };

      overlays.default = final: _prev: {
        rocmNightly = {
          inherit (resolver) defaultTarget resolve;
          packageFor =
            target:
            final.callPackage ./nix/package.nix {
              tarball = resolver.resolve target;
              inherit src;
            };
          packages = builtins.mapAttrs (_: final.rocmNightly.packageFor) resolver.packageTargets;
        };
        rocm-nightly = final.rocmNightly.packageFor resolver.defaultTarget;
      };

      nixosModules.default = {
        imports = [ ./nix/module.nix ];
        nixpkgs.overlays = [ self.overlays.default ];
      };

      packages.${system} = rocmPackages // images // { default = pkgs.rocm-nightly; };

      # Targets that cannot be built yet: `nix build .#rocm-nightly-gfx1103`
      # finds them here and fails with the resolver's explanation.
      legacyPackages.${system} = builtins.mapAttrs (
        _: pkgs.rocmNightly.packageFor
      ) resolver.unavailableTargets;

      # Imported, not callPackage'd: callPackage would add `override` to the set.
      apps.${system} = import ./nix/apps.nix {
        inherit (pkgs) lib writeShellScriptBin deno;
        inherit src;
        defaultPackage = pkgs.rocm-nightly;
      };

      devShells.${system}.default = pkgs.mkShell {
        packages = with pkgs; [
          deno
          nixfmt
          skopeo
          umoci
        ];
      };

      # nixfmt-rfc-style: nixpkgs calls it nixfmt since 2025.
      formatter.${system} = pkgs.nixfmt;

      checks.${system} = import ./nix/checks.nix {
        inherit pkgs src resolver;
        nixosSystem = nixpkgs.lib.nixosSystem;
        nixosModule = self.nixosModules.default;
        apps = self.apps.${system};
        packages = self.packages.${system};
      };
    };
}
