#!/usr/bin/env -S deno run --allow-read --allow-ffi
/**
 * Checks the structure of a built rocm-nightly package and reports every defect.
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
import { checkOutput, formatCheckReport } from "../lib/package/check_output.ts";
import { listsEveryName } from "../lib/fs/dir_reader.ts";

const COMMAND = defineCommand({
  name: "check-output",
  operands: "<out-path>",
  arity: { min: 1, max: 1 },
  description: `Checks a built rocm-nightly package (a Nix output such as ./result) and
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
    are present; a family name requires each of its ISAs;
  - with --isa (a pruned package, nix-support/pruned): no GPU code of
    another ISA remains, the record lists only such code, and each kept
    ISA still has code in every library that had code for it.`,
  flags: {
    json: { type: "boolean", help: "print the report as JSON on stdout" },
    target: {
      type: "string",
      value: "ISA",
      help:
        "an ISA or family of the target table (gfx1151, gfx110X-all; list them: detect --list-targets)",
      parse: targetName,
    },
    isa: {
      type: "string",
      value: "ISA",
      multiple: true,
      help: "an ISA the package was pruned to keep; repeatable",
      parse: targetName,
    },
    "allow-missing": {
      type: "string",
      value: "SONAME",
      multiple: true,
      help:
        "a library that may be missing (an optional dependency); a glob with * and ?, e.g. 'libpython3*.so*'; repeatable. It is listed as allowed, not failed",
    },
  },
  sections: [{
    title: "Permissions",
    text: `  --allow-read, and --allow-ffi to list folders and read ELF files through
  glibc (about 1.5x faster on a large output; the report is the same).`,
  }],
  exitStatus: { 0: "all checks passed", 1: "a check failed" },
  examples: [
    "nix build .#rocm-nightly-gfx1151 && check-output ./result --target gfx1151",
    "check-output ./result --json --allow-missing 'libpython3*.so*'",
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
  const [outPath] = operands as [string];
  let report;
  try {
    report = await checkOutput(outPath, {
      ...(values.target === undefined ? {} : { target: values.target }),
      ...(values.isa.length === 0 ? {} : { isas: values.isa }),
      allowMissing: values["allow-missing"],
    });
  } catch (error) {
    if (error instanceof RangeError || error instanceof TypeError) {
      throw new UsageError(`${error.message} (see --help)`);
    }
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
