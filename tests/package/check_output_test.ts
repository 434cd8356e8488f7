// check-output on a good package output (built by nix/install.sh from a
// generated tarball) and on copies broken one defect at a time, then all at once.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type CheckFailure,
  checkOutput,
  formatCheckReport,
} from "../../lib/package/check_output.ts";
import { writeSampleRocmTree } from "../../lib/package/sample_rocm.ts";
import {
  gccRuntime,
  glibcStandIn,
  goodOutput,
  installTree,
  writeTheRockShapedTree,
} from "../_elf_fixtures.ts";
import { makeSocket } from "../_host_leaks.ts";
import { startFileServer } from "../_server.ts";
import { repoRoot, requireTools, run, withTempDir } from "../_tools.ts";

const ok = await requireTools(
  "check-output tests (install.sh builds the tree, patchelf sets its interpreter)",
  "bash",
  "cp",
  "patchelf",
);
const rocminfo = await requireTools(
  "check-output tests of real ROCm ELF files (Debian's rocminfo package)",
  "rocminfo",
);
const CHECK = join(repoRoot, "scripts/check-output.ts");
const INTERPRETER = "/lib64/ld-linux-x86-64.so.2";

async function copyOf(good: string, dir: string, name: string): Promise<string> {
  const out = join(dir, name);
  const result = await run("cp", ["-a", good, out]);
  assert.equal(result.code, 0, result.stderr);
  // Wrappers hold the good output's absolute paths: point them at this copy.
  for (const entry of Deno.readDirSync(join(out, "bin"))) {
    const path = join(out, "bin", entry.name);
    const info = await Deno.lstat(path);
    if (!info.isFile || info.size > 4096) continue;
    const text = await Deno.readTextFile(path);
    if (!text.startsWith("#!")) continue;
    await Deno.chmod(path, 0o755);
    await Deno.writeTextFile(path, text.replaceAll(good, out));
  }
  return out;
}

