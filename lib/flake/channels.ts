/**
 * AMD's release channels as the flake's registry holds them: one attribute
 * set per channel (`nightly`, `stable`, and `rc` when a flake follows
 * release candidates), each with `baseUrl`, `version`, `srcHashes` and the
 * optional `mirrors` and `skip` lists, and the optional `versions` set: a
 * target whose tarball is of another version than the channel's (`update
 * <target>` moves one target alone) names it there, so every hash describes
 * the version it was computed for (`null` there means the channel's version). A flake with only a `nightly` set
 * (the shape before channels) is a registry of one channel.
 *
 * @module
 */

import { listAttrNames, MissingBindingError, readBinding, readStringList } from "./flake_edit.ts";
import { scanBindings } from "./nix_bindings.ts";
import { oneOf } from "../cli/command_line.ts";

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
  /**
   * Targets pinned to another version than `version` (the optional
   * `versions` set; `null` there, or no key, means `version`).
   */
  versions: Record<string, string | null>;
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
  const versions: Record<string, string | null> = {};
  for (const target of optionalAttrNames(source, at("versions"), file)) {
    versions[target] = readBinding(source, `${at("versions")}."${target}"`, { file });
  }
  return {
    channel,
    baseUrl: readBinding(source, at("baseUrl"), { file }),
    version: readBinding(source, at("version"), { file }),
    srcHashes,
    versions,
    mirrors: readStringList(source, at("mirrors"), { file }) ?? [],
    skip: readStringList(source, at("skip"), { file }) ?? [],
  };
}

function optionalAttrNames(source: string, path: string, file: string): string[] {
  try {
    return listAttrNames(source, path, { file });
  } catch (error) {
    if (error instanceof MissingBindingError) return [];
    throw error;
  }
}

/**
 * The version a target's tarball is pinned at in a channel: its entry in
 * `versions` when it has one, else the channel's `version` (as
 * nix/resolve.nix's versionOf decides).
 *
 * @param registry The channel (its `version` and `versions`).
 * @param target The target (a key of `srcHashes`).
 * @returns The version, or `null` when the channel pins none.
 *
 * @example Usage
 * ```ts
 * import { pinnedVersion } from "./channels.ts";
 *
 * const nightly = { version: "7.12.0a20260308", versions: { gfx1151: "7.12.0a20260310" } };
 * pinnedVersion(nightly, "gfx1151"); // "7.12.0a20260310"
 * pinnedVersion(nightly, "gfx110X-all"); // "7.12.0a20260308"
 * ```
 */
export function pinnedVersion(
  registry: { version: string | null; versions?: Record<string, string | null> },
  target: string,
): string | null {
  return registry.versions?.[target] ?? registry.version;
}

/**
 * Adds an empty set for a channel after the flake's last channel set: its
 * `baseUrl` is AMD's host for the channel, its `version` `null` until an
 * update pins one, its targets those of the nightly (all `null`). When the
 * flake has a `channels = { inherit … };` set, the channel joins it, so the
 * flake builds `rocm-<channel>-<target>` packages from it.
 *
 * @param source The flake's text (it must have some channel set).
 * @param channel The channel to add.
 * @param options The file name for messages.
 * @returns The new text; every byte of `source` is kept.
 * @throws {MissingBindingError} When the flake has no channel set to add it beside.
 *
 * @example Usage
 * ```ts
 * import { addChannel } from "./channels.ts";
 *
 * const text = addChannel(
 *   '{\n  nightly = {\n    srcHashes = { gfx1151 = null; };\n  };\n}\n',
 *   "rc",
 * );
 * text.includes('rc = {\n    baseUrl = "https://rc.repo.amd.com/rocm/core/tarball/";'); // true
 * ```
 */
export function addChannel(
  source: string,
  channel: Channel,
  options: { file?: string } = {},
): string {
  const file = options.file ?? "flake.nix";
  const present = channelsIn(source);
  if (present.includes(channel)) return source;
  const { bindings } = scanBindings(source);
  const sets = bindings.filter((b) =>
    b.path.length === 1 && present.includes(b.path[0] as Channel) && b.value[0]?.text === "{"
  );
  const anchor = sets.at(-1);
  if (anchor === undefined) {
    throw new MissingBindingError(channel, undefined, {
      file,
      detail: `${file} has no channel set (nightly, stable) to add "${channel}" beside`,
    });
  }
  const targets = present.includes("nightly")
    ? listAttrNames(source, "nightly.srcHashes", { file })
    : listAttrNames(source, `${anchor.path[0]}.srcHashes`, { file });
  const lineStart = source.lastIndexOf("\n", anchor.first.start - 1) + 1;
  const indent = /^[ \t]*/.exec(source.slice(lineStart))![0];
  const eol = source.indexOf("\n", anchor.semicolon.end);
  const at = eol < 0 ? source.length : eol + 1;
  const quote = (name: string): string =>
    /^[a-zA-Z_][a-zA-Z0-9_'-]*$/.test(name) ? name : `"${name}"`;
  const set = [
    "",
    `${indent}# AMD's ${channel} channel, added by \`update --channel ${channel}\`.`,
    `${indent}${channel} = {`,
    `${indent}  baseUrl = "${CHANNEL_INDEXES[channel]}";`,
    `${indent}  version = null;`,
    `${indent}  srcHashes = {`,
    ...targets.map((target) => `${indent}    ${quote(target)} = null;`),
    `${indent}  };`,
    `${indent}  mirrors = [ ];`,
    `${indent}  skip = [ ];`,
    `${indent}};`,
    "",
  ].join("\n");
  let text = source.slice(0, at) + (eol < 0 ? "\n" : "") + set + source.slice(at);
  // The flake's `channels = { inherit nightly stable; };` gains the channel.
  const wiring = scanBindings(text).bindings.find((b) =>
    b.path.length === 1 && b.path[0] === "channels"
  );
  const names = wiring?.value.map((t) => t.text);
  if (
    wiring !== undefined && names !== undefined && names[0] === "{" && names[1] === "inherit" &&
    names.at(-2) === ";" && names.at(-1) === "}"
  ) {
    const semicolon = wiring.value.at(-2)!;
    text = text.slice(0, semicolon.start) + ` ${channel}` + text.slice(semicolon.start);
  }
  return text;
}

/**
 * The command-line parser of a `--channel` value (lib/cli/command_line.ts):
 * a channel, or a `ValueError` that lists them (and names the
 * nearest, for a typo).
 *
 * @example Usage
 * ```ts
 * import { channelName } from "./channels.ts";
 *
 * channelName("stable"); // "stable"
 * ```
 *
 * @param text The flag's text.
 * @returns The channel.
 * @throws {ValueError} When `text` names no channel.
 */
export function channelName(text: string): Channel {
  return oneOf(CHANNELS)(text);
}
