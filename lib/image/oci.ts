/**
 * Writing container images in one pass over the file contents: a
 * docker-archive (what `docker save` writes and `docker load` reads) or an OCI
 * image layout directory.
 *
 * Layers are uncompressed tars, so a layer's digest is also its `diff_id`.
 * Each layer's size follows from file metadata (lib/image/tar.ts), so the archive
 * can announce it before streaming; the digests are computed while the bytes
 * stream past, and the config and `manifest.json`, which need them, come last.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { BlockWriter, type ByteSink } from "./block_writer.ts";
import { interruption } from "../fs/cleanup.ts";
import { createTemporaryFolder } from "../fs/temporaries.ts";
import type { Closure } from "../store/closure.ts";
import type { Layer } from "./layers.ts";
import type { StoreFile } from "../store/store_scan.ts";
import { compareTreePaths } from "../store/store_scan.ts";
import { TAR_TRAILER_SIZE, type TarEntry, tarEntrySize, tarHeader, tarPadding } from "./tar.ts";

/** The container settings of an image config (the OCI `config` object). */
export interface ContainerConfig {
  /** Environment, `NAME=value` strings. */
  Env?: string[];
  /** Command the container runs. */
  Entrypoint?: string[];
  /** Default arguments (or command, without an entrypoint). */
  Cmd?: string[];
  /** Working directory. */
  WorkingDir?: string;
  /** User to run as. */
  User?: string;
  /** Labels (`org.opencontainers.image.version`, …). */
  Labels?: Record<string, string>;
  /** Ports to expose (`"8080/tcp": {}`). */
  ExposedPorts?: Record<string, Record<string, never>>;
  /** Volumes (`"/data": {}`). */
  Volumes?: Record<string, Record<string, never>>;
  /** Signal that stops the container. */
  StopSignal?: string;
}

/** Options for {@linkcode writeDockerArchive} and {@linkcode writeOciLayout}. */
export interface ImageOptions {
  /** Repository name, e.g. `rocm` or `ghcr.io/me/rocm`. */
  name: string;
  /**
   * Tag.
   *
   * @default {"latest"}
   */
  tag?: string;
  /**
   * Creation time (seconds since the epoch) of the image and every tar entry.
   *
   * @default {1}
   */
  created?: number;
  /**
   * Container settings.
   *
   * @default {{}}
   */
  config?: ContainerConfig;
  /**
   * Platform architecture.
   *
   * @default {"amd64"}
   */
  architecture?: string;
}

/** One written layer. */
export interface WrittenLayer {
  /** `sha256:…` of the uncompressed tar (also its diff_id). */
  digest: string;
  /** Size in bytes. */
  size: number;
  /** What the layer holds. */
  description: string;
}

/** What {@linkcode writeDockerArchive} and {@linkcode writeOciLayout} wrote. */
export interface ImageResult {
  /** `name:tag`. */
  reference: string;
  /** `sha256:…` of the config (Docker's image ID). */
  configDigest: string;
  /** `sha256:…` of the OCI manifest (OCI layouts only). */
  manifestDigest?: string;
  /** The layers, bottom first. */
  layers: WrittenLayer[];
}

/** A tar entry of a layer; a file's content is read from `source` when written. */
export interface LayerEntry extends TarEntry {
  /** The file on disk holding a file entry's content (its store path). */
  source?: string;
}

const encoder = new TextEncoder();
const NAME =
  /^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const MEDIA = {
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
} as const;

