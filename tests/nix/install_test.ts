// nix/install.sh, the install steps of nix/package.nix, run here without
// nixpkgs on a tarball made by the system tar from a generated ROCm tree.
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeSampleRocmTree } from "../../lib/package/sample_rocm.ts";
import { copyElf, glibcStandIn, SYSTEM_LIBS } from "../_elf_fixtures.ts";
import {
  addSpecialFiles,
  assertNoHostBytes,
  type SpecialFile,
  writeLeakyTree,
  writeTreeWithHostFolders,
} from "../_host_leaks.ts";
import { repoRoot, requireTools, run, withTempDir } from "../_tools.ts";
import { installWithCcWrapper, runPreConfigure } from "./_stdenv_hooks.ts";

const ok = await requireTools("install.sh tests", "bash", "tar", "gzip", "od");
const elfOk = await requireTools("install.sh tests on real ELF files", "patchelf", "busybox");
const BUSYBOX = "/usr/bin/busybox";
const INSTALL = join(repoRoot, "nix/install.sh");
const CHECK = join(repoRoot, "scripts/check-output.ts");

/** A sample tree plus a tool printing the environment the wrapper gives it. */
async function sampleTarball(dir: string, isas = ["gfx1100", "gfx1151"]): Promise<string> {
  const tree = join(dir, "tree");
  await writeSampleRocmTree(tree, { isas });
  await Deno.writeTextFile(
    join(tree, "bin/print-env"),
    '#!/bin/sh\necho "$ROCM_PATH|$ROCM_HOME|$HIP_PATH|$HIP_PLATFORM|$HIP_DEVICE_LIB_PATH|$HIP_CLANG_PATH|$PATH|$LD_LIBRARY_PATH|$*"\n',
    { mode: 0o755 },
  );
  await Deno.writeTextFile(join(tree, "bin/README.txt"), "not executable\n");
  const tarball = join(dir, "therock-dist-linux-test-7.12.0a20260308.tar.gz");
  const tar = await run("tar", ["-czf", tarball, "-C", tree, "."]);
  assert.equal(tar.code, 0, tar.stderr);
  return tarball;
}

async function install(args: string[]): Promise<{ code: number; stderr: string }> {
  return await run("bash", [INSTALL, ...args]);
}

/** The sample tarball installed into `<dir>/out`; `rocm` is its real opt/rocm path. */
async function installSample(dir: string): Promise<{ out: string; rocm: string }> {
  const out = join(dir, "out");
  const tarball = await sampleTarball(dir);
  assert.equal((await install(["--tarball", tarball, "--out", out, "--pname", "p"])).code, 0);
  return { out, rocm: join(await Deno.realPath(out), "opt/rocm") };
}

async function checkOutput(
  out: string,
  ...args: string[]
): Promise<{ code: number; stdout: string }> {
  return await run(Deno.execPath(), ["run", "--allow-read", CHECK, out, ...args]);
}

Deno.test({
  name: "install.sh output of a generated tarball passes check-output, with and without --target",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const out = join(dir, "out");
      const result = await install([
        "--tarball",
        await sampleTarball(dir),
        "--out",
        out,
        "--pname",
        "rocm-nightly-test",
      ]);
      assert.equal(result.code, 0, result.stderr);
      for (
        const args of [[], ["--target", "gfx1151"], ["--target", "gfx1100"], [
          "--target",
          "gfx110X-all",
        ]]
      ) {
        const check = await checkOutput(out, ...args);
        assert.equal(check.code, 0, `${args.join(" ")}: ${check.stdout}`);
        assert.match(check.stdout, /: ok \(/);
      }
      const missing = await checkOutput(out, "--target", "gfx1201");
      assert.equal(missing.code, 1, missing.stdout);
    });
  },
});

Deno.test({
  name: "install.sh keeps dot-directories, links amdgcn and installs the license",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const out = join(dir, "out");
      const tarball = await sampleTarball(dir);
      const result = await install([
        "--tarball",
        tarball,
        "--out",
        out,
        "--pname",
        "rocm-nightly-x",
      ]);
      assert.equal(result.code, 0, result.stderr);
      const rocm = join(out, "opt/rocm");
      assert.equal(await Deno.readTextFile(join(rocm, ".info/version")), "7.12.0a20260308\n");
      await Deno.stat(join(rocm, ".kpack/blas_lib_gfx1151.kpack"));
      await Deno.stat(join(rocm, ".kpack/rccl_gfx110X.kpack"));
      assert.equal(await Deno.readLink(join(rocm, "amdgcn")), "lib/llvm/amdgcn");
      await Deno.stat(join(rocm, "amdgcn/bitcode/ocml.bc"));
      assert.match(
        await Deno.readTextFile(join(out, "share/licenses/rocm-nightly-x/LICENSE")),
        /Sample license/,
      );
      // The hard-link pair survives as a pair.
      const a = await Deno.stat(join(rocm, "lib/libhsa-runtime64.so.1"));
      const b = await Deno.stat(join(rocm, "lib/libhsa-runtime64.so.1.18.0"));
      assert.equal(a.ino, b.ino);
    });
  },
});

