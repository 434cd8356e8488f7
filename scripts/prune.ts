#!/usr/bin/env -S deno run --allow-read --allow-write --allow-ffi
/**
 * Leaves the GPU code of other ISAs out of an installed ROCm package: the
 * install step of the per-ISA packages (nix/package.nix).
 *
 * @module
 */

import { runMain, UsageError } from "../lib/cli/cli.ts";
import {
  type Command,
  defineCommand,
  formatHelp,
  parseCommandLine,
} from "../lib/cli/command_line.ts";
import { targetName } from "../lib/releases/target_names.ts";
import {
  checkPruned,
  formatPruneRecord,
  formatPruneSummary,
  keptIsas,
  PRUNE_RECORD,
  pruneTree,
} from "../lib/package/prune.ts";

const COMMAND = defineCommand({
  name: "prune",
  operands: "<out-path>",
  arity: { min: 1, max: 1 },
  description: `Removes from <out-path>/opt/rocm the GPU code of every ISA but the given
ones (code objects, kpack archives, Tensile/hipBLASLt solution libraries,
MIOpen kernel databases, AOTriton images), records what went in
<out-path>/${PRUNE_RECORD}, then checks the result (as check-output --isa
does) and fails when a kept ISA lost its code. Shared libraries, generic
targets covering a kept ISA (gfx11-generic for gfx1100) and host files named
after an ISA stay; no kept file is written. At least one --isa is needed.`,
  flags: {
    isa: {
      type: "string",
      value: "ISA",
      multiple: true,
      help:
        "an ISA (or family) of the target table to keep (list them: detect --list-targets); repeatable",
      parse: targetName,
    },
    "dry-run": { type: "boolean", help: "remove nothing, write no record: print what would go" },
    json: { type: "boolean", help: "print the record on stdout instead of a summary on stderr" },
  },
  exitStatus: {
    0: "pruned and checked",
    1: "failed (a kept ISA lost its code, or a file could not go)",
  },
  examples: [
    'prune "$out" --isa gfx1100',
    "prune ./result --isa gfx1100 --isa gfx1101 --dry-run --json",
  ],
});

/** The command line and --help of this script (lib/cli/command_line.ts), for tests and docs. */
export const command: Command = COMMAND;

async function main(args: string[]): Promise<number> {
  const { help, values, operands } = parseCommandLine(COMMAND, args);
  if (help) {
    console.log(formatHelp(COMMAND));
    return 0;
  }
  const [out] = operands as [string];
  if (values.isa.length === 0) {
    throw new UsageError("Nothing to keep: give at least one --isa (see --help)");
  }
  let isas: string[];
  try {
    isas = keptIsas(values.isa);
  } catch (error) {
    throw new UsageError(`${(error as Error).message} (see --help)`);
  }
  const dryRun = values["dry-run"];
  const report = pruneTree(`${out}/opt/rocm`, isas, { dryRun });
  const record = formatPruneRecord(report);
  if (!dryRun) {
    Deno.mkdirSync(`${out}/nix-support`, { recursive: true });
    Deno.writeTextFileSync(`${out}/${PRUNE_RECORD}`, record);
  }
  if (values.json) console.log(record.trimEnd());
  if (dryRun) {
    console.error(`prune: (dry run) ${formatPruneSummary(report)}`);
    return 0;
  }
  const findings = await checkPruned(out, isas);
  if (findings.length > 0) {
    const more = findings.length > 1
      ? ` (and ${findings.length - 1} more: check-output --isa lists them)`
      : "";
    throw new Error(`${findings[0]!.check}: ${findings[0]!.message}${more}`);
  }
  console.error(`prune: ${formatPruneSummary(report)}`);
  return 0;
}

if (import.meta.main) await runMain("prune", main);
