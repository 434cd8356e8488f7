/**
 * Whether a script's `#!` line names an interpreter that exists where the
 * package runs. The rule, as the kernel reads the line: the interpreter is
 * the first word after `#!` (blanks are spaces and tabs only, so a CR of a
 * CRLF line is part of the last word), and everything after it is one
 * argument. The interpreter must be
 *
 * - `/bin/sh`: the one shell NixOS has outside the store;
 * - `/usr/bin/env`, with a program that is a bare name (found on the
 *   caller's PATH when it runs, as NixOS means it) or a path passing this
 *   same rule; a program with blanks needs `env -S`;
 * - or a path inside the output or the Nix store, which must exist.
 *
 * Any other absolute path (`/bin/bash`, `/usr/bin/python3`, `/opt/x`) does
 * not exist on NixOS, and a relative one would be looked up from the
 * caller's working folder. nix/install.sh rewrites what it knows (python,
 * perl, bash, sh); this finds what it did not.
 *
 * @module
 */

/** The most of a file read for its `#!` line (the kernel reads 256 bytes). */
export const MAX_SHEBANG_BYTES = 1024;

const ENV = "/usr/bin/env";
const SH = "/bin/sh";
const BLANK = /[ \t]+/;
/** env options that take the next word as their value. */
const ENV_OPTIONS_WITH_VALUE = new Set(["-u", "--unset", "-C", "--chdir"]);

/** Where a shebang's interpreter may live, and how to test that a file exists. */
export interface ShebangWorld {
  /** The output's real path. */
  root: string;
  /** The folder holding the output (the Nix store for a store path); "" for none. */
  store: string;
  /** Whether `path` is an existing file (following links). */
  isFile: (path: string) => boolean;
}

/** A shebang whose interpreter does not exist where the package runs. */
export interface BadShebang {
  /** The interpreter (or, for `env`, the program it runs) as the line names it. */
  interpreter: string;
  /** Why it does not run, without the path of the script. */
  problem: string;
}

/**
 * The `#!` line of `head` (the first bytes of a file): `undefined` when it
 * does not start with `#!`, else the text after `#!` up to the line's end.
 */
export function shebangLine(head: Uint8Array): string | undefined {
  if (head[0] !== 0x23 || head[1] !== 0x21) return undefined;
  let end = head.indexOf(0x0a);
  if (end === -1) end = head.length;
  return new TextDecoder().decode(head.subarray(2, end));
}

/**
 * What is wrong with a `#!` line (the text after `#!`), or `undefined` when
 * its interpreter exists where the package runs (see the module comment).
 */
export function checkShebang(line: string, world: ShebangWorld): BadShebang | undefined {
  const text = line.replace(/^[ \t]+/, "");
  const blank = text.search(BLANK);
  const interpreter = blank === -1 ? text : text.slice(0, blank);
  const argument = blank === -1 ? "" : text.slice(blank).replace(/^[ \t]+/, "").replace(
    /[ \t]+$/,
    "",
  );
  if (interpreter === "") return { interpreter, problem: "names no interpreter" };
  if (interpreter !== ENV) return checkPath(interpreter, world);
  const program = envProgram(argument);
  if (program === undefined) {
    return { interpreter: ENV, problem: "runs env without a program to run" };
  }
  if (/[ \t]/.test(program)) {
    return {
      interpreter: program,
      problem: "is what env is asked to run, blanks included: the kernel passes all words " +
        "after the interpreter as one (use `env -S`)",
    };
  }
  return program.includes("/") ? checkPath(program, world) : undefined;
}

function checkPath(path: string, world: ShebangWorld): BadShebang | undefined {
  if (!path.startsWith("/")) {
    return {
      interpreter: path,
      problem: "is not an absolute path: it would be looked up from the caller's working folder",
    };
  }
  if (path === SH || path === ENV) return undefined;
  const inside = path === world.root || path.startsWith(`${world.root}/`) ||
    (world.store !== "" && path.startsWith(`${world.store}/`));
  if (!inside) {
    return {
      interpreter: path,
      problem: `is outside the output and the Nix store, where NixOS has only "${SH}" and "${ENV}"`,
    };
  }
  return world.isFile(path) ? undefined : { interpreter: path, problem: "does not exist" };
}

/**
 * The program `env` runs, given the one argument the kernel passes it: with
 * `-S` (or `--split-string`), the first of its words that is no option and
 * no NAME=VALUE; without it, the argument whole (blanks included).
 */
function envProgram(argument: string): string | undefined {
  if (argument === "") return undefined;
  const split = /^(?:-S|--split-string(?:=|[ \t]|$))/.exec(argument);
  if (split === null) return argument;
  const words = argument.slice(split[0].length).split(BLANK).filter((word) => word !== "");
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (ENV_OPTIONS_WITH_VALUE.has(word)) i++;
    else if (!word.startsWith("-") && !word.includes("=")) return word;
  }
  return undefined;
}