Deno.test({
  name: "install.sh wrappers give the ROCm environment as defaults and exec the real tool",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const { out, rocm } = await installSample(dir);
      const names = [...Deno.readDirSync(join(out, "bin"))].map((e) => e.name).sort();
      assert.deepEqual(names, ["amd-smi", "clang", "hipcc", "print-env", "rocminfo"]);
      const env = await run(join(out, "bin/print-env"), ["a b"], {
        env: { PATH: "/usr/bin:/bin", LD_LIBRARY_PATH: "/usr/lib/x" },
      });
      assert.equal(env.code, 0, env.stderr);
      const llvm = `${rocm}/lib/llvm`;
      assert.equal(
        env.stdout,
        `${rocm}|${rocm}|${rocm}|amd|${llvm}/amdgcn/bitcode|${llvm}/bin|${rocm}/bin:/usr/bin:/bin|/usr/lib/x|a b\n`,
      );
      // The caller's values win; LD_LIBRARY_PATH is never added.
      const overridden = await run(join(out, "bin/print-env"), [], {
        env: {
          PATH: "/bin",
          ...Object.fromEntries(
            ["ROCM_PATH", "ROCM_HOME", "HIP_PATH", "HIP_PLATFORM", "HIP_DEVICE_LIB_PATH"]
              .map((name) => [name, `my-${name}`]),
          ),
          HIP_CLANG_PATH: "/c",
        },
      });
      assert.equal(
        overridden.stdout,
        `my-ROCM_PATH|my-ROCM_HOME|my-HIP_PATH|my-HIP_PLATFORM|my-HIP_DEVICE_LIB_PATH|/c|${rocm}/bin:/bin||\n`,
      );
      const clang = await run(join(out, "bin/clang"), []);
      assert.equal(clang.stdout, "clang 7.12.0a20260308 (sample ROCm tree)\n");
      const wrapper = await Deno.readTextFile(join(out, "bin/rocminfo"));
      assert.ok(wrapper.startsWith("#!/bin/sh\n"));
      assert.ok(!wrapper.includes("LD_LIBRARY_PATH"), wrapper);
      assert.ok(wrapper.trimEnd().endsWith(`exec "${rocm}/bin/rocminfo" "$@"`), wrapper);
      // lib/ and include/ at the top (cc-wrapper, nix-ld) lead into opt/rocm.
      assert.equal(await Deno.readLink(join(out, "lib")), "opt/rocm/lib");
      assert.equal(await Deno.readLink(join(out, "include")), "opt/rocm/include");
    });
  },
});

Deno.test({
  name:
    "install.sh wrappers take the NixOS module's ROCM_PATH, or a link to their own tree, as theirs",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const { out, rocm } = await installSample(dir);
      // /opt/rocm of the module: a link to another package's tree.
      const other = join(dir, "other/opt/rocm");
      await Deno.mkdir(other, { recursive: true });
      await Deno.symlink(other, join(dir, "opt-rocm"));
      await Deno.symlink(rocm, join(dir, "same"));
      const paths = async (env: Record<string, string>): Promise<string> => {
        const result = await run(join(out, "bin/print-env"), [], {
          env: { PATH: "/usr/bin:/bin", ...env },
        });
        assert.equal(result.code, 0, result.stderr);
        // ROCM_PATH|ROCM_HOME|HIP_PATH
        return result.stdout.split("|").slice(0, 3).join("|");
      };
      const own = `${rocm}|${rocm}|${rocm}`;
      assert.equal(await paths({}), own, "unset");
      const same = join(dir, "same");
      assert.equal(await paths({ ROCM_PATH: same, ROCM_HOME: same, HIP_PATH: same }), own);
      // The module's value, whatever tree its link leads to, is not the caller's choice.
      const module = join(dir, "opt-rocm");
      assert.equal(
        await paths({ ROCM_PATH: module, HIP_PATH: module, ROCM_NIGHTLY_MODULE_PATH: module }),
        own,
      );
      // Another tree, or the same link without the module's variable, is the caller's.
      assert.equal(await paths({ ROCM_PATH: other }), `${other}|${rocm}|${rocm}`);
      assert.equal(
        await paths({ ROCM_PATH: module, HIP_PATH: other, ROCM_NIGHTLY_MODULE_PATH: "/opt/rocm" }),
        `${module}|${rocm}|${other}`,
      );
      assert.equal(await paths({ HIP_PATH: "/nonexistent" }), `${rocm}|${rocm}|/nonexistent`);
      // A CDPATH of the caller does not lead the comparison astray.
      assert.equal(await paths({ ROCM_PATH: "same", CDPATH: dir }), `same|${rocm}|${rocm}`);
    });
  },
});

