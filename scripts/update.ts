#!/usr/bin/env -S deno run --allow-net --allow-read --allow-write --allow-run=nix-store,nix-daemon,sh --allow-env=HTTPS_PROXY,https_proxy,HTTP_PROXY,http_proxy,ALL_PROXY,all_proxy,NIX_REMOTE,NIX_CONFIG,NIX_CONF_DIR,NIX_STORE_DIR,NIX_STATE_DIR,TMPDIR,XDG_CACHE_HOME,HOME
/**
 * `update`: move the registry in flake.nix to the newest TheRock release that
 * every tracked target has, prefetching each tarball, in one atomic rewrite.
 * Run with `--help` for the flags.
 *
 * @module
 */

import { displayJson, displayText } from "../lib/cli/display.ts";
import { parseArgs } from "node:util";
import { abortOnInterrupt, runMain, UsageError } from "../lib/cli/cli.ts";
import { createProgressDisplay, type ProgressBar } from "../lib/cli/progress.ts";
import { isChannel } from "../lib/flake/channels.ts";
import { formatUpdateReport, updateFlake, type UpdateOptions } from "../lib/jobs/update.ts";
import { GateFailedError } from "../lib/jobs/update_gate.ts";
import { isValidVersion } from "../lib/releases/versions.ts";
import { defaultCacheFolder, DownloadCache } from "../lib/fetch/download_cache.ts";
import { storeUsability } from "../lib/store/nix_store.ts";

