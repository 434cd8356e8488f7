/**
 * The release channels pinned in a flake's registry, read from flake.nix's
 * text without evaluating it. A channel is a set that binds `srcHashes`
 * (`nightly = { baseUrl = …; version = …; srcHashes = { … }; };`): its name
 * is the set's name, its packages are `rocm-<channel>-<family>`, and a family
 * is pinned when its hash is a string rather than `null`. Any number of
 * channels is found, in source order, wherever they are bound.
 *
 * @module
 */

import { listAttrNames, MissingBindingError, readBinding } from "./flake_edit.ts";
import { scanBindings } from "./nix_bindings.ts";

/** One channel of the registry. */
export interface RegistryChannel {
  /** The channel's name, e.g. `"nightly"`. */
  name: string;
  /** The pinned version, or `null` when unset. */
  version: string | null;
  /** Tracked family → SRI hash, or `null` when not fetched yet. */
  srcHashes: Record<string, string | null>;
}

/**
 * Lists the channels of a flake's registry.
 *
 * @example Usage
 * ```ts
 * import { listChannels } from "./flake_registry.ts";
 *
 * const source = 'let nightly = { version = "7.12.0a20260308"; srcHashes = { gfx1151 = null; }; }; in { }';
 * listChannels(source); // [{ name: "nightly", version: "7.12.0a20260308", srcHashes: { gfx1151: null } }]
 * ```
 *
 * @param source The flake's text.
 * @param options `file`: the file's name, for messages.
 * @returns The channels, in source order (none when nothing binds `srcHashes`).
 * @throws {SyntaxError} When the source does not parse.
 * @throws {TypeError} When a hash or version is not a string literal or `null`.
 */
export function listChannels(
  source: string,
  options: { file?: string } = {},
): RegistryChannel[] {
  const file = options.file ?? "flake.nix";
  let bindings;
  try {
    bindings = scanBindings(source).bindings;
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw new SyntaxError(`Cannot parse ${file}: ${error.message}`);
  }
  const prefixes = new Map<string, string[]>();
  for (const { path } of bindings) {
    const at = path.indexOf("srcHashes");
    if (at < 1 || path.slice(0, at).some((part) => part === null)) continue;
    const prefix = path.slice(0, at) as string[];
    prefixes.set(prefix.join("\0"), prefix);
  }
  const quoted = (parts: string[]): string => parts.map((part) => `"${part}"`).join(".");
  return [...prefixes.values()].map((prefix) => {
    const hashesPath = quoted([...prefix, "srcHashes"]);
    const srcHashes: Record<string, string | null> = {};
    for (const family of listAttrNames(source, hashesPath, { file })) {
      srcHashes[family] = readBinding(source, quoted([...prefix, "srcHashes", family]), { file });
    }
    let version: string | null = null;
    try {
      version = readBinding(source, quoted([...prefix, "version"]), { file });
    } catch (error) {
      if (!(error instanceof MissingBindingError)) throw error;
    }
    return { name: prefix.at(-1)!, version, srcHashes };
  });
}
