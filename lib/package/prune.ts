/**
 * One package per GPU: a ROCm tree with the GPU code of other ISAs left out,
 * and the check that a pruned package kept what its ISAs need.
 *
 * The rule, in plain words:
 * - A file goes when its kind is GPU code (lib/releases/kernel_files.ts, the
 *   one table images use too) and none of its ISA tokens covers a kept ISA
 *   (lib/releases/isa_files.ts): `gfx1101` code goes from a gfx1100 package,
 *   `gfx110X` and `gfx11-generic` code stays.
 * - Everything else stays, byte for byte: shared libraries (even per-ISA
 *   ones such as `libMIOpenCKGroupedConv_gfx1101.so`, which another library
 *   may name in `DT_NEEDED`), headers and CMake files named after an ISA,
 *   GPU code that names no ISA. No file is opened or written: files are only
 *   unlinked.
 * - A symlink named as another ISA's GPU code goes with it; a file that a
 *   kept symlink leads to stays, so no link is left dangling. Folders that
 *   pruning emptied go too.
 * - What went is recorded in `nix-support/pruned` ({@linkcode PRUNE_RECORD}):
 *   files and bytes per kind and ISA token, and every path.
 *
 * {@linkcode checkPruned} reads a pruned output back: no GPU code of another
 * ISA remains, nothing but GPU code was removed, and each kept ISA still has
 * code in every library that had code for it. "Had code for it" is read
 * loosely (the ISA's tokens anywhere in the path, no kind-specific rule), so
 * a wrong table entry that removed a kept ISA's files is caught rather than
 * repeated.
 *
 * Built-ins and lib/ only: it runs inside the Nix build sandbox.
 *
 * @module
 */

import { type DirectoryReader, escapeName, openDirectoryReader } from "../fs/dir_reader.ts";
import { readRegularFile } from "../fs/file_kind.ts";
import {
  isaTokens,
  targetIsas,
  tokensCoveringIsa,
  tokensMatchTarget,
} from "../releases/isa_files.ts";
import {
  KERNEL_KINDS,
  type KernelKind,
  kernelKind,
  kernelTokens,
} from "../releases/kernel_files.ts";

/** Where a pruned package records what it left out, relative to the output. */
export const PRUNE_RECORD = "nix-support/pruned";

/** Files and bytes of one kind and token set that pruning removed. */
export interface PrunedGroup {
  /** The kind's name (lib/releases/kernel_files.ts). */
  kind: string;
  /** The ISA tokens of the files, joined by `+` (`gfx1101`, `gfx1101+gfx1102`). */
  isa: string;
  /** How many files (symlinks included). */
  files: number;
  /** Their bytes (a symlink counts 0). */
  bytes: number;
}

/** One removed file. */
export interface PrunedFile {
  /** Its path relative to the pruned tree (opt/rocm). */
  path: string;
  /** Its kind's name. */
  kind: string;
  /** Its ISA tokens. */
  tokens: string[];
  /** Its size (0 for a symlink). */
  bytes: number;
}

/** What {@linkcode pruneTree} did; {@linkcode formatPruneRecord} writes it as `nix-support/pruned`. */
export interface PruneReport {
  /** The ISAs kept, sorted. */
  isas: string[];
  /** Files removed, bytes removed. */
  removed: { files: number; bytes: number };
  /** Files and bytes per kind and ISA token set, sorted by kind then token set. */
  groups: PrunedGroup[];
  /** Every removed file, sorted by path. */
  files: PrunedFile[];
  /** Files of another ISA kept because a kept symlink leads to them (paths, sorted). */
  keptForLinks: string[];
  /** Entries whose names are not UTF-8: left alone, unread (paths escaped, sorted). */
  skipped: string[];
  /** Regular files seen. */
  filesSeen: number;
}

/** Options for {@linkcode checkPruned}. */
export interface CheckPrunedOptions extends PruneOptions {
  /**
   * The files and symlinks below `opt/rocm`, relative to it, as a walk of
   * the whole output already listed them (check-output's): `opt/rocm` is
   * then not listed again.
   *
   * @default {undefined (opt/rocm is listed)}
   */
  entries?: readonly string[];
}

