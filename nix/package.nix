# One ROCm tarball as a package. `tarball` is one result of nix/resolve.nix
# ({ urls, hash, name, family, version, pname, channel }); `src` is this
# repository (for scripts/check-output.ts in passthru.tests, and
# scripts/prune.ts); `updateProgram` is the flake's update app (for
# passthru.updateScript), or null. `isas`: the ISAs to keep when the tarball
# has code for more (one package per GPU: other ISAs' GPU code is left out);
# null keeps the target's when it is an ISA, else everything.
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
  updateProgram ? null,
  isas ? null,
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
  # The ISAs the tarball has code for.
  targetTable = builtins.fromJSON (builtins.readFile ../lib/releases/targets.json);
  familyIsas = targetTable.families.${tarball.family}.isas or [ ];
  # One package per GPU: an ISA target of a tarball with code for more
  # ISAs (a family, multiarch) gets only its own GPU code; a family target
  # keeps all. The same fixed-output tarball either way: no second download.
  wanted =
    if isas != null then
      isas
    else if targetTable.isas ? ${tarball.target} then
      [ tarball.target ]
    else
      familyIsas;
  foreign = builtins.filter (isa: !(builtins.elem isa familyIsas)) wanted;
  # A family the table does not know yet: nothing to prune by.
  prune =
    if isas == [ ] then
      throw "rocm-nightly: isas = [ ] keeps no GPU at all: name the ISAs to keep, or null for the whole ${tarball.family} tarball"
    else if familyIsas == [ ] then
      false
    else if foreign != [ ] then
      throw "rocm-nightly: the ${tarball.family} tarball has no code for ${builtins.concatStringsSep ", " foreign} (it has ${builtins.concatStringsSep ", " familyIsas}): choose a target whose tarball serves them"
    else
      !(builtins.all (isa: builtins.elem isa wanted) familyIsas);
  # Kept ISAs, sorted: one GPU smoke test each.
  keptIsas =
    if prune then
      builtins.sort builtins.lessThan (
        builtins.foldl' (acc: isa: if builtins.elem isa acc then acc else acc ++ [ isa ]) [ ] wanted
      )
    else
      familyIsas;
  isaFlags = builtins.concatMap (isa: [
    "--isa"
    isa
  ]) keptIsas;
  pruneScript = "${src}/scripts/prune.ts";
  prunePermissions = (import ./scripts.nix).permissionsOf "scripts/prune.ts" (
    builtins.readFile ../scripts/prune.ts
  );
  # check-output's kernel check: the one target, or each kept ISA (--isa).
  checkTarget =
    if !prune then
      tarball.target
    else if builtins.length keptIsas == 1 then
      builtins.head keptIsas
    else
      null;