/**
 * The tar entries of a layer: its files in tree order, preceded by every
 * parent directory missing from it (`nix/`, `nix/store/`, …).
 *
 * Hard links are never written: every file is a regular entry with its own
 * content. A store path's content is its NAR, and a NAR has no hard links; the
 * links on disk are an accident of the store (`nix-store --optimise` and
 * `auto-optimise-store` link equal files across and within store paths, a
 * builder may leave some), so writing them would give the same closure
 * different image bytes on different stores. Linking equal files by content
 * instead would take a second read of every file before writing.
 *
 * @param layer The planned layer.
 * @param directories Every directory of the closure by path (for parents' modes).
 * @returns The entries; file contents are read from `source` when written.
 *
 * @example Usage
 * ```ts
 * import { layerEntries } from "./oci.ts";
 *
 * const file = { path: "/nix/store/x-a/f", type: "file", mode: 0o444, size: 0 } as const;
 * const layer = { description: "a", storePaths: [], files: [file], tokens: [], bytes: 0 };
 * layerEntries(layer, new Map()).map((entry) => entry.path);
 * // ["nix", "nix/store", "nix/store/x-a", "nix/store/x-a/f"]
 * ```
 */
export function layerEntries(
  layer: Layer,
  directories: ReadonlyMap<string, StoreFile>,
): LayerEntry[] {
  const present = new Set(layer.files.map((file) => file.path));
  const all: StoreFile[] = [...layer.files];
  for (const file of layer.files) {
    for (let dir = dirname(file.path); dir !== "/" && !present.has(dir); dir = dirname(dir)) {
      present.add(dir);
      all.push(
        directories.get(dir) ?? { path: dir, type: "directory", mode: 0o755, size: 0 },
      );
    }
  }
  all.sort((a, b) => compareTreePaths(a.path, b.path));
  return all.map((file): LayerEntry => {
    const path = file.path.slice(1);
    if (file.path[0] !== "/" || path.split("/").some((part) => part === ".." || part === ".")) {
      throw new TypeError(`Cannot put "${file.path}" in a layer: not an absolute, normalized path`);
    }
    if (file.type === "symlink") {
      return { path, type: "symlink", mode: 0o777, linkTarget: file.linkTarget ?? "" };
    }
    if (file.type === "directory") return { path, type: "directory", mode: file.mode };
    return { path, type: "file", mode: file.mode, size: file.size, source: file.path };
  });
}

/**
 * Writes a docker-archive (`docker load`, `podman load`, `skopeo
 * docker-archive:`) of the layers to `sink`, reading every file once.
 *
 * @param layers The layers, bottom first.
 * @param sink Where the archive goes (stdout, an `AtomicFile` of lib/fs/atomic_write.ts).
 * @param options Name, tag, creation time and container settings; `directories`
 *   gives the closure's directories for parent modes.
 * @returns The digests and sizes written.
 * @throws {TypeError} For a malformed name or tag.
 *
 * @example Usage
 * ```ts
 * import { writeDockerArchive } from "./oci.ts";
 *
 * const chunks: Uint8Array[] = [];
 * const result = await writeDockerArchive([], {
 *   write: (chunk) => { chunks.push(chunk.slice()); return Promise.resolve(); },
 * }, { name: "empty", directories: new Map() });
 * result.reference; // "empty:latest"
 * ```
 */
export async function writeDockerArchive(
  layers: readonly Layer[],
  sink: ByteSink,
  options: ImageOptions & { directories: ReadonlyMap<string, StoreFile> },
): Promise<ImageResult> {
  const { reference, created } = checkOptions(options);
  const writer = new BlockWriter(sink);
  const written: WrittenLayer[] = [];
  const names: string[] = [];
  for (const [i, layer] of layers.entries()) {
    const entries = layerEntries(layer, options.directories);
    const size = tarSize(entries, created);
    const name = `layer-${String(i + 1).padStart(3, "0")}.tar`;
    names.push(name);
    await writer.bytes(tarHeader({ path: name, type: "file", mode: 0o644, size }, {
      mtime: created,
    }));
    const digest = await writeLayer(writer, entries, size, created);
    written.push({ digest, size, description: layer.description });
  }
  const config = configBytes(layers, written, created, options);
  const configDigest = sha256(config);
  const configName = `${configDigest.slice("sha256:".length)}.json`;
  await writeBytesEntry(writer, configName, config, created);
  const manifest = [{ Config: configName, RepoTags: [reference], Layers: names }];
  await writeBytesEntry(
    writer,
    "manifest.json",
    encoder.encode(`${JSON.stringify(manifest)}\n`),
    created,
  );
  await writer.zeros(TAR_TRAILER_SIZE);
  await writer.close();
  return { reference, configDigest, layers: written };
}