/** Options for {@linkcode pruneTree} and {@linkcode checkPruned}. */
export interface PruneOptions {
  /**
   * The table of GPU-code kinds.
   *
   * @default {KERNEL_KINDS of lib/releases/kernel_files.ts}
   */
  kinds?: readonly KernelKind[];
  /**
   * Only report what would go; remove nothing.
   *
   * @default {false}
   */
  dryRun?: boolean;
}

/**
 * The ISAs to keep for a list of targets: each an ISA or a family of
 * lib/releases/targets.json (a family keeps all its ISAs).
 *
 * @param targets ISAs or families (`["gfx1100", "gfx1151"]`).
 * @returns The ISAs, sorted, without duplicates.
 * @throws {RangeError} For an unknown target or an empty list.
 *
 * @example Usage
 * ```ts
 * import { keptIsas } from "./prune.ts";
 *
 * keptIsas(["gfx1101", "gfx1100", "gfx1100"]); // ["gfx1100", "gfx1101"]
 * ```
 */
export function keptIsas(targets: readonly string[]): string[] {
  if (targets.length === 0) {
    throw new RangeError("Cannot prune for no ISA: give at least one ISA to keep");
  }
  return [...new Set(targets.flatMap((target) => targetIsas(target)))].sort();
}

/**
 * Removes the GPU code of ISAs other than `isas` from a ROCm tree.
 *
 * @param root The tree (a package's `opt/rocm`).
 * @param isas The ISAs to keep (or families: {@linkcode keptIsas}).
 * @param options The kinds table, and a dry run.
 * @returns What was removed.
 * @throws {RangeError} For an unknown ISA.
 *
 * @example Usage
 * ```ts
 * import { pruneTree } from "./prune.ts";
 * import { writeSampleRocmTree } from "./sample_rocm.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await writeSampleRocmTree(dir, { isas: ["gfx1100", "gfx1101"] });
 * const report = pruneTree(dir, ["gfx1100"]);
 * report.files.map((file) => file.path).includes(".kpack/blas_lib_gfx1101.kpack"); // true
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function pruneTree(
  root: string,
  isas: readonly string[],
  options: PruneOptions = {},
): PruneReport {
  const kept = keptIsas(isas);
  const kinds = options.kinds ?? KERNEL_KINDS;
  const real = Deno.realPathSync(root);
  const goes = new Map<string, PrunedFile>();
  const links: string[] = [];
  const skipped: string[] = [];
  let filesSeen = 0;
  using reader = openDirectoryReader();
  walk(real, reader, (relative, kind) => {
    if (escapeName(relative) !== relative) {
      skipped.push(escapeName(relative));
      return;
    }
    if (kind === "file") filesSeen++;
    if (kind === "symlink") links.push(relative);
    const found = otherIsaCode(relative, kept, kinds);
    if (found !== undefined) goes.set(relative, { path: relative, ...found, bytes: 0 });
  });
  // A kept link must not dangle: what it leads to stays.
  const keptForLinks: string[] = [];
  for (const link of links) {
    if (goes.has(link)) continue;
    let target: string;
    try {
      target = reader.follow(`${real}/${link}`);
    } catch {
      continue; // dangling already: check-output reports it
    }
    if (!target.startsWith(`${real}/`)) continue;
    const relative = target.slice(real.length + 1);
    if (goes.delete(relative)) keptForLinks.push(relative);
  }
  const files = [...goes.values()].sort((a, b) => compare(a.path, b.path));
  const emptied = new Set<string>();
  for (const file of files) {
    const path = `${real}/${file.path}`;
    const info = Deno.lstatSync(path);
    file.bytes = info.isFile ? info.size : 0;
    if (options.dryRun) continue;
    Deno.removeSync(path);
    const slash = file.path.lastIndexOf("/");
    if (slash !== -1) emptied.add(file.path.slice(0, slash));
  }
  removeEmptied(real, emptied);
  return {
    isas: kept,
    removed: {
      files: files.length,
      bytes: files.reduce((sum, file) => sum + file.bytes, 0),
    },
    groups: groupsOf(files),
    files,
    keptForLinks: keptForLinks.sort(compare),
    skipped: skipped.sort(compare),
    filesSeen,
  };
}

/**
 * The text of `nix-support/pruned`: JSON, one removed file per line.
 *
 * @param report A result of {@linkcode pruneTree}.
 * @returns The record, ending in a newline.
 *
 * @example Usage
 * ```ts
 * import { formatPruneRecord } from "./prune.ts";
 *
 * formatPruneRecord({
 *   isas: ["gfx1100"], removed: { files: 0, bytes: 0 }, groups: [], files: [],
 *   keptForLinks: [], skipped: [], filesSeen: 0,
 * }).startsWith("{"); // true
 * ```
 */
