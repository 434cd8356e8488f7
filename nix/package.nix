# One ROCm tarball as a package. `tarball` is one result of nix/resolve.nix
# ({ urls, hash, name, family, version, pname, channel }); `src` is this
# repository (for scripts/check-output.ts in passthru.tests).
{
  lib,
  stdenvNoCC,
  stdenv,
  fetchurl,
  patchelf,
  gfortran,
  ocl-icd,
  libtool,
  python3,
  perl,
  coreutils,
  runtimeShell,
  runCommand,
  deno,
  tarball,
  src,
}:
let
  # The same permissions as the script's shebang (and its flake app), read
  # from this repository's file: reading `src` at evaluation would need it in
  # the store first, and `nix flake check --no-build` writes nothing there.
  checkPermissions = (import ./scripts.nix).permissionsOf "scripts/check-output.ts" (
    builtins.readFile ../scripts/check-output.ts
  );
  # What TheRock's binaries expect from the host besides glibc. install.sh
  # links a soname from these folders only when a file of the tree needs it
  # and the tree does not ship it, so an unneeded folder costs nothing at run
  # time (the output refers only to what it links).
  hostLibDirs = [
    # libstdc++.so.6 and libgcc_s.so.1: every C++ library and tool of the tree.
    "${stdenv.cc.cc.lib}/lib"
    # The next three are named by some of TheRock's tools and are not among
    # the system libraries it bundles (lib/rocm_sysdeps):
    # libgfortran.so.5 and libquadmath.so.0, for its Fortran-built parts;
    "${gfortran.cc.lib}/lib"
    # libOpenCL.so.1, the ICD loader, when the tree does not ship one;
    "${ocl-icd}/lib"
    # libltdl.so.7, libtool's plugin loader.
    "${libtool.lib}/lib"
    # libpython3.X.so.1.0: tools with embedded Python (rocgdb); the soname
    # carries the minor version, so it links only when nixpkgs' matches.
    "${python3}/lib"
  ];
  # Sonames check-output may find unresolved (each is optional at run time):
  # libpython3.X of tools with embedded Python, when nixpkgs' python3 is
  # another minor version than the one TheRock built against.
  allowMissing = [ "libpython3.*" ];
  # The ISAs the tarball has code for: one GPU smoke test each.
  families = (builtins.fromJSON (builtins.readFile ../lib/releases/targets.json)).families;
  isas = families.${tarball.family}.isas or [ ];
