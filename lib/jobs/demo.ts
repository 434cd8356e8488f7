/**
 * The demo behind `deno task demo`: the update job end to end, on a machine
 * with no access to AMD. A loopback mirror serves a generated index in
 * TheRock's format and small generated tarballs; the update runs on a
 * temporary copy of the flake; the diff shows what it changed.
 *
 * @module
 */

import { join } from "node:path";
import { onCleanup } from "../fs/cleanup.ts";
import { listAttrNames, readBinding } from "../flake/flake_edit.ts";
import { buildSampleTarball, type MirrorFile, startDemoMirror } from "./demo_mirror.ts";
import { targetTable } from "../releases/targets.ts";
import { parseVersion } from "../releases/versions.ts";
import { updateFlake, type UpdateResult } from "./update.ts";

/**
 * The registry the demo updates when it finds no flake.nix (run from a URL,
 * or before the flake exists): the shape of the `nightly` set in flake.nix.
 */
export const DEMO_REGISTRY =
  `# The registry of rocm-nightly's flake.nix (a stand-in: no flake.nix was found).
{
  nightly = {
    baseUrl = "https://rocm.nightlies.amd.com/tarball/";
    version = "7.12.0a20260308";
    srcHashes = {
      gfx1151 = "sha256-rUhZSqJaTpuc2l6D1Q29oC0yTcTRRU/NO/JAFxaaVRA=";
      gfx110X-all = null;
    };
  };
}
`;

/** Options for {@linkcode runDemo}. */
export interface DemoOptions {
  /**
   * The flake whose registry is updated (a temporary copy is).
   *
   * @default {the project's flake.nix, else {@linkcode DEMO_REGISTRY}}
   */
  flake?: string;
  /** Receives a line for each step, as it happens. */
  log?: (line: string) => void;
}

/** The outcome of {@linkcode runDemo}. */
export interface DemoResult {
  /** Where the registry came from (a path, or "embedded"). */
  source: string;
  /** The update's result (its `flake` path no longer exists). */
  update: UpdateResult;
  /** The unified diff of the update. */
  diff: string;
  /** The requests the mirror answered (paths). */
  requests: string[];
}

/**
 * Runs the demo: serves a generated index with a newer nightly for every
 * tracked target (and a still newer one that only some targets have), runs
 * the update on a temporary copy of the flake against it, and cleans up.
 *
 * @param options The flake to copy and a log for the steps.
 * @returns The update's result and diff.
 *
 * @example Usage
 * ```ts ignore
 * import { runDemo } from "./demo.ts";
 *
 * const { diff } = await runDemo({ log: console.error });
 * console.log(diff);
 * ```
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const log = options.log ?? ((): void => {});
  const { text, source } = await readRegistry(options.flake);
  const tracked = listAttrNames(text, "nightly.srcHashes");
  const pinned = readBinding(text, "nightly.version");
  const [next, later] = nextVersions(pinned);
  log(`registry: ${source} (pinned ${pinned}; tracked ${tracked.join(", ")})`);

  const files: MirrorFile[] = [];
  const mtime = Date.UTC(2026, 2, 10) / 1000;
  for (const [i, target] of tracked.entries()) {
    const isas = (targetTable.families[target]?.isas ?? ["gfx1151"]).slice(0, 3);
    const name = (version: string): string => `therock-dist-linux-${target}-${version}.tar.gz`;
    if (pinned !== null) files.push({ name: name(pinned), mtime: mtime - 86400 });
    files.push({
      name: name(next),
      mtime,
      body: await buildSampleTarball({ isas, version: next }),
    });
    // The newest nightly misses the last target, so the demo shows a held-back release.
    if (i < tracked.length - 1) {
      files.push({ name: name(later), mtime: mtime + 86400 });
    }
    files.push({ name: `therock-dist-windows-${target}-${next}.tar.gz`, mtime });
  }
  await using mirror = startDemoMirror(files);
  log(`mirror: ${mirror.indexUrl} serves a TheRock index of ${files.length} files`);

  const dir = await Deno.makeTempDir({ prefix: "rocm-nightly-demo-" });
  using _cleanup = onCleanup(() => Deno.removeSync(dir, { recursive: true }));
  try {
    const flake = join(dir, "flake.nix");
    await Deno.writeTextFile(flake, text);
    log(`update: ${flake} --index ${mirror.indexUrl}`);
    const update = await updateFlake({ flake, index: mirror.indexUrl });
    return { source, update, diff: update.diff, requests: [...mirror.requests] };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function readRegistry(path: string | undefined): Promise<{ text: string; source: string }> {
  const url = path === undefined ? new URL("../../flake.nix", import.meta.url) : undefined;
  const file = path ?? (url?.protocol === "file:" ? url.pathname : undefined);
  if (file !== undefined) {
    try {
      return { text: await Deno.readTextFile(file), source: file };
    } catch (error) {
      if (path !== undefined || !(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return { text: DEMO_REGISTRY, source: "embedded" };
}

// The two nightlies after the pinned one (the next days of the same branch).
function nextVersions(pinned: string | null): [string, string] {
  let base = "7.12.0";
  let day = Date.UTC(2026, 2, 8);
  try {
    const version = parseVersion(pinned ?? "");
    base = version.base.join(".");
    if (version.date !== undefined) {
      const d = version.date;
      day = Date.UTC(Number(d.slice(0, 4)), Number(d.slice(4, 6)) - 1, Number(d.slice(6, 8)));
    }
  } catch {
    // Not a TheRock version: start from the default nightly.
  }
  const at = (offset: number): string =>
    `${base}a${new Date(day + offset * 86_400_000).toISOString().slice(0, 10).replaceAll("-", "")}`;
  return [at(1), at(2)];
}
