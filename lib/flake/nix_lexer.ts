/**
 * A lossless lexer for the Nix language: every byte of the source belongs to
 * exactly one token, comments and whitespace included, so an editor can find
 * code by its tokens and still put every other byte back unchanged.
 *
 * Strings are single tokens: an interpolation `${…}` inside one is lexed
 * (to find where the string really ends, through nested strings, braces and
 * comments) but its tokens are not returned, because text inside a string is
 * never code to be edited.
 *
 * @module
 */

/** The kind of a {@linkcode NixToken}. */
export type NixTokenKind =
  | "whitespace"
  | "comment"
  | "identifier"
  | "string"
  | "indentedString"
  | "number"
  | "path"
  | "uri"
  | "punctuation";

/** One token of Nix source. */
export interface NixToken {
  /** What the token is. Keywords (`let`, `in`, `rec`, …) are identifiers. */
  kind: NixTokenKind;
  /** The exact source text of the token. */
  text: string;
  /** Offset of the first character in the source (UTF-16 code units). */
  start: number;
  /** Offset just past the last character. */
  end: number;
  /** 1-based line of the first character. */
  line: number;
  /**
   * The decoded value of a double-quoted string without interpolation
   * (`"a\"b"` → `a"b`); absent for every other token.
   */
  value?: string;
}

/** Words the Nix grammar reserves; `or` is one but may still name an attribute. */
export const NIX_KEYWORDS: ReadonlySet<string> = new Set([
  "assert",
  "else",
  "if",
  "in",
  "inherit",
  "let",
  "or",
  "rec",
  "then",
  "with",
]);

