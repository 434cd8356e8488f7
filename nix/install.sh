#!/usr/bin/env bash
# Installs an unpacked-or-packed TheRock ROCm tarball as a Nix package output.
#
# Plain bash + coreutils + tar (patchelf optional), so CI runs it without
# nixpkgs on a generated tarball, and nix/package.nix runs the same steps.
#
# usage: install.sh --tarball FILE|--source DIR --out DIR --pname NAME
#                   [--interpreter PATH] [--patchelf PATH] [--host-lib-dir DIR]...
#                   [--python PATH] [--perl PATH] [--bash PATH] [--env PATH]
#                   [--shell PATH]
#
#   --tarball FILE       the .tar.gz (a tarbomb: bin/, lib/, .kpack/… at the top)
#   --source DIR         an already unpacked tree instead of --tarball
#   --out DIR            the output to fill ($out)
#   --pname NAME         package name, for share/licenses/NAME
#   --interpreter PATH   ELF interpreter (glibc's ld.so) to set on executables;
#                        its folder counts as glibc's libraries (needs --patchelf)
#   --patchelf PATH      patchelf binary; without it no ELF file is read or changed
#   --host-lib-dir DIR   folder of host libraries (repeatable, searched in order):
#                        each soname that the tree's ELF files need and neither the
#                        tree nor glibc provides is linked from there into a folder
#                        that those files' own $ORIGIN runpaths search (needs --patchelf)
#   --python PATH        interpreter for `#!/usr/bin/env python3`-style shebangs
#   --perl PATH          interpreter for `#!/usr/bin/env perl`-style shebangs
#   --bash PATH          interpreter for `#!/bin/bash`-style shebangs
#   --env PATH           env(1) supporting -S, kept in front of the interpreter of
#                        `#!/usr/bin/env -S python3 -u -W ignore`-style shebangs
#   --shell PATH         shell of the bin/ wrappers and of `#!/usr/bin/env sh`-style
#                        shebangs (default /bin/sh)
#   --cc-wrapper DIR     a nixpkgs compiler wrapper (stdenv.cc): amdclang, amdclang++,
#                        hipcc and TheRock's clang run with the flags it records in
#                        DIR/nix-support (libc, gcc toolchain, loader), so they
#                        build in a Nix build (needs --interpreter, --patchelf)
#   --hip-architectures LIST  GPU targets (gfx1100;gfx1151) that the setup hook
#                        gives CMake as CMAKE_HIP_ARCHITECTURES (with --cc-wrapper)
#
# Shared libraries are never written: their bytes stay as shipped (patchelf
# mangles some of TheRock's lld-linked ones). Executables get only their
# interpreter changed, and each must still load afterwards.
#
# Nothing of the host enters the output: a device node, FIFO or socket in the
# tree fails the install, and no file is read or copied through a symlink
# that leads out of the tree (such a link is passed over with a warning).
set -euo pipefail
export LC_ALL=C

die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}
warn() {
  printf 'install.sh: %s\n' "$*" >&2
}
help() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}
usage() {
  help >&2
  exit 2
}

