/**
 * What to install for the GPUs in this machine, behind `scripts/detect.ts`.
 *
 * The rule, in plain words:
 * - Each GPU of the KFD topology is named by its ISA (`gfx_target_version`
 *   110501 is gfx1151). GPUs of one ISA get one recommendation.
 * - An ISA that a family of lib/releases/targets.json lists is supported: its target
 *   is the ISA itself. An ISA in no family is unsupported by AMD; when the
 *   table names the nearest supported ISA of its generation (gfx103X →
 *   gfx1030), that ISA is the target and `HSA_OVERRIDE_GFX_VERSION` (10.3.0)
 *   makes ROCm run its code. Any other ISA is unknown: it is reported with its
 *   raw `gfx_target_version`, and the script fails.
 * - On each channel of the flake's registry (nightly, stable, …), the package
 *   comes from the first family of the target's fallback chain that the
 *   channel pins (a hash, not `null`), as nix/resolve.nix resolves it: for an
 *   ISA it is `rocm-<channel>-<isa>`, that tarball with other ISAs' GPU code
 *   left out, and `docker-<isa>` its image; for a family
 *   `rocm-<channel>-<family>`. The NixOS snippet names the first channel
 *   that serves it.
 *   Without a readable registry the chain's package names are listed without
 *   pin status.
 * - The image is `docker-<family>` on the channel the flake builds images
 *   from: the first (nightly, stable, rc) that pins the table's default
 *   target, as nix/channels.nix chooses its default channel.
 * - With GPUs of several targets, the one package serving them all is the
 *   first family that is on every target's chain (usually multiarch).
 *
 * @module
 */

import { basename } from "node:path";
import { readRegularFile } from "../fs/file_kind.ts";
import { kernelPathKind } from "../fs/special_files.ts";
import { type ChannelRegistry, channelsIn, pinnedVersion, readChannel } from "../flake/channels.ts";
import { MAX_FLAKE_BYTES } from "../flake/flake_file.ts";
import { hsaOverrideOfIsa, isaOfGfxTargetVersion } from "../releases/gfx_version.ts";
import { type KfdGpu, readKfdGpus } from "./kfd_topology.ts";
import {
  candidateFamilies,
  currentFamilyName,
  nearestSupportedIsa,
  targetTable,
} from "../releases/targets.ts";

/** What detect reads of a channel of the registry. */
export type PinnedChannel =
  & Pick<ChannelRegistry, "channel" | "version" | "srcHashes">
  & Partial<Pick<ChannelRegistry, "skip" | "versions">>;

/** The channels whose package names are listed when no registry is readable. */
export const DEFAULT_CHANNELS: readonly string[] = ["nightly", "stable"];

/** A GPU of the topology, named. */
export interface DetectedGpu extends KfdGpu {
  /** Its ISA, or `null` when its `gfx_target_version` has no ISA name. */
  isa: string | null;
}

/** The package that serves a target on one channel. */
export interface ChannelPackage {
  /** The channel, e.g. `"nightly"`. */
  channel: string;
  /** The flake package, e.g. `"rocm-nightly-gfx110X-all"`; `null` when the channel pins no family of the chain. */
  package: string | null;
  /** The family it installs, or `null` as for `package`. */
  family: string | null;
  /**
   * Whether the channel pins a family of the chain, or `null` when no
   * registry was read (then `package` is the first of the chain's names).
   */
  pinned: boolean | null;
  /** The channel's pinned version, when known. */
  version: string | null;
  /** The families of the chain, in the order they are tried. */
  chain: string[];
}

/** How to install ROCm for one target. */
export interface Installation {
  /** The target to configure: an ISA, or a family for several GPUs. */
  target: string;
  /** The value for `HSA_OVERRIDE_GFX_VERSION`, or `null` when none is needed. */
  hsaOverrideGfxVersion: string | null;
  /** The package on each channel. */
  packages: ChannelPackage[];
  /**
   * The flake's image attribute, e.g. `"docker-gfx1151"`; `null` when the
   * channel the images are built from pins no family of the chain.
   */
  image: string | null;
  /** A NixOS configuration snippet. */
  nixos: string;
}

