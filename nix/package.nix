# One ROCm tarball as a package. `tarball` is one result of nix/resolve.nix
# ({ urls, hash, name, family, version, pname, channel }); `src` is this
# repository (for scripts/check-output.ts in passthru.tests).
{
  lib,
  stdenvNoCC,
  stdenv,
  fetchurl,
  patchelf,
  runtimeShell,
  runCommand,
  deno,
  tarball,
  src,
}:
let
  # The same permissions as the script's shebang (and its flake app).
  checkPermissions = (import ./scripts.nix).permissionsOf "scripts/check-output.ts" (
    builtins.readFile (src + "/scripts/check-output.ts")
  );
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
  # (patchelf --shrink-rpath, strip) would break or drop, and stripping GPU
  # code objects corrupts them: install.sh rewrites only ELF interpreters.
  dontPatchELF = true;
  dontStrip = true;
  dontFixup = true;

  installPhase = ''
    runHook preInstall
    bash ${./install.sh} \
      --tarball "$src" \
      --out "$out" \
      --pname ${lib.escapeShellArg finalAttrs.pname} \
      --interpreter ${stdenv.cc.bintools.dynamicLinker} \
      --patchelf ${lib.getExe patchelf} \
      --shell ${runtimeShell}
    # Fixup is off, so shebangs are patched here (python/perl helpers).
    patchShebangs --host "$out/opt/rocm"
    runHook postInstall
  '';

  passthru = {
    inherit tarball;
    tests.output-structure =
      runCommand "${finalAttrs.pname}-output-structure"
        {
          nativeBuildInputs = [ deno ];
          package = finalAttrs.finalPackage;
        }
        ''
          export DENO_DIR="$TMPDIR/deno" HOME="$TMPDIR" DENO_NO_UPDATE_CHECK=1
          deno run --no-config --no-lock ${lib.escapeShellArgs checkPermissions} \
            ${src}/scripts/check-output.ts "$package" --target ${lib.escapeShellArg tarball.target}
          touch "$out"
        '';
  };

  meta = {
    description = "AMD ROCm ${tarball.channel or "nightly"} (TheRock ${tarball.version}) for GPU family ${tarball.family}";
    longDescription = ''
      The ROCm tree of AMD's TheRock nightly tarball ${tarball.name}, under
      opt/rocm, with wrappers in bin/ that set ROCM_PATH, ROCM_HOME and HIP_PATH
      and a setup hook for builds that depend on it.
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
