/**
 * Validation of a built rocm-nightly package output (`$out`): the layout
 * nix/install.sh produces, wrappers that exec real files inside the output,
 * nothing but files, folders and symlinks, no symlink that dangles or leads
 * out of the output and the Nix store, ELF files that find their interpreter and every
 * library they need (lib/package/elf_closure.ts), and optionally the GPU kernel files
 * of one target. Every failure is collected, none stops the run.
 *
 * Imports only built-ins and lib/ files that do the same: it runs inside the
 * Nix build sandbox, where there is no network.
 *
 * @module
 */

import {
  type DirectoryReader,
  type EntryKind,
  type EntryVisitor,
  escapeName,
  openDirectoryReader,
} from "../fs/dir_reader.ts";
import {
  type AllowedName,
  ElfClosureCheck,
  type ElfClosureReport,
  namedLikeLibrary,
} from "./elf_closure.ts";
import { describeKind } from "../fs/file_kind.ts";
import {
  type BadShebang,
  checkShebang,
  MAX_SHEBANG_BYTES,
  shebangLine,
  type ShebangWorld,
} from "./_shebang.ts";
import { targetIsas, tokensCoveringIsa } from "../releases/isa_files.ts";
import type { PrunedCheckName } from "./prune.ts";

/** The name of one check; a failure carries the check it belongs to. */
export type CheckName =
  | "output"
  | "opt-rocm"
  | "bin"
  | "setup-hook"
  | "executables"
  | "amdgcn"
  | "licenses"
  | "wrapper"
  | "dangling-symlink"
  | "symlink-outside"
  | "special-file"
  | "elf-malformed"
  | "elf-interpreter"
  | "elf-needed"
  | "target-kernels"
  | "unreadable"
  | "script-interpreter"
  | PrunedCheckName;

/** One defect found in the output. */
export interface CheckFailure {
  /** The check that failed. */
  check: CheckName;
  /** The offending path, relative to the output, when there is one. */
  path?: string;
  /** What is wrong, quoting the values involved. */
  message: string;
  /** The DT_NEEDED name no search path resolves (check `elf-needed`). */
  soname?: string;
  /**
   * The PT_INTERP path that does not exist (check `elf-interpreter`), or the
   * `#!` interpreter (or program `env` runs) that does not run where the
   * package runs (check `script-interpreter`).
   */
  interpreter?: string;
  /** How many files share the defect (`elf-needed`, `elf-interpreter`, `script-interpreter`); `path` is the first. */
  count?: number;
  /** The first few of those files, sorted (`elf-needed`, `elf-interpreter`, `script-interpreter`). */
  examples?: string[];
}

/** Figures about what was examined. */
export interface CheckCounts {
  /** Regular files seen. */
  files: number;
  /** Directories seen (the output itself included). */
  directories: number;
  /** Symbolic links seen (each resolved once). */
  symlinks: number;
  /** Entries of `bin/` examined as wrappers. */
  wrappers: number;
  /** ELF files read: below bin/, sbin/ and libexec/, or named like a library (`*.so`, `*.so.*`), not `*.debug`. */
  elfFiles: number;
  /** Those with an interpreter (PT_INTERP). */
  elfExecutables: number;
  /**
   * Files with a `#!` line whose interpreter was checked: those of the ELF
   * candidates that are not ELF, and files named `*.sh`, `*.bash`, `*.py`, `*.pl`.
   */
  scripts: number;
  /** Files whose names carry the target's ISA or family token (with `target`). */
  kernelFiles: number;
}

/** The result of {@linkcode checkOutput}. */
export interface CheckOutputReport {
  /** The output path as given. */
  outPath: string;
  /** The target whose kernels were required, if any. */
  target?: string;
  /** `true` when there is no failure. */
  ok: boolean;
  /** Every failure, in a stable order (by check, then path). */
  failures: CheckFailure[];
  /** What was examined. */
  counts: CheckCounts;
  /** DT_NEEDED names no search path resolves that an `allowMissing` glob exempts. */
  allowedMissing: AllowedName[];
}