tarball= source= out= pname= interpreter= patchelf= shell=/bin/sh python= perl= bash= env=
host_lib_dirs=()
cc_wrapper= hip_architectures=
while (($#)); do
  case "$1" in
    --tarball | --source | --out | --pname | --interpreter | --patchelf | --shell | --python | --perl | --bash | --env)
      (($# >= 2)) || usage
      declare "${1#--}=$2"
      shift 2
      ;;
    --host-lib-dir)
      (($# >= 2)) || usage
      host_lib_dirs+=("$2")
      shift 2
      ;;
    --cc-wrapper)
      (($# >= 2)) || usage
      cc_wrapper=$2
      shift 2
      ;;
    --hip-architectures)
      (($# >= 2)) || usage
      hip_architectures=$2
      shift 2
      ;;
    -h | --help) help && exit 0 ;;
    *) printf 'install.sh: unknown argument "%s"\n' "$1" >&2 && usage ;;
  esac
done
[[ -n $out && -n $pname ]] || usage
[[ -n $tarball || -n $source ]] || usage
[[ -z $tarball || -z $source ]] || die "give --tarball or --source, not both"
[[ $pname =~ ^[A-Za-z0-9._+-]+$ ]] || die "package name \"$pname\": only letters, digits and ._+- allowed"
# The wrappers and shebangs embed these paths (between double quotes, or as
# a shebang's interpreter, which ends at the first blank).
for path in "$out" "$shell" "$interpreter" "$python" "$perl" "$bash" "$env"; do
  [[ $path != *[\"\$\`\\]* && $path != *[[:space:]]* ]] ||
    die "path \"$path\": must not contain quotes, \$, backquotes, backslashes or spaces"
done
for path in "$shell" "$python" "$perl" "$bash" "$env"; do
  [[ -z $path || $path == /* ]] || die "interpreter \"$path\": must be an absolute path"
done
[[ -z $interpreter || -n $patchelf ]] || die "--interpreter needs --patchelf"
((${#host_lib_dirs[@]} == 0)) || [[ -n $patchelf ]] || die "--host-lib-dir needs --patchelf (to read what ELF files need)"
for dir in ${host_lib_dirs[@]+"${host_lib_dirs[@]}"}; do
  [[ -d $dir ]] || die "host library folder \"$dir\": not a directory"
done
if [[ -n $interpreter ]]; then
  [[ -f $interpreter ]] || die "interpreter \"$interpreter\": not a file"
fi

# Device nodes, FIFOs and sockets have no place in a package: a device node in
# the store would open the build machine's hardware to whoever runs it, and a
# FIFO blocks whoever reads it. Fails naming them (the first five, and how many).
refuse_special_files() {
  local entry kind names=() count=0
  while IFS= read -r -d '' entry; do
    case ${entry%% *} in
      b) kind="block device" ;;
      c) kind="character device" ;;
      p) kind=FIFO ;;
      *) kind=socket ;;
    esac
    count=$((count + 1))
    ((count > 5)) || names+=("$(printf '%q' "${entry#* }") ($kind)")
  done < <(find "$1/." \( -type b -o -type c -o -type p -o -type s \) -printf '%y %P\0')
  ((count == 0)) && return
  # What was extracted goes: nothing but regular files, folders and links stays.
  [[ -z $2 ]] || find "$1/." \( -type b -o -type c -o -type p -o -type s \) -delete
  ((count <= 5)) || names+=("…")
  local list
  list=$(printf '%s, ' "${names[@]}")
  die "$3 holds $count device nodes, FIFOs or sockets (a package holds only files, folders and symlinks): ${list%, }"
}

mkdir -p "$out"
out=$(cd "$out" && pwd -P)
rocm="$out/opt/rocm"
mkdir -p "$rocm"

# The tarball is a tarbomb whose dot-directories (.kpack, .info) matter:
# extract straight into opt/rocm (no glob copy that would skip them, and no
# second copy of many gigabytes). Its special files are refused right after
# extraction (listing it first would cost a second decompression); an
# unpacked tree is checked before anything of it is copied.
if [[ -n $tarball ]]; then
  [[ -f $tarball ]] || die "tarball \"$tarball\": not a file"
  tar -xf "$tarball" -C "$rocm" --no-same-owner --no-same-permissions --delay-directory-restore
  refuse_special_files "$rocm" delete "tarball \"$tarball\""
else
  [[ -d $source ]] || die "source \"$source\": not a directory"
  refuse_special_files "$source" "" "source \"$source\""
  cp -a "$source/." "$rocm/"
fi
chmod -R u+w "$rocm"
[[ -d $rocm/bin && ! -L $rocm/bin ]] ||
  die "tarball \"${tarball:-$source}\" has no top-level bin/: not a TheRock tarball"

# Sets `resolved` to the path (relative to opt/rocm, "" for opt/rocm itself)
# that the relative path $1 leads to, following its symlinks hop by hop. On
# the way every folder is a real one of the tree, so what is read at the end
# is the tree's. Returns 1, with `escape` naming the hop, when a link leads
# out of the tree: an absolute target, a `..` above opt/rocm, or more than
# 40 links in a row.
resolve_in_tree() {
  local rest=$1 here= part path target hops=0 via=
  resolved= escape=
  while [[ -n $rest ]]; do
    part=${rest%%/*}
    if [[ $rest == */* ]]; then rest=${rest#*/}; else rest=; fi
    case $part in
      '' | .) ;;
      ..)
        if [[ -z $here ]]; then
          escape="${via:-\"$1\"} leads out of the tree (\"..\" above opt/rocm)"
          return 1
        fi
        if [[ $here == */* ]]; then here=${here%/*}; else here=; fi
        ;;
      *)
        path=${here:+$here/}$part
        if [[ ! -L $rocm/$path ]]; then
          here=$path
          continue
        fi
        # readlink ends its output with a newline: names may end in one too.
        target=$(readlink -- "$rocm/$path" && printf x) || target=x
        target=${target%$'\nx'}
        via="symlink \"$path\" → \"$target\""
        if [[ $target == /* ]]; then
          escape="$via leads out of the tree (absolute)"
          return 1
        fi
        if ((++hops > 40)); then
          escape="$via leads out of the tree (more than 40 links in a row)"
          return 1
        fi
        rest=$target${rest:+/$rest}
        ;;
    esac
  done
  resolved=$here
}

# HIP looks for device libraries under $ROCM_PATH/amdgcn.
if [[ -d $rocm/lib/llvm/amdgcn && ! -e $rocm/amdgcn && ! -L $rocm/amdgcn ]]; then
  ln -s lib/llvm/amdgcn "$rocm/amdgcn"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One pass over the tree's files: x86-64 ELF files (GPU code objects are ELF
# too, for another machine) and scripts with a shebang.
elf_files=() scripts=()
while IFS= read -r -d '' file; do
  magic=
  IFS= read -r -N 4 magic 2>/dev/null <"$file" || true
  if [[ $magic == '#!'* ]]; then
    scripts+=("$file")
  elif [[ $magic == $'\x7fELF' && -n $patchelf && $file != *.co && $file != *.hsaco ]]; then
    # GPU code objects (.co, .hsaco: thousands in the math libraries) are
    # skipped by name, the rest by the header, without a patchelf run each.
    # e_ident: ELFCLASS64, little-endian; e_machine (bytes 18-19): EM_X86_64.
    read -r -a header < <(od -An -tu1 -N20 -w20 -v "$file") || true
    [[ ${header[4]-} == 2 && ${header[5]-} == 1 && ${header[18]-} == 62 && ${header[19]-} == 0 ]] &&
      elf_files+=("$file")
  fi
done < <(find "$rocm" -type f -print0)

# Shebangs: /usr/bin/env python3, /usr/bin/python3, /usr/local/bin/perl,
# /bin/bash, /usr/bin/env sh and the like point at the given interpreters
# (sh at --shell); arguments after them are kept. NixOS has no /bin/bash and
# no /usr/bin/python3, and check-output reports any that stays.
# The kernel passes everything after the interpreter as ONE argument, so
# `#!/usr/bin/env -S python3 -u -W ignore` keeps `env -S` (--env) in front of
# the new interpreter, unless one plain word follows. A CRLF shebang line
# loses its CR, which the kernel would take into the last word.
shebang='^#![[:blank:]]*(/usr)?(/local)?/bin/(env[[:blank:]]+(-S[[:blank:]]+)?)?(python(3(\.[0-9]+)?)?|perl(5(\.[0-9]+)*)?|bash|sh)([[:blank:]].*)?$'
rewritten=0 unpatched=0 no_env=0
for file in ${scripts[@]+"${scripts[@]}"}; do
  line=
  IFS= read -r -n 1024 line <"$file" || true
  [[ ${#line} -lt 1024 ]] || continue
  raw=$line
  line=${line%$'\r'}
  [[ $line =~ $shebang ]] || continue
  split=${BASH_REMATCH[4]} name=${BASH_REMATCH[5]} rest=${BASH_REMATCH[10]}
  case $name in
    python*) tool=$python ;;
    perl*) tool=$perl ;;
    bash) tool=$bash ;;
    *) tool=$shell ;;
  esac
  if [[ -z $tool ]]; then
    unpatched=$((unpatched + 1))
    continue
  fi
  words=${rest#"${rest%%[![:blank:]]*}"}
  words=${words%"${words##*[![:blank:]]}"}
  if [[ -n $split && $words == *[[:blank:]\\\'\"\$\#]* ]]; then
    if [[ -z $env ]]; then
      no_env=$((no_env + 1))
      continue
    fi
    tool="$env -S $tool"
  fi
  # `#!/bin/sh` stays when --shell is /bin/sh.
  [[ "#!$tool$rest" != "$raw" ]] || continue
  # Rewritten in place (same inode and mode): only the first line changes.
  { printf '#!%s%s\n' "$tool" "$rest" && tail -n +2 -- "$file"; } >"$tmp/script"
  cat "$tmp/script" >"$file"
  rewritten=$((rewritten + 1))
done
((rewritten == 0)) || printf 'install.sh: pointed the shebangs of %d scripts at --python/--perl/--bash/--shell\n' "$rewritten" >&2
((unpatched == 0)) || warn "left $unpatched python/perl/bash shebangs alone: give --python, --perl and --bash to rewrite them"
((no_env == 0)) || warn "left $no_env \`env -S\` shebangs with several arguments alone: give --env to rewrite them"

# What every ELF file needs (DT_NEEDED) and where it looks ($ORIGIN runpath
# entries that stay inside the output; other entries are outside the store
# path and never count). Read-only patchelf calls: nothing is written here.
# Files and folders are kept as indices into elf_files and folders, so lists
# of them are words, whatever bytes the paths hold.
declare -A needs=() searches=() folder_index=() real_index=()
folders=() has_interp=() unreadable=()
glibc_dir=${interpreter%/*}
# Sets `folder` to the index of the folder an $ORIGIN entry names,
# normalized (realpath once per entry); empty when missing or outside $out.
resolve_folder() {
  if [[ ! -v folder_index[$1] ]]; then
    local real=
    [[ -d $1 ]] && real=$(realpath -e -- "$1" 2>/dev/null) || true
    if [[ $real == "$out" || $real == "$out"/* ]]; then
      [[ -v real_index[$real] ]] || { real_index[$real]=${#folders[@]} && folders+=("$real"); }
      folder_index[$1]=${real_index[$real]}
    else
      folder_index[$1]=
    fi
  fi
  folder=${folder_index[$1]}
}
for index in "${!elf_files[@]}"; do
  file=${elf_files[index]}
  if ! info=$("$patchelf" --print-rpath --print-needed "$file" 2>/dev/null); then
    unreadable+=("${file#"$rocm"/}")
    continue
  fi
  # First line: the runpath (possibly empty); then one soname per line.
  rpath=${info%%$'\n'*}
  [[ $info == *$'\n'* ]] && needs[$index]=${info#*$'\n'} || needs[$index]=
  searched=
  IFS=: read -r -a entries <<<"$rpath" || true
  for entry in ${entries[@]+"${entries[@]}"}; do
    case $entry in
      '$ORIGIN'*) entry=${file%/*}${entry#'$ORIGIN'} ;;
      '${ORIGIN}'*) entry=${file%/*}${entry#'${ORIGIN}'} ;;
      *) continue ;;
    esac
    resolve_folder "$entry"
    [[ -z $folder ]] || searched+=" $folder"
  done
  searches[$index]=$searched
  if "$patchelf" --print-interpreter "$file" >/dev/null 2>&1; then
    # A library with an interpreter (libc.so.6 is one) keeps its bytes: only
    # files without a DT_SONAME are executables (PIE ones are ET_DYN too),
    # whatever their mode (check-output wants every interpreter to exist).
    soname=$("$patchelf" --print-soname "$file" 2>/dev/null) || soname=unknown
    [[ -n $soname ]] || has_interp+=("$file")
  fi
done
((${#unreadable[@]} == 0)) ||
  warn "skipped ${#unreadable[@]} ELF files patchelf cannot read: ${unreadable[*]:0:5}"

# Sonames nothing in the tree provides: any file of that name in the tree
# rules a host library out, even where a runpath does not reach it
# (check-output reports such a file).
declare -A in_tree=()
while IFS= read -r -d '' name; do
  in_tree[$name]=1
done < <(find "$rocm" \( -type f -o -type l \) -printf '%f\0')

# For each soname needed but unresolved, the files that need it.
declare -A wanted_by=()
for index in "${!needs[@]}"; do
  while IFS= read -r soname; do
    [[ -n $soname && $soname != */* ]] || continue
    found=
    for folder in ${searches[$index]}; do
      [[ -e ${folders[folder]}/$soname ]] && found=1 && break
    done
    [[ -n $found || -v in_tree[$soname] ]] && continue
    [[ -n $interpreter && -e $glibc_dir/$soname ]] && continue
    wanted_by[$soname]+=" $index"
  done <<<"${needs[$index]}"
done

# Link each such soname from the first host folder that has it into the
# first in-tree runpath folder of each file that needs it, unless one of that
# file's folders already got the link.
linked=0 host_missing=() unreachable=()
mapfile -t sonames < <(printf '%s\n' "${!wanted_by[@]}" | sort)
for soname in ${sonames[@]+"${sonames[@]}"}; do
  [[ -n $soname ]] || continue
  source_lib=
  for dir in ${host_lib_dirs[@]+"${host_lib_dirs[@]}"}; do
    [[ -e $dir/$soname ]] && source_lib=$dir/$soname && break
  done
  # shellcheck disable=SC2206 # indices: words by construction
  users=(${wanted_by[$soname]})
  if [[ -z $source_lib ]]; then
    host_missing+=("$soname (needed by ${#users[@]} files)")
    continue
  fi
  declare -A chosen=()
  for index in "${users[@]}"; do
    first= done_here=
    for folder in ${searches[$index]}; do
      [[ -n $first ]] || first=$folder
      [[ -v chosen[$folder] ]] && done_here=1 && break
    done
    [[ -z $done_here ]] || continue
    if [[ -z $first ]]; then
      unreachable+=("${elf_files[index]#"$rocm"/} ($soname)")
      continue
    fi
    ln -s "$source_lib" "${folders[first]}/$soname"
    chosen[$first]=1
    linked=$((linked + 1))
  done
  unset chosen
done
((linked == 0)) || printf 'install.sh: linked %d host libraries into the tree\n' "$linked" >&2
((${#host_missing[@]} == 0)) ||
  warn "no host library for ${#host_missing[@]} sonames: ${host_missing[*]} (give --host-lib-dir; check-output reports them)"
((${#unreachable[@]} == 0)) ||
  warn "no \$ORIGIN runpath folder to link a host library into for: ${unreachable[*]:0:5}"

# Executables get glibc's interpreter, and must still load with it: the
# loader traces every library they need, as ldd does, without running them.
if [[ -n $interpreter ]]; then
  patched=0
  for file in ${has_interp[@]+"${has_interp[@]}"}; do
    "$patchelf" --set-interpreter "$interpreter" "$file"
    if ! timeout 60 env -u LD_LIBRARY_PATH -u LD_PRELOAD LD_TRACE_LOADED_OBJECTS=1 \
      "$interpreter" "$file" >"$tmp/trace" 2>&1; then
      die "\"${file#"$out"/}\" no longer loads after setting its interpreter: $(head -c 2000 "$tmp/trace")"
    fi
    patched=$((patched + 1))
  done
  printf 'install.sh: set the ELF interpreter of %d executables (each still loads)\n' "$patched" >&2
fi

# Nix-aware compilers (--cc-wrapper). In a Nix build there is no
# /usr/include, no /usr/lib/gcc, no crt1.o and no /lib64 loader: TheRock's
# clang finds them only through the flags nixpkgs' compiler wrapper records in
# its nix-support folder (glibc's headers and crt files, the unwrapped gcc for
# libstdc++ and crtbegin, the loader). read_cc_wrapper reads them;
# write_cc_wrappers writes, for each clang driver of lib/llvm/bin, a wrapper in
# libexec/rocm-nightly/llvm/bin (what hipcc runs: HIP_CLANG_PATH) and
# bin/amdclang, bin/amdclang++, and routes hipcc_cmake_linker_helper through
# them. A build's own flags (command line, NIX_CFLAGS_COMPILE, NIX_CFLAGS_LINK,
# NIX_LDFLAGS) come after the recorded ones, so they still apply and win.
cc_compile=() cxx_compile=() cc_link=() cxx_link=() cc_rpath=()
# Prints the words of nix-support/$1 (none when it is missing), one a line,
# without the -mtls-dialect flags of a gcc wrapper that clang rejects.
recorded_flags() {
  local file=$cc_wrapper/nix-support/$1 word words=()
  [[ -f $file ]] || return 0
  read -r -d '' -a words <"$file" || true
  for word in ${words[@]+"${words[@]}"}; do
    [[ $word != -mtls-dialect=* ]] || continue
    [[ $word != *[\"\'\$\`\\]* ]] ||
      die "--cc-wrapper \"$cc_wrapper\": flag \"$word\" of nix-support/$1 holds quotes, \$, backquotes or backslashes"
    printf '%s\n' "$word"
  done
}
read_cc_wrapper() {
  local support=$cc_wrapper/nix-support name gcc libc loader dir
  [[ -d $support ]] || die "--cc-wrapper \"$cc_wrapper\": no nix-support folder (give nixpkgs' stdenv.cc)"
  for name in orig-cc orig-libc dynamic-linker; do
    [[ -f $support/$name ]] || die "--cc-wrapper \"$cc_wrapper\": no nix-support/$name (give nixpkgs' stdenv.cc)"
  done
  read -r gcc <"$support/orig-cc" || true
  read -r libc <"$support/orig-libc" || true
  read -r loader <"$support/dynamic-linker" || true
  for name in "$gcc" "$libc" "$loader"; do
    [[ $name == /* && $name != *[\"\'\$\`\\[:space:]]* ]] ||
      die "--cc-wrapper \"$cc_wrapper\": \"$name\" is not a plain absolute path"
  done
  mapfile -t cc_compile < <(
    recorded_flags cc-cflags-before
    printf '%s\n' "--gcc-toolchain=$gcc" "--rocm-path=$rocm"
    [[ ! -d $rocm/lib/llvm/amdgcn/bitcode ]] || printf '%s\n' "--hip-device-lib-path=$rocm/lib/llvm/amdgcn/bitcode"
    recorded_flags cc-cflags
    recorded_flags libc-crt1-cflags
    recorded_flags libc-cflags
  )
  mapfile -t cxx_compile < <(printf '%s\n' "${cc_compile[@]}" && recorded_flags libcxx-cxxflags)
  # The runtime search path: every -L folder of the recorded link flags that
  # holds a shared library (the gcc runtime), glibc, and ROCm's lib.
  mapfile -t cc_link < <(recorded_flags cc-ldflags && recorded_flags libc-ldflags && printf '%s\n' "-L$libc/lib")
  for name in "${cc_link[@]}"; do
    [[ $name == -L* ]] || continue
    dir=${name#-L}
    if compgen -G "$dir/*.so*" >/dev/null && [[ " ${cc_rpath[*]-} " != *" -Wl,-rpath,$dir "* ]]; then
      cc_rpath+=("-Wl,-rpath,$dir")
    fi
  done
  cc_rpath+=("-Wl,-rpath,$rocm/lib")
  cc_link+=("-Wl,--dynamic-linker=$loader" "${cc_rpath[@]}")
  mapfile -t cxx_link < <(printf '%s\n' "${cc_link[@]}" && recorded_flags libcxx-ldflags)
}
# Writes the wrapper $1 running the clang driver $2 with the flags of $3
# (cc or cxx).
write_clang_wrapper() {
  local compile link
  if [[ $3 == cxx ]]; then
    compile="${cxx_compile[*]}" link="${cxx_link[*]}"
  else
    compile="${cc_compile[*]}" link="${cc_link[*]}"
  fi
  cat >"$1" <<EOF
#!$shell
# Generated by rocm-nightly's nix/install.sh (--cc-wrapper): runs TheRock's
# ${2##*/} with the libc, gcc and loader flags of a Nix build. Link flags are
# added only when it links (no -c, -S, -E, -M, -MM, -fsyntax-only; an operand).
set -f
link= operand=1
for arg in "\$@"; do
  case \$arg in
    -c | -S | -E | -M | -MM | -fsyntax-only) operand= && break ;;
    -*) ;;
    *) link=1 ;;
  esac
done
[ -n "\$operand" ] || link=
if [ -n "\$link" ]; then
  ldflags=
  for word in \${NIX_LDFLAGS-}; do ldflags="\$ldflags -Wl,\$word"; done
  set -- -fuse-ld=lld $compile "\$@" \${NIX_CFLAGS_COMPILE-} $link \${NIX_CFLAGS_LINK-} \$ldflags
else
  set -- $compile "\$@" \${NIX_CFLAGS_COMPILE-}
fi
exec "$2" "\$@"
EOF
  chmod 0555 "$1"
}
# The wrappers hipcc and CMake reach. libexec/rocm-nightly/llvm/lib leads to
# TheRock's lib/llvm/lib: hipcc looks for clang's headers beside HIP_CLANG_PATH.
write_cc_wrappers() {
  local dir=$out/libexec/rocm-nightly/llvm name file count=0
  mkdir -p "$dir/bin"
  [[ ! -d $rocm/lib/llvm/lib ]] || ln -sfn ../../../opt/rocm/lib/llvm/lib "$dir/lib"
  for file in "$rocm"/lib/llvm/bin/*; do
    name=${file##*/}
    [[ $name =~ ^clang(\+\+)?(-[0-9]+)?$ && -x $file ]] || continue
    if [[ $name == clang++* ]]; then
      write_clang_wrapper "$dir/bin/$name" "$file" cxx
    else
      write_clang_wrapper "$dir/bin/$name" "$file" cc
    fi
    count=$((count + 1))
  done
  ((count > 0)) || die "--cc-wrapper: no clang driver in lib/llvm/bin to wrap"
  for name in amdclang amdclang++; do
    [[ -e $dir/bin/${name#amd} ]] || continue
    rm -f "$out/bin/$name"
    ln -s "../libexec/rocm-nightly/llvm/bin/${name#amd}" "$out/bin/$name"
  done
  # TheRock's helper runs hipcc with HIP_CLANG_PATH=$1 (the raw clang folder
  # CMake found): the wrapped one instead.
  # A new file: bin/ may hold it as a read-only copy or a link into the tree,
  # which writing through would change (or fail on, as the build user).
  if [[ -e $out/bin/hipcc_cmake_linker_helper ]]; then
    rm -f "$out/bin/hipcc_cmake_linker_helper"
    cat >"$out/bin/hipcc_cmake_linker_helper" <<EOF
#!$shell
# Generated by rocm-nightly's nix/install.sh (--cc-wrapper): links through hipcc
# and the wrapped clang, whatever clang folder CMake passes first.
shift
HIP_CLANG_PATH="$dir/bin" exec "$out/bin/hipcc" "\$@"
EOF
    chmod 0555 "$out/bin/hipcc_cmake_linker_helper"
  fi
  printf 'install.sh: wrapped %d clang drivers with the flags of %s\n' "$count" "$cc_wrapper" >&2
}
# Lines of the setup hook: CMake's HIP compiler and GPU targets as defaults
# that a derivation's own environment and cmakeFlags override.
cc_setup_hook() {
  printf 'export HIPCXX="${HIPCXX:-%s}"\n' "$out/bin/amdclang++"
  [[ -z $hip_architectures ]] ||
    printf 'export CMAKE_HIP_ARCHITECTURES="${CMAKE_HIP_ARCHITECTURES:-%s}"\n' "$hip_architectures"
  cat <<'EOF'
rocmNightlyCMakeDefaults() {
  case " ${cmakeFlags[*]-} " in
    *-DCMAKE_HIP_COMPILER=*) ;;
    *) appendToVar cmakeFlags "-DCMAKE_HIP_COMPILER=$HIPCXX" ;;
  esac
  case " ${cmakeFlags[*]-} " in
    *-DCMAKE_HIP_ARCHITECTURES=*) ;;
    *) [ -z "${CMAKE_HIP_ARCHITECTURES-}" ] ||
      appendToVar cmakeFlags "-DCMAKE_HIP_ARCHITECTURES=$CMAKE_HIP_ARCHITECTURES" ;;
  esac
}
preConfigureHooks+=(rocmNightlyCMakeDefaults)
EOF
}
if [[ -n $cc_wrapper && ! -d $rocm/lib/llvm/bin ]]; then
  warn "--cc-wrapper: the tree has no lib/llvm/bin (TheRock's clang): no compilers to wrap"
  cc_wrapper=
fi
if [[ -n $cc_wrapper ]]; then
  [[ $hip_architectures =~ ^[A-Za-z0-9_:+\;-]*$ ]] ||
    die "--hip-architectures \"$hip_architectures\": only GPU target names separated by ;"
  read_cc_wrapper
fi

# One wrapper per executable of opt/rocm/bin, giving ROCm tools the
# environment they expect as defaults the caller's environment overrides
# (check-output verifies the exec'd path). No LD_LIBRARY_PATH: the tree's
# $ORIGIN runpaths find its libraries, and it would leak into child processes.
# HIP_PLATFORM=amd keeps hipcc from probing for nvcc; it finds clang and the
# device libraries through the last two.
#
# ROCM_PATH, ROCM_HOME and HIP_PATH name a whole tree: the caller's value
# wins, unless it is ROCM_NIGHTLY_MODULE_PATH (the value the NixOS module
# gives them system-wide, /opt/rocm, which may be another package's tree:
# not a choice of the caller) or leads to this very tree (then its own path,
# which a rebuild does not move).
exports=
for name in ROCM_PATH ROCM_HOME HIP_PATH; do
  exports+="case \"\${$name-}\" in
\"\" | \"$rocm\" | \"\${ROCM_NIGHTLY_MODULE_PATH:-$rocm}\") $name=\"$rocm\" ;;
*) [ \"\$(CDPATH= cd -P -- \"\$$name\" 2>/dev/null && pwd -P)\" != \"$rocm\" ] || $name=\"$rocm\" ;;
esac
export $name
"
done
defaults=(HIP_PLATFORM amd)
[[ ! -d $rocm/lib/llvm/amdgcn/bitcode ]] || defaults+=(HIP_DEVICE_LIB_PATH "$rocm/lib/llvm/amdgcn/bitcode")
if [[ -n $cc_wrapper ]]; then
  defaults+=(HIP_CLANG_PATH "$out/libexec/rocm-nightly/llvm/bin")
elif [[ -d $rocm/lib/llvm/bin ]]; then
  defaults+=(HIP_CLANG_PATH "$rocm/lib/llvm/bin")
fi
for ((i = 0; i < ${#defaults[@]}; i += 2)); do
  exports+="export ${defaults[i]}=\"\${${defaults[i]}:-${defaults[i + 1]}}\""$'\n'
done
mkdir -p "$out/bin"
wrapped=0
for file in "$rocm"/bin/*; do
  name=${file##*/}
  [[ -f $file && -x $file ]] || continue
  if ! resolve_in_tree "bin/$name"; then
    warn "not wrapping \"bin/$name\": $escape"
    continue
  fi
  if [[ ! $name =~ ^[A-Za-z0-9._+@=,-]+$ ]]; then
    warn "not wrapping \"$name\": unusual characters in the name"
    continue
  fi
  cat >"$out/bin/$name" <<EOF
#!$shell
# Generated by rocm-nightly's nix/install.sh: runs ROCm's $name with its environment.
${exports}export PATH="$rocm/bin\${PATH:+:\$PATH}"
exec "$rocm/bin/$name" "\$@"
EOF
  chmod 0555 "$out/bin/$name"
  wrapped=$((wrapped + 1))
done
((wrapped > 0)) || die "no executables in opt/rocm/bin to wrap"
[[ -z $cc_wrapper ]] || write_cc_wrappers

mkdir -p "$out/nix-support"
cat >"$out/nix-support/setup-hook" <<EOF
# rocm-nightly: let builds that depend on this package find ROCm (values a
# derivation sets itself win).
${exports}export CMAKE_PREFIX_PATH="$rocm\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}"
EOF
[[ -z $cc_wrapper ]] || cc_setup_hook >>"$out/nix-support/setup-hook"

# lib/ and include/ at the top, where nixpkgs' cc-wrapper (-L, -isystem, and
# the rpath of what a dependent links) and nix-ld's library list look.
for name in lib include; do
  [[ ! -d $rocm/$name || -e $out/$name || -L $out/$name ]] || ln -s "opt/rocm/$name" "$out/$name"
done

# OpenCL ICDs at $out/etc/OpenCL/vendors, where an ICD loader given this
# package looks, naming their library by absolute path (an .icd file holds a
# bare name the loader would look up in its own search path). Like the
# licenses below, each is read only where resolve_in_tree keeps it in the tree.
if resolve_in_tree etc/OpenCL/vendors && [[ -d $rocm/$resolved ]]; then
  vendors=$resolved
  mkdir -p "$out/etc/OpenCL/vendors"
  for icd in "$rocm/$vendors"/*.icd; do
    name=${icd##*/}
    if ! resolve_in_tree "$vendors/$name"; then
      warn "not copying \"$vendors/$name\": $escape"
      continue
    fi
    icd=$rocm/$resolved
    [[ -f $icd ]] || continue
    library=
    IFS= read -r library <"$icd" || true
    if [[ -n $library && $library != */* ]] && resolve_in_tree "lib/$library" &&
      [[ -f $rocm/$resolved ]]; then
      printf '%s\n' "$rocm/lib/$library" >"$out/etc/OpenCL/vendors/$name"
    else
      cp -- "$icd" "$out/etc/OpenCL/vendors/$name"
    fi
  done
elif [[ -n $escape ]]; then
  warn "not reading \"etc/OpenCL/vendors\": $escape"
fi

# Licenses: the tarball's top-level license files, else those of share/doc.
licenses="$out/share/licenses/$pname"
mkdir -p "$licenses"
found=0
for file in "$rocm"/LICENSE* "$rocm"/COPYING* "$rocm"/NOTICE*; do
  name=${file##*/}
  if ! resolve_in_tree "$name"; then
    warn "not copying \"$name\": $escape"
    continue
  fi
  [[ -f $rocm/$resolved ]] || continue
  cp -- "$rocm/$resolved" "$licenses/$name"
  found=$((found + 1))
done
if ((found == 0)) && resolve_in_tree share/doc && [[ -d $rocm/$resolved ]]; then
  # find follows no link below the folder: every file it names is the tree's.
  docs=$rocm/$resolved
  while IFS= read -r -d '' file; do
    relative=${file#"$docs"/}
    cp -- "$file" "$licenses/${relative//\//_}"
    found=$((found + 1))
  done < <(find "$docs" -maxdepth 3 -type f \( -iname 'LICENSE*' -o -iname 'COPYING*' \) -print0)
elif ((found == 0)) && [[ -n $escape ]]; then
  warn "not reading \"share/doc\": $escape"
fi
if ((found == 0)); then
  cat >"$licenses/README" <<'EOF'
This tarball carries no top-level license file. ROCm components are under
their own licenses (mostly MIT, NCSA and Apache-2.0); see
https://github.com/ROCm/TheRock and the files under opt/rocm/share/doc.
EOF
fi
printf 'install.sh: installed %s into %s (%d wrappers)\n' "$pname" "$out" "$wrapped" >&2