/** Copies /bin/true with its PT_INTERP string overwritten in place. */
async function elfWithInterpreter(path: string, interpreter: string): Promise<void> {
  const bytes = await Deno.readFile("/bin/true");
  const old = new TextEncoder().encode(`${INTERPRETER}\0`);
  const at = indexOf(bytes, old);
  assert.ok(at > 0, `/bin/true does not name ${INTERPRETER}`);
  const replacement = new TextEncoder().encode(interpreter);
  assert.ok(replacement.length < old.length);
  bytes.fill(0, at, at + old.length);
  bytes.set(replacement, at);
  await Deno.writeFile(path, bytes, { mode: 0o755 });
  await Deno.chmod(path, 0o755);
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

interface Defect {
  name: string;
  breakIt: (out: string) => Promise<void>;
  expect: Pick<CheckFailure, "check" | "path">[];
}

const wrapper = (target: string): string =>
  `#!/bin/sh\nexport ROCM_PATH=x\nexec "${target}" "$@"\n`;

const DEFECTS: Defect[] = [
  {
    name: "missing setup-hook",
    breakIt: (out) => Deno.remove(join(out, "nix-support/setup-hook")),
    expect: [{ check: "setup-hook", path: "nix-support/setup-hook" }],
  },
  {
    name: "hook without HIP_PATH",
    breakIt: async (out) => {
      const path = join(out, "nix-support/setup-hook");
      const text = await Deno.readTextFile(path);
      await Deno.writeTextFile(
        path,
        text.split("\n").filter((l) => !l.includes("HIP_PATH")).join("\n"),
      );
    },
    expect: [{ check: "setup-hook", path: "nix-support/setup-hook" }],
  },
  {
    name: "wrapper pointing outside the output",
    breakIt: (out) => Deno.writeTextFile(join(out, "bin/hipcc"), wrapper("/bin/true")),
    expect: [{ check: "wrapper", path: "bin/hipcc" }],
  },
  {
    name: "wrapper pointing at a missing file",
    breakIt: (out) =>
      Deno.writeTextFile(join(out, "bin/amd-smi"), wrapper(join(out, "opt/rocm/bin/gone"))),
    expect: [{ check: "wrapper", path: "bin/amd-smi" }],
  },
  {
    name: "wrapper pointing at a non-executable file",
    breakIt: (out) =>
      Deno.writeTextFile(join(out, "bin/clang"), wrapper(join(out, "opt/rocm/LICENSE"))),
    expect: [{ check: "wrapper", path: "bin/clang" }],
  },
  {
    name: "dangling symlink",
    breakIt: (out) => Deno.symlink("nowhere.so.7", join(out, "opt/rocm/lib/libdangling.so")),
    expect: [{ check: "dangling-symlink", path: "opt/rocm/lib/libdangling.so" }],
  },
  {
    name: "symlink out of the output and the folder holding it (a link into that folder is fine)",
    breakIt: async (out) => {
      await Deno.symlink("/etc/passwd", join(out, "opt/rocm/share/passwd"));
      await Deno.mkdir(join(out, "../store-neighbour"), { recursive: true });
      await Deno.symlink(join(out, "../store-neighbour"), join(out, "opt/rocm/share/neighbour"));
    },
    expect: [{ check: "symlink-outside", path: "opt/rocm/share/passwd" }],
  },
  {
    name: "FIFO",
    breakIt: async (out) => {
      const made = await run("mkfifo", [join(out, "opt/rocm/lib/fifo")]);
      assert.equal(made.code, 0, made.stderr);
    },
    expect: [{ check: "special-file", path: "opt/rocm/lib/fifo" }],
  },
  {
    name: "socket",
    breakIt: (out) => Promise.resolve(makeSocket(join(out, "opt/rocm/share/socket"))),
    expect: [{ check: "special-file", path: "opt/rocm/share/socket" }],
  },
  // mknod needs root.
  ...(Deno.uid() !== 0 ? [] : [{
    name: "character device",
    breakIt: async (out: string) => {
      const made = await run("mknod", [join(out, "opt/rocm/bin/null"), "c", "1", "3"]);
      assert.equal(made.code, 0, made.stderr);
    },
    expect: [{ check: "special-file" as const, path: "opt/rocm/bin/null" }],
  }]),
  {
    name: "missing amdgcn link",
    breakIt: (out) => Deno.remove(join(out, "opt/rocm/amdgcn")),
    expect: [{ check: "amdgcn", path: "opt/rocm/amdgcn" }],
  },
  {
    name: "missing licenses",
    breakIt: (out) => Deno.remove(join(out, "share/licenses"), { recursive: true }),
    expect: [{ check: "licenses", path: "share/licenses" }],
  },
  {
    name: "ELF executable with a missing interpreter",
    breakIt: (out) =>
      elfWithInterpreter(join(out, "opt/rocm/bin/broken-elf"), "/nonexistent/ld.so"),
    expect: [{ check: "elf-interpreter", path: "opt/rocm/bin/broken-elf" }],
  },
  {
    name: "malformed ELF library",
    breakIt: async (out) => {
      const bytes = await Deno.readFile("/bin/true");
      await Deno.writeFile(join(out, "opt/rocm/lib/libtrunc.so.1"), bytes.subarray(0, 200));
    },
    expect: [{ check: "elf-malformed", path: "opt/rocm/lib/libtrunc.so.1" }],
  },
  {
    name: "ELF file with an empty PT_INTERP (not named *.debug, so it is read)",
    breakIt: async (out) => {
      const bytes = await Deno.readFile("/bin/true");
      const view = new DataView(bytes.buffer);
      const phoff = Number(view.getBigUint64(32, true));
      for (let i = 0; i < view.getUint16(56, true); i++) {
        const at = phoff + i * 56;
        if (view.getUint32(at, true) === 3) view.setBigUint64(at + 32, 0n, true); // PT_INTERP
      }
      // As a separate debug file it is skipped; under another name it is a failure.
      await Deno.writeFile(join(out, "opt/rocm/lib/libtrue.so.1.debug"), bytes);
      await Deno.writeFile(join(out, "opt/rocm/lib/libtrue.so.1"), bytes);
    },
    expect: [{ check: "elf-malformed", path: "opt/rocm/lib/libtrue.so.1" }],
  },
  {
    name: "library an executable needs removed",
    breakIt: (out) => Deno.remove(join(out, "opt/rocm/lib/libfence.so.1")),
    expect: [{ check: "elf-needed", path: "opt/rocm/bin/true-elf" }],
  },
  {
    name: "scripts whose #! interpreter NixOS does not have (/bin/sh, env and the store are fine)",
    breakIt: async (out) => {
      const write = async (path: string, text: string): Promise<void> => {
        await Deno.mkdir(join(out, path, ".."), { recursive: true });
        await Deno.writeTextFile(join(out, path), text, { mode: 0o755 });
      };
      await write("opt/rocm/bin/bash-tool", "#!/bin/bash\necho hi\n");
      await write("opt/rocm/libexec/rocm/py-tool", "#!/usr/bin/python3 -u\n");
      await write("opt/rocm/share/helper.sh", "#! /opt/x\n");
      // A script outside bin/ and without a script's name is not read.
      await write("opt/rocm/share/unread", "#!/opt/x\n");
      await write("opt/rocm/bin/sh-tool", "#!/bin/sh -e\n");
      await write("opt/rocm/bin/env-tool", "#!/usr/bin/env -S python3 -u\n");
      // An interpreter in the folder holding the output (the store) that exists.
      await write("../store-python/bin/python3", "");
      await write("opt/rocm/lib/tool.py", `#!${join(out, "../store-python/bin/python3")}\n`);
    },
    expect: [
      { check: "script-interpreter", path: "opt/rocm/bin/bash-tool" },
      { check: "script-interpreter", path: "opt/rocm/libexec/rocm/py-tool" },
      { check: "script-interpreter", path: "opt/rocm/share/helper.sh" },
    ],
  },
  {
    name: "missing target kernels",
    breakIt: async (out) => {
      for (const entry of Deno.readDirSync(join(out, "opt/rocm/.kpack"))) {
        if (entry.name.includes("gfx1151")) {
          await Deno.remove(join(out, "opt/rocm/.kpack", entry.name));
        }
      }
      await Deno.remove(join(out, "opt/rocm/lib/rocblas"), { recursive: true });
      await Deno.remove(join(out, "opt/rocm/lib/hipblaslt"), { recursive: true });
      await Deno.remove(join(out, "opt/rocm/share/miopen"), { recursive: true });
    },
    expect: [{ check: "target-kernels" }],
  },
];

function pick(failures: CheckFailure[]): Pick<CheckFailure, "check" | "path">[] {
  return failures.map(({ check, path }) => (path === undefined ? { check } : { check, path }));
}

Deno.test({
  name: "checkOutput() passes a good output and checks its ELF interpreter",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const report = await checkOutput(await goodOutput(dir), { target: "gfx1151" });
      assert.deepEqual(report.failures, []);
      assert.ok(report.ok);
      assert.equal(report.counts.elfExecutables, 1); // opt/rocm/bin/true-elf
      assert.equal(report.counts.elfFiles, 2); // and opt/rocm/lib/libfence.so.1
      assert.deepEqual(report.allowedMissing, []);
      assert.equal(report.counts.wrappers, 5);
      assert.equal(report.counts.kernelFiles, 5);
      // The tree's three, and install.sh's top-level lib and include links.
      assert.match(formatCheckReport(report), /: ok \(\d+ files, 5 symlinks, 5 wrappers/);
    });
  },
});

