/**
 * The one command line of every script: a script declares its flags once (a
 * {@linkcode Command}), and this module parses `Deno.args` against it and
 * writes its `--help`, so all eight tools read and explain their flags alike:
 *
 * - the usage line is `Usage: <name> [options] …`, where `<name>` is the
 *   flake app's name (`update`), the one users type in `nix run .#update`,
 *   `deno task update` and `deno run …/scripts/update.ts` alike;
 * - an unknown option is `unknown option "--bogus" (see --help)` (with "did
 *   you mean" when a flag is one typo away), a bad value
 *   `invalid --jobs "0": expected a whole number from 1 to 64 (see --help)`,
 *   a stray or missing argument says so: all exit 2 through
 *   {@linkcode UsageError};
 * - a renamed flag keeps its old name as an alias (`rewrite --file` for
 *   `--flake`): accepted as before, not shown in `--help`;
 * - a leading `--` is dropped (`deno task update -- --dry-run` passes it
 *   through); a later `--` ends the options;
 * - every help has the same sections: usage, description, `Options:`,
 *   the script's own sections, `Exit status:` (0, 1, 2, 128+N) and
 *   `Examples:`, and ends without a blank line.
 *
 * The parser is written here rather than wrapping node:util's `parseArgs`:
 * loading Deno's Node layer costs ~10 ms of every run (check-output is held to
 * 2× `find`), and its messages ("To specify a positional argument starting
 * with a '-', …") are not ours to word. Built-ins only: check-output and image
 * run inside the Nix build sandbox.
 *
 * @module
 */

import { UsageError } from "./cli.ts";

/** A flag that takes no value (`--json`). */
export interface BooleanFlag {
  /** Marks a flag without a value. */
  type: "boolean";
  /** Its one-letter form, without the dash (`h` for `-h`). */
  short?: string;
  /** What it does, for `--help` (wrapped to the help's width). */
  help: string;
  /**
   * Older names still accepted for this flag, without the dashes (`file`
   * for `--file`), so scripts written against them keep working; `--help`
   * shows only the flag's own name.
   *
   * @default {[]}
   */
  aliases?: readonly string[];
}

/** A flag that takes a value (`--jobs N`), parsed to `T`. */
export interface ValueFlag<T = string> {
  /** Marks a flag with a value. */
  type: "string";
  /** Its one-letter form, without the dash (`o` for `-o FILE`). */
  short?: string;
  /** The value's placeholder in `--help`, e.g. `PATH`. */
  value: string;
  /** What it does, for `--help` (wrapped to the help's width). */
  help: string;
  /**
   * Older names still accepted for this flag, without the dashes (`file`
   * for `--file`), so scripts written against them keep working; `--help`
   * shows only the flag's own name.
   *
   * @default {[]}
   */
  aliases?: readonly string[];
  /**
   * Whether the flag may be given more than once (its values form a list).
   *
   * @default {false}
   */
  multiple?: boolean;
  /**
   * Checks and converts the text: returns the value, or throws a
   * {@linkcode ValueError} saying what is accepted.
   *
   * @default {the text as it is}
   */
  parse?: (text: string) => T;
}

/** A flag of a {@linkcode Command}. */
// deno-lint-ignore no-explicit-any
export type Flag = BooleanFlag | ValueFlag<any>;

/** The parsed values of a command's flags, by flag name. */
export type FlagValues<F extends Record<string, Flag>> = {
  [K in keyof F]: F[K] extends BooleanFlag ? boolean
    : F[K] extends { multiple: true } ? ValueOf<F[K]>[]
    : ValueOf<F[K]> | undefined;
};

/** The type a value flag's `parse` gives (`string` without one). */
export type ValueOf<F> = F extends { parse: (text: string) => infer T } ? T : string;

/** A script's command line and help. */
export interface Command<F extends Record<string, Flag> = Record<string, Flag>> {
  /** The flake app's name, e.g. `update`: the usage line and error prefix. */
  name: string;
  /** What follows `[options]` on the usage line, e.g. `<url | path | ->`. */
  operands?: string;
  /**
   * How many operands (positional arguments) it takes.
   *
   * @default {{ min: 0, max: 0 }}
   */
  arity?: { min: number; max: number };
  /** The description under the usage line (already wrapped). */
  description: string;
  /** The flags, in help order (`-h, --help` is added). */
  flags: F;
  /** More sections after Options, e.g. `{ title: "Permissions", text }`. */
  sections?: { title: string; text: string }[];
  /** Exit status 0 and 1 in the script's words; 2 and 128+N are the same everywhere. */
  exitStatus: { 0: string; 1: string; [code: number]: string };
  /** Example command lines; a line may continue with `\` and an indented line. */
  examples: string[];
}

