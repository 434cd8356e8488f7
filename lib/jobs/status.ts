/**
 * Is every pin of the flake still downloadable? For each channel of the
 * registry (lib/flake/channels.ts) and each tracked target with a hash: the pinned
 * version and its age in days, whether the pinned URL and each mirror still
 * serve the file and at what size (one HEAD each, lib/fetch/mirror_check.ts), and
 * the newest version the channel's index offers (skip list honoured).
 *
 * A pin is **gone** when every URL answered 404 or 410: a scheduled job can
 * then warn before users hit the 404. A URL that gave no answer is
 * unreachable, and one whose redirect the policy refuses is unverified; both
 * say nothing about the file, so they never make a pin gone — nor served: a
 * pin that no URL was shown to serve, and that is not gone, is **not
 * verified**, and the script fails for it too. AMD keeps nightlies for about
 * 120 days; the age says how close a pin is. A target may be pinned at its
 * own version (`versions.<target>`, lib/flake/channels.ts pinnedVersion), so
 * each pin has its own age, and a channel's age is its oldest pin's: the one
 * AMD deletes first.
 *
 * URLs and server text in the report are for display: credentials as `***`,
 * control characters escaped (lib/cli/display.ts).
 *
 * @module
 */

import { basename } from "node:path";
import { readRegularText } from "../fs/file_kind.ts";
import { displayText, displayUrl } from "../cli/display.ts";
import { type Channel, channelsIn, pinnedVersion, readChannel } from "../flake/channels.ts";
import { MAX_FLAKE_BYTES } from "../flake/flake_file.ts";
import { listIndex } from "../releases/index_listing.ts";
import { describeProbe, mirrorUrl, probeUrl, type UrlProbe } from "../fetch/mirror_check.ts";
import { chooseRelease } from "../releases/release_choice.ts";
import { tarballFileName, tarballUrl } from "../releases/tarball_name.ts";
import { parseVersion } from "../releases/versions.ts";

/** Options for {@linkcode flakeStatus}. */
export interface StatusOptions {
  /**
   * The flake file.
   *
   * @default {"flake.nix"}
   */
  flake?: string;
  /**
   * The channels to check.
   *
   * @default {every channel the flake has}
   */
  channels?: Channel[];
  /**
   * Allow plain http to hosts other than loopback.
   *
   * @default {false}
   */
  allowHttp?: boolean;
  /**
   * Seconds each request may take.
   *
   * @default {30}
   */
  timeoutSeconds?: number;
  /**
   * The time ages are counted to, in ms since 1970.
   *
   * @default {Date.now()}
   */
  now?: number;
  /** Cancels the checks. */
  signal?: AbortSignal;
}

/** One tracked target of a channel. */
export interface TargetStatus {
  /** The target (a key of `srcHashes`). */
  target: string;
  /** The pinned hash (`null`: not pinned, nothing checked). */
  hash: string | null;
  /**
   * The version pinned for this target: `versions.<target>` when set, else
   * the channel's `version`; `null` when not pinned.
   */
  version: string | null;
  /**
   * Days since this pin's build: its version's nightly date, else its
   * pinned file's Last-Modified; `null` when neither is known or not pinned.
   */
  ageDays: number | null;
  /** The pinned URL, then each mirror's, with what each answered. */
  urls: UrlProbe[];
  /** Every URL answered 404 or 410. */
  gone: boolean;
}

/** One channel of the registry. */
export interface ChannelStatus {
  /** The channel. */
  channel: Channel;
  /** The channel's pinned `version` (a target may pin its own: see `targets`). */
  version: string | null;
  /**
   * Days since the oldest pinned build of the channel's targets (each
   * target's {@linkcode TargetStatus.ageDays}); with no target pinned, the
   * age of `version`'s nightly date; `null` when none is known.
   */
  ageDays: number | null;
  /** The channel's baseUrl. */
  baseUrl: string | null;
  /** The newest version the index offers for every tracked target (`null`: see `indexError`). */
  newest: string | null;
  /** Why the index could not tell the newest version. */
  indexError?: string;
  /** Per tracked target. */
  targets: TargetStatus[];
}