Deno.test({
  name: "checkOutput() reports each defect of a broken output",
  ignore: !ok,
  fn: async (t) => {
    await withTempDir(async (dir) => {
      const good = await goodOutput(dir);
      for (const [i, defect] of DEFECTS.entries()) {
        await t.step(defect.name, async () => {
          const out = await copyOf(good, dir, `broken-${i}`);
          await defect.breakIt(out);
          const report = await checkOutput(out, { target: "gfx1151" });
          assert.equal(report.ok, false);
          assert.deepEqual(pick(report.failures), defect.expect, formatCheckReport(report));
        });
      }
    });
  },
});

Deno.test({
  name: "checkOutput() reports every defect of one output in a single run",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const out = await copyOf(await goodOutput(dir), dir, "all-broken");
      // The setup-hook defects exclude each other: keep the HIP_PATH one.
      const defects = DEFECTS.filter((d) => d.name !== "missing setup-hook");
      for (const defect of defects) await defect.breakIt(out);
      const report = await checkOutput(out, { target: "gfx1151" });
      const expected = defects.flatMap((d) => d.expect);
      const actual = pick(report.failures);
      assert.equal(actual.length, expected.length, formatCheckReport(report));
      for (const failure of expected) {
        assert.ok(
          actual.some((a) => a.check === failure.check && a.path === failure.path),
          JSON.stringify(failure),
        );
      }
      const text = formatCheckReport(report);
      assert.match(text, new RegExp(`: ${expected.length} failures`));
      assert.match(
        text,
        /elf-interpreter: "\/nonexistent\/ld.so" is missing, the interpreter of 1 ELF executable: "opt\/rocm\/bin\/broken-elf"\n/,
      );
      assert.match(text, /wrapper: "bin\/hipcc" execs "\/[^"]*", outside the output/);
    });
  },
});