/** Options for {@linkcode checkOutput}. */
export interface CheckOutputOptions {
  /**
   * An ISA (`gfx1100`) or family (`gfx110X-all`) of lib/releases/targets.json whose
   * kernel files must be present: for each of its ISAs, at least one file
   * whose name carries the ISA or a token covering it (`gfx110X`,
   * `gfx11-generic`), as lib/releases/isa_files.ts reads names.
   *
   * @default {undefined (no kernel check)}
   */
  target?: string;
  /**
   * Globs (`*`, `?`) of sonames ELF files may need without finding them:
   * documented optional dependencies such as `libpython3*.so*`. They are
   * listed in `allowedMissing` instead of failing.
   *
   * @default {[]}
   */
  allowMissing?: readonly string[];
  /**
   * The ISAs a pruned package keeps (lib/package/prune.ts): no GPU code of
   * another ISA may remain, `nix-support/pruned` must list only such code,
   * and each of these ISAs must still have code in every library that had
   * code for it.
   *
   * @default {undefined (not a pruned package: no such check)}
   */
  isas?: readonly string[];
}

const SETUP_HOOK_TOKENS = ["ROCM_PATH=", "HIP_PATH=", "CMAKE_PREFIX_PATH"];
/** Executables are looked for below directories with these names. */
const EXECUTABLE_DIRS = new Set(["bin", "sbin", "libexec"]);
const WRAPPER_EXEC = /^exec\s+"([^"]+)"\s+"\$@"\s*$/m;
const CHECK_ORDER: CheckName[] = [
  "output",
  "opt-rocm",
  "bin",
  "setup-hook",
  "executables",
  "amdgcn",
  "licenses",
  "wrapper",
  "dangling-symlink",
  "symlink-outside",
  "special-file",
  "elf-malformed",
  "elf-interpreter",
  "elf-needed",
  "script-interpreter",
  "target-kernels",
  "pruned-record",
  "pruned-other-isa",
  "pruned-kept-isa",
];

/**
 * Checks a package output and reports every defect found.
 *
 * @param outPath The output directory (e.g. `/nix/store/…-rocm-nightly-gfx1151-…`).
 * @param options An optional target whose kernel files must be present, and sonames allowed missing.
 * @returns The report; `ok` is `false` when anything failed.
 * @throws {RangeError} When `target` is not an ISA or family of lib/releases/targets.json.
 *
 * @example Usage
 * ```ts
 * import { checkOutput } from "./check_output.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const report = await checkOutput(dir);
 * report.ok; // false: an empty folder is not a package
 * report.failures.map((failure) => failure.check); // ["opt-rocm", "bin", "setup-hook", …]
 * await Deno.remove(dir);
 * ```
 */
export async function checkOutput(
  outPath: string,
  options: CheckOutputOptions = {},
): Promise<CheckOutputReport> {
  // The work is synchronous (see checkTree); a bad target or ISA still rejects.
  const isas = options.isas;
  if (isas === undefined) return checkTree(outPath, options).report;
  // The pruning checks' module is loaded only for a pruned package.
  const { checkPruned, keptIsas } = await import("./prune.ts");
  keptIsas(isas);
  const { report, rocmEntries } = checkTree(outPath, options, true);
  if (report.failures.some((f) => f.check === "output")) return report;
  // What the walk listed below opt/rocm: not listed a second time.
  const pruned = await checkPruned(
    outPath,
    isas,
    rocmEntries === undefined ? {} : { entries: rocmEntries },
  );
  if (pruned.length === 0) return report;
  const failures = sortFailures([...report.failures, ...pruned]);
  return { ...report, ok: false, failures };
}

/**
 * The checks, with synchronous file system calls throughout: each async call
 * is a round trip through Deno's thread pool, which costs more than the call.
 * With `listRocm`, also the files and symlinks below `opt/rocm`, relative to
 * it, when the walk listed that folder (for the pruning checks).
 */
