import assert from "node:assert/strict";
import { UsageError } from "../../lib/cli/cli.ts";
import {
  closest,
  defineCommand,
  editDistance,
  filePath,
  type Flag,
  formatHelp,
  oneOf,
  parseCommandLine,
  seconds,
  wholeNumber,
} from "../../lib/cli/command_line.ts";

const COMMAND = defineCommand({
  name: "tool",
  operands: "[FILE…]",
  arity: { min: 0, max: 2 },
  description: "Does things.",
  flags: {
    "dry-run": { type: "boolean", help: "write nothing" },
    jobs: { type: "string", value: "N", help: "at once", parse: wholeNumber(1, 64) },
    timeout: { type: "string", value: "S", help: "seconds", parse: seconds(3600) },
    channel: {
      type: "string",
      value: "C",
      multiple: true,
      help: "a channel",
      parse: oneOf(["nightly", "stable", "rc"]),
    },
    output: { type: "string", short: "o", value: "FILE", help: "where", parse: filePath },
  },
  exitStatus: { 0: "done", 1: "failed" },
  examples: ["tool --dry-run"],
});

function refused(args: string[], message: string): void {
  assert.throws(() => parseCommandLine(COMMAND, args), (error: unknown) => {
    assert.ok(error instanceof UsageError, String(error));
    assert.equal(error.message, message);
    return true;
  });
}

Deno.test("parseCommandLine() drops a leading -- (deno task x -- …) and ends options at a later one", () => {
  const parsed = parseCommandLine(COMMAND, ["--", "--dry-run", "a", "--", "--jobs"]);
  assert.equal(parsed.values["dry-run"], true);
  assert.deepEqual(parsed.operands, ["a", "--jobs"]);
});

Deno.test("parseCommandLine() reads --flag value, --flag=value, -o FILE, -oFILE and repeats", () => {
  const parsed = parseCommandLine(COMMAND, [
    "--jobs=3",
    "--timeout",
    "2.5",
    "--channel",
    "rc",
    "--channel=stable",
    "-o",
    "out",
  ]);
  assert.deepEqual(parsed.values, {
    "dry-run": false,
    jobs: 3,
    timeout: 2.5,
    channel: ["rc", "stable"],
    output: "out",
  });
  assert.equal(parseCommandLine(COMMAND, ["-oout"]).values.output, "out");
  assert.equal(parseCommandLine(COMMAND, ["-"]).operands[0], "-");
});

Deno.test("parseCommandLine() words every mistake alike and ends it with (see --help)", () => {
  refused(["--bogus"], 'unknown option "--bogus" (see --help)');
  refused(["--dryrun"], 'unknown option "--dryrun": did you mean --dry-run? (see --help)');
  refused(["-x"], 'unknown option "-x" (see --help)');
  refused(["--jobs", "0"], 'invalid --jobs "0": expected a whole number from 1 to 64 (see --help)');
  refused(["--jobs=x"], 'invalid --jobs "x": expected a whole number from 1 to 64 (see --help)');
  refused(
    ["--timeout", "0"],
    'invalid --timeout "0": expected seconds, more than 0 and at most 3600 (see --help)',
  );
  refused(
    ["--channel", "nigthly"],
    'invalid --channel "nigthly": expected nightly, stable or rc (did you mean nightly?) (see --help)',
  );
  refused(["--jobs"], "--jobs needs a value: --jobs N (see --help)");
  refused(["--output", "--dry-run"], "--output needs a value: --output FILE (see --help)");
  refused(["-o", ""], 'invalid -o "": expected a path (see --help)');
  refused(["--dry-run=yes"], "--dry-run takes no value (see --help)");
  refused(["a", "b", "c"], 'unexpected argument "c" (see --help)');
});

