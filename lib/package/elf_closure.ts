/**
 * Whether every ELF file of a package finds its libraries as glibc's loader
 * would on NixOS: through the file's own search path and the interpreter's
 * folder, never `/lib`, `/usr/lib`, the ld.so cache or `LD_LIBRARY_PATH`.
 *
 * The rule, for one object whose DT_NEEDED name is looked up:
 * 1. a name already loaded (as a DT_SONAME or by that name) is satisfied;
 * 2. a name with a `/` is a path (a relative one depends on the working
 *    directory, so it is unresolved);
 * 3. when the object has no DT_RUNPATH: its DT_RPATH, then the DT_RPATH of
 *    each object up its loading chain to the executable (objects with a
 *    DT_RUNPATH are skipped: glibc ignores their DT_RPATH);
 * 4. its DT_RUNPATH;
 * 5. the interpreter's folder (`dirname` of PT_INTERP as written, which is
 *    all Nix's glibc searches by default).
 *
 * `$ORIGIN` (and `${ORIGIN}`) is the folder of the object holding the path;
 * `$LIB` is tried as both `lib` and `lib64` (distributions differ); `$PLATFORM`
 * is `x86_64` or `aarch64`. Empty and relative entries depend on the working
 * directory and are skipped. A name is found in a folder when the folder
 * holds it as a file or a symlink leading to one (the listing of each folder
 * is read once and cached), and the file is an ELF64 object for the same
 * machine; anything else is passed over, as the loader passes over it.
 *
 * The loading chains, modelled statically: each executable (a file with a
 * PT_INTERP) is loaded as the loader loads it, breadth first, each object
 * once, and each object's chain being the objects that first caused it to
 * load. Then every library that no file of the tree names in a DT_NEEDED is
 * loaded as `dlopen` loads a library by path from a program with no search
 * path of its own, with the interpreter folders of the package's executables;
 * then, in the same way, every file still not reached (libraries that need
 * each other). So a library is checked where the loader meets it, with the
 * DT_RPATH its loaders lend it; one that nothing loads, on its own.
 *
 * AMD GPU code objects (`e_machine` EM_AMDGPU) are ELF too, but the ROCm
 * runtime loads them, not ld.so: they are counted and not checked.
 *
 * An executable's interpreter must exist; an executable whose interpreter is
 * missing is reported once and not loaded (everything it needs would
 * otherwise be reported too).
 *
 * Findings come grouped: each unresolved name once, with how many files need
 * it and a few of them; names matching an `allowMissing` glob separately.
 *
 * @module
 */

import { openDirectoryReader } from "../fs/dir_reader.ts";
import { type ElfFile, ElfFormatError, type ElfReader, openElfReader } from "./elf.ts";

/** Options for {@linkcode checkElfClosure}. */
export interface ElfClosureOptions {
  /**
   * Globs (`*` any run of characters, `?` one) of sonames that may be
   * missing: documented optional dependencies such as `libpython3*.so*`.
   *
   * @default {[]}
   */
  allowMissing?: readonly string[];
  /**
   * A folder whose paths are shown relative to it in the findings (the
   * package output).
   *
   * @default {undefined (paths shown as given)}
   */
  root?: string;
  /**
   * How many example files a grouped finding lists.
   *
   * @default {3}
   */
  examples?: number;
}

/** A name that files need, with how many files and a few of them. */
export interface NeededBy {
  /** How many files need it. */
  count: number;
  /** The first few of them, sorted. */
  examples: string[];
}

/** A DT_NEEDED name found in none of its search paths. */
export interface UnresolvedName extends NeededBy {
  /** The DT_NEEDED name, e.g. `libstdc++.so.6`. */
  soname: string;
  /** What was found on the way and passed over (an ELF file for another machine…), if anything. */
  passedOver?: string;
}

/** An unresolved name that an `allowMissing` glob exempts. */
export interface AllowedName extends NeededBy {
  /** The DT_NEEDED name. */
  soname: string;
  /** The glob that allowed it. */
  pattern: string;
}

/** An interpreter that executables name and that does not exist. */
export interface MissingInterpreter extends NeededBy {
  /** The PT_INTERP path. */
  interpreter: string;
}

/** An ELF file that could not be read. */
export interface MalformedElf {
  /** The file. */
  path: string;
  /** What is wrong (from {@linkcode ElfFormatError}). */
  message: string;
}

/** The result of {@linkcode checkElfClosure}. */
export interface ElfClosureReport {
  /** ELF files among the paths given (malformed ones included). */
  files: number;
  /** Those with a PT_INTERP. */
  executables: number;
  /** Files that start with the ELF magic but cannot be read, sorted by path. */
  malformed: MalformedElf[];
  /** Interpreters that do not exist, sorted. */
  missingInterpreters: MissingInterpreter[];
  /** Names no search path resolves, sorted. */
  unresolved: UnresolvedName[];
  /** Unresolved names an `allowMissing` glob exempts, sorted. */
  allowed: AllowedName[];
}