function checkTree(
  outPath: string,
  options: CheckOutputOptions,
  listRocm = false,
): { report: CheckOutputReport; rocmEntries?: string[] } {
  const required = options.target === undefined ? undefined : targetIsas(options.target);
  const failures: CheckFailure[] = [];
  const counts: CheckCounts = {
    files: 0,
    directories: 0,
    symlinks: 0,
    wrappers: 0,
    elfFiles: 0,
    elfExecutables: 0,
    scripts: 0,
    kernelFiles: 0,
  };
  const allowedMissing: AllowedName[] = [];
  const report = (): CheckOutputReport => ({
    outPath,
    ...(options.target === undefined ? {} : { target: options.target }),
    ok: failures.length === 0,
    failures: sortFailures(failures),
    counts,
    allowedMissing,
  });
  // Names that are not UTF-8 come from the reader with their bytes as lone
  // surrogates: shown as \xNN.
  const fail = (check: CheckName, message: string, path?: string): void => {
    const shown = escapeName(message);
    failures.push(
      path === undefined
        ? { check, message: shown }
        : { check, path: escapeName(path), message: shown },
    );
  };

  let root: string;
  try {
    root = Deno.realPathSync(outPath);
    if (!Deno.statSync(root).isDirectory) throw new Error("not a directory");
  } catch (error) {
    fail("output", `Cannot check "${outPath}": ${describe(error)}`);
    return { report: report() };
  }
  // Paths are joined by hand, not with node:path: root is a real path and every
  // path below is built from it, and node:path's first import costs a millisecond.
  const rel = (path: string): string => path.slice(root.length + 1);
  const inside = (path: string): boolean => path.startsWith(`${root}/`);
  // ELF candidates are read on this thread after the walk (reading them in a
  // Worker on another core measured slower on a busy 2-core machine).
  using elf = new ElfClosureCheck({
    root,
    ...(options.allowMissing === undefined ? {} : { allowMissing: options.allowMissing }),
  });

  // 1. The fixed layout.
  const rocm = `${root}/opt/rocm`;
  if (!isDirectory(rocm)) fail("opt-rocm", `"opt/rocm" is not a directory`, "opt/rocm");
  if (!isDirectory(`${root}/bin`)) fail("bin", `"bin" is not a directory`, "bin");

  const hookPath = `${root}/nix-support/setup-hook`;
  const hookRead = readSetupHook(hookPath);
  const hook = typeof hookRead === "string" ? hookRead : undefined;
  if (typeof hookRead === "object") {
    fail("setup-hook", `"nix-support/setup-hook" ${hookRead.problem}`, "nix-support/setup-hook");
  }
  if (hook !== undefined) {
    for (const token of SETUP_HOOK_TOKENS) {
      if (!hook.includes(token)) {
        fail("setup-hook", `the setup hook does not set "${token}"`, "nix-support/setup-hook");
      }
    }
  }

  if (isDirectory(`${rocm}/lib/llvm/amdgcn`)) {
    const link = `${rocm}/amdgcn`;
    const info = lstatOrUndefined(link);
    if (info === undefined || !info.isSymlink) {
      fail(
        "amdgcn",
        `"opt/rocm/lib/llvm/amdgcn" exists but "opt/rocm/amdgcn" is ${
          info === undefined ? "missing" : "not a symlink"
        }`,
        "opt/rocm/amdgcn",
      );
    } else if (!isDirectory(link)) {
      fail("amdgcn", `"opt/rocm/amdgcn" does not lead to a directory`, "opt/rocm/amdgcn");
    }
  }

  const licenses = `${root}/share/licenses`;
  if (!isDirectory(licenses)) {
    fail("licenses", `"share/licenses" is not a directory`, "share/licenses");
  } else if (!hasFileBelow(licenses)) {
    fail("licenses", `"share/licenses" holds no license file`, "share/licenses");
  }

  // A link (or a script's interpreter) may lead into the output, or into the
  // folder holding it: the Nix store, where install.sh's host libraries are,
  // for a store path (./result included, which is a link to one). Anywhere
  // else is the host's.
  const store = root.slice(0, root.lastIndexOf("/"));
  const inStore = (path: string): boolean => store !== "" && path.startsWith(`${store}/`);

  // 2. One walk over the whole tree, then one read of each ELF candidate: the
  // start of one that is not ELF is searched for a `#!` line without reading
  // it again. Files named like scripts are read for it too.
  const scripts = new ScriptCheck({ root, store, isFile: (path) => isFile(path) }, rel);
  using reader = openDirectoryReader();
  const walk = walkTree(root, required, reader, listRocm ? `${root}/opt/rocm` : undefined);
  for (const folder of walk.elfFolders) {
    const { path, names } = folder;
    for (let i = 0; i < names.length; i++) {
      if (!elf.addIn(path, names[i]!)) scripts.check(`${path}/${names[i]}`, elf.head);
    }
    // Searches in this folder need not list it again.
    if (folder.complete) elf.describeFolder(path, folder);
  }
  for (const path of walk.scriptCandidates) scripts.add(path);
  Object.assign(counts, walk.counts);
  counts.scripts = scripts.read;
  for (const { path, error } of walk.unreadable) {
    const shown = path === root ? "." : rel(path);
    fail("unreadable", `"${shown}" cannot be listed: ${describe(error)}`, shown);
  }
  for (const { path, error } of scripts.unreadable) {
    fail("unreadable", `"${path}" cannot be read for its #! line: ${describe(error)}`, path);
  }
  for (const link of walk.symlinks) {
    try {
      const real = reader.follow(link);
      if (real !== root && !inside(real) && !inStore(real)) {
        fail(
          "symlink-outside",
          `"${rel(link)}" leads to "${real}", outside the output` +
            `${store === "" ? "" : ` and "${store}"`}: ` +
            "a package links only into itself and the Nix store",
          rel(link),
        );
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound || error instanceof Deno.errors.FilesystemLoop)) {
        // Too long a path, say: not a dangling link, but not checked either.
        fail("unreadable", `"${rel(link)}" cannot be followed: ${describe(error)}`, rel(link));
        continue;
      }
      let target = "?";
      try {
        target = Deno.readLinkSync(link);
      } catch {
        // the stat error below says what is wrong
      }
      fail("dangling-symlink", `"${rel(link)}" → "${target}": ${describe(error)}`, rel(link));
    }
  }

  for (const path of walk.special) {
    let kind = "neither a file, a folder nor a symlink";
    try {
      if (!cannotOpen(path)) kind = describeKind(Deno.lstatSync(path));
    } catch {
      // gone since the walk: still named
    }
    fail(
      "special-file",
      `"${rel(path)}" is ${kind}: a package holds only files, folders and symlinks`,
      rel(path),
    );
  }

  // 3. bin/: wrappers exec an executable inside the output.
  let executables = 0;
  for (const [entry, kind] of listDir(`${root}/bin`, reader)) {
    const path = `${root}/bin/${entry}`;
    counts.wrappers++;
    if (cannotOpen(path)) {
      fail("unreadable", `"bin/${entry}" ${NOT_UTF8}`, `bin/${entry}`);
      continue;
    }
    const target = wrapperTarget(path, kind);
    if (typeof target === "object") {
      fail("wrapper", `"bin/${entry}" ${target.problem}`, `bin/${entry}`);
      continue;
    }
    let real: string | undefined;
    let info: Deno.FileInfo | undefined;
    try {
      real = Deno.realPathSync(target);
      info = Deno.statSync(real);
    } catch {
      real = undefined;
    }
    if (real === undefined || info === undefined) {
      fail("wrapper", `"bin/${entry}" execs "${target}", which does not exist`, `bin/${entry}`);
    } else if (!inside(real)) {
      fail("wrapper", `"bin/${entry}" execs "${real}", outside the output`, `bin/${entry}`);
    } else if (!info.isFile || ((info.mode ?? 0) & 0o111) === 0) {
      fail(
        "wrapper",
        `"bin/${entry}" execs "${rel(real)}", which is not executable`,
        `bin/${entry}`,
      );
    } else if (!isExecutable(path)) {
      fail("wrapper", `"bin/${entry}" is not executable`, `bin/${entry}`);
    } else {
      executables++;
    }
  }
  if (executables === 0) fail("executables", `"bin" holds no executable`, "bin");

  // 4. ELF files: their interpreters and libraries.
  const closure = elf.finish();
  counts.elfFiles = closure.files;
  counts.elfExecutables = closure.executables;
  allowedMissing.push(...closure.allowed);
  for (const failure of elfClosureFailures(closure)) failures.push(failure);
  for (const failure of scripts.failures()) failures.push(failure);

  // 5. The target's kernels.
  if (required !== undefined) {
    for (const [isa, hits] of walk.kernelHits) {
      if (hits === 0) {
        fail(
          "target-kernels",
          `no file name carries "${isa}" or a family token covering it (target "${options.target}")`,
        );
      }
    }
  }
  return {
    report: report(),
    ...(walk.rocmEntries === undefined ? {} : { rocmEntries: walk.rocmEntries }),
  };
}