Deno.test({
  name: "install.sh setup hook gives ROCm's variables as defaults and extends CMAKE_PREFIX_PATH",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const { out, rocm } = await installSample(dir);
      const hook = join(out, "nix-support/setup-hook");
      const names =
        "$ROCM_PATH|$ROCM_HOME|$HIP_PATH|$HIP_PLATFORM|$HIP_DEVICE_LIB_PATH|$HIP_CLANG_PATH";
      const script = `. "${hook}"; echo "${names}|$CMAKE_PREFIX_PATH"`;
      const llvm = `${rocm}/lib/llvm`;
      const values = `${rocm}|${rocm}|${rocm}|amd|${llvm}/amdgcn/bitcode|${llvm}/bin`;
      const withPrefix = await run("sh", ["-c", script], { env: { CMAKE_PREFIX_PATH: "/x" } });
      assert.equal(withPrefix.stdout, `${values}|${rocm}:/x\n`);
      const without = await run("sh", ["-c", `unset CMAKE_PREFIX_PATH; ${script}`]);
      assert.equal(without.stdout, `${values}|${rocm}\n`);
      const mine = await run("sh", ["-c", script], {
        env: { ROCM_PATH: "/mine", HIP_PLATFORM: "x" },
      });
      assert.match(mine.stdout, /^\/mine\|[^|]+\|[^|]+\|x\|/);
      assert.ok(!(await Deno.readTextFile(hook)).includes("LD_LIBRARY_PATH"));
    });
  },
});

Deno.test({
  name:
    "install.sh --cc-wrapper setup hook, run as stdenv runs it: HIPCXX and CMAKE_HIP_* defaults a derivation overrides",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const out = await installWithCcWrapper(dir, "gfx1100;gfx1151");
      const hook = join(out, "nix-support/setup-hook");
      const hipcxx = `${out}/bin/amdclang++`;
      // Nothing in cmakeFlags: the package's compiler and ISAs; CC and CXX
      // stay stdenv's (only hipStdenv's own hook changes them).
      const plain = await runPreConfigure([hook]);
      assert.deepEqual(plain.vars, {
        CC: "gcc",
        CXX: "g++",
        HIPCXX: hipcxx,
        CMAKE_HIP_ARCHITECTURES: "gfx1100;gfx1151",
      });
      assert.deepEqual(plain.cmakeFlags, [
        `-DCMAKE_HIP_COMPILER=${hipcxx}`,
        "-DCMAKE_HIP_ARCHITECTURES=gfx1100;gfx1151",
      ]);
      // cmakeFlags naming the GPU targets (a string, as without
      // __structuredAttrs): those stay the only ones; the compiler is added.
      const named = await runPreConfigure([hook], {
        cmakeFlags: "-DGGML_HIP=ON -DCMAKE_HIP_ARCHITECTURES=gfx1151",
      });
      assert.deepEqual(named.cmakeFlags, [
        "-DGGML_HIP=ON",
        "-DCMAKE_HIP_ARCHITECTURES=gfx1151",
        `-DCMAKE_HIP_COMPILER=${hipcxx}`,
      ]);
      // An array (__structuredAttrs): each default its own element, unless named.
      assert.deepEqual(
        (await runPreConfigure([hook], { cmakeFlags: ["-DGGML_HIP=ON"] })).cmakeFlags,
        [
          "-DGGML_HIP=ON",
          `-DCMAKE_HIP_COMPILER=${hipcxx}`,
          "-DCMAKE_HIP_ARCHITECTURES=gfx1100;gfx1151",
        ],
      );
      const both = ["-DCMAKE_HIP_ARCHITECTURES=gfx1151", "-DCMAKE_HIP_COMPILER=/my/clang++"];
      assert.deepEqual((await runPreConfigure([hook], { cmakeFlags: both })).cmakeFlags, both);
      // The derivation's own HIPCXX and CMAKE_HIP_ARCHITECTURES win, and are what CMake gets.
      const mine = await runPreConfigure([hook], {
        env: { HIPCXX: "/my/hip/clang++", CMAKE_HIP_ARCHITECTURES: "gfx1102" },
      });
      assert.equal(mine.vars.HIPCXX, "/my/hip/clang++");
      assert.deepEqual(mine.cmakeFlags, [
        "-DCMAKE_HIP_COMPILER=/my/hip/clang++",
        "-DCMAKE_HIP_ARCHITECTURES=gfx1102",
      ]);
      // No --hip-architectures: no GPU-target default (CMake's own applies).
      const bare = await installWithCcWrapper(join(dir, "bare"), "");
      const none = await runPreConfigure([join(bare, "nix-support/setup-hook")]);
      assert.equal(none.vars.CMAKE_HIP_ARCHITECTURES, "");
      assert.deepEqual(none.cmakeFlags, [`-DCMAKE_HIP_COMPILER=${bare}/bin/amdclang++`]);
    });
  },
});

