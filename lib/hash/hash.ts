/**
 * Hash values and the text forms Nix accepts for them: SRI (`sha256-<base64>`),
 * `algo:<hash>` whose length decides the encoding, and bare hex or nix32.
 *
 * Hashes are compared by their decoded bytes, never by their text: the same
 * digest has many spellings.
 *
 * @module
 */

import { decodeNix32, encodeNix32, nix32Length } from "./nix32.ts";

/** A hash algorithm the toolkit computes and Nix accepts for fixed outputs. */
export type HashAlgorithm = "sha256" | "sha512";

/** A text encoding of a digest. */
export type HashEncoding = "sri" | "nix32" | "hex" | "base64";

/** A digest together with the algorithm that produced it. */
export interface Hash {
  /** The algorithm. */
  algorithm: HashAlgorithm;
  /** The raw digest bytes. */
  digest: Uint8Array;
}

/** Options for {@linkcode parseHash}. */
export interface ParseHashOptions {
  /**
   * The algorithm of a bare hash (hex or nix32 without an `algo` prefix). A
   * prefixed hash of another algorithm is a `SyntaxError`.
   *
   * @default {"sha256"}
   */
  algorithm?: HashAlgorithm;
}

/** The digest length in bytes of each algorithm. */
export const DIGEST_LENGTH: Readonly<Record<HashAlgorithm, number>> = { sha256: 32, sha512: 64 };

const ALGORITHMS = Object.keys(DIGEST_LENGTH) as HashAlgorithm[];

/**
 * Whether `value` names a supported hash algorithm.
 *
 * @example Usage
 * ```ts
 * import { isHashAlgorithm } from "./hash.ts";
 * isHashAlgorithm("sha512"); // true
 * isHashAlgorithm("md5"); // false
 * ```
 *
 * @param value The name to check.
 * @returns `true` for `"sha256"` and `"sha512"`.
 */
export function isHashAlgorithm(value: string): value is HashAlgorithm {
  return (ALGORITHMS as string[]).includes(value);
}

/**
 * Parses a Subresource Integrity hash exactly as Nix accepts it:
 * `sha256-` or `sha512-` and standard base64 with optional padding.
 *
 * @example Usage
 * ```ts
 * import { parseSri } from "./hash.ts";
 * const hash = parseSri("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
 * hash.algorithm; // "sha256"
 * ```
 *
 * @param text The SRI string.
 * @returns The parsed hash.
 * @throws {SyntaxError} When `text` is not SRI of a supported algorithm and
 * the right digest length, or uses URL-safe base64.
 */
export function parseSri(text: string): Hash {
  const match = /^([a-z0-9]+)-(.*)$/.exec(text);
  if (match === null) {
    throw new SyntaxError(`Cannot parse SRI hash "${text}": expected "sha256-<base64>"`);
  }
  const [, algorithm = "", body = ""] = match;
  if (!isHashAlgorithm(algorithm)) {
    throw new SyntaxError(
      `Cannot parse SRI hash "${text}": unsupported algorithm "${algorithm}" (use ${
        ALGORITHMS.join(" or ")
      })`,
    );
  }
  return {
    algorithm,
    digest: decodeBase64Digest(text, body, algorithm, { paddingOptional: true }),
  };
}

/**
 * Formats a digest as a Nix SRI string.
 *
 * @example Usage
 * ```ts
 * import { formatSri } from "./hash.ts";
 * formatSri("sha256", new Uint8Array(32)); // "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
 * ```
 *
 * @param algorithm The algorithm that produced the digest.
 * @param digest The digest bytes.
 * @returns The SRI string.
 * @throws {RangeError} When the digest length does not fit the algorithm.
 */
export function formatSri(algorithm: HashAlgorithm, digest: Uint8Array): string {
  checkLength(algorithm, digest);
  return `${algorithm}-${encodeBase64(digest)}`;
}

/**
 * Parses any hash text Nix accepts for a fixed-output derivation: SRI,
 * `algo:<hash>` (hex, nix32 or base64, told apart by length), or a bare hex
 * or nix32 hash of `options.algorithm`.
 *
 * @example Usage
 * ```ts
 * import { formatHash, parseHash } from "./hash.ts";
 * const hash = parseHash("sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73");
 * formatHash(hash, "sri"); // "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
 * ```
 *
 * @param text The hash text.
 * @param options The algorithm of a bare hash.
 * @returns The parsed hash.
 * @throws {SyntaxError} When `text` is none of these forms.
 */
