# passthru.tests.hip-compile: a HIP program with a kernel, compiled and linked
# by the package's Nix-aware hipcc for each of the package's ISAs
# (--offload-arch, so hipcc asks no GPU which it has) and run. No GPU is
# needed: without one it prints hipErrorNoDevice, so any builder runs it.
{
  lib,
  runCommand,
  package,
  isas,
}:
runCommand "${package.name}-hip-compile" { nativeBuildInputs = [ package ]; } ''
  cat > kernel.hip <<'HIP'
  #include <hip/hip_runtime.h>
  #include <cstdio>
  __global__ void add_one(int *x) { x[threadIdx.x] += 1; }
  int main() {
    int count = -1;
    hipError_t error = hipGetDeviceCount(&count);
    if (error == hipSuccess && count > 0) hipLaunchKernelGGL(add_one, dim3(1), dim3(1), 0, 0, nullptr);
    std::printf("%s\n", hipGetErrorName(error));
    return 0;
  }
  HIP
  hipcc ${builtins.concatStringsSep " " (map (isa: "--offload-arch=${isa}") isas)} -o kernel kernel.hip
  for isa in ${lib.escapeShellArgs isas}; do
    grep -q "amdgcn-amd-amdhsa--$isa" kernel || { echo "hip-compile: no code object for $isa" >&2; exit 1; }
  done
  ./kernel > "$out"
''