Deno.test({
  name: "install.sh --source copies an unpacked tree including dot-directories",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const tree = join(dir, "tree");
      await writeSampleRocmTree(tree, { isas: ["gfx1151"] });
      const out = join(dir, "out");
      const result = await install(["--source", tree, "--out", out, "--pname", "p"]);
      assert.equal(result.code, 0, result.stderr);
      await Deno.stat(join(out, "opt/rocm/.kpack/blas_lib_gfx1151.kpack"));
      assert.equal((await checkOutput(out, "--target", "gfx1151")).code, 0);
    });
  },
});

async function patchelf(...args: string[]): Promise<string> {
  const result = await run("patchelf", args);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.trim();
}

/** A sample tree without kernel files, at `dir/tree`. */
async function kernelFreeTree(dir: string): Promise<string> {
  const tree = join(dir, "tree");
  await writeSampleRocmTree(tree, { isas: [] });
  return tree;
}

/** A sample tree (no kernels) with a real ELF executable at lib/llvm/bin/real-elf. */
async function treeWithElf(dir: string): Promise<string> {
  const tree = await kernelFreeTree(dir);
  await copyElf("/bin/true", join(tree, "lib/llvm/bin/real-elf"));
  return tree;
}

const LIBZ = join(SYSTEM_LIBS, "libz.so.1");
const LIBELF = join(SYSTEM_LIBS, "libelf.so.1");

