/**
 * Does a URL still serve a file, and at what size? One HEAD request (or,
 * for a server that refuses HEAD, a 1-byte range GET), without downloading
 * the file. `update` asks it of each mirror of a freshly hashed tarball;
 * `status` of every pinned URL.
 *
 * The answer keeps "gone" (404, 410: the server says the file is not there)
 * apart from "unreachable" (no answer: DNS, refused, TLS, timeout), "error"
 * (any other HTTP status) and "unverified" (a URL or redirect that the policy
 * refuses), because only "gone" means a pin is lost, and only "ok" means it
 * is served.
 *
 * Redirects are followed by hand with prefetch's policy
 * ({@linkcode redirectTarget}): each hop is checked before anything is sent
 * to it, so a redirect to another scheme, to plain http elsewhere, or one hop
 * too many is never contacted, and the URL is reported as unverified.
 *
 * The probes' URLs and details are for display: credentials are shown as
 * `***` and control characters a server sent are escaped
 * (lib/cli/display.ts). The requests themselves use the URL as given
 * (`fetch()` sends its credentials as Basic authorization).
 *
 * @module
 */

import { displayText, displayUrl } from "../cli/display.ts";
import { checkUrlAllowed, redirectTarget, validatorOf } from "./download.ts";
import { describeNetworkFailure } from "./network_error.ts";

/** What a URL answered. */
export interface UrlProbe {
  /** The URL asked, as it may be shown (credentials as `***`). */
  url: string;
  /**
   * `ok`: it serves the file; `gone`: 404 or 410; `error`: another HTTP
   * status; `unreachable`: no HTTP answer; `unverified`: not asked, or not
   * followed, because the policy refuses the URL or a redirect (another
   * scheme, plain http elsewhere, no Location, more than 10 hops).
   */
  state: "ok" | "gone" | "error" | "unreachable" | "unverified";
  /** The HTTP status, when there was an answer. */
  status?: number;
  /** The file's size in bytes, when the server told it. */
  size?: number;
  /** The Last-Modified time (ms since 1970), when the server told it. */
  lastModified?: number;
  /** The response's validator (strong ETag, else Last-Modified), when it sent one. */
  validator?: string;
  /** What went wrong, for `error`, `unreachable` and `unverified`. */
  detail?: string;
}

/** Options for {@linkcode probeUrl}. */
export interface ProbeOptions {
  /**
   * Allow plain `http:` to hosts other than loopback.
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
  /** Cancels the probe. */
  signal?: AbortSignal;
}

/**
 * Asks a URL for a file's size without downloading it: HEAD, then a
 * `Range: bytes=0-0` GET when HEAD is refused or gives no length.
 *
 * @param url The file's URL.
 * @param options Plain-http policy, timeout, cancellation.
 * @returns What the URL answered (never throws for network, HTTP or policy
 * failures: a URL the policy refuses is `unverified`).
 *
 * @example Usage
 * ```ts ignore
 * import { probeUrl } from "./mirror_check.ts";
 *
 * const probe = await probeUrl("https://repo.amd.com/rocm/tarball-multi-arch/therock-dist-linux-gfx1151-7.14.0.tar.gz");
 * console.log(probe.state, probe.size);
 * ```
 */
export async function probeUrl(url: string, options: ProbeOptions = {}): Promise<UrlProbe> {
  const shown = displayUrl(url);
  let start: URL;
  try {
    start = new URL(url);
    checkUrlAllowed(start, { allowHttp: options.allowHttp ?? false });
  } catch (error) {
    return { url: shown, state: "unverified", detail: refusal(error) };
  }
  const head = await request(start, shown, "HEAD", options);
  if (head.state !== "ok" && head.state !== "error") return head;
  if (head.state === "ok" && head.size !== undefined) return head;
  const ranged = await request(start, shown, "GET", options);
  // A server whose GET fails as its HEAD did: report the HEAD's answer.
  return ranged.state === "ok" || head.state === "ok" ? { ...head, ...ranged } : ranged;
}