export function formatPruneRecord(report: PruneReport): string {
  const rows = (items: readonly unknown[]): string =>
    items.length === 0
      ? "[]"
      : `[\n    ${items.map((item) => JSON.stringify(item)).join(",\n    ")}\n  ]`;
  return [
    "{",
    `  "isas": ${JSON.stringify(report.isas)},`,
    `  "removed": ${JSON.stringify(report.removed)},`,
    `  "groups": ${rows(report.groups)},`,
    `  "keptForLinks": ${JSON.stringify(report.keptForLinks)},`,
    `  "files": ${rows(report.files)}`,
    "}",
    "",
  ].join("\n");
}

/**
 * A one-line summary of a prune for build logs.
 *
 * @param report A result of {@linkcode pruneTree}.
 * @returns E.g. `kept gfx1100: removed 120 files (3.2 MB) of GPU code for other ISAs`.
 *
 * @example Usage
 * ```ts
 * import { formatPruneSummary } from "./prune.ts";
 *
 * formatPruneSummary({
 *   isas: ["gfx1100"], removed: { files: 2, bytes: 2048 }, groups: [], files: [],
 *   keptForLinks: [], skipped: [], filesSeen: 9,
 * }); // "kept gfx1100: removed 2 of 9 files (2048 bytes) of other ISAs' GPU code"
 * ```
 */
export function formatPruneSummary(report: PruneReport): string {
  return `kept ${report.isas.join(", ")}: removed ${report.removed.files} of ${report.filesSeen} ` +
    `files (${report.removed.bytes} bytes) of other ISAs' GPU code`;
}

/** The name of a finding of {@linkcode checkPruned}. */
export type PrunedCheckName = "pruned-record" | "pruned-other-isa" | "pruned-kept-isa";

/** One finding of {@linkcode checkPruned}. */
export interface PrunedFinding {
  /** `pruned-record`: the record is missing, unreadable or names a file that is not another ISA's GPU code; `pruned-other-isa`: GPU code of another ISA remains; `pruned-kept-isa`: a kept ISA lost code. */
  check: PrunedCheckName;
  /** The path relative to the output, when there is one. */
  path?: string;
  /** What is wrong. */
  message: string;
}

/** The most bytes of `nix-support/pruned` read (a multiarch tarball lists tens of thousands of files). */
const MAX_RECORD_BYTES = 256 * 1024 * 1024;

