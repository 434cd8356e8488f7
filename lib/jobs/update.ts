/**
 * The update job behind `scripts/update.ts`: read the registry in flake.nix,
 * list the index, choose one version for every tracked target, prefetch the
 * tarballs, then rewrite the version, base URL and every hash in one atomic
 * write — or leave the file exactly as it was.
 *
 * The registry is the `nightly` attribute set of flake.nix:
 *
 * ```nix
 * nightly = {
 *   baseUrl = "https://rocm.nightlies.amd.com/tarball/";
 *   version = "7.12.0a20260308";
 *   srcHashes = {
 *     gfx1151 = "sha256-…";
 *     gfx110X-all = null;
 *   };
 * };
 * ```
 *
 * The keys of `srcHashes` are the tracked targets (tarball families). A
 * tracked target the index does not carry at all is pinned to `null` and
 * reported as a warning; see {@linkcode chooseRelease}.
 *
 * With channels (lib/flake/channels.ts) the registry is one set per channel
 * (`nightly`, `stable`, `rc`): an update rewrites one channel's set and no
 * byte of the others. A channel's `skip` list holds known-bad versions that
 * are never picked; its `mirrors` are checked to serve each new tarball at
 * the size hashed. Every channel set must be written in the plain form the
 * editor rewrites (see requirePlainForms in lib/flake/flake_edit.ts), else the
 * update is refused before any request. With a gate (lib/jobs/update_gate.ts), the candidate flake is
 * tried by a command before it is written.
 *
 * One target alone (`only`): `update gfx1151` moves only the named targets.
 * Their new version goes into the channel's optional `versions` set
 * (`versions.gfx1151 = "…";`) while the other targets keep `version` and
 * their hashes, so every hash describes the version it was computed for
 * (nix/resolve.nix reads the same set). When no other target has a hash, the
 * channel's `version` itself moves. An update of every target moves
 * `version` and sets each entry of `versions` back to `null`.
 *
 * A failed download does not stop the others already running, and keeps
 * what finished and what was received: each download goes into the download
 * cache (lib/fetch/download_cache.ts), where the next run continues it by
 * `Range`; with a store, a finished file then goes into the store and the
 * cache records its hash and store path, which the next run reuses without
 * downloading while the path is valid and the server's file the same. The
 * flake is written only when every download succeeded.
 *
 * @module
 */

import { displayUrl } from "../cli/display.ts";
import { basename } from "node:path";
import { addChannel, CHANNELS, channelsIn, isChannel, requireChannel } from "../flake/channels.ts";
import {
  appendToList,
  applyEdits,
  type BindingChange,
  type BindingEdit,
  type EditResult,
  listAttrNames,
  MissingBindingError,
  parseAttrPath,
  readBinding,
  readStringList,
  requirePlainForms,
} from "../flake/flake_edit.ts";
import {
  checkFlakeWritable,
  lockFlakeFile,
  readFlakeFile,
  writeFlakeFile,
} from "../flake/flake_file.ts";
import { formatHash } from "../hash/hash.ts";
import { type IndexEntry, type IndexFormat, listIndex } from "../releases/index_listing.ts";
import { checkMirrors } from "../fetch/mirror_check.ts";
import { HttpStatusError, type RetryInfo } from "../fetch/download.ts";
import type { DownloadCache } from "../fetch/download_cache.ts";
import { prefetch } from "../fetch/prefetch.ts";
import { chooseRelease, type HeldBack } from "../releases/release_choice.ts";
import { folderUrl, isValidFamily, tarballUrl } from "../releases/tarball_name.ts";
import { isKnownTarget, resolveTarget } from "../releases/targets.ts";
import { coveringFamily } from "../releases/target_names.ts";
import { compareVersions, isValidVersion, parseVersion } from "../releases/versions.ts";
import { unifiedDiff } from "../cli/unified_diff.ts";
import { runGate } from "./update_gate.ts";