/** The recommendation for the GPUs of one ISA. */
export interface Recommendation extends Installation {
  /** The GPUs' ISA. */
  isa: string;
  /** The KFD nodes of the GPUs with this ISA. */
  nodes: number[];
  /** The products with this ISA, from the target table (empty when it has none). */
  products: string[];
  /** Whether a TheRock family ships code for the ISA. */
  supported: boolean;
}

/** The one package for GPUs of several targets. */
export interface CommonInstallation extends Installation {
  /** The targets it serves. */
  serves: string[];
}

/** A GPU the target table has no answer for. */
export interface UnknownGpu {
  /** The KFD node. */
  node: number;
  /** The raw `gfx_target_version`. */
  gfxTargetVersion: number;
  /** Its ISA name, or `null` when the value has none. */
  isa: string | null;
}

/** What {@linkcode detectInstallation} found. */
export interface Detection {
  /** Every GPU of the topology, in node order. */
  gpus: DetectedGpu[];
  /** One recommendation per ISA the table has an answer for. */
  recommendations: Recommendation[];
  /**
   * With GPUs of several targets: the one package for all (`null` when there
   * is a single target, or no family serves them all).
   */
  common: CommonInstallation | null;
  /** GPUs whose ISA the table does not know: the job failed for them. */
  unknown: UnknownGpu[];
  /** The registry's channels, or `null` when none was read. */
  channels: string[] | null;
  /**
   * The channel the flake builds its images (and `packages.default`) from:
   * the first that pins the table's default target, as nix/channels.nix
   * chooses; `null` when no registry was read.
   */
  imageChannel: string | null;
  /** Things the reader should know (why pin status is missing, …). */
  notes: string[];
}

/** Options of {@linkcode recommendPackages}. */
export interface RecommendOptions {
  /**
   * The registry's channels, or `null` when none could be read (package
   * names are then listed without pin status).
   *
   * @default {null}
   */
  channels?: PinnedChannel[] | null;
}

/**
 * Recommends packages, images and NixOS settings for a machine's GPUs.
 *
 * @example Usage
 * ```ts
 * import { recommendPackages } from "./detect.ts";
 *
 * const gpu = {
 *   node: 1, name: "", gfxTargetVersion: 110000, simdCount: 192, vendorId: 4098,
 *   deviceId: 29772, drmRenderMinor: 128, uniqueId: null, locationId: null, pci: null,
 * };
 * const nightly = { channel: "nightly" as const, version: "7.12.0a20260308", srcHashes: { "gfx110X-all": "sha256-…" } };
 * const channels = [nightly];
 * const { recommendations } = recommendPackages([gpu], { channels });
 * recommendations[0]?.packages[0]?.package; // "rocm-nightly-gfx110X-all"
 * recommendations[0]?.nixos; // 'services.rocm-nightly = { enable = true; target = "gfx1100"; };'
 * ```
 *
 * @param gpus The GPUs, e.g. from {@linkcode readKfdGpus}.
 * @param options The registry's channels.
 * @returns The recommendations.
 */
