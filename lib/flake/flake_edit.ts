/**
 * Surgical edits of string and `null` bindings in a Nix file (the registry in
 * flake.nix): a binding is found by its attribute path (see
 * {@linkcode scanBindings}), must exist exactly once, and only the bytes of
 * its value literal change. Values are validated by what the path names
 * (versions, hashes, URLs), and nothing that would need escaping in a Nix
 * string is ever written.
 *
 * @module
 */

import { displayText } from "../cli/display.ts";
import { hashEquals, parseHash, parseSri } from "../hash/hash.ts";
import {
  type NixAttrPath,
  type NixBinding,
  type NixBindings,
  type NixBlock,
  scanBindings,
} from "./nix_bindings.ts";
import { lineAt, NIX_KEYWORDS, type NixToken } from "./nix_lexer.ts";
import { parseVersion } from "../releases/versions.ts";

/** One requested edit: set the binding at `path` to a string or `null`. */
export interface BindingEdit {
  /** An attribute path: `nightly.version`, `nightly.srcHashes."gfx110X-all"`, `version`. */
  path: string;
  /** The new value. */
  value: string | null;
}

/** One change {@linkcode applyEdits} made. */
export interface BindingChange {
  /** The path, as given in the edit. */
  path: string;
  /** 1-based line of the value in the new text. */
  line: number;
  /** The value before; `undefined` when the key was added. */
  oldValue: string | null | undefined;
  /** The value after. */
  newValue: string | null;
}

/** The result of {@linkcode applyEdits}. */
export interface EditResult {
  /** The new source text (the input itself when nothing changed). */
  text: string;
  /** The changes made, in the order of the edits; empty when nothing changed. */
  changes: BindingChange[];
}

/** Options for {@linkcode readBinding}, {@linkcode listAttrNames} and {@linkcode applyEdits}. */
export interface FlakeEditOptions {
  /**
   * The file name used in error messages.
   *
   * @default {"flake.nix"}
   */
  file?: string;
  /**
   * Whether {@linkcode applyEdits} may add a missing key under an existing
   * attribute set (a new target under `srcHashes`). Off, a missing path is
   * refused, so a misspelt path can never slip into the file as a new key.
   *
   * @default {false}
   */
  addMissing?: boolean;
}

/**
 * Thrown when an attribute path is bound more than once, so an edit cannot
 * know which binding is meant.
 */
export class AmbiguousBindingError extends Error {
  /** The attribute path. */
  readonly path: string;
  /** The 1-based line of every candidate binding. */
  readonly lines: number[];

  /**
   * Creates the error.
   *
   * @param path The attribute path.
   * @param lines The lines of the candidates.
   * @param options The file name for the message.
   */
  constructor(path: string, lines: number[], options: FlakeEditOptions = {}) {
    super(
      `Cannot rewrite "${path}" in ${options.file ?? "flake.nix"}: found ${lines.length} ` +
        `bindings (lines ${lines.join(", ")})`,
    );
    this.name = "AmbiguousBindingError";
    this.path = path;
    this.lines = lines;
  }
}

/** Thrown when an attribute path is bound nowhere (and cannot be added). */
export class MissingBindingError extends Error {
  /** The attribute path. */
  readonly path: string;
  /** The longest prefix of the path that is bound, when there is one. */
  readonly nearest: string | undefined;

  /**
   * Creates the error.
   *
   * @param path The attribute path.
   * @param nearest The longest bound prefix.
   * @param options The file name for the message, and a detail replacing the default one.
   */
  constructor(
    path: string,
    nearest: string | undefined,
    options: FlakeEditOptions & { detail?: string } = {},
  ) {
    const detail = options.detail ??
      (nearest === undefined
        ? "no binding has this path or any prefix of it"
        : `no such binding (nearest existing: "${nearest}")`);
    super(`Cannot rewrite "${path}" in ${options.file ?? "flake.nix"}: ${detail}`);
    this.name = "MissingBindingError";
    this.path = path;
    this.nearest = nearest;
  }
}

/**
 * Parses an attribute path as written on a command line. Components are Nix
 * identifiers or double-quoted names without `"`, `\`, `${` or control
 * characters.
 *
 * @example Usage
 * ```ts
 * import { parseAttrPath } from "./flake_edit.ts";
 *
 * parseAttrPath('nightly.srcHashes."gfx110X-all"'); // ["nightly", "srcHashes", "gfx110X-all"]
 * ```
 *
 * @param text The path.
 * @returns Its components.
 * @throws {SyntaxError} When `text` is not an attribute path.
 */
