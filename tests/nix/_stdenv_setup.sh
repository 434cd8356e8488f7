# A stand-in of nixpkgs' pkgs/stdenv/generic/setup.sh, as far as setup hooks
# of this repository reach (tests/nix/_stdenv_hooks.ts runs it): sources each
# HOOK file in order under `set -eu -o pipefail`, then `runHook preConfigure`
# (the derivation's own preConfigure function or string, then each entry of
# the preConfigureHooks array, which is where CMake's configure phase reads
# cmakeFlags after), and prints the variables and flags a configure gets.
#
# usage: _stdenv_setup.sh [--structured FLAG... --] HOOK...
#   --structured   a derivation with __structuredAttrs: cmakeFlags is the
#                  array FLAG... (else it is the environment's string, if any)
set -eu -o pipefail

if [[ ${1-} == --structured ]]; then
  shift
  __structuredAttrs=1
  cmakeFlags=()
  while [[ $1 != -- ]]; do
    cmakeFlags+=("$1")
    shift
  done
  shift
fi

# Each hook of NAME: the function or string NAME, then the entries of NAMEHooks.
runHook() {
  local name=$1 entries="${1}Hooks[@]" entry
  shift
  if declare -F "$name" >/dev/null; then
    "$name" "$@"
  elif [[ -n ${!name-} ]]; then
    eval "${!name}"
  fi
  for entry in ${!entries+"${!entries}"}; do
    if declare -F "$entry" >/dev/null; then "$entry" "$@"; else eval "$entry"; fi
  done
}
# VALUE… appended to the variable NAME: new elements of an array, words of a string.
appendToVar() {
  local -n target=$1
  shift
  if [[ $(declare -p "${!target}" 2>/dev/null) == "declare -a"* ]]; then
    target+=("$@")
  else
    target="${target-} $*"
  fi
}

# stdenv.cc's own hook has set these before any input's hook runs.
export CC="${CC:-gcc}" CXX="${CXX:-g++}"
for hook in "$@"; do
  # shellcheck disable=SC1090
  source "$hook"
done
runHook preConfigure

printf '%s=%s\n' CC "$CC" CXX "$CXX" HIPCXX "${HIPCXX-}" CMAKE_HIP_ARCHITECTURES "${CMAKE_HIP_ARCHITECTURES-}"
# The flags as CMake's hook reads them: an array's elements, a string's words.
if [[ $(declare -p cmakeFlags 2>/dev/null) == "declare -a"* ]]; then
  flags=(${cmakeFlags[@]+"${cmakeFlags[@]}"})
else
  read -r -a flags <<<"${cmakeFlags-}" || true
fi
for flag in ${flags[@]+"${flags[@]}"}; do
  printf 'flag=%s\n' "$flag"
done
