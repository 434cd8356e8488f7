/**
 * Names a user types for a GPU, checked against the target table
 * (lib/releases/targets.json, imported as a module: it works from a URL and
 * in `nix run`, where no file of the repository is at hand). A name the table
 * does not know is refused with the nearest one: a typo of a family or ISA
 * (`gfx1115` → `gfx1151`, by edit distance), or a product's name (`Radeon
 * 8060S` → `gfx1151`). {@linkcode formatTargetList} prints the table itself,
 * for `detect --list-targets`.
 *
 * @module
 */

import { closest, ValueError } from "../cli/command_line.ts";
import { isKnownTarget, targetTable } from "./targets.ts";

/** Lowercase letters and digits only: "Radeon RX 7900 XTX" → "radeonrx7900xtx". */
function squeeze(text: string): string {
  return text.toLowerCase().replaceAll(/[^a-z0-9]/g, "");
}

/** The product names of each ISA, with each "/" variant spelled out (9070/9070 XT). */
function productNames(): [string, string][] {
  const names: [string, string][] = [];
  for (const [isa, info] of Object.entries(targetTable.isas)) {
    for (const product of info.products) names.push([product, isa]);
  }
  return names;
}

/**
 * The family or ISA the table knows that `name` most likely meant, or
 * `undefined` when none is near: a product name or part of one ("8060S",
 * "Strix Halo", "RX 7900 XTX") gives its ISA; otherwise the family or ISA
 * within two typos.
 *
 * @example Usage
 * ```ts
 * import { suggestTarget } from "./target_names.ts";
 *
 * suggestTarget("gfx1115"); // "gfx1151"
 * suggestTarget("Radeon 8060S"); // "gfx1151"
 * suggestTarget("gfx110x-all"); // "gfx110X-all"
 * ```
 *
 * @param name What was typed.
 * @returns A family or ISA of the table, or `undefined`.
 */
export function suggestTarget(name: string): string | undefined {
  const names = [...Object.keys(targetTable.families), ...Object.keys(targetTable.isas)];
  const exact = names.find((n) => n.toLowerCase() === name.toLowerCase());
  if (exact !== undefined) return exact;
  const typed = squeeze(name);
  // A product: the typed words inside one product's name (at least 3 characters, not just "radeon").
  if (typed.length >= 3 && !/^gfx\d/.test(typed)) {
    const matches = productNames().filter(([product]) =>
      squeeze(product).includes(typed) && !/^(radeon|instinct|pro|rx)+$/.test(typed)
    );
    const isas = [...new Set(matches.map(([, isa]) => isa))];
    if (isas.length === 1) return isas[0];
  }
  const typo = closest(name, names);
  if (typo !== undefined) return typo;
  const product = closest(typed, productNames().map(([p]) => squeeze(p)));
  return product === undefined
    ? undefined
    : productNames().find(([p]) => squeeze(p) === product)?.[1];
}

/**
 * Checks that the table knows `name` as a family or ISA.
 *
 * @example Usage
 * ```ts
 * import { checkTargetName } from "./target_names.ts";
 *
 * checkTargetName("gfx1151"); // "gfx1151"
 * try {
 *   checkTargetName("gfx1115");
 * } catch (error) {
 *   (error as Error).message; // 'unknown GPU target "gfx1115": did you mean gfx1151 (Radeon 8060S (Strix Halo))? …'
 * }
 * ```
 *
 * @param name A family (`gfx110X-all`) or ISA (`gfx1100`).
 * @returns The name.
 * @throws {RangeError} When the table knows no such family or ISA; the
 * message names the nearest one and how to list them all.
 */
export function checkTargetName(name: string): string {
  if (isKnownTarget(name)) return name;
  throw new RangeError(unknownTargetMessage(name));
}

/**
 * The message for a name the table does not know: what was typed, the
 * nearest known name, and how to list them (`detect --list-targets`).
 *
 * @example Usage
 * ```ts
 * import { unknownTargetMessage } from "./target_names.ts";
 *
 * unknownTargetMessage("Radeon 8060S");
 * // 'unknown GPU target "Radeon 8060S": did you mean gfx1151 (Radeon 8060S (Strix Halo))? detect --list-targets …'
 * ```
 *
 * @param name What was typed.
 * @returns One line.
 */
export function unknownTargetMessage(name: string): string {
  return `unknown GPU target ${JSON.stringify(name)}: ${unknownTargetHint(name)}`;
}

