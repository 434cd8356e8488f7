#!/usr/bin/env -S deno run --allow-net=127.0.0.1 --allow-read --allow-write
/**
 * `demo`: the update job end to end without access to AMD. A loopback mirror
 * serves a generated TheRock index and small generated tarballs; `update`
 * runs on a temporary copy of flake.nix against it; the diff is printed and
 * everything is cleaned up. Run with `--help` for the flags.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { runMain } from "../lib/cli/cli.ts";
import { runDemo } from "../lib/jobs/demo.ts";
import { formatUpdateReport } from "../lib/jobs/update.ts";

const USAGE = `Usage: demo [--flake PATH]

Shows what \`update\` does, on a machine without access to AMD: serves a
generated index of newer nightlies on 127.0.0.1, updates a temporary copy of
the flake against it, prints the report and the diff, and cleans up.
Your flake.nix is never written.

Options:
  --flake PATH   the flake whose registry is copied (default: the project's
                 flake.nix, or an embedded registry when there is none)
  -h, --help     show this help

Exit status: 0 success, 1 the demo failed, 2 usage error.

Example:
  deno task demo
`;

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { flake: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const log = (line: string): void => console.log(`# ${line}`);
  const result = await runDemo({
    log,
    ...(values.flake === undefined ? {} : { flake: values.flake }),
  });
  console.log(formatUpdateReport(result.update));
  console.log(`\n${result.diff}`);
  log("cleaned up. Against AMD's real index:");
  log("  deno task update --dry-run   (what would change; downloads nothing)");
  log("  nix run .#update             (downloads, hashes, rewrites flake.nix)");
  return 0;
}

if (import.meta.main) await runMain("demo", main);