/**
 * Writes an OCI image layout directory (`oci-layout`, `index.json`,
 * `blobs/sha256/…`) at `dir`, which must not exist: it is assembled in the
 * private folder of its folder (`.rocm-nightly-tmp/`) and renamed into place
 * once complete. Like the docker-archive of
 * lib/image/image.ts, it is not fsynced: an image can be written again.
 *
 * @param layers The layers, bottom first.
 * @param dir The directory to create.
 * @param options Name, tag, creation time and container settings; `directories`
 *   gives the closure's directories for parent modes.
 * @returns The digests and sizes written.
 * @throws {Deno.errors.AlreadyExists} When `dir` exists.
 *
 * @example Usage
 * ```ts
 * import { writeOciLayout } from "./oci.ts";
 *
 * const parent = await Deno.makeTempDir();
 * const result = await writeOciLayout([], `${parent}/image`, { name: "empty", directories: new Map() });
 * result.manifestDigest?.startsWith("sha256:"); // true
 * await Deno.remove(parent, { recursive: true });
 * ```
 */
export async function writeOciLayout(
  layers: readonly Layer[],
  dir: string,
  options: ImageOptions & { directories: ReadonlyMap<string, StoreFile> },
): Promise<ImageResult> {
  const { reference, tag, created } = checkOptions(options);
  if (await exists(dir)) {
    throw new Deno.errors.AlreadyExists(`Cannot write an OCI layout to "${dir}": it exists`);
  }
  // In the private folder of the output's folder (lib/fs/temporaries.ts):
  // removed if a signal ends the process first, swept after a SIGKILL.
  const temporary = await createTemporaryFolder(dirname(dir), basename(dir));
  const temp = temporary.path;
  const blobs = join(temp, "blobs", "sha256");
  try {
    await Deno.mkdir(blobs, { recursive: true });
    const written: WrittenLayer[] = [];
    for (const [i, layer] of layers.entries()) {
      const entries = layerEntries(layer, options.directories);
      const size = tarSize(entries, created);
      const part = join(blobs, `.layer-${i}.tmp`);
      const file = await Deno.open(part, { write: true, createNew: true, mode: 0o644 });
      let digest: string;
      try {
        const writer = new BlockWriter(file);
        digest = await writeLayer(writer, entries, size, created);
        await writer.close();
      } finally {
        file.close();
      }
      await Deno.rename(part, join(blobs, digest.slice("sha256:".length)));
      written.push({ digest, size, description: layer.description });
    }
    const config = configBytes(layers, written, created, options);
    const configDigest = await writeBlob(blobs, config);
    const manifest = encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.manifest,
      config: { mediaType: MEDIA.config, digest: configDigest, size: config.length },
      layers: written.map((layer) => ({
        mediaType: MEDIA.layer,
        digest: layer.digest,
        size: layer.size,
      })),
    }));
    const manifestDigest = await writeBlob(blobs, manifest);
    const index = {
      schemaVersion: 2,
      mediaType: MEDIA.index,
      manifests: [{
        mediaType: MEDIA.manifest,
        digest: manifestDigest,
        size: manifest.length,
        annotations: {
          "io.containerd.image.name": reference,
          "org.opencontainers.image.ref.name": tag,
        },
      }],
    };
    await Deno.writeTextFile(join(temp, "index.json"), `${JSON.stringify(index)}\n`);
    await Deno.writeTextFile(join(temp, "oci-layout"), `{"imageLayoutVersion":"1.0.0"}\n`);
    interruption.throwIfAborted(); // the commit point
    await Deno.rename(temp, dir);
    temporary[Symbol.dispose]();
    return { reference, configDigest, manifestDigest, layers: written };
  } catch (error) {
    await temporary.remove().catch(() => {});
    throw error;
  }
}