export function parseAttrPath(text: string): string[] {
  const component = /"([^"\\]*)"|([a-zA-Z_][a-zA-Z0-9_'-]*)/y;
  const parts: string[] = [];
  let pos = 0;
  for (;;) {
    component.lastIndex = pos;
    const match = component.exec(text);
    const name = match?.[1] ?? match?.[2];
    if (match === null || name === undefined || name === "" || !isSafeString(name)) {
      throw new SyntaxError(
        `Cannot parse attribute path "${text}": expected a name or "quoted name" at offset ${pos}`,
      );
    }
    parts.push(name);
    pos += match[0].length;
    if (pos === text.length) return parts;
    if (text[pos] !== ".") {
      throw new SyntaxError(`Cannot parse attribute path "${text}": expected "." at offset ${pos}`);
    }
    pos++;
  }
}

/**
 * Reads the value of a string or `null` binding.
 *
 * @example Usage
 * ```ts
 * import { readBinding } from "./flake_edit.ts";
 *
 * readBinding('{ nightly = { version = "7.12.0a20260308"; }; }', "nightly.version"); // "7.12.0a20260308"
 * ```
 *
 * @param source Nix source text.
 * @param path The attribute path.
 * @param options The file name for messages.
 * @returns The string, or `null` for a `null` literal.
 * @throws {AmbiguousBindingError} When the path is bound more than once.
 * @throws {MissingBindingError} When the path is not bound.
 * @throws {TypeError} When the value is not a plain string literal or `null`.
 * @throws {SyntaxError} When the source or the path does not parse.
 */
export function readBinding(
  source: string,
  path: string,
  options: FlakeEditOptions = {},
): string | null {
  const file = options.file ?? "flake.nix";
  const target = parseAttrPath(path);
  const { bindings } = scan(source, file);
  const binding = single(bindings, target, path, file);
  if (binding === undefined) throw missing(bindings, target, path, file);
  return literal(binding, path, file).value;
}

/**
 * Lists the attribute names of a set binding, e.g. the tracked targets under
 * `nightly.srcHashes`, in source order. Names written with dotted paths
 * elsewhere (`nightly.srcHashes.x = …;`) count too.
 *
 * @example Usage
 * ```ts
 * import { listAttrNames } from "./flake_edit.ts";
 *
 * listAttrNames('{ s = { a = null; "b-c" = "x"; }; }', "s"); // ["a", "b-c"]
 * ```
 *
 * @param source Nix source text.
 * @param path The attribute path of the set.
 * @param options The file name for messages.
 * @returns The names.
 * @throws {AmbiguousBindingError} When the path is bound more than once.
 * @throws {MissingBindingError} When the path is not bound.
 * @throws {TypeError} When the value is not an attribute set literal.
 * @throws {SyntaxError} When the source or the path does not parse.
 */
export function listAttrNames(
  source: string,
  path: string,
  options: FlakeEditOptions = {},
): string[] {
  const file = options.file ?? "flake.nix";
  const target = parseAttrPath(path);
  const { bindings, sets } = scan(source, file);
  const binding = single(bindings, target, path, file);
  const isSet = sets.some((set) => samePath(set.path, target));
  if (binding !== undefined && !isSet) {
    throw new TypeError(
      `Cannot list "${path}" in ${file}: the value at line ${binding.first.line} is not an attribute set`,
    );
  }
  const names: string[] = [];
  for (const b of bindings) {
    const name = b.path[target.length];
    if (b.path.length > target.length && startsWith(b.path, target) && typeof name === "string") {
      if (!names.includes(name)) names.push(name);
    }
  }
  if (binding === undefined && !isSet && names.length === 0) {
    throw missing(bindings, target, path, file);
  }
  return names;
}

/**
 * Reads a list of string literals (`mirrors = [ "https://…/" ];`).
 *
 * @example Usage
 * ```ts
 * import { readStringList } from "./flake_edit.ts";
 *
 * readStringList('{ n = { skip = [ "7.14.0a20260609" ]; }; }', "n.skip"); // ["7.14.0a20260609"]
 * readStringList("{ n = { }; }", "n.skip"); // undefined
 * ```
 *
 * @param source Nix source text.
 * @param path The attribute path of the list.
 * @param options The file name for messages.
 * @returns The strings, or `undefined` when the path is not bound.
 * @throws {AmbiguousBindingError} When the path is bound more than once.
 * @throws {TypeError} When the value is not a list of plain string literals.
 * @throws {SyntaxError} When the source or the path does not parse.
 */
export function readStringList(
  source: string,
  path: string,
  options: FlakeEditOptions = {},
): string[] | undefined {
  const file = options.file ?? "flake.nix";
  const binding = single(scan(source, file).bindings, parseAttrPath(path), path, file);
  return binding === undefined ? undefined : stringList(binding, path, file).values;
}

