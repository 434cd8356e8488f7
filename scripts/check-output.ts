#!/usr/bin/env -S deno run --allow-read --allow-ffi
/**
 * Checks the structure of a built rocm-nightly package and reports every defect.
 *
 * @module
 */

import { runMain, UsageError } from "../lib/cli/cli.ts";
import { checkOutput, formatCheckReport } from "../lib/package/check_output.ts";
import { listsEveryName } from "../lib/fs/dir_reader.ts";

const HELP = `Usage: check-output.ts <out-path> [--json] [--target ISA] [--allow-missing SONAME]...

Checks a built rocm-nightly package (a Nix output such as ./result) and
reports EVERY defect, not just the first:
  - opt/rocm and bin exist; nix-support/setup-hook sets ROCM_PATH=, HIP_PATH=
    and CMAKE_PREFIX_PATH; bin holds at least one executable;
  - opt/rocm/amdgcn is a symlink when opt/rocm/lib/llvm/amdgcn exists;
  - share/licenses holds a license file;
  - every bin entry is an ELF executable, a symlink, or a #! wrapper whose
    'exec "<path>" "$@"' line names an executable inside the output;
  - every folder can be listed; it holds only files, folders and symlinks
    (no device node, FIFO or socket); no symlink dangles or leads out of
    the output and the folder holding it (the Nix store, for a store path);
  - every ELF file (below bin/, sbin/ or libexec/, or named *.so, *.so.*;
    not *.debug) is well-formed; an executable's interpreter exists; every
    DT_NEEDED library is found through the file's own DT_RUNPATH (or
    DT_RPATH, with the RPATHs of its loaders) or in the interpreter's folder
    -- never /lib, /usr/lib, the ld.so cache or LD_LIBRARY_PATH. Each
    missing library is reported once, with how many files need it;
  - every script (a file below bin/, sbin/ or libexec/ that is not ELF, or
    named *.sh, *.bash, *.py, *.pl) with a #! line runs on NixOS: its
    interpreter is /bin/sh, /usr/bin/env (running a bare name, or a path
    that passes this rule) or an existing file of the output or the Nix
    store -- never /bin/bash, /usr/bin/python3 or another host path;
  - with --target, files carrying the ISA (or its family token, e.g. gfx110X)
    are present; a family name requires each of its ISAs.

Options:
  --json         print the report as JSON on stdout
  --target ISA   an ISA or family of lib/releases/targets.json (gfx1151, gfx110X-all)
  --allow-missing SONAME
                 a library that may be missing (an optional dependency); a
                 glob with * and ?, e.g. 'libpython3*.so*'; repeatable. It is
                 listed as allowed, not failed
  -h, --help     show this help

Permissions: --allow-read, and --allow-ffi to list folders with glibc's
getdents64 (1.6x faster on a large output; the report is the same).

Exit status: 0 all checks passed, 1 a check failed, 2 usage error.

Example:
  nix build .#rocm-nightly-gfx1151 && deno run --allow-read scripts/check-output.ts ./result --target gfx1151
`;

function usageError(message: string): never {
  throw new UsageError(`${message} (see --help)`);
}

interface Flags {
  json: boolean;
  help: boolean;
  target?: string;
  allowMissing: string[];
  positionals: string[];
}

/**
 * The command line, parsed by hand: node:util's parseArgs loads Deno's Node
 * layer, ~10 ms of a run that the benchmark holds to 2× `find`.
 */
function parseFlags(args: string[]): Flags {
  const flags: Flags = { json: false, help: false, allowMissing: [], positionals: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      flags.positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      flags.positionals.push(arg);
      continue;
    }
    const equals = arg.indexOf("=");
    const name = equals === -1 ? arg : arg.slice(0, equals);
    if (name === "--json" || name === "--help" || name === "-h") {
      if (equals !== -1) usageError(`Option '${name}' takes no value`);
      if (name === "--json") flags.json = true;
      else flags.help = true;
    } else if (name === "--target" || name === "--allow-missing") {
      const value = equals === -1 ? args[++i] : arg.slice(equals + 1);
      if (value === undefined) usageError(`Option '${name} <value>' needs a value`);
      if (name === "--target") flags.target = value;
      else flags.allowMissing.push(value);
    } else {
      usageError(`Unknown option '${arg}'`);
    }
  }
  return flags;
}

async function main(args: string[]): Promise<number> {
  const { positionals, ...values } = parseFlags(args);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    usageError(`expected one <out-path>, got ${positionals.length}`);
  }
  const [outPath] = positionals as [string];
  let report;
  try {
    report = await checkOutput(outPath, {
      ...(values.target === undefined ? {} : { target: values.target }),
      allowMissing: values.allowMissing,
    });
  } catch (error) {
    if (error instanceof RangeError || error instanceof TypeError) usageError(error.message);
    throw error;
  }
  if (!listsEveryName && Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    console.error(
      `check-output: warning: Deno ${Deno.version.deno} leaves names that are not UTF-8 out of a ` +
        "listing, so such files went unchecked: run with --allow-ffi, or Deno 2.8.2 or later",
    );
  }
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else Deno.stdout.writeSync(new TextEncoder().encode(formatCheckReport(report)));
  return report.ok ? 0 : 1;
}

// Read-only and synchronous: a signal's default action ends it at once.
if (import.meta.main) await runMain("check-output", main, { handleSignals: false });