// Sticky patterns taken from the grammar in Nix's lexer.l; where several match
// at one position the longest wins, as in flex.
const IDENTIFIER = /[a-zA-Z_][a-zA-Z0-9_'-]*/y;
const NUMBER = /(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/y;
const PATH = /[a-zA-Z0-9._+-]*(?:\/[a-zA-Z0-9._+-]+)+\/?|~(?:\/[a-zA-Z0-9._+-]+)+\/?/y;
const PATH_BEFORE_INTERPOLATION = /(?:[a-zA-Z0-9._+-]*|~)(?:\/[a-zA-Z0-9._+-]+)*\/(?=\$\{)/y;
const PATH_CONTINUATION = /[a-zA-Z0-9._+\-/]*/y;
const SEARCH_PATH = /<[a-zA-Z0-9._+-]+(?:\/[a-zA-Z0-9._+-]+)*>/y;
const URI = /[a-zA-Z][a-zA-Z0-9+.-]*:[a-zA-Z0-9%/?:@&=+$,_.!~*'-]+/y;
const PUNCTUATION = [
  "...",
  "${",
  "==",
  "!=",
  "<=",
  ">=",
  "&&",
  "||",
  "->",
  "//",
  "++",
  "|>",
  "<|",
];
const SINGLE_PUNCTUATION = "{}()[];:,.=@?!+-*/<>";

/**
 * Splits Nix source into tokens. Concatenating the `text` of the tokens gives
 * back the source exactly.
 *
 * @example Usage
 * ```ts
 * import { tokenizeNix } from "./nix_lexer.ts";
 *
 * const tokens = tokenizeNix('{ v = "1"; } # done');
 * tokens.filter((t) => t.kind === "string")[0]?.value; // "1"
 * tokens.at(-1)?.kind; // "comment"
 * ```
 *
 * @param source The Nix source text.
 * @returns The tokens in source order, trivia included.
 * @throws {SyntaxError} On an unterminated string, comment or interpolation,
 * or a character that starts no Nix token.
 */
export function tokenizeNix(source: string): NixToken[] {
  const lexer = new Lexer(source);
  const tokens: NixToken[] = [];
  while (lexer.pos < source.length) tokens.push(lexer.next());
  return tokens;
}

/**
 * The 1-based line of `offset` in `source`.
 *
 * @example Usage
 * ```ts
 * import { lineAt } from "./nix_lexer.ts";
 *
 * lineAt("a\nb", 2); // 2
 * ```
 *
 * @param source The text.
 * @param offset An offset into `source`.
 * @returns The line number, counting `\n` before the offset.
 */
export function lineAt(source: string, offset: number): number {
  let line = 1;
  for (let i = source.indexOf("\n"); i !== -1 && i < offset; i = source.indexOf("\n", i + 1)) {
    line++;
  }
  return line;
}

class Lexer {
  readonly source: string;
  pos = 0;
  #line = 1;
  #lineCountedTo = 0;

  constructor(source: string) {
    this.source = source;
  }

  next(): NixToken {
    const start = this.pos;
    // Before scanning: a string's interpolation lexes tokens further on.
    const line = this.#lineOf(start);
    const { kind, value } = this.#scan();
    const token: NixToken = {
      kind,
      text: this.source.slice(start, this.pos),
      start,
      end: this.pos,
      line,
    };
    if (value !== undefined) token.value = value;
    return token;
  }

  #lineOf(offset: number): number {
    // Tokens arrive in order, so counting newlines incrementally stays linear.
    for (let i = this.#lineCountedTo; i < offset; i++) {
      if (this.source.charCodeAt(i) === 10) this.#line++;
    }
    this.#lineCountedTo = offset;
    return this.#line;
  }

  #scan(): { kind: NixTokenKind; value?: string } {
    const s = this.source;
    const c = s[this.pos]!;
    if (/[ \t\r\n\uFEFF]/.test(c)) {
      while (this.pos < s.length && /[ \t\r\n\uFEFF]/.test(s[this.pos]!)) this.pos++;
      return { kind: "whitespace" };
    }
    if (c === "#") {
      const eol = s.indexOf("\n", this.pos);
      // The newline is left to the whitespace token: it ends the line, not the comment's text.
      this.pos = eol === -1 ? s.length : (s[eol - 1] === "\r" ? eol - 1 : eol);
      return { kind: "comment" };
    }
    if (s.startsWith("/*", this.pos)) {
      const close = s.indexOf("*/", this.pos + 2);
      if (close === -1) throw this.#error("unterminated comment", this.pos);
      this.pos = close + 2;
      return { kind: "comment" };
    }
    if (c === '"') return this.#string();
    if (s.startsWith("''", this.pos)) return this.#indentedString();

    const longest = this.#longestMatch();
    if (longest !== undefined) {
      this.pos += longest.length;
      if (longest.kind === "path") this.#pathInterpolations();
      return { kind: longest.kind };
    }
    for (const p of PUNCTUATION) {
      if (s.startsWith(p, this.pos)) {
        this.pos += p.length;
        return { kind: "punctuation" };
      }
    }
    if (SINGLE_PUNCTUATION.includes(c)) {
      this.pos++;
      return { kind: "punctuation" };
    }
    throw this.#error(`unexpected character ${JSON.stringify(c)}`, this.pos);
  }

  #longestMatch(): { kind: NixTokenKind; length: number } | undefined {
    const candidates: [NixTokenKind, RegExp][] = [
      ["uri", URI],
      ["path", PATH],
      ["path", PATH_BEFORE_INTERPOLATION],
      ["path", SEARCH_PATH],
      ["identifier", IDENTIFIER],
      ["number", NUMBER],
    ];
    let best: { kind: NixTokenKind; length: number } | undefined;
    for (const [kind, pattern] of candidates) {
      pattern.lastIndex = this.pos;
      const match = pattern.exec(this.source);
      if (match !== null && match[0].length > (best?.length ?? 0)) {
        best = { kind, length: match[0].length };
      }
    }
    return best;
  }

  /** A path may go on with `${…}` and more path characters: `./a/${b}/c`. */
  #pathInterpolations(): void {
    while (this.source.startsWith("${", this.pos)) {
      this.pos += 2;
      this.#skipInterpolation(this.pos - 2);
      PATH_CONTINUATION.lastIndex = this.pos;
      this.pos += PATH_CONTINUATION.exec(this.source)?.[0].length ?? 0;
    }
  }

  #string(): { kind: NixTokenKind; value?: string } {
    const s = this.source;
    const open = this.pos;
    this.pos++;
    let value = "";
    let interpolated = false;
    for (;;) {
      if (this.pos >= s.length) throw this.#error("unterminated string", open);
      const c = s[this.pos]!;
      if (c === '"') {
        this.pos++;
        return interpolated ? { kind: "string" } : { kind: "string", value };
      }
      if (c === "\\") {
        const escaped = s[this.pos + 1];
        if (escaped === undefined) throw this.#error("unterminated string", open);
        value += escaped === "n" ? "\n" : escaped === "r" ? "\r" : escaped === "t" ? "\t" : escaped;
        this.pos += 2;
      } else if (c === "$" && s[this.pos + 1] === "{") {
        interpolated = true;
        this.pos += 2;
        this.#skipInterpolation(this.pos - 2);
      } else if (c === "$" && s[this.pos + 1] === "$") {
        // `$$` is two literal dollars, so `$${x}` is text, not an interpolation.
        value += "$$";
        this.pos += 2;
      } else {
        value += c;
        this.pos++;
      }
    }
  }

  #indentedString(): { kind: NixTokenKind } {
    const s = this.source;
    const open = this.pos;
    this.pos += 2;
    for (;;) {
      if (this.pos >= s.length) throw this.#error("unterminated indented string", open);
      if (s.startsWith("''", this.pos)) {
        const after = s[this.pos + 2];
        if (after === "$" || after === "'") {
          this.pos += 3; // ''$ and ''' are escapes
        } else if (after === "\\") {
          if (this.pos + 3 >= s.length) throw this.#error("unterminated indented string", open);
          this.pos += 4; // ''\x escapes any one character
        } else {
          this.pos += 2;
          return { kind: "indentedString" };
        }
      } else if (s.startsWith("${", this.pos)) {
        this.pos += 2;
        this.#skipInterpolation(this.pos - 2);
      } else if (s.startsWith("$$", this.pos)) {
        this.pos += 2;
      } else {
        this.pos++;
      }
    }
  }

  /** Lexes code from just after `${` through its matching `}`. */
  #skipInterpolation(open: number): void {
    let depth = 0;
    for (;;) {
      if (this.pos >= this.source.length) throw this.#error("unterminated ${", open);
      const token = this.next();
      if (token.kind !== "punctuation") continue;
      if (token.text === "{" || token.text === "${") depth++;
      else if (token.text === "}") {
        if (depth === 0) return;
        depth--;
      }
    }
  }

  #error(what: string, offset: number): SyntaxError {
    const line = lineAt(this.source, offset);
    const column = offset - this.source.lastIndexOf("\n", offset - 1);
    return new SyntaxError(`${what} at line ${line}, column ${column}`);
  }
}
