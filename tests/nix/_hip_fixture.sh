#!/usr/bin/env bash
# Builds, from Debian 12's real HIP toolchain (clang-15, lld-15, hipcc,
# libamdhip64-dev, rocm-device-libs), what tests/nix/hip_compile_test.ts needs:
#
#   WORK/store/   folders shaped like Nix store paths, bound at /nix/store:
#                 glibc, glibc-dev, gcc (libstdc++ headers, crtbegin, libgcc),
#                 gcc-lib (libstdc++.so, libgcc_s), binutils-wrapper and
#                 gcc-wrapper (nix-support files as nixpkgs writes them), and
#                 the tools of the proof root (busybox, perl, cmake, make)
#   WORK/tree/    a TheRock-shaped ROCm tree: lib/llvm/bin/clang and friends
#                 with an $ORIGIN/../lib path (an RPATH, which also serves
#                 Debian's libLLVM left unchanged) and their libraries beside them,
#                 lib/llvm/amdgcn/bitcode, include/hip, lib/libamdhip64.so*,
#                 lib/cmake/hip-lang, hipcc in bin
#   WORK/etc/     ld.so.cache naming only the glibc folder (what Nix's glibc
#                 loader knows by itself), made by the static ldconfig
#   WORK/paths    `name=/nix/store/...` lines for the test
#
# Only copies are changed (patchelf on them: interpreter and runpaths); the
# system's files are read, never written.
#
# usage: _hip_fixture.sh WORK
set -euo pipefail
export LC_ALL=C
work=$1
store=$work/store
multiarch=/usr/lib/x86_64-linux-gnu
mkdir -p "$store" "$work/tree" "$work/etc"

# Copies folders as hard links where the file system and this user allow
# (nothing here writes to them), else as copies. Decided once: a user who may
# not link root's files (protected_hardlinks) gets copies throughout, never a
# half-linked tree that a second cp then trips over.
if ln /usr/include/hip/hip_runtime.h "$work/.link-probe" 2>/dev/null; then
  rm -f "$work/.link-probe"
  clone() { cp -rlf "$@"; }
else
  clone() { cp -rf "$@"; }
fi
h() { printf '/nix/store/%032d-%s' "$1" "$2"; }
glibc=$(h 1 glibc-2.36) glibc_dev=$(h 2 glibc-2.36-dev) gcc=$(h 3 gcc-12.2.0)
gcc_lib=$(h 4 gcc-12.2.0-lib) binutils_wrapper=$(h 5 binutils-wrapper-2.40)
gcc_wrapper=$(h 6 gcc-wrapper-12.2.0) busybox=$(h 7 busybox-1.35.0)
perl=$(h 8 perl-5.36.0) cmake=$(h 9 cmake-3.25.1) make=$(h 10 gnumake-4.3)
loader=$glibc/lib/ld-linux-x86-64.so.2
# Where a store path lives on this machine, outside the proof's /nix/store.
at() { printf '%s%s' "$store" "${1#/nix/store}"; }
triple=x86_64-unknown-linux-gnu

# glibc: its libraries, crt files and linker scripts (pointed at this folder).
mkdir -p "$(at "$glibc")/lib" "$(at "$glibc_dev")/include"
while IFS= read -r file; do
  case $file in
    /lib/x86_64-linux-gnu/* | /usr/lib/x86_64-linux-gnu/*) ;;
    *) continue ;;
  esac
  name=${file##*/}
  [[ $file == */*/*/"$name" && -e $file && ! -d $file && $file != */gconv/* && $file != */audit/* ]] || continue
  [[ ${file%/*} == */x86_64-linux-gnu ]] || continue
  cp -L "$file" "$(at "$glibc")/lib/$name"
done < <(dpkg -L libc6 libc6-dev)
for script in libc.so libm.so; do
  sed -E "s#(/usr)?/lib(64)?(/x86_64-linux-gnu)?/#$glibc/lib/#g" "$multiarch/$script" >"$(at "$glibc")/lib/$script"
done
# glibc's and Linux's headers, Debian's multiarch folder flattened as Nix has them.
while IFS= read -r file; do
  [[ $file == /usr/include/* && -f $file ]] || continue
  relative=${file#/usr/include/}
  relative=${relative#x86_64-linux-gnu/}
  [[ $relative != */* ]] || mkdir -p "$(at "$glibc_dev")/include/${relative%/*}"
  cp "$file" "$(at "$glibc_dev")/include/$relative"
done < <(dpkg -L libc6-dev linux-libc-dev)