Deno.test({
  name: "checkOutput() reports no executables and a missing layout",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const out = await copyOf(await goodOutput(dir), dir, "no-exec");
      await Deno.remove(join(out, "bin"), { recursive: true });
      await Deno.mkdir(join(out, "bin"));
      assert.deepEqual(pick((await checkOutput(out)).failures), [
        { check: "executables", path: "bin" },
      ]);
      const empty = join(dir, "empty");
      await Deno.mkdir(empty);
      assert.deepEqual((await checkOutput(empty)).failures.map((f) => f.check), [
        "opt-rocm",
        "bin",
        "setup-hook",
        "executables",
        "licenses",
      ]);
      const missing = await checkOutput(join(dir, "missing"));
      assert.deepEqual(missing.failures.map((f) => f.check), ["output"]);
    });
  },
});

Deno.test("checkOutput() rejects an unknown target with RangeError", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(checkOutput(dir, { target: "gfx9999" }), RangeError);
  });
});

Deno.test({
  name: "check-output.ts prints JSON, exits 1 on failure and 2 on usage errors",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const good = await goodOutput(dir);
      const script = (args: string[]) =>
        run(Deno.execPath(), ["run", "--allow-read", CHECK, ...args]);
      const pass = await script([good, "--json", "--target", "gfx1100"]);
      assert.equal(pass.code, 0, pass.stderr);
      const report = JSON.parse(pass.stdout);
      assert.equal(report.ok, true);
      assert.equal(report.target, "gfx1100");
      const out = await copyOf(good, dir, "broken");
      await Deno.remove(join(out, "share/licenses"), { recursive: true });
      const fail = await script([out, "--json"]);
      assert.equal(fail.code, 1);
      assert.deepEqual(JSON.parse(fail.stdout).failures.map((f: CheckFailure) => f.check), [
        "licenses",
      ]);
      // With the shebang's --allow-ffi it reads directories with getdents64:
      // the same report, counts included.
      const fast = await run(Deno.execPath(), [
        ...["run", "--allow-read", "--allow-ffi", CHECK, out, "--json", "--target", "gfx1151"],
      ]);
      const slow = await script([out, "--json", "--target", "gfx1151"]);
      assert.equal(fast.code, 1, fast.stderr);
      assert.deepEqual(JSON.parse(fast.stdout), JSON.parse(slow.stdout));
      const text = await script([out]);
      assert.equal(text.code, 1);
      assert.match(
        text.stdout,
        /1 failure .*\n {2}licenses: "share\/licenses" is not a directory\n$/,
      );
      for (const args of [[], [good, good], [good, "--bogus"], [good, "--target", "gfx9999"]]) {
        const usage = await script(args);
        assert.equal(usage.code, 2, args.join(" "));
        assert.equal(usage.stdout, "");
        assert.match(usage.stderr, /^check-output: .+ \(see --help\)\n$/);
      }
      const help = await script(["--help"]);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /Example:\n {2}nix build/);
    });
  },
});

