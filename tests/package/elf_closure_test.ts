// lib/package/elf_closure.ts on trees of real ROCm ELF files (Debian's rocminfo
// package) shaped like TheRock's, with a glibc stand-in as the only system
// folder: what resolves through $ORIGIN, the interpreter's folder and the
// loading chain's RPATH, and what is reported (once per soname) when not.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkElfClosure,
  ElfClosureCheck,
  type ElfClosureReport,
  expandSearchPath,
  namedLikeLibrary,
} from "../../lib/package/elf_closure.ts";
import {
  copyElf,
  EXECUTABLE_RUNPATH,
  filesBelow,
  gccRuntime,
  glibcStandIn,
  LIBRARY_RUNPATH,
  SYSTEM_LIBS,
  writeTheRockShapedTree,
} from "../_elf_fixtures.ts";
import { requireTools, run, withTempDir } from "../_tools.ts";

const tools = await requireTools(
  "ELF closure tests (real ROCm ELF files from Debian's rocminfo, patchelf sets their paths)",
  "rocminfo",
  "patchelf",
);

/** Builds a tree in `dir/out`, lets `change` alter it, and checks it. */
async function closureOf(
  dir: string,
  options: {
    edits?: Parameters<typeof writeTheRockShapedTree>[2];
    hostLibs?: boolean;
    change?: (root: string, glibc: string) => Promise<void>;
    allowMissing?: string[];
  } = {},
): Promise<ElfClosureReport> {
  const glibc = await glibcStandIn(dir);
  const root = join(dir, "out");
  await writeTheRockShapedTree(root, glibc.interpreter, options.edits);
  if (options.hostLibs) {
    // As install.sh --host-lib-dir does: links where the $ORIGIN runpaths already look.
    const gcc = await gccRuntime(dir);
    for (const name of ["libstdc++.so.6", "libgcc_s.so.1"]) {
      await Deno.symlink(join(gcc, name), join(root, "lib", name));
    }
  }
  await options.change?.(root, glibc.lib);
  return checkElfClosure(filesBelow(root), {
    root,
    ...(options.allowMissing === undefined ? {} : { allowMissing: options.allowMissing }),
  });
}

const sonames = (report: ElfClosureReport): string[] => report.unresolved.map((u) => u.soname);

Deno.test({
  name: "checkElfClosure() reports each unresolved soname once, with how many files need it",
  ignore: !tools,
  fn: async () => {
    await withTempDir(async (dir) => {
      const report = await closureOf(dir);
      const needers = ["bin/rocminfo", "lib/libhsa-runtime64.so.1.5.0"];
      assert.deepEqual(report.unresolved, [
        { soname: "libgcc_s.so.1", count: 2, examples: needers },
        { soname: "libstdc++.so.6", count: 2, examples: needers },
      ]);
      assert.equal(report.files, 8);
      assert.equal(report.executables, 1);
      assert.deepEqual(report.malformed, []);
      assert.deepEqual(report.missingInterpreters, []);
      assert.deepEqual(report.allowed, []);
    });
  },
});

Deno.test({
  name: "checkElfClosure() passes TheRock's $ORIGIN runpaths once host libraries are linked in",
  ignore: !tools,
  fn: async () => {
    await withTempDir(async (dir) => {
      const report = await closureOf(dir, { hostLibs: true });
      assert.deepEqual(report.unresolved, []);
      assert.deepEqual(report.malformed, []);
    });
  },
});

Deno.test({
  name: "checkElfClosure() lists names an allowMissing glob matches as allowed, not unresolved",
  ignore: !tools,
  fn: async () => {
    await withTempDir(async (dir) => {
      const report = await closureOf(dir, { allowMissing: ["libstdc++.so.*", "libgcc_s.so.?"] });
      assert.deepEqual(report.unresolved, []);
      assert.deepEqual(
        report.allowed.map(({ soname, pattern, count }) => [soname, pattern, count]),
        [
          ["libgcc_s.so.1", "libgcc_s.so.?", 2],
          ["libstdc++.so.6", "libstdc++.so.*", 2],
        ],
      );
      const partly = checkElfClosure(filesBelow(join(dir, "out")), { allowMissing: ["libgcc*"] });
      assert.deepEqual(sonames(partly), ["libstdc++.so.6"]);
      assert.throws(() => checkElfClosure([], { allowMissing: [""] }), TypeError);
    });
  },
});

