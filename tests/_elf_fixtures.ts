/**
 * Real ELF files for tests: copies of Debian's binaries (rocminfo's ROCm
 * libraries among them) with their search paths set by patchelf, and a
 * stand-in for Nix's glibc folder (the loader and libc alone).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { writeSampleRocmTree } from "../lib/package/sample_rocm.ts";
import { repoRoot, run } from "./_tools.ts";

/** Debian's multiarch folder, where the real libraries come from. */
export const SYSTEM_LIBS = "/usr/lib/x86_64-linux-gnu";

/** A glibc folder of its own: what Nix's loader searches, and nothing else. */
export interface GlibcStandIn {
  /** The folder (`…/glibc/lib`). */
  lib: string;
  /** Its loader, to set as PT_INTERP. */
  interpreter: string;
}

/** Copies the loader, libc and libm into `dir/glibc/lib`. */
export async function glibcStandIn(dir: string): Promise<GlibcStandIn> {
  const lib = join(dir, "glibc/lib");
  await Deno.mkdir(lib, { recursive: true });
  for (const name of ["ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6"]) {
    await Deno.copyFile(join(SYSTEM_LIBS, name), join(lib, name)); // follows Debian's symlinks
  }
  return { lib, interpreter: join(lib, "ld-linux-x86-64.so.2") };
}

/** How {@linkcode copyElf} changes the copy. */
export interface ElfEdit {
  /** DT_RUNPATH to set (replaces any RPATH). */
  runpath?: string;
  /** DT_RPATH to set (patchelf --force-rpath). */
  rpath?: string;
  /** Remove DT_RUNPATH and DT_RPATH. */
  noSearchPath?: boolean;
  /** PT_INTERP to set. */
  interpreter?: string;
  /** DT_NEEDED names to add. */
  addNeeded?: string[];
  /** DT_NEEDED names to remove. */
  removeNeeded?: string[];
}

/** Copies `source` (symlinks followed) to `dest` and edits it with patchelf. */
export async function copyElf(source: string, dest: string, edit: ElfEdit = {}): Promise<void> {
  await Deno.mkdir(join(dest, ".."), { recursive: true });
  await Deno.copyFile(source, dest);
  await Deno.chmod(dest, 0o755);
  const patch = async (...args: string[]): Promise<void> => {
    const result = await run("patchelf", [...args, dest]);
    assert.equal(result.code, 0, `patchelf ${args.join(" ")} ${dest}: ${result.stderr}`);
  };
  if (edit.noSearchPath || edit.runpath !== undefined || edit.rpath !== undefined) {
    await patch("--remove-rpath");
  }
  if (edit.runpath !== undefined) await patch("--set-rpath", edit.runpath);
  if (edit.rpath !== undefined) await patch("--force-rpath", "--set-rpath", edit.rpath);
  if (edit.interpreter !== undefined) await patch("--set-interpreter", edit.interpreter);
  for (const name of edit.removeNeeded ?? []) await patch("--remove-needed", name);
  if (edit.addNeeded !== undefined && edit.addNeeded.length > 0) {
    await patch(...edit.addNeeded.flatMap((name) => ["--add-needed", name]));
  }
}

/** `readelf -d` and `readelf -l` of a file, as the fields lib/package/elf.ts reads. */
export async function readelfFields(path: string): Promise<{
  needed: string[];
  runpath?: string;
  rpath?: string;
  soname?: string;
  interpreter?: string;
}> {
  const dynamic = await run("readelf", ["-dW", path]);
  assert.equal(dynamic.code, 0, dynamic.stderr);
  const program = await run("readelf", ["-lW", path]);
  assert.equal(program.code, 0, program.stderr);
  const field = (kind: string): string[] =>
    [...dynamic.stdout.matchAll(new RegExp(`\\(${kind}\\)\\s+[^\\[]*\\[(.*)\\]$`, "gm"))].map((m) =>
      m[1]!
    );
  const fields: Awaited<ReturnType<typeof readelfFields>> = { needed: field("NEEDED") };
  const [runpath] = field("RUNPATH");
  const [rpath] = field("RPATH");
  const [soname] = field("SONAME");
  const interpreter = program.stdout.match(/\[Requesting program interpreter: (.*)\]/)?.[1];
  if (runpath !== undefined) fields.runpath = runpath;
  if (rpath !== undefined) fields.rpath = rpath;
  if (soname !== undefined) fields.soname = soname;
  if (interpreter !== undefined) fields.interpreter = interpreter;
  return fields;
}

/** TheRock's search paths: executables look in `../lib` and its subfolders. */
export const EXECUTABLE_RUNPATH =
  "$ORIGIN/../lib:$ORIGIN/../lib/llvm/lib:$ORIGIN/../lib/rocm_sysdeps/lib";