in
stdenvNoCC.mkDerivation (finalAttrs: {
  inherit (tarball) pname version;

  # The channel's baseUrl first, then its mirrors: a pin outlives AMD's copy.
  src = fetchurl {
    inherit (tarball) urls hash name;
  };

  # A tarbomb: nix/install.sh extracts it straight into $out/opt/rocm.
  dontUnpack = true;
  dontConfigure = true;
  dontBuild = true;

  # The tarball's binaries carry $ORIGIN-relative RPATHs that stdenv's fixup
  # (patchelf --shrink-rpath, strip) would break or drop, patchelf mangles
  # some of TheRock's lld-linked libraries, and stripping GPU code objects
  # corrupts them: install.sh changes only executables' interpreters.
  dontPatchELF = true;
  dontStrip = true;
  dontFixup = true;

  installPhase = ''
    runHook preInstall
    # --python/--perl: install.sh points the helpers' `#!/usr/bin/env python3`
    # and perl shebangs (rocm-smi, amd-smi, rocm_agent_enumerator, which hipcc
    # runs without --offload-arch) at nixpkgs' interpreters. patchShebangs
    # would leave them alone: neither is among this build's inputs. --env:
    # `#!/usr/bin/env -S python3 -u …` keeps `env -S`, the kernel passing
    # all words after the interpreter as one argument.
    bash ${./install.sh} \
      --tarball "$src" \
      --out "$out" \
      --pname ${lib.escapeShellArg finalAttrs.pname} \
      --interpreter ${stdenv.cc.bintools.dynamicLinker} \
      --patchelf ${lib.getExe patchelf} \
      ${lib.escapeShellArgs (builtins.concatMap (dir: [ "--host-lib-dir" dir ]) hostLibDirs)} \
      --python ${python3.interpreter} \
      --perl ${perl}/bin/perl \
      --env ${coreutils}/bin/env \
      --shell ${runtimeShell} \
      --cc-wrapper ${stdenv.cc} \
      --hip-architectures ${lib.escapeShellArg (builtins.concatStringsSep ";" isas)}
    runHook postInstall
  '';

  passthru = {
    inherit tarball;
    # nixpkgs' stdenv whose C, C++ and HIP compilers are this package's
    # Nix-aware amdclang, amdclang++ (CMake's HIP compiler, with the package's
    # ISAs as CMAKE_HIP_ARCHITECTURES) and hipcc: every derivation of it has
    # the package and a hook setting CC and CXX among its nativeBuildInputs.
    hipStdenv = stdenv.override (old: {
      extraNativeBuildInputs = (old.extraNativeBuildInputs or [ ]) ++ [
        finalAttrs.finalPackage
        (runCommand "${finalAttrs.pname}-compilers-hook" { } ''
          mkdir -p "$out/nix-support"
          cat > "$out/nix-support/setup-hook" <<'EOF'
          rocmNightlyUseCompilers() {
            export CC=${finalAttrs.finalPackage}/bin/amdclang CXX=${finalAttrs.finalPackage}/bin/amdclang++
          }
          preConfigureHooks+=(rocmNightlyUseCompilers)
          EOF
        '')
      ];
    });
    # Only the OpenCL ICD files of the package (none when the tree ships
    # none), for hardware.graphics.extraPackages (nix/module.nix).
    openclIcd = runCommand "${finalAttrs.pname}-opencl-icd" { package = finalAttrs.finalPackage; } ''
      mkdir -p "$out/etc/OpenCL/vendors"
      for icd in "$package"/etc/OpenCL/vendors/*.icd; do
        if [ -e "$icd" ]; then ln -s "$icd" "$out/etc/OpenCL/vendors/"; fi
      done
    '';
    # smoke-<isa> (nix/smoke.nix): rocminfo lists the GPU; only a builder
    # declaring the system feature rocm-<isa> (with /dev/kfd) builds it.
    tests = builtins.listToAttrs (
      map (isa: {
        name = "smoke-${isa}";
        value = import ./smoke.nix {
          inherit runCommand isa;
          package = finalAttrs.finalPackage;
        };
      }) isas
    )
    // {
      # A HIP kernel built for the package's ISAs with its hipcc (no GPU needed).
      hip-compile = import ./hip_compile.nix {
        inherit lib runCommand isas;
        package = finalAttrs.finalPackage;
      };
      output-structure = runCommand "${finalAttrs.pname}-output-structure"
        {
          nativeBuildInputs = [ deno ];
          package = finalAttrs.finalPackage;
        }
        ''
          export DENO_DIR="$TMPDIR/deno" HOME="$TMPDIR" DENO_NO_UPDATE_CHECK=1
          deno run --no-config --no-lock ${lib.escapeShellArgs checkPermissions} \
            ${src}/scripts/check-output.ts "$package" --target ${lib.escapeShellArg tarball.target} \
            ${lib.escapeShellArgs (builtins.concatMap (glob: [ "--allow-missing" glob ]) allowMissing)}
          touch "$out"
        '';
    };
  };

  meta = {
    description = "AMD ROCm ${tarball.channel or "nightly"} (TheRock ${tarball.version}) for GPU family ${tarball.family}";
    longDescription = ''
      The ROCm tree of AMD's TheRock nightly tarball ${tarball.name}, under
      opt/rocm, with wrappers in bin/ that default ROCM_PATH, ROCM_HOME,
      HIP_PATH, HIP_PLATFORM, HIP_DEVICE_LIB_PATH and HIP_CLANG_PATH, and a
      setup hook giving the same to builds that depend on it. Its ELF files
      run on NixOS: executables use Nix's glibc loader, and the gcc runtime
      is linked where the tree's $ORIGIN runpaths look.
    '';
    homepage = "https://github.com/ROCm/TheRock";
    license = with lib.licenses; [
      mit
      ncsa
      asl20
    ];
    platforms = [ "x86_64-linux" ];
    sourceProvenance = [ lib.sourceTypes.binaryNativeCode ];
    mainProgram = "rocminfo";
  };
})
