import assert from "node:assert/strict";
import { compareVersions, isValidVersion, parseVersion } from "../../lib/releases/versions.ts";

Deno.test("parseVersion() reads the five kinds", () => {
  assert.deepEqual(parseVersion("7.12.0a20260308"), {
    text: "7.12.0a20260308",
    kind: "nightly",
    base: [7, 12, 0],
    date: "20260308",
  });
  assert.deepEqual(parseVersion("7.0.0rc20250625"), {
    text: "7.0.0rc20250625",
    kind: "rc-nightly",
    base: [7, 0, 0],
    date: "20250625",
  });
  assert.deepEqual(parseVersion("7.0.0rc2"), {
    text: "7.0.0rc2",
    kind: "prerelease",
    base: [7, 0, 0],
    rc: 2,
  });
  assert.deepEqual(parseVersion("7.9.0.dev0+e3f1c2a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3"), {
    text: "7.9.0.dev0+e3f1c2a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3",
    kind: "dev",
    base: [7, 9, 0],
    dev: "e3f1c2a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3",
  });
  assert.deepEqual(parseVersion("10.0.0"), { text: "10.0.0", kind: "stable", base: [10, 0, 0] });
});

Deno.test("parseVersion() rejects garbage with a SyntaxError quoting it", () => {
  for (
    const bad of [
      "",
      "7.12",
      "7.12.0a2026030",
      "7.12.0a202603081",
      "7.12.0a20261308", // month 13
      "7.12.0a20260230", // 30 February
      "7.12.0b20260308",
      "07.12.0",
      "7.12.0rc123456",
      "7.9.0.dev0+XYZ1234",
      "7.9.0.dev0%2Babcdef1", // URL form: decode first
      "7.9.0.dev0+abc", // too short for a commit
      '7.12.0"; x = "',
      "7.12.0a20260308${x}",
      "../7.12.0",
      "7.12.0\n",
      " 7.12.0",
    ]
  ) {
    assert.throws(() => parseVersion(bad), SyntaxError, `accepted ${JSON.stringify(bad)}`);
    assert.equal(isValidVersion(bad), false);
  }
  assert.throws(() => parseVersion("7.12.0x"), /"7\.12\.0x"/);
  assert.throws(() => parseVersion(7 as unknown as string), TypeError);
});

Deno.test("isValidVersion() accepts every kind", () => {
  for (
    const good of ["7.12.0a20260308", "7.0.0rc20250625", "7.0.0rc1", "7.9.0.dev0+abcdef1", "6.4.3"]
  ) {
    assert.equal(isValidVersion(good), true, good);
  }
});

function sorted(texts: string[]): string[] {
  return texts.map(parseVersion).sort(compareVersions).map((v) => v.text);
}

Deno.test("compareVersions() orders the 10.x major jump numerically", () => {
  assert.deepEqual(
    sorted(["10.0.0a20260815", "7.12.0a20260308", "7.9.0a20251001", "10.1.0a20260901"]),
    ["7.9.0a20251001", "7.12.0a20260308", "10.0.0a20260815", "10.1.0a20260901"],
  );
  assert.deepEqual(sorted(["10.0.0", "7.12.0", "9.0.0"]), ["7.12.0", "9.0.0", "10.0.0"]);
});

Deno.test("compareVersions() orders rc-nightlies and a-nightlies by date first", () => {
  assert.deepEqual(
    sorted(["7.9.0a20251001", "7.0.0rc20250625", "7.0.0rc20250901"]),
    ["7.0.0rc20250625", "7.0.0rc20250901", "7.9.0a20251001"],
  );
  // An older branch built later is the newer nightly.
  assert.ok(
    compareVersions(parseVersion("7.11.0a20260310"), parseVersion("7.12.0a20260308")) > 0,
  );
  // Same date: base version, then kind.
  assert.ok(
    compareVersions(parseVersion("7.12.0a20260308"), parseVersion("7.11.0a20260308")) > 0,
  );
  assert.ok(
    compareVersions(parseVersion("7.0.0rc20250625"), parseVersion("7.0.0a20250625")) > 0,
  );
});

Deno.test("compareVersions() orders dev, nightly, rc and stable of one base", () => {
  assert.deepEqual(
    sorted(["7.0.0", "7.0.0rc2", "7.0.0.dev0+abcdef1", "7.0.0rc10", "7.0.0a20250601"]),
    ["7.0.0.dev0+abcdef1", "7.0.0a20250601", "7.0.0rc2", "7.0.0rc10", "7.0.0"],
  );
  // Two dev builds of one base are a tie for the caller to break by mtime.
  assert.equal(
    compareVersions(parseVersion("7.0.0.dev0+abcdef1"), parseVersion("7.0.0.dev0+1234567")),
    0,
  );
  assert.equal(compareVersions(parseVersion("7.0.0"), parseVersion("7.0.0")), 0);
});

Deno.test("compareVersions() never throws on versions without a date", () => {
  const texts = [
    "7.12.0a20260308",
    "7.0.0",
    "7.9.0.dev0+abcdef1",
    "7.0.0rc2",
    "10.0.0a20260815",
    "6.4.0",
    "7.0.0rc20250625",
  ];
  const result = sorted(texts);
  assert.equal(result.length, texts.length);
  assert.deepEqual([...result].sort(), [...texts].sort());
  // Undated versions compare with dated ones by base.
  assert.ok(compareVersions(parseVersion("6.4.0"), parseVersion("7.0.0rc20250625")) < 0);
  assert.ok(compareVersions(parseVersion("10.0.0"), parseVersion("7.12.0a20260308")) > 0);
});

Deno.test("parseVersion() reads the versions of AMD's ROCm 10 channels and stable 7.14.0", () => {
  assert.deepEqual(parseVersion("10.1.0a20260827"), {
    text: "10.1.0a20260827",
    kind: "nightly",
    base: [10, 1, 0],
    date: "20260827",
  });
  assert.deepEqual(parseVersion("10.0.0"), { text: "10.0.0", kind: "stable", base: [10, 0, 0] });
  assert.deepEqual(parseVersion("10.1.0rc0"), {
    text: "10.1.0rc0",
    kind: "prerelease",
    base: [10, 1, 0],
    rc: 0,
  });
  assert.equal(parseVersion("7.14.0").kind, "stable");
  // The release candidate of 10.1.0 follows 10.0.0 and precedes 10.1.0.
  const order = ["10.1.0", "10.1.0rc0", "10.0.0", "7.14.0"].map(parseVersion).sort(compareVersions);
  assert.deepEqual(order.map((v) => v.text), ["7.14.0", "10.0.0", "10.1.0rc0", "10.1.0"]);
});