export function recommendPackages(gpus: KfdGpu[], options: RecommendOptions = {}): Detection {
  const channels = options.channels ?? null;
  const imageChannel = channels === null ? null : defaultChannelOf(channels);
  const detected: DetectedGpu[] = gpus.map((gpu) => ({ ...gpu, isa: isaOrNull(gpu) }));
  const unknown: UnknownGpu[] = [];
  const byIsa = new Map<string, number[]>();
  for (const gpu of detected) {
    if (gpu.isa === null || nearestSupportedIsa(gpu.isa) === undefined) {
      unknown.push({ node: gpu.node, gfxTargetVersion: gpu.gfxTargetVersion, isa: gpu.isa });
    } else {
      byIsa.set(gpu.isa, [...(byIsa.get(gpu.isa) ?? []), gpu.node]);
    }
  }
  const recommendations = [...byIsa].map(([isa, nodes]): Recommendation => {
    const target = nearestSupportedIsa(isa)!;
    const supported = target === isa;
    return {
      isa,
      nodes,
      products: Object.hasOwn(targetTable.isas, isa) ? targetTable.isas[isa]!.products : [],
      supported,
      ...installation(target, supported ? null : hsaOverrideOfIsa(target), channels, imageChannel),
    };
  });
  const notes: string[] = [];
  const targets = [...new Set(recommendations.map((r) => r.target))];
  let common: CommonInstallation | null = null;
  if (targets.length > 1) {
    const chains = targets.map(candidateFamilies);
    const family = chains[0]!.find((f) => chains.every((chain) => chain.includes(f)));
    if (family !== undefined) {
      common = { serves: targets, ...installation(family, null, channels, imageChannel) };
    } else notes.push(`No one family serves ${targets.join(" and ")}: install one per target`);
    if (recommendations.some((r) => r.hsaOverrideGfxVersion !== null)) {
      notes.push(
        "HSA_OVERRIDE_GFX_VERSION applies to every GPU a program sees: with GPUs of other ISAs, " +
          "set it only for programs that use the unsupported GPU (HIP_VISIBLE_DEVICES selects it)",
      );
    }
  }
  const unpinned = [...recommendations, ...(common === null ? [] : [common])]
    .flatMap((i) => i.packages).find((p) => p.pinned === false);
  if (unpinned !== undefined) {
    const family = unpinned.chain[0]!;
    const tracked = channels?.find((c) => c.channel === unpinned.channel)?.srcHashes;
    const target = tracked !== undefined && Object.hasOwn(tracked, family)
      ? ""
      : ` --target ${family}`;
    notes.push(
      `${unpinned.channel} pins no tarball for ${family}: \`nix run .#update -- --channel ${unpinned.channel}${target}\` pins one`,
    );
  }
  return {
    gpus: detected,
    recommendations,
    common,
    unknown,
    channels: channels?.map((c) => c.channel) ?? null,
    imageChannel,
    notes,
  };
}

/** Options of {@linkcode detectInstallation}. */
export interface DetectOptions {
  /**
   * The sysfs root to read (a captured tree in tests).
   *
   * @default {"/sys"}
   */
  sysfs?: string;
  /**
   * The flake whose registry says what is pinned; when not given,
   * `flake.nix` of the working folder is read if it exists and has a registry.
   */
  flake?: string;
  /**
   * The flake.nix of the flake the app comes from (the flake app sets
   * `ROCM_NIGHTLY_APP_FLAKE`), read when `flake` is not given and
   * ./flake.nix has no registry.
   */
  appFlake?: string;
}

/**
 * Reads the GPUs of the KFD topology and the flake's registry, and
 * recommends what to install ({@linkcode recommendPackages}).
 *
 * @example Usage
 * ```ts ignore
 * import { detectInstallation } from "./detect.ts";
 *
 * const detection = await detectInstallation({ sysfs: "/sys", flake: "flake.nix" });
 * detection.recommendations.map((r) => r.isa); // ["gfx1151"]
 * ```
 *
 * @param options Where to read.
 * @returns The detection.
 * @throws {Deno.errors.NotFound} When a given `sysfs` folder does not
 * exist, there is no `<sysfs>/class/kfd`, or `flake` was given and does not
 * exist.
 * @throws {Error} When the topology has no GPU, or a given flake cannot be read.
 */
export async function detectInstallation(options: DetectOptions = {}): Promise<Detection> {
  const sysfs = options.sysfs ?? "/sys";
  if (options.sysfs !== undefined) await checkSysfsRoot(options.sysfs);
  const gpus = await readKfdGpus(sysfs);
  if (gpus.length === 0) {
    throw new Error(
      `No GPU in the KFD topology of ${sysfs}/class/kfd: only CPU nodes. ` +
        "Check `dmesg | grep -i kfd` for why amdgpu added none",
    );
  }
  const registry = await readRegistry(options);
  const detection = recommendPackages(gpus, { channels: registry.channels });
  detection.notes.unshift(...registry.notes);
  return detection;
}