/** Options for {@linkcode updateFlake}. */
export interface UpdateOptions {
  /**
   * The flake file to update.
   *
   * @default {"flake.nix"}
   */
  flake?: string;
  /**
   * The index to list (TheRock index page, S3 listing URL or autoindex page).
   *
   * @default {the registry's baseUrl}
   */
  index?: string;
  /**
   * Targets to track in addition to the keys of `srcHashes`: families
   * (`gfx110X-all`, `multiarch`) or ISAs (`gfx1100`, resolved through the
   * target table to a family the index has). They must be in the index.
   *
   * @default {[]}
   */
  targets?: string[];
  /**
   * Update only these targets (families or ISAs, resolved like `targets`);
   * the others keep their version and hash. Empty: every tracked target.
   *
   * @default {[]}
   */
  only?: string[];
  /**
   * Keep downloads in this cache while they arrive, continue what a failed
   * run kept there, reuse the record of a tarball an earlier run added to
   * the store, and remove each entry once the flake holds its hash.
   *
   * @default {undefined (no cache)}
   */
  cache?: DownloadCache;
  /** Pin exactly this version instead of the newest one. */
  version?: string;
  /**
   * Only list the index and report what would change; download nothing, write nothing.
   *
   * @default {false}
   */
  dryRun?: boolean;
  /**
   * Also add each tarball to the Nix store as `fetchurl` would. A tarball
   * added stays there when another target fails (a rerun builds with it).
   *
   * @default {false}
   */
  addToStore?: boolean;
  /**
   * Tarballs downloaded at once.
   *
   * @default {2}
   */
  jobs?: number;
  /**
   * Allow plain http to hosts other than loopback (index and downloads).
   *
   * @default {false}
   */
  allowHttp?: boolean;
  /**
   * The attribute path of the registry in the flake.
   *
   * @default {the channel}
   */
  registry?: string;
  /**
   * The channel to update (`nightly`, `stable`, `rc`): its set in the flake
   * is the registry; the other channels stay byte for byte.
   *
   * @default {"nightly"}
   */
  channel?: string;
  /**
   * Versions to add to the channel's `skip` list (known bad), in the same
   * rewrite; they are not picked by this update either.
   *
   * @default {[]}
   */
  skip?: string[];
  /**
   * Pin `version` even when it is in the `skip` list.
   *
   * @default {false}
   */
  force?: boolean;
  /**
   * A shell command that must exit 0 on the candidate flake (in a temporary
   * copy of its folder named by `ROCM_NIGHTLY_FLAKE`) before it is written.
   */
  gate?: string;
  /**
   * The largest index page accepted, in bytes.
   *
   * @default {16777216}
   */
  maxIndexBytes?: number;
  /**
   * Retries of a transient download failure, per tarball.
   *
   * @default {5}
   */
  retries?: number;
  /**
   * Connections per tarball download (see lib/fetch/download.ts).
   *
   * @default {4 for tarballs ≥ 256 MiB whose server accepts ranges, else 1}
   */
  connections?: number;
  /** Called for every tarball to fetch, before the first download starts. */
  onQueue?: (target: string, entry: IndexEntry) => void;
  /** Called when a tarball download starts. */
  onStart?: (target: string, entry: IndexEntry) => void;
  /** Called as a tarball's bytes arrive. */
  onProgress?: (target: string, received: number, total: number | undefined) => void;
  /** Called before a tarball download is retried (`info.retry` is 1 for the first). */
  onRetry?: (target: string, info: RetryInfo) => void;
  /** Called when a tarball is hashed, with its hash and size, as soon as it is. */
  onDone?: (target: string, hash: string, size: number) => void;
  /** Called when a tarball download fails or is stopped by another's failure. */
  onFail?: (target: string, error: Error) => void;
  /** Cancels the update; the flake stays as it was. */
  signal?: AbortSignal;
}

/** What happened to one tracked target. */
export interface TargetUpdate {
  /** The target (a key of `srcHashes`). */
  target: string;
  /** The version of its tarball after the update. */
  version?: string;
  /**
   * `fetched`: downloaded and hashed; `kept`: its hash is current;
   * `unavailable`: the index lacks it, pinned to `null`; `would-fetch`: dry run.
   */
  action: "fetched" | "kept" | "unavailable" | "would-fetch";
  /** The tarball URL, when the index has the target. */
  url: string | null;
  /** The size in bytes, when known. */
  size?: number;
  /** The hash before (`undefined` for a target added by this update). */
  oldHash: string | null | undefined;
  /** The hash after (`undefined` in a dry run for a tarball not fetched). */
  newHash: string | null | undefined;
  /** The store path, when the tarball was added to the Nix store. */
  storePath?: string;
}

