import { deepEqual, equal, throws } from "node:assert/strict";
import {
  AmbiguousBindingError,
  applyEdits,
  type BindingEdit,
  listAttrNames,
  MissingBindingError,
  parseAttrPath,
  readBinding,
} from "../../lib/flake/flake_edit.ts";
import { formatSri, parseSri } from "../../lib/hash/hash.ts";
import { encodeNix32 } from "../../lib/hash/nix32.ts";
import { nixEnv, requireTools, run } from "../_tools.ts";

const fixtures = new URL("../fixtures/flakes/", import.meta.url);
const fixture = (name: string): string => Deno.readTextFileSync(new URL(`${name}.nix`, fixtures));

const PIN = "sha256-rUhZSqJaTpuc2l6D1Q29oC0yTcTRRU/NO/JAFxaaVRA=";
const EMPTY = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
const ZEROS = formatSri("sha256", new Uint8Array(32));

/** `text` with the one occurrence of `from` replaced: fails if it occurs 0 or 2+ times. */
function replaceOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  equal(at !== -1 && text.indexOf(from, at + 1) === -1, true, `${from} occurs exactly once`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

Deno.test("readBinding() reads nested, dotted and quoted paths", () => {
  for (const name of ["registry", "registry_flake", "lookalike", "dotted"]) {
    const source = fixture(name);
    equal(readBinding(source, "nightly.version"), "7.12.0a20260308", name);
    equal(readBinding(source, "nightly.srcHashes.gfx1151"), PIN, name);
    equal(readBinding(source, 'nightly.srcHashes."gfx1151"'), PIN, name);
    equal(readBinding(source, "nightly.srcHashes.gfx110X-all"), null, name);
    equal(readBinding(source, 'nightly.srcHashes."gfx110X-all"'), null, name);
  }
  equal(readBinding(fixture("dotted"), "mirror.info.release.version"), "7.11.0rc3");
  equal(readBinding(fixture("dotted"), "mirror.srcHashes.gfx1200"), null);
  equal(readBinding(fixture("classic"), "version"), "7.12.0a20260308");
  equal(readBinding(fixture("classic"), "srcHash"), PIN);
});

Deno.test("readBinding() ignores look-alikes in comments and strings", () => {
  const source = fixture("lookalike");
  // "version = …" occurs only in comments, strings and an interpolation's set.
  throws(() => readBinding(source, "version"), MissingBindingError);
  equal(readBinding(source, "nightly.srcHashes.gfx1151"), PIN);
  // A URI literal (containing "/*") is a value, but not a string literal.
  throws(() => readBinding(source, "homepage"), /line 12 is not a string literal or null/);
});

Deno.test("readBinding() refuses values that are not a string literal or null", () => {
  throws(
    () => readBinding(fixture("registry_flake"), "targets"),
    (e) =>
      e instanceof TypeError &&
      /"targets" in flake\.nix: the value at line 14 is not/.test(e.message),
  );
  throws(() => readBinding(fixture("registry"), "nightly.srcHashes"), TypeError);
  throws(() => readBinding('{ s = "${x}"; }', "s"), TypeError);
  throws(() => readBinding("{ s = ''x''; }", "s"), TypeError);
  throws(() => readBinding('{ s = "a" + "b"; }', "s"), TypeError);
  throws(
    () => applyEdits(fixture("dotted"), [{ path: "nightly.srcHashes", value: null }]),
    /"nightly\.srcHashes" in flake\.nix: it is an attribute set \(line 4\)/,
  );
  throws(
    () => applyEdits(fixture("registry"), [{ path: "nightly.srcHashes", value: null }]),
    /the value at line 7 is not a string literal or null/,
  );
});

Deno.test("readBinding() finds bindings in let and rec sets, not in anonymous sets", () => {
  const source = `let
  a = rec { b.c = "1"; d = { e = null; }; };
in {
  x = f { b.c = "anonymous"; };
  y = [ { a.b.c = "in a list"; } ];
  z = { q = "direct"; };
  w = v: { q = "lambda body"; };
}
`;
  equal(readBinding(source, "a.b.c"), "1");
  equal(readBinding(source, "a.d.e"), null);
  equal(readBinding(source, "z.q"), "direct");
  throws(() => readBinding(source, "x.b.c"), MissingBindingError);
  throws(() => readBinding(source, "w.q"), MissingBindingError);
  // In a lambda's body, sets are anonymous; let bindings still name variables.
  throws(() => readBinding(`{ self }: ${source}`, "z.q"), MissingBindingError);
  equal(readBinding(`{ self }: ${source}`, "a.b.c"), "1");
  equal(readBinding(`{ a'.b-c = "x"; }`, "a'.b-c"), "x");
});

Deno.test("listAttrNames() lists the registry's targets in every shape", () => {
  for (const name of ["registry", "registry_flake", "lookalike", "dotted"]) {
    deepEqual(listAttrNames(fixture(name), "nightly.srcHashes"), ["gfx1151", "gfx110X-all"], name);
  }
  deepEqual(listAttrNames(fixture("registry"), "nightly"), ["baseUrl", "version", "srcHashes"]);
  deepEqual(listAttrNames("{ s = { }; }", "s"), []);
  throws(() => listAttrNames(fixture("duplicates"), "nightly.srcHashes"), AmbiguousBindingError);
  throws(() => listAttrNames(fixture("registry"), "nightly.version"), TypeError);
  throws(() => listAttrNames(fixture("registry"), "nightly.nope"), MissingBindingError);
});

Deno.test("applyEdits() replaces only the value literals", () => {
  const source = fixture("registry");
  const { text, changes } = applyEdits(source, [
    { path: "nightly.version", value: "7.12.0a20260309" },
    { path: "nightly.srcHashes.gfx1151", value: EMPTY },
    { path: "nightly.srcHashes.gfx110X-all", value: ZEROS },
    { path: "nightly.baseUrl", value: "https://rocm.nightlies.amd.com/tarball-multi-arch/" },
  ]);
  let expected = replaceOnce(source, '"7.12.0a20260308"', '"7.12.0a20260309"');
  expected = replaceOnce(expected, `"${PIN}"`, `"${EMPTY}"`);
  // The comment after the value stays.
  expected = replaceOnce(
    expected,
    "gfx110X-all = null; # not fetched yet",
    `gfx110X-all = "${ZEROS}"; # not fetched yet`,
  );
  expected = replaceOnce(expected, "/tarball/", "/tarball-multi-arch/");
  equal(text, expected);
  deepEqual(changes, [
    { path: "nightly.version", line: 6, oldValue: "7.12.0a20260308", newValue: "7.12.0a20260309" },
    { path: "nightly.srcHashes.gfx1151", line: 8, oldValue: PIN, newValue: EMPTY },
    { path: "nightly.srcHashes.gfx110X-all", line: 9, oldValue: null, newValue: ZEROS },
    {
      path: "nightly.baseUrl",
      line: 5,
      oldValue: "https://rocm.nightlies.amd.com/tarball/",
      newValue: "https://rocm.nightlies.amd.com/tarball-multi-arch/",
    },
  ]);
});

Deno.test("applyEdits() leaves comments and strings that look like bindings alone", () => {
  const source = fixture("lookalike");
  const { text } = applyEdits(source, [
    { path: "nightly.version", value: "7.12.0a20260309" },
    { path: 'nightly.srcHashes."gfx1151"', value: null },
    { path: "nightly.srcHashes.gfx110X-all", value: EMPTY },
  ]);
  let expected = replaceOnce(
    source,
    'version = /* the pin */ "7.12.0a20260308"; # version = "7";',
    'version = /* the pin */ "7.12.0a20260309"; # version = "7";',
  );
  expected = replaceOnce(expected, `"${PIN}"; /* gfx1151`, "null; /* gfx1151");
  expected = replaceOnce(expected, "gfx110X-all = null;", `gfx110X-all = "${EMPTY}";`);
  equal(text, expected);
});

Deno.test("applyEdits() edits top-level let bindings of the classic shape", () => {
  const source = fixture("classic");
  const { text, changes } = applyEdits(source, [
    { path: "version", value: "7.12.0rc3" },
    { path: "srcHash", value: ZEROS },
  ]);
  let expected = replaceOnce(source, 'version = "7.12.0a20260308";', 'version = "7.12.0rc3";');
  expected = replaceOnce(expected, `"${PIN}"`, `"${ZEROS}"`);
  equal(text, expected);
  deepEqual(changes.map((c) => c.line), [6, 7]);
});

Deno.test("applyEdits() edits dotted paths and adds a key beside dotted siblings", () => {
  const source = fixture("dotted");
  const { text, changes } = applyEdits(source, [
    { path: "nightly.version", value: "7.12.0a20260309" },
    { path: 'nightly.srcHashes."gfx110X-all"', value: EMPTY },
    { path: "nightly.srcHashes.gfx1200", value: ZEROS },
    { path: "mirror.info.release.version", value: "7.11.0" },
    { path: "mirror.srcHashes.gfx1201", value: null },
  ], { addMissing: true });
  let expected = replaceOnce(source, '"7.12.0a20260308"', '"7.12.0a20260309"');
  expected = replaceOnce(
    expected,
    `  nightly.srcHashes."gfx110X-all" = null; # quoted name\n`,
    `  nightly.srcHashes."gfx110X-all" = "${EMPTY}"; # quoted name\n` +
      `  nightly.srcHashes.gfx1200 = "${ZEROS}";\n`,
  );
  expected = replaceOnce(expected, '"7.11.0rc3"', '"7.11.0"');
  expected = replaceOnce(
    expected,
    "    srcHashes.gfx1200 = null;\n",
    "    srcHashes.gfx1200 = null;\n    srcHashes.gfx1201 = null;\n",
  );
  equal(text, expected);
  deepEqual(changes.map((c) => [c.line, c.oldValue]), [
    [3, "7.12.0a20260308"],
    [5, null],
    [6, undefined],
    [10, "7.11.0rc3"],
    [9, undefined],
  ]);
});

Deno.test("applyEdits() adds a key after the set's last binding with its indentation", () => {
  const source = fixture("registry");
  const { text, changes } = applyEdits(source, [
    { path: "nightly.srcHashes.gfx1200", value: EMPTY },
    { path: 'nightly.srcHashes."1needs-quotes"', value: null },
    { path: 'nightly.srcHashes."in"', value: null },
  ], { addMissing: true });
  const expected = replaceOnce(
    source,
    "      gfx110X-all = null; # not fetched yet\n",
    "      gfx110X-all = null; # not fetched yet\n" +
      `      gfx1200 = "${EMPTY}";\n` +
      '      "1needs-quotes" = null;\n' +
      '      "in" = null;\n',
  );
  equal(text, expected);
  deepEqual(changes.map((c) => [c.path, c.line, c.oldValue]), [
    ["nightly.srcHashes.gfx1200", 10, undefined],
    ['nightly.srcHashes."1needs-quotes"', 11, undefined],
    ['nightly.srcHashes."in"', 12, undefined],
  ]);
});

Deno.test("applyEdits() adds keys to empty and one-line sets", () => {
  equal(
    applyEdits("{ s = { }; }\n", [{ path: "s.gfx1151", value: null }], { addMissing: true }).text,
    "{ s = { gfx1151 = null; }; }\n",
  );
  equal(
    applyEdits("{\n  s = {\n  };\n}\n", [{ path: "s.gfx1151", value: null }], { addMissing: true })
      .text,
    "{\n  s = {\n    gfx1151 = null;\n  };\n}\n",
  );
  equal(
    applyEdits("{ s = { a = null; }; }", [{ path: "s.b", value: null }], { addMissing: true }).text,
    "{ s = { a = null; b = null; }; }",
  );
});

Deno.test("applyEdits() keeps CRLF line endings, in edits and added lines", () => {
  const source = fixture("registry").replaceAll("\n", "\r\n");
  const { text } = applyEdits(source, [
    { path: "nightly.version", value: "7.12.0a20260309" },
    { path: "nightly.srcHashes.gfx1200", value: null },
  ], { addMissing: true });
  let expected = replaceOnce(source, '"7.12.0a20260308"', '"7.12.0a20260309"');
  expected = replaceOnce(
    expected,
    "gfx110X-all = null; # not fetched yet\r\n",
    "gfx110X-all = null; # not fetched yet\r\n      gfx1200 = null;\r\n",
  );
  equal(text, expected);
  equal(/[^\r]\n/.test(text), false, "no bare LF");
});

Deno.test("applyEdits() refuses a path bound twice, naming every line", () => {
  const source = fixture("duplicates");
  throws(
    () => applyEdits(source, [{ path: "nightly.version", value: "7.12.0a20260309" }]),
    (e) =>
      e instanceof AmbiguousBindingError &&
      e.message ===
        'Cannot rewrite "nightly.version" in flake.nix: found 2 bindings (lines 3, 8)' &&
      e.lines.join() === "3,8",
  );
  // Any path of the edited name bound twice refuses the whole edit: here the
  // nightly of another scope.
  throws(
    () =>
      applyEdits(source, [{ path: "nightly.srcHashes.gfx1100", value: null }], {
        file: "x.nix",
        addMissing: true,
      }),
    /: Cannot rewrite "nightly\.version" in x\.nix: found 2 bindings \(lines 3, 8\)$/,
  );
  // Adding under a set written twice (Nix merges the two) is ambiguous.
  const split = "{\n  nightly = {\n    srcHashes = { gfx1151 = null; };\n" +
    "    srcHashes = { gfx1200 = null; };\n  };\n}\n";
  throws(
    () =>
      applyEdits(split, [{ path: "nightly.srcHashes.gfx1100", value: null }], {
        file: "x.nix",
        addMissing: true,
      }),
    /: Cannot rewrite "nightly\.srcHashes" in x\.nix: found 2 bindings \(lines 3, 4\)$/,
  );
});

Deno.test("applyEdits() refuses a missing binding, naming the nearest existing prefix", () => {
  const source = fixture("registry");
  throws(
    () => applyEdits(source, [{ path: "nightly.mirror.url", value: "https://x.org/" }]),
    (e) =>
      e instanceof MissingBindingError && e.nearest === "nightly" &&
      e.message ===
        'Cannot rewrite "nightly.mirror.url" in flake.nix: no such binding (nearest existing: "nightly")',
  );
  // Without addMissing a missing key is refused even where it could be added.
  throws(
    () => applyEdits(source, [{ path: "nightly.srcHashes.gfx1200", value: null }]),
    (e) => e instanceof MissingBindingError && e.nearest === "nightly.srcHashes",
  );
  // Never added at the top level, where a typo would go unnoticed.
  throws(() => applyEdits(source, [{ path: "version", value: "7.12.0" }]), MissingBindingError);
  throws(
    () => applyEdits(source, [{ path: "nightly.version.x", value: "a" }], { addMissing: true }),
    /cannot add a key: the value at line 6 is not an attribute set/,
  );
  throws(
    () => applyEdits(source, [{ path: "other.thing", value: "a" }], { addMissing: true }),
    /no binding has this path or any prefix of it/,
  );
});

Deno.test("applyEdits() validates versions, hashes and URLs by path", () => {
  const source = fixture("registry");
  const refused: [string, string | null, RegExp][] = [
    ["nightly.version", "7.12", /Cannot set "nightly\.version" in flake\.nix to "7\.12": /],
    ["nightly.version", "latest", /Cannot parse version/],
    ["nightly.version", null, /a version cannot be null/],
    ["nightly.srcHashes.gfx1151", "sha256-abc", /digest is 44 characters/],
    ["nightly.srcHashes.gfx1151", "0".repeat(64), /Cannot parse SRI/],
    ["nightly.srcHashes.gfx1151", `sha512-${PIN.slice(7)}`, /digest is 88 characters/],
    ["nightly.srcHashes.gfx110X-all", "pending", /Cannot parse SRI/],
    ["nightly.baseUrl", "https://rocm.nightlies.amd.com/tarball", /must end with "\/"/],
    ["nightly.baseUrl", "ftp://rocm.nightlies.amd.com/tarball/", /http\(s\) URL/],
    ["nightly.baseUrl", null, /cannot be null/],
  ];
  for (const [path, value, message] of refused) {
    throws(() => applyEdits(source, [{ path, value }]), message, `${path}=${value}`);
  }
  // Validation comes first: a bad value on a missing path is still a bad value.
  throws(() => applyEdits(source, [{ path: "x.srcHash", value: "nope" }]), SyntaxError);
});

Deno.test("applyEdits() refuses values that cannot be a plain Nix string", () => {
  const source = fixture("classic");
  for (const value of ['a"b', "a${b}", "a\\b", "a\nb", "a\rb", "a\tb", "a\x00b", "a\x7fb"]) {
    for (const path of ["description", "version", "srcHash"]) {
      throws(() => applyEdits(source, [{ path, value }]), Error, JSON.stringify(value));
    }
    throws(
      () => applyEdits(source, [{ path: "description", value }]),
      (e) => e instanceof TypeError && /may not contain/.test(e.message),
    );
  }
  // A lone "$" is fine: only "${" interpolates.
  equal(
    readBinding(
      applyEdits(source, [{ path: "description", value: "costs $5" }]).text,
      "description",
    ),
    "costs $5",
  );
});

Deno.test("applyEdits() is all or nothing", () => {
  const source = fixture("registry");
  throws(() =>
    applyEdits(source, [
      { path: "nightly.version", value: "7.12.0a20260309" },
      { path: "nightly.srcHashes.gfx1151", value: 'x"; evil = "' },
    ]), TypeError);
  throws(() =>
    applyEdits(source, [
      { path: "nightly.version", value: "7.12.0a20260309" },
      { path: "nightly.version", value: "7.12.0a20260310" },
    ]), /edited twice/);
});

Deno.test("applyEdits() treats an equal value, or the same hash in another encoding, as no change", () => {
  const pinDigest = parseSri(PIN).digest;
  const source = replaceOnce(fixture("registry"), PIN, `sha256:${encodeNix32(pinDigest)}`);
  const edits: BindingEdit[] = [
    { path: "nightly.srcHashes.gfx1151", value: PIN },
    { path: "nightly.version", value: "7.12.0a20260308" },
    { path: "nightly.srcHashes.gfx110X-all", value: null },
  ];
  const result = applyEdits(source, edits);
  equal(result.text, source);
  deepEqual(result.changes, []);
  // SRI without padding is the same hash too.
  deepEqual(
    applyEdits(fixture("registry"), [{
      path: "nightly.srcHashes.gfx1151",
      value: PIN.replace("=", ""),
    }]).changes,
    [],
  );
  // A different hash in the other encoding is a change.
  equal(
    applyEdits(source, [{ path: "nightly.srcHashes.gfx1151", value: EMPTY }]).changes.length,
    1,
  );
});

Deno.test("applyEdits() takes an SRI pin given as sha256:<nix32> as no change, and refuses it as a change", () => {
  const source = fixture("registry");
  const same = `sha256:${encodeNix32(parseSri(PIN).digest)}`;
  deepEqual(applyEdits(source, [{ path: "nightly.srcHashes.gfx1151", value: same }]).changes, []);
  const other = `sha256:${encodeNix32(parseSri(EMPTY).digest)}`;
  throws(
    () => applyEdits(source, [{ path: "nightly.srcHashes.gfx1151", value: other }]),
    /Cannot parse SRI.*only accepted when it equals the current hash/,
  );
});

Deno.test("applyEdits() refuses C1 controls and base URLs looser than folderUrl's", () => {
  const source = fixture("registry");
  for (const value of ["a\x80b", "a\x85b", "a\x9fb"]) {
    throws(() => applyEdits(source, [{ path: "nightly.version", value }]), /may not contain/);
    throws(() => applyEdits(fixture("classic"), [{ path: "description", value }]), TypeError);
  }
  equal(
    applyEdits(fixture("classic"), [{ path: "description", value: "a\xa0é" }]).changes.length,
    1,
  );
  const refused: [string, RegExp][] = [
    ["https://u:p@example.com/?q#/", /no credentials/],
    ["https://example.com/?q/", /no query or fragment/],
    ["https://example.com/#/", /no query or fragment/],
    ["https://example.com/?/", /no query or fragment/],
    ["https://example.com/a b/", /nothing escaped/],
    ["https://example.com/é/", /nothing escaped/],
    ["https://Example.com/a/", /nothing escaped/],
  ];
  for (const [value, message] of refused) {
    throws(() => applyEdits(source, [{ path: "nightly.baseUrl", value }]), message, value);
  }
  equal(
    applyEdits(source, [{ path: "nightly.baseUrl", value: "https://example.com/a%20b/" }])
      .changes.length,
    1,
  );
});

Deno.test("applyEdits() rejects a source that does not parse", () => {
  throws(
    () => applyEdits('{ a = "1"; ', [{ path: "a", value: "2" }], { file: "f.nix" }),
    (e) =>
      e instanceof SyntaxError && /^Cannot parse f\.nix: unclosed "\{" at line 1/.test(e.message),
  );
  throws(() => applyEdits('{ a = "1" }', [{ path: "a", value: "2" }]), /expected ";"|unexpected/);
});

Deno.test("parseAttrPath() splits identifiers and quoted names", () => {
  deepEqual(parseAttrPath('nightly.srcHashes."gfx110X-all"'), [
    "nightly",
    "srcHashes",
    "gfx110X-all",
  ]);
  deepEqual(parseAttrPath("a.b'.c-d"), ["a", "b'", "c-d"]);
  deepEqual(parseAttrPath('"a.b".c'), ["a.b", "c"]);
  for (
    const bad of ["", "a.", ".a", "a..b", 'a."b', "a.${b}", 'a."${b}"', "1a", "a b", 'a."a\\b"']
  ) {
    throws(() => parseAttrPath(bad), SyntaxError, bad);
  }
});

const REGISTRY_LITERALS: Record<string, string> = {
  "nightly.baseUrl": '"https://rocm.nightlies.amd.com/tarball/"',
  "nightly.version": '"7.12.0a20260308"',
  "nightly.srcHashes.gfx1151": `"${PIN}"`,
  "nightly.srcHashes.gfx110X-all": "null; # not fetched yet",
};

function randomValue(path: string, random: () => number): string | null {
  const pick = (n: number): number => Math.floor(random() * n);
  if (path.endsWith("version")) {
    const date = `2026${String(1 + pick(12)).padStart(2, "0")}${
      String(1 + pick(28)).padStart(2, "0")
    }`;
    return [
      `${pick(12)}.${pick(30)}.${pick(9)}a${date}`,
      `7.${pick(9)}.0rc${pick(9)}`,
      "7.9.0",
    ][pick(3)]!;
  }
  if (path.endsWith("baseUrl")) return `https://mirror${pick(100)}.example.org/tarball/`;
  if (pick(4) === 0) return null;
  return formatSri("sha256", Uint8Array.from({ length: 32 }, () => pick(256)));
}

Deno.test("applyEdits() on random edits changes the registry only inside the replaced values", () => {
  let seed = 20260308;
  const random = (): number => {
    // xorshift32: reproducible, so a failure names its seed.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  for (let round = 0; round < 300; round++) {
    const startSeed = seed;
    const crlf = random() < 0.5;
    const eol = crlf ? "\r\n" : "\n";
    const source = crlf ? fixture("registry").replaceAll("\n", "\r\n") : fixture("registry");
    const edits: BindingEdit[] = [];
    let expected = source;
    for (const [path, literal] of Object.entries(REGISTRY_LITERALS)) {
      if (random() < 0.5) continue;
      const value = randomValue(path, random);
      edits.push({ path, value });
      const rendered = value === null ? "null" : `"${value}"`;
      expected = replaceOnce(expected, literal, literal.replace(/^("[^"]*"|null)/, rendered));
    }
    const added = ["gfx1200", "gfx1201", "gfx90X-dcgpu"].filter(() => random() < 0.3);
    // New keys go on lines of their own after the line of the set's last binding.
    const lastLine = /gfx110X-all = (?:null|"[^"]*"); # not fetched yet\r?\n/.exec(expected)![0];
    let insertion = "";
    for (const name of added) {
      const value = randomValue(`nightly.srcHashes.${name}`, random);
      edits.push({ path: `nightly.srcHashes.${name}`, value });
      insertion += `      ${name} = ${value === null ? "null" : `"${value}"`};${eol}`;
    }
    expected = replaceOnce(expected, lastLine, lastLine + insertion);
    const { text } = applyEdits(source, edits, { addMissing: true });
    equal(text, expected, `seed ${startSeed}`);
  }
});

const nix = await requireTools("rewritten fixtures must parse and evaluate", "nix-instantiate");

Deno.test({
  name: "applyEdits() output parses and evaluates to the new values with Nix",
  ignore: !nix,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "flake_edit_test" });
    try {
      const edits: BindingEdit[] = [
        { path: "nightly.version", value: "10.0.0a20260815" },
        { path: "nightly.srcHashes.gfx1151", value: null },
        { path: "nightly.srcHashes.gfx110X-all", value: EMPTY },
        { path: "nightly.srcHashes.gfx1200", value: ZEROS },
      ];
      const cases: [name: string, source: string, select: string][] = [
        ["registry", fixture("registry"), "r.nightly"],
        ["registry_crlf", fixture("registry").replaceAll("\n", "\r\n"), "r.nightly"],
        ["registry_flake", fixture("registry_flake"), "(r.outputs { self = null; }).lib.nightly"],
        ["lookalike", fixture("lookalike"), "r.nightly"],
        ["dotted", fixture("dotted"), "r.nightly"],
      ];
      for (const [name, source, select] of cases) {
        const path = `${dir}/${name}.nix`;
        await Deno.writeTextFile(path, applyEdits(source, edits, { addMissing: true }).text);
        const parsed = await run("nix-instantiate", ["--parse", path], { env: nixEnv() });
        equal(parsed.code, 0, `${name} parses: ${parsed.stderr}`);
        const evaluated = await run(
          "nix-instantiate",
          ["--eval", "--strict", "--json", "-E", `let r = import ${path}; in ${select}`],
          { env: nixEnv() },
        );
        equal(evaluated.code, 0, `${name} evaluates: ${evaluated.stderr}`);
        const nightly = JSON.parse(evaluated.stdout);
        equal(nightly.version, "10.0.0a20260815", name);
        deepEqual(nightly.srcHashes, { gfx1151: null, "gfx110X-all": EMPTY, gfx1200: ZEROS }, name);
      }

      const classic = `${dir}/classic.nix`;
      await Deno.writeTextFile(
        classic,
        applyEdits(fixture("classic"), [
          { path: "version", value: "7.12.0a20260309" },
          { path: "srcHash", value: EMPTY },
        ]).text,
      );
      const evaluated = await run("nix-instantiate", [
        "--eval",
        "--strict",
        "--json",
        "-E",
        `((import ${classic}).outputs { self = null; }).packages.x86_64-linux.default`,
      ], { env: nixEnv() });
      equal(evaluated.code, 0, evaluated.stderr);
      const drv = JSON.parse(evaluated.stdout);
      equal(drv.version, "7.12.0a20260309");
      equal(drv.src.hash, EMPTY);
      equal(drv.src.url.endsWith("-7.12.0a20260309.tar.gz"), true);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
