#!/usr/bin/env -S deno run --allow-read --allow-write
/**
 * `rewrite`: set string or `null` bindings of flake.nix by attribute path,
 * changing nothing but the value literals, atomically, or refuse.
 *
 * @module
 */

import { displayJson, displayText } from "../lib/cli/display.ts";
import { runMain, UsageError } from "../lib/cli/cli.ts";
import {
  type Command,
  defineCommand,
  filePath,
  formatHelp,
  parseCommandLine,
  ValueError,
} from "../lib/cli/command_line.ts";
import { applyEdits, type BindingEdit, parseAttrPath } from "../lib/flake/flake_edit.ts";
import { lockFlakeFile, readFlakeFile, writeFlakeFile } from "../lib/flake/flake_file.ts";
import { findFlake } from "../lib/flake/find_flake.ts";
import { unifiedDiff } from "../lib/cli/unified_diff.ts";

const COMMAND = defineCommand({
  name: "rewrite",
  description: `Sets string or null bindings of a Nix file by attribute path, replacing only
the value literals (comments, layout and line endings stay byte for byte).
With --add, a missing key under an existing attribute set is added on a new
line; without it a missing key is refused. At least one --set is needed.

Values are validated: versions (…version) by TheRock's grammar, hashes
(…hash…, srcHashes.*) as SRI (another spelling only when equal to the current
hash), baseUrl as a canonical http(s) folder URL (no credentials, query or
fragment), url as http(s); no value may contain ", \\, \${ or control
characters (C0, DEL, C1). A binding found twice or not at all is refused,
naming the lines. All edits are applied or none. A file that is not UTF-8 is
refused; a symlink's target is rewritten, keeping its owner, group and mode; a
file with hard links is refused. It is read and written under update's lock
(.flake.nix.update-lock; held by another process: exit 1), and a file that
changed since it was read is left as it is (exit 1: run again).

Prints "PATH: OLD → NEW" per change on stdout.`,
  flags: {
    flake: {
      type: "string",
      value: "PATH",
      help: "the flake.nix to edit (default: flake.nix here or in the nearest folder above)",
      // --file: its name until it took the --flake of update, status and detect.
      aliases: ["file"],
      parse: filePath,
    },
    set: {
      type: "string",
      value: "PATH=VALUE",
      multiple: true,
      help:
        'PATH like nightly.version, nightly.srcHashes."gfx110X-all" or version; VALUE "null" means null, anything else a string; repeatable',
      parse: bindingEdit,
    },
    add: { type: "boolean", help: "add keys that are missing under an existing attribute set" },
    "dry-run": { type: "boolean", help: "print a unified diff on stdout, write nothing" },
    check: { type: "boolean", help: "write nothing; exit 1 when changes would be made" },
    json: { type: "boolean", help: 'print {"file", "written", "changes": [...]} on stdout' },
  },
  exitStatus: {
    0: "done or nothing to do",
    1: "refused, or (--check) changes pending; the file as it was",
  },
  examples: [
    "rewrite --set nightly.version=7.12.0a20260309 \\\n" +
    "    --set nightly.srcHashes.gfx1151=sha256-rUhZSqJaTpuc2l6D1Q29oC0yTcTRRU/NO/JAFxaaVRA= \\\n" +
    "    --set nightly.srcHashes.gfx110X-all=null --dry-run",
    "rewrite --flake flake.nix --add --set 'nightly.srcHashes.gfx1151=null' --json",
  ],
});

/** The command line and --help of this script (lib/cli/command_line.ts), for tests and docs. */
export const command: Command = COMMAND;

function bindingEdit(arg: string): BindingEdit {
  // Split at the first "=" outside a quoted path component.
  const split = /^((?:"[^"]*"|[^"=])+)=(.*)$/s.exec(arg);
  if (split === null) throw new ValueError("expected PATH=VALUE");
  try {
    parseAttrPath(split[1]!);
  } catch (error) {
    throw new ValueError((error as Error).message);
  }
  return { path: split[1]!, value: split[2] === "null" ? null : split[2]! };
}

function show(value: string | null | undefined): string {
  return value === undefined
    ? "(added)"
    : value === null
    ? "null"
    : displayText(JSON.stringify(value));
}

async function main(args: string[]): Promise<number> {
  const { help, values: options } = parseCommandLine(COMMAND, args);
  if (help) {
    console.log(formatHelp(COMMAND));
    return 0;
  }
  if (options.set.length === 0) throw new UsageError("Nothing to do: give at least one --set");
  // As nix does: flake.nix here, or in the nearest folder above.
  const found = options.flake === undefined ? await findFlake() : undefined;
  if (found?.above) console.error(`rewrite: using ${displayText(found.path)}`);
  const file = options.flake ?? found!.path;
  // update's lock: held from the read to the write, so neither overwrites the other.
  const writes = !options["dry-run"] && !options.check;
  await using _lock = writes ? await lockFlakeFile(file, `rewrite "${file}"`) : undefined;
  const flake = await readFlakeFile(file);
  const source = flake.text;
  let result;
  try {
    result = applyEdits(source, options.set, { file, addMissing: options.add });
  } catch (error) {
    throw new Error((error as Error).message);
  }
  const { text, changes } = result;
  const write = changes.length > 0 && writes;
  if (write) await writeFlakeFile(flake, text);

  if (options.json) {
    const list = changes.map((c) => ({
      ...c,
      oldValue: c.oldValue ?? null,
      added: c.oldValue === undefined,
    }));
    console.log(displayJson({ file, written: write, changes: list }));
  } else if (options["dry-run"]) {
    // stdout carries only the diff, so it can be piped to patch(1).
    const diff = new TextEncoder().encode(unifiedDiff(source, text, { path: file }));
    for (let n = 0; n < diff.length;) n += await Deno.stdout.write(diff.subarray(n));
    if (diff.length === 0) console.error(`${file}: no changes`);
  } else if (changes.length === 0) {
    console.log(`${file}: no changes`);
  } else {
    for (const c of changes) console.log(`${c.path}: ${show(c.oldValue)} → ${show(c.newValue)}`);
  }
  return options.check && changes.length > 0 ? 1 : 0;
}

if (import.meta.main) await runMain("rewrite", main);
