/**
 * Nix's base-32 encoding ("nix32"), as in `/nix/store/<nix32>-name` and
 * `nix hash to-base32`.
 *
 * It is not RFC 4648 base32: the alphabet omits `e o t u` (to avoid words in
 * store paths), there is no padding, and the digest is read from its last bit
 * to its first, so the first character encodes the most significant bits of
 * the last byte.
 *
 * @module
 */

/** The 32 characters of Nix's base-32 alphabet, in digit order. */
export const NIX32_ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz";

const DIGIT_OF: ReadonlyMap<string, number> = new Map(
  [...NIX32_ALPHABET].map((char, digit) => [char, digit]),
);

/**
 * The number of nix32 characters that encode `byteLength` bytes.
 *
 * @example Usage
 * ```ts
 * import { nix32Length } from "./nix32.ts";
 * nix32Length(32); // 52 (a SHA-256 digest)
 * ```
 *
 * @param byteLength The number of bytes.
 * @returns The length of their encoding.
 */
export function nix32Length(byteLength: number): number {
  return byteLength === 0 ? 0 : Math.floor((byteLength * 8 - 1) / 5) + 1;
}

/**
 * Encodes bytes in Nix's base-32.
 *
 * @example Usage
 * ```ts
 * import { encodeNix32 } from "./nix32.ts";
 * const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array()));
 * encodeNix32(digest); // "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
 * ```
 *
 * @param bytes The bytes to encode.
 * @returns Their nix32 text.
 */
export function encodeNix32(bytes: Uint8Array): string {
  let text = "";
  for (let n = nix32Length(bytes.length) - 1; n >= 0; n--) {
    const bit = n * 5;
    const i = bit >> 3;
    const j = bit & 7;
    const low = bytes[i]! >> j;
    const high = i + 1 < bytes.length ? bytes[i + 1]! << (8 - j) : 0;
    text += NIX32_ALPHABET[(low | high) & 0x1f];
  }
  return text;
}

/**
 * Decodes Nix's base-32 text to bytes.
 *
 * @example Usage
 * ```ts
 * import { decodeNix32 } from "./nix32.ts";
 * decodeNix32("0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73").length; // 32
 * ```
 *
 * @param text The nix32 text; its length decides the number of bytes.
 * @returns The decoded bytes.
 * @throws {SyntaxError} When `text` has a character outside the alphabet, a
 * length no byte count encodes to, or bits set beyond the last byte.
 */
export function decodeNix32(text: string): Uint8Array {
  const byteLength = Math.floor((text.length * 5) / 8);
  if (nix32Length(byteLength) !== text.length) {
    throw new SyntaxError(
      `Cannot decode nix32 "${text}": ${text.length} characters is not the length of any byte string`,
    );
  }
  const bytes = new Uint8Array(byteLength);
  for (let n = 0; n < text.length; n++) {
    const char = text[text.length - 1 - n]!;
    const digit = DIGIT_OF.get(char);
    if (digit === undefined) {
      throw new SyntaxError(
        `Cannot decode nix32 "${text}": "${char}" is not in the alphabet ${NIX32_ALPHABET}`,
      );
    }
    const bit = n * 5;
    const i = bit >> 3;
    const j = bit & 7;
    bytes[i]! |= (digit << j) & 0xff;
    const carry = digit >> (8 - j);
    if (i + 1 < byteLength) {
      bytes[i + 1]! |= carry;
    } else if (carry !== 0) {
      throw new SyntaxError(`Cannot decode nix32 "${text}": it sets bits beyond the last byte`);
    }
  }
  return bytes;
}
