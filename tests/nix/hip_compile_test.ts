// nix/install.sh --cc-wrapper, proven with a real compiler: a TheRock-shaped
// tree whose clang is Debian 12's clang-15 (tests/nix/_hip_fixture.sh), and a
// stand-in of nixpkgs' stdenv.cc whose nix-support files point at store-like
// folders holding Debian's glibc and gcc 12. install.sh runs as in a Nix
// build (its output under /nix/store, the stand-in store bound there); the
// proofs run in bubblewrap, in a root with no /usr/include, /usr/lib, /lib or
// /lib64 (only the store folders, /bin/sh as Nix's sandbox has it, and an
// /etc/ld.so.cache naming only the stand-in glibc's folder, which is what
// Nix's loader knows by itself), with nothing in the environment but PATH and
// HOME.
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathExists, repoRoot, requireTools, run, type RunResult, withTempDir } from "../_tools.ts";

const MULTIARCH = "/usr/lib/x86_64-linux-gnu";
const toolsOk = await requireTools(
  "HIP compile proofs (Debian: clang-15 lld-15 hipcc cmake bubblewrap patchelf busybox-static)",
  "bwrap",
  "patchelf",
  "busybox",
  "cmake",
  "make",
  "perl",
  "dpkg",
  "clang-15",
  "ld.lld-15",
  "hipcc",
);
/** Files of the Debian packages that have no command of their own. */
async function requireFiles(purpose: string, paths: string[]): Promise<boolean> {
  const missing: string[] = [];
  for (const path of paths) if (!await pathExists(path)) missing.push(path);
  if (missing.length === 0) return true;
  const reason = `${purpose}: ${missing.join(", ")} missing`;
  if (Deno.env.get("CI") === "true") {
    throw new Error(`${reason} (CI=true: .ci/run must install it)`);
  }
  console.log(`SKIP ${reason}`);
  return false;
}
const filesOk = toolsOk && await requireFiles(
  "HIP compile proofs (Debian: libamdhip64-dev rocm-device-libs)",
  [
    `${MULTIARCH}/libamdhip64.so.5`,
    `${MULTIARCH}/amdgcn/bitcode`,
    "/usr/include/hip/hip_runtime.h",
  ],
);

const OUT = "/nix/store/00000000000000000000000000000020-rocm-test";
const PLAIN = "/nix/store/00000000000000000000000000000021-rocm-plain";

const HIP_PROGRAM = `#include <hip/hip_runtime.h>
#include <cstdio>
__global__ void add_one(int *x) { x[threadIdx.x] += 1; }
int main() {
  int count = -1;
  hipError_t error = hipGetDeviceCount(&count);
  if (error == hipSuccess && count > 0) hipLaunchKernelGGL(add_one, dim3(1), dim3(1), 0, 0, nullptr);
  std::printf("%s\\n", hipGetErrorName(error));
  return 0;
}
`;
const CXX_PROGRAM = `#include <cstdio>
#include <vector>
int main() { std::vector<int> v{1, 2, 3}; std::printf("vector of %zu\\n", v.size()); }
`;
const CMAKE_PROJECT = `cmake_minimum_required(VERSION 3.21)
project(hipdemo LANGUAGES HIP)
add_executable(hipdemo main.hip)
`;

