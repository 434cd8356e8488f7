/**
 * The attribute bindings of a Nix file, each with the attribute path it can be
 * addressed by: `nightly = { srcHashes = { gfx1151 = …; }; }` and
 * `nightly.srcHashes.gfx1151 = …;` both bind `nightly.srcHashes.gfx1151`.
 *
 * Which bindings have a path:
 * - a `let` binding anywhere starts a path of its own (it names a variable:
 *   `version` in `let version = "…"; in …`);
 * - the top-level attribute set of a file, and a set that is the whole value
 *   of a binding with a path, continue that path (`rec` or not);
 * - every other set (a function argument `f { … }`, a list element, an
 *   operand of `//`, a lambda body) is anonymous: it has no path, so it can
 *   neither be edited nor make a path ambiguous.
 *
 * `inherit` statements in those blocks are listed too (they bind names whose
 * values are elsewhere), so an editor can refuse what it cannot rewrite.
 *
 * Built on {@linkcode tokenizeNix}, so comments and the insides of strings
 * never look like bindings.
 *
 * @module
 */

import { NIX_KEYWORDS, type NixToken, tokenizeNix } from "./nix_lexer.ts";

/** An attribute path; `null` stands for a dynamic component (`${…}` or `"${…}"`). */
export type NixAttrPath = (string | null)[];

/** A `set` (`{ … }`, `rec { … }`) or `let` block of bindings. */
export interface NixBlock {
  /** The block's kind. */
  kind: "set" | "let";
  /** The path of the set's bindings' parent (`[]` for `let` and the top-level set). */
  path: NixAttrPath;
  /** The `{` or `let` token. */
  open: NixToken;
  /** The `}` or `in` token. */
  close: NixToken;
  /** The bindings written directly in this block, in source order. */
  bindings: NixBinding[];
}

/** One `attrpath = value;` binding that has a path. */
export interface NixBinding {
  /** The full path: the enclosing sets' path followed by the written attrpath. */
  path: NixAttrPath;
  /** The source range of each component written in this binding (`b`, `c` in `b.c = …`). */
  written: { start: number; end: number }[];
  /** The non-trivia tokens of the value expression. */
  value: NixToken[];
  /** The `;` ending the binding. */
  semicolon: NixToken;
  /** The first token of the binding (its first attribute name). */
  first: NixToken;
  /** The block the binding is written in. */
  block: NixBlock;
}

/** One `inherit a b;` or `inherit (expr) a b;` written in a block that has a path. */
export interface NixInherit {
  /** The block the `inherit` is written in. */
  block: NixBlock;
  /** The `inherit` keyword. */
  first: NixToken;
  /** Whether it inherits from an expression (`inherit (expr) …`). */
  from: boolean;
  /** The names inherited; `null` for one that is not a plain name or string. */
  names: (string | null)[];
}

/** The result of {@linkcode scanBindings}. */
export interface NixBindings {
  /** Every binding with a path, in source order. */
  bindings: NixBinding[];
  /** Every `inherit` written in a block with a path, in source order. */
  inherits: NixInherit[];
  /** Every set with a path (the top-level set, and sets that are a binding's whole value). */
  sets: NixBlock[];
}

/**
 * Finds the bindings of a Nix file and their attribute paths.
 *
 * @example Usage
 * ```ts
 * import { scanBindings } from "./nix_bindings.ts";
 *
 * const { bindings } = scanBindings('let n = { v = "1"; }; in { x.y = n; }');
 * bindings.map((b) => b.path.join(".")); // ["n", "n.v", "x.y"]
 * ```
 *
 * @param source Nix source text.
 * @returns The bindings and sets that have a path.
 * @throws {SyntaxError} When the source does not lex, or its brackets,
 * bindings or `let … in` blocks are malformed.
 */
export function scanBindings(source: string): NixBindings {
  const code = tokenizeNix(source).filter((t) => t.kind !== "whitespace" && t.kind !== "comment");
  const scanner = new Scanner(code, matchBrackets(code));
  scanner.expression([], END_OF_FILE);
  scanner.result.bindings.sort((a, b) => a.first.start - b.first.start);
  return scanner.result;
}

