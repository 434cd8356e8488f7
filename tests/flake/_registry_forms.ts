/**
 * Registries written in valid Nix forms the flake editor cannot rewrite, for
 * the unit tests (tests/flake/registry_forms_test.ts) and the fault cases of
 * update and rewrite (tests/faults/registry_forms.ts). Each is a flake.nix
 * whose `outputs { self = null; }` evaluates to `lib.channels`, like the
 * project's own.
 *
 * @module
 */

export const VERSION = "7.12.0a20260308";
export const PIN = "sha256-rUhZSqJaTpuc2l6D1Q29oC0yTcTRRU/NO/JAFxaaVRA=";

/** The parts of a registry flake a form replaces. */
export interface RegistryParts {
  /** Lines added to the `let` before the channel (each ending in "\n"). */
  extra?: string;
  /** The whole `nightly = …;` line(s); `{{set}}` stands for the plain set. */
  binding?: string;
  /** The value of `srcHashes`. */
  srcHashes?: string;
}

const HASHES = `{
          gfx1151 = "${PIN}";
          gfx110X-all = null;
        }`;

/** The plain nightly set, as a `let` binding's value. */
function plainSet(baseUrl: string, srcHashes = HASHES): string {
  return `{
        baseUrl = "${baseUrl}";
        version = "${VERSION}";
        srcHashes = ${srcHashes};
      }`;
}

/** A flake.nix with a nightly registry, its parts replaced as given. */
export function registryFlake(baseUrl: string, parts: RegistryParts = {}): string {
  const set = plainSet(baseUrl, parts.srcHashes);
  const binding = (parts.binding ?? "      nightly = {{set}};\n").replace("{{set}}", set);
  return `{
  outputs =
    { self }:
    let
${parts.extra ?? ""}${binding}    in
    {
      lib.channels = { inherit nightly; };
    };
}
`;
}

/** A form the editor refuses, and what its one line must say. */
export interface RefusedForm {
  /** What the form is, for test names. */
  name: string;
  /** The registry's parts. */
  parts: RegistryParts;
  /** Text on the refused line (its first occurrence names the line). */
  at: string;
  /** The path as the message shows it. */
  path: string;
  /** The form as the message names it; `undefined` for a duplicate. */
  form?: string;
  /** For a duplicate: text on the other line. */
  also?: string;
}