// Root lists any folder: as root, drop the capabilities that let it.
const root = Deno.uid() === 0;
const dropCapabilities = root &&
  await requireTools(
    "the unreadable-folder test as root (it drops root's read override)",
    "setpriv",
  );

Deno.test({
  name: "check-output.ts reports a folder it cannot list, with and without getdents64",
  ignore: !ok || (root && !dropCapabilities),
  fn: async () => {
    await withTempDir(async (dir) => {
      const out = await copyOf(await goodOutput(dir), dir, "locked");
      const locked = join(out, "opt/rocm/share/locked");
      await Deno.mkdir(locked, { recursive: true });
      await Deno.writeTextFile(join(locked, "file"), "");
      await Deno.chmod(locked, 0o000);
      for (const permissions of [["--allow-read"], ["--allow-read", "--allow-ffi"]]) {
        const command = [Deno.execPath(), "run", ...permissions, CHECK, out, "--json"];
        const result = root
          ? await run("setpriv", ["--bounding-set=-dac_override,-dac_read_search", ...command])
          : await run(command[0]!, command.slice(1));
        assert.equal(result.code, 1, result.stderr);
        const failures: CheckFailure[] = JSON.parse(result.stdout).failures;
        assert.deepEqual(pick(failures), [{ check: "unreadable", path: "opt/rocm/share/locked" }]);
        assert.match(
          failures[0]!.message,
          /^"opt\/rocm\/share\/locked" cannot be listed: Permission denied/,
        );
      }
      await Deno.chmod(locked, 0o755);
    });
  },
});

Deno.test("checkOutput() counts kernel files as lib/releases/isa_files.ts reads their names", async () => {
  await withTempDir(async (dir) => {
    const names = [
      "lib/k/Kernels.so-000-gfx1151.hsaco", // gfx1151
      "lib/k/TensileLibrary_gfx110x.dat", // lowercase family token: gfx1100-gfx1103
      "lib/k/extop_gfx11-generic.co", // generic: every gfx11xx
      "lib/k/gfx90a/only.co", // a folder name carries the token
      "lib/k/gfx90a/also_gfx1201.co", // the folder's ISA and its own
      "lib/k/gfx11510.co", // inside a longer word: nothing
      "lib/k/xgfx1201.co", // inside a longer word: nothing
    ];
    for (const name of names) {
      await Deno.mkdir(join(dir, name, ".."), { recursive: true });
      await Deno.writeFile(join(dir, name), new Uint8Array(1));
    }
    const count = async (target: string): Promise<[number, string[]]> => {
      const report = await checkOutput(dir, { target });
      const missing = report.failures.filter((f) => f.check === "target-kernels");
      return [report.counts.kernelFiles, missing.map((f) => f.message.match(/"(gfx\w+)"/)![1]!)];
    };
    assert.deepEqual(await count("gfx1151"), [2, []]);
    assert.deepEqual(await count("gfx1101"), [2, []]);
    assert.deepEqual(await count("gfx90a"), [2, []]);
    assert.deepEqual(await count("gfx1201"), [1, []]);
    assert.deepEqual(await count("gfx1200"), [0, ["gfx1200"]]);
    assert.deepEqual(await count("gfx120X-all"), [1, ["gfx1200"]]);
    assert.deepEqual(await count("gfx110X-all"), [2, []]);
  });
});

/** install.sh's output of the sample tree with TheRock-shaped real ROCm ELF files in it. */
async function rocmOutput(dir: string): Promise<{ out: string; gcc: string }> {
  const tree = join(dir, "tree");
  await writeSampleRocmTree(tree, { isas: ["gfx1151"] });
  await Deno.remove(join(tree, "lib/libhsa-runtime64.so.1")); // the sample's stand-in
  await writeTheRockShapedTree(tree, INTERPRETER);
  const glibc = await glibcStandIn(dir);
  const out = await installTree(tree, join(dir, "rocm"), glibc.interpreter);
  return { out, gcc: await gccRuntime(dir) };
}