/**
 * Checks a pruned package output: its record (`nix-support/pruned`) exists
 * and lists only GPU code of other ISAs, no GPU code of another ISA remains
 * under `opt/rocm`, and each kept ISA has code left in every library (kind,
 * folder and name up to the ISA token) that had code for it.
 *
 * @param outPath The package output (holding `opt/rocm` and `nix-support`).
 * @param isas The ISAs it must keep.
 * @param options The kinds table, and what a walk of `opt/rocm` already listed.
 * @returns The findings; empty when the package is right.
 * @throws {RangeError} For an unknown ISA.
 *
 * @example Usage
 * ```ts
 * import { checkPruned } from "./prune.ts";
 *
 * const dir = await Deno.makeTempDir();
 * (await checkPruned(dir, ["gfx1100"]))[0]?.check; // "pruned-record"
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function checkPruned(
  outPath: string,
  isas: readonly string[],
  options: CheckPrunedOptions = {},
): Promise<PrunedFinding[]> {
  const kept = keptIsas(isas);
  const kinds = options.kinds ?? KERNEL_KINDS;
  const findings: PrunedFinding[] = [];
  const { removed, keptForLinks } = await readRecord(`${outPath}/${PRUNE_RECORD}`, findings);
  const linked = new Set(keptForLinks);
  // Library → the kept ISAs it had code for, and those it still has.
  const had = new Map<string, Set<string>>();
  const has = new Map<string, Set<string>>();
  const loose = kept.map((isa) => [isa, loosePattern(isa)] as const);
  const note = (into: Map<string, Set<string>>, path: string, kind: KernelKind): void => {
    for (const [isa, pattern] of loose) {
      if (!pattern.test(path)) continue;
      const key = `${kind.name}: ${libraryOf(path)}`;
      const set = into.get(key) ?? new Set<string>();
      set.add(isa);
      into.set(key, set);
    }
  };
  for (const path of removed) {
    const code = gpuCode(path, kinds);
    if (code === undefined) {
      findings.push({
        check: "pruned-record",
        path: `opt/rocm/${path}`,
        message: `"opt/rocm/${path}" was removed but is not GPU code: only GPU code may be pruned`,
      });
      continue;
    }
    const { kind, tokens } = code;
    if (tokens.length === 0 || tokensMatchTarget(tokens, kept)) {
      findings.push({
        check: "pruned-kept-isa",
        path: `opt/rocm/${path}`,
        message: `"opt/rocm/${path}" was removed but is ${
          tokens.length === 0 ? "GPU code of no particular ISA" : `code for ${tokens.join(", ")}`
        }, which a kept ISA (${kept.join(", ")}) needs`,
      });
    }
    note(had, path, kind);
  }
  const root = `${outPath}/opt/rocm`;
  const visit = (relative: string): void => {
    const code = gpuCode(relative, kinds);
    if (code === undefined) return;
    const { kind, tokens } = code;
    if (tokens.length > 0 && !tokensMatchTarget(tokens, kept) && !linked.has(relative)) {
      findings.push({
        check: "pruned-other-isa",
        path: `opt/rocm/${escapeName(relative)}`,
        message: `"opt/rocm/${escapeName(relative)}" is GPU code for ${
          tokens.join(", ")
        }, none of the kept ISAs (${kept.join(", ")})`,
      });
    }
    note(had, relative, kind);
    note(has, relative, kind);
  };
  if (options.entries !== undefined) {
    for (const relative of options.entries) visit(relative);
  } else {
    try {
      using reader = openDirectoryReader();
      walk(Deno.realPathSync(root), reader, visit);
    } catch (error) {
      findings.push({
        check: "pruned-record",
        message: `Cannot read "opt/rocm" of "${outPath}": ${(error as Error).message}`,
      });
    }
  }
  for (const [library, isasHad] of [...had].sort(([a], [b]) => compare(a, b))) {
    for (const isa of isasHad) {
      if (has.get(library)?.has(isa)) continue;
      findings.push({
        check: "pruned-kept-isa",
        message: `${isa} lost its code in ${library}: the library had code for ${isa} ` +
          "before pruning and has none now (a wrong entry of lib/releases/kernel_files.ts?)",
      });
    }
  }
  return findings;
}

/** What a prune record lists: the removed paths, the files kept for links. */
interface RecordPaths {
  removed: string[];
  keptForLinks: string[];
}

/** The paths the record lists; a finding when it cannot be read. */
async function readRecord(path: string, findings: PrunedFinding[]): Promise<RecordPaths> {
  const none = { removed: [], keptForLinks: [] };
  let text: string;
  try {
    text = new TextDecoder().decode(
      await readRegularFile(path, { maxBytes: MAX_RECORD_BYTES, what: "the prune record" }),
    );
  } catch (error) {
    findings.push({
      check: "pruned-record",
      path: PRUNE_RECORD,
      message: `"${PRUNE_RECORD}" cannot be read (a pruned package records what it left out): ${
        error instanceof Deno.errors.NotFound ? "it is missing" : (error as Error).message
      }`,
    });
    return none;
  }
  try {
    const record = JSON.parse(text) as { files?: unknown; keptForLinks?: unknown };
    if (!Array.isArray(record.files)) throw new SyntaxError(`no "files" list`);
    const removed = record.files.map((file: { path?: unknown }) => {
      if (typeof file?.path !== "string") throw new SyntaxError(`a file without a "path"`);
      return file.path;
    });
    const linked = Array.isArray(record.keptForLinks) ? record.keptForLinks : [];
    return { removed, keptForLinks: linked.filter((p): p is string => typeof p === "string") };
  } catch (error) {
    findings.push({
      check: "pruned-record",
      path: PRUNE_RECORD,
      message: `"${PRUNE_RECORD}" is not a prune record: ${(error as Error).message}`,
    });
    return none;
  }
}

