#!/usr/bin/env -S deno run --allow-read --allow-write --allow-ffi
/**
 * Leaves the GPU code of other ISAs out of an installed ROCm package: the
 * install step of the per-ISA packages (nix/package.nix).
 *
 * @module
 */

import { runMain, UsageError } from "../lib/cli/cli.ts";
import {
  checkPruned,
  formatPruneRecord,
  formatPruneSummary,
  keptIsas,
  PRUNE_RECORD,
  pruneTree,
} from "../lib/package/prune.ts";

const HELP = `Usage: prune.ts <out-path> --isa ISA [--isa ISA]... [--dry-run] [--json]

Removes from <out-path>/opt/rocm the GPU code of every ISA but the given
ones (code objects, kpack archives, Tensile/hipBLASLt solution libraries,
MIOpen kernel databases, AOTriton images: lib/releases/kernel_files.ts),
records what went in <out-path>/${PRUNE_RECORD}, then checks the result
(as check-output --isa does) and fails when a kept ISA lost its code.
Shared libraries, generic targets covering a kept ISA (gfx11-generic for
gfx1100) and host files named after an ISA stay; no kept file is written.

Options:
  --isa ISA    an ISA (or family) of lib/releases/targets.json to keep; repeatable
  --dry-run    remove nothing, write no record: print what would go
  --json       print the record on stdout instead of a summary on stderr
  -h, --help   show this help

Exit status: 0 pruned and checked, 1 failed, 2 usage error.

Example:
  deno run --allow-read --allow-write --allow-ffi scripts/prune.ts "$out" --isa gfx1100
`;

function usageError(message: string): never {
  throw new UsageError(`${message} (see --help)`);
}

interface Flags {
  isas: string[];
  dryRun: boolean;
  json: boolean;
  help: boolean;
  positionals: string[];
}

function parseFlags(args: string[]): Flags {
  const flags: Flags = { isas: [], dryRun: false, json: false, help: false, positionals: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("-") || arg === "-") {
      flags.positionals.push(arg);
    } else if (arg === "--isa" || arg.startsWith("--isa=")) {
      const value = arg === "--isa" ? args[++i] : arg.slice("--isa=".length);
      if (value === undefined) usageError(`Option '--isa <ISA>' needs a value`);
      flags.isas.push(value);
    } else if (arg === "--dry-run") flags.dryRun = true;
    else if (arg === "--json") flags.json = true;
    else if (arg === "--help" || arg === "-h") flags.help = true;
    else usageError(`Unknown option '${arg}'`);
  }
  return flags;
}

async function main(args: string[]): Promise<number> {
  const flags = parseFlags(args);
  if (flags.help) {
    console.log(HELP);
    return 0;
  }
  if (flags.positionals.length !== 1) {
    usageError(`expected one <out-path>, got ${flags.positionals.length}`);
  }
  const out = flags.positionals[0]!;
  let isas: string[];
  try {
    isas = keptIsas(flags.isas);
  } catch (error) {
    usageError((error as Error).message);
  }
  const report = pruneTree(`${out}/opt/rocm`, isas, { dryRun: flags.dryRun });
  const record = formatPruneRecord(report);
  if (!flags.dryRun) {
    Deno.mkdirSync(`${out}/nix-support`, { recursive: true });
    Deno.writeTextFileSync(`${out}/${PRUNE_RECORD}`, record);
  }
  if (flags.json) console.log(record.trimEnd());
  if (flags.dryRun) {
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
