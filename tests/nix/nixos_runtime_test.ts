// The package on NixOS, with real ROCm ELF files: a TheRock-shaped tarball
// made of Debian's rocminfo package files (rocminfo, libhsa-runtime64,
// libhsakmt and the system libraries TheRock bundles under
// lib/rocm_sysdeps/lib), installed by nix/install.sh as nix/package.nix does,
// then run inside bubblewrap in a root whose only library folder is glibc's.
//
// What the bubblewrap root stands for (each bind below says the same):
//   - `/` is an empty tmpfs: no /usr/lib, no /etc/ld.so.cache, no /lib64.
//   - the glibc stand-in (the host's loader, libc, libm… copied into one
//     folder, as Nix's glibc output holds them) is bound at its own path, the
//     interpreter install.sh was given, like /nix/store/…-glibc/lib;
//   - the same folder is bound at /lib/x86_64-linux-gnu, the copied loader's
//     compiled-in default search path (`ld.so --help`): Nix's loader searches
//     only its own folder by default, and so does this one here;
//   - the gcc-runtime stand-in (libstdc++, libgcc_s), given as --host-lib-dir,
//     and the output are bound at their own paths, as store paths are;
//   - busybox (static) is /bin/sh, the wrappers' shell.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyElf,
  filesBelow,
  gccRuntime,
  glibcStandIn,
  writeTheRockShapedTree,
} from "../_elf_fixtures.ts";
import { writeSampleRocmTree } from "../../lib/package/sample_rocm.ts";
import { kernelKind } from "../../lib/releases/kernel_files.ts";
import { repoRoot, requireTools, run, type RunResult, withTempDir } from "../_tools.ts";

const ok = await requireTools(
  "NixOS runtime tests with real ROCm ELF files",
  "bwrap",
  "busybox",
  "patchelf",
  "gcc",
  "rocminfo",
  "bash",
  "tar",
);

const DEBIAN_GLIBC = "/lib/x86_64-linux-gnu";
const LOADER = "ld-linux-x86-64.so.2";
const GCC_RUNTIME = ["libstdc++.so.6", "libgcc_s.so.1"];

async function must(cmd: string, args: string[]): Promise<RunResult> {
  const result = await run(cmd, args);
  assert.equal(result.code, 0, `${cmd} ${args.join(" ")}: ${result.stderr}`);
  return result;
}

/** The TheRock-shaped tree of tests/_elf_fixtures.ts, and its tarball. */
async function therockTarball(dir: string): Promise<{ tree: string; tarball: string }> {
  const tree = join(dir, "tree");
  await writeTheRockShapedTree(tree, `/lib64/${LOADER}`); // the interpreter as shipped
  await Deno.mkdir(join(tree, ".info"));
  await Deno.writeTextFile(join(tree, ".info/version"), "7.12.0a20260308\n");
  await Deno.writeTextFile(join(tree, "LICENSE"), "MIT\n");
  const tarball = join(dir, "therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz");
  await must("tar", ["-czf", tarball, "-C", tree, "."]);
  return { tree, tarball };
}

/**
 * Stand-in store folders: glibc's loader and libraries alone (as Nix's glibc
 * output holds them); the gcc runtime (as `stdenv.cc.cc.lib` does).
 */
async function storeFolders(dir: string): Promise<{ glibc: string; gcc: string }> {
  const { lib: glibc } = await glibcStandIn(join(dir, "store"));
  return { glibc, gcc: await gccRuntime(join(dir, "store")) };
}

async function install(
  tarball: string,
  out: string,
  glibc: string,
  hostLibDirs: string[],
): Promise<RunResult> {
  return await run("bash", [
    join(repoRoot, "nix/install.sh"),
    ...["--tarball", tarball, "--out", out, "--pname", "rocm-nightly-gfx1151"],
    ...["--interpreter", join(glibc, LOADER), "--patchelf", "patchelf", "--shell", "/bin/sh"],
    ...hostLibDirs.flatMap((dir) => ["--host-lib-dir", dir]),
  ]);
}

/** Runs `command` in the root described at the top, with an empty environment. */
async function inRoot(
  binds: { glibc: string; paths: string[] },
  command: string[],
): Promise<RunResult> {
  const busybox = await Deno.realPath("/usr/bin/busybox");
  return await run("bwrap", [
    ...["--unshare-all", "--die-with-parent", "--tmpfs", "/"],
    ...["--ro-bind", busybox, "/bin/sh"], // the wrappers' shell (static)
    ...["--ro-bind", binds.glibc, binds.glibc], // glibc's store folder: the interpreter
    ...["--ro-bind", binds.glibc, DEBIAN_GLIBC], // the loader's default search path
    ...binds.paths.flatMap((path) => ["--ro-bind", path, path]), // other store paths
    ...["--proc", "/proc", "--dev", "/dev"],
    ...["--clearenv", "--setenv", "PATH", "/bin"],
    ...command,
  ]);
}

