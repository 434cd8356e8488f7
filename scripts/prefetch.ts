#!/usr/bin/env -S deno run --allow-net --allow-read --allow-write --allow-run=nix-store,nix-daemon --allow-env=HTTPS_PROXY,https_proxy,HTTP_PROXY,http_proxy,ALL_PROXY,all_proxy,NIX_REMOTE,NIX_CONFIG,NIX_CONF_DIR,NIX_STORE_DIR,NIX_STATE_DIR
/**
 * `prefetch`: hash a URL, file or stdin in one pass at the speed of the CPU's
 * SHA-256, optionally keeping the bytes and seeding the Nix store exactly as
 * `fetchurl` would. Run with `--help` for the flags.
 *
 * @module
 */

import { displayJson, displayText } from "../lib/cli/display.ts";
import { abortOnInterrupt, runMain, UsageError } from "../lib/cli/cli.ts";
import {
  type Command,
  DEFAULT_TIMEOUT_SECONDS,
  defineCommand,
  filePath,
  formatHelp,
  oneOf,
  parseCommandLine,
  seconds,
  ValueError,
  wholeNumber,
} from "../lib/cli/command_line.ts";
import { formatHash, parseHash } from "../lib/hash/hash.ts";
import {
  checkPrefetch,
  defaultName,
  prefetch,
  prefetchJson,
  type PrefetchOptions,
} from "../lib/fetch/prefetch.ts";
import type { ProgressBar, ProgressDisplay } from "../lib/cli/progress.ts";
import { addToStoreByDefault } from "../lib/store/nix_store.ts";

const COMMAND = defineCommand({
  name: "prefetch",
  operands: "<url | path | ->",
  arity: { min: 1, max: 1 },
  description: `Hashes a download (https; http only to loopback hosts), a file or stdin (-),
reading the bytes once, and prints the SRI hash on stdout.`,
  flags: {
    algo: {
      type: "string",
      value: "ALGO",
      help: "hash algorithm: sha256 or sha512 (default: sha256, or that of --expect)",
      parse: oneOf(["sha256", "sha512"]),
    },
    expect: {
      type: "string",
      value: "HASH",
      help:
        "fail (exit 1) unless the hash is HASH (SRI or algo:hash; a bare hex or nix32 hash is of --algo)",
    },
    "add-to-store": {
      type: "boolean",
      help:
        "add the file to the Nix store as fetchurl names it, print the store path on a second line (a later build downloads nothing). A local store this process can write (root) gets the file directly, registered with nix-store --register-validity; any other store gets it through nix-daemon --stdio. The default for a URL or a file when a Nix store is usable (else one notice on stderr); stdin needs --name for it",
    },
    "no-add-to-store": { type: "boolean", help: "do not add the file to the Nix store" },
    "via-daemon": {
      type: "boolean",
      help: "with --add-to-store, always go through nix-daemon --stdio",
    },
    name: {
      type: "string",
      value: "NAME",
      help: "store name (default: the URL's last path component)",
    },
    output: {
      type: "string",
      short: "o",
      value: "FILE",
      help: "keep the bytes in FILE (written only once complete and verified)",
      parse: filePath,
    },
    json: {
      type: "boolean",
      help: "print the result as JSON: name, size, hash, nix32, hex, url or path, storePath",
    },
    "no-progress": {
      type: "boolean",
      help: "no progress bar (there is none unless stderr is a terminal)",
    },
    retries: {
      type: "string",
      value: "N",
      help: "retries of a transient download failure (default: 5)",
      parse: wholeNumber(0, 100),
    },
    timeout: {
      type: "string",
      value: "S",
      help: `give up an attempt after S seconds without data (default: ${DEFAULT_TIMEOUT_SECONDS})`,
      parse: seconds(3600),
    },
    "max-bytes": {
      type: "string",
      value: "SIZE",
      help: "refuse larger downloads; SIZE in bytes or with K/M/G/T (default: 32G)",
      parse: byteSize,
    },
    connections: {
      type: "string",
      value: "N",
      help:
        "fetch in 4 MiB ranges over up to N connections when the server accepts ranges (default: 4 for files of 256 MiB or more, 1 on loopback); memory: about 64 MiB + (N + 2) x 4 MiB, whatever the size",
      parse: wholeNumber(1, 64),
    },
    "allow-http": { type: "boolean", help: "allow plain http to any host" },
  },
  exitStatus: { 0: "success", 1: "the job failed (temporaries removed)" },
  examples: [
    "prefetch --add-to-store \\\n    https://rocm.nightlies.amd.com/tarball/therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz",
    "prefetch --json --algo sha512 -o rocm.tar.gz https://example.com/rocm.tar.gz",
    "curl -sL https://example.com/x.tar.gz | prefetch --expect sha256-… -",
  ],
});