/**
 * Checks that the ELF files among `paths` find their interpreter and every
 * library they need, by the rule in this module's documentation. Files that
 * are not ELF are ignored.
 *
 * @param paths Absolute paths of regular files (e.g. every library and
 *   executable of a package output); order does not matter.
 * @param options Globs of sonames allowed to be missing, and how to show paths.
 * @returns The findings, grouped; nothing is thrown for a bad file.
 * @throws {TypeError} When an `allowMissing` glob is empty.
 *
 * @example Usage
 * ```ts
 * import { checkElfClosure } from "./elf_closure.ts";
 *
 * const report = checkElfClosure([Deno.execPath()], { allowMissing: ["lib*.so*"] });
 * console.log(report.executables, report.unresolved, report.allowed);
 * ```
 */
export function checkElfClosure(
  paths: readonly string[],
  options: ElfClosureOptions = {},
): ElfClosureReport {
  using check = new ElfClosureCheck(options);
  for (const path of paths) check.add(path);
  return check.finish();
}

/**
 * {@linkcode checkElfClosure} one path at a time: each file is read when it
 * is added (so the reads can go on while a walk finds more), and names are
 * resolved by {@linkcode ElfClosureCheck.finish}. Dispose of it (`using`).
 *
 * @example Usage
 * ```ts
 * import { ElfClosureCheck } from "./elf_closure.ts";
 *
 * using check = new ElfClosureCheck({ allowMissing: ["libpython3*.so*"] });
 * check.add(Deno.execPath());
 * console.log(check.finish().unresolved);
 * ```
 */
export class ElfClosureCheck implements Disposable {
  #allow: { pattern: string; regex: RegExp }[];
  /** Opened on first use: a check made only to validate options opens nothing. */
  #opened: { reader: ElfReader; resolver: Resolver } | undefined;
  #show: (path: string) => string;
  #limit: number;
  /** The objects added with a PT_INTERP (executables, or trying to be), and the others. */
  #programs: LoadedObject[] = [];
  #libraries: LoadedObject[] = [];
  /** Their lists of needed names (one array each, see `Resolver.#internNeeded`). */
  #lists = new Set<readonly string[]>();
  #malformed: MalformedElf[] = [];
  #gpuObjects = 0;
  #head: Uint8Array = NO_BYTES;

