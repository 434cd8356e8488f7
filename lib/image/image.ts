/**
 * Building a layered image of a Nix closure: scan the store paths, plan the
 * layers (lib/image/layers.ts), assemble the container settings and write a
 * docker-archive or an OCI layout (lib/image/oci.ts). What `scripts/image.ts` runs.
 *
 * @module
 */

import { AtomicFile } from "../fs/atomic_write.ts";
import type { ByteSink } from "./block_writer.ts";
import type { Closure } from "../store/closure.ts";
import { planLayers } from "./layers.ts";
import {
  type ContainerConfig,
  type ImageResult,
  mergeContainerConfig,
  rocmContainerConfig,
  writeDockerArchive,
  writeOciLayout,
} from "./oci.ts";
import { type ClosureFiles, scanClosure, type StoreFile } from "../store/store_scan.ts";
import { targetIsas, tokensMatchTarget } from "../releases/isa_files.ts";
import { kernelTokens } from "../releases/kernel_files.ts";
import { listsEveryName } from "../fs/dir_reader.ts";

/** Options for {@linkcode writeImage}. */
export interface WriteImageOptions {
  /** Image name, e.g. `rocm`. */
  name: string;
  /**
   * Image tag.
   *
   * @default {"latest"}
   */
  tag?: string;
  /**
   * GPU target whose kernels are kept (an ISA or family of lib/releases/targets.json).
   *
   * @default {undefined (all kernels)}
   */
  target?: string | undefined;
  /**
   * Most layers.
   *
   * @default {100}
   */
  maxLayers?: number;
  /**
   * Content size above which store paths and kernel groups are split.
   *
   * @default {1073741824}
   */
  splitBytes?: number;
  /**
   * Output format.
   *
   * @default {"docker-archive"}
   */
  format?: "docker-archive" | "oci";
  /**
   * Where to write: a file path (docker-archive, replaced atomically), a new
   * directory (oci, renamed into place once complete), or a sink such as
   * `Deno.stdout` (docker-archive). Files are not flushed to disk (no
   * `fsync`): the image can be written again; run `sync` for durability.
   */
  output: string | ByteSink;
  /**
   * Container settings merged over the defaults of `rocmContainerConfig`.
   *
   * @default {{}}
   */
  config?: ContainerConfig;
  /**
   * Creation time, seconds since the epoch.
   *
   * @default {1}
   */
  created?: number;
}

/**
 * Writes a layered image of `closure`, reading each file once.
 *
 * @param closure The closure (lib/store/closure.ts).
 * @param options Name, target, layering, format and destination.
 * @returns The digests and sizes written.
 * @throws {RangeError} For an unknown target or a layer budget that cannot hold the closure.
 * @throws {TypeError} For a malformed name or tag, or when a sink is given for `oci`.
 *
 * @example Usage
 * ```ts
 * import { parseClosure } from "../store/closure.ts";
 * import { writeImage } from "./image.ts";
 *
 * const store = await Deno.makeTempDir();
 * const path = `${store}/${"0".repeat(32)}-hello`;
 * await Deno.mkdir(`${path}/bin`, { recursive: true });
 * const closure = parseClosure(`[{"path": "${path}", "narSize": 0, "references": []}]`, {
 *   storeDir: store,
 * });
 * const result = await writeImage(closure, { name: "hello", output: `${store}/image.tar` });
 * result.layers.length; // 1
 * await Deno.remove(store, { recursive: true });
 * ```
 */
export async function writeImage(
  closure: Closure,
  options: WriteImageOptions,
): Promise<WrittenImage> {
  const { files, directories } = await scanClosure(closure);
  if (!listsEveryName) {
    // This Deno leaves names that are not UTF-8 out of a listing without a
    // word: a store path whose files do not add up to its NAR size lost one.
    for (const { path, narSize } of closure.paths) {
      const listed = narSizeOf(files.get(path) ?? []);
      // (0: a closure written by hand, which records no size)
      if (narSize !== 0 && listed !== narSize) {
        throw new TypeError(
          `Cannot put "${path}" in an image: its files as listed make a NAR of ${listed} bytes, ` +
            `the store records ${narSize}: a name is not UTF-8 and Deno ${Deno.version.deno} ` +
            "leaves such names out (Deno 2.8.2 and later list them); rename it in the package",
        );
      }
    }
  }
  const warnings = options.target === undefined ? [] : missingGpuCode(files, options.target);
  return { ...await writeLayers(closure, files, directories, options), warnings };
}

/** What {@linkcode writeImage} wrote. */
export interface WrittenImage extends ImageResult {
  /**
   * Things the user should know: the ISAs of the target the closure has no
   * GPU code for (the image would run nothing on those GPUs).
   */
  warnings: string[];
}