/**
 * Parses and validates a `--config` file: a JSON object of
 * {@linkcode ContainerConfig} fields.
 *
 * @param text The JSON text.
 * @returns The settings.
 * @throws {SyntaxError} When the text is not JSON.
 * @throws {TypeError} For an unknown field or a field of the wrong type.
 *
 * @example Usage
 * ```ts
 * import { parseContainerConfig } from "./oci.ts";
 *
 * parseContainerConfig('{"Cmd": ["rocminfo"]}'); // { Cmd: ["rocminfo"] }
 * ```
 */
export function parseContainerConfig(text: string): ContainerConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SyntaxError(`Cannot parse container config JSON: ${(error as Error).message}`);
  }
  if (!isRecord(json)) throw new TypeError("Invalid container config: not a JSON object");
  const out: ContainerConfig = {};
  for (const [key, value] of Object.entries(json)) {
    const bad = (): never => {
      throw new TypeError(`Invalid container config field "${key}": ${JSON.stringify(value)}`);
    };
    switch (key) {
      case "Env":
      case "Entrypoint":
      case "Cmd":
        if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) bad();
        if (key === "Env" && !(value as string[]).every((item) => /^[^=]+=/.test(item))) bad();
        out[key] = value as string[];
        break;
      case "WorkingDir":
      case "User":
      case "StopSignal":
        if (typeof value !== "string") bad();
        out[key] = value as string;
        break;
      case "Labels":
        if (!isRecord(value) || !Object.values(value).every((item) => typeof item === "string")) {
          bad();
        }
        out.Labels = value as Record<string, string>;
        break;
      case "ExposedPorts":
      case "Volumes":
        if (
          !isRecord(value) ||
          !Object.values(value).every((item) => isRecord(item) && Object.keys(item).length === 0)
        ) bad();
        out[key] = value as Record<string, Record<string, never>>;
        break;
      default:
        throw new TypeError(`Invalid container config: unknown field "${key}"`);
    }
  }
  return out;
}

/**
 * Merges container settings: `Env` by variable name and `Labels` by key, the
 * later value winning; other fields are replaced.
 *
 * @param base The defaults.
 * @param override The settings that win.
 * @returns The merged settings.
 *
 * @example Usage
 * ```ts
 * import { mergeContainerConfig } from "./oci.ts";
 *
 * mergeContainerConfig({ Env: ["A=1", "B=2"] }, { Env: ["B=3"] }); // { Env: ["A=1", "B=3"] }
 * ```
 */
export function mergeContainerConfig(
  base: ContainerConfig,
  override: ContainerConfig,
): ContainerConfig {
  const out: ContainerConfig = { ...base, ...override };
  if (base.Env !== undefined || override.Env !== undefined) {
    const env = new Map<string, string>();
    for (const item of [...base.Env ?? [], ...override.Env ?? []]) {
      env.set(item.slice(0, item.indexOf("=")), item);
    }
    out.Env = [...env.values()];
  }
  if (base.Labels !== undefined || override.Labels !== undefined) {
    out.Labels = { ...base.Labels, ...override.Labels };
  }
  return out;
}

/** Options for {@linkcode rocmContainerConfig}. */
export interface RocmConfigOptions {
  /**
   * GPU target of the image, recorded in the `org.rocm-nightly.target` label.
   *
   * @default {"all"}
   */
  target?: string | undefined;
  /**
   * The `org.opencontainers.image.source` label.
   *
   * @default {"https://github.com/ROCm/TheRock"}
   */
  source?: string;
}

