#!/usr/bin/env -S deno run --allow-net --allow-read --allow-write --allow-run=nix-store,nix-daemon --allow-env=HTTPS_PROXY,https_proxy,HTTP_PROXY,http_proxy,ALL_PROXY,all_proxy,NIX_REMOTE,NIX_CONFIG,NIX_CONF_DIR,NIX_STORE_DIR,NIX_STATE_DIR
/**
 * `prefetch`: hash a URL, file or stdin in one pass at the speed of the CPU's
 * SHA-256, optionally keeping the bytes and seeding the Nix store exactly as
 * `fetchurl` would. Run with `--help` for the flags.
 *
 * @module
 */

import { displayJson, displayText } from "../lib/cli/display.ts";
import { parseArgs } from "node:util";
import { abortOnInterrupt, runMain, UsageError } from "../lib/cli/cli.ts";
import { formatHash, type HashAlgorithm, isHashAlgorithm, parseHash } from "../lib/hash/hash.ts";
import {
  checkPrefetch,
  defaultName,
  prefetch,
  prefetchJson,
  type PrefetchOptions,
} from "../lib/fetch/prefetch.ts";
import type { ProgressDisplay } from "../lib/cli/progress.ts";
import { storeUsability } from "../lib/store/nix_store.ts";

const USAGE = `Usage: prefetch [options] <url | path | ->

Hashes a download (https; http only to loopback hosts), a file or stdin (-),
reading the bytes once, and prints the SRI hash on stdout.

Options:
  --algo sha256|sha512  hash algorithm (default: sha256, or that of --expect)
  --expect HASH         fail (exit 1) unless the hash is HASH (SRI or algo:hash; a bare
                        hex or nix32 hash is of --algo)
  --add-to-store        add the file to the Nix store as fetchurl names it, print the
                        store path on a second line (a later build downloads nothing).
                        The default for a URL or a file when a Nix store is usable
                        (else one notice on stderr); stdin needs --name for it.
                        A local store this process can write (root) gets the file
                        directly, registered with nix-store --register-validity;
                        any other store gets it through nix-daemon --stdio
  --no-add-to-store     do not add the file to the Nix store
  --via-daemon          with --add-to-store, always go through nix-daemon --stdio
  --name NAME           store name (default: the URL's last path component)
  -o, --output FILE     keep the bytes in FILE (written only once complete and verified)
  --json                print {"name","size","hash","nix32","hex","url"|"path","storePath"}
  --no-progress         no progress bar (there is none unless stderr is a terminal)
  --retries N           retries of a transient download failure (default: 5)
  --timeout SECONDS     give up an attempt after this long without data (default: 60)
  --max-bytes SIZE      refuse larger downloads; SIZE in bytes or with K/M/G/T (default: 32G)
  --connections N       fetch in 4 MiB ranges over up to N connections when the server
                        accepts ranges (default: 4 for files of 256 MiB or more, 1 on loopback);
                        memory: about 64 MiB + (N + 2) x 4 MiB, whatever the size
  --allow-http          allow plain http to any host
  -h, --help            show this help

Exit status: 0 success, 1 the job failed, 2 usage error, 128+N ended by signal N
(130 SIGINT, 143 SIGTERM, 129 SIGHUP; temporaries removed).

Examples:
  prefetch --add-to-store \\
    https://rocm.nightlies.amd.com/tarball/therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz
  prefetch --json --algo sha512 -o rocm.tar.gz https://example.com/rocm.tar.gz
  curl -sL https://example.com/x.tar.gz | prefetch --expect sha256-… -`;

function parseCount(flag: string, text: string | undefined, pattern: RegExp): number | undefined {
  if (text === undefined) return undefined;
  if (!pattern.test(text)) throw new UsageError(`Invalid --${flag} "${text}"`);
  const units: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };
  const unit = units[text.at(-1)!.toUpperCase()];
  return unit === undefined ? Number(text) : Number(text.slice(0, -1)) * unit;
}

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      algo: { type: "string" },
      expect: { type: "string" },
      "add-to-store": { type: "boolean" },
      "no-add-to-store": { type: "boolean" },
      "via-daemon": { type: "boolean" },
      name: { type: "string" },
      output: { type: "string", short: "o" },
      json: { type: "boolean" },
      "no-progress": { type: "boolean" },
      retries: { type: "string" },
      timeout: { type: "string" },
      "max-bytes": { type: "string" },
      connections: { type: "string" },
      "allow-http": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("Expected one URL, path or -");
  const source = positionals[0]!;
  if (values.algo !== undefined && !isHashAlgorithm(values.algo)) {
    throw new UsageError(`Invalid --algo "${values.algo}": use sha256 or sha512`);
  }
  if (values["add-to-store"] && values["no-add-to-store"]) {
    throw new UsageError("--add-to-store and --no-add-to-store exclude each other");
  }
  const options: PrefetchOptions = { addToStore: values["add-to-store"] ?? false };
  if (values["via-daemon"]) {
    if (!options.addToStore) throw new UsageError("--via-daemon needs --add-to-store");
    options.viaDaemon = true;
  }
  // As nix-prefetch-url: into the store by default, when there is one to use.
  const byDefault = !values["add-to-store"] && !values["no-add-to-store"] &&
    (source !== "-" || values.name !== undefined);
  if (values.algo !== undefined) options.algorithm = values.algo as HashAlgorithm;
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
  const retries = parseCount("retries", values.retries, /^\d+$/);
  if (retries !== undefined) options.retries = retries;
  const timeout = parseCount("timeout", values.timeout, /^(?=.*[1-9])\d+(\.\d+)?$/);
  if (timeout !== undefined) options.timeoutSeconds = timeout;
  const maxBytes = parseCount("max-bytes", values["max-bytes"], /^\d+[KMGT]?$/i);
  if (maxBytes !== undefined) options.maxBytes = maxBytes;
  const connections = parseCount("connections", values.connections, /^([1-9]|[1-5]\d|6[0-4])$/);
  if (connections !== undefined) options.connections = connections;
  if (byDefault) {
    const store = await storeUsability();
    if (store.usable) {
      options.addToStore = true;
      try {
        checkPrefetch(source, options);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
    } else {
      console.error(
        `prefetch: not adding to the Nix store: ${displayText(store.reason)}`,
      );
    }
  }

  let display: ProgressDisplay | undefined;
  if (!values["no-progress"] && Deno.stderr.isTerminal()) {
    // Loaded only for a terminal: npm's cli-progress costs start-up time and memory.
    const progress = await import("../lib/cli/progress.ts");
    const shown = display = progress.createProgressDisplay({ enabled: true });
    const bar = shown.bar(values.name ?? defaultName(source), undefined);
    options.onProgress = ({ received, total }) => bar.update(received, total);
    options.onRetry = ({ attempt, attempts, error, received }) =>
      shown.log(
        `retry ${attempt}/${attempts} from ${progress.formatBytes(received)}: ${error.message}`,
      );
  }
  const controller = new AbortController();
  using _interrupt = abortOnInterrupt(controller);
  options.signal = controller.signal;
  try {
    const result = await prefetch(source, options);
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
