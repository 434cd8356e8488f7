/**
 * lib/store/nix_wire.ts: the numbers and strings both the daemon protocol
 * and the NAR framing are made of (the framing itself is checked against
 * `nix-store --dump` in local_store_test.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { wireNumber, wirePadding, wireString } from "../../lib/store/nix_wire.ts";

Deno.test("wireNumber() writes 8 bytes, little-endian", () => {
  assert.deepEqual(wireNumber(0x0102), new Uint8Array([2, 1, 0, 0, 0, 0, 0, 0]));
  assert.deepEqual(wireNumber(2 ** 40), new Uint8Array([0, 0, 0, 0, 0, 1, 0, 0]));
});

Deno.test("wireString() writes the length, the UTF-8 bytes and zero padding to 8", () => {
  assert.deepEqual(wireString(""), new Uint8Array(8));
  assert.deepEqual(
    wireString("ab"),
    new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 97, 98, 0, 0, 0, 0, 0, 0]),
  );
  assert.equal(wireString("12345678").length, 16);
  assert.equal(wireString("é")[0], 2);
  assert.deepEqual([0, 1, 7, 8, 9].map(wirePadding), [0, 7, 1, 0, 7]);
});