Deno.test({
  name:
    "checkElfClosure() resolves $ORIGIN per file and glibc's names in the interpreter's folder only",
  ignore: !tools,
  fn: async (t) => {
    await t.step("a bundled library removed", async () => {
      await withTempDir(async (dir) => {
        const report = await closureOf(dir, {
          hostLibs: true,
          change: (root) => Deno.remove(join(root, "lib/rocm_sysdeps/lib/libnuma.so.1")),
        });
        assert.deepEqual(report.unresolved, [
          { soname: "libnuma.so.1", count: 1, examples: ["lib/libhsakmt.so.1"] },
        ]);
      });
    });
    await t.step("the runpath without $ORIGIN's subfolder", async () => {
      await withTempDir(async (dir) => {
        const report = await closureOf(dir, {
          hostLibs: true,
          edits: { "lib/libhsakmt.so.1": { runpath: "$ORIGIN" } },
        });
        assert.deepEqual(sonames(report), ["libdrm.so.2", "libdrm_amdgpu.so.1", "libnuma.so.1"]);
      });
    });
    await t.step(
      "libm missing from the interpreter's folder (the system's is not searched)",
      async () => {
        await withTempDir(async (dir) => {
          const report = await closureOf(dir, {
            hostLibs: true,
            change: (_, glibc) => Deno.remove(join(glibc, "libm.so.6")),
          });
          assert.deepEqual(sonames(report), ["libm.so.6"]);
          // libhsa-runtime64 needs it, and so does the linked host libstdc++ (shown by its path).
          assert.equal(report.unresolved[0]!.count, 2);
          assert.equal(report.unresolved[0]!.examples[1], "lib/libhsa-runtime64.so.1.5.0");
        });
      },
    );
    await t.step("a symlink to a missing host library resolves nothing", async () => {
      await withTempDir(async (dir) => {
        const report = await closureOf(dir, {
          change: async (root) => {
            await Deno.symlink(join(dir, "gone/libstdc++.so.6"), join(root, "lib/libstdc++.so.6"));
            await Deno.symlink(`${SYSTEM_LIBS}/libgcc_s.so.1`, join(root, "lib/libgcc_s.so.1"));
          },
        });
        assert.deepEqual(sonames(report), ["libstdc++.so.6"]);
      });
    });
    await t.step(
      "a FIFO or a link to /dev/zero where a library is looked for: passed over",
      async () => {
        await withTempDir(async (dir) => {
          const report = await closureOf(dir, {
            hostLibs: true,
            change: async (root) => {
              await Deno.remove(join(root, "lib/libgcc_s.so.1"));
              await Deno.symlink("/dev/zero", join(root, "lib/libgcc_s.so.1"));
              const fifo = join(root, "lib/rocm_sysdeps/lib/libnuma.so.1");
              await Deno.remove(fifo);
              const made = await run("mkfifo", [fifo]);
              assert.equal(made.code, 0, made.stderr);
            },
          });
          // Never opened (a FIFO would block): found in no search path.
          assert.deepEqual(sonames(report), ["libgcc_s.so.1", "libnuma.so.1"]);
        });
      },
    );
    await t.step("a library for another machine is passed over", async () => {
      await withTempDir(async (dir) => {
        const report = await closureOf(dir, {
          hostLibs: true,
          change: async (root) => {
            const path = join(root, "lib/rocm_sysdeps/lib/libnuma.so.1");
            const bytes = await Deno.readFile(path);
            new DataView(bytes.buffer).setUint16(18, 224, true); // EM_AMDGPU
            await Deno.writeFile(path, bytes);
          },
        });
        assert.deepEqual(sonames(report), ["libnuma.so.1"]);
        assert.match(
          report.unresolved[0]!.passedOver!,
          /libnuma\.so\.1" is for machine 224, not 62$/,
        );
      });
    });
  },
});

