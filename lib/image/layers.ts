/**
 * Planning the layers of an image from a Nix closure.
 *
 * 1. **Popularity**: each store path is ranked by how many paths of the
 *    closure depend on it, directly or transitively (ties by name, then by
 *    path). Transitive counting is used because a library like glibc is
 *    referenced directly by a few paths but needed by nearly all of them: it
 *    is what other images built from overlapping closures share most.
 * 2. **ISA pruning**: GPU code files (a kind of lib/releases/kernel_files.ts: code
 *    objects, kpack archives, Tensile libraries, MIOpen databases, …) whose
 *    path carries a GPU ISA token (lib/releases/isa_files.ts) leave their store path's
 *    layer and go into kernel layers, one group per token set (`gfx1100`,
 *    `gfx110X`, …). Other files stay common, whatever their names. An image for a
 *    target gets the groups covering its ISAs, ordered family tokens first
 *    (shared by a family's ISAs), then ISA tokens.
 * 3. **Budget**: kernel layers for every group are counted against
 *    `maxLayers` whatever the target, so the common layers are planned the
 *    same way for every target and get identical digests.
 * 4. **Splitting**: content over `splitBytes` (the multi-GB ROCm tree, a big
 *    kernel group) is cut into several layers along subtree boundaries.
 * 5. **Merging**: the most popular store paths get a layer each; when they do
 *    not all fit, the least popular share the last common layer.
 *
 * Layers come bottom first: common layers by rank, the merged layer, then
 * kernel layers. Common layers form the same prefix in every target's image,
 * which is what lets Docker share them in local storage too (its layer IDs
 * chain over the layers below).
 *
 * @module
 */

import type { Closure } from "../store/closure.ts";
import { targetIsas, tokensMatchTarget } from "../releases/isa_files.ts";
import { kernelTokens } from "../releases/kernel_files.ts";
import { compareTreePaths, type StoreFile } from "../store/store_scan.ts";
import { TAR_BLOCK_SIZE, tarPadding } from "./tar.ts";

/** The largest `maxLayers` accepted: overlayfs and Docker fail past about 125–127 layers. */
export const MAX_LAYERS_LIMIT = 125;

/** One planned layer. */
export interface Layer {
  /** What the layer holds, for the image history (`/nix/store/…-glibc`, `gfx1100 kernels`). */
  description: string;
  /** Store paths with files in this layer, most shared first. */
  storePaths: string[];
  /** The layer's files in tree order (parent directories outside it are not listed). */
  files: StoreFile[];
  /** ISA tokens of a kernel layer (`["gfx1100"]`); empty for a layer every target shares. */
  tokens: string[];
  /** Bytes of file content in the layer. */
  bytes: number;
}

/** Options for {@linkcode planLayers}. */
export interface PlanLayersOptions {
  /**
   * The most layers the image may have (1–125).
   *
   * @default {100}
   */
  maxLayers?: number;
  /**
   * Content size above which a store path or kernel group is split into
   * several layers along subtrees.
   *
   * @default {1073741824}
   */
  splitBytes?: number;
  /**
   * GPU target (an ISA or family of lib/releases/targets.json) whose kernels the image
   * keeps; other targets' kernels are left out.
   *
   * @default {undefined (every kernel is kept)}
   */
  target?: string | undefined;
}

/**
 * Counts, for every store path, the paths of the closure that depend on it
 * directly or transitively.
 *
 * @param closure The closure.
 * @returns The count per store path.
 * @throws {RangeError} When the references form a cycle.
 *
 * @example Usage
 * ```ts
 * import { popularity } from "./layers.ts";
 *
 * const p = (name: string) => `/nix/store/${"0".repeat(32)}-${name}`;
 * const counts = popularity({
 *   storeDir: "/nix/store",
 *   paths: [
 *     { path: p("app"), narSize: 1, references: [p("lib")] },
 *     { path: p("glibc"), narSize: 1, references: [] },
 *     { path: p("lib"), narSize: 1, references: [p("glibc")] },
 *   ],
 * });
 * counts.get(p("glibc")); // 2
 * ```
 */