/** The outcome of {@linkcode updateFlake}. */
export interface UpdateResult {
  /** The flake file. */
  flake: string;
  /** The registry that was updated (the channel's set, e.g. `nightly`). */
  registry: string;
  /** The gate command's last output lines, when a gate ran and passed. */
  gate?: string[];
  /** The index that was listed. */
  index: string;
  /** The form of the listing. */
  format: IndexFormat;
  /** The version before. */
  oldVersion: string | null;
  /** The version of the updated targets' tarballs after. */
  newVersion: string;
  /**
   * The channel's `version` after: `newVersion`, or the old version when
   * other targets' hashes pin it (the updated targets then name
   * `newVersion` in the channel's `versions` set).
   */
  channelVersion: string | null;
  /** The base URL before. */
  oldBaseUrl: string | null;
  /** The base URL after. */
  newBaseUrl: string;
  /** Nothing to do: the flake already pins the newest release and every hash. */
  current: boolean;
  /** Whether this was a dry run (nothing written or downloaded). */
  dryRun: boolean;
  /** Per tracked target. */
  targets: TargetUpdate[];
  /** A newer version some targets lack. */
  heldBack?: HeldBack;
  /** Things the user should know (targets pinned to null, …). */
  warnings: string[];
  /** The bindings changed (empty when current or in a dry run). */
  changes: BindingChange[];
  /** A unified diff of the flake (empty when current or in a dry run). */
  diff: string;
  /** A suggested commit message, when something changed. */
  commitMessage: string | null;
}

/**
 * Updates the registry of a flake to the newest release of the index for
 * every tracked target. All or nothing: when any step fails (listing, a
 * download, validation, the file changing meanwhile) the flake is untouched.
 * The flake's edit lock (`.flake.nix.update-lock` beside it, also taken by
 * rewrite) keeps two edits of one flake from running at once; the write
 * keeps the file's owner, group and mode, and refuses a hard-linked file.
 *
 * @param options The flake, index, targets and download settings.
 * @returns What changed (or would change, in a dry run).
 * @throws {LockHeldError} When another update or rewrite of the same flake is running.
 * @throws {Error} When the registry, the index or a download is unusable; the
 * message says which and quotes the value.
 *
 * @example Usage
 * ```ts ignore
 * import { updateFlake } from "./update.ts";
 *
 * const result = await updateFlake({ flake: "flake.nix", dryRun: true });
 * console.log(result.current ? "up to date" : `${result.oldVersion} → ${result.newVersion}`);
 * ```
 */
export async function updateFlake(options: UpdateOptions = {}): Promise<UpdateResult> {
  const flake = options.flake ?? "flake.nix";
  const jobs = options.jobs ?? 2;
  if (!Number.isSafeInteger(jobs) || jobs < 1 || jobs > 64) {
    throw new RangeError(`Cannot update with ${jobs} jobs: use 1 to 64`);
  }
  if (options.version !== undefined) parseVersion(options.version);
  for (const version of options.skip ?? []) parseVersion(version);
  // The channel's set is the registry (an explicit registry path wins).
  if (options.channel !== undefined && options.registry === undefined) {
    options = { ...options, registry: options.channel };
  }
  if (options.dryRun) return await run(flake, jobs, options);
  await using _lock = await lockFlakeFile(flake, `update "${flake}"`);
  return await run(flake, jobs, options);
}