/** A parsed command line. */
export interface CommandLine<F extends Record<string, Flag>> {
  /** Whether `-h`/`--help` was given: print {@linkcode formatHelp} and exit 0. */
  help: boolean;
  /** The flags' values. */
  values: FlagValues<F>;
  /** The operands, in order. */
  operands: string[];
}

/**
 * A flag's value is not of the accepted form: the message says what is
 * accepted, e.g. `expected a whole number from 1 to 64`.
 *
 * @example Usage
 * ```ts
 * import { ValueError } from "./command_line.ts";
 * new ValueError("expected nightly, stable or rc").message; // "expected nightly, stable or rc"
 * ```
 */
export class ValueError extends Error {
  /** The error's name, for messages and logs. */
  override name = "ValueError";
}

/**
 * Declares a command: gives `flags` its exact type, so that
 * {@linkcode parseCommandLine} types each value, and checks that no flag's
 * alias is another flag's name or alias.
 *
 * @example Usage
 * ```ts
 * import { defineCommand } from "./command_line.ts";
 * const command = defineCommand({
 *   name: "hello",
 *   description: "Says hello.",
 *   flags: { json: { type: "boolean", help: "print JSON" } },
 *   exitStatus: { 0: "success", 1: "the job failed" },
 *   examples: ["hello --json"],
 * });
 * command.name; // "hello"
 * ```
 *
 * @param command The command.
 * @returns The same command.
 * @throws {TypeError} When an alias is also a flag's name, `help`, or
 * another flag's alias.
 */
export function defineCommand<const F extends Record<string, Flag>>(
  command: Command<F>,
): Command<F> {
  const taken = new Set([...Object.keys(command.flags), "help"]);
  for (const [name, flag] of Object.entries(command.flags)) {
    for (const alias of flag.aliases ?? []) {
      if (taken.has(alias)) {
        throw new TypeError(
          `${command.name}: alias "--${alias}" of "--${name}" is already a flag or an alias`,
        );
      }
      taken.add(alias);
    }
  }
  return command;
}

/**
 * Parses `args` against `command`'s flags. A leading `--` is dropped (what
 * `deno task x -- …` passes); a later `--` ends the options. `--flag=value`
 * and `--flag value` are the same, and so is an alias (`--old`); a flag given
 * twice keeps its last value unless it is `multiple`.
 *
 * @example Usage
 * ```ts
 * import { defineCommand, parseCommandLine, wholeNumber } from "./command_line.ts";
 * const command = defineCommand({
 *   name: "hello",
 *   description: "Says hello.",
 *   flags: { jobs: { type: "string", value: "N", help: "jobs", parse: wholeNumber(1, 64) } },
 *   exitStatus: { 0: "success", 1: "the job failed" },
 *   examples: ["hello --jobs 2"],
 * });
 * parseCommandLine(command, ["--", "--jobs=2"]).values.jobs; // 2
 * ```
 *
 * @param command The command.
 * @param args The arguments (`Deno.args`).
 * @returns The values, the operands, and whether help was asked for.
 * @throws {UsageError} For an unknown option, a bad or missing value, or a
 * wrong number of operands; the message ends with "(see --help)".
 */