# gcc 12 (the unwrapped compiler clang's --gcc-toolchain names) and its lib output.
gcc_dir=$(at "$gcc")/lib/gcc/$triple/12.2.0
mkdir -p "$gcc_dir" "$(at "$gcc")/include/c++" "$(at "$gcc_lib")/lib"
clone /usr/include/c++/12 "$(at "$gcc")/include/c++/12.2.0"
clone /usr/include/x86_64-linux-gnu/c++/12 "$(at "$gcc")/include/c++/12.2.0/$triple"
for name in crtbegin.o crtbeginS.o crtbeginT.o crtend.o crtendS.o libgcc.a libgcc_eh.a libsupc++.a libstdc++fs.a; do
  cp /usr/lib/gcc/x86_64-linux-gnu/12/$name "$gcc_dir/"
done
clone /usr/lib/gcc/x86_64-linux-gnu/12/include "$gcc_dir/include"
cp -L $multiarch/libstdc++.so.6 $multiarch/libgcc_s.so.1 "$(at "$gcc_lib")/lib/"
ln -s libstdc++.so.6 "$(at "$gcc_lib")/lib/libstdc++.so"
cp /usr/lib/gcc/x86_64-linux-gnu/12/libgcc_s.so "$(at "$gcc_lib")/lib/libgcc_s.so"

# The wrappers' nix-support files, with the contents nixpkgs' cc-wrapper and
# bintools-wrapper write for gcc on x86_64-linux (flags on one line).
bw=$(at "$binutils_wrapper")/nix-support cw=$(at "$gcc_wrapper")/nix-support
mkdir -p "$bw" "$cw"
echo "$loader" >"$bw/dynamic-linker"
echo "-L$glibc/lib" >"$bw/libc-ldflags"
echo "$glibc" >"$bw/orig-libc"
echo "$glibc_dev" >"$bw/orig-libc-dev"
echo "$gcc" >"$cw/orig-cc"
echo " -B$gcc_lib/lib" >"$cw/cc-cflags"
echo "-L$gcc/lib/gcc/$triple/12.2.0 -L$gcc_lib/lib  -L$gcc_lib/lib" >"$cw/cc-ldflags"
echo "-B$glibc/lib/" >"$cw/libc-crt1-cflags"
echo "-idirafter $glibc_dev/include" >"$cw/libc-cflags"
: >"$cw/libc-ldflags"
: >"$cw/libcxx-cxxflags"
: >"$cw/libcxx-ldflags"
echo "$glibc" >"$cw/orig-libc"
echo "$glibc_dev" >"$cw/orig-libc-dev"
ln -s "$binutils_wrapper/nix-support/dynamic-linker" "$cw/dynamic-linker"

# Copies the libraries that the ELF files $3… need (all but glibc's, and but
# the gcc runtime unless $1 is "tool") into folder $2, each with an $ORIGIN
# runpath ("llvm": linked or copied unchanged).
glibc_names=' ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libresolv.so.2 libmvec.so.1 libutil.so.1 '
copy_needed() {
  local mode=$1 dest=$2 name path
  shift 2
  mkdir -p "$dest"
  while read -r name _ path _; do
    [[ $path == /* && $glibc_names != *" $name "* ]] || continue
    [[ $mode == tool || ($name != libstdc++.so.6 && $name != libgcc_s.so.1) ]] || continue
    [[ ! -e $dest/$name ]] || continue
    if [[ $mode == llvm ]]; then
      # Unchanged, so a hard link where it can be (libLLVM is 112 MB):
      # clang's RPATH (not RUNPATH) finds their own libraries.
      ln "$(realpath "$path")" "$dest/$name" 2>/dev/null || cp -L "$path" "$dest/$name"
      continue
    fi
    cp -L "$path" "$dest/$name"
    chmod u+w "$dest/$name"
    patchelf --set-rpath '$ORIGIN' "$dest/$name"
  done < <(ldd "$@" | grep '=> /')
}
# A tool in a store-like folder: bin/NAME with the stand-in loader and
# $ORIGIN/../lib, its libraries in lib/.
store_tool() {
  local folder=$1 binary=$2
  mkdir -p "$folder/bin"
  cp -L "$binary" "$folder/bin/${3:-${binary##*/}}"
  copy_needed tool "$folder/lib" "$binary"
  patchelf --set-interpreter "$loader" --set-rpath '$ORIGIN/../lib' "$folder/bin/${3:-${binary##*/}}"
}

