import assert from "node:assert/strict";
import {
  folderUrl,
  isValidFamily,
  parseTarballName,
  tarballFileName,
  tarballUrl,
} from "../../lib/releases/tarball_name.ts";

Deno.test("parseTarballName() splits family and version", () => {
  for (
    const [name, family, version] of [
      ["therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz", "gfx1151", "7.12.0a20260308"],
      ["therock-dist-linux-gfx110X-all-7.12.0a20260308.tar.gz", "gfx110X-all", "7.12.0a20260308"],
      ["therock-dist-linux-gfx94X-dcgpu-7.0.0rc2.tar.gz", "gfx94X-dcgpu", "7.0.0rc2"],
      ["therock-dist-linux-multiarch-10.0.0a20260815.tar.gz", "multiarch", "10.0.0a20260815"],
      ["therock-dist-linux-gfx90a-7.9.0.dev0+abcdef1.tar.gz", "gfx90a", "7.9.0.dev0+abcdef1"],
      ["therock-dist-linux-gfx1151-7.0.0.tar.gz", "gfx1151", "7.0.0"],
    ]
  ) {
    assert.deepEqual(parseTarballName(name!), { name, family, version });
  }
});

Deno.test("parseTarballName() skips Windows, tests, ADHOCBUILD and hostile names", () => {
  for (
    const name of [
      "therock-dist-windows-gfx1151-7.12.0a20260308.tar.gz",
      "therock-dist-linux-gfx1151-tests-7.12.0a20260308.tar.gz",
      "therock-dist-linux-gfx1151-ADHOCBUILD-7.0.0rc20250625.tar.gz",
      "therock-dist-linux-gfx1151-7.12.0a20260308.tar.xz",
      "therock-dist-linux-7.12.0a20260308.tar.gz",
      'therock-dist-linux-gfx1151-7.12.0"a.tar.gz',
      "therock-dist-linux-gfx1151-${x}.tar.gz",
      "therock-dist-linux-gfx1151/../x-7.12.0.tar.gz",
      "therock-dist-linux-gfx1151-7.9.0.dev0%2Babcdef1.tar.gz",
      "therock-dist-linux-GFX1151-7.12.0.tar.gz",
      "therock-dist-linux-gfx1151-all-extra-7.12.0.tar.gz",
      "x".repeat(300),
    ]
  ) {
    assert.equal(parseTarballName(name), undefined, name);
  }
});

Deno.test("tarballFileName() round-trips and validates", () => {
  const name = tarballFileName("gfx110X-all", "7.12.0a20260308");
  assert.equal(name, "therock-dist-linux-gfx110X-all-7.12.0a20260308.tar.gz");
  assert.equal(parseTarballName(name)?.family, "gfx110X-all");
  assert.throws(() => tarballFileName("gfx1151/..", "7.12.0"), SyntaxError);
  assert.throws(() => tarballFileName("gfx1151", '7.12.0"'), SyntaxError);
  assert.equal(isValidFamily("multiarch"), true);
  assert.equal(isValidFamily("gfx110X-ALL"), false);
});

Deno.test("tarballUrl() encodes + as %2B and normalises the folder", () => {
  assert.equal(
    tarballUrl("https://rocm.nightlies.amd.com/tarball", "gfx1151", "7.9.0.dev0+abcdef1"),
    "https://rocm.nightlies.amd.com/tarball/therock-dist-linux-gfx1151-7.9.0.dev0%2Babcdef1.tar.gz",
  );
  assert.throws(() => folderUrl("file:///etc/"), TypeError);
  assert.throws(() => folderUrl("https://x.example/a?b=1"), TypeError);
  assert.throws(() => folderUrl("https://x.example/${a}/"), TypeError);
  assert.throws(() => folderUrl("https://u:p@x.example/"), TypeError);
  assert.throws(() => folderUrl("nope"), TypeError);
});
