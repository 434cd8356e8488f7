/**
 * What fault cases need of the machine, by what their names say they do:
 * a case that makes a device node or acts as another user needs root; one
 * that adds to the store needs a store this user can add to (one that
 * writes the local store itself, or starts its own nix-daemon, needs that
 * store writable); one that builds an image reads a closure through Nix. On
 * a contributor's machine (not root, a root-owned or daemon store) those
 * cases skip with the reason; with CI=true the require* helpers throw.
 *
 * @module
 */

import { requireLocalStore, requireRoot, requireTools, requireWritableStore } from "../_tools.ts";

const RULES: Array<[RegExp, () => boolean | Promise<boolean>]> = [
  [
    /character device|may not list/,
    () => requireRoot("fault cases that mknod or act as another user"),
  ],
  [/local store|nix-daemon/, () => requireLocalStore("fault cases that write the local store")],
  [/--add-to-store/, () => requireWritableStore("fault cases that add to the store")],
  [/\bimage\b/, () => requireTools("fault cases that build an image's closure", "nix-store")],
];

/** The needs of the case named `name`, or `undefined` when it runs anywhere. */
export function needsOf(name: string): (() => Promise<boolean>) | undefined {
  const rules = RULES.filter(([pattern]) => pattern.test(name));
  if (rules.length === 0) return undefined;
  return async () => {
    for (const [, need] of rules) if (!await need()) return false;
    return true;
  };
}