export const REFUSED_FORMS: RefusedForm[] = [
  {
    name: "a target bound with inherit",
    parts: {
      extra: `      gfx1151 = "${PIN}";\n`,
      srcHashes: "{\n          inherit gfx1151;\n          gfx110X-all = null;\n        }",
    },
    at: "inherit gfx1151",
    path: "nightly.srcHashes.gfx1151",
    form: "inherit",
  },
  {
    name: "a target bound with inherit (pins)",
    parts: {
      extra: `      pins = { gfx1151 = "${PIN}"; };\n`,
      srcHashes: "{\n          inherit (pins) gfx1151;\n          gfx110X-all = null;\n        }",
    },
    at: "inherit (pins)",
    path: "nightly.srcHashes.gfx1151",
    form: "inherit (…)",
  },
  {
    name: "the channel bound with inherit (registry)",
    parts: {
      binding: "      registry = { nightly = {{set}}; };\n      inherit (registry) nightly;\n",
    },
    at: "inherit (registry)",
    path: "nightly",
    form: "inherit (…)",
  },
  {
    name: 'a target named ${"gfx1151"}',
    parts: {
      srcHashes: `{\n          \${"gfx1151"} = "${PIN}";\n          gfx110X-all = null;\n        }`,
    },
    at: '${"gfx1151"}',
    path: 'nightly.srcHashes.${"gfx1151"}',
    form: "an interpolated name",
  },
  {
    name: 'a target named "gfx${"1151"}"',
    parts: {
      srcHashes:
        `{\n          "gfx\${"1151"}" = "${PIN}";\n          gfx110X-all = null;\n        }`,
    },
    at: '"gfx${',
    path: 'nightly.srcHashes."gfx${"1151"}"',
    form: "a quoted name holding ${…}",
  },
  {
    name: 'the channel named ${"nightly"}',
    parts: { binding: '      ${"nightly"} = {{set}};\n' },
    at: '${"nightly"}',
    path: '${"nightly"}',
    form: "an interpolated name",
  },
  {
    name: "the channel bound twice, in two scopes",
    parts: {
      extra: "      other = let nightly.srcHashes.gfx1200 = null; in nightly;\n",
    },
    at: "other = let",
    also: "nightly = {",
    path: "nightly",
  },
  {
    name: "a rec channel set",
    parts: { binding: "      nightly = rec {{set}};\n" },
    at: "nightly = rec",
    path: "nightly",
    form: "rec",
  },
  {
    name: "a let-bound hash",
    parts: {
      extra: `      pin = "${PIN}";\n`,
      srcHashes: "{\n          gfx1151 = pin;\n          gfx110X-all = null;\n        }",
    },
    at: "gfx1151 = pin",
    path: "nightly.srcHashes.gfx1151",
    form: "a variable (pin)",
  },
  {
    name: "srcHashes written as let … in",
    parts: { srcHashes: `let h = "${PIN}"; in { gfx1151 = h; gfx110X-all = null; }` },
    at: "srcHashes = let",
    path: "nightly.srcHashes",
    form: "let … in",
  },
  {
    name: "srcHashes merged with //",
    parts: { srcHashes: `{ gfx110X-all = null; } // { gfx1151 = "${PIN}"; }` },
    at: "srcHashes = {",
    path: "nightly.srcHashes",
    form: "//",
  },
  {
    name: "srcHashes imported",
    parts: { srcHashes: "import ./hashes.nix" },
    at: "srcHashes = import",
    path: "nightly.srcHashes",
    form: "import",
  },
  {
    name: "the channel set inside a with",
    parts: { binding: "      nightly = with builtins; {{set}};\n" },
    at: "nightly = with",
    path: "nightly",
    form: "with …;",
  },
];

/** The 1-based line of the first occurrence of `text` in `source`. */
export function lineOf(source: string, text: string): number {
  const at = source.indexOf(text);
  if (at === -1) throw new Error(`${JSON.stringify(text)} is not in the source`);
  return source.slice(0, at).split("\n").length;
}

/** The one line `action` ("update" or "rewrite") must print for `form` (without the script's prefix). */
export function refusal(
  form: RefusedForm,
  source: string,
  action: string,
  file = "flake.nix",
): string {
  const line = lineOf(source, form.at);
  if (form.form === undefined) {
    return `Cannot rewrite "${form.path}" in ${file}: found 2 bindings ` +
      `(lines ${line}, ${lineOf(source, form.also!)})`;
  }
  return `Cannot ${action} ${file}: line ${line} binds "${form.path}" with ${form.form}, ` +
    "which this editor cannot rewrite; ";
}

export const STABLE_1151 = "sha256-JWfV405HDbEEpioCw2qncMsEMBdeSMHEbfDu/AXh13w=";
export const STABLE_110X = "sha256-54pERcUth5+9B2XyTn+p3x4mKouvaBsRihPnU0ASASc=";
const STABLE = `stable = {
        baseUrl = "https://stable.example/tarball/";
        version = "7.11.0";
        srcHashes = { gfx1151 = "${STABLE_1151}"; gfx110X-all = "${STABLE_110X}"; };
      };`;

/** Wraps `let` bindings in the flake shape, with both channels in `lib.channels`. */
function flakeOf(bindings: string): string {
  return `{
  outputs =
    { self }:
    let
${bindings}
    in
    {
      lib.channels = { inherit nightly stable; };
    };
}
`;
}

