import assert from "node:assert/strict";
import { chooseRelease } from "../../lib/releases/release_choice.ts";
import { type IndexEntry, parseTheRockIndex } from "../../lib/releases/index_listing.ts";

function entries(files: [string, number?][]): IndexEntry[] {
  const json = JSON.stringify(files.map(([name, mtime]) => ({ name, mtime: mtime ?? 0 })));
  return parseTheRockIndex(`const files = ${json};`, "https://example.org/tarball/").entries;
}

const t = (family: string, version: string): string =>
  `therock-dist-linux-${family}-${version}.tar.gz`;

Deno.test("chooseRelease() picks the newest version every target has", () => {
  const choice = chooseRelease(
    entries([
      [t("gfx1151", "7.12.0a20260308")],
      [t("gfx1151", "7.12.0a20260310")],
      [t("gfx1151", "10.0.0a20260815")],
      [t("gfx110X-all", "7.12.0a20260308")],
      [t("gfx110X-all", "7.12.0a20260310")],
      [t("gfx120X-all", "10.0.0a20260815")],
    ]),
    ["gfx1151", "gfx110X-all"],
  );
  assert.equal(choice.version, "7.12.0a20260310");
  assert.equal(choice.entries.gfx1151?.name, t("gfx1151", "7.12.0a20260310"));
  assert.equal(choice.entries["gfx110X-all"]?.name, t("gfx110X-all", "7.12.0a20260310"));
  assert.deepEqual(choice.heldBack, { version: "10.0.0a20260815", by: ["gfx110X-all"] });
  assert.deepEqual(choice.absent, []);
});

Deno.test("chooseRelease() handles the 10.x jump and mixed kinds", () => {
  const choice = chooseRelease(
    entries([
      [t("gfx1151", "7.0.0")],
      [t("gfx1151", "7.0.0rc2")],
      [t("gfx1151", "7.9.0.dev0+abcdef1")],
      [t("gfx1151", "9.0.0a20260701")],
      [t("gfx1151", "10.0.0a20260815")],
      [t("gfx1151", "7.0.0rc20250625")],
    ]),
    ["gfx1151"],
  );
  assert.equal(choice.version, "10.0.0a20260815");
  assert.equal(choice.heldBack, undefined);
});

Deno.test("chooseRelease() breaks ties between dev builds by mtime", () => {
  const choice = chooseRelease(
    entries([
      [t("gfx1151", "7.9.0.dev0+bbbbbbb"), 100],
      [t("gfx1151", "7.9.0.dev0+aaaaaaa"), 200],
      [t("gfx1151", "7.9.0.dev0+ccccccc"), 150],
    ]),
    ["gfx1151"],
  );
  assert.equal(choice.version, "7.9.0.dev0+aaaaaaa");
});

Deno.test("chooseRelease() pins --version exactly or refuses", () => {
  const list = entries([
    [t("gfx1151", "7.12.0a20260308")],
    [t("gfx1151", "7.12.0a20260310")],
    [t("gfx110X-all", "7.12.0a20260310")],
  ]);
  const older = chooseRelease(list, ["gfx1151"], { version: "7.12.0a20260308" });
  assert.equal(older.version, "7.12.0a20260308");
  assert.equal(older.heldBack, undefined);
  assert.throws(
    () => chooseRelease(list, ["gfx1151", "gfx110X-all"], { version: "7.12.0a20260308" }),
    /no tarball of it for "gfx110X-all"/,
  );
  assert.throws(() => chooseRelease(list, ["gfx1151"], { version: "7.12" }), SyntaxError);
});

Deno.test("chooseRelease() pins absent targets to null unless required", () => {
  const list = entries([[t("multiarch", "10.0.0a20260815")]]);
  const choice = chooseRelease(list, ["gfx1151", "multiarch"]);
  assert.equal(choice.version, "10.0.0a20260815");
  assert.equal(choice.entries.gfx1151, null);
  assert.deepEqual(choice.absent, ["gfx1151"]);
  assert.throws(
    () => chooseRelease(list, ["gfx1151", "multiarch"], { required: ["gfx1151"] }),
    /"gfx1151": not in the index \(families there: multiarch\)/,
  );
  assert.throws(() => chooseRelease(list, ["gfx1151"]), /not in the index/);
  assert.throws(() => chooseRelease([], ["gfx1151"]), /families there: none/);
  assert.throws(() => chooseRelease(list, []), TypeError);
});

Deno.test("chooseRelease() refuses when no version is common", () => {
  const list = entries([
    [t("gfx1151", "7.12.0a20260310")],
    [t("gfx110X-all", "7.12.0a20260308")],
  ]);
  assert.throws(
    () => chooseRelease(list, ["gfx1151", "gfx110X-all"]),
    /no version is available for every target \(newest per target: gfx1151 7\.12\.0a20260310, gfx110X-all 7\.12\.0a20260308\)/,
  );
});
