/**
 * Why a request got no answer, in words a user can act on.
 *
 * Deno reports a failed connection in several shapes: `fetch()` throws
 * `TypeError: fetch failed` whose `cause` says "error sending request for
 * url (…): client error (Connect): tcp connect error: Connection refused
 * (os error 111)"; `Deno.connect` throws `Deno.errors.ConnectionRefused`,
 * `Deno.errors.TimedOut`, or a plain `Error` "failed to lookup address
 * information: …"; `Deno.connectTls` throws `InvalidData: invalid peer
 * certificate: UnknownIssuer`; an `AbortSignal.timeout` rejects with a
 * `TimeoutError`. {@linkcode networkFailure} reads all of them (the error
 * and its causes) and names the cause: the name does not resolve, the DNS
 * lookup failed, the connection was refused or reset, the network is
 * unreachable, TLS failed, or it timed out.
 *
 * @module
 */

/** The causes {@linkcode networkFailure} tells apart. */
export type NetworkFailureKind =
  | "name-not-found"
  | "name-lookup-failed"
  | "refused"
  | "reset"
  | "unreachable"
  | "tls"
  | "timeout";

/** A failed connection, classified. */
export interface NetworkFailure {
  /** The cause. */
  kind: NetworkFailureKind;
  /** The cause in words, e.g. `connection refused by 127.0.0.1:8080 (nothing listens there)`. */
  words: string;
  /** Deno's own text of the deepest cause, prefixes removed. */
  detail: string;
}

/** Options of {@linkcode networkFailure}. */
export interface NetworkFailureOptions {
  /** The URL asked for, to name its host and port in the words. */
  url?: URL | string;
  /** The timeout that expired, in seconds, to say how long it waited. */
  timeoutSeconds?: number;
}

const NOT_FOUND =
  /name or service not known|nodename nor servname|no address associated with hostname|no such host is known|\bEAI_NONAME\b|\bENOTFOUND\b|NXDOMAIN|no record found/i;
const LOOKUP =
  /dns error|failed to lookup address|temporary failure in name resolution|\bEAI_[A-Z]+\b/i;
const REFUSED = /connection refused|\bECONNREFUSED\b/i;
const RESET = /connection reset|\bECONNRESET\b|broken pipe|\bEPIPE\b/i;
const UNREACHABLE = /network is unreachable|no route to host|\bENETUNREACH\b|\bEHOSTUNREACH\b/i;
const TLS = /invalid peer certificate|certificate|\btls\b|handshake|alert received/i;
const TIMEOUT = /timed out|\btimeout\b|\bETIMEDOUT\b/i;

/**
 * Classifies a failed request or connection: name not found, refused,
 * TLS, timeout… (`null` for any other error: an HTTP framing error, a
 * refusal of the URL policy).
 *
 * @example Usage
 * ```ts
 * import { networkFailure } from "./network_error.ts";
 *
 * const error = new TypeError("fetch failed", {
 *   cause: new Error(
 *     "error sending request for url (https://example.invalid/): client error (Connect): " +
 *       "dns error: failed to lookup address information: Name or service not known",
 *   ),
 * });
 * networkFailure(error, { url: "https://example.invalid/" })?.words;
 * // 'name not found: "example.invalid" does not resolve (DNS)'
 * ```
 *
 * @param error What fetch(), Deno.connect or Deno.connectTls threw.
 * @param options The URL and the timeout, for the words.
 * @returns The cause, or `null` when it is no network failure.
 */
export function networkFailure(
  error: unknown,
  options: NetworkFailureOptions = {},
): NetworkFailure | null {
  const chain = causes(error);
  const detail = deepest(chain);
  const url = typeof options.url === "string" ? safeUrl(options.url) : options.url;
  const host = url?.hostname ?? "the server";
  const port = url === undefined
    ? ""
    : `:${url.port || (url.protocol === "https:" ? "443" : url.protocol === "http:" ? "80" : "")}`;
  const text = chain.map((e) => `${e.name}: ${e.message}`).join("\n");
  const has = (name: string): boolean => chain.some((e) => e.name === name);
  const kind: NetworkFailureKind | null = has("TimeoutError") || has("TimedOut") ||
      TIMEOUT.test(text)
    ? "timeout"
    : has("ConnectionRefused") || REFUSED.test(text)
    ? "refused"
    : NOT_FOUND.test(text)
    ? "name-not-found"
    : LOOKUP.test(text)
    ? "name-lookup-failed"
    : has("ConnectionReset") || RESET.test(text)
    ? "reset"
    : UNREACHABLE.test(text)
    ? "unreachable"
    : TLS.test(text)
    ? "tls"
    : null;
  if (kind === null) return null;
  const words: Record<NetworkFailureKind, () => string> = {
    "name-not-found": () => `name not found: "${host}" does not resolve (DNS)`,
    "name-lookup-failed": () =>
      `name lookup failed: no DNS answer for "${host}" (is the network up?)`,
    refused: () => `connection refused by ${host}${port} (nothing listens there)`,
    reset: () => `connection reset by ${host}${port}`,
    unreachable: () => `network unreachable: no route to ${host}${port}`,
    tls: () => `TLS failure: ${tlsWords(detail)} (${detail})`,
    timeout: () =>
      options.timeoutSeconds === undefined
        ? `timed out: no answer from ${host}${port}`
        : `timed out: no answer from ${host}${port} in ${options.timeoutSeconds} s`,
  };
  return { kind, words: words[kind](), detail };
}

/**
 * The cause of a failed request in words when it is a network failure
 * ({@linkcode networkFailure}), else the error's own text without
 * fetch()'s "fetch failed" and "error sending request for url (…)"
 * prefixes.
 *
 * @example Usage
 * ```ts
 * import { describeNetworkFailure } from "./network_error.ts";
 *
 * describeNetworkFailure(new Deno.errors.ConnectionRefused("Connection refused (os error 111)"), {
 *   url: "http://127.0.0.1:9/",
 * });
 * // "connection refused by 127.0.0.1:9 (nothing listens there)"
 * ```
 *
 * @param error What was thrown.
 * @param options The URL and the timeout, for the words.
 * @returns One line (control characters are the caller's to escape).
 */
export function describeNetworkFailure(
  error: unknown,
  options: NetworkFailureOptions = {},
): string {
  return networkFailure(error, options)?.words ?? deepest(causes(error));
}

function tlsWords(detail: string): string {
  if (/UnknownIssuer|CaUsedAsEndEntity|self[- ]signed/i.test(detail)) {
    return "the server's certificate is not signed by a trusted authority";
  }
  if (/NotValidForName|name mismatch/i.test(detail)) {
    return "the server's certificate is for another name";
  }
  if (/Expired|NotValidYet/i.test(detail)) return "the server's certificate is out of date";
  if (/certificate/i.test(detail)) return "the server's certificate was refused";
  return "the secure connection could not be set up";
}

function causes(error: unknown): Error[] {
  const chain: Error[] = [];
  for (let e: unknown = error; chain.length < 8; e = (e as Error).cause) {
    if (e instanceof Error || e instanceof DOMException) chain.push(e as Error);
    else if (e !== undefined && e !== null) chain.push(new Error(String(e)));
    else break;
    if (!(e instanceof Error) && !(e instanceof DOMException)) break;
  }
  return chain;
}

// The innermost message, without fetch()'s wrappers.
function deepest(chain: Error[]): string {
  const message = chain.at(-1)?.message ?? "unknown error";
  return message
    .replace(/^error sending request for url \([^)]*\): /, "")
    .replace(/^client error \(Connect\): /, "");
}

function safeUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
