#!/usr/bin/env -S deno run --allow-net --allow-read
/**
 * `status`: tell whether every pin of flake.nix is still downloadable, per
 * channel and target, before users hit a 404. Run with `--help` for the flags.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Channel, isChannel } from "../lib/flake/channels.ts";
import { abortOnInterrupt, runMain, UsageError } from "../lib/cli/cli.ts";
import { displayJson, displayText } from "../lib/cli/display.ts";
import { flakeStatus, formatStatusReport, statusOutcome } from "../lib/jobs/status.ts";

const USAGE = `Usage: status [options]

For each channel of flake.nix (nightly, stable, rc) and each tracked target:
the pinned version and its age in days, whether the pinned URL and each mirror
still serve the file and at what size (one HEAD request each), and the newest
version the channel's index offers. Downloads nothing.

A pin is gone when every URL answers 404 or 410; a URL that cannot be reached
is reported as unreachable, and one whose redirect is refused (another scheme,
plain http elsewhere, more than 10 hops) as not verified; neither is gone, and
a pin that no URL was shown to serve is not verified. Credentials in URLs are
shown as ***. Each finding is one line of the report on stdout; stderr gets
one summary line.

Options:
  --flake PATH      the flake to check (default: flake.nix)
  --channel C       check only channel C (nightly, stable, rc); repeatable
  --json            print the report as JSON
  --timeout S       seconds per request (default: 30)
  --allow-http      allow plain http to hosts other than loopback
  -h, --help        show this help

Exit status: 0 every pin is served somewhere (warnings may follow), 1 a pin is
gone from every URL or not verified (or the check failed), 2 usage error,
3 nothing could be checked (no URL answered: refused, DNS, TLS, timeout),
128+N ended by signal N.

Examples:
  status
  status --channel nightly --json
`;

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      flake: { type: "string" },
      channel: { type: "string", multiple: true },
      json: { type: "boolean" },
      timeout: { type: "string" },
      "allow-http": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`Unexpected argument "${positionals[0]}"`);
  const channels: Channel[] = [];
  for (const channel of values.channel ?? []) {
    if (!isChannel(channel)) {
      throw new UsageError(`Invalid --channel "${channel}": use nightly, stable or rc`);
    }
    channels.push(channel);
  }
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(timeout > 0 && timeout <= 3600)) {
    throw new UsageError(`Invalid --timeout "${values.timeout}": use 1 to 3600 seconds`);
  }
  const controller = new AbortController();
  using _interrupt = abortOnInterrupt(controller);
  const report = await flakeStatus({
    signal: controller.signal,
    allowHttp: values["allow-http"] ?? false,
    ...(values.flake === undefined ? {} : { flake: values.flake }),
    ...(channels.length === 0 ? {} : { channels }),
    ...(timeout === undefined ? {} : { timeoutSeconds: timeout }),
  });
  // The findings are the report's lines, printed once; stderr gets the summary.
  console.log(values.json ? displayJson(report) : formatStatusReport(report));
  const outcome = statusOutcome(report);
  if (outcome.summary !== null) console.error(`status: ${displayText(outcome.summary)}`);
  return outcome.code;
}

if (import.meta.main) await runMain("status", main);