function unknownTargetHint(name: string): string {
  const near = suggestTarget(name);
  const products = near === undefined ? [] : targetTable.isas[near]?.products ?? [];
  const hint = near === undefined
    ? "not a family or ISA of the target table;"
    : `did you mean ${near}${products.length === 0 ? "" : ` (${products.join(", ")})`}?`;
  return `${hint} detect --list-targets lists them all`;
}

/**
 * The command-line parser of a `--target` value (lib/cli/command_line.ts): a
 * family or ISA of the table, or a {@linkcode ValueError} naming the nearest.
 *
 * @example Usage
 * ```ts
 * import { targetName } from "./target_names.ts";
 *
 * targetName("gfx110X-all"); // "gfx110X-all"
 * ```
 *
 * @param text The flag's text.
 * @returns The name.
 * @throws {ValueError} When the table knows no such family or ISA.
 */
export function targetName(text: string): string {
  if (isKnownTarget(text)) return text;
  throw new ValueError(unknownTargetHint(text));
}

/**
 * The tracked family that already serves `name`, when adding `name` would
 * add nothing: `name` is an ISA that one of `tracked` covers (gfx1201 when
 * multiarch is tracked), or a family whose every ISA one of them covers.
 *
 * @example Usage
 * ```ts
 * import { coveringFamily } from "./target_names.ts";
 *
 * coveringFamily("gfx1201", ["gfx1151", "multiarch"]); // "multiarch"
 * coveringFamily("gfx1201", ["gfx1151"]); // undefined
 * coveringFamily("gfx1151", ["gfx1151"]); // undefined (tracked itself)
 * ```
 *
 * @param name A family or ISA of the table.
 * @param tracked The families already tracked.
 * @returns The covering tracked family, or `undefined`.
 */
export function coveringFamily(name: string, tracked: readonly string[]): string | undefined {
  if (tracked.includes(name)) return undefined;
  const isas = Object.hasOwn(targetTable.families, name)
    ? targetTable.families[name]!.isas
    : Object.hasOwn(targetTable.isas, name)
    ? [name]
    : [];
  if (isas.length === 0) return undefined;
  return tracked.find((family) =>
    Object.hasOwn(targetTable.families, family) &&
    isas.every((isa) => targetTable.families[family]!.isas.includes(isa))
  );
}

/** What one channel of a registry pins, for {@linkcode formatTargetList}. */
export interface ChannelPins {
  /** The channel, e.g. `nightly`. */
  channel: string;
  /** The pinned version, or `null`. */
  version: string | null;
  /** The tracked families and whether a hash is pinned for each. */
  srcHashes: Record<string, string | null>;
}

/**
 * The target table as text: each family with its ISAs, each ISA with its
 * products and the families that serve it, and (given a registry) what each
 * channel pins for each family.
 *
 * @example Usage
 * ```ts
 * import { formatTargetList } from "./target_names.ts";
 *
 * formatTargetList([]).split("\n")[0]; // "Families (the tarballs AMD builds) and their ISAs:"
 * ```
 *
 * @param channels What each channel pins (empty: no registry at hand).
 * @returns Lines, without a final newline.
 */
export function formatTargetList(channels: readonly ChannelPins[]): string {
  const lines = ["Families (the tarballs AMD builds) and their ISAs:"];
  const families = Object.entries(targetTable.families);
  const width = Math.max(...families.map(([name]) => name.length)) + 2;
  for (const [name, family] of families) {
    const renamed = family.renamedTo === undefined ? "" : ` (renamed ${family.renamedTo})`;
    lines.push(`  ${name.padEnd(width)}${family.isas.join(" ")}${renamed}`);
  }
  lines.push("", "ISAs, their products, and the families that serve them (best first):");
  for (const [isa, info] of Object.entries(targetTable.isas)) {
    lines.push(`  ${isa.padEnd(9)}${info.products.join(", ")}; ${info.fallback.join(" > ")}`);
  }
  lines.push("");
  if (channels.length === 0) {
    lines.push("Pins: no flake at hand (pass --flake PATH to show what each channel pins)");
  } else {
    lines.push("Pins (channel: version; each tracked family, and whether a hash is pinned):");
    for (const c of channels) {
      const tracked = Object.entries(c.srcHashes).map(([family, hash]) =>
        `${family}${hash === null ? " (no hash)" : ""}`
      );
      lines.push(
        `  ${c.channel}: ${c.version ?? "none"}; ${tracked.join(", ") || "no target tracked"}`,
      );
    }
  }
  return lines.join("\n");
}
