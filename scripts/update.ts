#!/usr/bin/env -S deno run --allow-net --allow-read --allow-write --allow-run=nix-store,nix-daemon,sh,git --allow-env=HTTPS_PROXY,https_proxy,HTTP_PROXY,http_proxy,ALL_PROXY,all_proxy,NIX_REMOTE,NIX_CONFIG,NIX_CONF_DIR,NIX_STORE_DIR,NIX_STATE_DIR,TMPDIR,XDG_CACHE_HOME,HOME
/**
 * `update`: move the registry in flake.nix to the newest TheRock release that
 * every tracked target has, prefetching each tarball, in one atomic rewrite.
 * Run with `--help` for the flags.
 *
 * @module
 */

import { displayJson, displayText } from "../lib/cli/display.ts";
import { abortOnInterrupt, runMain, UsageError } from "../lib/cli/cli.ts";
import {
  type Command,
  defineCommand,
  filePath,
  formatHelp,
  parseCommandLine,
  ValueError,
  wholeNumber,
} from "../lib/cli/command_line.ts";
import { createProgressDisplay, type ProgressBar } from "../lib/cli/progress.ts";
import { channelName } from "../lib/flake/channels.ts";
import { commitFile } from "../lib/jobs/update_commit.ts";
import { targetName } from "../lib/releases/target_names.ts";
import { isValidVersion } from "../lib/releases/versions.ts";
import { formatUpdateReport, updateFlake, type UpdateOptions } from "../lib/jobs/update.ts";
import { GateFailedError } from "../lib/jobs/update_gate.ts";
import { findFlake } from "../lib/flake/find_flake.ts";
import { DownloadCache } from "../lib/fetch/download_cache.ts";
import { addToStoreByDefault } from "../lib/store/nix_store.ts";

function theRockVersion(text: string): string {
  if (!isValidVersion(text)) {
    throw new ValueError("expected a TheRock version like 7.12.0a20260308");
  }
  return text;
}

