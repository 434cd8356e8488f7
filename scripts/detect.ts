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
import { runMain } from "../lib/cli/cli.ts";
import {
  type Command,
  defineCommand,
  filePath,
  formatHelp,
  parseCommandLine,
} from "../lib/cli/command_line.ts";
import {
  detectInstallation,
  formatDetection,
  registryPins,
  unknownGpusError,
} from "../lib/jobs/detect.ts";
import { formatTargetList } from "../lib/releases/target_names.ts";
import { targetTable } from "../lib/releases/targets.ts";

const COMMAND = defineCommand({
  name: "detect",
  description: `Reads the KFD topology (/sys/class/kfd/kfd/topology/nodes/*/properties) and
prints, for each AMD GPU: its ISA, the product name, the package that serves it
on each channel of the flake's registry (through the ISA's fallback chain), the
image, and a NixOS snippet. An ISA that AMD ships in no family is reported with
the nearest supported ISA and its HSA_OVERRIDE_GFX_VERSION. With GPUs of several
ISAs it also names the one package that serves them all, if any.

With --list-targets it reads no GPU and lists the target table instead: each
family AMD builds and its ISAs, each ISA's products and the families that
serve it, and what each channel of the flake pins.`,
  flags: {
    sysfs: {
      type: "string",
      value: "ROOT",
      help: "read ROOT/class/kfd/… instead of /sys (a captured tree)",
      parse: filePath,
    },
    flake: {
      type: "string",
      value: "PATH",
      help:
        "the flake whose registry says what is pinned (default: ./flake.nix when it has one, else, in `nix run`, the app's own flake; without one, package names are listed without pin status)",
      parse: filePath,
    },
    "list-targets": {
      type: "boolean",
      help: "list the families, ISAs and products the tools accept, and what each channel pins",
    },
    json: { type: "boolean", help: "print the same as JSON" },
  },
  exitStatus: {
    0: "success",
    1: "no KFD topology, no GPU, or a GPU whose ISA the target table does not know",
  },
  examples: [
    "detect",
    "nix run github:<owner>/rocm-nightly#detect",
    "detect --sysfs ./captured-sys --json",
    "detect --list-targets",
  ],
});

/** The command line and --help of this script (lib/cli/command_line.ts), for tests and docs. */
export const command: Command = COMMAND;

async function main(args: string[]): Promise<number> {
  const { help, values } = parseCommandLine(COMMAND, args);
  if (help) {
    console.log(formatHelp(COMMAND));
    return 0;
  }
  const appFlake = Deno.env.get("ROCM_NIGHTLY_APP_FLAKE");
  if (values["list-targets"]) {
    const flake = {
      ...(values.flake === undefined ? {} : { flake: values.flake }),
      ...(appFlake === undefined || appFlake === "" ? {} : { appFlake }),
    };
    const { channels } = await registryPins(flake);
    console.log(
      values.json
        ? displayJson({
          families: targetTable.families,
          isas: targetTable.isas,
          channels: channels ?? [],
        })
        : formatTargetList(channels ?? []),
    );
    return 0;
  }
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