/** TheRock's search path of a library in `lib/`. */
export const LIBRARY_RUNPATH = "$ORIGIN:$ORIGIN/rocm_sysdeps/lib";
/** The bundled system libraries (`lib/rocm_sysdeps/lib`) the real ROCm files need. */
export const SYSDEPS = [
  "libelf.so.1",
  "libdrm.so.2",
  "libdrm_amdgpu.so.1",
  "libnuma.so.1",
  "libz.so.1",
];

/**
 * A tree shaped like TheRock's, of real ROCm ELF files: `bin/rocminfo`,
 * `lib/libhsa-runtime64.so.1.5.0` (with its `.so.1` symlink),
 * `lib/libhsakmt.so.1` and the bundled system libraries, each with TheRock's
 * `$ORIGIN` runpaths; libstdc++ and libgcc_s are not shipped, as in TheRock.
 * `edits` override a file's edit (keyed by path in the tree).
 */
export async function writeTheRockShapedTree(
  root: string,
  interpreter: string,
  edits: Record<string, ElfEdit> = {},
): Promise<void> {
  const files: [string, string, ElfEdit][] = [
    ["/usr/bin/rocminfo", "bin/rocminfo", { runpath: EXECUTABLE_RUNPATH, interpreter }],
    [
      `${SYSTEM_LIBS}/libhsa-runtime64.so.1`,
      "lib/libhsa-runtime64.so.1.5.0",
      { runpath: LIBRARY_RUNPATH },
    ],
    [`${SYSTEM_LIBS}/libhsakmt.so.1`, "lib/libhsakmt.so.1", { runpath: LIBRARY_RUNPATH }],
    ...SYSDEPS.map((name): [string, string, ElfEdit] => [
      `${SYSTEM_LIBS}/${name}`,
      `lib/rocm_sysdeps/lib/${name}`,
      { runpath: "$ORIGIN" },
    ]),
  ];
  for (const [source, path, edit] of files) {
    await copyElf(source, join(root, path), edits[path] ?? edit);
  }
  await Deno.symlink("libhsa-runtime64.so.1.5.0", join(root, "lib/libhsa-runtime64.so.1"));
}

/**
 * The host's gcc runtime, copied into `dir/gcc/lib` (what nixpkgs'
 * `stdenv.cc.cc.lib` holds), with `$ORIGIN` as its runpath as Nix builds it:
 * libstdc++ finds libgcc_s beside itself.
 */
export async function gccRuntime(dir: string): Promise<string> {
  const lib = join(dir, "gcc/lib");
  for (const name of ["libstdc++.so.6", "libgcc_s.so.1"]) {
    await copyElf(join(SYSTEM_LIBS, name), join(lib, name), { runpath: "$ORIGIN" });
  }
  return lib;
}

/** Every regular file below `root`, as absolute paths (symlinks not followed). */
export function filesBelow(root: string): string[] {
  const files: string[] = [];
  for (const entry of Deno.readDirSync(root)) {
    const path = join(root, entry.name);
    if (entry.isDirectory) files.push(...filesBelow(path));
    else if (entry.isFile) files.push(path);
  }
  return files.sort();
}

/**
 * A good package output (`dir/good`): the sample tree with a real ELF
 * executable and a real ROCm-like library it finds through `$ORIGIN/../lib`,
 * via install.sh with a glibc stand-in as the interpreter (Debian's /lib64
 * holds the loader alone).
 */
export async function goodOutput(dir: string): Promise<string> {
  const tree = join(dir, "tree");
  await writeSampleRocmTree(tree, { isas: ["gfx1100", "gfx1151"] });
  const glibc = await glibcStandIn(dir);
  // libxshmfence needs libc alone: a real library that resolves with glibc's folder.
  await copyElf(join(SYSTEM_LIBS, "libxshmfence.so.1"), join(tree, "lib/libfence.so.1"), {
    runpath: "$ORIGIN",
  });
  await copyElf("/bin/true", join(tree, "bin/true-elf"), {
    runpath: "$ORIGIN/../lib",
    addNeeded: ["libfence.so.1"],
  });
  return await installTree(tree, join(dir, "good"), glibc.interpreter);
}

/** install.sh from `tree` into `out`, with `interpreter` set on the executables. */
export async function installTree(tree: string, out: string, interpreter: string): Promise<string> {
  const result = await run("bash", [
    join(repoRoot, "nix/install.sh"),
    ...["--source", tree, "--out", out, "--pname", "rocm-nightly-test"],
    ...["--interpreter", interpreter, "--patchelf", "patchelf"],
  ]);
  assert.equal(result.code, 0, result.stderr);
  return out;
}