const COMMAND = defineCommand({
  name: "update",
  operands: "[TARGET…]",
  arity: { min: 0, max: Number.MAX_SAFE_INTEGER },
  description: `Lists AMD's TheRock index, picks the newest version available for every target
tracked in one channel of flake.nix (the keys of <channel>.srcHashes), never one
in <channel>.skip, downloads and hashes each tarball, checks each of
<channel>.mirrors serves it at that size, then writes the version, base URL and
all hashes in one atomic rewrite. Other channels are not touched. If anything
fails (or the gate does), flake.nix is left exactly as it was; the tarballs that
finished stay in the Nix store (a rerun does not download them again), and what
was received in the download cache, where a rerun continues it.

With TARGETs (families or ISAs, e.g. gfx1151), only those move: their version
goes into <channel>.versions while the other targets keep theirs.`,
  flags: {
    flake: {
      type: "string",
      value: "PATH",
      help: "the flake to update (default: flake.nix here or in the nearest folder above)",
      parse: filePath,
    },
    channel: {
      type: "string",
      value: "C",
      help:
        "the channel to update: nightly, stable or rc (default: nightly); a missing rc set is added, tracking the nightly's targets",
      parse: channelName,
    },
    index: {
      type: "string",
      value: "URL",
      help:
        "index to list: TheRock page, S3 listing, autoindex, or any page naming the tarballs (default: <channel>.baseUrl); its folder becomes <channel>.baseUrl (moving between AMD's hosts)",
    },
    target: {
      type: "string",
      value: "T",
      multiple: true,
      help:
        "also track T (family like gfx110X-all or multiarch, or an ISA like gfx1100; list them: detect --list-targets); repeatable; T must be in the index",
      parse: targetName,
    },
    version: {
      type: "string",
      value: "V",
      help:
        "pin exactly version V instead of the newest (update never moves to an older release without it); a skipped V needs --force",
      parse: theRockVersion,
    },
    skip: {
      type: "string",
      value: "V",
      multiple: true,
      help: "add V to <channel>.skip (known bad) in the same rewrite; repeatable",
      parse: theRockVersion,
    },
    force: { type: "boolean", help: "pin --version V even when V is in <channel>.skip" },
    gate: {
      type: "string",
      value: "CMD",
      help:
        "before writing, run sh -c CMD in a temporary copy of the flake's folder holding the new flake.nix (ROCM_NIGHTLY_FLAKE names it); write only if CMD exits 0",
    },
    "dry-run": {
      type: "boolean",
      help: "list the index and report what would change; download nothing",
    },
    commit: {
      type: "boolean",
      help:
        "after writing, commit flake.nix (and only it) with git, with the commit message update prints",
    },
    json: { type: "boolean", help: "print the result as JSON" },
    "add-to-store": {
      type: "boolean",
      help:
        "add each tarball to the Nix store (as fetchurl would); the default when a Nix store is usable (else one notice)",
    },
    "no-add-to-store": { type: "boolean", help: "do not add the tarballs to the Nix store" },
    "no-cache": {
      type: "boolean",
      help:
        "keep no downloads, nor records of what went into the store, in $XDG_CACHE_HOME/rocm-nightly (default ~/.cache/rocm-nightly)",
    },
    jobs: {
      type: "string",
      value: "N",
      help: "downloads at once (default: 2)",
      parse: wholeNumber(1, 64),
    },
    connections: {
      type: "string",
      value: "N",
      help:
        "connections per download, in 4 MiB ranges (default: 4 for tarballs of 256 MiB or more whose server accepts ranges, except on loopback)",
      parse: wholeNumber(1, 64),
    },
    "allow-http": { type: "boolean", help: "allow plain http to hosts other than loopback" },
    "no-progress": {
      type: "boolean",
      help: "no progress bars (there are none unless stderr is a terminal)",
    },
  },
  exitStatus: {
    0: "success (or already up to date)",
    1: "the job failed (flake.nix as it was)",
  },
  examples: [
    "update --dry-run",
    "update gfx1151",
    "update --commit",
    "update --index https://rocm.nightlies.amd.com/tarball-multi-arch/ --target multiarch",
    "update --channel stable --index https://stable.repo.amd.com/rocm/core/tarball/",
    "update --skip 7.14.0a20260609 --gate \\\n    'nix build \"path:$ROCM_NIGHTLY_FLAKE#gpuChecks.x86_64-linux.smoke-gfx1151\"'",
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
  const only = operands.map((operand) => {
    try {
      return targetName(operand);
    } catch (error) {
      throw new UsageError(
        `invalid target "${displayText(operand)}": ${(error as Error).message} (see --help)`,
      );
    }
  });
  if (values["add-to-store"] && values["no-add-to-store"]) {
    throw new UsageError("--add-to-store and --no-add-to-store exclude each other (see --help)");
  }
  if (values.commit && values["dry-run"]) {
    throw new UsageError("--commit writes a commit, --dry-run nothing: give one (see --help)");
  }
  // As nix does: flake.nix here, or in the nearest folder above.
  const found = values.flake === undefined ? await findFlake() : undefined;
  if (found?.above) console.error(`update: using ${displayText(found.path)}`);
  const options: UpdateOptions = {
    dryRun: values["dry-run"],
    addToStore: values["add-to-store"],
    allowHttp: values["allow-http"],
    targets: values.target,
    only,
    skip: values.skip,
    force: values.force,
    ...(values.channel === undefined ? {} : { channel: values.channel }),
    ...(values.gate === undefined ? {} : { gate: values.gate }),
    flake: values.flake ?? found!.path,
    ...(values.index === undefined ? {} : { index: values.index }),
    ...(values.version === undefined ? {} : { version: values.version }),
    ...(values.jobs === undefined ? {} : { jobs: values.jobs }),
    ...(values.connections === undefined ? {} : { connections: values.connections }),
  };
  if (!options.dryRun && !values["add-to-store"] && !values["no-add-to-store"]) {
    // As nix-prefetch-url: into the store by default, when there is one to use.
    const store = await addToStoreByDefault();
    if (store.add) options.addToStore = true;
    else console.error(`update: ${displayText(store.notice)}`);
  }
  if (!options.dryRun && !values["no-cache"]) {
    try {
      options.cache = await DownloadCache.openDefault();
    } catch (error) {
      console.error(
        `update: no download cache: ${displayText((error as Error).message)} (pass --no-cache)`,
      );
    }
  }
  const display = createProgressDisplay({
    enabled: !values["no-progress"] && Deno.stderr.isTerminal(),
  });
  const bars = new Map<string, ProgressBar>();
  options.onQueue = (target) => bars.set(target, display.queue(target));
  options.onStart = (target, entry) => bars.get(target)?.start(entry.size);
  options.onProgress = (target, received, total) => bars.get(target)?.update(received, total);
  options.onRetry = (target, info) => bars.get(target)?.retry(info);
  options.onDone = (target, hash, size) => bars.get(target)?.done({ size, hash });
  options.onFail = (target, error) =>
    bars.get(target)?.fail(controller.signal.aborted ? "stopped" : error.message.split("\n")[0]!);
  const controller = new AbortController();
  using _interrupt = abortOnInterrupt(controller);
  options.signal = controller.signal;
  try {
    const result = await updateFlake(options);
    display.stop();
    for (const warning of result.warnings) {
      console.error(`update: warning: ${displayText(warning)}`);
    }
    console.log(values.json ? displayJson(result) : formatUpdateReport(result));
    if (values.commit && result.commitMessage !== null) {
      const commit = await commitFile(options.flake ?? "flake.nix", result.commitMessage, {
        signal: controller.signal,
      });
      console.error(`update: committed ${commit} "${displayText(result.commitMessage)}"`);
    }
    return 0;
  } catch (error) {
    // The gate's own output first, then the verdict (runMain's one line).
    if (error instanceof GateFailedError) {
      display.stop();
      for (const line of error.tail) console.error(`update: gate | ${line}`);
    }
    throw error;
  } finally {
    display.stop();
  }
}

if (import.meta.main) await runMain("update", main);