in
stdenvNoCC.mkDerivation (finalAttrs: {
  inherit (tarball) version;
  pname =
    if prune then
      "rocm-${tarball.channel or "nightly"}-${builtins.concatStringsSep "-" keptIsas}"
    else
      tarball.pname;

  # The channel's baseUrl first, then its mirrors: a pin outlives AMD's copy.
  src = fetchurl {
    inherit (tarball) urls hash name;
  };

  # A tarbomb: nix/install.sh extracts it straight into $out/opt/rocm.
  dontUnpack = true;
  dontConfigure = true;
  dontBuild = true;

  # stdenv's fixup runs (the tmpdir audit, libtool-file pruning, relative
  # links into $out, the man/doc/lib64/sbin moves, which find nothing at the
  # top of $out) except what would change TheRock's tree:
  # - the tarball's binaries carry $ORIGIN-relative RPATHs that patchelf
  #   --shrink-rpath would drop, and patchelf mangles the program headers of
  #   some of its lld-linked libraries: install.sh changes only executables'
  #   interpreters, leaving every library's bytes as shipped;
  dontPatchELF = true;
  # - strip corrupts GPU code objects and lld-linked libraries alike;
  dontStrip = true;
  # - install.sh rewrites every shebang it knows (keeping `env -S` and the
  #   arguments, dropping a CR), the same code the tests run here without
  #   nixpkgs; patchShebangs would rewrite the rest from the build's PATH,
  #   unchecked by those tests;
  dontPatchShebangs = true;
  # - $out/lib leads into opt/rocm/lib: the systemd-units move would carry
  #   files of the tree out of it;
  dontMoveSystemdUserUnits = true;
  # - the tarball's own links stay as shipped, and one with an absolute
  #   target dangles in the sandbox though it may resolve on the host (under
  #   /opt/rocm, which the NixOS module links): the check would fail the
  #   build; check-output reports the links that lead out of the tree.
  dontCheckForBrokenSymlinks = true;

  installPhase = ''
    runHook preInstall
    # --python/--perl: install.sh points the helpers' `#!/usr/bin/env python3`
    # and perl shebangs (rocm-smi, amd-smi, rocm_agent_enumerator, which hipcc
    # runs without --offload-arch) at nixpkgs' interpreters. patchShebangs
    # would leave them alone: neither is among this build's inputs. --env:
    # `#!/usr/bin/env -S python3 -u …` keeps `env -S`, the kernel passing
    # all words after the interpreter as one argument. --bash and --shell:
    # NixOS has no /bin/bash, and `#!/usr/bin/env sh` or bash need a PATH.
    bash ${./install.sh} \
      --tarball "$src" \
      --out "$out" \
      --pname ${lib.escapeShellArg finalAttrs.pname} \
      --interpreter ${stdenv.cc.bintools.dynamicLinker} \
      --patchelf ${lib.getExe patchelf} \
      ${lib.escapeShellArgs (builtins.concatMap (dir: [ "--host-lib-dir" dir ]) hostLibDirs)} \
      --python ${python3.interpreter} \
      --perl ${perl}/bin/perl \
      --bash ${runtimeShell} \
      --env ${coreutils}/bin/env \
      --shell ${runtimeShell} \
      --cc-wrapper ${stdenv.cc} \
      --hip-architectures ${lib.escapeShellArg (builtins.concatStringsSep ";" keptIsas)}
    ${if !prune then "" else ''
      # Other ISAs' GPU code goes (lib/releases/kernel_files.ts, the table
      # images use), recorded in nix-support/pruned; prune.ts then checks
      # each kept ISA still has its code, failing the build if not.
      HOME="$TMPDIR" DENO_DIR="$TMPDIR/deno" DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 \
        deno run --no-config --no-lock ${lib.escapeShellArgs prunePermissions} ${pruneScript} "$out" \
        ${lib.escapeShellArgs isaFlags}
    ''}
    runHook postInstall
  '';

  # deno runs scripts/prune.ts; the output refers to nothing of it.
  nativeBuildInputs = if prune then [ deno ] else [ ];

  passthru = {
    inherit tarball;
  }
  # nixpkgs' update convention (maintainers/scripts/update.nix): run in a
  # checkout of this flake, it moves this package's channel to AMD's newest
  # release, tracking this package's family (`nix run .#update -- --channel
  # <channel> --target <family>`).
  // lib.optionalAttrs (updateProgram != null) {
    updateScript = [
      updateProgram
      "--channel"
      tarball.channel
      "--target"
      tarball.family
    ];
  }
  // {
    # The ISAs whose GPU code the package holds, and whether others' was left out.
    isas = keptIsas;
    pruned = prune;
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
      }) keptIsas
    )
    // {
      # A HIP kernel built for the package's ISAs with its hipcc (no GPU needed).
      hip-compile = import ./hip_compile.nix {
        inherit lib runCommand;
        isas = keptIsas;
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
            ${src}/scripts/check-output.ts "$package" \
            ${if checkTarget == null then "" else "--target ${lib.escapeShellArg checkTarget}"} \
            ${if prune then lib.escapeShellArgs isaFlags else ""} \
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
    # Nightlies are builds of TheRock's main branch; a stable release has
    # AMD's release notes; release candidates, TheRock's releases page.
    changelog =
      {
        nightly = "https://github.com/ROCm/TheRock/commits/main";
        stable = "https://rocm.docs.amd.com/en/docs-${tarball.version}/about/release-notes.html";
      }
      .${tarball.channel or "nightly"} or "https://github.com/ROCm/TheRock/releases";
    platforms = [ "x86_64-linux" ];
    sourceProvenance = [ lib.sourceTypes.binaryNativeCode ];
    mainProgram = "rocminfo";
  };
})