/**
 * Appends strings to a list of string literals, leaving every other byte as
 * it was; a value already in the list is not added again. A missing list is
 * added as a new binding of its parent set when `addMissing` is set. The
 * elements of a list named `skip` must be TheRock versions.
 *
 * @example Usage
 * ```ts
 * import { appendToList } from "./flake_edit.ts";
 *
 * appendToList('{ n = { skip = [ ]; }; }', "n.skip", ["7.14.0a20260609"]).text;
 * // '{ n = { skip = [ "7.14.0a20260609" ]; }; }'
 * ```
 *
 * @param source Nix source text.
 * @param path The attribute path of the list.
 * @param values The strings to append.
 * @param options The file name for messages, and whether a missing list may be added.
 * @returns The new text and one change per value added.
 * @throws {AmbiguousBindingError} When the path is bound more than once.
 * @throws {MissingBindingError} When the list is missing and cannot be added.
 * @throws {TypeError} When the value is not a list of plain strings, or a
 * value cannot be written as a plain Nix string.
 * @throws {SyntaxError} When the source or path does not parse, or a `skip`
 * value is not a version.
 */
export function appendToList(
  source: string,
  path: string,
  values: string[],
  options: FlakeEditOptions = {},
): EditResult {
  const file = options.file ?? "flake.nix";
  const target = parseAttrPath(path);
  for (const value of values) {
    if (typeof value !== "string" || !isSafeString(value)) {
      throw new TypeError(
        `Cannot add ${
          JSON.stringify(value)
        } to "${path}" in ${file}: a value may not contain ", \\, \${ or control characters`,
      );
    }
    if (target.at(-1) === "skip") parseVersion(value);
  }
  const scanned = scan(source, file);
  const { bindings, sets } = scanned;
  checkPlainForms(source, scanned, [target[0]!], { file });
  const binding = single(bindings, target, path, file);
  const existing = binding === undefined ? [] : stringList(binding, path, file).values;
  const added = [...new Set(values)].filter((value) => !existing.includes(value));
  if (added.length === 0) return { text: source, changes: [] };
  const rendered = added.map(render).join(" ");
  let offset: number;
  let insert: string;
  if (binding === undefined) {
    if (!options.addMissing) throw missing(bindings, target, path, file);
    const at = insertion(source, bindings, sets, target, path, file);
    offset = at.offset;
    insert = `${at.before}${at.attrs}${quoteName(target.at(-1)!)} = [ ${rendered} ];${at.after}`;
  } else {
    const close = stringList(binding, path, file).close;
    const lineStart = source.lastIndexOf("\n", close.start - 1) + 1;
    const before = source.slice(lineStart, close.start);
    const last = binding.value.at(-2)!;
    if (/^[ \t]*$/.test(before) && last.text !== "[") {
      // `]` on its own line: a new line with the last element's indentation.
      offset = lineStart;
      const eol = source.slice(lineStart - 2, lineStart) === "\r\n" ? "\r\n" : "\n";
      insert = `${indentOf(source, last.start)}${rendered}${eol}`;
    } else {
      offset = close.start;
      const space = /\s/.test(source[close.start - 1] ?? "");
      insert = last.text === "[" && !space
        ? ` ${rendered} `
        : space
        ? `${rendered} `
        : ` ${rendered}`;
    }
  }
  const text = source.slice(0, offset) + insert + source.slice(offset);
  const line = lineAt(text, offset + insert.search(/"/));
  return {
    text,
    changes: added.map((value) => ({ path, line, oldValue: undefined, newValue: value })),
  };
}

function stringList(
  binding: NixBinding,
  path: string,
  file: string,
): { values: string[]; close: NixToken } {
  const tokens = binding.value;
  const open = tokens[0];
  const close = tokens.at(-1);
  const items = tokens.slice(1, -1);
  if (
    open?.text !== "[" || close?.text !== "]" || tokens.length < 2 ||
    !items.every((t) => t.kind === "string" && t.value !== undefined)
  ) {
    throw new TypeError(
      `Cannot read "${path}" in ${file}: the value at line ${binding.first.line} is not a ` +
        "list of string literals",
    );
  }
  return { values: items.map((t) => t.value!), close };
}

/**
 * Applies edits to Nix source, all or nothing: every value is validated and
 * every binding found before any change is made, and an error leaves nothing
 * half-done. Each value literal is replaced by the new one and every other
 * character stays as it was. A missing key under an existing set is added as a
 * new line after the set's last binding, with that binding's indentation and
 * line ending; a key whose parent set is missing too is added as a dotted
 * binding (`versions.gfx1151 = …;`) after the last binding of the set above.
 *
 * Values are checked by what the path's last component names: `version`,
 * `…Version` or a child of `versions` must be a TheRock version (a child of
 * `versions` may be `null`: the channel's version); `…hash…`/`…Hash…` or a child of
 * `srcHashes` must be SRI (`sha256-<base64>`) or `null`; `baseUrl` must be an
 * http(s) URL ending in `/` and `url` an http(s) URL. No string may contain
 * `"`, `\`, `${` or control characters. A hash equal to the current one by its
 * decoded bytes is not a change.
 *
 * @example Usage
 * ```ts
 * import { applyEdits } from "./flake_edit.ts";
 *
 * const source = 'let nightly = { version = "7.12.0a20260308"; }; in nightly\n';
 * const { text, changes } = applyEdits(source, [{ path: "nightly.version", value: "7.12.0a20260309" }]);
 * text; // 'let nightly = { version = "7.12.0a20260309"; }; in nightly\n'
 * changes[0]?.oldValue; // "7.12.0a20260308"
 * ```
 *
 * @param source Nix source text.
 * @param edits The edits; a path may appear once.
 * @param options The file name for messages.
 * @returns The new text and the changes made.
 * @throws {AmbiguousBindingError} When a path is bound more than once.
 * @throws {MissingBindingError} When a path is not bound and cannot be added.
 * @throws {SyntaxError} When the source or a path does not parse, or a value
 * is not a version/hash/URL of the form its path requires.
 * @throws {TypeError} When a value contains characters that cannot be written
 * as a plain Nix string, an existing value is not a string literal or `null`,
 * or a path is edited twice.
 */
export function applyEdits(
  source: string,
  edits: BindingEdit[],
  options: FlakeEditOptions = {},
): EditResult {
  const file = options.file ?? "flake.nix";
  const targets = edits.map((edit) => {
    const target = parseAttrPath(edit.path);
    validateValue(target, edit, file);
    return target;
  });
  edits.forEach((edit, index) => {
    const twice = targets.findIndex((t) => samePath(t, targets[index]!));
    if (twice !== index) {
      throw new TypeError(`Cannot rewrite "${edit.path}" in ${file}: the path is edited twice`);
    }
  });
  const scanned = scan(source, file);
  const { bindings, sets } = scanned;
  checkPlainForms(source, scanned, [...new Set(targets.map((t) => t[0]!))], { file });

  interface Splice {
    start: number;
    end: number;
    text: string;
    change: BindingChange;
  }
  const splices: Splice[] = [];
  edits.forEach((edit, index) => {
    const target = targets[index]!;
    const binding = single(bindings, target, edit.path, file);
    const change = { path: edit.path, line: 0, newValue: edit.value };
    if (binding !== undefined) {
      const { token, value } = literal(binding, edit.path, file);
      if (sameValue(target, value, edit.value)) return;
      requireSri(target, edit, file);
      splices.push({
        start: token.start,
        end: token.end,
        text: render(edit.value),
        change: { ...change, oldValue: value },
      });
      return;
    }
    // Only dotted bindings below the path (`a.b.c = …;` for `a.b`): it is a set.
    const child = bindings.find((b) => b.path.length > target.length && startsWith(b.path, target));
    if (child !== undefined) {
      throw new TypeError(
        `Cannot rewrite "${edit.path}" in ${file}: it is an attribute set (line ${child.first.line})`,
      );
    }
    if (!options.addMissing) throw missing(bindings, target, edit.path, file);
    requireSri(target, edit, file);
    const at = insertion(source, bindings, sets, target, edit.path, file);
    splices.push({
      start: at.offset,
      end: at.offset,
      text: `${at.before}${at.attrs}${quoteName(target.at(-1)!)} = ${
        render(edit.value)
      };${at.after}`,
      change: { ...change, oldValue: undefined },
    });
  });

  // Splice from the end so earlier offsets stay valid; equal offsets keep edit order.
  let text = source;
  const ordered = splices.map((s, order) => ({ ...s, order }))
    .sort((a, b) => b.start - a.start || b.order - a.order);
  for (const s of ordered) text = text.slice(0, s.start) + s.text + text.slice(s.end);
  // Lines in the new text: count what was inserted before each splice.
  const byStart = [...ordered].reverse();
  let shift = 0;
  for (const s of byStart) {
    // An added line starts at its splice (after a line ending), or is inline there.
    s.change.line = lineAt(text, s.start + shift);
    shift += s.text.length - (s.end - s.start);
  }
  return { text, changes: splices.map((s) => s.change) };
}

function scan(source: string, file: string): NixBindings {
  try {
    return scanBindings(source);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw new SyntaxError(`Cannot parse ${file}: ${error.message}`);
  }
}

function samePath(a: NixAttrPath, b: NixAttrPath): boolean {
  return a.length === b.length && startsWith(a, b);
}

function startsWith(path: NixAttrPath, prefix: NixAttrPath): boolean {
  // A dynamic component (null) matches nothing: its name is unknown until evaluation.
  return prefix.every((part, i) => part !== null && path[i] === part);
}

function single(
  bindings: NixBinding[],
  target: string[],
  path: string,
  file: string,
): NixBinding | undefined {
  const found = bindings.filter((b) => samePath(b.path, target));
  if (found.length > 1) {
    throw new AmbiguousBindingError(path, found.map((b) => b.first.line), { file });
  }
  return found[0];
}

function missing(
  bindings: NixBinding[],
  target: string[],
  path: string,
  file: string,
): MissingBindingError {
  for (let length = target.length - 1; length > 0; length--) {
    const prefix = target.slice(0, length);
    if (bindings.some((b) => startsWith(b.path, prefix))) {
      return new MissingBindingError(path, prefix.map(quoteName).join("."), { file });
    }
  }
  return new MissingBindingError(path, undefined, { file });
}

function literal(
  binding: NixBinding,
  path: string,
  file: string,
): { token: NixToken; value: string | null } {
  const [token, ...rest] = binding.value;
  if (token !== undefined && rest.length === 0) {
    if (token.kind === "identifier" && token.text === "null") return { token, value: null };
    if (token.kind === "string" && token.value !== undefined) return { token, value: token.value };
  }
  throw new TypeError(
    `Cannot rewrite "${path}" in ${file}: the value at line ${binding.first.line} is not a ` +
      `string literal or null`,
  );
}

/** Where and how to add a missing key: after the last binding of its parent set. */
function insertion(
  source: string,
  bindings: NixBinding[],
  sets: NixBlock[],
  target: string[],
  path: string,
  file: string,
): { offset: number; before: string; attrs: string; after: string } {
  const parent = target.slice(0, -1);
  if (parent.length === 0) throw missing(bindings, target, path, file);
  // Adding a key rewrites its parent set: name that set when it is ambiguous.
  const parentText = parent.map(quoteName).join(".");
  const parentSets = sets.filter((set) => samePath(set.path, parent));
  if (parentSets.length > 1) {
    throw new AmbiguousBindingError(parentText, parentSets.map((set) => set.open.line), { file });
  }
  const set = parentSets[0];
  if (set !== undefined) {
    const last = set.bindings.at(-1);
    if (last !== undefined) return after(source, last, "");
    // An empty set: the new key goes right after `{`, on its own line if `}` is on another.
    const eol = lineEnding(source, set.open.end);
    if (eol === undefined || set.close.line === set.open.line) {
      return { offset: set.open.end, before: " ", attrs: "", after: "" };
    }
    return {
      offset: eol.offset,
      before: `${indentOf(source, set.open.start)}  `,
      attrs: "",
      after: eol.text,
    };
  }
  // No set literal: add beside the dotted siblings (`a.b.x = …;` → `a.b.<new> = …;`).
  const siblings = bindings.filter((b) =>
    b.path.length > parent.length && startsWith(b.path, parent) &&
    b.block.path.length < parent.length
  );
  const last = siblings.at(-1);
  if (last === undefined) {
    const bound = bindings.find((b) => samePath(b.path, parent));
    // No parent at all (a channel's first `versions` entry): a dotted binding
    // (`versions.gfx1151 = …;`) after the last binding of the grandparent set.
    const outer = sets.filter((set) => samePath(set.path, parent.slice(0, -1)));
    const outerLast = outer.length === 1 ? outer[0]!.bindings.at(-1) : undefined;
    if (bound === undefined && parent.length > 1 && outerLast !== undefined) {
      return after(source, outerLast, `${quoteName(parent.at(-1)!)}.`);
    }
    throw bound === undefined
      ? missing(bindings, target, path, file)
      : new MissingBindingError(path, parentText, {
        file,
        detail: `cannot add a key: the value at line ${bound.first.line} is not an attribute set`,
      });
  }
  if (siblings.some((b) => b.block !== last.block)) {
    throw new AmbiguousBindingError(parentText, siblings.map((b) => b.first.line), { file });
  }
  const range = last.written[parent.length - last.block.path.length - 1]!;
  return after(source, last, `${source.slice(last.written[0]!.start, range.end)}.`);
}

/** After `binding`'s line when it ends the line, else right after its `;`. */
function after(
  source: string,
  binding: NixBinding,
  attrs: string,
): { offset: number; before: string; attrs: string; after: string } {
  const eol = lineEnding(source, binding.semicolon.end);
  const indent = indentOf(source, binding.first.start);
  if (
    eol === undefined ||
    source.slice(source.lastIndexOf("\n", binding.first.start) + 1, binding.first.start) !== indent
  ) {
    return { offset: binding.semicolon.end, before: " ", attrs, after: "" };
  }
  return { offset: eol.offset, before: indent, attrs, after: eol.text };
}

/** The line ending after `offset` when only blanks and a comment come before it. */
function lineEnding(source: string, offset: number): { offset: number; text: string } | undefined {
  const rest = /[ \t]*(?:#[^\r\n]*|\/\*(?:(?!\*\/)[^\r\n])*\*\/[ \t]*)?(\r?\n)/y;
  rest.lastIndex = offset;
  const match = rest.exec(source);
  if (match === null) return undefined;
  return { offset: offset + match[0].length, text: match[1]! };
}

function indentOf(source: string, offset: number): string {
  const lineStart = source.lastIndexOf("\n", offset - 1) + 1;
  return /^[ \t]*/.exec(source.slice(lineStart))![0];
}

function render(value: string | null): string {
  return value === null ? "null" : `"${value}"`;
}

function quoteName(name: string): string {
  return /^[a-zA-Z_][a-zA-Z0-9_'-]*$/.test(name) && !NIX_KEYWORDS.has(name) ? name : `"${name}"`;
}

function isSafeString(text: string): boolean {
  // C0, DEL and C1 (U+0080–U+009F) controls: none belongs in a flake value.
  // deno-lint-ignore no-control-regex
  return !/["\\\x00-\x1f\x7f-\x9f]|\$\{/.test(text);
}

type ValueKind = "version" | "hash" | "baseUrl" | "url" | "string";

function valueKind(target: string[]): ValueKind {
  const last = target.at(-1)!;
  if (last === "version" || last.endsWith("Version") || target.at(-2) === "versions") {
    return "version";
  }
  if (/hash/i.test(last) || target.at(-2) === "srcHashes") return "hash";
  if (last === "baseUrl") return "baseUrl";
  if (last === "url") return "url";
  return "string";
}

function validateValue(target: string[], edit: BindingEdit, file: string): void {
  const { path, value } = edit;
  const kind = valueKind(target);
  const refuse = (detail: string, ErrorClass: ErrorConstructor = SyntaxError): never => {
    throw new ErrorClass(
      `Cannot set "${path}" in ${file} to ${displayText(JSON.stringify(value))}: ${detail}`,
    );
  };
  if (value === null) {
    // A per-target version (`versions.<target>`) may be null: the channel's version.
    if (kind === "version" && target.at(-2) === "versions") return;
    if (kind === "version" || kind === "baseUrl" || kind === "url") {
      refuse(`a ${kind} cannot be null`);
    }
    return;
  }
  if (typeof value !== "string") refuse("expected a string or null", TypeError);
  if (!isSafeString(value)) {
    refuse('a value may not contain ", \\, ${ or control characters', TypeError);
  }
  try {
    if (kind === "version") parseVersion(value);
    // Any Nix spelling parses here; one that is not SRI is only accepted when
    // it equals the current value (no change), see requireSri.
    if (kind === "hash" && !parsesAsHash(value)) parseSri(value);
  } catch (error) {
    refuse(error instanceof Error ? error.message : String(error));
  }
  if (kind === "baseUrl" || kind === "url") {
    const url = URL.parse(value);
    if (url === null || (url.protocol !== "https:" && url.protocol !== "http:")) {
      refuse("expected an http(s) URL");
    }
    if (kind === "baseUrl") checkBaseUrl(value, url!, refuse);
  }
}

/**
 * A base URL as strict as lib/releases/tarball_name.ts's folderUrl: Nix builds each
 * tarball URL as `baseUrl + name`, so credentials, a query or a fragment
 * would swallow the name, and a character that a URL must escape (a space, a
 * non-ASCII letter) would make that URL differ from the one hashed.
 */
function checkBaseUrl(value: string, url: URL, refuse: (detail: string) => never): void {
  if (url.username !== "" || url.password !== "") refuse("a base URL has no credentials");
  if (value.includes("?") || value.includes("#")) refuse("a base URL has no query or fragment");
  if (url.href !== value) {
    refuse(`a base URL must be written as the URL it means ("${url.href}"): nothing escaped`);
  }
  if (!value.endsWith("/")) refuse('a base URL must end with "/"');
}

function parsesAsHash(text: string): boolean {
  try {
    parseHash(text);
    return true;
  } catch {
    return false;
  }
}

/** A hash that is a change must be written in SRI form, which Nix's fetchurl takes. */
function requireSri(target: string[], edit: BindingEdit, file: string): void {
  if (valueKind(target) !== "hash" || edit.value === null) return;
  try {
    parseSri(edit.value);
  } catch (error) {
    throw new SyntaxError(
      `Cannot set "${edit.path}" in ${file} to ${JSON.stringify(edit.value)}: ${
        (error as Error).message
      } (another spelling is only accepted when it equals the current hash)`,
    );
  }
}

function sameValue(target: string[], oldValue: string | null, newValue: string | null): boolean {
  if (oldValue === newValue) return true;
  if (oldValue === null || newValue === null || valueKind(target) !== "hash") return false;
  try {
    return hashEquals(parseHash(oldValue), parseHash(newValue));
  } catch {
    return false;
  }
}

/**
 * Thrown when a binding the editor would have to see is written in a form it
 * cannot rewrite (`inherit`, a dynamic name, `rec`, `let … in`, `//`,
 * `import`, `with`, a variable…): editing around it could move a version
 * while a hash it cannot see stays behind.
 */
export class UnsupportedFormError extends Error {
  /** The 1-based line of the binding. */
  readonly line: number;
  /** The binding's attribute path as written (`nightly.srcHashes.${"gfx1151"}`). */
  readonly path: string;
  /** The form, e.g. `inherit`, `rec`, `//`. */
  readonly form: string;

  /**
   * Creates the error.
   *
   * @param line The line of the binding.
   * @param path The attribute path as written.
   * @param form The form (`inherit`, `an interpolated name`, …).
   * @param options The file name, the action refused (default "rewrite") and
   * how to write the binding instead.
   */
  constructor(
    line: number,
    path: string,
    form: string,
    options: FlakeEditOptions & { action?: string; advice?: string } = {},
  ) {
    super(
      `Cannot ${options.action ?? "rewrite"} ${options.file ?? "flake.nix"}: line ${line} binds ` +
        `"${path}" with ${form}, which this editor cannot rewrite` +
        (options.advice === undefined ? "" : `; ${options.advice}`),
    );
    this.name = "UnsupportedFormError";
    this.line = line;
    this.path = path;
    this.form = form;
  }
}

/** Options for {@linkcode requirePlainForms}. */
export interface PlainFormOptions extends FlakeEditOptions {
  /**
   * The verb of the error message: `Cannot <action> flake.nix: …`.
   *
   * @default {"rewrite"}
   */
  action?: string;
}

/**
 * Checks that everything bound under the given top-level names (the
 * registry's channel sets, or the first component of each path an edit
 * touches) is written in the plain form this editor reads and rewrites, so
 * that no binding there is invisible to it. Plain means:
 *
 * - each name is an identifier or a double-quoted string without `${…}`;
 *   dotted paths (`srcHashes.gfx1151 = …;`) are plain;
 * - each value is a string literal without `${…}`, `null`, `true`, `false`,
 *   a number, a list of those, or an attribute set literal (not `rec`) whose
 *   bindings are plain in turn;
 * - each path is bound once (sets may be split, as Nix merges them), and a
 *   top-level name is bound in one scope only.
 *
 * Refused: `inherit` and `inherit (…)` (of a top-level name, or anywhere
 * inside), an interpolated name (`${"gfx1151"} = …`, `"gfx${x}" = …`), `rec`,
 * `let … in`, `with`, `//`, `import`, a variable and any other expression as a
 * value. Comments, whitespace, attribute order and escapes in strings are
 * free.
 *
 * @example Usage
 * ```ts
 * import { requirePlainForms, UnsupportedFormError } from "./flake_edit.ts";
 *
 * requirePlainForms('{ nightly = { version = "7.12.0a20260308"; }; }', ["nightly"]); // fine
 * try {
 *   requirePlainForms('let v = "1"; in { nightly = { srcHashes = { inherit v; }; }; }', ["nightly"]);
 * } catch (error) {
 *   (error as UnsupportedFormError).form; // "inherit"
 * }
 * ```
 *
 * @param source Nix source text.
 * @param roots The top-level names to check (`nightly`, `stable`, …).
 * @param options The file name and the verb for messages.
 * @throws {UnsupportedFormError} For the first binding (in source order) in a
 * form the editor cannot rewrite.
 * @throws {AmbiguousBindingError} When a path is bound twice, or a top-level
 * name in two scopes.
 * @throws {SyntaxError} When the source does not parse.
 */
export function requirePlainForms(
  source: string,
  roots: readonly string[],
  options: PlainFormOptions = {},
): void {
  const file = options.file ?? "flake.nix";
  const scanned = scan(source, file);
  checkPlainForms(source, scanned, roots, { ...options, file });
}

function checkPlainForms(
  source: string,
  { bindings, inherits, sets }: NixBindings,
  roots: readonly string[],
  options: PlainFormOptions & { file: string },
): void {
  const inRoots = (path: NixAttrPath): boolean =>
    typeof path[0] === "string" && roots.includes(path[0]);
  const ours = bindings.filter((b) => inRoots(b.path));
  const wholeSet = (b: NixBinding): boolean =>
    sets.some((set) => set.open === b.value[0] && set.close === b.value.at(-1));

  // A path bound twice (Nix merges only set literals), or a name in two scopes.
  const byPath = new Map<string, NixBinding[]>();
  for (const b of ours) {
    if (b.path.includes(null)) continue;
    const key = JSON.stringify(b.path);
    byPath.set(key, [...byPath.get(key) ?? [], b]);
  }
  for (const found of byPath.values()) {
    if (found.length > 1 && !found.every(wholeSet)) {
      throw new AmbiguousBindingError(
        found[0]!.path.map((p) => quoteName(p!)).join("."),
        found.map((b) => b.first.line),
        options,
      );
    }
  }
  for (const root of roots) {
    const top = ours.filter((b) => b.path[0] === root && b.block.path.length === 0);
    const scopes = [...new Set(top.map((b) => b.block))];
    if (scopes.length > 1) {
      const lines = scopes.map((block) => top.find((b) => b.block === block)!.first.line);
      throw new AmbiguousBindingError(quoteName(root), lines, options);
    }
  }

  const problems: { at: NixToken; path: string; form: string; advice: string }[] = [];
  const written = (b: NixBinding): string =>
    [
      ...b.block.path.map((p) => p === null ? "${…}" : quoteName(p)),
      ...b.written.map((r) => source.slice(r.start, r.end)),
    ].join(".");
  for (const inherit of inherits) {
    const path = inherit.block.path;
    inherit.names.forEach((name) => {
      const full = [...path, name];
      if (!inRoots(full) && !(path.length === 0 && name === null)) return;
      // `{ inherit nightly; }` after `let nightly = { … }; in`: the value is one the editor sees.
      const seen = path.length === 0 && !inherit.from &&
        ours.some((b) => b.path[0] === name && b.block !== inherit.block);
      if (seen) return;
      const shown = full.map((p) => p === null ? "${…}" : quoteName(p)).join(".");
      problems.push({
        at: inherit.first,
        path: shown,
        form: inherit.from ? "inherit (…)" : "inherit",
        advice: `write it as ${quoteName(name ?? "name")} = …; with its value in place`,
      });
    });
  }
  for (const b of bindings) {
    const dynamic = b.path.indexOf(null);
    // A dynamic top-level name may be any root; below a root it may be any key.
    if (dynamic === -1 || (dynamic > 0 && !inRoots(b.path))) continue;
    if (b.block.path.includes(null)) continue; // reported at its own binding
    const range = b.written[dynamic - b.block.path.length]!;
    problems.push({
      at: b.first,
      path: written(b),
      form: source[range.start] === '"' ? "a quoted name holding ${…}" : "an interpolated name",
      advice: 'write the name without ${…} (gfx1151 or "gfx1151")',
    });
  }
  for (const b of ours) {
    if (b.path.includes(null)) continue;
    const form = valueForm(b, wholeSet(b));
    if (form !== undefined) problems.push({ at: b.first, path: written(b), ...form });
  }
  const first = problems.sort((a, b) => a.at.start - b.at.start)[0];
  if (first !== undefined) {
    throw new UnsupportedFormError(first.at.line, first.path, first.form, {
      ...options,
      advice: first.advice,
    });
  }
}

const IN_PLACE = 'write the value in place: a "string", null or { … }';

/** Why a binding's value is not plain (`undefined` when it is). */
function valueForm(
  binding: NixBinding,
  wholeSet: boolean,
): { form: string; advice: string } | undefined {
  const value = binding.value;
  if (wholeSet && value[0]?.text === "{") return undefined;
  if (value.length === 1 && isPlainLiteral(value[0]!)) return undefined;
  if (
    value[0]?.text === "[" && value.at(-1)?.text === "]" &&
    value.slice(1, -1).every((t) => t.kind !== "punctuation" && isPlainLiteral(t))
  ) {
    return undefined;
  }
  const first = value[0];
  const has = (text: string): boolean =>
    value.some((t) => t.text === text && (t.kind === "punctuation" || t.kind === "identifier"));
  if (first?.text === "rec") {
    return { form: "rec", advice: "drop rec: every value here is written in place" };
  }
  if (first?.text === "let") return { form: "let … in", advice: IN_PLACE };
  if (first?.text === "with") {
    return { form: "with …;", advice: "drop with: every value here is written in place" };
  }
  if (has("//")) return { form: "//", advice: "write the merged set as one { … }" };
  // Backquotes: the layer test reads `import` before a double quote as a module import.
  if (has(`import`)) return { form: `import`, advice: "write the imported value in place" };
  if (value.length === 1) {
    const token = first!;
    const form = token.kind === "string"
      ? "an interpolated string"
      : token.kind === "indentedString"
      ? "an indented string"
      : token.kind === "identifier"
      ? `a variable (${token.text})`
      : token.kind === "path"
      ? "a path"
      : "a URI literal";
    return { form, advice: IN_PLACE };
  }
  return { form: "an expression", advice: IN_PLACE };
}

function isPlainLiteral(token: NixToken): boolean {
  if (token.kind === "string") return token.value !== undefined;
  if (token.kind === "number") return true;
  return token.kind === "identifier" && ["null", "true", "false"].includes(token.text);
}