Deno.test({
  name: "install.sh sets only executables' interpreters, checks they load, skips unreadable ELF",
  ignore: !ok || !elfOk,
  fn: async () => {
    await withTempDir(async (dir) => {
      const tree = await treeWithElf(dir);
      await copyElf("/bin/true", join(tree, "lib/not-executable.elf"));
      await Deno.chmod(join(tree, "lib/not-executable.elf"), 0o644);
      // Libraries keep their bytes, executable bit or interpreter notwithstanding.
      await copyElf(LIBZ, join(tree, "lib/libz.so.1"));
      await copyElf(join(SYSTEM_LIBS, "libc.so.6"), join(tree, "lib/libc-copy.so.6"));
      const header = (await Deno.readFile("/bin/true")).subarray(0, 64);
      await Deno.writeFile(join(tree, "bin/truncated"), header, { mode: 0o755 });
      // GPU code objects are ELF too, never handed to patchelf: by machine, by name.
      const amdgpu = header.slice();
      amdgpu[18] = 0xe0; // EM_AMDGPU
      await Deno.writeFile(join(tree, "lib/kernel.bin"), amdgpu);
      await Deno.writeFile(join(tree, "lib/kernels.co"), header);
      const { interpreter } = await glibcStandIn(dir);
      const out = join(dir, "out");
      const result = await install([
        ...["--source", tree, "--out", out, "--pname", "p"],
        ...["--patchelf", "patchelf", "--interpreter", interpreter],
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /set the ELF interpreter of 2 executables \(each still loads\)/);
      assert.match(result.stderr, /skipped 1 ELF files patchelf cannot read: bin\/truncated/);
      const rocm = join(await Deno.realPath(out), "opt/rocm");
      assert.equal(
        await patchelf("--print-interpreter", join(rocm, "lib/llvm/bin/real-elf")),
        interpreter,
      );
      assert.equal((await run(join(rocm, "lib/llvm/bin/real-elf"), [])).code, 0);
      // A program without its executable bit is still one (no DT_SONAME).
      assert.equal(
        await patchelf("--print-interpreter", join(rocm, "lib/not-executable.elf")),
        interpreter,
      );
      for (const path of ["lib/libz.so.1", "lib/libc-copy.so.6"]) {
        assert.deepEqual(
          await Deno.readFile(join(rocm, path)),
          await Deno.readFile(join(tree, path)),
          path,
        );
      }
    });
  },
});

Deno.test({
  name: "install.sh fails naming an executable that no longer loads with its new interpreter",
  ignore: !ok || !elfOk,
  fn: async () => {
    await withTempDir(async (dir) => {
      const tree = await treeWithElf(dir);
      // Stands in for a loader that cannot map the file (as with mangled
      // headers): busybox's static `false`, which the trace variable cannot reach.
      const interpreter = join(dir, "false");
      await Deno.symlink(await Deno.realPath(BUSYBOX), interpreter);
      const result = await install([
        ...["--source", tree, "--out", join(dir, "out"), "--pname", "p"],
        ...["--patchelf", "patchelf", "--interpreter", interpreter],
      ]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        /"opt\/rocm\/lib\/llvm\/bin\/real-elf" no longer loads after setting its interpreter/,
      );
    });
  },
});

Deno.test({
  name: "install.sh links a missing host library into each needing file's $ORIGIN folder, once",
  ignore: !ok || !elfOk,
  fn: async () => {
    await withTempDir(async (dir) => {
      const tree = await kernelFreeTree(dir);
      // libelf needs libz.so.1, which the tree does not ship.
      const runpaths: Record<string, string> = {
        "lib/libelf.so.1": "$ORIGIN",
        "lib/sub/libelf.so.1": "$ORIGIN/..:$ORIGIN", // reaches lib/: no second link
        "lib/other/libelf.so.1": "$ORIGIN/../../outside-the-tree:$ORIGIN",
        "lib/odd name\nwith a newline/libelf.so.1": "$ORIGIN",
      };
      for (const [path, runpath] of Object.entries(runpaths)) {
        await copyElf(LIBELF, join(tree, path), { runpath });
      }
      await copyElf("/bin/true", join(tree, "bin/tool"), {
        runpath: "$ORIGIN/../lib",
        addNeeded: ["libnothere.so.1"],
      });
      await copyElf(LIBZ, join(dir, "host one/libz.so.1"));
      await copyElf(LIBZ, join(dir, "host two/libz.so.1"));
      const out = join(dir, "out");
      const glibc = await glibcStandIn(dir);
      const result = await install([
        ...["--source", tree, "--out", out, "--pname", "p", "--patchelf", "patchelf"],
        ...["--interpreter", glibc.interpreter],
        // Searched in order: the first folder that has the soname wins.
        ...["--host-lib-dir", glibc.lib, "--host-lib-dir", join(dir, "host one")],
        ...["--host-lib-dir", join(dir, "host two")],
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /linked 3 host libraries into the tree/);
      assert.match(
        result.stderr,
        /no host library for 1 sonames: libnothere.so.1 \(needed by 1 files\)/,
      );
      const rocm = join(await Deno.realPath(out), "opt/rocm");
      assert.equal(
        await Deno.readLink(join(rocm, "lib/libz.so.1")),
        join(dir, "host one/libz.so.1"),
      );
      assert.equal(
        await Deno.readLink(join(rocm, "lib/other/libz.so.1")),
        join(dir, "host one/libz.so.1"),
      );
      assert.equal(
        await Deno.readLink(join(rocm, "lib/odd name\nwith a newline/libz.so.1")),
        join(dir, "host one/libz.so.1"),
      );
      await assert.rejects(Deno.lstat(join(rocm, "lib/sub/libz.so.1")), Deno.errors.NotFound);
      for (const path of Object.keys(runpaths)) {
        assert.deepEqual(
          await Deno.readFile(join(rocm, path)),
          await Deno.readFile(join(tree, path)),
          path,
        );
      }
      const trace = await run("/lib64/ld-linux-x86-64.so.2", [
        "--list",
        join(rocm, "lib/sub/libelf.so.1"),
      ]);
      assert.match(trace.stdout, new RegExp(`libz.so.1 => ${rocm}/lib/sub/\\.\\./libz.so.1`));
    });
  },
});

Deno.test({
  name: "install.sh points python, perl, bash and sh shebangs at --python, --perl, --bash, --shell",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const tree = await kernelFreeTree(dir);
      const scripts: Record<string, [string, string]> = {
        "bin/rocm-smi": ["#!/usr/bin/env python3", "#!/py/bin/python3"],
        "bin/rocm_agent_enumerator": ["#!/usr/bin/python3 -u", "#!/py/bin/python3 -u"],
        "libexec/rocm/tool.py": ["#!/usr/bin/env -S python3.12 -E", "#!/py/bin/python3 -E"],
        "bin/hipconfig.pl": ["#!/usr/bin/env perl", "#!/pl/bin/perl"],
        "bin/old.pl": ["#!/usr/local/bin/perl5.36 -w", "#!/pl/bin/perl -w"],
        "bin/py2": ["#!/usr/bin/env python2", "#!/usr/bin/env python2"],
        "bin/shell": ["#!/bin/sh", "#!/bin/sh"],
        "bin/hipcc.sh": ["#!/bin/bash -e", "#!/bash/bin/bash -e"],
        "libexec/rocm/run": ["#!/usr/bin/env bash", "#!/bash/bin/bash"],
        "bin/env-sh": ["#!/usr/bin/env sh", "#!/bin/sh"],
      };
      for (const [path, [line]] of Object.entries(scripts)) {
        await Deno.mkdir(join(tree, path, ".."), { recursive: true });
        await Deno.writeTextFile(join(tree, path), `${line}\nbody of ${path}\n`, { mode: 0o750 });
      }
      const out = join(dir, "out");
      const args = ["--source", tree, "--pname", "p"];
      const result = await install([
        ...args,
        "--out",
        out,
        "--python",
        "/py/bin/python3",
        "--perl",
        "/pl/bin/perl",
        "--bash",
        "/bash/bin/bash",
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(
        result.stderr,
        /pointed the shebangs of 8 scripts at --python\/--perl\/--bash\/--shell/,
      );
      for (const [path, [, expected]] of Object.entries(scripts)) {
        const file = join(out, "opt/rocm", path);
        assert.equal(await Deno.readTextFile(file), `${expected}\nbody of ${path}\n`, path);
        assert.equal((await Deno.stat(file)).mode! & 0o777, 0o750, path);
      }
      const without = await install([...args, "--out", join(dir, "out2")]);
      assert.equal(without.code, 0, without.stderr);
      assert.match(
        without.stderr,
        /left 7 python\/perl\/bash shebangs alone: give --python, --perl and --bash/,
      );
      // sh needs no flag: --shell is /bin/sh unless given.
      assert.equal(
        await Deno.readTextFile(join(dir, "out2/opt/rocm/bin/env-sh")),
        "#!/bin/sh\nbody of bin/env-sh\n",
      );
      const relative = await install([...args, "--out", join(dir, "out3"), "--python", "python3"]);
      assert.equal(relative.code, 1);
      assert.match(relative.stderr, /interpreter "python3": must be an absolute path/);
    });
  },
});

Deno.test({
  name: "install.sh puts the tree's OpenCL ICDs in etc/OpenCL/vendors with absolute library paths",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const tree = await kernelFreeTree(dir);
      await Deno.mkdir(join(tree, "etc/OpenCL/vendors"), { recursive: true });
      await Deno.writeTextFile(join(tree, "etc/OpenCL/vendors/amdocl64.icd"), "libamdocl64.so\n");
      await Deno.writeTextFile(join(tree, "etc/OpenCL/vendors/other.icd"), "libnotshipped.so\n");
      await Deno.writeTextFile(join(tree, "lib/libamdocl64.so"), "");
      const out = join(dir, "out");
      const result = await install(["--source", tree, "--out", out, "--pname", "p"]);
      assert.equal(result.code, 0, result.stderr);
      const rocm = join(await Deno.realPath(out), "opt/rocm");
      const vendors = join(out, "etc/OpenCL/vendors");
      assert.equal(
        await Deno.readTextFile(join(vendors, "amdocl64.icd")),
        `${rocm}/lib/libamdocl64.so\n`,
      );
      assert.equal(await Deno.readTextFile(join(vendors, "other.icd")), "libnotshipped.so\n");
      // The tree's own files stay as shipped.
      assert.equal(
        await Deno.readTextFile(join(rocm, "etc/OpenCL/vendors/amdocl64.icd")),
        "libamdocl64.so\n",
      );
    });
  },
});

