/**
 * The GPUs the Linux kernel's KFD driver (amdgpu's compute side) knows, read
 * from its topology in sysfs:
 * `<root>/class/kfd/kfd/topology/nodes/<N>/properties` holds `key value`
 * lines, one node per CPU and GPU. A GPU node has a non-zero
 * `gfx_target_version` (110501 for gfx1151); a CPU node has 0. A GPU's
 * `drm_render_minor` M links it to `<root>/class/drm/renderD<M>/device`,
 * whose `vendor`, `device` and `revision` are its PCI IDs.
 *
 * Deno reads `/sys` only with `--allow-all`; lib/fs/special_files.ts reads
 * it through `cat` and `ls` when Deno may not (the script's shebang grants
 * `--allow-run=cat,ls` instead of everything).
 *
 * Captured trees are input too (`--sysfs ROOT`), so reading is defensive:
 * only regular files are opened (a FIFO would block), a file of more than
 * 64 KiB is refused (it is read no further than that), so is a FIFO, device,
 * folder or symlink loop where a file belongs, at most 4096 nodes are read,
 * and lines that are not `key value` (a word and a decimal number) are
 * skipped.
 *
 * @module
 */

import { join } from "node:path";
import {
  kernelPathKind,
  KernelToolError,
  listKernelFolder,
  readKernelFile,
} from "../fs/special_files.ts";

/** One node of the KFD topology, as the kernel describes it. */
export interface KfdNode {
  /** The node's number (its folder name). */
  id: number;
  /** The contents of the node's `name` file, trimmed ("" when absent). */
  name: string;
  /** The `properties` lines: key → decimal value, as text (some exceed 2^53). */
  properties: Record<string, string>;
}

/** An AMD GPU of the topology: a node whose `gfx_target_version` is not 0. */
export interface KfdGpu {
  /** The KFD node number. */
  node: number;
  /** The node's `name` (the kernel's ASIC name, sometimes "ip discovery"). */
  name: string;
  /** The raw `gfx_target_version`, e.g. 110501. */
  gfxTargetVersion: number;
  /** `simd_count`: the GPU's SIMD units. */
  simdCount: number | null;
  /** `vendor_id` (4098 = 0x1002 for AMD). */
  vendorId: number | null;
  /** `device_id`: the PCI device ID. */
  deviceId: number | null;
  /** `drm_render_minor`: the GPU is /dev/dri/renderD<minor>. */
  drmRenderMinor: number | null;
  /** `unique_id`, as text (a 64-bit number). */
  uniqueId: string | null;
  /** `location_id`: the PCI bus/device/function, packed. */
  locationId: number | null;
  /** PCI IDs from /sys/class/drm/renderD<minor>/device, when readable. */
  pci: PciIds | null;
}

/** PCI IDs of a DRM device, as its sysfs files write them (`0x1002`). */
export interface PciIds {
  /** The vendor ID, e.g. `"0x1002"`. */
  vendor: string;
  /** The device ID, e.g. `"0x744c"`. */
  device: string;
  /** The revision, e.g. `"0xc8"`, or `null` when absent. */
  revision: string | null;
}

const MAX_FILE_BYTES = 64 * 1024;
const MAX_NODES = 4096;
const PROPERTY_LINE = /^([a-z_][a-z0-9_]*)[ \t]+([0-9]{1,20})[ \t]*$/;

/**
 * Parses a KFD `properties` file: `key value` lines with a decimal value.
 * Other lines (blank, garbage, truncated) are skipped; a repeated key keeps
 * its first value.
 *
 * @example Usage
 * ```ts
 * import { parseKfdProperties } from "./kfd_topology.ts";
 *
 * parseKfdProperties("simd_count 80\n%%garbage\ngfx_target_version 110501\n");
 * // { simd_count: "80", gfx_target_version: "110501" }
 * ```
 *
 * @param text The file's text.
 * @returns Key → value text.
 */
export function parseKfdProperties(text: string): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = PROPERTY_LINE.exec(line.replace(/\r$/, ""));
    if (match !== null && !Object.hasOwn(properties, match[1]!)) properties[match[1]!] = match[2]!;
  }
  return properties;
}

/**
 * Reads every node of the KFD topology under `root`, in node order.
 *
 * @example Usage
 * ```ts ignore
 * import { readKfdTopology } from "./kfd_topology.ts";
 *
 * const nodes = await readKfdTopology("/sys");
 * nodes.map((node) => node.properties.gfx_target_version); // ["0", "110501"]
 * ```
 *
 * @param root The sysfs root, `/sys` or a captured copy.
 * @returns The nodes; a node without a readable `properties` file is left out.
 * @throws {Deno.errors.NotFound} When `<root>/class/kfd` does not exist (no
 * amdgpu driver, or not Linux); the message says what to check.
 * @throws {Error} When the topology folder cannot be listed or has more than
 * 4096 nodes.
 * @throws {TypeError} When a node's `properties` or `name` is not a regular
 * file (a FIFO, a device, a folder, a symlink loop).
 * @throws {RangeError} When one of them holds more than 64 KiB.
 */