const END_OF_FILE: ReadonlySet<string> = new Set([""]);
const SEMICOLON: ReadonlySet<string> = new Set([";"]);
const CLOSE_BRACE: ReadonlySet<string> = new Set(["}"]);
const CLOSE_PAREN: ReadonlySet<string> = new Set([")"]);
const CLOSE_BRACKET: ReadonlySet<string> = new Set(["]"]);
const PATTERN_END: ReadonlySet<string> = new Set([",", "}"]);
const CLOSERS: Readonly<Record<string, string>> = { "{": "}", "${": "}", "(": ")", "[": "]" };

/** Bracket, brace and `let`-free structure is checked up front so lookahead can jump. */
function matchBrackets(code: NixToken[]): Map<number, number> {
  const match = new Map<number, number>();
  const open: number[] = [];
  code.forEach((token, index) => {
    if (token.kind !== "punctuation") return;
    if (CLOSERS[token.text] !== undefined) open.push(index);
    else if (token.text === "}" || token.text === ")" || token.text === "]") {
      const opener = open.pop();
      if (opener === undefined || CLOSERS[code[opener]!.text] !== token.text) {
        throw new SyntaxError(`unbalanced "${token.text}" at line ${token.line}`);
      }
      match.set(opener, index);
    }
  });
  const unclosed = open.pop();
  if (unclosed !== undefined) {
    throw new SyntaxError(`unclosed "${code[unclosed]!.text}" at line ${code[unclosed]!.line}`);
  }
  return match;
}

/** Punctuation and identifiers compare by text; literals never equal a symbol. */
function symbol(token: NixToken | undefined): string | undefined {
  if (token === undefined) return "";
  return token.kind === "punctuation" || token.kind === "identifier" ? token.text : undefined;
}

class Scanner {
  readonly result: NixBindings = { bindings: [], inherits: [], sets: [] };
  #code: NixToken[];
  #match: Map<number, number>;
  #i = 0;

  constructor(code: NixToken[], match: Map<number, number>) {
    this.#code = code;
    this.#match = match;
  }

