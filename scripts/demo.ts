#!/usr/bin/env -S deno run --allow-net=127.0.0.1 --allow-read --allow-write
/**
 * `demo`: the update job end to end without access to AMD. A loopback mirror
 * serves a generated TheRock index and small generated tarballs; `update`
 * runs on a temporary copy of flake.nix against it; the diff is printed and
 * everything is cleaned up. Run with `--help` for the flags.
 *
 * @module
 */

import { runMain } from "../lib/cli/cli.ts";
import {
  type Command,
  defineCommand,
  filePath,
  formatHelp,
  parseCommandLine,
} from "../lib/cli/command_line.ts";
import { displayJson } from "../lib/cli/display.ts";
import { runDemo } from "../lib/jobs/demo.ts";
import { formatUpdateReport } from "../lib/jobs/update.ts";

const COMMAND = defineCommand({
  name: "demo",
  description: `Shows what \`update\` does, on a machine without access to AMD: serves a
generated index of newer nightlies on 127.0.0.1, updates a temporary copy of
the flake against it, prints the report and the diff, and cleans up.
Your flake.nix is never written.`,
  flags: {
    flake: {
      type: "string",
      value: "PATH",
      help:
        "the flake whose registry is copied (default: the project's flake.nix, or an embedded registry when there is none)",
      parse: filePath,
    },
    json: {
      type: "boolean",
      help: 'print {"update": <update --json>, "diff"} instead of the report',
    },
  },
  exitStatus: { 0: "success", 1: "the demo failed" },
  examples: ["demo", "demo --json"],
});

/** The command line and --help of this script (lib/cli/command_line.ts), for tests and docs. */
export const command: Command = COMMAND;

/** What the demo suggests next: commands README runs, as written (tests/docs). */
export const NEXT_COMMANDS: readonly string[] = [
  "deno task update -- --dry-run   (what would change; downloads nothing)",
  "nix run .#update                (downloads, hashes, rewrites flake.nix)",
];

async function main(args: string[]): Promise<number> {
  const { help, values } = parseCommandLine(COMMAND, args);
  if (help) {
    console.log(formatHelp(COMMAND));
    return 0;
  }
  const log = (line: string): void => {
    if (!values.json) console.log(`# ${line}`);
  };
  const result = await runDemo({
    log,
    ...(values.flake === undefined ? {} : { flake: values.flake }),
  });
  if (values.json) {
    console.log(displayJson({ update: result.update, diff: result.diff }));
    return 0;
  }
  console.log(formatUpdateReport(result.update));
  console.log(`\n${result.diff}`);
  log("cleaned up. Against AMD's real index:");
  for (const command of NEXT_COMMANDS) log(`  ${command}`);
  return 0;
}

if (import.meta.main) await runMain("demo", main);