Deno.test({
  name:
    "install.sh --cc-wrapper: hipcc, amdclang++ and CMake build HIP and C++ in a Nix-shaped root",
  ignore: !filesOk,
  fn: async (t) => {
    await withTempDir(async (work) => {
      const fixture = await run("bash", [join(repoRoot, "tests/nix/_hip_fixture.sh"), work]);
      assert.equal(fixture.code, 0, fixture.stderr);
      const paths = Object.fromEntries(
        (await Deno.readTextFile(join(work, "paths"))).trim().split("\n").map((line) => {
          const at = line.indexOf("=");
          return [line.slice(0, at), line.slice(at + 1)];
        }),
      ) as Record<string, string>;
      const store = join(work, "store");
      const onHost = (path: string): string => join(store, path.slice("/nix/store/".length));

      /** install.sh as a Nix build runs it: the stand-in store at /nix/store. */
      const install = async (out: string, extra: string[]): Promise<RunResult> =>
        await run("bwrap", [
          ...[
            "--bind",
            "/",
            "/",
            "--bind",
            store,
            "/nix/store",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
          ],
          "bash",
          join(repoRoot, "nix/install.sh"),
          ...["--source", join(work, "tree"), "--out", out, "--pname", "rocm-test"],
          ...["--interpreter", paths.loader!, "--patchelf", "/usr/bin/patchelf"],
          ...["--host-lib-dir", `${paths.gcc_lib}/lib`, "--perl", `${paths.perl}/bin/perl`],
          ...["--shell", `${paths.busybox}/bin/sh`],
          ...extra,
        ]);
      const home = join(work, "home");
      await Deno.mkdir(join(home, "src/proj"), { recursive: true });
      await Deno.writeTextFile(join(home, "src/v.hip"), HIP_PROGRAM);
      await Deno.writeTextFile(join(home, "src/c.cpp"), CXX_PROGRAM);
      await Deno.writeTextFile(join(home, "src/proj/main.hip"), HIP_PROGRAM);
      await Deno.writeTextFile(join(home, "src/proj/CMakeLists.txt"), CMAKE_PROJECT);
      /** Runs a command in the proof root, with `out`'s bin first on PATH. */
      const inRoot = async (out: string, args: string[]): Promise<RunResult> => {
        const path = [
          `${out}/bin`,
          ...["busybox", "perl", "cmake", "make"].map((name) => `${paths[name]}/bin`),
        ]
          .join(":");
        return await run("bwrap", [
          ...["--ro-bind", store, "/nix/store", "--ro-bind", join(work, "etc"), "/etc"],
          ...["--bind", home, "/home", "--ro-bind", "/usr/bin/busybox", "/bin/sh"],
          ...["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--chdir", "/home/src"],
          ...["--clearenv", "--setenv", "PATH", path, "--setenv", "HOME", "/home"],
          ...args,
        ]);
      };
      const readelf = async (file: string): Promise<string> => {
        const result = await run("readelf", ["-l", "-d", file]);
        assert.equal(result.code, 0, result.stderr);
        return result.stdout;
      };

      await t.step(
        "install.sh writes the wrappers from the cc-wrapper's nix-support files",
        async () => {
          const result = await install(OUT, [
            "--cc-wrapper",
            paths.gcc_wrapper!,
            "--hip-architectures",
            "gfx1030",
          ]);
          assert.equal(result.code, 0, result.stderr);
          const hook = await Deno.readTextFile(onHost(`${OUT}/nix-support/setup-hook`));
          assert.match(hook, new RegExp(`HIPCXX="\\$\\{HIPCXX:-${OUT}/bin/amdclang\\+\\+\\}"`));
          assert.match(hook, /CMAKE_HIP_ARCHITECTURES="\$\{CMAKE_HIP_ARCHITECTURES:-gfx1030\}"/);
          assert.match(
            hook,
            new RegExp(
              `HIP_CLANG_PATH="\\$\\{HIP_CLANG_PATH:-${OUT}/libexec/rocm-nightly/llvm/bin\\}"`,
            ),
          );
        },
      );

      await t.step(
        "the wrapped hipcc builds a gfx1030 kernel program that runs there and finds no GPU",
        async () => {
          const build = await inRoot(OUT, [
            "hipcc",
            "--offload-arch=gfx1030",
            "-o",
            "/home/v",
            "v.hip",
          ]);
          assert.equal(build.code, 0, build.stderr);
          const ran = await inRoot(OUT, ["/home/v"]);
          assert.equal(ran.stdout.trim(), "hipErrorNoDevice", ran.stderr);
          const elf = await readelf(join(home, "v"));
          assert.ok(elf.includes(`[Requesting program interpreter: ${paths.loader}]`), elf);
          assert.match(elf, new RegExp(`RUNPATH.*${OUT}/opt/rocm/lib`));
          assert.match(elf, /NEEDED.*\[libamdhip64\.so\.5\]/);
          // The GPU code is in it, for gfx1030.
          const bytes = await Deno.readFile(join(home, "v"));
          assert.ok(new TextDecoder("latin1").decode(bytes).includes("amdgcn-amd-amdhsa--gfx1030"));
          // libamdhip64 comes from the package, through that runpath.
          const trace = await inRoot(OUT, ["env", "LD_TRACE_LOADED_OBJECTS=1", "/home/v"]);
          assert.match(
            trace.stdout,
            new RegExp(`libamdhip64\\.so\\.5 => ${OUT}/opt/rocm/lib/libamdhip64\\.so\\.5`),
          );
        },
      );

      await t.step(
        "a <vector>/<cstdio> program compiles and links through amdclang++",
        async () => {
          const build = await inRoot(OUT, ["amdclang++", "-o", "/home/c", "c.cpp"]);
          assert.equal(build.code, 0, build.stderr);
          const ran = await inRoot(OUT, ["/home/c"]);
          assert.equal(ran.stdout, "vector of 3\n", ran.stderr);
        },
      );

      await t.step("a CMake project with enable_language(HIP) configures and builds", async () => {
        const configure = await inRoot(OUT, [
          "cmake",
          ...["-S", "proj", "-B", "/home/build"],
          `-DCMAKE_HIP_COMPILER=${OUT}/bin/amdclang++`,
          "-DCMAKE_HIP_ARCHITECTURES=gfx1030",
        ]);
        assert.equal(configure.code, 0, configure.stdout + configure.stderr);
        assert.match(configure.stdout, /The HIP compiler identification is Clang/);
        const build = await inRoot(OUT, ["cmake", "--build", "/home/build"]);
        assert.equal(build.code, 0, build.stdout + build.stderr);
        const ran = await inRoot(OUT, ["/home/build/hipdemo"]);
        assert.equal(ran.stdout.trim(), "hipErrorNoDevice", ran.stderr);
      });

      await t.step("without --cc-wrapper the same compile fails on a missing header", async () => {
        const result = await install(PLAIN, []);
        assert.equal(result.code, 0, result.stderr);
        const build = await inRoot(PLAIN, [
          "hipcc",
          "--offload-arch=gfx1030",
          "-o",
          "/home/plain",
          "v.hip",
        ]);
        assert.notEqual(build.code, 0);
        assert.match(build.stderr, /fatal error: '[^']+' file not found/);
      });
    });
  },
});