  /**
   * Starts a check.
   *
   * @param options Globs of sonames allowed to be missing, and how to show paths.
   * @throws {TypeError} When an `allowMissing` glob is empty.
   */
  constructor(options: ElfClosureOptions = {}) {
    this.#allow = (options.allowMissing ?? []).map((pattern) => {
      if (pattern === "") {
        throw new TypeError("An allowMissing glob is empty: give a soname or a glob");
      }
      return { pattern, regex: globToRegExp(pattern) };
    });
    const root = options.root;
    this.#show = root === undefined
      ? (path) => path
      : (path) => path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path;
    this.#limit = options.examples ?? 3;
  }

  /**
   * Reads one file (ignored unless it is ELF).
   *
   * @param path The absolute path of a regular file.
   * @returns `false` when the file is not ELF (it is ignored); `true` when it
   *   is, or when it cannot be read (reported as malformed).
   */
  add(path: string): boolean {
    const slash = path.lastIndexOf("/");
    if (slash > 0) return this.addIn(path.slice(0, slash), path.slice(slash + 1));
    const resolver = this.#open();
    const read = resolver.reads;
    return this.#added(path, resolver.objectAt(path), resolver.reads !== read);
  }

  /**
   * Reads `name` in `folder`, as `add(\`${folder}/${name}\`)` does: a walk
   * that adds the files of one folder after another, each folder given as
   * the same string, has each folder looked up once, not once per file.
   *
   * @param folder An absolute path of a folder.
   * @param name The name of a regular file in it.
   * @returns `false` when the file is not ELF (it is ignored); `true` when it
   *   is, or when it cannot be read (reported as malformed).
   */
  addIn(folder: string, name: string): boolean {
    const resolver = this.#open();
    const read = resolver.reads;
    const object = resolver.objectIn(folder, name);
    // The path is built only for a finding or a caller's #! check.
    return this.#added(folder, object, resolver.reads !== read, name);
  }

  /**
   * Tells the check what a walk saw in `folder`: its symlinks, and that
   * every regular file of it named like a library (`*.so`, `*.so.*`, not
   * `*.debug`; every file not named `*.debug` with `everyFile`) was added
   * with {@linkcode ElfClosureCheck.addIn}. Searches for such names in the
   * folder are then answered from that, without listing it again.
   *
   * @param folder The folder, as given to `addIn`.
   * @param seen Its symlinks' names, and whether every file of it was added.
   */
  describeFolder(folder: string, seen: FolderContents): void {
    this.#open().describeFolder(folder, seen);
  }

  /** Files `path` (or `name` in the folder `path`), just looked up (`read`: read just now). */
  #added(
    path: string,
    object: LoadedObject | string | undefined,
    read: boolean,
    name?: string,
  ): boolean {
    if (object === undefined) {
      this.#head = read ? this.#opened!.reader.head : NO_BYTES;
      return false;
    }
    if (typeof object === "string") {
      const shown = name === undefined ? path : `${path}/${name}`;
      this.#malformed.push({ path: this.#show(shown), message: object });
    } else if (!object.added) { // a file added again counts once
      object.added = true;
      if (object.elf.machine === EM_AMDGPU) this.#gpuObjects++;
      else {
        (object.elf.interpreter === undefined ? this.#libraries : this.#programs).push(object);
        this.#lists.add(object.needed);
      }
    }
    return true;
  }

  /**
   * The first bytes (at most 1 KiB) of the file that the last
   * {@linkcode ElfClosureCheck.add} found not to be ELF, for a caller that
   * looks for its `#!` line without reading it again; empty when that file
   * had been added before. Valid until the next `add`.
   *
   * @returns The bytes, in a buffer the next `add` reuses.
   */
  get head(): Uint8Array {
    return this.#head;
  }

  /**
   * Resolves what the files added need.
   *
   * @returns The findings, grouped.
   */
  finish(): ElfClosureReport {
    const resolver = this.#open();
    // The findings must not depend on the order a walk met the files in (the
    // file system's). Sorting thousands of files costs more than resolving
    // them, so they are resolved in the order added, which gives the same
    // findings unless a library loaded as a root reached another one (found
    // through a link of another name): then again, in the sorted order.
    const result = this.#resolve(resolver, this.#programs, this.#libraries, false);
    if (result !== undefined) return result;
    const sorted = this.#sorted();
    return this.#resolve(
      resolver,
      sorted.filter((object) => object.elf.interpreter !== undefined),
      sorted.filter((object) => object.elf.interpreter === undefined),
      true,
    )!;
  }

  /**
   * The findings of loading `programs` and `libraries` (see
   * {@linkcode ElfClosureCheck.finish}), or `undefined` when, not `sorted`,
   * the order they come in could change them.
   */
  #resolve(
    resolver: Resolver,
    programs: readonly LoadedObject[],
    libraries: readonly LoadedObject[],
    sorted: boolean,
  ): ElfClosureReport | undefined {
    const show = this.#show;
    const limit = this.#limit;
    const allow = this.#allow;
    const malformed = this.#malformed;
    const gpuObjects = this.#gpuObjects;

    const missingInterpreters = new Map<string, string[]>();
    const executables: LoadedObject[] = [];
    const interpreters = new Set<string>();
    for (let i = 0; i < programs.length; i++) {
      const object = programs[i]!;
      const interpreter = object.elf.interpreter!;
      if (resolver.isFile(interpreter)) {
        executables.push(object);
        interpreters.add(interpreter);
      } else {
        let users = missingInterpreters.get(interpreter);
        if (users === undefined) missingInterpreters.set(interpreter, users = []);
        users.push(object.path);
      }
    }
    const libraryDefaults = resolver.intern(
      [...new Set([...interpreters].map((path) => normalize(dirname(path))))].sort(),
    );

    // Roots: executables, then libraries no file needs by name, then what is left.
    const named = new Set<string>();
    for (const list of this.#lists) for (const name of list) named.add(name);
    const reached = new Reached();
    const unresolved = new Map<string, { needers: Set<string>; passedOver?: string }>();
    const load = (root: LoadedObject, defaults: readonly string[]): void => {
      const failures = resolver.load(root, defaults, reached);
      for (let i = 0; i < failures.length; i++) {
        const failure = failures[i]!;
        let entry = unresolved.get(failure.name);
        if (entry === undefined) unresolved.set(failure.name, entry = { needers: new Set() });
        entry.needers.add(failure.path);
        // The least, not the first: the same whatever the order.
        const passedOver = failure.passedOver;
        if (
          passedOver !== undefined &&
          (entry.passedOver === undefined || passedOver < entry.passedOver)
        ) {
          entry.passedOver = passedOver;
        }
      }
    };
    // Each interpreter's folder, as its users' defaults (one array each).
    const interpreterDefaults = new Map<string, readonly string[]>();
    for (const interpreter of interpreters) {
      interpreterDefaults.set(interpreter, resolver.intern([normalize(dirname(interpreter))]));
    }
    // What executables load is the same in any order.
    for (const executable of executables) {
      load(executable, interpreterDefaults.get(executable.elf.interpreter!)!);
    }
    // A library loaded as a root that reaches another one (or is reached by
    // one loaded before it) makes the order count.
    const roots: LoadedObject[] = [];
    for (let i = 0; i < libraries.length; i++) {
      const object = libraries[i]!;
      if (reached.has(object)) continue;
      if (named.has(object.name) || (object.elf.soname && named.has(object.elf.soname))) {
        continue;
      }
      roots.push(object);
    }
    reached.watch(roots);
    for (let i = 0; i < roots.length; i++) {
      const root = roots[i]!;
      if (reached.has(root)) {
        if (!sorted) return undefined;
        continue;
      }
      reached.current = root;
      load(root, libraryDefaults);
    }
    if (reached.crossed && !sorted) return undefined;
    reached.watch([]);
    // What is left (libraries that need one another, say), each loaded once
    // no other one reached it: in the sorted order, which decides which.
    const rest: LoadedObject[] = [];
    for (let i = 0; i < libraries.length; i++) {
      if (!reached.has(libraries[i]!)) rest.push(libraries[i]!);
    }
    if (!sorted) rest.sort(byFolderThenName);
    for (const object of rest) if (!reached.has(object)) load(object, libraryDefaults);

    const neededBy = (files: Iterable<string>): NeededBy => {
      const sorted = [...files].map(show).sort();
      return { count: sorted.length, examples: sorted.slice(0, limit) };
    };
    const report: ElfClosureReport = {
      files: programs.length + libraries.length + gpuObjects + malformed.length,
      executables: executables.length +
        [...missingInterpreters.values()].reduce((sum, users) => sum + users.length, 0),
      malformed: malformed.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
      missingInterpreters: [...missingInterpreters.keys()].sort().map((interpreter) => ({
        interpreter,
        ...neededBy(missingInterpreters.get(interpreter)!),
      })),
      unresolved: [],
      allowed: [],
    };
    for (const soname of [...unresolved.keys()].sort()) {
      const { needers, passedOver } = unresolved.get(soname)!;
      const allowedBy = allow.find(({ regex }) => regex.test(soname));
      if (allowedBy !== undefined) {
        report.allowed.push({ soname, pattern: allowedBy.pattern, ...neededBy(needers) });
      } else {
        report.unresolved.push({
          soname,
          ...neededBy(needers),
          ...(passedOver === undefined ? {} : { passedOver }),
        });
      }
    }
    return report;
  }

  /**
   * The objects added, each once, by folder and then by name: the same order
   * whatever order a walk met them in. Names are sorted within their folder
   * by the built-in comparison (no call back into JavaScript per pair).
   */
  #sorted(): LoadedObject[] {
    const byFolder = new Map<string, Map<string, LoadedObject>>();
    for (const object of [...this.#programs, ...this.#libraries]) {
      let names = byFolder.get(object.folder);
      if (names === undefined) byFolder.set(object.folder, names = new Map());
      names.set(object.name, object);
    }
    const sorted: LoadedObject[] = [];
    for (const folder of [...byFolder.keys()].sort()) {
      const names = byFolder.get(folder)!;
      for (const name of [...names.keys()].sort()) sorted.push(names.get(name)!);
    }
    return sorted;
  }

  #open(): Resolver {
    if (this.#opened === undefined) {
      const reader = openElfReader();
      this.#opened = { reader, resolver: new Resolver(reader) };
    }
    return this.#opened.resolver;
  }

  /** Releases the readers. */
  [Symbol.dispose](): void {
    this.#opened?.resolver[Symbol.dispose]();
    this.#opened?.reader[Symbol.dispose]();
    this.#opened = undefined;
  }
}