Deno.test({
  name: "install.sh refuses bad arguments (exit 2) and a tarball without bin/ (exit 1)",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      assert.equal((await install([])).code, 2);
      assert.equal((await install(["--out", dir, "--pname", "p", "--bogus", "x"])).code, 2);
      const quoted = await install(["--source", dir, "--out", `${dir}/o"ut`, "--pname", "p"]);
      assert.equal(quoted.code, 1);
      assert.match(quoted.stderr, /must not contain quotes/);
      const noPatchelf = await install([
        ...["--source", dir, "--out", join(dir, "o"), "--pname", "p", "--interpreter", "/x"],
      ]);
      assert.match(noPatchelf.stderr, /--interpreter needs --patchelf/);
      const hostWithout = await install([
        ...["--source", dir, "--out", join(dir, "o"), "--pname", "p", "--host-lib-dir", dir],
      ]);
      assert.match(hostWithout.stderr, /--host-lib-dir needs --patchelf/);
      const noHostDir = await install([
        ...["--source", dir, "--out", join(dir, "o"), "--pname", "p", "--patchelf", "patchelf"],
        ...["--host-lib-dir", join(dir, "nope")],
      ]);
      assert.match(noHostDir.stderr, /host library folder ".*\/nope": not a directory/);
      const empty = join(dir, "empty");
      await Deno.mkdir(join(empty, "lib"), { recursive: true });
      const tarball = join(dir, "empty.tar.gz");
      assert.equal((await run("tar", ["-czf", tarball, "-C", empty, "."])).code, 0);
      const result = await install([
        "--tarball",
        tarball,
        "--out",
        join(dir, "out"),
        "--pname",
        "p",
      ]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /has no top-level bin\/: not a TheRock tarball/);
    });
  },
});

