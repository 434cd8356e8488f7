import { deepEqual, equal, throws } from "node:assert/strict";
import { lineAt, type NixToken, tokenizeNix } from "../../lib/flake/nix_lexer.ts";

const fixtures = new URL("../fixtures/flakes/", import.meta.url);

function code(source: string): Pick<NixToken, "kind" | "text">[] {
  return tokenizeNix(source)
    .filter((t) => t.kind !== "whitespace")
    .map(({ kind, text }) => ({ kind, text }));
}

Deno.test("tokenizeNix() is lossless on every fixture, LF and CRLF", async () => {
  let files = 0;
  for await (const entry of Deno.readDir(fixtures)) {
    if (!entry.name.endsWith(".nix")) continue;
    const source = await Deno.readTextFile(new URL(entry.name, fixtures));
    for (const text of [source, source.replaceAll("\n", "\r\n")]) {
      const tokens = tokenizeNix(text);
      deepEqual(tokens.map((t) => t.text).join(""), text);
      tokens.forEach((t, i) => {
        deepEqual(text.slice(t.start, t.end), t.text);
        deepEqual(t.line, lineAt(text, t.start), `line of token ${i} in ${entry.name}`);
      });
    }
    files++;
  }
  equal(files >= 6, true, "fixtures found");
});

Deno.test("tokenizeNix() decodes plain strings and leaves interpolated ones opaque", () => {
  const [plain, interpolated, dollars] = tokenizeNix(
    '"a\\"b\\n\\$c" "x${ "}" + { a = "{"; }.a }y" "$${x}"',
  )
    .filter((t) => t.kind === "string");
  deepEqual(plain?.value, 'a"b\n$c');
  deepEqual(interpolated?.text, '"x${ "}" + { a = "{"; }.a }y"');
  deepEqual(interpolated?.value, undefined);
  // `$$` is two dollars, so `$${x}` is text, not an interpolation.
  deepEqual(dollars?.value, "$${x}");
});

Deno.test("tokenizeNix() ends an indented string only at an unescaped ''", () => {
  const source = "'' a ''$ ''' ''\\n ${ \"''\" + ''in'' } b '' ;";
  deepEqual(code(source), [
    { kind: "indentedString", text: source.slice(0, -2) },
    { kind: "punctuation", text: ";" },
  ]);
});

Deno.test("tokenizeNix() tells comments from look-alikes in URIs, paths and strings", () => {
  deepEqual(code('a = https://x.org/*y; # c\r\nb = "# no"; /* c\n */ d = ./p/${q}/r;'), [
    { kind: "identifier", text: "a" },
    { kind: "punctuation", text: "=" },
    { kind: "uri", text: "https://x.org/*y" },
    { kind: "punctuation", text: ";" },
    { kind: "comment", text: "# c" }, // the \r belongs to the line ending
    { kind: "identifier", text: "b" },
    { kind: "punctuation", text: "=" },
    { kind: "string", text: '"# no"' },
    { kind: "punctuation", text: ";" },
    { kind: "comment", text: "/* c\n */" },
    { kind: "identifier", text: "d" },
    { kind: "punctuation", text: "=" },
    { kind: "path", text: "./p/${q}/r" },
    { kind: "punctuation", text: ";" },
  ]);
});

Deno.test("tokenizeNix() lexes identifiers with - and ', numbers, search paths and operators", () => {
  deepEqual(code("gfx110X-all x' a-1 1.5e3 <nixpkgs/lib> a//b ... ${"), [
    { kind: "identifier", text: "gfx110X-all" },
    { kind: "identifier", text: "x'" },
    { kind: "identifier", text: "a-1" },
    { kind: "number", text: "1.5e3" },
    { kind: "path", text: "<nixpkgs/lib>" },
    { kind: "identifier", text: "a" },
    { kind: "punctuation", text: "//" },
    { kind: "identifier", text: "b" },
    { kind: "punctuation", text: "..." },
    { kind: "punctuation", text: "${" },
  ]);
});

Deno.test("tokenizeNix() counts lines across multi-line strings with interpolations", () => {
  const tokens = tokenizeNix('x = "a\n${ "b\n" }\nc";\ny = 1;');
  deepEqual(tokens.find((t) => t.kind === "string")?.line, 1);
  deepEqual(tokens.find((t) => t.text === "y")?.line, 5);
});

Deno.test("tokenizeNix() rejects unterminated strings, comments and interpolations", () => {
  for (
    const [source, message] of [
      ['x = "abc', /unterminated string at line 1, column 5/],
      ["x = 1;\n/* open", /unterminated comment at line 2, column 1/],
      ["x = ''\n  a '", /unterminated indented string at line 1/],
      ['x = "${ { a = 1; }"', /unterminated|unterminated \$\{/],
      ["x = 1 ` 2", /unexpected character "`" at line 1, column 7/],
    ] as const
  ) {
    throws(
      () => tokenizeNix(source),
      (error) => error instanceof SyntaxError && message.test(error.message),
      source,
    );
  }
});

Deno.test("lineAt() counts line feeds before an offset", () => {
  deepEqual(lineAt("a\r\nb\nc", 0), 1);
  deepEqual(lineAt("a\r\nb\nc", 3), 2);
  deepEqual(lineAt("a\r\nb\nc", 5), 3);
});