async function request(
  start: URL,
  shown: string,
  method: "HEAD" | "GET",
  options: ProbeOptions,
): Promise<UrlProbe> {
  const seconds = options.timeoutSeconds ?? 30;
  const timeout = AbortSignal.timeout(seconds * 1000);
  const signal = options.signal === undefined
    ? timeout
    : AbortSignal.any([timeout, options.signal]);
  let response: Response;
  for (let hop = 0, url = start;; hop++) {
    try {
      response = await fetch(url, {
        method,
        signal,
        redirect: "manual",
        headers: method === "GET" ? { range: "bytes=0-0" } : {},
      });
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      const detail = describeNetworkFailure(timeout.aborted ? timeout.reason : error, {
        url,
        timeoutSeconds: seconds,
      });
      return { url: shown, state: "unreachable", detail: displayText(detail) };
    }
    await response.body?.cancel().catch(() => {});
    let next: URL | undefined;
    try {
      // Checked before it is followed: a refused hop is never contacted.
      next = redirectTarget(url, response, { allowHttp: options.allowHttp ?? false, hop });
    } catch (error) {
      return {
        url: shown,
        state: "unverified",
        status: response.status,
        detail: refusal(error),
      };
    }
    if (next === undefined) break;
    url = next;
  }
  const status = response.status;
  const probe: UrlProbe = { url: shown, state: "ok", status };
  const modified = Date.parse(response.headers.get("last-modified") ?? "");
  if (Number.isFinite(modified)) probe.lastModified = modified;
  const validator = validatorOf(response.headers);
  if (validator !== undefined) probe.validator = validator;
  if (status === 404 || status === 410) return { ...probe, state: "gone" };
  if (status !== 200 && status !== 206) {
    return {
      ...probe,
      state: "error",
      detail: `HTTP ${status} ${displayText(response.statusText)}`.trimEnd(),
    };
  }
  const range = /^bytes \d+-\d+\/(\d+)$/.exec(response.headers.get("content-range") ?? "");
  const length = response.headers.get("content-length");
  if (status === 206 && range !== null) probe.size = Number(range[1]);
  else if (status === 200 && length !== null && /^\d+$/.test(length)) probe.size = Number(length);
  return probe;
}

/** A refusal of the policy, without download's "Cannot download" (nothing is downloaded). */
function refusal(error: unknown): string {
  return displayText((error as Error).message.replace(/^Cannot download /, ""));
}

/**
 * Checks that each mirror serves a tarball at the size the primary URL had.
 *
 * @param name The tarball's file name (URL-encoded onto each mirror folder).
 * @param size The size hashed from the primary URL.
 * @param mirrors The mirror folder URLs.
 * @param options Plain-http policy, timeout, cancellation.
 * @returns One warning per mirror that lacks the file or has another size.
 *
 * @example Usage
 * ```ts ignore
 * import { checkMirrors } from "./mirror_check.ts";
 *
 * const warnings = await checkMirrors("therock-dist-linux-gfx1151-7.14.0.tar.gz", 1234, [
 *   "https://mirror.example/rocm/",
 * ]);
 * ```
 */
export async function checkMirrors(
  name: string,
  size: number,
  mirrors: readonly string[],
  options: ProbeOptions = {},
): Promise<string[]> {
  const probes = await Promise.all(
    mirrors.map((mirror) => probeUrl(mirrorUrl(mirror, name), options)),
  );
  const warnings: string[] = [];
  for (const probe of probes) {
    if (probe.state !== "ok") {
      warnings.push(`mirror ${probe.url}: ${describeProbe(probe)}`);
    } else if (probe.size !== size) {
      warnings.push(
        `mirror ${probe.url}: serves ${probe.size ?? "an unknown number of"} bytes, ` +
          `the primary ${size}`,
      );
    }
  }
  return warnings;
}

/**
 * The URL of a tarball on a mirror: the folder (a final `/` added) and the
 * URL-encoded name, as nix/resolve.nix builds it.
 *
 * @param mirror The mirror's folder URL.
 * @param name The tarball's file name.
 * @returns The URL.
 *
 * @example Usage
 * ```ts
 * import { mirrorUrl } from "./mirror_check.ts";
 *
 * mirrorUrl("https://m.example/rocm", "therock-dist-linux-gfx1151-7.9.0.dev0+abcdef1.tar.gz");
 * // "https://m.example/rocm/therock-dist-linux-gfx1151-7.9.0.dev0%2Babcdef1.tar.gz"
 * ```
 */
export function mirrorUrl(mirror: string, name: string): string {
  return (mirror.endsWith("/") ? mirror : `${mirror}/`) + encodeURIComponent(name);
}

/**
 * A probe in words: `404 (gone)`, `unreachable: timed out`, `12345 bytes`,
 * `not verified: …`.
 *
 * @param probe A probe from {@linkcode probeUrl}.
 * @returns The description.
 *
 * @example Usage
 * ```ts
 * import { describeProbe } from "./mirror_check.ts";
 *
 * describeProbe({ url: "https://x/", state: "gone", status: 404 }); // "HTTP 404 (gone)"
 * ```
 */
export function describeProbe(probe: UrlProbe): string {
  switch (probe.state) {
    case "ok":
      return probe.size === undefined ? "serves it (size unknown)" : `serves ${probe.size} bytes`;
    case "gone":
      return `HTTP ${probe.status} (gone)`;
    case "error":
      return probe.detail ?? `HTTP ${probe.status}`;
    case "unreachable":
      return `unreachable: ${probe.detail ?? "no answer"}`;
    case "unverified":
      return `not verified: ${probe.detail ?? "refused by the redirect policy"}`;
  }
}
