/**
 * Does a URL still serve a file, and at what size? One HEAD request (or,
 * for a server that refuses HEAD, a 1-byte range GET), without downloading
 * the file. `update` asks it of each mirror of a freshly hashed tarball;
 * `status` of every pinned URL.
 *
 * The answer keeps "gone" (404, 410: the server says the file is not there)
 * apart from "unreachable" (no answer: DNS, refused, TLS, timeout) and
 * "error" (any other HTTP status), because only "gone" means a pin is lost.
 *
 * @module
 */

import { checkUrlAllowed } from "./download.ts";

/** What a URL answered. */
export interface UrlProbe {
  /** The URL asked. */
  url: string;
  /**
   * `ok`: it serves the file; `gone`: 404 or 410; `error`: another HTTP
   * status; `unreachable`: no HTTP answer.
   */
  state: "ok" | "gone" | "error" | "unreachable";
  /** The HTTP status, when there was an answer. */
  status?: number;
  /** The file's size in bytes, when the server told it. */
  size?: number;
  /** The Last-Modified time (ms since 1970), when the server told it. */
  lastModified?: number;
  /** What went wrong, for `error` and `unreachable`. */
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
 * @returns What the URL answered (never throws for network or HTTP failures).
 * @throws {TypeError} When `url` is not an http(s) URL allowed by the policy.
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
  checkUrlAllowed(new URL(url), { allowHttp: options.allowHttp ?? false });
  const head = await request(url, "HEAD", options);
  if (head.state !== "ok" && head.state !== "error") return head;
  if (head.state === "ok" && head.size !== undefined) return head;
  const ranged = await request(url, "GET", options);
  // A server whose GET fails as its HEAD did: report the HEAD's answer.
  return ranged.state === "ok" || head.state === "ok" ? { ...head, ...ranged } : ranged;
}

async function request(
  url: string,
  method: "HEAD" | "GET",
  options: ProbeOptions,
): Promise<UrlProbe> {
  const timeout = AbortSignal.timeout((options.timeoutSeconds ?? 30) * 1000);
  const signal = options.signal === undefined
    ? timeout
    : AbortSignal.any([timeout, options.signal]);
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      signal,
      headers: method === "GET" ? { range: "bytes=0-0" } : {},
    });
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : "";
    const detail = timeout.aborted ? "timed out" : `${(error as Error).message} ${cause}`.trim();
    return { url, state: "unreachable", detail };
  }
  await response.body?.cancel().catch(() => {});
  // A redirect must not take the check to plain http elsewhere.
  try {
    checkUrlAllowed(new URL(response.url || url), { allowHttp: options.allowHttp ?? false });
  } catch (error) {
    return { url, state: "error", status: response.status, detail: (error as Error).message };
  }
  const status = response.status;
  const probe: UrlProbe = { url, state: "ok", status };
  const modified = Date.parse(response.headers.get("last-modified") ?? "");
  if (Number.isFinite(modified)) probe.lastModified = modified;
  if (status === 404 || status === 410) return { ...probe, state: "gone" };
  if (status !== 200 && status !== 206) {
    return { ...probe, state: "error", detail: `HTTP ${status} ${response.statusText}` };
  }
  const range = /^bytes \d+-\d+\/(\d+)$/.exec(response.headers.get("content-range") ?? "");
  const length = response.headers.get("content-length");
  if (status === 206 && range !== null) probe.size = Number(range[1]);
  else if (status === 200 && length !== null && /^\d+$/.test(length)) probe.size = Number(length);
  return probe;
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
  const probes = await Promise.all(mirrors.map(async (mirror): Promise<UrlProbe> => {
    const url = mirrorUrl(mirror, name);
    try {
      return await probeUrl(url, options);
    } catch (error) {
      // A mirror the http policy refuses is reported, not fatal.
      if (!(error instanceof TypeError)) throw error;
      return { url, state: "error", detail: error.message };
    }
  }));
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
 * A probe in words: `404 (gone)`, `unreachable: timed out`, `12345 bytes`.
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
  }
}