/** The kind and tokens of a path that is GPU code of none of `kept`, else undefined. */
function otherIsaCode(
  path: string,
  kept: readonly string[],
  kinds: readonly KernelKind[],
): { kind: string; tokens: string[] } | undefined {
  const code = gpuCode(path, kinds);
  if (code === undefined || code.tokens.length === 0 || tokensMatchTarget(code.tokens, kept)) {
    return undefined;
  }
  return { kind: code.kind.name, tokens: code.tokens };
}

/**
 * A path's kind of GPU code and its ISA tokens, through lib/releases/kernel_files.ts
 * (the matcher images use; shared libraries are never GPU code), else undefined.
 */
function gpuCode(
  path: string,
  kinds: readonly KernelKind[],
): { kind: KernelKind; tokens: string[] } | undefined {
  const kind = kernelKind(path, kinds);
  // The found kind as the whole table: its tokens without matching the others again.
  return kind === undefined ? undefined : { kind, tokens: kernelTokens(path, [kind]) };
}

/**
 * The library a GPU-code file belongs to: its folder with ISA tokens masked,
 * and its name up to the first `gfx` (`lib/rocblas/library/Kernels.so-000-`,
 * `.kpack/blas_lib_`, `lib/aotriton.images/amd-*\/flash/…`).
 */
function libraryOf(path: string): string {
  const slash = path.lastIndexOf("/");
  let folder = slash === -1 ? "" : path.slice(0, slash + 1);
  for (const token of isaTokens(folder)) folder = folder.replaceAll(token, "*");
  folder = folder.replace(/gfx[0-9A-Za-z-]+/g, "*");
  const name = path.slice(slash + 1);
  const at = name.indexOf("gfx");
  return folder + (at === -1 ? name : name.slice(0, at));
}

/**
 * The tokens covering `isa` anywhere in a path, not preceded by a letter or
 * digit and followed by anything (MIOpen glues the CU count on: `gfx90a68`).
 */
function loosePattern(isa: string): RegExp {
  const alternatives = tokensCoveringIsa(isa).map((token) =>
    token.endsWith("X") ? `${token.slice(0, -1)}[Xx]` : token
  );
  return new RegExp(`(?<![0-9A-Za-z])(?:${alternatives.join("|")})`);
}

/** Visits every entry below `root` (never following links) with its relative path. */
function walk(
  root: string,
  reader: DirectoryReader,
  visit: (relative: string, kind: "file" | "symlink") => void,
): void {
  const stack = [""];
  let guard = 0;
  while (stack.length > 0) {
    if (++guard > 10_000_000) throw new RangeError(`More than 10,000,000 folders below "${root}"`);
    const dir = stack.pop()!;
    reader.read(dir === "" ? root : `${root}/${dir}`, (name, kind) => {
      const relative = dir === "" ? name : `${dir}/${name}`;
      if (kind === "directory") stack.push(relative);
      else if (kind === "file" || kind === "symlink") visit(relative, kind);
    });
  }
}

/** Removes the folders pruning emptied, and their parents that it emptied in turn. */
function removeEmptied(root: string, folders: Set<string>): void {
  const pending = [...folders].sort((a, b) => b.length - a.length);
  while (pending.length > 0) {
    const folder = pending.shift()!;
    try {
      Deno.removeSync(`${root}/${folder}`); // fails unless empty
    } catch {
      continue;
    }
    const slash = folder.lastIndexOf("/");
    if (slash !== -1) pending.push(folder.slice(0, slash));
  }
}

function groupsOf(files: readonly PrunedFile[]): PrunedGroup[] {
  const groups = new Map<string, PrunedGroup>();
  for (const file of files) {
    const isa = file.tokens.join("+");
    const key = `${file.kind}\0${isa}`;
    const group = groups.get(key) ?? { kind: file.kind, isa, files: 0, bytes: 0 };
    group.files++;
    group.bytes += file.bytes;
    groups.set(key, group);
  }
  return [...groups.values()].sort((a, b) => compare(a.kind, b.kind) || compare(a.isa, b.isa));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