  /**
   * Scans an expression up to (not including) one of `stops` at this depth.
   * `path` is the path a set gets when it is the whole expression; `null`
   * when the expression is anonymous.
   */
  expression(path: NixAttrPath | null, stops: ReadonlySet<string>): void {
    let first = true;
    for (;;) {
      const token = this.#code[this.#i];
      const text = symbol(token);
      if (text !== undefined && stops.has(text)) return;
      if (token === undefined) throw this.#unexpected();
      switch (text) {
        case "rec":
        case "{": {
          const open = text === "rec" ? this.#i + 1 : this.#i;
          if (symbol(this.#code[open]) !== "{") {
            this.#i++;
            break;
          }
          if (text === "{" && this.#isPattern()) {
            this.#pattern();
            break;
          }
          const after = symbol(this.#code[this.#match.get(open)! + 1]);
          const whole = first && after !== undefined && stops.has(after);
          this.#set(open, whole ? path : null);
          break;
        }
        case "let":
          if (symbol(this.#code[this.#i + 1]) === "{") {
            this.#set(this.#i + 1, null); // the obsolete `let { … }` form
            break;
          }
          this.#let();
          // `let … in body` reaches as far right as it can: the body ends at our stop.
          this.expression(first ? path : null, stops);
          return;
        case "with":
        case "assert":
          // Their `;` is part of the expression, and the body that follows is still the value.
          this.#i++;
          this.expression(null, SEMICOLON);
          this.#expect(";");
          continue;
        case "(":
        case "[":
        case "${":
          this.#i++;
          this.expression(
            null,
            text === "(" ? CLOSE_PAREN : text === "[" ? CLOSE_BRACKET : CLOSE_BRACE,
          );
          this.#expect(CLOSERS[text]!);
          break;
        case "}":
        case ")":
        case "]":
        case ";":
        case "in":
        case "inherit":
        case "=":
          throw this.#unexpected();
        default:
          this.#i++;
      }
      first = false;
    }
  }

  /** Whether the `{` at the cursor opens a lambda's formals rather than a set. */
  #isPattern(): boolean {
    const next = this.#code[this.#i + 1];
    const nextText = symbol(next);
    const afterClose = (): boolean => {
      const after = symbol(this.#code[this.#match.get(this.#i)! + 1]);
      return after === ":" || after === "@";
    };
    if (nextText === "}") return afterClose();
    if (nextText === "...") return true;
    if (next?.kind !== "identifier" || NIX_KEYWORDS.has(next.text)) return false;
    const third = symbol(this.#code[this.#i + 2]);
    return third === "," || third === "?" || (third === "}" && afterClose());
  }

  #pattern(): void {
    this.#i++;
    for (;;) {
      const token = this.#code[this.#i];
      const text = symbol(token);
      if (text === "}") break;
      if (text === "," || text === "...") this.#i++;
      else if (token?.kind === "identifier") {
        this.#i++;
        if (symbol(this.#code[this.#i]) === "?") {
          this.#i++;
          this.expression(null, PATTERN_END);
        }
      } else throw this.#unexpected();
    }
    this.#i++;
  }

  #set(open: number, path: NixAttrPath | null): void {
    const block: NixBlock = {
      kind: "set",
      path: path ?? [],
      open: this.#code[open]!,
      close: this.#code[this.#match.get(open)!]!,
      bindings: [],
    };
    if (path !== null) this.result.sets.push(block);
    this.#i = open + 1;
    this.#bindings(block, path === null ? null : block, "}");
    this.#expect("}");
  }

  #let(): void {
    const open = this.#code[this.#i]!;
    this.#i++;
    const block: NixBlock = { kind: "let", path: [], open, close: open, bindings: [] };
    this.#bindings(block, block, "in");
    block.close = this.#code[this.#i]!;
    this.#expect("in");
  }

  /** Scans bindings up to `end`; `named` is null inside an anonymous set. */
  #bindings(block: NixBlock, named: NixBlock | null, end: string): void {
    for (;;) {
      const token = this.#code[this.#i];
      const text = symbol(token);
      if (text === end) return;
      if (token === undefined) throw this.#unexpected();
      if (text === "inherit") {
        // Inheriting copies a value from elsewhere: there is no literal here to
        // edit, but the editor must know the name is bound (see flake_edit.ts).
        const inherit: NixInherit = { block, first: token, from: false, names: [] };
        this.#i++;
        if (symbol(this.#code[this.#i]) === "(") {
          inherit.from = true;
          this.#i++;
          this.expression(null, CLOSE_PAREN);
          this.#expect(")");
        }
        while (symbol(this.#code[this.#i]) !== ";") {
          const name = this.#code[this.#i];
          if (name === undefined) throw this.#unexpected();
          inherit.names.push(
            name.kind === "identifier"
              ? name.text
              : name.kind === "string"
              ? name.value ?? null
              : null,
          );
          this.#i++;
        }
        this.#i++;
        if (named !== null) this.result.inherits.push(inherit);
        continue;
      }
      const written: NixAttrPath = [];
      const ranges: { start: number; end: number }[] = [];
      for (;;) {
        const part = this.#code[this.#i];
        if (part === undefined) throw this.#unexpected();
        if (part.kind === "identifier" && (!NIX_KEYWORDS.has(part.text) || part.text === "or")) {
          written.push(part.text);
          this.#i++;
        } else if (part.kind === "string") {
          written.push(part.value ?? null);
          this.#i++;
        } else if (part.kind === "punctuation" && part.text === "${") {
          this.#i++;
          this.expression(null, CLOSE_BRACE);
          this.#expect("}");
          written.push(null);
        } else throw this.#unexpected();
        ranges.push({ start: part.start, end: this.#code[this.#i - 1]!.end });
        if (symbol(this.#code[this.#i]) !== ".") break;
        this.#i++;
      }
      this.#expect("=");
      const path = named === null ? null : [...named.path, ...written];
      const valueStart = this.#i;
      this.expression(path, SEMICOLON);
      const semicolon = this.#code[this.#i]!;
      this.#expect(";");
      if (path !== null) {
        const binding: NixBinding = {
          path,
          written: ranges,
          value: this.#code.slice(valueStart, this.#i - 1),
          semicolon,
          first: token,
          block,
        };
        block.bindings.push(binding);
        this.result.bindings.push(binding);
      }
    }
  }

  #expect(text: string): void {
    if (symbol(this.#code[this.#i]) !== text) throw this.#unexpected(`"${text}"`);
    this.#i++;
  }

  #unexpected(expected?: string): SyntaxError {
    const token = this.#code[this.#i];
    const found = token === undefined ? "end of file" : `"${token.text.slice(0, 40)}"`;
    const where = token === undefined ? "" : ` at line ${token.line}`;
    return new SyntaxError(
      `unexpected ${found}${where}${expected === undefined ? "" : `, expected ${expected}`}`,
    );
  }
}