export function parseHash(text: string, options: ParseHashOptions = {}): Hash {
  const expected = options.algorithm;
  let hash: Hash;
  const prefixed = /^([a-z0-9]+)([-:])(.*)$/.exec(text);
  if (prefixed !== null) {
    const [, algorithm = "", separator, body = ""] = prefixed;
    if (!isHashAlgorithm(algorithm)) {
      throw new SyntaxError(
        `Cannot parse hash "${text}": unsupported algorithm "${algorithm}" (use ${
          ALGORITHMS.join(" or ")
        })`,
      );
    }
    hash = separator === "-"
      ? parseSri(text)
      : { algorithm, digest: decodeBare(text, body, algorithm, true) };
  } else {
    const algorithm = expected ?? "sha256";
    hash = { algorithm, digest: decodeBare(text, text, algorithm, false) };
  }
  if (expected !== undefined && hash.algorithm !== expected) {
    throw new SyntaxError(
      `Cannot parse hash "${text}": expected a ${expected} hash, got ${hash.algorithm}`,
    );
  }
  return hash;
}

/**
 * Formats a hash in one encoding. Only `"sri"` names the algorithm; the
 * others are the bare digest.
 *
 * @example Usage
 * ```ts
 * import { formatHash, parseSri } from "./hash.ts";
 * const hash = parseSri("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
 * formatHash(hash, "nix32"); // "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
 * ```
 *
 * @param hash The hash.
 * @param encoding The encoding.
 * @returns The text.
 */
export function formatHash(hash: Hash, encoding: HashEncoding): string {
  checkLength(hash.algorithm, hash.digest);
  switch (encoding) {
    case "sri":
      return formatSri(hash.algorithm, hash.digest);
    case "nix32":
      return encodeNix32(hash.digest);
    case "hex":
      return Array.from(hash.digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
    case "base64":
      return encodeBase64(hash.digest);
  }
}

/**
 * Whether two hashes are the same: same algorithm and same digest bytes,
 * however they were spelled.
 *
 * @example Usage
 * ```ts
 * import { hashEquals, parseHash } from "./hash.ts";
 * hashEquals(
 *   parseHash("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"),
 *   parseHash("0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"),
 * ); // true
 * ```
 *
 * @param a One hash.
 * @param b The other.
 * @returns `true` when they are equal.
 */
export function hashEquals(a: Hash, b: Hash): boolean {
  return a.algorithm === b.algorithm && a.digest.length === b.digest.length &&
    a.digest.every((byte, i) => byte === b.digest[i]);
}

function decodeBare(
  text: string,
  body: string,
  algorithm: HashAlgorithm,
  prefixed: boolean,
): Uint8Array {
  const size = DIGEST_LENGTH[algorithm];
  const base64Length = Math.ceil(size / 3) * 4;
  if (body.length === size * 2) {
    if (!/^[0-9a-fA-F]*$/.test(body)) {
      throw new SyntaxError(`Cannot parse hash "${text}": not hexadecimal`);
    }
    return Uint8Array.from({ length: size }, (_, i) => parseInt(body.slice(i * 2, i * 2 + 2), 16));
  }
  if (body.length === nix32Length(size)) {
    try {
      return decodeNix32(body);
    } catch (error) {
      throw new SyntaxError(`Cannot parse hash "${text}": ${(error as Error).message}`);
    }
  }
  if (prefixed && body.length === base64Length) {
    return decodeBase64Digest(text, body, algorithm, { paddingOptional: false });
  }
  const forms = [`${size * 2} hex`, `${nix32Length(size)} nix32`];
  if (prefixed) forms.push(`${base64Length} base64`);
  throw new SyntaxError(
    `Cannot parse hash "${text}": a ${algorithm} hash has ${
      forms.join(", ")
    } characters, not ${body.length}`,
  );
}

function decodeBase64Digest(
  text: string,
  body: string,
  algorithm: HashAlgorithm,
  { paddingOptional }: { paddingOptional: boolean },
): Uint8Array {
  const size = DIGEST_LENGTH[algorithm];
  if (/[-_]/.test(body)) {
    throw new SyntaxError(
      `Cannot parse hash "${text}": URL-safe base64 ("-", "_") is not accepted by Nix`,
    );
  }
  const unpadded = body.replace(/=+$/, "");
  const padded = Math.ceil(size / 3) * 4;
  const bare = Math.ceil((size * 4) / 3);
  const lengthOk = body.length === padded ||
    (paddingOptional && body === unpadded && body.length === bare);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || !lengthOk) {
    throw new SyntaxError(
      `Cannot parse hash "${text}": a ${algorithm} digest is ${padded} characters of standard base64`,
    );
  }
  const binary = atob(unpadded + "=".repeat(padded - unpadded.length));
  const digest = Uint8Array.from(binary, (char) => char.charCodeAt(0));
  // Reject encodings with non-zero trailing bits: they decode, but are not
  // the canonical spelling of any digest.
  if (encodeBase64(digest).replace(/=+$/, "") !== unpadded) {
    throw new SyntaxError(`Cannot parse hash "${text}": not a canonical base64 digest`);
  }
  return digest;
}

function encodeBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function checkLength(algorithm: HashAlgorithm, digest: Uint8Array): void {
  if (digest.length !== DIGEST_LENGTH[algorithm]) {
    throw new RangeError(
      `A ${algorithm} digest is ${DIGEST_LENGTH[algorithm]} bytes, not ${digest.length}`,
    );
  }
}