async function checkOutput(out: string, ...args: string[]): Promise<RunResult> {
  const script = join(repoRoot, "scripts/check-output.ts");
  return await run(Deno.execPath(), ["run", "--allow-read", "--allow-ffi", script, out, ...args]);
}

const LOADER_ERROR = /error while loading shared libraries|cannot open shared object file/;

Deno.test({
  name: "install.sh output runs real ROCm ELF files in a root whose only libraries are glibc's",
  ignore: !ok,
  fn: async (t) => {
    await withTempDir(async (dir) => {
      const { tree, tarball } = await therockTarball(dir);
      const { glibc, gcc } = await storeFolders(dir);
      const out = join(dir, "store/rocm-nightly-gfx1151");
      const installed = await install(tarball, out, glibc, [gcc]);
      assert.equal(installed.code, 0, installed.stderr);
      const rocm = join(out, "opt/rocm");
      const binds = { glibc, paths: [gcc, out] };

      await t.step(
        "the root has no /usr/lib, no /lib64, no ld.so cache; glibc sits at the default path",
        async () => {
          const probe = await inRoot(binds, [
            "/bin/sh",
            "-c",
            "for p in /usr/lib /usr /lib64 /etc/ld.so.cache; do [ ! -e $p ] || echo $p; done",
          ]);
          assert.equal(probe.code, 0, probe.stderr);
          assert.equal(probe.stdout, "");
          // The bind at DEBIAN_GLIBC is where this loader looks without a cache.
          const help = await must(join(glibc, LOADER), ["--help"]);
          assert.match(help.stdout, new RegExp(`\\n\\s+${DEBIAN_GLIBC} \\(system search path\\)`));
        },
      );

      await t.step("the wrapped rocminfo reaches HSA, never a loader error", async () => {
        const result = await inRoot(binds, [join(out, "bin/rocminfo")]);
        const output = result.stdout + result.stderr;
        assert.doesNotMatch(output, LOADER_ERROR);
        assert.match(output, /ROCk module is NOT loaded|HSA_STATUS_ERROR|hsa api call failure/);
      });

      await t.step("a C program without ROCm's environment dlopens libhsa-runtime64", async () => {
        const source = join(dir, "prog/dlopen.c");
        await Deno.mkdir(join(dir, "prog"));
        await Deno.writeTextFile(
          source,
          `#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
  void *library = dlopen(argv[1], RTLD_NOW);
  if (library == NULL) { printf("dlopen failed: %s\\n", dlerror()); return 1; }
  printf("hsa_init %s\\n", dlsym(library, "hsa_init") != NULL ? "found" : "missing");
  return 0;
}
`,
        );
        // Linked as Nix's cc-wrapper links: with glibc's loader as interpreter.
        const program = join(dir, "prog/dlopen");
        await must("gcc", [
          ...["-o", program, source, `-Wl,--dynamic-linker=${join(glibc, LOADER)}`],
        ]);
        const result = await inRoot(
          { glibc, paths: [...binds.paths, join(dir, "prog")] },
          [program, join(rocm, "lib/libhsa-runtime64.so.1")],
        );
        assert.equal(result.code, 0, result.stdout + result.stderr);
        assert.equal(result.stdout, "hsa_init found\n");
      });

      await t.step("every shared library is byte-identical to the tarball's", async () => {
        const libraries = filesBelow(join(tree, "lib"));
        assert.equal(libraries.length, 7); // libhsa-runtime64, libhsakmt and five sysdeps
        for (const library of libraries) {
          const path = library.slice(tree.length + 1);
          assert.deepEqual(
            await Deno.readFile(join(rocm, path)),
            await Deno.readFile(library),
            path,
          );
        }
        const interpreter = await must("patchelf", [
          "--print-interpreter",
          join(rocm, "bin/rocminfo"),
        ]);
        assert.equal(interpreter.stdout.trim(), join(glibc, LOADER));
        // The host libraries went where the files' own runpaths look.
        for (const name of GCC_RUNTIME) {
          assert.equal(await Deno.readLink(join(rocm, "lib", name)), join(gcc, name));
        }
      });

      await t.step("check-output passes the result", async () => {
        const check = await checkOutput(out);
        assert.equal(check.code, 0, check.stdout);
      });

      await t.step(
        "without --host-lib-dir: the root and check-output fail on libstdc++",
        async () => {
          const bare = join(dir, "store/rocm-nightly-bare");
          const result = await install(tarball, bare, glibc, []);
          assert.equal(result.code, 0, result.stderr);
          assert.match(
            result.stderr,
            /no host library for 2 sonames: libgcc_s.so.1 .*libstdc\+\+.so.6/,
          );
          const failed = await inRoot({ glibc, paths: [bare] }, [join(bare, "bin/rocminfo")]);
          assert.notEqual(failed.code, 0);
          assert.match(failed.stderr, /libstdc\+\+.so.6: cannot open shared object file/);
          // check-output sees it too, from the ELF files alone.
          const check = await checkOutput(bare, "--json");
          assert.equal(check.code, 1, check.stdout);
          const report = JSON.parse(check.stdout) as {
            failures: { check: string; soname?: string; count?: number }[];
          };
          const libstdcxx = report.failures.find((f) => f.soname === "libstdc++.so.6");
          assert.deepEqual(
            { check: libstdcxx?.check, count: libstdcxx?.count },
            { check: "elf-needed", count: 2 },
          );
          const allowed = await checkOutput(
            bare,
            ...["--allow-missing", "libstdc++.so.*", "--allow-missing", "libgcc_s.so.?"],
          );
          assert.equal(allowed.code, 0, allowed.stdout);
        },
      );
    });
  },
});