/** The outcome of {@linkcode flakeStatus}. */
export interface StatusReport {
  /** The flake file. */
  flake: string;
  /** Per channel. */
  channels: ChannelStatus[];
  /** Pins gone from every URL, as `<channel>.<target>`. */
  gone: string[];
  /**
   * Pins that no URL was shown to serve and that are not gone (unreachable,
   * an HTTP error, a refused redirect), as `<channel>.<target>`.
   */
  unverified: string[];
  /** Things to look at: a URL gone while a mirror serves, unreachable URLs, size mismatches. */
  warnings: string[];
  /**
   * Pinned URLs asked, and of those, how many gave an HTTP answer (any
   * status, a redirect the policy refused included). `asked > 0` with
   * `answered === 0` means nothing could be checked: every URL was refused,
   * unresolvable, failed TLS or timed out (see {@linkcode statusOutcome}).
   */
  urls: { asked: number; answered: number };
}

/**
 * Checks every pin of a flake's registry.
 *
 * @param options The flake, channels, http policy and timeout.
 * @returns The report; `gone` is non-empty when some pin is lost everywhere,
 * `unverified` when no URL of some pin could be shown to serve it.
 * @throws {MissingBindingError} When a channel asked for is not in the flake.
 *
 * @example Usage
 * ```ts ignore
 * import { flakeStatus, formatStatusReport } from "./status.ts";
 *
 * const report = await flakeStatus({ flake: "flake.nix" });
 * console.log(formatStatusReport(report));
 * ```
 */