/** The command line and --help of this script (lib/cli/command_line.ts), for tests and docs. */
export const command: Command = COMMAND;

function byteSize(text: string): number {
  if (!/^\d+[KMGT]?$/i.test(text)) {
    throw new ValueError("expected bytes, or a number with K, M, G or T (e.g. 32G)");
  }
  const units: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };
  const unit = units[text.at(-1)!.toUpperCase()];
  return unit === undefined ? Number(text) : Number(text.slice(0, -1)) * unit;
}

async function main(args: string[]): Promise<number> {
  const { help, values, operands } = parseCommandLine(COMMAND, args);
  if (help) {
    console.log(formatHelp(COMMAND));
    return 0;
  }
  const source = operands[0]!;
  if (values["add-to-store"] && values["no-add-to-store"]) {
    throw new UsageError("--add-to-store and --no-add-to-store exclude each other (see --help)");
  }
  const options: PrefetchOptions = { addToStore: values["add-to-store"] ?? false };
  // As nix-prefetch-url: into the store by default, when there is one to use.
  const byDefault = !values["add-to-store"] && !values["no-add-to-store"] &&
    (source !== "-" || values.name !== undefined);
  if (values["via-daemon"]) {
    if (!options.addToStore) throw new UsageError("--via-daemon needs --add-to-store");
    options.viaDaemon = true;
  }
  if (values.algo !== undefined) options.algorithm = values.algo;
  if (values.name !== undefined) options.name = values.name;
  if (values.output !== undefined) options.output = values.output;
  if (values["allow-http"]) options.allowHttp = true;
  try {
    if (values.expect !== undefined) {
      const algorithm = options.algorithm;
      options.expect = parseHash(values.expect, algorithm === undefined ? {} : { algorithm });
    }
    checkPrefetch(source, options);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.retries !== undefined) options.retries = values.retries;
  options.timeoutSeconds = values.timeout ?? DEFAULT_TIMEOUT_SECONDS;
  if (values["max-bytes"] !== undefined) options.maxBytes = values["max-bytes"];
  if (values.connections !== undefined) options.connections = values.connections;
  if (byDefault) {
    const store = await addToStoreByDefault();
    if (store.add) {
      options.addToStore = true;
      try {
        checkPrefetch(source, options);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
    } else {
      console.error(`prefetch: ${displayText(store.notice)}`);
    }
  }

  let display: ProgressDisplay | undefined;
  let shownBar: ProgressBar | undefined;
  if (!values["no-progress"] && Deno.stderr.isTerminal()) {
    // Loaded only for a terminal.
    const progress = await import("../lib/cli/progress.ts");
    const shown = display = progress.createProgressDisplay({ enabled: true });
    const bar = shownBar = shown.bar(values.name ?? defaultName(source), undefined);
    options.onProgress = ({ received, total }) => bar.update(received, total);
    options.onRetry = (info) => bar.retry(info);
  }
  const controller = new AbortController();
  using _interrupt = abortOnInterrupt(controller);
  options.signal = controller.signal;
  try {
    const result = await prefetch(source, options);
    shownBar?.done({ size: result.size, hash: formatHash(result.hash, "sri") });
    display?.stop();
    if (values.json) {
      console.log(displayJson(prefetchJson(result)));
    } else {
      console.log(formatHash(result.hash, "sri"));
      if (result.storePath !== null) console.log(result.storePath);
    }
    return 0;
  } finally {
    display?.stop();
  }
}

if (import.meta.main) await runMain("prefetch", main);