/** What a walk saw in a folder (see {@linkcode ElfClosureCheck.describeFolder}). */
export interface FolderContents {
  /** The names of its symlinks. */
  symlinks: readonly string[];
  /**
   * `true` when every regular file of it not named `*.debug` was added (the
   * files of bin/, say); `false` when those named like libraries were
   * ({@linkcode namedLikeLibrary}).
   */
  everyFile: boolean;
}

/**
 * Whether a file is read as an ELF candidate for its name alone: `*.so` or
 * `*.so.*`, and not a separate debug file (`*.debug`), which is ELF with
 * empty segments that nothing loads.
 *
 * @param name A file name.
 * @returns `true` for `libamdhip64.so`, `libamdhip64.so.6.4.0`.
 *
 * @example Usage
 * ```ts
 * import { namedLikeLibrary } from "./elf_closure.ts";
 *
 * namedLikeLibrary("libamdhip64.so.6"); // true
 * namedLikeLibrary("libamdhip64.so.6.debug"); // false
 * namedLikeLibrary("rocminfo"); // false
 * ```
 */
export function namedLikeLibrary(name: string): boolean {
  return (name.endsWith(".so") || name.includes(".so.")) && !name.endsWith(".debug");
}

/** One ELF file with its search paths expanded. */
interface LoadedObject {
  path: string;
  /** Its folder (`dirname` of `path`) and name. */
  folder: string;
  name: string;
  elf: ElfFile;
  /** `elf.needed`, as one array for every object needing the same names (see `Resolver.#internNeeded`). */
  needed: readonly string[];
  /** DT_RPATH folders, `$ORIGIN` expanded (empty when there is a DT_RUNPATH: glibc ignores them). */
  rpath: readonly string[];
  /** DT_RUNPATH folders, or `undefined` when there is no DT_RUNPATH. */
  runpath: readonly string[] | undefined;
  /** The searches for `elf.needed` last made (see `Resolver.#needsOf`). */
  memo: { chain: readonly string[]; defaults: readonly string[]; found: Lookup[] } | undefined;
  /** Whether its closure finds everything by search (see `Resolver.#loadsAlike`). */
  selfContained: { defaults: readonly string[]; value: boolean; reached: Reached } | undefined;
  /** The {@linkcode Reached} that last marked it loaded. */
  reachedIn: number;
  /** The {@linkcode Reached} that watches it (see `Reached.watch`). */
  watchedIn: number;
  /** Whether {@linkcode ElfClosureCheck.add} took it (it may be read first by a search). */
  added: boolean;
}

/**
 * The objects one {@linkcode ElfClosureCheck.finish} has loaded: a mark on
 * each object, which costs less than hashing it into a set.
 */