// A --sysfs that names no folder is a typo, not a machine without amdgpu.
async function checkSysfsRoot(root: string): Promise<void> {
  const kind = await kernelPathKind(root);
  if (kind === "missing") {
    throw new Deno.errors.NotFound(
      `No folder "${root}" (--sysfs): it does not exist; give the root of a sysfs tree ` +
        "(the folder that holds class/kfd), or leave --sysfs out to read /sys",
    );
  }
  if (kind === "other") {
    throw new Deno.errors.NotADirectory(
      `Cannot read "${root}" (--sysfs): it is not a folder; give the root of a sysfs tree ` +
        "(the folder that holds class/kfd)",
    );
  }
}

/**
 * Formats a detection for people: the GPUs, then per ISA its packages, image
 * and NixOS snippet.
 *
 * @example Usage
 * ```ts
 * import { formatDetection, recommendPackages } from "./detect.ts";
 *
 * const gpu = {
 *   node: 1, name: "", gfxTargetVersion: 110501, simdCount: 80, vendorId: 4098,
 *   deviceId: 5510, drmRenderMinor: 128, uniqueId: null, locationId: null, pci: null,
 * };
 * formatDetection(recommendPackages([gpu])).split("\n")[0]; // "GPU node 1: gfx1151 (gfx_target_version 110501, renderD128)"
 * ```
 *
 * @param detection What {@linkcode recommendPackages} returned.
 * @returns Lines of text, ending with a newline.
 */
export function formatDetection(detection: Detection): string {
  const lines: string[] = [];
  for (const gpu of detection.gpus) {
    const details = [
      `gfx_target_version ${gpu.gfxTargetVersion}`,
      ...(gpu.pci === null ? [] : [`PCI ${gpu.pci.vendor.slice(2)}:${gpu.pci.device.slice(2)}`]),
      ...(gpu.drmRenderMinor === null ? [] : [`renderD${gpu.drmRenderMinor}`]),
    ];
    lines.push(`GPU node ${gpu.node}: ${gpu.isa ?? "no ISA name"} (${details.join(", ")})`);
  }
  for (const r of detection.recommendations) {
    const count = r.nodes.length === 1
      ? `node ${r.nodes[0]}`
      : `${r.nodes.length} GPUs, nodes ${r.nodes.join(", ")}`;
    lines.push(
      "",
      `${r.isa} (${count}): ${r.products.join(", ") || "no product name in the target table"}`,
    );
    if (!r.supported) {
      lines.push(
        `  unsupported by AMD: ${r.isa} is in no TheRock family; it can run, unsupported, ` +
          `as ${r.target} with HSA_OVERRIDE_GFX_VERSION=${r.hsaOverrideGfxVersion}`,
      );
    }
    lines.push(...formatInstallation(r, detection.imageChannel));
  }
  if (detection.common !== null) {
    const c = detection.common;
    lines.push(
      "",
      `One package for all (${c.serves.join(", ")}): ${c.target}`,
      ...formatInstallation(c, detection.imageChannel),
    );
  }
  for (const gpu of detection.unknown) lines.push("", `GPU node ${gpu.node}: ${unknownText(gpu)}`);
  if (detection.notes.length > 0) lines.push("", ...detection.notes.map((note) => `note: ${note}`));
  return `${lines.join("\n")}\n`;
}

/**
 * The one-line error for the GPUs the table has no answer for.
 *
 * @example Usage
 * ```ts
 * import { unknownGpusError } from "./detect.ts";
 *
 * unknownGpusError([{ node: 1, gfxTargetVersion: 130000, isa: "gfx1300" }]);
 * // 'GPU node 1 (gfx_target_version 130000, gfx1300) is unknown to the target table: …'
 * ```
 *
 * @param unknown The GPUs, from {@linkcode Detection.unknown}.
 * @returns The message.
 */