export async function readKfdTopology(root: string): Promise<KfdNode[]> {
  const kfd = join(root, "class/kfd");
  const nodesDir = join(kfd, "kfd/topology/nodes");
  if (!await exists(kfd)) {
    throw new Deno.errors.NotFound(
      `No ${kfd}: the amdgpu kernel driver is not loaded, or this is not Linux. ` +
        "Check `lsmod | grep amdgpu` (and `dmesg | grep -i amdgpu` for why it failed); " +
        "to use the GPU, your user must also be in the render and video groups (`id -nG`)",
    );
  }
  const ids: number[] = [];
  let names: string[];
  try {
    names = await listKernelFolder(nodesDir);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof KernelToolError) throw error;
    throw new Error(
      `Cannot list ${nodesDir}: ${errorText(error)}; the amdgpu driver has no KFD topology`,
    );
  }
  for (const name of names) {
    if (!/^[0-9]{1,6}$/.test(name)) continue;
    if (ids.length === MAX_NODES) {
      throw new RangeError(`Cannot read ${nodesDir}: more than ${MAX_NODES} nodes`);
    }
    ids.push(Number(name));
  }
  ids.sort((a, b) => a - b);
  const nodes: KfdNode[] = [];
  for (const id of ids) {
    const dir = join(nodesDir, String(id));
    const text = await readSmallFile(join(dir, "properties"));
    if (text === null) continue;
    nodes.push({
      id,
      name: (await readSmallFile(join(dir, "name")))?.trim() ?? "",
      properties: parseKfdProperties(text),
    });
  }
  return nodes;
}

/**
 * The GPU nodes of a topology (`gfx_target_version` not 0), with their PCI
 * IDs read from `<root>/class/drm/renderD<minor>/device` when present.
 *
 * @example Usage
 * ```ts ignore
 * import { readKfdGpus } from "./kfd_topology.ts";
 *
 * (await readKfdGpus("/sys")).map((gpu) => gpu.gfxTargetVersion); // [110501]
 * ```
 *
 * @param root The sysfs root, `/sys` or a captured copy.
 * @returns The GPUs, in node order.
 * @throws {Deno.errors.NotFound} When `<root>/class/kfd` does not exist.
 * @throws {TypeError} When a file read is not a regular file.
 * @throws {RangeError} When a file read holds more than 64 KiB.
 */
export async function readKfdGpus(root: string): Promise<KfdGpu[]> {
  const gpus: KfdGpu[] = [];
  for (const node of await readKfdTopology(root)) {
    const p = node.properties;
    const gfxTargetVersion = numberOf(p.gfx_target_version);
    if (gfxTargetVersion === null || gfxTargetVersion === 0) continue;
    const drmRenderMinor = numberOf(p.drm_render_minor);
    gpus.push({
      node: node.id,
      name: node.name,
      gfxTargetVersion,
      simdCount: numberOf(p.simd_count),
      vendorId: numberOf(p.vendor_id),
      deviceId: numberOf(p.device_id),
      drmRenderMinor,
      uniqueId: p.unique_id ?? null,
      locationId: numberOf(p.location_id),
      pci: drmRenderMinor === null ? null : await readPciIds(root, drmRenderMinor),
    });
  }
  return gpus;
}

async function readPciIds(root: string, minor: number): Promise<PciIds | null> {
  const device = join(root, `class/drm/renderD${minor}/device`);
  const read = async (name: string): Promise<string | null> => {
    const text = (await readSmallFile(join(device, name)))?.trim();
    return text !== undefined && /^0x[0-9a-fA-F]{1,8}$/.test(text) ? text.toLowerCase() : null;
  };
  const vendor = await read("vendor");
  const id = await read("device");
  if (vendor === null || id === null) return null;
  return { vendor, device: id, revision: await read("revision") };
}

function numberOf(text: string | undefined): number | null {
  if (text === undefined) return null;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : null;
}

async function exists(path: string): Promise<boolean> {
  try {
    return await kernelPathKind(path) !== "missing";
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof KernelToolError) throw error;
    throw new Error(`Cannot read ${path}: ${errorText(error)}`);
  }
}

// The text of a regular file of at most MAX_FILE_BYTES, or null when it is
// missing or unreadable. Anything else where a sysfs attribute belongs (a
// FIFO, a device such as /dev/zero, a folder, a symlink loop, a bigger file)
// is no kernel's doing: it is refused, naming what it is.
async function readSmallFile(path: string): Promise<string | null> {
  try {
    return new TextDecoder().decode(await readKernelFile(path, { maxBytes: MAX_FILE_BYTES }));
  } catch (error) {
    // Without --allow-read (or, for /sys, --allow-run=cat,ls) nothing can be
    // read, and without cat nothing under /sys: say so.
    if (error instanceof Deno.errors.NotCapable || error instanceof KernelToolError) throw error;
    if (error instanceof TypeError || error instanceof RangeError) throw error;
    if (error instanceof Deno.errors.FilesystemLoop) {
      throw new TypeError(`Cannot read "${path}": ${errorText(error)}`);
    }
    // Any other failure (missing, unreadable) makes this one file absent.
    return null;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