Deno.test({
  name: "checkElfClosure() lends a library without DT_RUNPATH the DT_RPATH of its loading chain",
  ignore: !tools,
  fn: async (t) => {
    const chainPath = "$ORIGIN/../lib:$ORIGIN/../lib/rocm_sysdeps/lib";
    const bare = { noSearchPath: true };
    await t.step("the executable's RPATH serves the libraries it loads", async () => {
      await withTempDir(async (dir) => {
        const glibc = join(dir, "glibc/lib/ld-linux-x86-64.so.2");
        const report = await closureOf(dir, {
          hostLibs: true,
          edits: {
            "bin/rocminfo": { rpath: chainPath, interpreter: glibc },
            "lib/libhsa-runtime64.so.1.5.0": bare,
            "lib/libhsakmt.so.1": bare,
          },
        });
        assert.deepEqual(report.unresolved, []);
      });
    });
    await t.step("a DT_RUNPATH is never lent", async () => {
      await withTempDir(async (dir) => {
        const glibc = join(dir, "glibc/lib/ld-linux-x86-64.so.2");
        const report = await closureOf(dir, {
          hostLibs: true,
          edits: {
            "bin/rocminfo": { runpath: chainPath, interpreter: glibc },
            "lib/libhsa-runtime64.so.1.5.0": bare,
            "lib/libhsakmt.so.1": bare,
          },
        });
        // libhsa finds neither; libhsakmt, which nothing then loads, is checked on its own.
        assert.deepEqual(sonames(report), [
          "libdrm.so.2",
          "libdrm_amdgpu.so.1",
          "libelf.so.1",
          "libhsakmt.so.1",
          "libnuma.so.1",
        ]);
        assert.deepEqual(report.unresolved[2]!.examples, ["lib/libhsa-runtime64.so.1.5.0"]);
      });
    });
    await t.step("a library with a DT_RUNPATH of its own inherits nothing", async () => {
      await withTempDir(async (dir) => {
        const glibc = join(dir, "glibc/lib/ld-linux-x86-64.so.2");
        const report = await closureOf(dir, {
          hostLibs: true,
          edits: {
            "bin/rocminfo": { rpath: chainPath, interpreter: glibc },
            "lib/libhsa-runtime64.so.1.5.0": { runpath: "$ORIGIN/nowhere" },
            "lib/libhsakmt.so.1": { runpath: LIBRARY_RUNPATH },
          },
        });
        assert.deepEqual(sonames(report), ["libelf.so.1", "libhsakmt.so.1"]);
      });
    });
    await t.step("a library nothing needs is checked as dlopen loads it: no chain", async () => {
      await withTempDir(async (dir) => {
        const report = await closureOf(dir, {
          hostLibs: true,
          change: (root) =>
            copyElf(`${SYSTEM_LIBS}/libxshmfence.so.1`, join(root, "lib/libunused.so.1"), {
              noSearchPath: true,
              addNeeded: ["libz.so.1"],
            }),
        });
        assert.deepEqual(report.unresolved, [
          { soname: "libz.so.1", count: 1, examples: ["lib/libunused.so.1"] },
        ]);
      });
    });
  },
});

