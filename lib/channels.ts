/**
 * AMD's release channels as the flake's registry holds them: one attribute
 * set per channel (`nightly`, `stable`, and `rc` when a flake follows
 * release candidates), each with `baseUrl`, `version`, `srcHashes` and the
 * optional `mirrors` and `skip` lists. A flake with only a `nightly` set
 * (the shape before channels) is a registry of one channel.
 *
 * @module
 */

import { listAttrNames, MissingBindingError, readBinding, readStringList } from "./flake_edit.ts";

/** The channels AMD publishes, in the order tools list them. */
export const CHANNELS: readonly Channel[] = ["nightly", "stable", "rc"];

/** A release channel. */
export type Channel = "nightly" | "stable" | "rc";

/**
 * Where AMD publishes each channel since ROCm 10 (file names keep the
 * `therock-dist-linux-<family>-<version>.tar.gz` grammar).
 */
export const CHANNEL_INDEXES: Readonly<Record<Channel, string>> = {
  nightly: "https://nightly.repo.amd.com/rocm/core/tarball/",
  stable: "https://stable.repo.amd.com/rocm/core/tarball/",
  rc: "https://rc.repo.amd.com/rocm/core/tarball/",
};

/** One channel of a registry, as written in flake.nix. */
export interface ChannelRegistry {
  /** The channel. */
  channel: Channel;
  /** The folder the pinned tarballs are fetched from. */
  baseUrl: string | null;
  /** The pinned version. */
  version: string | null;
  /** Tracked targets and their hashes (`null`: not fetched). */
  srcHashes: Record<string, string | null>;
  /** Folders that keep copies of the tarballs, tried after `baseUrl`. */
  mirrors: string[];
  /** Known-bad versions `update` never picks. */
  skip: string[];
}

/**
 * Tells whether `text` names a channel.
 *
 * @param text The candidate, e.g. a `--channel` value.
 * @returns `true` for `nightly`, `stable` and `rc`.
 *
 * @example Usage
 * ```ts
 * import { isChannel } from "./channels.ts";
 *
 * isChannel("stable"); // true
 * isChannel("beta"); // false
 * ```
 */
export function isChannel(text: string): text is Channel {
  return (CHANNELS as readonly string[]).includes(text);
}

/**
 * The channels a flake's registry has, in {@linkcode CHANNELS} order.
 *
 * @param source The flake's text.
 * @returns The channels with a set in the file.
 *
 * @example Usage
 * ```ts
 * import { channelsIn } from "./channels.ts";
 *
 * channelsIn('{ nightly = { version = "7.12.0a20260308"; }; }'); // ["nightly"]
 * ```
 */
export function channelsIn(source: string): Channel[] {
  return CHANNELS.filter((channel) => {
    try {
      listAttrNames(source, channel);
      return true;
    } catch (error) {
      if (error instanceof MissingBindingError || error instanceof TypeError) return false;
      throw error;
    }
  });
}

/**
 * Checks that a flake has a channel's set, else explains how to add one.
 *
 * @param source The flake's text.
 * @param channel The channel.
 * @param options The file name for the message.
 * @throws {MissingBindingError} When the flake has no set for the channel.
 *
 * @example Usage
 * ```ts
 * import { requireChannel } from "./channels.ts";
 *
 * requireChannel('{ nightly = { version = "7.12.0a20260308"; }; }', "nightly"); // fine
 * ```
 */
export function requireChannel(
  source: string,
  channel: string,
  options: { file?: string } = {},
): void {
  if (!isChannel(channel) || channelsIn(source).includes(channel)) return;
  const file = options.file ?? "flake.nix";
  throw new MissingBindingError(channel, undefined, {
    file,
    detail: `${file} has no "${channel}" channel. Add one beside "nightly" (and to the ` +
      `flake's channels set): ${channel} = { baseUrl = "${CHANNEL_INDEXES[channel]}"; ` +
      `version = "${EXAMPLE_VERSIONS[channel]}"; srcHashes = { gfx1151 = null; }; ` +
      "mirrors = [ ]; skip = [ ]; };",
  });
}

const EXAMPLE_VERSIONS: Readonly<Record<Channel, string>> = {
  nightly: "10.1.0a20260827",
  stable: "10.0.0",
  rc: "10.1.0rc0",
};

/**
 * Reads one channel of a flake's registry.
 *
 * @param source The flake's text.
 * @param channel The channel.
 * @param options The file name for messages.
 * @returns The channel's values (`mirrors` and `skip` empty when absent).
 * @throws {MissingBindingError} When the flake lacks the channel or one of
 * `baseUrl`, `version`, `srcHashes`.
 * @throws {TypeError} When a value has the wrong shape.
 *
 * @example Usage
 * ```ts
 * import { readChannel } from "./channels.ts";
 *
 * const nightly = readChannel(
 *   '{ nightly = { baseUrl = "https://x.example/"; version = "7.12.0a20260308"; srcHashes = { gfx1151 = null; }; }; }',
 *   "nightly",
 * );
 * nightly.srcHashes; // { gfx1151: null }
 * ```
 */
export function readChannel(
  source: string,
  channel: Channel,
  options: { file?: string } = {},
): ChannelRegistry {
  requireChannel(source, channel, options);
  const file = options.file ?? "flake.nix";
  const at = (name: string): string => `${channel}.${name}`;
  const srcHashes: Record<string, string | null> = {};
  for (const target of listAttrNames(source, at("srcHashes"), { file })) {
    srcHashes[target] = readBinding(source, `${at("srcHashes")}."${target}"`, { file });
  }
  return {
    channel,
    baseUrl: readBinding(source, at("baseUrl"), { file }),
    version: readBinding(source, at("version"), { file }),
    srcHashes,
    mirrors: readStringList(source, at("mirrors"), { file }) ?? [],
    skip: readStringList(source, at("skip"), { file }) ?? [],
  };
}