/**
 * Default container settings for a ROCm closure. The package is the closure's
 * root (the path nothing else refers to; among several, the one with
 * `bin/rocminfo`, then the biggest). `PATH` holds the roots' `bin` folders
 * (the package's wrappers), `ROCM_PATH` and `HIP_PATH` name its ROCm tree
 * (`opt/rocm`, where nix/install.sh puts it, else the package itself), `Cmd`
 * runs its `bin/rocminfo` when there is one, and the labels give the version
 * (from the tree's `.info/version`, as TheRock tarballs carry it, else the
 * store name), the source and the GPU target. There is no `LD_LIBRARY_PATH`:
 * the tree's `$ORIGIN` runpaths find its libraries.
 *
 * @param closure The closure.
 * @param files Every store path's files (lib/store/store_scan.ts).
 * @param options GPU target and source label.
 * @returns The settings.
 *
 * @example Usage
 * ```ts
 * import { rocmContainerConfig } from "./oci.ts";
 *
 * const path = `/nix/store/${"0".repeat(32)}-rocm-7.12.0`;
 * const config = await rocmContainerConfig(
 *   { storeDir: "/nix/store", paths: [{ path, narSize: 0, references: [] }] },
 *   new Map([[path, [{ path, type: "directory", mode: 0o555, size: 0 }]]]),
 * );
 * config.Labels?.["org.opencontainers.image.version"]; // "7.12.0"
 * ```
 */
export async function rocmContainerConfig(
  closure: Closure,
  files: ReadonlyMap<string, readonly StoreFile[]>,
  options: RocmConfigOptions = {},
): Promise<ContainerConfig> {
  const referenced = new Set(closure.paths.flatMap((info) => info.references));
  const has = (path: string, type: StoreFile["type"]): boolean => {
    const store = closure.paths.find((info) => path.startsWith(`${info.path}/`))?.path;
    return store !== undefined &&
      (files.get(store) ?? []).some((file) => file.path === path && file.type === type);
  };
  const roots = closure.paths.filter((info) => !referenced.has(info.path)).sort((a, b) =>
    Number(has(`${b.path}/bin/rocminfo`, "file")) - Number(has(`${a.path}/bin/rocminfo`, "file")) ||
    b.narSize - a.narSize || (a.path < b.path ? -1 : 1)
  );
  const pkg = roots[0]!.path;
  const rocm = has(`${pkg}/opt/rocm`, "directory") ? `${pkg}/opt/rocm` : pkg;
  const bins = roots.map((root) => `${root.path}/bin`).filter((bin) => has(bin, "directory"));
  const labels: Record<string, string> = {
    "org.opencontainers.image.source": options.source ?? "https://github.com/ROCm/TheRock",
    "org.rocm-nightly.target": options.target ?? "all",
  };
  const version = await packageVersion(pkg, rocm, has(`${rocm}/.info/version`, "file"));
  if (version !== undefined) labels["org.opencontainers.image.version"] = version;
  return {
    Env: [
      `PATH=${bins.length > 0 ? bins.join(":") : `${pkg}/bin`}`,
      `ROCM_PATH=${rocm}`,
      `HIP_PATH=${rocm}`,
    ],
    ...(has(`${pkg}/bin/rocminfo`, "file") ? { Cmd: [`${pkg}/bin/rocminfo`] } : {}),
    Labels: labels,
  };
}

async function packageVersion(
  pkg: string,
  rocm: string,
  hasInfo: boolean,
): Promise<string | undefined> {
  if (hasInfo) {
    const file = await Deno.open(`${rocm}/.info/version`);
    try {
      const buffer = new Uint8Array(256);
      const count = await file.read(buffer) ?? 0;
      const text = new TextDecoder().decode(buffer.subarray(0, count)).trim();
      if (/^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$/.test(text)) return text;
    } finally {
      file.close();
    }
  }
  // Nix store names end in "-<version>" when they carry one.
  return /-(\d[0-9A-Za-z.+_-]*)$/.exec(basename(pkg).slice(33))?.[1];
}

/**
 * Validates an image name and tag and joins them.
 *
 * @param name A repository name (`rocm`, `ghcr.io/me/rocm`, `localhost:5000/rocm`).
 * @param tag A tag.
 * @returns `name:tag`.
 * @throws {TypeError} When the name or tag is malformed.
 *
 * @example Usage
 * ```ts
 * import { imageReference } from "./oci.ts";
 *
 * imageReference("rocm", "gfx1151"); // "rocm:gfx1151"
 * ```
 */