Deno.test("parseCommandLine() checks flags but not the operand count with --help", () => {
  const parsed = parseCommandLine(COMMAND, ["a", "b", "c", "-h"]);
  assert.equal(parsed.help, true);
  refused(["--help", "--bogus"], 'unknown option "--bogus" (see --help)');
  const needs = defineCommand({ ...COMMAND, arity: { min: 1, max: 1 }, operands: "<path>" });
  assert.throws(() => parseCommandLine(needs, []), /^UsageError: missing <path> \(see --help\)$/);
});

Deno.test("formatHelp() writes usage, options, sections, exit status and examples", () => {
  const help = formatHelp({ ...COMMAND, sections: [{ title: "Notes", text: "  a note" }] });
  assert.equal(
    help,
    `Usage: tool [options] [FILE…]

Does things.

Options:
  --dry-run          write nothing
  --jobs N           at once
  --timeout S        seconds
  --channel C        a channel
  -o, --output FILE  where
  -h, --help         show this help

Notes:
  a note

Exit status:
  0      done
  1      failed
  2      usage error: an unknown option, a bad value or a wrong argument
  128+N  ended by signal N (130 SIGINT, 143 SIGTERM, 129 SIGHUP)

Examples:
  tool --dry-run`,
  );
});

Deno.test("editDistance() counts a swap of neighbours as one edit; closest() takes typos only", () => {
  assert.equal(editDistance("gfx1115", "gfx1151"), 1);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(closest("STABEL", ["nightly", "stable"]), "stable");
  assert.equal(closest("rx", ["rc", "nightly"]), undefined, "one letter of two is no typo");
  assert.equal(closest("gfx9999", ["gfx1151", "gfx900"]), undefined);
});

Deno.test("parseCommandLine() accepts a flag's alias as the flag; formatHelp() shows only its name", () => {
  const command = defineCommand({
    name: "tool",
    description: "Does things.",
    flags: {
      flake: {
        type: "string",
        value: "PATH",
        help: "the flake.nix",
        aliases: ["file"],
        parse: filePath,
      },
      quiet: { type: "boolean", help: "say less", aliases: ["silent"] },
    },
    exitStatus: { 0: "done", 1: "failed" },
    examples: ["tool --flake flake.nix"],
  });
  assert.equal(parseCommandLine(command, ["--file", "a.nix"]).values.flake, "a.nix");
  assert.equal(parseCommandLine(command, ["--file=b.nix"]).values.flake, "b.nix");
  assert.equal(parseCommandLine(command, ["--file=a", "--flake=c"]).values.flake, "c");
  assert.equal(parseCommandLine(command, ["--silent"]).values.quiet, true);
  // A bad value is named as typed.
  assert.throws(
    () => parseCommandLine(command, ["--file="]),
    /^UsageError: invalid --file "": expected a path \(see --help\)$/,
  );
  assert.throws(
    () => parseCommandLine(command, ["--file"]),
    /^UsageError: --file needs a value: --file PATH \(see --help\)$/,
  );
  const help = formatHelp(command);
  assert.match(help, /^ {2}--flake PATH +the flake\.nix$/m);
  assert.doesNotMatch(help, /--file|--silent/);
});

Deno.test("defineCommand() refuses an alias that is a flag's name, help, or another alias", () => {
  const define = (flags: Record<string, Flag>) => () =>
    defineCommand({
      name: "tool",
      description: "Does things.",
      flags,
      exitStatus: { 0: "done", 1: "failed" },
      examples: ["tool"],
    });
  const boolean = (aliases: string[]): Flag => ({ type: "boolean", help: "x", aliases });
  assert.throws(
    define({ a: boolean(["b"]), b: boolean([]) }),
    /^TypeError: tool: alias "--b" of "--a" is already a flag or an alias$/,
  );
  assert.throws(define({ a: boolean(["help"]) }), /alias "--help" of "--a"/);
  assert.throws(define({ a: boolean(["c"]), b: boolean(["c"]) }), /alias "--c" of "--b"/);
});