Deno.test({
  name: "check-output.ts reports libstdc++.so.6 once with its count; --allow-missing exempts it",
  ignore: !ok || !rocminfo,
  fn: async () => {
    await withTempDir(async (dir) => {
      const { out, gcc } = await rocmOutput(dir);
      const script = (args: string[]) =>
        run(Deno.execPath(), ["run", "--allow-read", "--allow-ffi", CHECK, ...args]);
      const fail = await script([out, "--json"]);
      assert.equal(fail.code, 1, fail.stderr);
      const report = JSON.parse(fail.stdout);
      const needers = ["opt/rocm/bin/rocminfo", "opt/rocm/lib/libhsa-runtime64.so.1.5.0"];
      assert.deepEqual(report.failures, [
        {
          check: "elf-needed",
          path: needers[0],
          message: `"libgcc_s.so.1" is found in no search path of the 2 ELF files needing it: ` +
            needers.map((path) => `"${path}"`).join(", "),
          soname: "libgcc_s.so.1",
          count: 2,
          examples: needers,
        },
        {
          check: "elf-needed",
          path: needers[0],
          message: `"libstdc++.so.6" is found in no search path of the 2 ELF files needing it: ` +
            needers.map((path) => `"${path}"`).join(", "),
          soname: "libstdc++.so.6",
          count: 2,
          examples: needers,
        },
      ]);
      assert.equal(report.counts.elfFiles, 8);
      assert.equal(report.counts.elfExecutables, 1);
      assert.deepEqual(report.allowedMissing, []);

      const allowed = await script([
        ...[out, "--json", "--allow-missing", "libstdc++.so.*", "--allow-missing", "libgcc_s.so.1"],
      ]);
      assert.equal(allowed.code, 0, allowed.stdout);
      assert.deepEqual(
        JSON.parse(allowed.stdout).allowedMissing,
        [
          { soname: "libgcc_s.so.1", pattern: "libgcc_s.so.1", count: 2, examples: needers },
          { soname: "libstdc++.so.6", pattern: "libstdc++.so.*", count: 2, examples: needers },
        ],
      );
      const text = await script([out, "--allow-missing", "lib*"]);
      assert.equal(text.code, 0, text.stdout);
      assert.match(
        text.stdout,
        /: ok \(.*8 ELF files \(1 executable\).*\)\n {2}allowed missing: "libgcc_s.so.1" \(2 ELF files needing it, --allow-missing "lib\*"\)\n/,
      );
      const usage = await script([out, "--allow-missing", ""]);
      assert.equal(usage.code, 2, usage.stderr);

      // Host libraries linked where the $ORIGIN runpaths look: nothing is missing.
      for (const name of ["libstdc++.so.6", "libgcc_s.so.1"]) {
        await Deno.symlink(join(gcc, name), join(out, "opt/rocm/lib", name));
      }
      const pass = await script([out, "--json"]);
      assert.equal(pass.code, 0, pass.stdout);
      // Without --allow-ffi (Deno's file API, Deno.readDirSync): the same report.
      const slow = await run(Deno.execPath(), ["run", "--allow-read", CHECK, out, "--json"]);
      assert.deepEqual(JSON.parse(slow.stdout), JSON.parse(pass.stdout));
    });
  },
});

Deno.test({
  name: "check-output.ts run from a URL checks a real output's ELF files",
  ignore: !ok,
  fn: async () => {
    await withTempDir(async (dir) => {
      const good = await goodOutput(dir);
      await using server = startFileServer({ root: repoRoot });
      const result = await run(Deno.execPath(), [
        // A port an earlier run used may still be in Deno's module cache.
        ...["run", `--reload=${server.origin}`, `--allow-import=127.0.0.1:${server.port}`],
        ...["--allow-read", "--allow-ffi"],
        ...[server.url("/scripts/check-output.ts"), good, "--json"],
      ], { cwd: dir });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(JSON.parse(result.stdout).counts.elfFiles, 2);
      assert.ok(server.requests.some((r) => r.path === "/lib/package/elf.ts"));
    });
  },
});