export function parseCommandLine<F extends Record<string, Flag>>(
  command: Command<F>,
  args: readonly string[],
): CommandLine<F> {
  const values: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(command.flags)) {
    values[name] = flag.type === "boolean" ? false : flag.multiple ? [] : undefined;
  }
  const operands: string[] = [];
  let help = false;
  const rest = args[0] === "--" ? args.slice(1) : args;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === "--") {
      operands.push(...rest.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      operands.push(arg);
      continue;
    }
    const equals = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const spelled = equals === -1 ? arg : arg.slice(0, equals);
    let inline = equals === -1 ? undefined : arg.slice(equals + 1);
    let name: string | undefined;
    if (spelled === "-h" || spelled === "--help") {
      if (inline !== undefined) throw usage(`${spelled} takes no value`);
      help = true;
      continue;
    }
    if (spelled.startsWith("--")) {
      name = flagNamed(command, spelled.slice(2));
    } else {
      // -o FILE or -oFILE
      name = Object.entries(command.flags).find(([, f]) => f.short === spelled[1])?.[0];
      if (name !== undefined && spelled.length > 2) {
        if (command.flags[name]!.type === "boolean") name = undefined;
        else inline = spelled.slice(2);
      }
    }
    if (name === undefined) throw unknownOption(command, spelled);
    const flag: Flag = command.flags[name]!;
    const shown = spelled.startsWith("--") ? spelled : `${spelled.slice(0, 2)}`;
    if (flag.type === "boolean") {
      if (inline !== undefined) throw usage(`${shown} takes no value`);
      values[name] = true;
      continue;
    }
    let text = inline;
    if (text === undefined) {
      const next = rest[i + 1];
      if (next === undefined || (next.startsWith("--") && next.length > 2)) {
        throw usage(`${shown} needs a value: ${shown} ${flag.value}`);
      }
      text = next;
      i++;
    }
    let value: unknown = text;
    if (flag.parse !== undefined) {
      try {
        value = flag.parse(text);
      } catch (error) {
        if (!(error instanceof ValueError)) throw error;
        throw usage(`invalid ${shown} ${JSON.stringify(text)}: ${error.message}`);
      }
    }
    if (flag.multiple) (values[name] as unknown[]).push(value);
    else values[name] = value;
  }
  if (!help) {
    const { min, max } = command.arity ?? { min: 0, max: 0 };
    if (operands.length > max) {
      throw usage(`unexpected argument ${JSON.stringify(operands[max])}`);
    }
    if (operands.length < min) {
      throw usage(`missing ${command.operands ?? "argument"}`);
    }
  }
  return { help, values: values as FlagValues<F>, operands };
}

/** The width `--help` is wrapped to. */
const WIDTH = 80;

/**
 * The `--help` text of a command, without a final newline: usage line,
 * description, options, the command's sections, exit status, examples.
 *
 * @example Usage
 * ```ts
 * import { defineCommand, formatHelp } from "./command_line.ts";
 * const help = formatHelp(defineCommand({
 *   name: "hello",
 *   description: "Says hello.",
 *   flags: {},
 *   exitStatus: { 0: "success", 1: "the job failed" },
 *   examples: ["hello"],
 * }));
 * help.split("\n")[0]; // "Usage: hello [options]"
 * ```
 *
 * @param command The command.
 * @returns The help text.
 */
export function formatHelp(command: Command): string {
  const usageLine = `Usage: ${command.name} [options]${
    command.operands === undefined ? "" : ` ${command.operands}`
  }`;
  const rows: [string, string][] = Object.entries(command.flags).map(([name, flag]) => {
    const short = flag.short === undefined ? "" : `-${flag.short}, `;
    const value = flag.type === "boolean" ? "" : ` ${flag.value}`;
    return [`${short}--${name}${value}`, flag.help];
  });
  rows.push(["-h, --help", "show this help"]);
  const exits: [string, string][] = [
    ...Object.entries(command.exitStatus),
    ["2", "usage error: an unknown option, a bad value or a wrong argument"],
    ["128+N", "ended by signal N (130 SIGINT, 143 SIGTERM, 129 SIGHUP)"],
  ];
  exits.sort((a, b) => parseInt(a[0]) - parseInt(b[0]));
  const parts = [
    usageLine,
    command.description.trimEnd(),
    `Options:\n${table(rows, 18)}`,
    ...(command.sections ?? []).map((s) => `${s.title}:\n${s.text.trimEnd()}`),
    `Exit status:\n${table(exits, 5)}`,
    `Examples:\n${command.examples.map((e) => `  ${e}`).join("\n")}`,
  ];
  return parts.join("\n\n");
}

/** Two columns, the second wrapped; a first column wider than `width` puts the text below. */
function table(rows: [string, string][], width: number): string {
  const column = Math.min(width, Math.max(...rows.map(([left]) => left.length))) + 4;
  const lines: string[] = [];
  for (const [left, text] of rows) {
    const wrapped = wrap(text, WIDTH - column);
    if (left.length + 4 > column) {
      lines.push(`  ${left}`);
    } else {
      lines.push(`  ${left.padEnd(column - 2)}${wrapped.shift() ?? ""}`.trimEnd());
    }
    for (const line of wrapped) lines.push(`${" ".repeat(column)}${line}`);
  }
  return lines.join("\n");
}

/** Words of `text` in lines of at most `width` characters (a longer word gets its own line). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}

/** The flag whose name or alias is `spelled` (without the dashes). */
function flagNamed(command: Command, spelled: string): string | undefined {
  if (Object.hasOwn(command.flags, spelled)) return spelled;
  return Object.entries(command.flags).find(([, f]) => f.aliases?.includes(spelled))?.[0];
}

