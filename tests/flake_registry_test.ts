import assert from "node:assert/strict";
import { join } from "node:path";
import { listChannels } from "../lib/flake_registry.ts";
import { assertThrowsWith, repoRoot } from "./_tools.ts";

const HASH = "sha256-rUhZSqJaTpuc2l6D1Q29oC0yTcTRRU/NO/JAFxaaVRA=";

Deno.test("listChannels() finds every channel of this repository's flake.nix, in source order", async () => {
  const channels = listChannels(await Deno.readTextFile(join(repoRoot, "flake.nix")));
  const names = channels.map((c) => c.name);
  assert.equal(names[0], "nightly");
  assert.ok(names.includes("stable"), names.join(", "));
  for (const channel of channels) {
    assert.ok(Object.keys(channel.srcHashes).length > 0, channel.name);
    for (const hash of Object.values(channel.srcHashes)) {
      assert.ok(hash === null || /^sha256-[A-Za-z0-9+/]{43}=$/.test(hash), String(hash));
    }
  }
});

Deno.test("listChannels() reads nested, dotted and versionless channels", () => {
  const source = `{
    outputs = _: let
      registry = {
        nightly = { version = "7.12.0a20260308"; srcHashes = { gfx1151 = "${HASH}"; "gfx110X-all" = null; }; };
      };
      stable.srcHashes.gfx1151 = null;
      stable.version = "7.14.0";
      rc = { srcHashes = { }; };
      other = { hashes = { gfx1151 = null; }; };
    in { inherit registry stable; };
  }`;
  assert.deepEqual(listChannels(source), [
    {
      name: "nightly",
      version: "7.12.0a20260308",
      srcHashes: { gfx1151: HASH, "gfx110X-all": null },
    },
    { name: "stable", version: "7.14.0", srcHashes: { gfx1151: null } },
    { name: "rc", version: null, srcHashes: {} },
  ]);
  assert.deepEqual(listChannels("{ outputs = { self }: { }; }"), []);
});

Deno.test("listChannels() rejects unparseable text and non-literal hashes, naming the file", () => {
  assertThrowsWith(
    () => listChannels("{ nightly = { srcHashes = {", { file: "x.nix" }),
    SyntaxError,
    "Cannot parse x.nix",
  );
  assertThrowsWith(
    () => listChannels("{ nightly.srcHashes.gfx1151 = builtins.head [ ]; }"),
    TypeError,
    "nightly",
  );
});