// The ISAs of `target` that no GPU code file of the closure (a kind of
// lib/releases/kernel_files.ts) carries: an image for them runs no kernel.
function missingGpuCode(files: Map<string, StoreFile[]>, target: string): string[] {
  const found = new Set<string>();
  for (const [storePath, list] of files) {
    for (const file of list) {
      if (file.type !== "file") continue;
      for (const token of kernelTokens(file.path.slice(storePath.length))) found.add(token);
    }
  }
  const tokens = [...found].sort();
  const missing = targetIsas(target).filter((isa) => !tokensMatchTarget(tokens, [isa]));
  if (missing.length === 0) return [];
  const has = tokens.length === 0 ? "none at all" : `only for ${tokens.join(", ")}`;
  return [
    `--target ${target}: the closure has no GPU code for ${missing.join(", ")} (${has}); ` +
    "the image keeps no kernel for it: build the closure of a package for that target",
  ];
}

async function writeLayers(
  closure: Closure,
  files: Map<string, StoreFile[]>,
  directories: ClosureFiles["directories"],
  options: WriteImageOptions,
): Promise<ImageResult> {
  const layers = planLayers(closure, files, {
    target: options.target,
    ...(options.maxLayers === undefined ? {} : { maxLayers: options.maxLayers }),
    ...(options.splitBytes === undefined ? {} : { splitBytes: options.splitBytes }),
  });
  const defaults = await rocmContainerConfig(closure, files, { target: options.target });
  const image = {
    name: options.name,
    ...(options.tag === undefined ? {} : { tag: options.tag }),
    ...(options.created === undefined ? {} : { created: options.created }),
    config: mergeContainerConfig(defaults, options.config ?? {}),
    directories,
  };
  const output = options.output;
  if (options.format === "oci") {
    if (typeof output !== "string") {
      throw new TypeError("Cannot write an OCI layout to a stream: give a directory path");
    }
    return await writeOciLayout(layers, output, image);
  }
  if (typeof output !== "string") return await writeDockerArchive(layers, output, image);
  // Not fsynced: an image is made again from the store by the same command,
  // as Nix builders, tar, cp and skopeo leave their output to the page cache;
  // a 2 GiB fsync would cost more than writing the image. The rename keeps the
  // write atomic, and a full disk still fails the write that meets it.
  const file = await AtomicFile.create(output, { durable: false });
  try {
    const result = await writeDockerArchive(layers, file, image);
    await file.commit();
    return result;
  } finally {
    await file.abort();
  }
}

/**
 * Parses an image creation time: whole seconds since the epoch (as in
 * `SOURCE_DATE_EPOCH`) or an ISO 8601 time with a zone.
 *
 * @param text The time.
 * @returns Seconds since the epoch.
 * @throws {SyntaxError} When the text is neither form or is before 1970.
 *
 * @example Usage
 * ```ts
 * import { parseCreationTime } from "./image.ts";
 *
 * parseCreationTime("2026-03-08T00:00:00Z"); // 1772928000
 * parseCreationTime("1"); // 1
 * ```
 */
export function parseCreationTime(text: string): number {
  if (/^\d{1,15}$/.test(text)) return Number(text);
  const ms = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/.test(text)
    ? Date.parse(text)
    : NaN;
  if (Number.isNaN(ms) || ms < 0) {
    throw new SyntaxError(
      `Invalid creation time "${text}": expected seconds or ISO 8601 with a zone`,
    );
  }
  return Math.floor(ms / 1000);
}

/**
 * The size of the NAR serialisation of a store path listed by scanStorePath
 * (sorted, the path itself first): every string is a 64-bit length and its
 * bytes padded to 8.
 */
function narSizeOf(files: readonly StoreFile[]): number {
  const encoder = new TextEncoder();
  const str = (bytes: number): number => 8 + Math.ceil(bytes / 8) * 8;
  const word = (text: string): number => str(text.length); // ASCII keywords
  let size = word("nix-archive-1");
  for (const [index, file] of files.entries()) {
    if (index > 0) {
      const name = file.path.slice(file.path.lastIndexOf("/") + 1);
      size += word("entry") + word("(") + word("name") + str(encoder.encode(name).length) +
        word("node") + word(")");
    }
    size += word("(") + word("type") + word(")");
    if (file.type === "file") {
      size += word("regular") + word("contents") + str(file.size);
      if ((file.mode & 0o100) !== 0) size += word("executable") + word("");
    } else if (file.type === "symlink") {
      size += word("symlink") + word("target") + str(encoder.encode(file.linkTarget ?? "").length);
    } else {
      size += word("directory");
    }
  }
  return size;
}