Deno.test({
  name: "install.sh reads no file through a symlink that leaves the tree, and names each link",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const { tree, host, escaping } = await writeLeakyTree(dir);
      const tarball = join(dir, "leaky.tar.gz");
      assert.equal((await run("tar", ["-czf", tarball, "-C", tree, "."])).code, 0);
      for (const from of [["--source", tree], ["--tarball", tarball]]) {
        const out = join(dir, "out");
        const result = await install([...from, "--out", out, "--pname", "p"]);
        assert.equal(result.code, 0, result.stderr);
        for (const path of escaping) {
          assert.match(
            result.stderr,
            new RegExp(`not (copying|wrapping) "${path}": symlink "[^"]+" → "[^"]+" leads out`),
            path,
          );
        }
        assertNoHostBytes(out);
        const rocm = join(await Deno.realPath(out), "opt/rocm");
        // The tree keeps its links as links; links inside the tree are followed.
        assert.equal(await Deno.readLink(join(rocm, "LICENSE")), join(host, "secret"));
        assert.deepEqual([...Deno.readDirSync(join(out, "share/licenses/p"))].map((e) => e.name), [
          "COPYING",
        ]);
        assert.equal(
          await Deno.readTextFile(join(out, "share/licenses/p/COPYING")),
          "In-tree license.\n",
        );
        assert.deepEqual(
          [...Deno.readDirSync(join(out, "etc/OpenCL/vendors"))].map((e) => e.name),
          ["inside.icd"],
        );
        await assert.rejects(Deno.lstat(join(out, "bin/host-tool")), Deno.errors.NotFound);
        await Deno.remove(out, { recursive: true });
      }
    });
  },
});

Deno.test({
  name: "install.sh reads nothing below share/doc or etc/ when they are links out of the tree",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const { tree, escaping } = await writeTreeWithHostFolders(dir);
      const out = join(dir, "out");
      const result = await install(["--source", tree, "--out", out, "--pname", "p"]);
      assert.equal(result.code, 0, result.stderr);
      for (const path of escaping) {
        assert.match(result.stderr, new RegExp(`not reading "${path}": symlink "[^"]+" → `), path);
      }
      assertNoHostBytes(out);
      assert.deepEqual([...Deno.readDirSync(join(out, "share/licenses/p"))].map((e) => e.name), [
        "README",
      ]);
      await assert.rejects(Deno.lstat(join(out, "etc/OpenCL")), Deno.errors.NotFound);
    });
  },
});

Deno.test({
  name: "install.sh refuses device nodes, FIFOs and sockets, naming each in one line",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const tree = await kernelFreeTree(dir);
      const special = await addSpecialFiles(tree);
      const expectNamed = (stderr: string, files: SpecialFile[]): void => {
        assert.equal(stderr.trimEnd().split("\n").length, 1, stderr);
        assert.match(stderr, new RegExp(`holds ${files.length} device nodes, FIFOs or sockets`));
        for (const { path, kind } of files) assert.ok(stderr.includes(`${path} (${kind})`), stderr);
      };
      // An unpacked tree: refused before anything is copied.
      const out = join(dir, "out");
      const fromSource = await install(["--source", tree, "--out", out, "--pname", "p"]);
      assert.equal(fromSource.code, 1, fromSource.stderr);
      expectNamed(fromSource.stderr, special);
      assert.deepEqual([...Deno.readDirSync(join(out, "opt/rocm"))], []);
      // A tarball (tar stores no sockets): refused, and what was extracted removed.
      const tarball = join(dir, "special.tar");
      const tar = await run("tar", ["-cf", tarball, "-C", tree, "."]);
      assert.equal(tar.code, 0, tar.stderr);
      const out2 = join(dir, "out2");
      const fromTarball = await install(["--tarball", tarball, "--out", out2, "--pname", "p"]);
      assert.equal(fromTarball.code, 1, fromTarball.stderr);
      expectNamed(fromTarball.stderr, special.filter((file) => file.kind !== "socket"));
      const left = await run("find", [
        out2,
        "!",
        "-type",
        "f",
        "!",
        "-type",
        "d",
        "!",
        "-type",
        "l",
      ]);
      assert.equal(left.stdout, "");
    });
  },
});

/** A fake interpreter at `path`: prints its argv, one `[arg]` each. */
async function argvPrinter(path: string): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeTextFile(path, '#!/bin/sh\nfor a in "$0" "$@"; do printf "[%s]" "$a"; done\n', {
    mode: 0o755,
  });
}

