#!/usr/bin/env -S deno run --allow-read --allow-run=cat,ls --allow-env=ROCM_NIGHTLY_APP_FLAKE
/**
 * `detect`: name the AMD GPUs in this machine from the kernel's KFD topology
 * and print the package, image and NixOS settings that fit them. Run with
 * `--help` for the flags.
 *
 * Permissions: Deno 2 refuses every read under /sys to anything less than
 * `--allow-all` (denoland/deno#27564), whatever `--allow-read` says. Rather
 * than all of them, detect gets `--allow-run=cat,ls`: `cat` and `ls` read
 * the KFD topology for it (lib/fs/special_files.ts), and can neither write
 * nor reach the network.
 *
 * @module
 */

import { displayJson } from "../lib/cli/display.ts";
import { parseArgs } from "node:util";
import { runMain, UsageError } from "../lib/cli/cli.ts";
import { detectInstallation, formatDetection, unknownGpusError } from "../lib/jobs/detect.ts";

const USAGE = `Usage: detect [options]

Reads the KFD topology (/sys/class/kfd/kfd/topology/nodes/*/properties) and
prints, for each AMD GPU: its ISA, the product name, the package that serves it
on each channel of the flake's registry (through the ISA's fallback chain), the
image, and a NixOS snippet. An ISA that AMD ships in no family is reported with
the nearest supported ISA and its HSA_OVERRIDE_GFX_VERSION. With GPUs of several
ISAs it also names the one package that serves them all, if any.

Options:
  --sysfs ROOT   read ROOT/class/kfd/… instead of /sys (a captured tree)
  --flake PATH   the flake whose registry says what is pinned (default:
                 ./flake.nix when it has one, else, in \`nix run\`, the app's
                 own flake; without one, package names are listed without
                 pin status)
  --json         print the same as JSON
  -h, --help     show this help

Exit status: 0 success, 1 no KFD topology, no GPU, or a GPU whose ISA the
target table does not know, 2 usage error.

Examples:
  detect
  nix run github:<owner>/rocm-nightly#detect
  detect --sysfs ./captured-sys --json
`;

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      sysfs: { type: "string" },
      flake: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`Unexpected argument "${positionals[0]}"`);
  for (const flag of ["sysfs", "flake"] as const) {
    if (values[flag] === "") throw new UsageError(`Invalid --${flag} "": expected a path`);
  }
  const appFlake = Deno.env.get("ROCM_NIGHTLY_APP_FLAKE");
  const detection = await detectInstallation({
    ...(values.sysfs === undefined ? {} : { sysfs: values.sysfs }),
    ...(values.flake === undefined ? {} : { flake: values.flake }),
    ...(appFlake === undefined || appFlake === "" ? {} : { appFlake }),
  });
  console.log(
    values.json ? displayJson(detection) : formatDetection(detection).trimEnd(),
  );
  if (detection.unknown.length === 0) return 0;
  console.error(`detect: ${unknownGpusError(detection.unknown)}`);
  return 1;
}

if (import.meta.main) await runMain("detect", main);
