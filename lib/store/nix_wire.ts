/**
 * The two values Nix's wire format is made of, shared by the worker
 * protocol (lib/store/nix_daemon.ts) and the NAR serialisation
 * (lib/store/local_store.ts): an unsigned 64-bit little-endian number, and
 * a string as its length, its bytes and zero padding to a multiple of 8.
 *
 * @module
 */

/**
 * A number as Nix writes it: 8 bytes, little-endian.
 *
 * @example Usage
 * ```ts
 * import { wireNumber } from "./nix_wire.ts";
 * wireNumber(1); // Uint8Array [1, 0, 0, 0, 0, 0, 0, 0]
 * ```
 *
 * @param value A whole number from 0 to 2^53 - 1.
 * @returns Its 8 bytes.
 */
export function wireNumber(value: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(value), true);
  return bytes;
}

/**
 * A string as Nix writes it: its length in bytes ({@linkcode wireNumber}),
 * its UTF-8 bytes, and zero padding to a multiple of 8.
 *
 * @example Usage
 * ```ts
 * import { wireString } from "./nix_wire.ts";
 * wireString("(").length; // 16: 8 of length, 1 of text, 7 of padding
 * ```
 *
 * @param text The string.
 * @returns Its bytes.
 */
export function wireString(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const padded = new Uint8Array(8 + wirePadding(bytes.length) + bytes.length);
  padded.set(wireNumber(bytes.length));
  padded.set(bytes, 8);
  return padded;
}

/**
 * How many zero bytes follow `length` bytes of contents to reach a multiple
 * of 8 (a string's or a NAR file's contents).
 *
 * @example Usage
 * ```ts
 * import { wirePadding } from "./nix_wire.ts";
 * wirePadding(3); // 5
 * wirePadding(8); // 0
 * ```
 *
 * @param length The contents' length in bytes.
 * @returns The padding's length, 0 to 7.
 */
export function wirePadding(length: number): number {
  return (8 - (length % 8)) % 8;
}