export function popularity(closure: Closure): Map<string, number> {
  const index = new Map(closure.paths.map((info, i) => [info.path, i]));
  const n = closure.paths.length;
  const words = Math.ceil(n / 32);
  // dependents[i]: bitset of the paths that depend on path i.
  const dependents: (Uint32Array | undefined)[] = new Array(n);
  const state = new Uint8Array(n); // 0 new, 1 in progress, 2 done
  const dependentsOf: number[][] = closure.paths.map(() => []);
  closure.paths.forEach((info, i) => {
    for (const ref of info.references) dependentsOf[index.get(ref)!]!.push(i);
  });

  const visit = (root: number): void => {
    const stack: [number, number][] = [[root, 0]];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const [node, next] = top;
      if (next === 0) state[node] = 1;
      const users = dependentsOf[node]!;
      if (next < users.length) {
        top[1]++;
        const user = users[next]!;
        if (state[user] === 1) {
          throw new RangeError(
            `Invalid closure: the references of "${closure.paths[user]!.path}" form a cycle`,
          );
        }
        if (state[user] === 0) stack.push([user, 0]);
        continue;
      }
      const bits = new Uint32Array(words);
      for (const user of users) {
        bits[user >>> 5]! |= 1 << (user & 31);
        const theirs = dependents[user]!;
        for (let w = 0; w < words; w++) bits[w]! |= theirs[w]!;
      }
      dependents[node] = bits;
      state[node] = 2;
      stack.pop();
    }
  };
  for (let i = 0; i < n; i++) if (state[i] === 0) visit(i);

  const counts = new Map<string, number>();
  closure.paths.forEach((info, i) => {
    let count = 0;
    for (const word of dependents[i]!) count += popcount(word);
    counts.set(info.path, count);
  });
  return counts;
}

/**
 * Store paths from most to least popular ({@linkcode popularity}); ties are
 * broken by the name after the hash, then by the whole path.
 *
 * @param closure The closure.
 * @returns The store paths, most shared first.
 *
 * @example Usage
 * ```ts
 * import { rankStorePaths } from "./layers.ts";
 *
 * const p = (name: string) => `/nix/store/${"0".repeat(32)}-${name}`;
 * rankStorePaths({
 *   storeDir: "/nix/store",
 *   paths: [
 *     { path: p("app"), narSize: 1, references: [p("glibc")] },
 *     { path: p("glibc"), narSize: 1, references: [] },
 *   ],
 * }); // [p("glibc"), p("app")]
 * ```
 */
export function rankStorePaths(closure: Closure): string[] {
  const counts = popularity(closure);
  const name = (path: string): string => path.slice(path.lastIndexOf("/") + 34);
  return closure.paths.map((info) => info.path).sort((a, b) =>
    (counts.get(b)! - counts.get(a)!) || compareStrings(name(a), name(b)) || compareStrings(a, b)
  );
}

/**
 * Plans the layers of an image: popular store paths alone, the rest merged,
 * big content split by subtree, GPU kernels in per-ISA layers of which only
 * the target's are kept.
 *
 * @param closure The closure.
 * @param files Every store path's files ({@linkcode scanStorePath} from lib/store/store_scan.ts).
 * @param options Layer budget, split size and GPU target.
 * @returns The layers, bottom first.
 * @throws {RangeError} When `maxLayers` or `splitBytes` is out of range, the
 *   target is unknown, or the content needs more layers than allowed.
 * @throws {TypeError} When a store path's files are missing.
 *
 * @example Usage
 * ```ts
 * import { planLayers } from "./layers.ts";
 *
 * const path = `/nix/store/${"0".repeat(32)}-rocm`;
 * const dir = { type: "directory", mode: 0o555, size: 0 } as const;
 * const file = { type: "file", mode: 0o444, size: 10 } as const;
 * const layers = planLayers(
 *   { storeDir: "/nix/store", paths: [{ path, narSize: 0, references: [] }] },
 *   new Map([[path, [
 *     { ...dir, path },
 *     { ...file, path: `${path}/blas_gfx1100.kpack` },
 *     { ...file, path: `${path}/blas_gfx1151.kpack` },
 *   ]]]),
 *   { target: "gfx1151" },
 * );
 * layers.map((layer) => layer.tokens); // [[], ["gfx1151"]]
 * ```
 */