export function imageReference(name: string, tag: string): string {
  if (!NAME.test(name) || name.length > 255) {
    throw new TypeError(`Invalid image name "${name}": not a repository name`);
  }
  if (!TAG.test(tag)) throw new TypeError(`Invalid image tag "${tag}": not a tag`);
  return `${name}:${tag}`;
}

function checkOptions(options: ImageOptions): { reference: string; tag: string; created: number } {
  const tag = options.tag ?? "latest";
  const reference = imageReference(options.name, tag);
  const created = options.created ?? 1;
  if (!Number.isSafeInteger(created) || created < 0 || created > 0o77777777777) {
    throw new RangeError(`Invalid creation time ${created}: not seconds since 1970 (up to 2242)`);
  }
  return { reference, tag, created };
}

function configBytes(
  layers: readonly Layer[],
  written: readonly WrittenLayer[],
  created: number,
  options: ImageOptions,
): Uint8Array {
  const time = new Date(created * 1000).toISOString().replace(/\.000Z$/, "Z");
  const config = {
    created: time,
    architecture: options.architecture ?? "amd64",
    os: "linux",
    config: sortedConfig(options.config ?? {}),
    rootfs: { type: "layers", diff_ids: written.map((layer) => layer.digest) },
    history: layers.map((layer) => ({
      created: time,
      created_by: `rocm-nightly image: ${layer.description}`,
      comment: layer.storePaths.join(" "),
    })),
  };
  return encoder.encode(JSON.stringify(config));
}

function sortedConfig(config: ContainerConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(config).sort()) {
    const value = config[key as keyof ContainerConfig];
    if (value === undefined) continue;
    out[key] = Array.isArray(value)
      ? value
      : isRecord(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value;
  }
  return out;
}

function tarSize(entries: readonly TarEntry[], mtime: number): number {
  let size = TAR_TRAILER_SIZE;
  for (const entry of entries) size += tarEntrySize(entry, { mtime });
  return size;
}

/**
 * Writes a layer's tar (its entries, then the end-of-archive marker), hashing
 * it as it goes.
 *
 * @returns The layer's digest.
 * @throws {RangeError} When a file changed so that the layer is not `size` bytes.
 */
async function writeLayer(
  writer: BlockWriter,
  entries: readonly LayerEntry[],
  size: number,
  mtime: number,
): Promise<string> {
  const start = writer.position;
  writer.beginHash();
  for (const entry of entries) {
    await writer.bytes(tarHeader(entry, { mtime }));
    const bytes = entry.type === "file" ? entry.size ?? 0 : 0;
    if (bytes === 0) continue;
    if (entry.source === undefined) {
      throw new TypeError(`Cannot write layer entry "${entry.path}": ${bytes} bytes but no source`);
    }
    await writer.file(entry.source, bytes);
    await writer.zeros(tarPadding(bytes));
  }
  await writer.zeros(TAR_TRAILER_SIZE);
  const digest = writer.endHash();
  if (writer.position - start !== size) {
    throw new RangeError(
      `Layer size changed while writing: ${writer.position - start} bytes, planned ${size}`,
    );
  }
  return digest;
}

async function writeBytesEntry(
  writer: BlockWriter,
  path: string,
  bytes: Uint8Array,
  mtime: number,
): Promise<void> {
  await writer.bytes(tarHeader({ path, type: "file", mode: 0o644, size: bytes.length }, { mtime }));
  await writer.bytes(bytes);
  await writer.zeros(tarPadding(bytes.length));
}

async function writeBlob(blobs: string, bytes: Uint8Array): Promise<string> {
  const digest = sha256(bytes);
  await Deno.writeFile(join(blobs, digest.slice("sha256:".length)), bytes, { mode: 0o644 });
  return digest;
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