Deno.test({
  name: "checkElfClosure() reports a missing interpreter once and malformed files by path",
  ignore: !tools,
  fn: async () => {
    await withTempDir(async (dir) => {
      const report = await closureOf(dir, {
        hostLibs: true,
        edits: {
          "bin/rocminfo": { runpath: EXECUTABLE_RUNPATH, interpreter: "/nonexistent/ld.so" },
        },
        change: async (root, glibc) => {
          // A second executable keeps the glibc folder known for the libraries.
          await copyElf("/bin/true", join(root, "bin/true"), {
            interpreter: join(glibc, "ld-linux-x86-64.so.2"),
          });
          await copyElf("/bin/true", join(root, "libexec/false"), {
            interpreter: "/nonexistent/ld.so",
          });
          const bytes = await Deno.readFile(`${SYSTEM_LIBS}/libhsakmt.so.1`);
          await Deno.writeFile(join(root, "lib/libbroken.so.1"), bytes.subarray(0, 100));
        },
      });
      assert.deepEqual(report.missingInterpreters, [
        {
          interpreter: "/nonexistent/ld.so",
          count: 2,
          examples: ["bin/rocminfo", "libexec/false"],
        },
      ]);
      assert.deepEqual(report.malformed.map((m) => m.path), ["lib/libbroken.so.1"]);
      assert.match(report.malformed[0]!.message, /^truncated: the program header table/);
      // rocminfo is not loaded; its libraries still are, on their own, and resolve.
      assert.deepEqual(report.unresolved, []);
      assert.equal(report.executables, 3);
      assert.equal(report.files, 11);
    });
  },
});

Deno.test("expandSearchPath() expands $ORIGIN, $LIB and $PLATFORM and drops relative entries", () => {
  assert.deepEqual(
    expandSearchPath("$ORIGIN/../lib:${ORIGIN}/llvm/lib::rel/lib:/abs//x/./y/", "/o/bin", 62),
    ["/o/lib", "/o/bin/llvm/lib", "/abs/x/y"],
  );
  assert.deepEqual(expandSearchPath("/p/$LIB:/q/${PLATFORM}", "/o", 62), [
    "/p/lib",
    "/p/lib64",
    "/q/x86_64",
  ]);
  assert.deepEqual(expandSearchPath("$ORIGINAL/x:/opt/$LIBRARY", "/o", 62), ["/opt/$LIBRARY"]);
});

/** `dir/out` with bin/true, run by the glibc stand-in, whose folder is then the libraries' default. */
async function outWithExecutable(dir: string): Promise<string> {
  const glibc = await glibcStandIn(dir);
  const root = join(dir, "out");
  await copyElf("/bin/true", join(root, "bin/true"), { interpreter: glibc.interpreter });
  return root;
}

Deno.test({
  name: "checkElfClosure() counts every file needing a name but lists only the first few",
  ignore: !tools,
  fn: async () => {
    await withTempDir(async (dir) => {
      const root = await outWithExecutable(dir);
      for (let i = 0; i < 5; i++) {
        await copyElf(`${SYSTEM_LIBS}/libxshmfence.so.1`, join(root, `lib/lib${i}.so.1`), {
          runpath: "$ORIGIN",
          addNeeded: ["libnowhere.so.3"],
        });
      }
      const report = checkElfClosure(filesBelow(root), { root, examples: 2 });
      assert.deepEqual(report.unresolved, [
        { soname: "libnowhere.so.3", count: 5, examples: ["lib/lib0.so.1", "lib/lib1.so.1"] },
      ]);
      // One file at a time, in another order: the same report.
      using check = new ElfClosureCheck({ root, examples: 2 });
      for (const path of filesBelow(root).reverse()) check.add(path);
      assert.deepEqual(check.finish(), report);
    });
  },
});

Deno.test({
  name: "ElfClosureCheck gives the same report in any order, when one library reaches another",
  ignore: !tools,
  fn: async () => {
    await withTempDir(async (dir) => {
      const root = await outWithExecutable(dir);
      // Nothing needs liba or libb by name, so each is loaded on its own, by
      // folder and then by name: liba first, which reaches libb through a
      // link of another name and lends it its DT_RPATH, where libdep is.
      // Loaded first on its own, libb would not find libdep.
      await copyElf(`${SYSTEM_LIBS}/libxshmfence.so.1`, join(root, "lib/liba.so.1"), {
        rpath: "$ORIGIN:$ORIGIN/deps",
        addNeeded: ["libalias.so.1"],
      });
      await copyElf(`${SYSTEM_LIBS}/libxshmfence.so.1`, join(root, "lib/libb.so.2"), {
        noSearchPath: true,
        addNeeded: ["libdep.so.1"],
      });
      await Deno.symlink("libb.so.2", join(root, "lib/libalias.so.1"));
      await copyElf(`${SYSTEM_LIBS}/libxshmfence.so.1`, join(root, "lib/deps/libdep.so.1"), {
        noSearchPath: true,
      });
      const report = checkElfClosure(filesBelow(root), { root });
      assert.deepEqual(report.unresolved, []);
      assert.equal(report.files, 4);
      // libb first, each file added twice: the same report.
      using check = new ElfClosureCheck({ root });
      for (const path of filesBelow(root).reverse()) {
        check.add(path);
        check.add(path);
      }
      assert.deepEqual(check.finish(), report);
    });
  },
});