Deno.test({
  name: "a package pruned to gfx1100 keeps its libraries byte for byte and still runs rocminfo",
  ignore: !ok,
  fn: async (t) => {
    await withTempDir(async (dir) => {
      const { tree } = await therockTarball(dir);
      // GPU code of 4 ISAs and their generic targets, every kind, from the
      // sample tree; per-ISA shared libraries that are real ELF files.
      const sample = join(dir, "sample");
      await writeSampleRocmTree(sample, {
        isas: ["gfx1100", "gfx1101", "gfx1151", "gfx90a"],
        everyKind: true,
      });
      for (const file of filesBelow(sample)) {
        const path = file.slice(sample.length + 1);
        if (kernelKind(path) === undefined && !path.startsWith("include/rocwmma/")) continue;
        await Deno.mkdir(join(tree, path, ".."), { recursive: true });
        await Deno.copyFile(file, join(tree, path));
      }
      for (const isa of ["gfx1100", "gfx1101", "gfx1151", "gfx90a"]) {
        await copyElf(
          "/usr/lib/x86_64-linux-gnu/libxshmfence.so.1",
          join(tree, `lib/libMIOpenCKGroupedConv_${isa}.so`),
          { runpath: "$ORIGIN" },
        );
      }
      const tarball = join(dir, "therock-dist-linux-gfx110X-all-7.12.0a20260308.tar.gz");
      await must("tar", ["-czf", tarball, "-C", tree, "."]);
      const { glibc, gcc } = await storeFolders(dir);
      const out = join(dir, "store/rocm-nightly-gfx1100");
      const installed = await install(tarball, out, glibc, [gcc]);
      assert.equal(installed.code, 0, installed.stderr);
      const rocm = join(out, "opt/rocm");
      const before = new Map<string, Uint8Array>();
      for (const file of filesBelow(rocm)) before.set(file, await Deno.readFile(file));
      // As nix/package.nix's install phase runs it.
      const pruned = await run(Deno.execPath(), [
        ...["run", "--no-config", "--allow-read", "--allow-write", "--allow-ffi"],
        ...[join(repoRoot, "scripts/prune.ts"), out, "--isa", "gfx1100"],
      ]);
      assert.equal(pruned.code, 0, pruned.stderr);

      await t.step(
        "every file left, each shared library among them, is byte-identical",
        async () => {
          const after = filesBelow(rocm);
          const libraries = after.filter((file) => /\.so(\.|$)/.test(file));
          assert.equal(libraries.length, 11); // 7 of rocminfo's, 4 per-ISA ones
          for (const file of after) {
            assert.deepEqual(await Deno.readFile(file), before.get(file), file);
          }
          const gone = [...before.keys()].filter((file) => !after.includes(file));
          assert.ok(gone.every((file) => kernelKind(file.slice(rocm.length + 1)) !== undefined));
          const kernels = after.map((file) => file.slice(rocm.length + 1))
            .filter((path) => kernelKind(path) !== undefined);
          assert.deepEqual(
            kernels.filter((path) => !/gfx1100|gfx110X|gfx11-generic/.test(path)),
            [],
          );
          assert.equal(kernels.length, 11);
        },
      );

      await t.step("check-output --isa gfx1100 passes", async () => {
        const result = await checkOutput(out, "--isa", "gfx1100", "--target", "gfx1100");
        assert.equal(result.code, 0, result.stdout + result.stderr);
      });

      await t.step(
        "the wrapped rocminfo still reaches HSA in the root without /usr/lib",
        async () => {
          const result = await inRoot({ glibc, paths: [gcc, out] }, [join(out, "bin/rocminfo")]);
          const output = result.stdout + result.stderr;
          assert.doesNotMatch(output, LOADER_ERROR);
          assert.match(output, /ROCk module is NOT loaded|HSA_STATUS_ERROR|hsa api call failure/);
        },
      );
    });
  },
});