export function unknownGpusError(unknown: UnknownGpu[]): string {
  return unknown.map((gpu) => `GPU node ${gpu.node} ${unknownText(gpu)}`).join("; ");
}

function unknownText(gpu: UnknownGpu): string {
  const what = gpu.isa === null
    ? `(gfx_target_version ${gpu.gfxTargetVersion}) has no ISA name (minor or stepping above 15)`
    : `(gfx_target_version ${gpu.gfxTargetVersion}, ${gpu.isa}) is unknown to the target table: ` +
      "no family ships it and no supported ISA of its generation is listed";
  return `${what}; please report it with the output of \`cat /sys/class/kfd/kfd/topology/nodes/${gpu.node}/properties\``;
}

function formatInstallation(i: Installation, imageChannel: string | null): string[] {
  const width = Math.max(6, ...i.packages.map((p) => p.channel.length + 1));
  const pad = (label: string): string => `  ${label.padEnd(width)} `;
  const lines = i.packages.map((p) => {
    if (p.pinned === null) {
      const rest = p.chain.filter((f) => `rocm-${p.channel}-${f}` !== p.package)
        .map((f) => `rocm-${p.channel}-${f}`);
      return `${pad(`${p.channel}:`)}${p.package}` +
        (rest.length === 0 ? "" : ` (or, along the fallback chain, ${rest.join(", ")})`);
    }
    if (p.package === null) {
      return `${pad(`${p.channel}:`)}no pinned tarball (tried ${p.chain.join(", ")})`;
    }
    return `${pad(`${p.channel}:`)}${p.package}${p.version === null ? "" : ` (${p.version})`}`;
  });
  const image = i.image ??
    `none: the flake's images come from the ${imageChannel} channel, which pins none of ${
      i.packages[0]!.chain.join(", ")
    }`;
  lines.push(`${pad("image:")}${image}`, `${pad("NixOS:")}${i.nixos}`);
  return lines;
}

function installation(
  target: string,
  hsaOverrideGfxVersion: string | null,
  channels: PinnedChannel[] | null,
  imageChannel: string | null,
): Installation {
  const chain = candidateFamilies(target);
  // One package per GPU: an ISA's package is its family's tarball with
  // other ISAs' GPU code left out (nix/package.nix), named after the ISA.
  const isIsa = Object.hasOwn(targetTable.isas, target);
  const packages: ChannelPackage[] = channels === null
    ? DEFAULT_CHANNELS.map((channel) => ({
      channel,
      package: `rocm-${channel}-${isIsa ? target : chain[0]}`,
      family: chain[0]!,
      pinned: null,
      version: null,
      chain,
    }))
    : channels.map((c) => {
      const family = chain.find((f) => typeof c.srcHashes[f] === "string") ?? null;
      return {
        channel: c.channel,
        package: family === null ? null : `rocm-${c.channel}-${isIsa ? target : family}`,
        family,
        pinned: family !== null,
        version: family === null ? null : pinnedVersion(c, family),
        chain,
      };
    });
  const serving = packages.find((p) => p.pinned === true);
  const imageFamily = imageChannel === null
    ? currentFamilyName(chain[0]!)
    : packages.find((p) => p.channel === imageChannel)?.family ?? null;
  const settings = [
    "enable = true;",
    `target = "${target}";`,
    // Named whenever there is a choice: the module's default channel moves
    // (to the nightly once it pins the default target).
    ...(serving !== undefined && channels !== null && channels.length > 1
      ? [`channel = "${serving.channel}";`]
      : []),
    ...(hsaOverrideGfxVersion === null
      ? []
      : [`hsaOverrideGfxVersion = "${hsaOverrideGfxVersion}";`]),
  ];
  return {
    target,
    hsaOverrideGfxVersion,
    packages,
    image: imageFamily === null ? null : `docker-${isIsa ? target : imageFamily}`,
    nixos: `services.rocm-nightly = { ${settings.join(" ")} };`,
  };
}