class Reached {
  static #last = 0;
  #id = ++Reached.#last;
  #watching = false;
  /** The root being loaded: marking it is not a crossing. */
  current: LoadedObject | undefined;
  /** Whether an object watched was marked while loading another root. */
  crossed = false;

  has(object: LoadedObject): boolean {
    return object.reachedIn === this.#id;
  }

  add(object: LoadedObject): void {
    if (this.#watching && object.watchedIn === this.#id && object !== this.current) {
      this.crossed = true;
    }
    object.reachedIn = this.#id;
  }

  /** Watches `roots` (none: stops watching), see `crossed`. */
  watch(roots: readonly LoadedObject[]): void {
    this.#watching = roots.length !== 0;
    for (const root of roots) root.watchedIn = this.#id;
  }
}

/** Objects by folder, then by name (the built-in comparison of each). */
function byFolderThenName(a: LoadedObject, b: LoadedObject): number {
  if (a.folder !== b.folder) return a.folder < b.folder ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

const NO_CHAIN: readonly string[] = [];
const NO_BYTES = new Uint8Array(0);
const NO_DIRS: readonly string[] = [];

interface Failure {
  name: string;
  path: string;
  passedOver?: string;
}

/** A folder's parsed objects by name, what a walk saw of it, and its listing (null: not read). */
interface Folder {
  /** `null`: the file is not ELF. */
  objects: Map<string, LoadedObject | string | null>;
  seen: { symlinks: Set<string>; everyFile: boolean } | undefined;
  listing: Map<string, boolean> | undefined | null;
}

const FILE = 1;
const SYMLINK = 2;

/** A found object, or why nothing was found (with what was passed over). */
type Lookup = LoadedObject | { passedOver?: string };

/** Folders searched in order, and what each name was found to be there. */
interface Search {
  dirs: readonly string[];
  found: Map<string, Lookup>;
  /** The lookups of each list of needed names searched (see `Resolver.#internNeeded`). */
  lists: Map<readonly string[], Lookup[]>;
}

/** A node of the lists of needed names: the lists that go on with each name, the one ending here. */
interface ListNode {
  next: Map<string, ListNode>;
  list: readonly string[] | undefined;
}

/**
 * Reads objects, folders and symlinks once each and resolves names, caching
 * each search (the same search path and name resolve alike for every object).
 */
class Resolver implements Disposable {
  #reader: ElfReader;
  #directories = openDirectoryReader();
  /** Folders by path: their parsed objects, what a walk saw, their listings. */
  #folders = new Map<string, Folder>();
  #realPaths = new Map<string, string | undefined>();
  #files = new Map<string, boolean>();
  #searches = new Map<string, Search>();
  #failures: Failure[] = [];
  #loadedNames = new Set<string>();
  #loaded = new Set<LoadedObject>();
  #queue: LoadedObject[] = [];
  #chains: (readonly string[])[] = [];
  #runpathSearches = new Map<readonly string[], Map<readonly string[], Search>>();
  #expanded = new Map<string, string[]>();
  #lastExpanded = { searchPath: "", origin: "", machine: -1, dirs: [] as string[] };
  #defaults = new Map<string, readonly string[]>();
  #neededLists: ListNode = { next: new Map(), list: undefined };
  /**
   * Whether loading finds everything (`#loadsAlike`), by defaults, then by
   * where a root searches (its DT_RUNPATH folders, one array per folder and
   * search path, or its machine when it has none), then by its list of
   * needed names: what decides the lookups of a root lending no DT_RPATH.
   */
  #alike = new Map<
    readonly string[],
    Map<readonly string[] | number, Map<readonly string[], boolean>>
  >();
  /** The {@linkcode Reached} whose marks `#alike` and `selfContained` went with. */
  #marking: Reached | undefined;

  constructor(reader: ElfReader) {
    this.#reader = reader;
  }

  /** How many files were read (a file read before is not read again). */
  reads = 0;

  /** The object at `path`: `undefined` when it is not ELF, a string when malformed. */
  objectAt(path: string): LoadedObject | string | undefined {
    const slash = path.lastIndexOf("/");
    return slash < 0
      ? this.objectIn("", path)
      : this.objectIn(slash === 0 ? "/" : path.slice(0, slash), path.slice(slash + 1));
  }

  /** The object `name` in `folder` ("": `name` is a relative path), as {@linkcode objectAt}. */
  objectIn(folder: string, name: string): LoadedObject | string | undefined {
    const objects = this.#folder(folder).objects;
    const known = objects.get(name);
    if (known !== undefined) return known ?? undefined;
    let result: LoadedObject | string | undefined;
    this.reads++;
    try {
      const elf = folder === "" ? this.#reader.read(name) : this.#reader.readIn(folder, name);
      if (elf !== undefined) {
        const origin = folder === "" ? "/" : folder;
        result = {
          path: folder === "" ? name : folder === "/" ? `/${name}` : `${folder}/${name}`,
          folder,
          name,
          elf,
          needed: this.#internNeeded(elf.needed),
          memo: undefined,
          selfContained: undefined,
          reachedIn: 0,
          watchedIn: 0,
          added: false,
          rpath: elf.rpath === undefined || elf.runpath !== undefined
            ? NO_DIRS
            : this.#expand(elf.rpath, origin, elf.machine),
          runpath: elf.runpath === undefined
            ? undefined
            : this.#expand(elf.runpath, origin, elf.machine),
        };
      }
    } catch (error) {
      if (error instanceof ElfFormatError) result = error.message;
      else result = `cannot be read: ${error instanceof Error ? error.message : String(error)}`;
    }
    objects.set(name, result ?? null);
    return result;
  }

  /**
   * One array for each list of needed names: thousands of files need the
   * same few names, and their searches are then made once (`#needsOf`).
   * The names are the reader's, one string for each distinct name.
   */
  #internNeeded(needed: string[]): readonly string[] {
    let node = this.#neededLists;
    for (let i = 0; i < needed.length; i++) {
      const name = needed[i]!;
      let next = node.next.get(name);
      if (next === undefined) node.next.set(name, next = { next: new Map(), list: undefined });
      node = next;
    }
    return node.list ??= needed.slice();
  }

  #folder(path: string): Folder {
    let folder = this.#folders.get(path);
    if (folder === undefined) {
      this.#folders.set(path, folder = { objects: new Map(), seen: undefined, listing: null });
    }
    return folder;
  }

  /** See {@linkcode ElfClosureCheck.describeFolder}. */
  describeFolder(path: string, seen: FolderContents): void {
    this.#folder(path).seen = { symlinks: new Set(seen.symlinks), everyFile: seen.everyFile };
  }

  /** expandSearchPath, once per search path and folder: files of one folder share it. */
  #expand(searchPath: string, origin: string, machine: number): string[] {
    // Files come folder by folder, most with the search path of the last.
    const last = this.#lastExpanded;
    if (last.searchPath === searchPath && last.origin === origin && last.machine === machine) {
      return last.dirs;
    }
    const key = `${machine}\0${origin}\0${searchPath}`;
    let dirs = this.#expanded.get(key);
    if (dirs === undefined) {
      dirs = expandSearchPath(searchPath, origin, machine);
      this.#expanded.set(key, dirs);
    }
    this.#lastExpanded = { searchPath, origin, machine, dirs };
    return dirs;
  }

  /**
   * One array for each list of default folders, so that searches made with
   * equal defaults are recognised as the same (see `#needsOf`).
   */
  intern(dirs: readonly string[]): readonly string[] {
    const key = dirs.join(":");
    let known = this.#defaults.get(key);
    if (known === undefined) this.#defaults.set(key, known = dirs);
    return known;
  }

  isFile(path: string): boolean {
    let known = this.#files.get(path);
    if (known === undefined) {
      try {
        known = Deno.statSync(path).isFile;
      } catch {
        known = false;
      }
      this.#files.set(path, known);
    }
    return known;
  }

  /**
   * Loads `root` and what it needs, breadth first, as the loader would;
   * marks every object loaded in `reached` and returns the names not found
   * (in an array reused by the next call).
   */
  load(root: LoadedObject, defaults: readonly string[], reached: Reached): Failure[] {
    // Reused from root to root: thousands of libraries are roots of a few objects each.
    const failures = this.#failures;
    failures.length = 0;
    if (this.#loadsAlike(root, defaults, reached)) return failures;
    const loadedNames = this.#loadedNames;
    const loaded = this.#loaded;
    const queue = this.#queue;
    const chains = this.#chains;
    loadedNames.clear();
    loaded.clear();
    loadedNames.add(root.name);
    if (root.elf.soname !== undefined) loadedNames.add(root.elf.soname);
    loaded.add(root);
    reached.add(root);
    // The queue of objects, each with the DT_RPATH folders of its loading chain.
    queue.length = 0;
    chains.length = 0;
    queue.push(root);
    chains.push(NO_CHAIN);
    for (let next = 0; next < queue.length; next++) {
      const object = queue[next]!;
      const chain = chains[next]!;
      const found = this.#needsOf(object, chain, defaults);
      const childChain = object.rpath.length === 0 ? chain : [...object.rpath, ...chain];
      const needed = object.needed;
      for (let i = 0; i < needed.length; i++) {
        const name = needed[i]!;
        if (loadedNames.has(name)) continue;
        const lookup = found[i]!;
        if (!("elf" in lookup)) {
          failures.push({
            name,
            path: object.path,
            ...(lookup.passedOver === undefined ? {} : { passedOver: lookup.passedOver }),
          });
          continue;
        }
        loadedNames.add(name);
        if (lookup.elf.soname !== undefined) loadedNames.add(lookup.elf.soname);
        if (loaded.has(lookup)) continue;
        loaded.add(lookup);
        reached.add(lookup);
        queue.push(lookup);
        chains.push(childChain);
      }
    }
    return failures;
  }

  /**
   * Whether loading `root` can find nothing missing, known without loading
   * it: `root` lends no DT_RPATH and each name it needs is found, as an
   * object whose whole closure, lending no DT_RPATH either, finds every name
   * it needs by search. Then whatever the order of loading, each name is
   * either loaded already or found, so the breadth-first load would report
   * nothing; `root` and those closures are marked in `reached`. Thousands of
   * libraries that need only glibc and a bundled library or two go this way.
   */
  #loadsAlike(
    root: LoadedObject,
    defaults: readonly string[],
    reached: Reached,
  ): boolean {
    if (root.rpath.length !== 0) return false;
    // What is known was marked in another `reached`: known again.
    if (this.#marking !== reached) {
      this.#alike.clear();
      this.#marking = reached;
    }
    // The same for every root that searches alike for the same names (their
    // closures are in `reached` already): thousands of a folder's libraries
    // are answered here without their lookups.
    let bySearch = this.#alike.get(defaults);
    if (bySearch === undefined) this.#alike.set(defaults, bySearch = new Map());
    const search = root.runpath ?? root.elf.machine;
    let byNeeded = bySearch.get(search);
    if (byNeeded === undefined) bySearch.set(search, byNeeded = new Map());
    let alike = byNeeded.get(root.needed);
    if (alike === undefined) {
      alike = this.#needsOf(root, NO_CHAIN, defaults).every((lookup) =>
        "elf" in lookup && this.#selfContained(lookup, defaults, reached)
      );
      byNeeded.set(root.needed, alike);
    }
    if (alike) reached.add(root);
    return alike;
  }

  /** See {@linkcode Resolver.#loadsAlike}; computed once per object, defaults and `reached`. */
  #selfContained(
    object: LoadedObject,
    defaults: readonly string[],
    reached: Reached,
  ): boolean {
    const known = object.selfContained;
    if (known !== undefined && known.defaults === defaults && known.reached === reached) {
      return known.value;
    }
    const closure = new Set<LoadedObject>([object]);
    let value = true;
    for (const member of closure) { // a Set visits what is added while iterating
      if (member.rpath.length !== 0) {
        value = false;
        break;
      }
      for (const lookup of this.#needsOf(member, NO_CHAIN, defaults)) {
        if (!("elf" in lookup)) {
          value = false;
          break;
        }
        closure.add(lookup);
      }
      if (!value) break;
    }
    if (value) { for (const member of closure) reached.add(member); }
    object.selfContained = { defaults, value, reached };
    return value;
  }

  /**
   * Where each DT_NEEDED name of `object` is found with this chain and these
   * defaults. The searches do not depend on what is loaded, so they are kept
   * on the object for the last chain and defaults seen (nearly always the
   * same arrays: most objects lend no DT_RPATH), and each search is shared
   * by every object with the same search path.
   */
  #needsOf(object: LoadedObject, chain: readonly string[], defaults: readonly string[]): Lookup[] {
    const memo = object.memo;
    const inherits = object.runpath === undefined;
    if (memo !== undefined && memo.defaults === defaults && (!inherits || memo.chain === chain)) {
      return memo.found;
    }
    const machine = object.elf.machine;
    const search = inherits
      ? this.#searchFor([...object.rpath, ...chain, ...defaults], machine)
      : this.#runpathSearch(object.runpath!, defaults, machine);
    let found = search.lists.get(object.needed);
    if (found === undefined) {
      found = object.needed.map((name) => {
        let lookup = search.found.get(name);
        if (lookup === undefined) {
          lookup = this.#search(name, search.dirs, machine);
          search.found.set(name, lookup);
        }
        return lookup;
      });
      search.lists.set(object.needed, found);
    }
    object.memo = { chain, defaults, found };
    return found;
  }

  /** The search of a DT_RUNPATH (an array shared by the files of a folder) and defaults. */
  #runpathSearch(runpath: readonly string[], defaults: readonly string[], machine: number): Search {
    let byDefaults = this.#runpathSearches.get(runpath);
    if (byDefaults === undefined) this.#runpathSearches.set(runpath, byDefaults = new Map());
    let search = byDefaults.get(defaults);
    if (search === undefined) {
      byDefaults.set(defaults, search = this.#searchFor([...runpath, ...defaults], machine));
    }
    return search;
  }

  /** The search of these folders for this machine, shared by every object that makes it. */
  #searchFor(dirs: readonly string[], machine: number): Search {
    const key = `${machine}\0${dirs.join(":")}`;
    let search = this.#searches.get(key);
    if (search === undefined) {
      this.#searches.set(key, search = { dirs, found: new Map(), lists: new Map() });
    }
    return search;
  }

  #search(name: string, dirs: readonly string[], machine: number): Lookup {
    if (name.includes("/")) {
      if (!name.startsWith("/")) {
        return { passedOver: `"${name}" is relative to the working directory` };
      }
      const found = this.#candidate(normalize(name), machine);
      return typeof found === "string" ? { passedOver: found } : found ?? {};
    }
    let passedOver: string | undefined;
    for (const dir of dirs) {
      const kind = this.#kindIn(dir, name);
      if (kind === undefined) continue;
      let found: LoadedObject | string | undefined;
      if (kind === SYMLINK) {
        const real = this.#realPath(`${dir}/${name}`);
        if (real === undefined) continue; // dangling: reported by check-output's symlink check
        found = this.#candidate(real, machine);
      } else {
        // A regular file, as its folder's entry says: no stat needed.
        found = this.#usable(this.objectIn(dir, name), `${dir}/${name}`, machine);
      }
      if (typeof found === "string") passedOver ??= found;
      else if (found !== undefined) return found;
    }
    return passedOver === undefined ? {} : { passedOver };
  }

  /**
   * Whether `dir` holds `name` as a regular file or a symlink (or neither):
   * from what a walk saw when that covers the name, else from a listing.
   */
  #kindIn(dir: string, name: string): typeof FILE | typeof SYMLINK | undefined {
    const folder = this.#folder(dir);
    const seen = folder.seen;
    if (
      seen !== undefined && (seen.everyFile ? !name.endsWith(".debug") : namedLikeLibrary(name))
    ) {
      if (folder.objects.has(name)) return FILE;
      return seen.symlinks.has(name) ? SYMLINK : undefined;
    }
    if (folder.listing === null) folder.listing = this.#list(dir);
    const isSymlink = folder.listing?.get(name);
    return isSymlink === undefined ? undefined : isSymlink ? SYMLINK : FILE;
  }

  /** The object at `path` if it is one the loader would take for `machine`, else why not. */
  #candidate(path: string, machine: number): LoadedObject | string | undefined {
    if (!this.isFile(path)) return undefined;
    return this.#usable(this.objectAt(path), path, machine);
  }

  /** `object` (the file at `path`) if the loader would take it for `machine`, else why not. */
  #usable(
    object: LoadedObject | string | undefined,
    path: string,
    machine: number,
  ): LoadedObject | string | undefined {
    if (object === undefined) return `"${path}" is not an ELF file`;
    if (typeof object === "string") return `"${path}" ${object}`;
    if (object.elf.machine !== machine) {
      return `"${path}" is for machine ${object.elf.machine}, not ${machine}`;
    }
    return object;
  }

  /** Names in `dir`: `true` for a symlink, `false` for a regular file. */
  #list(dir: string): Map<string, boolean> | undefined {
    let listing: Map<string, boolean> | undefined = new Map();
    try {
      this.#directories.read(dir, (name, kind) => {
        if (kind === "file") listing!.set(name, false);
        else if (kind === "symlink") listing!.set(name, true);
      });
    } catch {
      listing = undefined; // a folder that does not exist holds nothing
    }
    return listing;
  }

  #realPath(path: string): string | undefined {
    if (this.#realPaths.has(path)) return this.#realPaths.get(path);
    let real: string | undefined;
    try {
      real = Deno.realPathSync(path);
    } catch {
      real = undefined;
    }
    this.#realPaths.set(path, real);
    return real;
  }

  [Symbol.dispose](): void {
    this.#directories[Symbol.dispose]();
  }
}