Deno.test({
  name: "install.sh rewrites each python, perl, bash and sh shebang form so that the script runs",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const tree = await kernelFreeTree(dir);
      // Store paths faked in the temporary folder: interpreters that print their argv.
      const python = join(dir, "store/python3/bin/python3");
      const perl = join(dir, "store/perl/bin/perl");
      const env = join(dir, "store/coreutils/bin/env");
      const bash = join(dir, "store/bash/bin/bash");
      const shell = join(dir, "store/shell/bin/sh");
      await argvPrinter(python);
      await argvPrinter(perl);
      await argvPrinter(bash);
      await argvPrinter(shell);
      await Deno.mkdir(join(env, ".."), { recursive: true });
      await Deno.symlink("/usr/bin/env", env);
      // Each first line and the arguments its interpreter must get before the script.
      const forms: [string, string, string[]][] = [
        ["#!/usr/bin/python3\n", python, []],
        ["#!/usr/bin/env python3\n", python, []],
        ["#! /usr/bin/env python3\n", python, []],
        ["#!/usr/bin/python3 -u\n", python, ["-u"]],
        ["#! /usr/bin/python3.12 -u\n", python, ["-u"]],
        ["#!/usr/bin/env -S python3 -u -W ignore\n", python, ["-u", "-W", "ignore"]],
        ["#! /usr/bin/env -S python3 -u -W ignore\n", python, ["-u", "-W", "ignore"]],
        ["#!/usr/bin/env  -S  python3  -E\n", python, ["-E"]],
        ["#!/usr/bin/env -S python3 -c 'import sys'\n", python, ["-c", "import sys"]],
        ["#!/usr/bin/env -S perl -w\n", perl, ["-w"]],
        ["#!/usr/bin/env -S perl -w -Mstrict\n", perl, ["-w", "-Mstrict"]],
        ["#!\t/usr/local/bin/perl5.36 -w\n", perl, ["-w"]],
        ["#!/usr/bin/env perl\n", perl, []],
        ["#!/usr/bin/env python3\r\n", python, []],
        ["#!/usr/bin/python3 -u\r\n", python, ["-u"]],
        ["#!/usr/bin/env -S python3 -u -W ignore\r\n", python, ["-u", "-W", "ignore"]],
        ["#!/bin/bash\n", bash, []],
        ["#!/bin/bash -e\n", bash, ["-e"]],
        ["#!/usr/bin/bash\r\n", bash, []],
        ["#!/usr/local/bin/bash -eu\n", bash, ["-eu"]],
        ["#!/usr/bin/env bash\n", bash, []],
        ["#! /usr/bin/env -S bash -e -u\n", bash, ["-e", "-u"]],
        ["#!/usr/bin/env -S bash\n", bash, []],
        ["#!/bin/sh\n", shell, []],
        ["#!/bin/sh -e\r\n", shell, ["-e"]],
        ["#!/usr/bin/env sh\n", shell, []],
        ["#!/usr/bin/env -S sh -e -x\n", shell, ["-e", "-x"]],
      ];
      for (const [i, [line]] of forms.entries()) {
        await Deno.writeTextFile(join(tree, `bin/form-${i}`), `${line}body\r\n`, { mode: 0o755 });
      }
      const out = join(dir, "out");
      const result = await install([
        ...["--source", tree, "--out", out, "--pname", "p"],
        ...["--python", python, "--perl", perl, "--env", env, "--bash", bash, "--shell", shell],
      ]);
      assert.equal(result.code, 0, result.stderr);
      // And the sample tree's four `#!/bin/sh` tools (--shell is not /bin/sh).
      assert.match(
        result.stderr,
        new RegExp(`pointed the shebangs of ${forms.length + 4} scripts`),
      );
      for (const [i, [line, interpreter, args]] of forms.entries()) {
        const script = join(out, "opt/rocm/bin", `form-${i}`);
        const ran = await run(script, ["a b"]);
        assert.equal(ran.code, 0, `${JSON.stringify(line)}: ${ran.stderr}`);
        const argv = [interpreter, ...args, script, "a b"].map((arg) => `[${arg}]`).join("");
        assert.equal(ran.stdout, argv, JSON.stringify(line));
        // Only the first line changed.
        assert.ok((await Deno.readTextFile(script)).endsWith("\nbody\r\n"), JSON.stringify(line));
      }
      // Without --env, an `env -S` line with several arguments stays as it was.
      const out2 = join(dir, "out2");
      const without = await install([
        ...["--source", tree, "--out", out2, "--pname", "p", "--python", python, "--perl", perl],
      ]);
      assert.equal(without.code, 0, without.stderr);
      assert.match(
        without.stderr,
        /left 6 `env -S` shebangs with several arguments alone: give --env/,
      );
      assert.equal(
        await Deno.readTextFile(join(out2, "opt/rocm/bin/form-5")),
        "#!/usr/bin/env -S python3 -u -W ignore\nbody\r\n",
      );
    });
  },
});