# Tools of the proof root: a shell and coreutils (busybox, static), perl for
# Debian's hipcc (its modules from perl-base and perl-modules), CMake and make.
mkdir -p "$(at "$busybox")/bin"
cp /usr/bin/busybox "$(at "$busybox")/bin/busybox"
for applet in sh cat mkdir rm cp mv ls echo grep sed tr uname test \[ env readlink dirname basename true false printf; do
  ln -s busybox "$(at "$busybox")/bin/$applet"
done
store_tool "$(at "$perl")" /usr/bin/perl .perl-unwrapped
mkdir -p "$(at "$perl")/lib/perl5"
clone $multiarch/perl-base/. "$(at "$perl")/lib/perl5/"
clone /usr/share/perl/5.36/. /usr/lib/x86_64-linux-gnu/perl/5.36/. "$(at "$perl")/lib/perl5/"
printf '#!%s\nPERL5LIB=%s exec %s "$@"\n' "$busybox/bin/sh" "$perl/lib/perl5" "$perl/bin/.perl-unwrapped" >"$(at "$perl")/bin/perl"
chmod 0755 "$(at "$perl")/bin/perl"
store_tool "$(at "$cmake")" /usr/bin/cmake
mkdir -p "$(at "$cmake")/share"
clone /usr/share/cmake-3.25 "$(at "$cmake")/share/"
store_tool "$(at "$make")" /usr/bin/make

# The TheRock-shaped tree.
tree=$work/tree
llvm=$tree/lib/llvm
mkdir -p "$tree/bin" "$llvm/bin" "$llvm/lib/clang/15.0.6" "$llvm/amdgcn" "$tree/include" "$tree/lib/cmake/hip-lang"
for name in clang lld clang-offload-bundler llvm-link; do
  cp -L /usr/lib/llvm-15/bin/$name "$llvm/bin/$name"
  chmod u+w "$llvm/bin/$name"
  patchelf --force-rpath --set-rpath '$ORIGIN/../lib' "$llvm/bin/$name"
done
ln -s clang "$llvm/bin/clang++"
ln -s clang "$llvm/bin/clang-15"
ln -s clang++ "$llvm/bin/clang++-15"
ln -s lld "$llvm/bin/ld.lld"
copy_needed llvm "$llvm/lib" /usr/lib/llvm-15/bin/{clang,lld,clang-offload-bundler,llvm-link}
cp -rL /usr/lib/llvm-15/lib/clang/15.0.6/include "$llvm/lib/clang/15.0.6/include"
mkdir -p "$llvm/lib/clang/15.0.6/lib/linux"
cp /usr/lib/llvm-15/lib/clang/15.0.6/lib/linux/libclang_rt.builtins-x86_64.a "$llvm/lib/clang/15.0.6/lib/linux/"
clone $multiarch/amdgcn/bitcode "$llvm/amdgcn/bitcode"
clone /usr/include/hip /usr/include/hsa "$tree/include/"
copy_needed tree "$tree/lib" $multiarch/libamdhip64.so.5
cp -L $multiarch/libamdhip64.so.5 "$tree/lib/"
chmod u+w "$tree/lib/libamdhip64.so.5"
patchelf --set-rpath '$ORIGIN' "$tree/lib/libamdhip64.so.5"
for name in amdhip64.so.5 hsa-runtime64.so.1 numa.so.1; do
  ln -s "lib$name" "$tree/lib/lib${name%.*}"
done
for name in hipcc hipcc.pl hipconfig hipconfig.pl hipvars.pm hipcc_cmake_linker_helper; do
  cp /usr/bin/$name "$tree/bin/"
done
# What TheRock's hip-lang package gives CMake's HIP language (CMake 3.25
# requires the file under the compiler's ROCm root).
cat >"$tree/lib/cmake/hip-lang/hip-lang-config.cmake" <<'EOF'
get_filename_component(_root "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
add_library(hip-lang::amdhip64 SHARED IMPORTED)
set_target_properties(hip-lang::amdhip64 PROPERTIES
  IMPORTED_LOCATION "${_root}/lib/libamdhip64.so.5"
  INTERFACE_INCLUDE_DIRECTORIES "${_root}/include")
add_library(hip-lang::device INTERFACE IMPORTED)
set_target_properties(hip-lang::device PROPERTIES INTERFACE_LINK_LIBRARIES hip-lang::amdhip64)
set(_CMAKE_HIP_DEVICE_RUNTIME_TARGET hip-lang::device)
set(hip-lang_FOUND TRUE)
EOF
echo 'NCSA license of the test tree' >"$tree/LICENSE"

# ld.so.cache with only the glibc folder: Nix's loader finds glibc's own
# libraries in its folder; Debian's copy learns it from this cache.
echo "$glibc/lib" >"$work/etc/ld.so.conf"
bwrap --ro-bind "$store" /nix/store --bind "$work/etc" /etc --ro-bind /sbin/ldconfig /ldconfig \
  --dev /dev --proc /proc /ldconfig -X -f /etc/ld.so.conf -C /etc/ld.so.cache

{
  for name in glibc glibc_dev gcc gcc_lib gcc_wrapper busybox perl cmake make loader; do
    printf '%s=%s\n' "$name" "${!name}"
  done
} >"$work/paths"