async function run(flake: string, jobs: number, options: UpdateOptions): Promise<UpdateResult> {
  const file = basename(flake);
  const registry = options.registry ?? "nightly";
  const flakeFile = await readFlakeFile(flake);
  // Before the downloads: the write would refuse a hard-linked file anyway.
  if (!options.dryRun) await checkFlakeWritable(flakeFile);
  const source = flakeFile.text;
  const at = (name: string): string => `${registry}.${name}`;
  // Every channel set, and the registry, must be written so the editor sees
  // every binding in it: else the version could move while a hash it cannot
  // see stays behind.
  requirePlainForms(source, [...new Set([parseAttrPath(registry)[0]!, ...CHANNELS])], {
    file,
    action: "update",
  });
  // `--channel rc` on a flake without an rc set adds one, in the same rewrite:
  // the registry is read from, and edited in, `text`.
  const adding = options.channel !== undefined && isChannel(registry) &&
    !channelsIn(source).includes(registry);
  const text = adding && isChannel(registry) ? addChannel(source, registry, { file }) : source;
  requireChannel(text, registry, { file });
  const mirrors = readStringList(text, at("mirrors"), { file }) ?? [];
  const skip = new Set([
    ...readStringList(text, at("skip"), { file }) ?? [],
    ...options.skip ?? [],
  ]);
  if (options.version !== undefined && skip.has(options.version) && !options.force) {
    throw new Error(
      `Cannot pin version "${options.version}": it is in ${at("skip")} (known bad); ` +
        "pass --force to pin it anyway",
    );
  }
  const oldBaseUrl = readBinding(text, at("baseUrl"), { file });
  const oldVersion = readBinding(text, at("version"), { file });
  const tracked = listAttrNames(text, at("srcHashes"), { file });
  for (const target of tracked) {
    if (!isValidFamily(target)) {
      throw new SyntaxError(
        `Cannot update ${file}: ${at("srcHashes")}."${target}" is not a TheRock family name`,
      );
    }
  }
  const oldHashes = new Map(tracked.map((t) => [t, readBinding(text, at(`srcHashes.${t}`))]));
  const oldVersions = readVersions(text, at("versions"), file);
  const versionOf = (target: string): string | null => oldVersions.get(target) ?? oldVersion;
  const index = options.index ?? oldBaseUrl;
  if (index === null) {
    throw new TypeError(`Cannot update ${file}: ${at("baseUrl")} is null and no --index was given`);
  }

  const listing = await listIndex(index, {
    allowHttp: options.allowHttp ?? false,
    ...(options.maxIndexBytes === undefined ? {} : { maxBytes: options.maxIndexBytes }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  const families = new Set(listing.entries.map((entry) => entry.family));
  const familyOf = (name: string, verb: string): string => {
    const family = families.has(name) || tracked.includes(name) || !isKnownTarget(name)
      ? name
      : resolveTarget(name, { available: families }).family;
    if (!isValidFamily(family)) {
      throw new SyntaxError(`Cannot ${verb} target "${name}": not a TheRock family or known ISA`);
    }
    return family;
  };
  // Say so when a tracked family already serves a --target: nothing may happen silently.
  const targetNotes: string[] = [];
  const required = (options.targets ?? []).map((name) => {
    const family = familyOf(name, "track");
    const covering = coveringFamily(name, tracked);
    if (covering !== undefined) {
      targetNotes.push(
        tracked.includes(family)
          ? `--target ${name}: already served by the tracked family ${covering}; nothing to add`
          : `--target ${name}: the tracked family ${covering} already serves it; ` +
            `${family} is added as a tarball of its own`,
      );
    }
    return family;
  });
  const only = (options.only ?? []).map((name) => familyOf(name, "update"));
  for (const family of only) {
    if (!tracked.includes(family) && !required.includes(family)) {
      throw new Error(
        `Cannot update "${family}": it is not tracked in ${at("srcHashes")} ` +
          `(tracked: ${tracked.join(", ") || "none"}); add it with --target ${family}`,
      );
    }
  }
  const all = [...new Set([...tracked, ...required])];
  // The targets this run moves: the named ones (and new ones), else all.
  const targets = only.length === 0 ? all : [...new Set([...only, ...required])];
  const others = all.filter((t) => !targets.includes(t));
  // Another target's hash pins the channel's version: it must not move.
  const othersPinned = others.filter((t) =>
    typeof oldHashes.get(t) === "string" && !oldVersions.has(t)
  );
  // A skipped version is never chosen (one named with --version --force is).
  const offered = listing.entries.filter((entry) =>
    !skip.has(entry.version) || entry.version === options.version
  );
  const choice = chooseRelease(offered, targets, {
    required,
    ...(options.version === undefined ? {} : { version: options.version }),
  });
  const newVersion = choice.version;
  const present = Object.values(choice.entries).filter((e): e is IndexEntry => e !== null);
  const folder = commonFolder(present, index);
  // An old base URL that names the same folder (without its final "/", say) stays as written.
  const newBaseUrl = oldBaseUrl !== null && sameFolder(oldBaseUrl, folder) ? oldBaseUrl : folder;
  const pinnedOthers = others.filter((t) => typeof oldHashes.get(t) === "string");
  if (newBaseUrl !== oldBaseUrl && pinnedOthers.length > 0) {
    throw new Error(
      `Cannot update ${targets.join(", ")} alone: the tarballs are in "${displayUrl(folder)}", ` +
        `not in ${at("baseUrl")} "${oldBaseUrl === null ? "null" : displayUrl(oldBaseUrl)}" ` +
        `where ${pinnedOthers.join(", ")} are pinned; update every target to move the base URL`,
    );
  }
  for (const target of targets) {
    const pinned = versionOf(target);
    if (
      options.version === undefined && pinned !== null && isValidVersion(pinned) &&
      !skip.has(pinned) &&
      compareVersions(parseVersion(newVersion), parseVersion(pinned)) < 0
    ) {
      throw new Error(
        `Cannot update ${file}: the newest release "${newVersion}" of "${
          displayUrl(index)
        }" is older than ` +
          `the pinned "${pinned}"${
            pinned === oldVersion ? "" : ` of ${target}`
          } (pass --version ${newVersion} to go back)`,
      );
    }
  }
  // The channel's version moves unless another target's hash pins it; then
  // the targets moved name their version in `versions`.
  const channelVersion = othersPinned.length === 0 ? newVersion : oldVersion;
  const versionEdits = new Map<string, string | null>();
  for (const target of targets) {
    const wanted = channelVersion === newVersion ? null : newVersion;
    if ((oldVersions.get(target) ?? null) !== wanted) versionEdits.set(target, wanted);
  }
  // Only targets named with --target may become new keys of srcHashes; a
  // target pinned apart from the channel may become a key of `versions`.
  const editOptions = {
    file,
    addMissing: required.some((t) => !tracked.includes(t)) || [...versionEdits.values()].some(
      (v) => v !== null,
    ),
  };
  const moved = (target: string): boolean =>
    versionOf(target) !== newVersion || newBaseUrl !== oldBaseUrl;

  const { updates, toFetch, warnings } = planTargets(targets, {
    entries: choice.entries,
    oldHashes,
    moved,
    dryRun: options.dryRun ?? false,
  });
  for (const update of updates) update.version = newVersion;
  warnings.unshift(...listing.warnings, ...targetNotes);
  const result: UpdateResult = {
    flake,
    registry,
    index,
    format: listing.format,
    oldVersion,
    newVersion,
    channelVersion,
    oldBaseUrl,
    newBaseUrl,
    current: false,
    dryRun: options.dryRun ?? false,
    targets: updates,
    ...(choice.heldBack === undefined ? {} : { heldBack: choice.heldBack }),
    warnings,
    changes: [],
    diff: "",
    commitMessage: null,
  };
  const edits = (): BindingEdit[] => [
    ...(channelVersion === oldVersion || channelVersion === null
      ? []
      : [{ path: at("version"), value: channelVersion }]),
    ...[...versionEdits].map(([target, value]) => ({ path: at(`versions.${target}`), value })),
    ...(newBaseUrl === oldBaseUrl ? [] : [{ path: at("baseUrl"), value: newBaseUrl }]),
    ...updates
      .filter((u) => u.newHash !== u.oldHash && u.newHash !== undefined)
      .map((u) => ({ path: at(`srcHashes.${u.target}`), value: u.newHash ?? null })),
  ];
  // Scalar values, then the versions added to the skip list: one rewrite.
  const rewrite = (): EditResult => {
    const edited = applyEdits(text, edits(), editOptions);
    if ((options.skip ?? []).length === 0) return edited;
    const skipped = appendToList(edited.text, at("skip"), options.skip!, {
      file,
      addMissing: true,
    });
    return { text: skipped.text, changes: [...edited.changes, ...skipped.changes] };
  };
  if (toFetch.length === 0 && rewrite().changes.length === 0 && !adding) {
    result.current = true;
    return result;
  }
  if (options.dryRun) {
    result.commitMessage = commitMessage(channelVersion, newVersion, updates, registry, oldVersion);
    return result;
  }

  await fetchAll(toFetch, jobs, options);
  const mirrorWarnings = await Promise.all(toFetch.map(async ({ update, entry }) => {
    if (mirrors.length === 0 || update.size === undefined) return [];
    const found = await checkMirrors(entry.name, update.size, mirrors, {
      allowHttp: options.allowHttp ?? false,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    return found.map((warning) => `${update.target}: ${warning}`);
  }));
  result.warnings.push(...mirrorWarnings.flat());
  const edited = rewrite();
  if (options.gate !== undefined && edited.changes.length > 0) {
    result.gate = await runGate(flake, edited.text, options.gate, {
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  }
  // The downloads take minutes: an edit made meanwhile (by a writer that
  // takes no lock) is kept, checked just before the rename.
  await writeFlakeFile(flakeFile, edited.text);
  // The flake holds the hashes now: the cached bytes have served.
  for (const { entry } of toFetch) await options.cache?.remove(entry.url);
  result.changes = edited.changes;
  result.diff = unifiedDiff(source, edited.text, { path: file });
  result.current = edited.changes.length === 0;
  result.commitMessage = result.current
    ? null
    : commitMessage(channelVersion, newVersion, updates, registry, oldVersion);
  return result;
}

interface Plan {
  updates: TargetUpdate[];
  toFetch: { update: TargetUpdate; entry: IndexEntry }[];
  warnings: string[];
}

// Decides per target: download (version or folder moved, or no hash yet),
// keep, or pin to null (not in the index). An unmoved pin keeps its hash even
// when the file has since vanished from the index: AMD prunes old nightlies.
function planTargets(
  targets: string[],
  context: {
    entries: Record<string, IndexEntry | null>;
    oldHashes: Map<string, string | null>;
    moved: (target: string) => boolean;
    dryRun: boolean;
  },
): Plan {
  const plan: Plan = { updates: [], toFetch: [], warnings: [] };
  for (const target of targets) {
    const entry = context.entries[target] ?? null;
    const oldHash = context.oldHashes.has(target) ? context.oldHashes.get(target)! : undefined;
    if (entry === null) {
      const keep = !context.moved(target) && typeof oldHash === "string";
      plan.warnings.push(
        `${target}: not in the index ${keep ? "(hash kept)" : "→ null (not available)"}`,
      );
      plan.updates.push({
        target,
        action: keep ? "kept" : "unavailable",
        url: null,
        oldHash,
        newHash: keep ? oldHash : null,
      });
      continue;
    }
    const update: TargetUpdate = {
      target,
      action: "kept",
      url: entry.url,
      ...(entry.size === undefined ? {} : { size: entry.size }),
      oldHash,
      newHash: oldHash,
    };
    plan.updates.push(update);
    if (context.moved(target) || typeof oldHash !== "string") {
      update.action = context.dryRun ? "would-fetch" : "fetched";
      update.newHash = undefined;
      plan.toFetch.push({ update, entry });
    }
  }
  return plan;
}

// The channel's `versions` set (absent: none), as a map of the non-null entries.
function readVersions(source: string, path: string, file: string): Map<string, string> {
  const versions = new Map<string, string>();
  let names: string[];
  try {
    names = listAttrNames(source, path, { file });
  } catch (error) {
    if (error instanceof MissingBindingError) return versions;
    throw error;
  }
  for (const name of names) {
    const value = readBinding(source, `${path}."${name}"`, { file });
    if (value !== null) versions.set(name, value);
  }
  return versions;
}

function sameFolder(a: string, b: string): boolean {
  try {
    return folderUrl(a).href === folderUrl(b).href;
  } catch {
    return false;
  }
}

/**
 * Formats an update result for people: `target: old → new` lines, the
 * version and base URL changes, what held back a newer release, and a
 * suggested commit message.
 *
 * @param result The result of {@linkcode updateFlake}.
 * @returns The lines, joined with newlines.
 *
 * @example Usage
 * ```ts ignore
 * import { formatUpdateReport, updateFlake } from "./update.ts";
 *
 * console.log(formatUpdateReport(await updateFlake({ dryRun: true })));
 * ```
 */
export function formatUpdateReport(result: UpdateResult): string {
  const lines: string[] = [];
  const verb = result.dryRun ? "would change" : "changed";
  if (result.current) {
    lines.push(`${result.flake} is up to date: ${result.newVersion}`);
  } else {
    if (result.oldVersion !== result.channelVersion) {
      lines.push(`version: ${result.oldVersion} → ${result.channelVersion}`);
    }
    if (result.oldBaseUrl !== result.newBaseUrl) {
      const old = result.oldBaseUrl === null ? "null" : displayUrl(result.oldBaseUrl);
      lines.push(`baseUrl: ${old} → ${displayUrl(result.newBaseUrl)}`);
    }
    for (const change of result.changes) {
      if (change.path === `${result.registry}.skip`) lines.push(`skip: + ${change.newValue}`);
      if (change.path.startsWith(`${result.registry}.versions.`)) {
        const old = change.oldValue === undefined ? "(new)" : String(change.oldValue);
        lines.push(
          `${change.path.slice(result.registry.length + 1)}: ${old} → ${String(change.newValue)}`,
        );
      }
    }
    for (const t of result.targets) {
      if (t.action === "kept" || (t.action === "unavailable" && t.oldHash === null)) continue;
      const after = t.action === "would-fetch"
        ? `(fetch ${t.url === null ? "" : displayUrl(t.url)})`
        : String(t.newHash);
      lines.push(`${t.target}: ${t.oldHash === undefined ? "(new)" : t.oldHash} → ${after}`);
      if (t.storePath !== undefined) lines.push(`  in the store: ${t.storePath}`);
    }
  }
  if (result.heldBack !== undefined) {
    lines.push(
      `held back: ${result.heldBack.version} is not available for ${result.heldBack.by.join(", ")}`,
    );
  }
  if (!result.current && result.commitMessage !== null) {
    lines.push("", `${verb}; suggested commit message:`, `  ${result.commitMessage}`);
  }
  return lines.join("\n");
}

// The folder the chosen tarballs sit in becomes the registry's baseUrl, and
// Nix rebuilds each URL as baseUrl + name: check that this gives back exactly
// the URLs the index listed.
function commonFolder(entries: IndexEntry[], index: string): string {
  let folder: string | undefined;
  for (const entry of entries) {
    const encoded = encodeURIComponent(entry.name);
    const base = entry.url.endsWith(`/${encoded}`) ? entry.url.slice(0, -encoded.length) : "";
    const normal = base === "" ? "" : folderUrl(base).href;
    if (normal === "" || tarballUrl(normal, entry.family, entry.version) !== entry.url) {
      throw new Error(
        `Cannot use index "${displayUrl(index)}": tarball URL "${
          displayUrl(entry.url)
        }" is not <folder>/<name>`,
      );
    }
    if (folder !== undefined && folder !== normal) {
      throw new Error(
        `Cannot use index "${displayUrl(index)}": the chosen tarballs lie in different folders ("${
          displayUrl(folder)
        }", "${displayUrl(normal)}")`,
      );
    }
    folder = normal;
  }
  if (folder === undefined) {
    throw new Error(`Cannot use index "${displayUrl(index)}": no tarball chosen`);
  }
  return folder;
}

async function fetchAll(
  work: { update: TargetUpdate; entry: IndexEntry }[],
  jobs: number,
  options: UpdateOptions,
): Promise<void> {
  let next = 0;
  const failed: { update: TargetUpdate; entry: IndexEntry; error: unknown }[] = [];
  for (const { update, entry } of work) options.onQueue?.(update.target, entry);
  const worker = async (): Promise<void> => {
    // After a failure no new download starts; those running finish and are kept.
    while (failed.length === 0 && next < work.length) {
      const { update, entry } = work[next++]!;
      try {
        options.onStart?.(update.target, entry);
        const fetched = await prefetch(entry.url, {
          name: entry.name,
          addToStore: options.addToStore ?? false,
          allowHttp: options.allowHttp ?? false,
          ...(options.signal === undefined ? {} : { signal: options.signal }),
          ...(options.cache === undefined ? {} : { cache: options.cache }),
          ...(options.retries === undefined ? {} : { retries: options.retries }),
          ...(options.connections === undefined ? {} : { connections: options.connections }),
          onProgress: ({ received, total }) =>
            options.onProgress?.(update.target, received, total ?? entry.size),
          onRetry: (info) => options.onRetry?.(update.target, info),
        });
        update.newHash = formatHash(fetched.hash, "sri");
        update.size = fetched.size;
        if (fetched.storePath !== null) update.storePath = fetched.storePath;
        options.onDone?.(update.target, update.newHash, fetched.size);
      } catch (error) {
        options.onFail?.(update.target, error as Error);
        if (options.signal?.aborted) throw error;
        failed.push({ update, entry, error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, work.length) }, worker));
  const first = failed[0];
  if (first === undefined) return;
  throw new Error(fetchFailure(first, work, options), { cause: first.error });
}

// One line: which target failed and why, what was kept, and what to run next.
function fetchFailure(
  failure: { update: TargetUpdate; entry: IndexEntry; error: unknown },
  work: { update: TargetUpdate; entry: IndexEntry }[],
  options: UpdateOptions,
): string {
  const { update, entry, error } = failure;
  const done = work.filter((w) => w.update.newHash !== undefined).map((w) => w.update.target);
  const kept = done.length === 0
    ? ""
    : options.addToStore
    ? `; ${done.join(", ")} ${done.length === 1 ? "is" : "are"} in the Nix store`
    : options.cache !== undefined
    ? `; ${done.join(", ")} ${done.length === 1 ? "is" : "are"} in the download cache`
    : "";
  const partial = options.cache !== undefined
    ? " (what was received is kept in the download cache: a rerun continues it)"
    : "";
  // A file the server does not have (404, 410, 403…): that version is broken for this target.
  const gone = error instanceof HttpStatusError && error.status >= 400 && error.status < 500 &&
    error.status !== 408 && error.status !== 429;
  const rest = work.map((w) => w.update.target).filter((t) => t !== update.target);
  const alone = rest.length === 0 ? "" : `, or update the others alone: update ${rest.join(" ")}`;
  const hint = gone
    ? `; if ${entry.version} is broken for ${update.target}, pass --skip ${entry.version}${alone}`
    : "";
  return `Cannot update: fetching ${update.target} (${entry.version}) failed, nothing was written${partial}: ${
    (error as Error).message
  }${kept}${hint}`;
}

function commitMessage(
  channelVersion: string | null,
  newVersion: string,
  updates: TargetUpdate[],
  registry: string,
  oldVersion: string | null,
): string {
  // The nightly keeps the message it always had; other channels are named.
  const prefix = registry === "nightly" ? "rocm-nightly:" : `rocm-nightly: ${registry}`;
  const fetched = updates.filter((u) => u.action !== "kept").map((u) => u.target);
  if (channelVersion === oldVersion && newVersion !== oldVersion) {
    // Targets moved apart from the channel (`versions`).
    return `${prefix} ${updates.map((u) => u.target).join(", ")} -> ${newVersion}`;
  }
  if (oldVersion !== newVersion) return `${prefix} ${oldVersion ?? "null"} -> ${newVersion}`;
  if (fetched.length === 0) return `${prefix} ${newVersion}: skip list`;
  return `${prefix} ${newVersion}: update ${fetched.join(", ")}`;
}