// nix/channels.nix's choice: the first channel (nightly, stable, rc) whose
// pinned version is not skipped and that serves the default target.
function defaultChannelOf(channels: PinnedChannel[]): string | null {
  const chain = candidateFamilies(targetTable.defaultTarget);
  const serves = (c: PinnedChannel): boolean => {
    const family = chain.find((f) => typeof c.srcHashes[f] === "string");
    const version = family === undefined ? null : pinnedVersion(c, family);
    return family !== undefined && !(version !== null && (c.skip ?? []).includes(version));
  };
  return (channels.find(serves) ?? channels[0])?.channel ?? null;
}

function isaOrNull(gpu: KfdGpu): string | null {
  try {
    return isaOfGfxTargetVersion(gpu.gfxTargetVersion);
  } catch {
    return null;
  }
}

interface RegistryRead {
  channels: PinnedChannel[] | null;
  notes: string[];
}

// An explicit --flake must be readable; otherwise ./flake.nix, then the
// app's own flake, serve when they have a registry, and a note says why not.
async function readRegistry(options: DetectOptions): Promise<RegistryRead> {
  if (options.flake !== undefined) {
    const channels = await channelsOf(options.flake, `--flake ${options.flake}`);
    if (channels.length === 0) {
      throw new Error(`Cannot read the registry of ${options.flake}: nothing binds srcHashes`);
    }
    return { channels, notes: [] };
  }
  let why: string;
  try {
    const channels = await channelsOf("flake.nix", "./flake.nix");
    if (channels.length > 0) return { channels, notes: [] };
    why = "./flake.nix has no registry (srcHashes)";
  } catch (error) {
    why = error instanceof Deno.errors.NotFound
      ? "no flake.nix in this folder"
      : (error as Error).message;
  }
  if (options.appFlake !== undefined) {
    try {
      const channels = await channelsOf(options.appFlake, options.appFlake);
      if (channels.length > 0) return { channels, notes: [] };
    } catch {
      // Reported below as the registry not being readable.
    }
  }
  return {
    channels: null,
    notes: [
      `${why}, so pin status is unknown: packages are listed by fallback chain without it ` +
      "(run in a rocm-nightly checkout or pass --flake PATH)",
    ],
  };
}

async function channelsOf(path: string, what: string): Promise<PinnedChannel[]> {
  let source: string;
  try {
    // A FIFO would block the read forever, /dev/zero never end it.
    source = new TextDecoder().decode(await readRegularFile(path, { maxBytes: MAX_FLAKE_BYTES }));
  } catch (error) {
    // A refusal already names the file and its kind or size.
    if (error instanceof TypeError || error instanceof RangeError) throw error;
    const Class = error instanceof Deno.errors.NotFound ? Deno.errors.NotFound : Error;
    throw new Class(`Cannot read ${what}: ${(error as Error).message}`);
  }
  try {
    const file = basename(path);
    return channelsIn(source).map((channel) => readChannel(source, channel, { file }));
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw new SyntaxError(`Cannot read the registry of ${what}: ${error.message}`);
  }
}

/**
 * What each channel of the flake's registry pins, found as
 * {@linkcode detectInstallation} finds it (`flake`, else ./flake.nix, else the
 * app's own flake), for `detect --list-targets`; no GPU is read.
 *
 * @example Usage
 * ```ts ignore
 * import { registryPins } from "./detect.ts";
 *
 * const { channels } = await registryPins({ flake: "flake.nix" });
 * channels?.map((c) => c.channel); // ["nightly", "stable"]
 * ```
 *
 * @param options The flake, or the app's flake (`sysfs` is not read).
 * @returns The channels (`null` when no registry was found) and why not.
 * @throws {Error} When a given `flake` cannot be read or has no registry.
 */
export async function registryPins(
  options: DetectOptions = {},
): Promise<{ channels: PinnedChannel[] | null; notes: string[] }> {
  return await readRegistry(options);
}
