#!/usr/bin/env -S deno run --allow-net --allow-read
/**
 * `status`: tell whether every pin of flake.nix is still downloadable, per
 * channel and target, before users hit a 404. Run with `--help` for the flags.
 *
 * @module
 */

import { type Channel, channelName } from "../lib/flake/channels.ts";
import { abortOnInterrupt, runMain } from "../lib/cli/cli.ts";
import {
  type Command,
  DEFAULT_TIMEOUT_SECONDS,
  defineCommand,
  filePath,
  formatHelp,
  parseCommandLine,
  seconds,
} from "../lib/cli/command_line.ts";
import { displayJson, displayText } from "../lib/cli/display.ts";
import { findFlake } from "../lib/flake/find_flake.ts";
import { flakeStatus, formatStatusReport, statusOutcome } from "../lib/jobs/status.ts";

const COMMAND = defineCommand({
  name: "status",
  description: `For each channel of flake.nix (nightly, stable, rc) and each tracked target:
the pinned version and its age in days, whether the pinned URL and each mirror
still serve the file and at what size (one HEAD request each), and the newest
version the channel's index offers. Downloads nothing.

A pin is gone when every URL answers 404 or 410; a URL that cannot be reached
is reported as unreachable, and one whose redirect is refused (another scheme,
plain http elsewhere, more than 10 hops) as not verified; neither is gone, and
a pin that no URL was shown to serve is not verified. Credentials in URLs are
shown as ***. Each finding is one line of the report on stdout; stderr gets
one summary line.`,
  flags: {
    flake: {
      type: "string",
      value: "PATH",
      help: "the flake to check (default: flake.nix here or in the nearest folder above)",
      parse: filePath,
    },
    channel: {
      type: "string",
      value: "C",
      multiple: true,
      help: "check only channel C (nightly, stable, rc); repeatable",
      parse: channelName,
    },
    json: { type: "boolean", help: "print the report as JSON" },
    timeout: {
      type: "string",
      value: "S",
      help: `seconds per request (default: ${DEFAULT_TIMEOUT_SECONDS})`,
      parse: seconds(3600),
    },
    "allow-http": { type: "boolean", help: "allow plain http to hosts other than loopback" },
  },
  exitStatus: {
    0: "every pin is served somewhere (warnings may follow)",
    1: "a pin is gone from every URL or not verified (or the check failed)",
    3: "nothing could be checked (no URL answered: refused, DNS, TLS, timeout)",
  },
  examples: ["status", "status --channel nightly --json"],
});

/** The command line and --help of this script (lib/cli/command_line.ts), for tests and docs. */
export const command: Command = COMMAND;

async function main(args: string[]): Promise<number> {
  const { help, values } = parseCommandLine(COMMAND, args);
  if (help) {
    console.log(formatHelp(COMMAND));
    return 0;
  }
  const channels: Channel[] = values.channel;
  const timeout = values.timeout ?? DEFAULT_TIMEOUT_SECONDS;
  // As nix does: flake.nix here, or in the nearest folder above.
  const found = values.flake === undefined ? await findFlake() : undefined;
  if (found?.above) console.error(`status: using ${displayText(found.path)}`);
  const controller = new AbortController();
  using _interrupt = abortOnInterrupt(controller);
  const report = await flakeStatus({
    signal: controller.signal,
    allowHttp: values["allow-http"],
    flake: values.flake ?? found!.path,
    ...(channels.length === 0 ? {} : { channels }),
    timeoutSeconds: timeout,
  });
  // The findings are the report's lines, printed once; stderr gets the summary.
  console.log(values.json ? displayJson(report) : formatStatusReport(report));
  const outcome = statusOutcome(report);
  if (outcome.summary !== null) console.error(`status: ${displayText(outcome.summary)}`);
  return outcome.code;
}

if (import.meta.main) await runMain("status", main);
