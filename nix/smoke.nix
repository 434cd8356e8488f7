# A smoke test of one ROCm package on a real GPU: its rocminfo must list an
# agent of `isa`. `rocm-<isa>` is a system feature only a builder with that
# GPU (and /dev/kfd, /dev/dri in its sandbox) declares, so nothing else tries
# to build it; `update --gate` runs one on a candidate flake before pinning.
{
  runCommand,
  package,
  isa,
}:
runCommand "${package.name}-smoke-${isa}" { requiredSystemFeatures = [ "rocm-${isa}" ]; } ''
  status=0
  ${package}/bin/rocminfo > rocminfo.txt 2>&1 || status=$?
  if [ "$status" != 0 ] || ! grep -Eq '^[[:space:]]*Name:[[:space:]]+${isa}([[:space:]]|$)' rocminfo.txt; then
    cat rocminfo.txt
    echo "smoke-${isa}: rocminfo of ${package.name} (exit $status) lists no ${isa} agent" >&2
    exit 1
  fi
  cp rocminfo.txt "$out"
''
