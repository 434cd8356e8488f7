// nix/install.sh, the install steps of nix/package.nix, run here without
// nixpkgs on a tarball made by the system tar from a generated ROCm tree.
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeSampleRocmTree } from "../lib/sample_rocm.ts";
import { repoRoot, requireTools, run, withTempDir } from "./_tools.ts";

const ok = await requireTools("install.sh tests", "bash", "tar", "gzip", "od");
const INSTALL = join(repoRoot, "nix/install.sh");
const CHECK = join(repoRoot, "scripts/check-output.ts");

/** A sample tree plus a tool printing the environment the wrapper gives it. */
async function sampleTarball(dir: string, isas = ["gfx1100", "gfx1151"]): Promise<string> {
  const tree = join(dir, "tree");
  await writeSampleRocmTree(tree, { isas });
  await Deno.writeTextFile(
    join(tree, "bin/print-env"),
    '#!/bin/sh\necho "$ROCM_PATH|$ROCM_HOME|$HIP_PATH|$PATH|$LD_LIBRARY_PATH|$*"\n',
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
  name: "install.sh wrappers set the ROCm environment and exec the real tool",
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
      assert.equal(
        env.stdout,
        `${rocm}|${rocm}|${rocm}|${rocm}/bin:/usr/bin:/bin|${rocm}/lib:/usr/lib/x|a b\n`,
      );
      const clang = await run(join(out, "bin/clang"), []);
      assert.equal(clang.stdout, "clang 7.12.0a20260308 (sample ROCm tree)\n");
      const wrapper = await Deno.readTextFile(join(out, "bin/rocminfo"));
      assert.ok(wrapper.startsWith("#!/bin/sh\n"));
      assert.ok(wrapper.trimEnd().endsWith(`exec "${rocm}/bin/rocminfo" "$@"`), wrapper);
    });
  },
});

Deno.test({
  name: "install.sh setup hook exports ROCM_PATH, HIP_PATH and extends CMAKE_PREFIX_PATH",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const { out, rocm } = await installSample(dir);
      const hook = join(out, "nix-support/setup-hook");
      const script = `. "${hook}"; echo "$ROCM_PATH|$HIP_PATH|$CMAKE_PREFIX_PATH"`;
      const withPrefix = await run("sh", ["-c", script], { env: { CMAKE_PREFIX_PATH: "/x" } });
      assert.equal(withPrefix.stdout, `${rocm}|${rocm}|${rocm}:/x\n`);
      const without = await run("sh", ["-c", `unset CMAKE_PREFIX_PATH; ${script}`]);
      assert.equal(without.stdout, `${rocm}|${rocm}|${rocm}\n`);
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

Deno.test({
  name: "install.sh sets the interpreter of ELF executables only, through --patchelf",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const tree = join(dir, "tree");
      await writeSampleRocmTree(tree, { isas: [] });
      await Deno.copyFile("/bin/true", join(tree, "lib/llvm/bin/real-elf"));
      await Deno.chmod(join(tree, "lib/llvm/bin/real-elf"), 0o755);
      await Deno.copyFile("/bin/true", join(tree, "lib/not-executable.elf"));
      await Deno.chmod(join(tree, "lib/not-executable.elf"), 0o644);
      // Stands in for patchelf (not installed here): records what it is asked.
      const log = join(dir, "patchelf.log");
      const patchelf = join(dir, "patchelf");
      await Deno.writeTextFile(
        patchelf,
        `#!/bin/sh\necho "$*" >> "${log}"\n[ "$1" = --print-interpreter ] && echo /lib64/ld-linux-x86-64.so.2\nexit 0\n`,
        { mode: 0o755 },
      );
      const out = join(dir, "out");
      const interpreter = join(dir, "ld.so");
      await Deno.writeTextFile(interpreter, "");
      const result = await install([
        ...["--source", tree, "--out", out, "--pname", "p"],
        ...["--patchelf", patchelf, "--interpreter", interpreter],
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /set the ELF interpreter of 1 executables/);
      const rocm = join(await Deno.realPath(out), "opt/rocm");
      assert.deepEqual((await Deno.readTextFile(log)).trim().split("\n"), [
        `--print-interpreter ${rocm}/lib/llvm/bin/real-elf`,
        `--set-interpreter ${interpreter} ${rocm}/lib/llvm/bin/real-elf`,
      ]);
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