export function planLayers(
  closure: Closure,
  files: ReadonlyMap<string, readonly StoreFile[]>,
  options: PlanLayersOptions = {},
): Layer[] {
  const maxLayers = options.maxLayers ?? 100;
  const splitBytes = options.splitBytes ?? 2 ** 30;
  if (!Number.isInteger(maxLayers) || maxLayers < 1 || maxLayers > MAX_LAYERS_LIMIT) {
    throw new RangeError(
      `Invalid maximum layer count ${maxLayers}: expected 1 to ${MAX_LAYERS_LIMIT}`,
    );
  }
  if (!Number.isSafeInteger(splitBytes) || splitBytes < 1) {
    throw new RangeError(`Invalid split size ${splitBytes}: expected a positive byte count`);
  }
  const isas = options.target === undefined ? undefined : targetIsas(options.target);

  const units: Layer[][] = []; // per store path in rank order: its common layer(s)
  const groups = new Map<string, StoreFile[]>();
  const groupPaths = new Map<string, Set<string>>();
  for (const storePath of rankStorePaths(closure)) {
    const list = files.get(storePath);
    if (list === undefined || list[0]?.path !== storePath) {
      throw new TypeError(`Cannot plan layers: no files listed for "${storePath}"`);
    }
    const common: StoreFile[] = [];
    for (const file of list) {
      const tokens = file.type === "file" ? kernelTokens(file.path.slice(storePath.length)) : [];
      if (tokens.length === 0) {
        common.push(file);
        continue;
      }
      const key = tokens.join("+");
      const group = groups.get(key);
      if (group === undefined) groups.set(key, [file]);
      else group.push(file);
      groupPaths.set(key, (groupPaths.get(key) ?? new Set()).add(storePath));
    }
    const chunks = splitBySubtree(common, splitBytes);
    units.push(chunks.map((chunk, i) =>
      makeLayer(
        chunks.length === 1 ? storePath : `${storePath} (part ${i + 1} of ${chunks.length})`,
        [storePath],
        chunk,
        [],
      )
    ));
  }

  const kernels: Layer[] = [];
  const keys = [...groups.keys()].sort((a, b) =>
    Number(isIsaOnly(a)) - Number(isIsaOnly(b)) || compareStrings(a, b)
  );
  for (const key of keys) {
    const tokens = key.split("+");
    const sorted = groups.get(key)!.sort((a, b) => compareTreePaths(a.path, b.path));
    const chunks = splitBySubtree(sorted, splitBytes);
    const paths = [...groupPaths.get(key)!]; // in rank order, as they were found
    chunks.forEach((chunk, i) => {
      const part = chunks.length === 1 ? "" : ` (part ${i + 1} of ${chunks.length})`;
      kernels.push(makeLayer(`${tokens.join(", ")} kernels${part}`, paths, chunk, tokens));
    });
  }

  const budget = maxLayers - kernels.length;
  const split = units.filter((unit) => unit.length > 1);
  const splitCount = split.reduce((sum, unit) => sum + unit.length, 0);
  const single = units.length - split.length;
  const own = budget - splitCount;
  if (own < (single > 0 ? 1 : 0)) {
    throw new RangeError(
      `Cannot fit the image in ${maxLayers} layers: ${kernels.length} kernel layers and ` +
        `${splitCount} layers of split store paths leave no room for the rest ` +
        `(raise the maximum layer count or the split size)`,
    );
  }
  const layers: Layer[] = [];
  const merged: Layer[] = [];
  let singles = 0;
  for (const unit of units) {
    if (unit.length > 1 || single <= own || ++singles < own) layers.push(...unit);
    else merged.push(unit[0]!);
  }
  if (merged.length > 0) {
    const storePaths = merged.flatMap((layer) => layer.storePaths);
    const all = merged.flatMap((layer) => layer.files).sort((a, b) =>
      compareTreePaths(a.path, b.path)
    );
    layers.push(
      makeLayer(`${merged.length} less shared store paths`, storePaths, all, []),
    );
  }
  for (const layer of kernels) {
    if (isas === undefined || tokensMatchTarget(layer.tokens, isas)) layers.push(layer);
  }
  return layers;
}