/**
 * Formats a report for people: one line per failure, or a one-line summary.
 *
 * @param report A result of {@linkcode checkOutput}.
 * @returns Text ending in a newline.
 *
 * @example Usage
 * ```ts
 * import { checkOutput, formatCheckReport } from "./check_output.ts";
 *
 * const dir = await Deno.makeTempDir();
 * console.log(formatCheckReport(await checkOutput(dir)));
 * await Deno.remove(dir);
 * ```
 */
export function formatCheckReport(report: CheckOutputReport): string {
  const { counts } = report;
  const seen = `${counts.files} files, ${counts.symlinks} symlinks, ${counts.wrappers} wrappers, ` +
    `${counts.elfFiles} ELF files (${counts.elfExecutables} ${
      counts.elfExecutables === 1 ? "executable" : "executables"
    })` +
    (report.target === undefined
      ? ""
      : `, ${counts.kernelFiles} kernel files for ${report.target}`);
  const n = report.failures.length;
  const lines = [
    report.ok
      ? `${report.outPath}: ok (${seen})`
      : `${report.outPath}: ${n} ${n === 1 ? "failure" : "failures"} (${seen})`,
  ];
  for (const failure of report.failures) lines.push(`  ${failure.check}: ${failure.message}`);
  for (const allowed of report.allowedMissing) {
    lines.push(
      `  allowed missing: "${allowed.soname}" (${
        filesNeeding(allowed.count)
      }, --allow-missing "${allowed.pattern}")`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** The closure's findings as failures: one per malformed file, interpreter, unresolved name. */
function elfClosureFailures(closure: ElfClosureReport): CheckFailure[] {
  const failures: CheckFailure[] = [];
  for (const { path, message } of closure.malformed) {
    failures.push({ check: "elf-malformed", path, message: `"${path}": ${message}` });
  }
  const listed = (examples: string[], count: number): string =>
    examples.map((path) => `"${path}"`).join(", ") + (count > examples.length ? ", …" : "");
  for (const { interpreter, count, examples } of closure.missingInterpreters) {
    failures.push({
      check: "elf-interpreter",
      path: examples[0]!,
      message: `"${interpreter}" is missing, the interpreter of ${
        count === 1 ? "1 ELF executable" : `${count} ELF executables`
      }: ${listed(examples, count)}`,
      interpreter,
      count,
      examples,
    });
  }
  for (const { soname, count, examples, passedOver } of closure.unresolved) {
    failures.push({
      check: "elf-needed",
      path: examples[0]!,
      message: `"${soname}" is found in no search path of the ${filesNeeding(count)}: ${
        listed(examples, count)
      }${passedOver === undefined ? "" : ` (passed over: ${passedOver})`}`,
      soname,
      count,
      examples,
    });
  }
  return failures;
}

function filesNeeding(count: number): string {
  return count === 1 ? "1 ELF file needing it" : `${count} ELF files needing it`;
}

interface Walk {
  counts: Pick<CheckCounts, "files" | "directories" | "symlinks" | "kernelFiles">;
  /**
   * Folders holding regular files that may be ELF (below bin, sbin or
   * libexec, or named `*.so`, `*.so.*`; not `*.debug`) or symlinks: those
   * files' names, the symlinks' names, and whether every file was taken.
   */
  elfFolders: ElfFolder[];
  /** Other regular files named like scripts (`*.sh`, `*.bash`, `*.py`, `*.pl`). */
  scriptCandidates: string[];
  symlinks: string[];
  /** Device nodes, FIFOs and sockets. */
  special: string[];
  kernelHits: Map<string, number>;
  /** Folders that could not be listed: nothing below them was checked. */
  unreadable: { path: string; error: unknown }[];
  /** With `rocm`: its files and symlinks, relative to it, when it was walked (a folder). */
  rocmEntries?: string[];
}

/** A folder's ELF candidates and symlinks (see `Walk.elfFolders`). */
interface ElfFolder {
  path: string;
  names: string[];
  symlinks: string[];
  /** Below bin, sbin or libexec: every file not named `*.debug` is a candidate. */
  everyFile: boolean;
  /** `false` when listing it failed midway. */
  complete: boolean;
}

/** A folder to read, with what its ancestors' names imply for its files. */
interface Pending {
  path: string;
  /** Below a bin, sbin or libexec folder. */
  executable: boolean;
  /** Bit mask of the target ISAs a folder name on the way carries (all files below count). */
  isas: number;
}

/**
 * Walks the tree once, without following symlinks, using only the entry
 * types readdir reports: a stat per file would cost several times the walk
 * itself (100,000 files), so no file is stat'ed, and only files below
 * bin/sbin/libexec or named like libraries are collected, to be opened
 * after the walk as ELF candidates (GPU kernel files, `*.hsaco`, `*.co`,
 * are never opened). Synchronous on purpose: measured faster than async
 * readDir with concurrency or worker threads, whose per-entry overhead
 * dominates. Entries come from lib/fs/dir_reader.ts (getdents64 when the
 * ffi permission is granted), all to one visitor whose folder is a local: a
 * plain file costs no allocation beyond its name, and the visitor stays
 * small and monomorphic, which the JIT compiles once (a visitor made per
 * folder, calling the ELF reader, was compiled three times over).
 */
function walkTree(
  root: string,
  required: readonly string[] | undefined,
  reader: DirectoryReader,
  rocm?: string,
): Walk {
  const matcher = required === undefined ? undefined : kernelMatcher(required);
  const hits = new Array<number>(required?.length ?? 0).fill(0);
  const elfFolders: ElfFolder[] = [];
  const scriptCandidates: string[] = [];
  const symlinks: string[] = [];
  const special: string[] = [];
  const unreadable: Walk["unreadable"] = [];
  let files = 0;
  let directories = 0;
  let kernelFiles = 0;
  // The folder being read, and what its ancestors' names imply (see Pending).
  let dir = root;
  let executable = false;
  let inherited = 0;
  // The folder's ELF candidates and symlinks, made at the first of them.
  let elfFolder: ElfFolder | undefined;
  // With `rocm`: the folder's path below it and a slash, while in it.
  let rocmPrefix: string | undefined;
  let rocmEntries: string[] | undefined;
  const visit: EntryVisitor = (name, kind) => {
    if (kind === "file") {
      files++;
      if (rocmPrefix !== undefined) rocmEntries!.push(rocmPrefix + name);
      // Separate debug files (`*.debug`) are ELF too, with empty segments: never loaded.
      if (executable ? !name.endsWith(".debug") : namedLikeLibrary(name)) {
        (elfFolder ??= elfFolderOf(dir, executable, elfFolders)).names.push(name);
      } else if (namedLikeScript(name)) {
        scriptCandidates.push(`${dir}/${name}`);
      }
      if (matcher !== undefined) {
        const mask = inherited | matcher(name);
        if (mask !== 0) {
          kernelFiles++;
          for (let i = 0; i < hits.length; i++) if (mask & (1 << i)) hits[i]!++;
        }
      }
    } else if (kind === "directory") {
      stack.push({
        path: `${dir}/${name}`,
        executable: executable || EXECUTABLE_DIRS.has(name),
        isas: matcher === undefined ? 0 : inherited | matcher(name),
      });
    } else if (kind === "symlink") {
      symlinks.push(`${dir}/${name}`);
      if (rocmPrefix !== undefined) rocmEntries!.push(rocmPrefix + name);
      (elfFolder ??= elfFolderOf(dir, executable, elfFolders)).symlinks.push(name);
    } else if (kind === "other") {
      special.push(`${dir}/${name}`);
    } else if (kind === "undecodable") {
      unreadable.push({
        path: `${dir}/${name}`,
        error: new Error(
          "its name is not UTF-8 (shown with U+FFFD); run with --allow-ffi to check it",
        ),
      });
    }
  };
  const stack: Pending[] = [{ path: root, executable: false, isas: 0 }];
  while (stack.length > 0) {
    const next = stack.pop()!;
    dir = next.path;
    executable = next.executable;
    inherited = next.isas;
    elfFolder = undefined;
    if (rocm !== undefined) {
      if (dir === rocm) rocmEntries = [];
      rocmPrefix = dir === rocm
        ? ""
        : dir.startsWith(`${rocm}/`) && rocmEntries !== undefined
        ? `${dir.slice(rocm.length + 1)}/`
        : undefined;
    }
    directories++;
    try {
      reader.read(dir, visit);
    } catch (error) {
      unreadable.push({ path: dir, error });
      // Cut short: what was seen of it says nothing of the rest.
      const last = elfFolders.at(-1);
      if (last?.path === dir) last.complete = false;
    }
  }
  return {
    counts: { files, directories, symlinks: symlinks.length, kernelFiles },
    elfFolders,
    scriptCandidates,
    symlinks,
    special,
    kernelHits: new Map(required?.map((isa, i) => [isa, hits[i]!])),
    unreadable,
    ...(rocmEntries === undefined ? {} : { rocmEntries }),
  };
}

/** A new entry of `elfFolders` for the folder `path`. */
function elfFolderOf(path: string, everyFile: boolean, elfFolders: ElfFolder[]): ElfFolder {
  const folder: ElfFolder = { path, names: [], symlinks: [], everyFile, complete: true };
  elfFolders.push(folder);
  return folder;
}

/**
 * Whether a file is read for a `#!` line wherever it is: its name after
 * the last dot (the whole name when there is none) is `sh`, `bash`, `py` or
 * `pl`. Compared in place: a slice per file would be an allocation per file.
 */
function namedLikeScript(name: string): boolean {
  // Every such name ends in h, y or l: most names (kernel files) stop here.
  const last = name.charCodeAt(name.length - 1);
  if (last !== 0x68 && last !== 0x79 && last !== 0x6c) return false;
  const extension = name.length - name.lastIndexOf(".") - 1;
  return extension === 2
    ? name.endsWith("sh") || name.endsWith("py") || name.endsWith("pl")
    : extension === 4 && name.endsWith("bash");
}

/**
 * A function giving the bit mask of the target ISAs (bit i for `isas[i]`) a
 * file or folder name carries kernels for. A token covers an ISA when
 * lib/releases/isa_files.ts says so; the only tokens that can are the ISA itself, its
 * family token (the ISA with an X for its last letter) and its generic
 * targets (tokensCoveringIsa), so each ISA gets one precompiled pattern of
 * exactly those, which starts with the "gfx" every token starts with (a
 * literal start lets the regular expression engine skip ahead to it). For
 * several ISAs most names carry none of them: a screen of the prefixes every
 * such token starts with rejects those first.
 */
function kernelMatcher(isas: readonly string[]): (name: string) => number {
  if (isas.length > 31) {
    throw new RangeError(`Too many ISAs for one target: ${isas.length} (at most 31)`);
  }
  const screens = new Set<string>();
  const patterns = isas.map((isa) => {
    const tokens = tokensCoveringIsa(isa);
    // The ISA and its family token start with the stem, generic tokens with `gfx<major>-`.
    for (const token of tokens) {
      screens.add(token.endsWith("-generic") ? /^gfx\d+-/.exec(token)![0] : isa.slice(0, -1));
    }
    const rests = tokens.map((token) => {
      if (!token.startsWith("gfx")) throw new RangeError(`"${token}" does not start with gfx`);
      const rest = token.slice(3);
      return rest.endsWith("X") ? `${rest.slice(0, -1)}[Xx]` : rest;
    });
    return new RegExp(`gfx(?<![0-9A-Za-z]gfx)(?:${rests.join("|")})(?![0-9A-Za-z])`);
  });
  if (patterns.length === 1) {
    const pattern = patterns[0]!;
    return (name) => pattern.test(name) ? 1 : 0;
  }
  // One test of plain prefixes ([0-9a-z-] only) instead of one per ISA: measured
  // twice as fast on names that carry another ISA.
  const screen = new RegExp([...screens].join("|"));
  return (name) => {
    if (!screen.test(name)) return 0;
    let mask = 0;
    for (let i = 0; i < patterns.length; i++) if (patterns[i]!.test(name)) mask |= 1 << i;
    return mask;
  };
}

/**
 * What a `bin/` entry runs: itself when it is an ELF executable or a symlink,
 * the quoted path of its `exec "…" "$@"` line when it is a script, or a
 * problem description.
 */
function wrapperTarget(path: string, kind: EntryKind): string | { problem: string } {
  if (kind === "symlink") return path;
  if (kind !== "file") return { problem: "is not a file" };
  let head: Uint8Array;
  try {
    head = readStart(path, 65536);
  } catch (error) {
    return { problem: `cannot be read: ${describe(error)}` };
  }
  if (isElf(head)) return path;
  const text = new TextDecoder().decode(head);
  if (!text.startsWith("#!")) return { problem: "is neither a #! wrapper nor an ELF executable" };
  const match = WRAPPER_EXEC.exec(text);
  if (match?.[1] === undefined) return { problem: `has no line 'exec "<path>" "$@"'` };
  if (!match[1].startsWith("/")) return { problem: `execs "${match[1]}", not an absolute path` };
  return match[1];
}

function readStart(path: string, size: number, buffer = new Uint8Array(size)): Uint8Array {
  using file = Deno.openSync(path);
  let filled = 0;
  while (filled < size) {
    const n = file.readSync(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return buffer.subarray(0, filled);
}

function isElf(bytes: Uint8Array): boolean {
  return bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

function statOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch {
    return undefined;
  }
}

function lstatOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.lstatSync(path);
  } catch {
    return undefined;
  }
}

function isDirectory(path: string): boolean {
  return statOrUndefined(path)?.isDirectory ?? false;
}

function isFile(path: string): boolean {
  return statOrUndefined(path)?.isFile ?? false;
}

function isExecutable(path: string): boolean {
  const info = statOrUndefined(path);
  return info !== undefined && info.isFile && ((info.mode ?? 0) & 0o111) !== 0;
}

/**
 * Whether `path` holds a name that is not UTF-8 (its bytes kept by the
 * reader, see lib/fs/dir_reader.ts): Deno's file APIs take only text, so such a
 * file can be listed and its links followed, but not opened and read.
 */
function cannotOpen(path: string): boolean {
  return escapeName(path) !== path;
}

const NOT_UTF8 = "cannot be opened to check it: its name is not UTF-8, which Deno's file APIs " +
  "cannot open (rename it)";

function listDir(path: string, reader: DirectoryReader): [string, EntryKind][] {
  const entries: [string, EntryKind][] = [];
  try {
    reader.read(path, (name, kind) => entries.push([name, kind]));
  } catch {
    return []; // reported by the layout checks
  }
  return entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Whether a regular file lies anywhere below `dir`. A folder that cannot be
 * listed (no permission, deeper than PATH_MAX) is skipped here: the walk
 * reports it, and every other finding stands.
 */
function hasFileBelow(dir: string): boolean {
  const stack = [dir];
  while (stack.length > 0) {
    const current = stack.pop()!;
    try {
      for (const entry of Deno.readDirSync(current)) {
        if (entry.isFile) return true;
        if (entry.isDirectory) stack.push(`${current}/${entry.name}`);
      }
    } catch {
      // reported by the walk as "unreadable"
    }
  }
  return false;
}

/**
 * Reads scripts' `#!` lines (at most {@linkcode MAX_SHEBANG_BYTES} each) and
 * groups those whose interpreter does not run where the package runs
 * (lib/package/_shebang.ts), one failure per interpreter and problem.
 */
class ScriptCheck {
  /** Files that started with `#!`. */
  read = 0;
  /** Files that could not be read (relative paths). */
  unreadable: { path: string; error: unknown }[] = [];
  #world: ShebangWorld;
  #rel: (path: string) => string;
  #bad = new Map<string, { bad: BadShebang; paths: string[] }>();
  #buffer = new Uint8Array(MAX_SHEBANG_BYTES);

  constructor(world: ShebangWorld, rel: (path: string) => string) {
    this.#world = world;
    this.#rel = rel;
  }

  /** Reads the start of `path` and checks its `#!` line, if any. */
  add(path: string): void {
    // Names that are not UTF-8 cannot be opened; the walk names them.
    if (cannotOpen(path)) return;
    let head: Uint8Array;
    try {
      head = readStart(path, MAX_SHEBANG_BYTES, this.#buffer);
    } catch (error) {
      this.unreadable.push({ path: this.#rel(path), error });
      return;
    }
    this.check(path, head);
  }

  /** Checks the `#!` line, if any, of `head`: the first bytes of `path`, read already. */
  check(path: string, head: Uint8Array): void {
    if (cannotOpen(path)) return;
    const line = shebangLine(head.subarray(0, MAX_SHEBANG_BYTES));
    if (line === undefined) return;
    this.read++;
    const bad = checkShebang(line, this.#world);
    if (bad === undefined) return;
    const key = `${bad.interpreter}\0${bad.problem}`;
    let entry = this.#bad.get(key);
    if (entry === undefined) this.#bad.set(key, entry = { bad, paths: [] });
    entry.paths.push(this.#rel(path));
  }

  failures(): CheckFailure[] {
    return [...this.#bad.values()].map(({ bad, paths }) => {
      const examples = paths.sort().slice(0, 3).map(escapeName);
      const count = paths.length;
      const interpreter = escapeName(JSON.stringify(bad.interpreter).slice(1, -1));
      return {
        check: "script-interpreter",
        path: examples[0]!,
        message: `"${interpreter}" ${bad.problem}: the #! line of ${
          count === 1 ? "1 script" : `${count} scripts`
        }: ${examples.map((path) => `"${path}"`).join(", ")}${
          count > examples.length ? ", …" : ""
        }`,
        interpreter: bad.interpreter,
        count,
        examples,
      };
    });
  }
}

/** The most of a setup hook that is read: real ones are a few hundred bytes. */
const MAX_SETUP_HOOK_BYTES = 1024 * 1024;

/**
 * The setup hook's text, or what is wrong with it. The kind is checked
 * before the file is opened (through a symlink): opening a FIFO would block
 * until a writer came, and reading /dev/zero would never end. At most 1 MiB
 * is read, whatever the file claims.
 */
function readSetupHook(path: string): string | { problem: string } {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    return { problem: error instanceof Deno.errors.NotFound ? "is missing" : describe(error) };
  }
  if (!info.isFile) return { problem: `is ${describeKind(info)}, not a file` };
  if (info.size > MAX_SETUP_HOOK_BYTES) {
    return { problem: `is ${info.size} bytes, more than a setup hook can sensibly be (1 MiB)` };
  }
  try {
    return new TextDecoder().decode(readStart(path, MAX_SETUP_HOOK_BYTES));
  } catch (error) {
    return { problem: `cannot be read: ${describe(error)}` };
  }
}

function sortFailures(failures: CheckFailure[]): CheckFailure[] {
  return failures.toSorted((a, b) =>
    CHECK_ORDER.indexOf(a.check) - CHECK_ORDER.indexOf(b.check) ||
    (a.path ?? "").localeCompare(b.path ?? "")
  );
}

function describe(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file or directory";
  return error instanceof Error ? error.message : String(error);
}