const USAGE = `Usage: update [options] [TARGET…]

Lists AMD's TheRock index, picks the newest version available for every target
tracked in one channel of flake.nix (the keys of <channel>.srcHashes), never one
in <channel>.skip, downloads and hashes each tarball, checks each of
<channel>.mirrors serves it at that size, then writes the version, base URL and
all hashes in one atomic rewrite. Other channels are not touched. If anything
fails (or the gate does), flake.nix is left exactly as it was; the tarballs that
finished stay in the Nix store, or in the download cache, where a rerun
continues them.

With TARGETs (families or ISAs, e.g. gfx1151), only those move: their version
goes into <channel>.versions while the other targets keep theirs.

Options:
  --flake PATH      the flake to update (default: flake.nix)
  --channel C       the channel to update: nightly, stable or rc (default: nightly);
                    a missing rc set is added, tracking the nightly's targets
  --index URL       index to list: TheRock page, S3 listing, autoindex, or any
                    page naming the tarballs (default: <channel>.baseUrl); its
                    folder becomes <channel>.baseUrl (moving between AMD's hosts)
  --target T        also track T (family like gfx110X-all or multiarch, or an ISA
                    like gfx1100); repeatable; T must be in the index
  --version V       pin exactly version V instead of the newest (update never
                    moves to an older release without it); a skipped V needs --force
  --skip V          add V to <channel>.skip (known bad) in the same rewrite;
                    repeatable
  --force           pin --version V even when V is in <channel>.skip
  --gate CMD        before writing, run sh -c CMD in a temporary copy of the
                    flake's folder holding the new flake.nix (ROCM_NIGHTLY_FLAKE
                    names it); write only if CMD exits 0
  --dry-run         list the index and report what would change; download nothing
  --json            print the result as JSON
  --add-to-store    add each tarball to the Nix store (as fetchurl would); the
                    default when a Nix store is usable (else one notice)
  --no-add-to-store do not add the tarballs to the Nix store
  --no-cache        without a store, do not keep downloads in
                    $XDG_CACHE_HOME/rocm-nightly (default ~/.cache/rocm-nightly)
  --jobs N          downloads at once (default: 2)
  --connections N   connections per download, in 4 MiB ranges (default: 4 for
                    tarballs of 256 MiB or more whose server accepts ranges,
                    except on loopback)
  --allow-http      allow plain http to hosts other than loopback
  --no-progress     no progress bars (there are none unless stderr is a terminal)
  -h, --help        show this help

Exit status: 0 success (or already up to date), 1 the job failed, 2 usage error,
128+N ended by signal N (130 SIGINT, 143 SIGTERM; flake.nix, the lock and the
store as they were).

Examples:
  update --dry-run
  update gfx1151
  update --index https://rocm.nightlies.amd.com/tarball-multi-arch/ --target multiarch
  update --channel stable --index https://stable.repo.amd.com/rocm/core/tarball/
  update --skip 7.14.0a20260609 --gate \
    'nix build "path:$ROCM_NIGHTLY_FLAKE#gpuChecks.x86_64-linux.smoke-gfx1151"'
`;

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      flake: { type: "string" },
      index: { type: "string" },
      target: { type: "string", multiple: true },
      version: { type: "string" },
      channel: { type: "string" },
      skip: { type: "string", multiple: true },
      force: { type: "boolean" },
      gate: { type: "string" },
      "dry-run": { type: "boolean" },
      json: { type: "boolean" },
      "add-to-store": { type: "boolean" },
      "no-add-to-store": { type: "boolean" },
      "no-cache": { type: "boolean" },
      jobs: { type: "string" },
      connections: { type: "string" },
      "allow-http": { type: "boolean" },
      "no-progress": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  for (const target of positionals) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(target)) {
      throw new UsageError(`Unexpected argument "${displayText(target)}": not a target name`);
    }
  }
  if (values["add-to-store"] && values["no-add-to-store"]) {
    throw new UsageError("--add-to-store and --no-add-to-store exclude each other");
  }
  if (
    values.jobs !== undefined &&
    !(/^\d+$/.test(values.jobs) && +values.jobs >= 1 && +values.jobs <= 64)
  ) {
    throw new UsageError(`Invalid --jobs "${values.jobs}": use 1 to 64`);
  }
  if (
    values.connections !== undefined &&
    !(/^\d+$/.test(values.connections) && +values.connections >= 1 && +values.connections <= 64)
  ) {
    throw new UsageError(`Invalid --connections "${values.connections}": use 1 to 64`);
  }
  if (values.version !== undefined && !isValidVersion(values.version)) {
    throw new UsageError(`Invalid --version "${values.version}": not a TheRock version`);
  }
  for (const version of values.skip ?? []) {
    if (!isValidVersion(version)) {
      throw new UsageError(`Invalid --skip "${version}": not a TheRock version`);
    }
  }
  if (values.channel !== undefined && !isChannel(values.channel)) {
    throw new UsageError(`Invalid --channel "${values.channel}": use nightly, stable or rc`);
  }
  const dryRun = values["dry-run"] ?? false;
  const options: UpdateOptions = {
    dryRun,
    addToStore: values["add-to-store"] ?? false,
    allowHttp: values["allow-http"] ?? false,
    targets: values.target ?? [],
    only: positionals,
    skip: values.skip ?? [],
    force: values.force ?? false,
    ...(values.channel === undefined ? {} : { channel: values.channel }),
    ...(values.gate === undefined ? {} : { gate: values.gate }),
    ...(values.flake === undefined ? {} : { flake: values.flake }),
    ...(values.index === undefined ? {} : { index: values.index }),
    ...(values.version === undefined ? {} : { version: values.version }),
    ...(values.jobs === undefined ? {} : { jobs: Number(values.jobs) }),
    ...(values.connections === undefined ? {} : { connections: Number(values.connections) }),
  };
  if (!dryRun && !values["add-to-store"] && !values["no-add-to-store"]) {
    // As nix-prefetch-url: into the store by default, when there is one to use.
    const store = await storeUsability();
    if (store.usable) options.addToStore = true;
    else console.error(`update: not adding to the Nix store: ${displayText(store.reason)}`);
  }
  if (!dryRun && !options.addToStore && !values["no-cache"]) {
    const folder = defaultCacheFolder();
    try {
      if (folder === undefined) throw new Error("neither XDG_CACHE_HOME nor HOME names a folder");
      options.cache = await DownloadCache.open(folder);
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
  options.onStart = (target, entry) => bars.set(target, display.bar(target, entry.size));
  options.onProgress = (target, received, total) => bars.get(target)?.update(received, total);
  options.onDone = (target) => bars.get(target)?.done();
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