export async function flakeStatus(options: StatusOptions = {}): Promise<StatusReport> {
  const flake = options.flake ?? "flake.nix";
  // A FIFO would block the read forever, /dev/zero never end it.
  const source = await readRegularText(flake, { maxBytes: MAX_FLAKE_BYTES, what: "the flake" });
  const file = basename(flake);
  const channels = options.channels ?? channelsIn(source);
  const report: StatusReport = {
    flake,
    channels: [],
    gone: [],
    unverified: [],
    warnings: [],
    urls: { asked: 0, answered: 0 },
  };
  const probeOptions = {
    allowHttp: options.allowHttp ?? false,
    ...(options.timeoutSeconds === undefined ? {} : { timeoutSeconds: options.timeoutSeconds }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  };
  for (const channel of channels) {
    const registry = readChannel(source, channel, { file });
    const pinned = Object.entries(registry.srcHashes).filter(
      (entry): entry is [string, string] => typeof entry[1] === "string",
    );
    const now = options.now ?? Date.now();
    const [targets, newest] = await Promise.all([
      Promise.all(pinned.map(async ([target, hash]): Promise<TargetStatus> => {
        const version = pinnedVersion(registry, target);
        const urls = pinUrls(registry.baseUrl, version, target, registry.mirrors);
        // The validator is for the download cache, not part of the report.
        const probes = await Promise.all(urls.map(async (url) => {
          const { validator: _, ...probe } = await probeUrl(url, probeOptions);
          return probe;
        }));
        return {
          target,
          hash,
          version,
          ageDays: ageDays(version, probes, now),
          urls: probes,
          gone: probes.length > 0 && probes.every((p) => p.state === "gone"),
        };
      })),
      newestOffered(registry.baseUrl, Object.keys(registry.srcHashes), registry.skip, options),
    ]);
    for (const [target] of Object.entries(registry.srcHashes).filter(([, h]) => h === null)) {
      targets.push({ target, hash: null, version: null, ageDays: null, urls: [], gone: false });
    }
    const status: ChannelStatus = {
      channel,
      version: registry.version,
      ageDays: oldest(targets) ?? ageDays(registry.version, [], now),
      baseUrl: registry.baseUrl === null ? null : displayUrl(registry.baseUrl),
      newest: newest.version,
      ...(newest.error === undefined ? {} : { indexError: newest.error }),
      targets,
    };
    report.channels.push(status);
    report.warnings.push(...ageWarnings(status));
    for (const t of targets) {
      const name = `${channel}.${t.target}`;
      report.urls.asked += t.urls.length;
      report.urls.answered += t.urls.filter((p) => p.status !== undefined).length;
      if (t.gone) report.gone.push(name);
      else if (t.hash !== null && !t.urls.some((p) => p.state === "ok")) {
        report.unverified.push(name);
      }
      report.warnings.push(...warningsFor(name, t));
    }
  }
  return report;
}

// AMD's retention of nightly tarballs, as announced with ROCm 10.
const NIGHTLY_RETENTION_DAYS = 120;

/**
 * The warnings for a nightly's pins near AMD's retention: one per pinned
 * version that old, naming its targets when the channel pins others at
 * another version.
 */
function ageWarnings(c: ChannelStatus): string[] {
  if (c.channel !== "nightly") return [];
  const pins = c.targets.filter((t) => t.hash !== null);
  const warnings: string[] = [];
  for (const version of new Set(pins.map((t) => t.version))) {
    const at = pins.filter((t) => t.version === version);
    const age = oldest(at);
    if (age === null || age < NIGHTLY_RETENTION_DAYS - 30) continue;
    const whom = at.length === pins.length ? "" : ` (${at.map((t) => t.target).join(", ")})`;
    warnings.push(
      `nightly ${version}${whom} is ${age} days old: AMD keeps nightlies for ` +
        `about ${NIGHTLY_RETENTION_DAYS} days (\`update\` moves to a newer one)`,
    );
  }
  return warnings;
}

/** The largest age of `targets`' pins, or `null` when none is known. */
function oldest(targets: TargetStatus[]): number | null {
  const ages = targets.flatMap((t) => t.hash === null || t.ageDays === null ? [] : [t.ageDays]);
  return ages.length === 0 ? null : Math.max(...ages);
}

function pinUrls(
  baseUrl: string | null,
  version: string | null,
  target: string,
  mirrors: string[],
): string[] {
  if (baseUrl === null || version === null) return [];
  return [
    tarballUrl(baseUrl, target, version),
    ...mirrors.map((m) => mirrorUrl(m, tarballFileName(target, version))),
  ];
}

async function newestOffered(
  baseUrl: string | null,
  tracked: string[],
  skip: string[],
  options: StatusOptions,
): Promise<{ version: string | null; error?: string }> {
  if (baseUrl === null || tracked.length === 0) return { version: null, error: "nothing tracked" };
  try {
    const listing = await listIndex(baseUrl, {
      allowHttp: options.allowHttp ?? false,
      ...(options.timeoutSeconds === undefined ? {} : { timeoutSeconds: options.timeoutSeconds }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    const offered = listing.entries.filter((entry) => !skip.includes(entry.version));
    return { version: chooseRelease(offered, tracked).version };
  } catch (error) {
    if (options.signal?.aborted) throw error;
    return { version: null, error: displayText((error as Error).message) };
  }
}

/** Days since `version`'s nightly date, else since the first Last-Modified of `probes`. */
function ageDays(version: string | null, probes: UrlProbe[], now: number): number | null {
  let built: number | undefined;
  try {
    const date = version === null ? undefined : parseVersion(version).date;
    if (date !== undefined) {
      built = Date.UTC(
        Number(date.slice(0, 4)),
        Number(date.slice(4, 6)) - 1,
        Number(date.slice(6)),
      );
    }
  } catch {
    // Not a version: no date from it.
  }
  built ??= probes.find((p) => p.lastModified !== undefined)?.lastModified;
  return built === undefined ? null : Math.floor((now - built) / 86_400_000);
}

function warningsFor(name: string, target: TargetStatus): string[] {
  const [primary, ...mirrors] = target.urls;
  if (primary === undefined || target.gone) return [];
  const serving = target.urls.find((p) => p.state === "ok");
  const warnings: string[] = [];
  if (primary.state !== "ok") {
    warnings.push(
      `${name}: ${primary.url} ${describeProbe(primary)}` +
        (serving === undefined ? "" : `; served by the mirror ${serving.url}`),
    );
  }
  for (const mirror of mirrors) {
    if (mirror.state !== "ok") {
      warnings.push(`${name}: mirror ${mirror.url} ${describeProbe(mirror)}`);
    } else if (primary.size !== undefined && mirror.size !== primary.size) {
      warnings.push(
        `${name}: mirror ${mirror.url} serves ${mirror.size ?? "an unknown number of"} bytes, ` +
          `the primary ${primary.size}`,
      );
    }
  }
  return warnings;
}

/**
 * Formats a status report for people: one block per channel, one line per
 * target and URL, `GONE` where a pin is lost everywhere; a target pinned at
 * its own version names it and its age, and the channel's line then gives
 * the oldest pin's age. Every finding is on one of these lines, once: what
 * each URL answered (a mirror's size that differs from the primary's
 * included) and a nightly pin near AMD's retention.
 *
 * @param report The report of {@linkcode flakeStatus}.
 * @returns The lines, joined with newlines.
 *
 * @example Usage
 * ```ts
 * import { formatStatusReport } from "./status.ts";
 *
 * formatStatusReport({
 *   flake: "flake.nix",
 *   channels: [],
 *   gone: [],
 *   unverified: [],
 *   warnings: [],
 *   urls: { asked: 0, answered: 0 },
 * });
 * // "flake.nix: no channels"
 * ```
 */
export function formatStatusReport(report: StatusReport): string {
  if (report.channels.length === 0) return `${report.flake}: no channels`;
  const lines: string[] = [];
  const days = (age: number | null): string => age === null ? "age unknown" : `${age} days old`;
  for (const c of report.channels) {
    // A target pinned at its own version says so on its line, with its age.
    const own = (t: TargetStatus): boolean => t.hash !== null && t.version !== c.version;
    const age = c.targets.some(own) ? `oldest pin ${days(c.ageDays)}` : days(c.ageDays);
    const newest = c.newest === null
      ? `newest unknown: ${c.indexError}`
      : c.newest === c.version
      ? "the newest in its index"
      : `newest in its index: ${c.newest}`;
    lines.push(`${c.channel} ${c.version} (${age}; ${newest})`);
    for (const old of ageWarnings(c)) lines.push(`  warning: ${old}`);
    for (const t of c.targets) {
      if (t.hash === null) {
        lines.push(`  ${t.target}: not pinned`);
        continue;
      }
      const served = t.urls.some((p) => p.state === "ok");
      lines.push(
        `  ${t.target}${own(t) ? ` (${t.version}, ${days(t.ageDays)})` : ""}: ${
          t.gone
            ? "GONE from every URL"
            : served
            ? "ok"
            : "NOT VERIFIED: no URL was shown to serve it"
        }`,
      );
      const [primary, ...mirrors] = t.urls;
      if (primary !== undefined) lines.push(`    ${primary.url}: ${describeProbe(primary)}`);
      for (const mirror of mirrors) {
        const differs = mirror.state === "ok" && primary?.size !== undefined &&
          mirror.size !== primary.size;
        lines.push(
          `    mirror ${mirror.url}: ${describeProbe(mirror)}` +
            (differs ? `, the primary ${primary?.size}` : ""),
        );
      }
    }
  }
  return lines.join("\n");
}

/** What a status run ends with: {@linkcode statusOutcome}'s answer. */
export interface StatusOutcome {
  /**
   * The exit status: 0 every pin is served somewhere, 1 a pin is gone from
   * every URL or not verified, 3 nothing could be checked (no pinned URL
   * gave an HTTP answer: refused, name not found, TLS, timeout).
   */
  code: 0 | 1 | 3;
  /** One line for stderr saying so, or `null` when all is well and there is no warning. */
  summary: string | null;
}

/**
 * The exit status and the one summary line of a status report. The findings
 * themselves are the report's lines ({@linkcode formatStatusReport}); the
 * summary only counts and names the pins that failed.
 *
 * @param report The report of {@linkcode flakeStatus}.
 * @returns The exit status and the summary line.
 *
 * @example Usage
 * ```ts
 * import { statusOutcome } from "./status.ts";
 *
 * statusOutcome({
 *   flake: "flake.nix",
 *   channels: [],
 *   gone: [],
 *   unverified: ["nightly.gfx1151"],
 *   warnings: [],
 *   urls: { asked: 2, answered: 0 },
 * }).code; // 3
 * ```
 */
export function statusOutcome(report: StatusReport): StatusOutcome {
  const { asked, answered } = report.urls;
  if (asked > 0 && answered === 0) {
    const probes = report.channels.flatMap((c) => c.targets).flatMap((t) => t.urls);
    const causes = [...new Set(probes.map((p) => p.detail ?? p.state))];
    const shown = causes.slice(0, 2).join("; ") + (causes.length > 2 ? "; …" : "");
    const network = probes.every((p) => p.state === "unreachable");
    return {
      code: 3,
      summary: `nothing could be checked: none of the ${asked} pinned ${
        asked === 1 ? "URL" : "URLs"
      } answered (${shown})${network ? "; check the network, DNS, TLS or proxy" : ""}`,
    };
  }
  const failed = [
    ...report.gone.map((pin) => `${pin} is gone from every URL`),
    ...report.unverified.map((pin) => `${pin} is not verified: no URL was shown to serve it`),
  ];
  if (failed.length > 0) return { code: 1, summary: failed.join("; ") };
  const count = report.warnings.length;
  return {
    code: 0,
    summary: count === 0
      ? null
      : `every pin is served; ${count} ${count === 1 ? "warning" : "warnings"} in the report`,
  };
}