function usage(message: string): UsageError {
  return new UsageError(`${message} (see --help)`);
}

function unknownOption(command: Command, spelled: string): UsageError {
  const names = [...Object.keys(command.flags), "help"].map((n) => `--${n}`);
  const near = closest(spelled, names);
  return usage(
    `unknown option ${JSON.stringify(spelled)}${
      near === undefined ? "" : `: did you mean ${near}?`
    }`,
  );
}

/**
 * The edit distance (Levenshtein: insertions, deletions, substitutions, and
 * swaps of two neighbours) between two strings.
 *
 * @example Usage
 * ```ts
 * import { editDistance } from "./command_line.ts";
 * editDistance("gfx1115", "gfx1151"); // 1
 * editDistance("nigthly", "nightly"); // 1
 * ```
 *
 * @param a One string.
 * @param b The other.
 * @returns The number of edits that turn `a` into `b`.
 */
export function editDistance(a: string, b: string): number {
  // Optimal string alignment: a swap of neighbours ("1115" for "1151") is one typo.
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      }
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

/**
 * The candidate nearest to `text` by {@linkcode editDistance}, ignoring case,
 * when it is close enough to be a typo: at most 2 edits, and fewer than a
 * third of the longer name's length. Ties go to the earlier candidate.
 *
 * @example Usage
 * ```ts
 * import { closest } from "./command_line.ts";
 * closest("nigthly", ["nightly", "stable", "rc"]); // "nightly"
 * closest("beta", ["nightly", "stable", "rc"]); // undefined
 * ```
 *
 * @param text What was typed.
 * @param candidates The names it may have meant.
 * @returns The nearest candidate, or `undefined` when none is close.
 */
export function closest(text: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(text.toLowerCase(), candidate.toLowerCase());
    const limit = Math.min(2, Math.ceil(Math.max(text.length, candidate.length) / 3) - 1);
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * A flag parser for a whole number from `min` to `max`.
 *
 * @example Usage
 * ```ts
 * import { wholeNumber } from "./command_line.ts";
 * wholeNumber(1, 64)("4"); // 4
 * ```
 *
 * @param min The smallest accepted.
 * @param max The largest accepted.
 * @returns The parser; it throws a {@linkcode ValueError} for other text.
 */
export function wholeNumber(min: number, max: number): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
      throw new ValueError(`expected a whole number from ${min} to ${max}`);
    }
    return value;
  };
}

/**
 * A flag parser for a number of seconds, more than 0 and at most `max`
 * (decimals allowed: `0.5`).
 *
 * @example Usage
 * ```ts
 * import { seconds } from "./command_line.ts";
 * seconds(3600)("2.5"); // 2.5
 * ```
 *
 * @param max The longest accepted.
 * @returns The parser; it throws a {@linkcode ValueError} for other text.
 */
export function seconds(max: number): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!/^\d+(\.\d+)?$/.test(text) || !(value > 0) || value > max) {
      throw new ValueError(`expected seconds, more than 0 and at most ${max}`);
    }
    return value;
  };
}

/**
 * A flag parser for one of a list of words; a near miss gets "did you mean".
 *
 * @example Usage
 * ```ts
 * import { oneOf } from "./command_line.ts";
 * oneOf(["docker-archive", "oci"])("oci"); // "oci"
 * ```
 *
 * @param words The accepted words.
 * @returns The parser; it throws a {@linkcode ValueError} for other text.
 */
export function oneOf<const W extends string>(words: readonly W[]): (text: string) => W {
  return (text) => {
    if ((words as readonly string[]).includes(text)) return text as W;
    const near = closest(text, words);
    const list = words.length === 2
      ? `${words[0]} or ${words[1]}`
      : `${words.slice(0, -1).join(", ")} or ${words.at(-1)}`;
    throw new ValueError(
      `expected ${list}${near === undefined ? "" : ` (did you mean ${near}?)`}`,
    );
  };
}

/**
 * A flag parser for a path: any text but the empty one.
 *
 * @example Usage
 * ```ts
 * import { filePath } from "./command_line.ts";
 * filePath("flake.nix"); // "flake.nix"
 * ```
 *
 * @param text The flag's text.
 * @returns The text.
 * @throws {ValueError} For the empty text.
 */
export function filePath(text: string): string {
  if (text === "") throw new ValueError("expected a path");
  return text;
}

/** The default of every `--timeout`: seconds an attempt may go without data. */
export const DEFAULT_TIMEOUT_SECONDS = 30;