/** Registries (nightly and stable) in forms the editor reads and rewrites. */
export const ACCEPTED_FORMS: { name: string; source: (baseUrl: string) => string }[] = [
  {
    name: "the plain form",
    source: (b) =>
      flakeOf(`      nightly = {
        baseUrl = "${b}";
        version = "${VERSION}";
        srcHashes = {
          gfx1151 = "${PIN}";
          gfx110X-all = null;
        };
        mirrors = [ ];
        skip = [ "7.12.0a20260309" ];
      };
      ${STABLE}`),
  },
  {
    name: "comments everywhere, look-alikes in them",
    source: (b) =>
      flakeOf(`      # nightly.version = "0.0.0a19700101"; nightly.srcHashes.gfx1151 = null;
      /* the registry */ nightly /* c */ = /* c */ {
        baseUrl /* c */ = "${b}"; # c
        version = /* the pin */ "${VERSION}" /* c */; # version = "7.0.0a20200101";
        srcHashes = # c
          { # gfx1200 = null;
          gfx1151 = "${PIN}"; /* gfx1151 = "x"; */
          # gfx110X-all = "${PIN}";
          gfx110X-all /* not fetched */ = null;
        };
      };
      ${STABLE} # stable.version = "0";`),
  },
  {
    name: "one line, tabs and no spaces",
    source: (b) =>
      flakeOf(
        `\tnightly={baseUrl="${b}";version="${VERSION}";srcHashes={gfx1151="${PIN}";gfx110X-all=null;};};\n\t\t${STABLE}`,
      ),
  },
  {
    name: "CRLF line endings",
    source: (b) =>
      flakeOf(`      nightly = ${plainSet(b)};
      ${STABLE}`).replaceAll("\n", "\r\n"),
  },
  {
    name: "another attribute order",
    source: (b) =>
      flakeOf(`      ${STABLE}
      nightly = {
        srcHashes = {
          gfx110X-all = null;
          gfx1151 = "${PIN}";
        };
        skip = [ ];
        version = "${VERSION}";
        baseUrl = "${b}";
      };`),
  },
  {
    name: "strings with escapes",
    source: (b) =>
      flakeOf(`      nightly = {
        baseUrl = "\\${b}";
        version = "${VERSION.slice(0, -1)}\\${VERSION.slice(-1)}";
        srcHashes = {
          gfx1151 = "${PIN.replaceAll("/", "\\/")}";
          gfx110X-all = null;
        };
        note = "a \\"quoted\\" \\\${not-interpolated} $\${x} \\n";
      };
      stable = {
        baseUrl = "https:\\/\\/stable.example\\/tarball\\/";
        version = "7.11\\.0";
        srcHashes = { gfx1151 = "${
        STABLE_1151.replace("=", "\\=")
      }"; gfx110X-all = "${STABLE_110X}"; };
      };`),
  },
  {
    name: "quoted names",
    source: (b) =>
      flakeOf(`      "nightly" = {
        "baseUrl" = "${b}";
        "version" = "${VERSION}";
        "srcHashes" = {
          "gfx1151" = "${PIN}";
          "gfx110X-all" = null;
        };
      };
      ${STABLE}`),
  },
  {
    name: "dotted paths",
    source: (b) =>
      flakeOf(`      nightly.baseUrl = "${b}";
      nightly.version = "${VERSION}";
      nightly.srcHashes.gfx1151 = "${PIN}";
      nightly.srcHashes."gfx110X-all" = null;
      stable = {
        baseUrl = "https://stable.example/tarball/";
        version = "7.11.0";
        srcHashes.gfx1151 = "${STABLE_1151}";
        srcHashes.gfx110X-all = "${STABLE_110X}";
      };`),
  },
  {
    name: "a set split between a literal and a dotted path",
    source: (b) =>
      flakeOf(`      nightly = {
        baseUrl = "${b}";
        version = "${VERSION}";
        srcHashes = { gfx1151 = "${PIN}"; };
      };
      nightly.srcHashes.gfx110X-all = null;
      ${STABLE}`),
  },
];