/**
 * What check-output does: each folder's ELF candidates added by name, then
 * the folder described (its symlinks, whether every file was taken), so that
 * searches need no listing of it.
 */
function checkAsWalked(root: string): ElfClosureReport {
  using check = new ElfClosureCheck({ root });
  const walk = (folder: string, everyFile: boolean): void => {
    const entries = [...Deno.readDirSync(folder)];
    for (const entry of entries) {
      if (!entry.isFile) continue;
      if (everyFile ? !entry.name.endsWith(".debug") : namedLikeLibrary(entry.name)) {
        check.addIn(folder, entry.name);
      }
    }
    const symlinks = entries.filter((entry) => entry.isSymlink).map((entry) => entry.name);
    check.describeFolder(folder, { symlinks, everyFile });
    for (const entry of entries) {
      if (entry.isDirectory) walk(join(folder, entry.name), everyFile || entry.name === "bin");
    }
  };
  walk(root, false);
  return check.finish();
}

/** The same files added by path, every search made by listing the folder. */
function checkByListing(root: string): ElfClosureReport {
  const candidates = filesBelow(root).filter((path) =>
    path.includes("/bin/")
      ? !path.endsWith(".debug")
      : namedLikeLibrary(path.slice(path.lastIndexOf("/") + 1))
  );
  return checkElfClosure(candidates, { root });
}

Deno.test({
  name:
    "ElfClosureCheck.describeFolder: what a walk saw answers each search as a listing of the folder would",
  ignore: !tools,
  fn: async (t) => {
    await withTempDir(async (dir) => {
      const glibc = await glibcStandIn(dir);
      const root = join(dir, "out");
      await writeTheRockShapedTree(root, glibc.interpreter, {
        // Needs a library by a name no walk takes as one ("libodd", no .so),
        // one found through a symlink, one missing, and one shadowed by a
        // debug file of that name in the first folder searched.
        "bin/rocminfo": {
          runpath: EXECUTABLE_RUNPATH,
          interpreter: glibc.interpreter,
          addNeeded: ["libodd", "libgone.so.1", "libz.so.1.debug"],
        },
      });
      await copyElf(`${SYSTEM_LIBS}/libz.so.1`, join(root, "lib/libodd"), { runpath: "$ORIGIN" });
      await copyElf(`${SYSTEM_LIBS}/libz.so.1`, join(root, "lib/libz.so.1.debug"), {
        runpath: "$ORIGIN",
      });
      await Deno.symlink("libodd", join(root, "lib/libodd.so.2"));
      await copyElf(`${SYSTEM_LIBS}/libz.so.1`, join(root, "bin/helper"), {
        runpath: "$ORIGIN/../lib",
      });
      await Deno.writeTextFile(join(root, "bin/tool.sh"), "#!/bin/sh\n");

      const walked = checkAsWalked(root);
      const listed = checkByListing(root);
      await t.step("the reports are the same", () => assert.deepEqual(walked, listed));
      await t.step("each name resolves as the loader would resolve it", () => {
        // libodd and the debug file are found (by listing), libgone is not; nor are
        // libstdc++ and libgcc_s, which TheRock does not ship.
        assert.deepEqual(sonames(walked), ["libgcc_s.so.1", "libgone.so.1", "libstdc++.so.6"]);
      });
    });
  },
});