const EM_X86_64 = 62;
/** GPU code objects: the ROCm runtime loads them, never ld.so. */
const EM_AMDGPU = 224;
const EM_AARCH64 = 183;
const DYNAMIC_TOKEN = /\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))/g;

/**
 * The folders of a DT_RUNPATH or DT_RPATH, with `$ORIGIN` expanded to
 * `origin`, `$LIB` tried as `lib` and `lib64`, and `$PLATFORM` the
 * machine's name. Empty and relative entries are dropped (they depend on
 * the working directory).
 *
 * @param searchPath The string as written in the file (`$ORIGIN/../lib:…`).
 * @param origin The folder of the file holding it.
 * @param machine The file's `e_machine` (for `$PLATFORM`).
 * @returns Absolute, normalized folders, in order.
 *
 * @example Usage
 * ```ts
 * import { expandSearchPath } from "./elf_closure.ts";
 *
 * expandSearchPath("$ORIGIN/../lib:${ORIGIN}/llvm/lib", "/opt/rocm/bin", 62);
 * // ["/opt/rocm/lib", "/opt/rocm/bin/llvm/lib"]
 * ```
 */
export function expandSearchPath(searchPath: string, origin: string, machine: number): string[] {
  const platform = machine === EM_X86_64 ? "x86_64" : machine === EM_AARCH64 ? "aarch64" : "";
  const dirs: string[] = [];
  for (const entry of searchPath.split(":")) {
    if (entry === "") continue;
    const variants = entry.includes("LIB") && /\$\{?LIB\b/.test(entry) ? ["lib", "lib64"] : [""];
    for (const lib of variants) {
      const expanded = entry.replace(DYNAMIC_TOKEN, (_, braced?: string, bare?: string) => {
        const token = braced ?? bare;
        return token === "ORIGIN" ? origin : token === "LIB" ? lib : platform;
      });
      if (!expanded.startsWith("/")) continue;
      dirs.push(normalize(expanded));
    }
  }
  return dirs;
}

/** `a/./b/../c//d/` → `a/c/d`, textually (origins are real paths, so `..` means the parent). */
function normalize(path: string): string {
  if (!path.includes("/.") && !path.includes("//") && !path.endsWith("/")) return path;
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

function dirname(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? "/" : path.slice(0, slash);
}

function globToRegExp(glob: string): RegExp {
  const source = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*").replaceAll(
    "?",
    ".",
  );
  return new RegExp(`^${source}$`);
}