/**
 * Cuts files (in tree order) into runs of at most `limit` bytes of tar data
 * each, along directory boundaries: a directory's subtree stays whole when it
 * fits, otherwise its children are packed in order. A single file over the
 * limit gets a run of its own.
 *
 * @param files Files sorted with `compareTreePaths` from lib/store/store_scan.ts.
 * @param limit The size limit of a run, in bytes.
 * @returns The runs, in order; concatenated they are `files`.
 *
 * @example Usage
 * ```ts
 * import { splitBySubtree } from "./layers.ts";
 *
 * const file = (path: string) => ({ path, type: "file", mode: 0o444, size: 1000 } as const);
 * const runs = splitBySubtree([file("/s/a/1"), file("/s/a/2"), file("/s/b/1")], 3000);
 * runs.map((run) => run.length); // [2, 1]
 * ```
 */
export function splitBySubtree(files: readonly StoreFile[], limit: number): StoreFile[][] {
  const weights = new Float64Array(files.length + 1);
  for (let i = 0; i < files.length; i++) weights[i + 1] = weights[i]! + tarWeight(files[i]!);
  const weight = (lo: number, hi: number): number => weights[hi]! - weights[lo]!;
  if (files.length === 0) return [];
  if (weight(0, files.length) <= limit) return [files.slice()];

  const pieces: [number, number][] = [];
  const split = (lo: number, hi: number, prefix: string): void => {
    let i = lo;
    while (i < hi) {
      const path = files[i]!.path;
      let j = i + 1;
      if (path.length > prefix.length) {
        // The child of `prefix` that files[i] is in, and all files below it.
        const slash = path.indexOf("/", prefix.length + 1);
        const child = slash === -1 ? path : path.slice(0, slash);
        while (j < hi && files[j]!.path.startsWith(`${child}/`)) j++;
        if (weight(i, j) > limit && j - i > 1) {
          split(i, j, child);
          i = j;
          continue;
        }
      }
      pieces.push([i, j]);
      i = j;
    }
  };
  split(0, files.length, commonDirectory(files));

  const runs: StoreFile[][] = [];
  let [start, end] = pieces[0]!;
  for (const [lo, hi] of pieces.slice(1)) {
    if (weight(start, hi) <= limit) {
      end = hi;
      continue;
    }
    runs.push(files.slice(start, end));
    [start, end] = [lo, hi];
  }
  runs.push(files.slice(start, end));
  return runs;
}

function commonDirectory(files: readonly StoreFile[]): string {
  let prefix = files[0]!.path;
  for (const file of files) {
    while (prefix !== "" && file.path !== prefix && !file.path.startsWith(`${prefix}/`)) {
      prefix = prefix.slice(0, Math.max(0, prefix.lastIndexOf("/")));
    }
  }
  // A lone common path is a file or the tree's root: split below its parent.
  return files.every((file) => file.path === prefix)
    ? prefix.slice(0, Math.max(0, prefix.lastIndexOf("/")))
    : prefix;
}

// A header block and the padded content (long names' extra headers aside).
function tarWeight(file: StoreFile): number {
  return TAR_BLOCK_SIZE + file.size + tarPadding(file.size);
}

function makeLayer(
  description: string,
  storePaths: string[],
  files: StoreFile[],
  tokens: string[],
): Layer {
  const bytes = files.reduce((sum, file) => sum + file.size, 0);
  return { description, storePaths, files, tokens, bytes };
}

function isIsaOnly(key: string): boolean {
  return key.split("+").every((token) => /^gfx(?:\d{3,4}|\d{2}[a-f])$/.test(token));
}

function popcount(word: number): number {
  let v = word - ((word >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
