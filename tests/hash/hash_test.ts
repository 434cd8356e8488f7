import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  decodeNix32,
  encodeNix32,
  formatHash,
  formatSri,
  type Hash,
  hashEquals,
  nix32Length,
  parseHash,
  parseSri,
} from "../../mod.ts";
import { assertThrowsWith, nixEnv, requireTools, run } from "../_tools.ts";

const EMPTY_NIX32 = "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73";
const EMPTY_SRI = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
const EMPTY_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const ABC_NIX32 = "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s";

function sha(algorithm: "sha256" | "sha512", text: string): Hash {
  return { algorithm, digest: new Uint8Array(createHash(algorithm).update(text).digest()) };
}

Deno.test("encodeNix32() matches Nix's published vectors", () => {
  assert.deepEqual(encodeNix32(sha("sha256", "").digest), EMPTY_NIX32);
  assert.deepEqual(encodeNix32(sha("sha256", "abc").digest), ABC_NIX32);
  assert.deepEqual(encodeNix32(new Uint8Array()), "");
});

Deno.test("decodeNix32() inverts encodeNix32() for every length up to 64 bytes", () => {
  for (let length = 0; length <= 64; length++) {
    const bytes = Uint8Array.from({ length }, (_, i) => (i * 151 + length * 7) & 0xff);
    const text = encodeNix32(bytes);
    assert.deepEqual(text.length, nix32Length(length));
    assert.deepEqual(decodeNix32(text), bytes);
  }
});

Deno.test("decodeNix32() rejects letters outside the alphabet, bad lengths and overflow", () => {
  assertThrowsWith(
    () => decodeNix32(EMPTY_NIX32.replace("m", "e")),
    SyntaxError,
    '"e" is not in the alphabet',
  );
  assertThrowsWith(() => decodeNix32(EMPTY_NIX32.slice(1, 4)), SyntaxError, "not the length");
  // The first character of a 52-character encoding carries one bit only.
  assertThrowsWith(
    () => decodeNix32("z" + EMPTY_NIX32.slice(1)),
    SyntaxError,
    "beyond the last byte",
  );
});

Deno.test("parseSri() accepts Nix's SRI with and without padding", () => {
  const expected = sha("sha256", "");
  assert(hashEquals(parseSri(EMPTY_SRI), expected));
  assert(hashEquals(parseSri(EMPTY_SRI.replace(/=$/, "")), expected));
  const sha512 = sha("sha512", "abc");
  const sri512 = formatSri("sha512", sha512.digest);
  assert(sri512.endsWith("=="));
  assert(hashEquals(parseSri(sri512), sha512));
  assert(hashEquals(parseSri(sri512.replace(/=+$/, "")), sha512));
});

Deno.test("parseSri() rejects URL-safe base64, wrong lengths and unknown algorithms", () => {
  // 0xfb bytes encode as "+/" runs, so the URL-safe spelling differs.
  const digest = new Uint8Array(32).fill(0xfb);
  const sri = formatSri("sha256", digest);
  assertThrowsWith(
    () => parseSri(sri.replaceAll("+", "-").replaceAll("/", "_")),
    SyntaxError,
    "URL-safe",
  );
  assertThrowsWith(() => parseSri(EMPTY_SRI.slice(0, -3)), SyntaxError, "44 characters");
  assertThrowsWith(
    () => parseSri("md5-1B2M2Y8AsgTpgAmY7PhCfg=="),
    SyntaxError,
    'unsupported algorithm "md5"',
  );
  assertThrowsWith(() => parseSri(EMPTY_HEX), SyntaxError, "expected");
  assertThrowsWith(() => parseSri(EMPTY_SRI + "="), SyntaxError);
});

Deno.test("parseHash() tells hex, nix32 and base64 apart by length", () => {
  const expected = sha("sha256", "");
  for (
    const text of [
      EMPTY_SRI,
      `sha256:${EMPTY_HEX}`,
      `sha256:${EMPTY_HEX.toUpperCase()}`,
      `sha256:${EMPTY_NIX32}`,
      `sha256:${EMPTY_SRI.slice("sha256-".length)}`,
      EMPTY_HEX,
      EMPTY_NIX32,
    ]
  ) {
    assert(hashEquals(parseHash(text), expected), text);
  }
  const sha512 = sha("sha512", "abc");
  assert(hashEquals(parseHash(formatHash(sha512, "hex"), { algorithm: "sha512" }), sha512));
  assert(hashEquals(parseHash(`sha512:${formatHash(sha512, "nix32")}`), sha512));
});

Deno.test("parseHash() rejects malformed text with the reason", () => {
  assertThrowsWith(() => parseHash("sha256:abc"), SyntaxError, "64 hex, 52 nix32, 44 base64");
  assertThrowsWith(() => parseHash("g".repeat(64)), SyntaxError, "not hexadecimal");
  assertThrowsWith(
    () => parseHash("sha1:" + "0".repeat(40)),
    SyntaxError,
    'unsupported algorithm "sha1"',
  );
  assertThrowsWith(
    () => parseHash(EMPTY_SRI, { algorithm: "sha512" }),
    SyntaxError,
    "expected a sha512",
  );
  assertThrowsWith(() => parseHash(""), SyntaxError);
});

Deno.test("hashEquals() compares decoded bytes, not text", () => {
  assert(hashEquals(parseHash(EMPTY_SRI), parseHash(`sha256:${EMPTY_NIX32}`)));
  assert(!hashEquals(parseHash(EMPTY_SRI), sha("sha256", "abc")));
  const zeros256: Hash = { algorithm: "sha256", digest: new Uint8Array(32) };
  const zeros512: Hash = { algorithm: "sha512", digest: new Uint8Array(64) };
  assert(!hashEquals(zeros256, zeros512));
});

Deno.test("formatHash() gives every encoding of one digest", () => {
  const hash = sha("sha256", "");
  assert.deepEqual(formatHash(hash, "sri"), EMPTY_SRI);
  assert.deepEqual(formatHash(hash, "nix32"), EMPTY_NIX32);
  assert.deepEqual(formatHash(hash, "hex"), EMPTY_HEX);
  assert.deepEqual(formatHash(hash, "base64"), EMPTY_SRI.slice(7));
  assertThrowsWith(() => formatSri("sha512", hash.digest), RangeError, "64 bytes, not 32");
});

const nix = await requireTools("hash tests against Nix", "nix");

Deno.test({
  name: "formatHash() agrees with `nix hash to-base32` and `to-sri` for sha256 and sha512",
  ignore: !nix,
  fn: async () => {
    for (const algorithm of ["sha256", "sha512"] as const) {
      for (const text of ["", "abc", "rocm-nightly"]) {
        const hash = sha(algorithm, text);
        const hex = formatHash(hash, "hex");
        const base32 = await run("nix", ["hash", "to-base32", "--type", algorithm, hex], {
          env: nixEnv(),
        });
        assert.deepEqual(base32.code, 0, base32.stderr);
        assert.deepEqual(base32.stdout.trim(), formatHash(hash, "nix32"));
        const sri = await run("nix", ["hash", "to-sri", "--type", algorithm, hex], {
          env: nixEnv(),
        });
        assert.deepEqual(sri.stdout.trim(), formatHash(hash, "sri"));
        assert(hashEquals(parseHash(base32.stdout.trim(), { algorithm }), hash));
      }
    }
  },
});
