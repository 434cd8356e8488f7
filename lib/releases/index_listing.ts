/**
 * Reading the listings of TheRock tarballs, in the three forms they come in:
 *
 * - `therock`: AMD's index pages (`https://rocm.nightlies.amd.com/tarball/`),
 *   whose file list is a JavaScript array in a `<script>`, written by
 *   Python's `json.dumps`: `const files = [{"name": "…", "mtime": 1772937600.0}];`
 * - `s3`: the bucket's anonymous ListObjectsV2 XML (`?list-type=2&prefix=…`),
 *   at most 1000 keys a page, continued with `continuation-token`.
 * - `autoindex`: a plain HTML listing of `<a href>` links, as nginx serves
 *   for a mirror.
 *
 * A page in none of these forms (or a page of links to none of its
 * tarballs) whose text still carries tarball names is read as `text`: the
 * names matching the strict tarball grammar are taken, in the page's
 * folder, with dates from their versions, and the page carries a warning
 * that its format was not recognised. A page without names stays an error.
 *
 * There is no DOM parser in Deno, so each form has a small extractor of its
 * own. Every name passes {@linkcode parseTarballName} before it becomes an
 * entry; whatever else the index holds is counted as skipped.
 *
 * @module
 */

// Scripts run from a URL ignore deno.json, so the version sits in the specifier.
import { z } from "npm:zod@^4";
import { displayText, displayUrl } from "../cli/display.ts";
import { checkUrlAllowed, redirectTarget } from "../fetch/download.ts";
import { describeNetworkFailure } from "../fetch/network_error.ts";
import { parseTarballName } from "./tarball_name.ts";
import { parseVersion } from "./versions.ts";

/** One usable tarball of a listing. */
export interface IndexEntry {
  /** The file name, e.g. `"therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz"`. */
  name: string;
  /** The GPU family the tarball is built for, e.g. `"gfx1151"`. */
  family: string;
  /** The version, e.g. `"7.12.0a20260308"`. */
  version: string;
  /** The download URL (the name URL-encoded, so a `+` appears as `%2B`). */
  url: string;
  /** The modification time in seconds since 1970, when the listing gives it. */
  mtime?: number;
  /** The size in bytes, when the listing gives it. */
  size?: number;
}

/** The form of a listing. */
export type IndexFormat = "therock" | "s3" | "autoindex" | "text";

/** One parsed page of a listing. */
export interface IndexPage {
  /** The form the page was written in. */
  format: IndexFormat;
  /** The usable tarballs, in listing order. */
  entries: IndexEntry[];
  /** How many listed names were not usable tarballs (Windows, tests, other files…). */
  skipped: number;
  /** For a truncated S3 page: the query parameters that fetch the next page. */
  next?: Record<string, string>;
  /** Set when the page was read by its text alone (format `text`). */
  warning?: string;
}

const THEROCK_START = /\b(?:const|let|var)\s+files\s*=\s*\[/;
const S3_ROOT = /<ListBucketResult[\s>]/;
const HREF = /(?:^|\s)href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"']+))/i;

/**
 * Tells which form a listing is written in.
 *
 * @param text The listing.
 * @returns The form.
 * @throws {SyntaxError} When the text is none of the three forms.
 *
 * @example Usage
 * ```ts
 * import { detectIndexFormat } from "./index_listing.ts";
 *
 * detectIndexFormat("<script>const files = [];</script>"); // "therock"
 * ```
 */
export function detectIndexFormat(text: string): Exclude<IndexFormat, "text"> {
  if (S3_ROOT.test(text)) return "s3";
  if (THEROCK_START.test(text)) return "therock";
  if (!anchors(text).next().done) return "autoindex";
  throw new SyntaxError(
    "Cannot read listing: neither a TheRock index (const files = […]), " +
      "S3 ListBucketResult XML nor an HTML page of links",
  );
}

/**
 * Parses one page of a listing, detecting its form.
 *
 * @param text The listing.
 * @param pageUrl The URL the page was fetched from; entry URLs are resolved against it.
 * @returns The page's entries (and, for a truncated S3 page, how to get the next).
 * @throws {SyntaxError} When the page is garbage; the message names `pageUrl`.
 *
 * @example Usage
 * ```ts
 * import { parseIndexPage } from "./index_listing.ts";
 *
 * const page = parseIndexPage(
 *   '<script>const files = [{"name": "therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz", "mtime": 1772937600.0}];</script>',
 *   "https://rocm.nightlies.amd.com/tarball/",
 * );
 * page.entries[0]?.url;
 * // "https://rocm.nightlies.amd.com/tarball/therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz"
 * ```
 */
export function parseIndexPage(text: string, pageUrl: string): IndexPage {
  try {
    let format: Exclude<IndexFormat, "text">;
    try {
      format = detectIndexFormat(text);
    } catch (error) {
      const scanned = scanTarballNames(text, pageUrl);
      if (scanned.entries.length > 0) return scanned;
      throw error;
    }
    switch (format) {
      case "therock":
        return parseTheRockIndex(text, pageUrl);
      case "s3":
        return parseS3Listing(text, pageUrl);
      case "autoindex": {
        // Links, but to none of the tarballs the text names (a script-built page).
        const page = parseAutoindex(text, pageUrl);
        const scanned = page.entries.length === 0 ? scanTarballNames(text, pageUrl) : page;
        return scanned.entries.length > 0 ? scanned : page;
      }
    }
  } catch (error) {
    if (error instanceof SyntaxError && !error.message.includes(pageUrl)) {
      throw new SyntaxError(
        `Cannot read index "${displayUrl(pageUrl)}": ${displayText(stripPrefix(error.message))}`,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
}

const THEROCK_FILES = z.array(
  z.object({
    name: z.string(),
    mtime: z.number().nullable().optional(),
    size: z.number().int().nonnegative().nullable().optional(),
  }),
);

/**
 * Parses AMD's TheRock index page, whose file list is a JavaScript array
 * literal in JSON syntax: `const files = [{"name": "…", "mtime": 1772937600.0}, …];`.
 *
 * @param text The HTML page.
 * @param pageUrl The page's URL (file names are relative to it).
 * @returns The usable tarballs.
 * @throws {SyntaxError} When the page has no such array or it is malformed.
 *
 * @example Usage
 * ```ts
 * import { parseTheRockIndex } from "./index_listing.ts";
 *
 * parseTheRockIndex("<script>const files = [];</script>", "https://example.org/tarball/").entries;
 * // []
 * ```
 */
export function parseTheRockIndex(text: string, pageUrl: string): IndexPage {
  const start = THEROCK_START.exec(text);
  if (start === null) {
    throw new SyntaxError(`Cannot read index "${displayUrl(pageUrl)}": no "const files = [" array`);
  }
  const open = start.index + start[0].length - 1;
  const close = findArrayEnd(text, open);
  if (close < 0) {
    throw new SyntaxError(
      `Cannot read index "${displayUrl(pageUrl)}": the files array is not closed`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text.slice(open, close + 1));
  } catch (error) {
    throw new SyntaxError(
      `Cannot read index "${displayUrl(pageUrl)}": the files array is not JSON: ${
        displayText((error as Error).message)
      }`,
    );
  }
  const parsed = THEROCK_FILES.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SyntaxError(
      `Cannot read index "${displayUrl(pageUrl)}": unexpected files array at ` +
        displayText(`[${issue?.path.join("][") ?? ""}]: ${issue?.message ?? "invalid"}`),
    );
  }
  const folder = pageFolder(pageUrl);
  const entries: IndexEntry[] = [];
  let skipped = 0;
  for (const file of parsed.data) {
    const entry = toEntry(file.name, folder, file.mtime ?? undefined, file.size ?? undefined);
    if (entry === undefined) skipped++;
    else entries.push(entry);
  }
  return { format: "therock", entries, skipped };
}

/**
 * Parses one page of an S3 ListObjectsV2 (or V1) response. Files may sit
 * under a prefix (the multi-arch set lives under `v4/tarball/`); the entry's
 * URL is the bucket URL followed by the key.
 *
 * @param text The XML.
 * @param pageUrl The URL of the listing request.
 * @returns The usable tarballs and, when the page is truncated, the query
 * parameters of the next page (`continuation-token`, or `marker` for V1).
 * @throws {SyntaxError} When the XML is not a ListBucketResult, or is truncated
 * without saying how to continue.
 *
 * @example Usage
 * ```ts
 * import { parseS3Listing } from "./index_listing.ts";
 *
 * const page = parseS3Listing(
 *   "<ListBucketResult><Contents><Key>v4/tarball/therock-dist-linux-multiarch-7.12.0a20260308.tar.gz</Key>" +
 *     "<LastModified>2026-03-08T00:00:00.000Z</LastModified><Size>42</Size></Contents>" +
 *     "<IsTruncated>false</IsTruncated></ListBucketResult>",
 *   "https://therock-nightly-tarball.s3.amazonaws.com/?list-type=2&prefix=v4/tarball/",
 * );
 * page.entries[0]?.url;
 * // "https://therock-nightly-tarball.s3.amazonaws.com/v4/tarball/therock-dist-linux-multiarch-7.12.0a20260308.tar.gz"
 * ```
 */
export function parseS3Listing(text: string, pageUrl: string): IndexPage {
  if (!S3_ROOT.test(text)) {
    throw new SyntaxError(`Cannot read S3 listing "${displayUrl(pageUrl)}": no <ListBucketResult>`);
  }
  const bucket = new URL(pageUrl);
  bucket.search = "";
  bucket.hash = "";
  if (!bucket.pathname.endsWith("/")) bucket.pathname += "/";
  const urlEncoded = xmlText(text, "EncodingType") === "url";
  const entries: IndexEntry[] = [];
  let skipped = 0;
  let lastKey: string | undefined;
  // indexOf rather than a lazy regex: on a page of unclosed <Contents> a
  // regex would rescan to the end from each one (quadratic time).
  for (let pos = 0;;) {
    const open = text.indexOf("<Contents>", pos);
    if (open < 0) break;
    const close = text.indexOf("</Contents>", open);
    if (close < 0) {
      throw new SyntaxError(
        `Cannot read S3 listing "${displayUrl(pageUrl)}": a <Contents> is not closed`,
      );
    }
    const block = text.slice(open + "<Contents>".length, close);
    pos = close + "</Contents>".length;
    const rawKey = xmlText(block, "Key");
    if (rawKey === undefined) {
      throw new SyntaxError(
        `Cannot read S3 listing "${displayUrl(pageUrl)}": a <Contents> has no <Key>`,
      );
    }
    const key = urlEncoded ? safeDecode(rawKey.replaceAll("+", " ")) : rawKey;
    lastKey = rawKey;
    const lastModified = xmlText(block, "LastModified");
    const size = xmlText(block, "Size");
    const entry = key === undefined ? undefined : s3Entry(key, bucket, lastModified, size);
    if (entry === undefined) skipped++;
    else entries.push(entry);
  }
  const page: IndexPage = { format: "s3", entries, skipped };
  if (xmlText(text, "IsTruncated") === "true") {
    const token = xmlText(text, "NextContinuationToken");
    const marker = xmlText(text, "NextMarker") ?? lastKey;
    if (token !== undefined && token !== "") page.next = { "continuation-token": token };
    else if (!/<KeyCount>/.test(text) && marker !== undefined) page.next = { marker };
    else {
      throw new SyntaxError(
        `Cannot read S3 listing "${displayUrl(pageUrl)}": truncated but no NextContinuationToken`,
      );
    }
  }
  return page;
}

/**
 * Parses a plain HTML listing of links (nginx autoindex and the like). Only
 * links to files in the page's own folder count.
 *
 * @param text The HTML.
 * @param pageUrl The page's URL.
 * @returns The usable tarballs.
 *
 * @example Usage
 * ```ts
 * import { parseAutoindex } from "./index_listing.ts";
 *
 * const html = '<pre><a href="../../">../</a>\n' +
 *   '<a href="therock-dist-linux-gfx1151-7.9.0.dev0%2Babcdef1.tar.gz">…</a> 08-Mar-2026 00:00  42\n</pre>';
 * parseAutoindex(html, "http://127.0.0.1:8080/tarball/").entries[0]?.version;
 * // "7.9.0.dev0+abcdef1"
 * ```
 */
export function parseAutoindex(text: string, pageUrl: string): IndexPage {
  const folder = pageFolder(pageUrl);
  const entries: IndexEntry[] = [];
  let skipped = 0;
  for (const anchor of anchors(text)) {
    const href = decodeEntities(anchor.href);
    let target: URL;
    try {
      target = new URL(href, folder);
    } catch {
      skipped++;
      continue;
    }
    const slash = target.pathname.lastIndexOf("/");
    const sameFolder = target.origin === folder.origin &&
      target.pathname.slice(0, slash + 1) === folder.pathname;
    const name = sameFolder ? safeDecode(target.pathname.slice(slash + 1)) : undefined;
    if (name === undefined || name === "") {
      skipped++;
      continue;
    }
    // nginx writes "dd-Mon-yyyy hh:mm  size" after the link.
    const tail = /^[^<\n]*?<\/a>\s+(\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2})\s+(\d+)/.exec(
      text.slice(anchor.end, anchor.end + 200),
    );
    const mtime = tail === null ? undefined : Date.parse(`${tail[1]!} UTC`) / 1000;
    const size = tail === null ? undefined : Number(tail[2]);
    const entry = toEntry(
      name,
      folder,
      mtime !== undefined && Number.isFinite(mtime) ? mtime : undefined,
      size,
    );
    if (entry === undefined) skipped++;
    else entries.push(entry);
  }
  return { format: "autoindex", entries, skipped };
}

// A tarball name in running text: bounded, so a page of "therock-dist-"
// without an end costs linear time. `%2B` and `+` both occur for dev builds.
const NAME_IN_TEXT =
  /(?<![A-Za-z0-9._%+-])therock-dist-[A-Za-z0-9._%+-]{1,200}?\.tar\.gz(?![A-Za-z0-9])/g;

/**
 * Reads a page of unknown form by its text alone: every tarball name in it
 * that passes the strict grammar ({@linkcode parseTarballName}) becomes an
 * entry in the page's folder, once, dated by its version (a nightly's
 * `aYYYYMMDD`; other versions get no date). The page carries a warning.
 *
 * @param text The page.
 * @param pageUrl The page's URL (the names are taken to be in its folder).
 * @returns The entries, with format `text` and a warning when there are any.
 *
 * @example Usage
 * ```ts
 * import { scanTarballNames } from "./index_listing.ts";
 *
 * const page = scanTarballNames(
 *   '{"items": ["therock-dist-linux-gfx1151-10.1.0a20260827.tar.gz"]}',
 *   "https://nightly.repo.amd.com/rocm/core/tarball/",
 * );
 * page.entries[0]?.mtime; // 1787788800 (2026-08-27)
 * ```
 */
export function scanTarballNames(text: string, pageUrl: string): IndexPage {
  const folder = pageFolder(pageUrl);
  const entries: IndexEntry[] = [];
  const seen = new Set<string>();
  let skipped = 0;
  for (const match of text.matchAll(NAME_IN_TEXT)) {
    const name = safeDecode(match[0]);
    if (name === undefined || seen.has(name)) continue;
    seen.add(name);
    const date = parseVersionDate(parseTarballName(name)?.version);
    const mtime = date === undefined
      ? undefined
      : Date.UTC(Number(date.slice(0, 4)), Number(date.slice(4, 6)) - 1, Number(date.slice(6))) /
        1000;
    const entry = toEntry(name, folder, mtime, undefined);
    if (entry === undefined) skipped++;
    else entries.push(entry);
  }
  const page: IndexPage = { format: "text", entries, skipped };
  if (entries.length > 0) {
    page.warning =
      `the index "${displayUrl(pageUrl)}" is in no known format (TheRock index, S3 listing, ` +
      `autoindex): took ${entries.length} tarball names from its text by their grammar, ` +
      "dated by their versions";
  }
  return page;
}

// The href of each <a> tag and the offset after the tag. Each tag is found
// with indexOf and skipped past, so a hostile page costs linear time.
function* anchors(text: string): Generator<{ href: string; end: number }> {
  const start = /<a\s/gi;
  for (let match; (match = start.exec(text)) !== null;) {
    const close = text.indexOf(">", match.index);
    if (close < 0) return;
    start.lastIndex = close + 1;
    const href = HREF.exec(text.slice(match.index + 2, close));
    if (href !== null) yield { href: href[1] ?? href[2] ?? href[3] ?? "", end: close + 1 };
  }
}

/** Options for {@linkcode listIndex}. */
export interface ListIndexOptions {
  /**
   * The most bytes one page may have; a larger response is refused.
   *
   * @default {16 * 1024 * 1024}
   */
  maxBytes?: number;
  /**
   * Seconds one page may take to arrive.
   *
   * @default {60}
   */
  timeoutSeconds?: number;
  /**
   * The most pages of an S3 listing to follow.
   *
   * @default {200}
   */
  maxPages?: number;
  /**
   * Allow plain `http:` to hosts other than the loopback interface.
   *
   * @default {false}
   */
  allowHttp?: boolean;
  /** Cancels the listing. */
  signal?: AbortSignal;
}

/** A complete listing, all pages read. */
export interface IndexListing {
  /** The URL that was listed. */
  url: string;
  /** The form of the listing. */
  format: IndexFormat;
  /** The usable tarballs of every page. */
  entries: IndexEntry[];
  /** How many names were not usable tarballs. */
  skipped: number;
  /** How many pages were fetched. */
  pages: number;
  /** Pages read by their text alone (see {@linkcode scanTarballNames}). */
  warnings: string[];
}

/**
 * Fetches and parses a listing, following S3 pagination.
 *
 * @param url The index page, S3 listing URL or autoindex page.
 * @param options Size cap, timeout, page bound and whether plain http is allowed.
 * @returns Every usable tarball of the listing.
 * @throws {TypeError} When `url` is not a URL, or is plain http to a
 * non-loopback host without `allowHttp`.
 * @throws {RangeError} When a page is larger than `maxBytes`, or the listing
 * has more than `maxPages` pages.
 * @throws {SyntaxError} When a page is garbage (the message names its URL).
 * @throws {Error} When the server answers with an HTTP error or times out.
 *
 * @example Usage
 * ```ts ignore
 * import { listIndex } from "./index_listing.ts";
 *
 * const listing = await listIndex("https://rocm.nightlies.amd.com/tarball-multi-arch/");
 * console.log(listing.entries.length);
 * ```
 */
export async function listIndex(
  url: string,
  options: ListIndexOptions = {},
): Promise<IndexListing> {
  const maxPages = options.maxPages ?? 200;
  let pageUrl = checkUrl(url, options.allowHttp ?? false);
  const seen = new Set<string>();
  const entries: IndexEntry[] = [];
  let skipped = 0;
  let format: IndexFormat | undefined;
  const warnings: string[] = [];
  for (let pages = 1;; pages++) {
    const { text, finalUrl } = await fetchCapped(pageUrl, options);
    const page = parseIndexPage(text, finalUrl);
    format ??= page.format;
    entries.push(...page.entries);
    skipped += page.skipped;
    if (page.warning !== undefined) warnings.push(page.warning);
    if (page.next === undefined) return { url, format, entries, skipped, pages, warnings };
    if (pages >= maxPages) {
      throw new RangeError(`Cannot list "${displayUrl(url)}": more than ${maxPages} pages`);
    }
    const next = new URL(pageUrl);
    for (const [key, value] of Object.entries(page.next)) next.searchParams.set(key, value);
    if (seen.has(next.href)) {
      throw new SyntaxError(
        `Cannot list "${displayUrl(url)}": the S3 listing repeats a continuation token`,
      );
    }
    seen.add(next.href);
    pageUrl = next;
  }
}

async function fetchCapped(
  url: URL,
  options: ListIndexOptions,
): Promise<{ text: string; finalUrl: string }> {
  const maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
  const timeout = AbortSignal.timeout((options.timeoutSeconds ?? 60) * 1000);
  const signal = options.signal === undefined
    ? timeout
    : AbortSignal.any([timeout, options.signal]);
  const { response, finalUrl } = await fetchFollowing(url, signal, timeout, options);
  try {
    if (!response.ok) {
      throw new Error(
        `Cannot list "${displayUrl(url)}": HTTP ${response.status} ${
          displayText(response.statusText)
        }`,
      );
    }
    const declared = Number(response.headers.get("content-length") ?? NaN);
    if (declared > maxBytes) throw tooLarge(url, maxBytes);
    const chunks: Uint8Array[] = [];
    let total = 0;
    if (response.body !== null) {
      try {
        for await (const chunk of response.body) {
          total += chunk.byteLength;
          if (total > maxBytes) throw tooLarge(url, maxBytes);
          chunks.push(chunk);
        }
      } catch (error) {
        if (error instanceof RangeError) throw error;
        const why = describe(error, timeout, url, options);
        throw new Error(`Cannot list "${displayUrl(url)}": ${why}`, {
          cause: error,
        });
      }
    }
    const bytes = new Uint8Array(total);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return { text: new TextDecoder().decode(bytes), finalUrl };
  } finally {
    if (!response.bodyUsed) await response.body?.cancel().catch(() => {});
  }
}

/**
 * Fetches `url`, following redirects by hand: each Location is checked by
 * prefetch's policy (lib/fetch/download.ts redirectTarget: https, or http only
 * to loopback unless allowed, at most 10 hops) BEFORE it is requested, so a
 * redirect to plain http elsewhere is never sent.
 */
async function fetchFollowing(
  url: URL,
  signal: AbortSignal,
  timeout: AbortSignal,
  options: ListIndexOptions,
): Promise<{ response: Response; finalUrl: string }> {
  let current = url;
  for (let hop = 0;; hop++) {
    let response: Response;
    try {
      response = await fetch(current, {
        signal,
        redirect: "manual",
        headers: { accept: "text/html, application/xml" },
      });
    } catch (error) {
      const why = describe(error, timeout, current, options);
      throw new Error(`Cannot list "${displayUrl(current)}": ${why}`, {
        cause: error,
      });
    }
    let next: URL | undefined;
    try {
      next = redirectTarget(current, response, { allowHttp: options.allowHttp ?? false, hop });
    } catch (error) {
      await response.body?.cancel().catch(() => {});
      throw new TypeError((error as Error).message.replace(/^Cannot download /, "Cannot list "));
    }
    if (next === undefined) return { response, finalUrl: current.href };
    await response.body?.cancel().catch(() => {});
    current = next;
  }
}

// The folder a listing page lists: "…/tarball/" for "…/tarball/",
// "…/tarball/index.html" and also "…/tarball" (a server that answers without
// redirecting to the final "/"), since a file name never lacks its extension.
function pageFolder(pageUrl: string): URL {
  const url = new URL(pageUrl);
  url.search = "";
  url.hash = "";
  const last = url.pathname.slice(url.pathname.lastIndexOf("/") + 1);
  if (last !== "" && !last.includes(".")) url.pathname += "/";
  return new URL(".", url);
}

function parseVersionDate(version: string | undefined): string | undefined {
  return version === undefined ? undefined : parseVersion(version).date;
}

function tooLarge(url: URL, maxBytes: number): RangeError {
  return new RangeError(`Cannot list "${displayUrl(url)}": the response exceeds ${maxBytes} bytes`);
}

// Deno's "fetch failed" keeps the reason (DNS, TLS, refused…) in `cause`:
// lib/fetch/network_error.ts says it in words.
function describe(
  error: unknown,
  timeout: AbortSignal,
  url: URL,
  options: ListIndexOptions,
): string {
  return displayText(describeNetworkFailure(timeout.aborted ? timeout.reason : error, {
    url,
    timeoutSeconds: options.timeoutSeconds ?? 60,
  }));
}

function checkUrl(text: string, allowHttp: boolean): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`Cannot list "${displayText(text)}": not a URL`);
  }
  try {
    checkUrlAllowed(url, { allowHttp });
  } catch (error) {
    const detail = (error as Error).message.replace(/^Cannot download "[^"]*": /, "");
    throw new TypeError(`Cannot list "${displayUrl(text)}": ${detail}`);
  }
  return url;
}

// Finds the "]" closing the JSON array opened at `open`, skipping strings.
function findArrayEnd(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // '"': skip the string, honouring escapes
      for (i++; i < text.length; i++) {
        const s = text.charCodeAt(i);
        if (s === 0x5c) i++;
        else if (s === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) depth++;
    else if (c === 0x5d || c === 0x7d) {
      depth--;
      if (depth === 0) return c === 0x5d ? i : -1;
    }
  }
  return -1;
}

function toEntry(
  name: string,
  folder: URL,
  mtime: number | undefined,
  size: number | undefined,
): IndexEntry | undefined {
  const parsed = parseTarballName(name);
  if (parsed === undefined) return undefined;
  const entry: IndexEntry = {
    ...parsed,
    url: folder.href + encodeURIComponent(parsed.name),
  };
  if (mtime !== undefined) entry.mtime = mtime;
  if (size !== undefined && Number.isSafeInteger(size) && size >= 0) entry.size = size;
  return entry;
}

// Key segments may only hold what S3 keys of TheRock hold; anything else (a
// "..", an empty segment, odd characters) is skipped rather than put in a URL.
const KEY_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

function s3Entry(
  key: string,
  bucket: URL,
  lastModified: string | undefined,
  size: string | undefined,
): IndexEntry | undefined {
  const segments = key.split("/");
  if (!segments.every((segment) => KEY_SEGMENT.test(segment))) return undefined;
  const name = segments.pop()!;
  const folder = new URL(bucket.href + segments.map((s) => `${encodeURIComponent(s)}/`).join(""));
  const mtime = lastModified === undefined ? NaN : Date.parse(lastModified) / 1000;
  const bytes = size === undefined || !/^\d+$/.test(size) ? undefined : Number(size);
  return toEntry(name, folder, Number.isFinite(mtime) ? mtime : undefined, bytes);
}

const TAG_PATTERNS = new Map<string, RegExp>();

function xmlText(xml: string, tag: string): string | undefined {
  let pattern = TAG_PATTERNS.get(tag);
  if (pattern === undefined) {
    TAG_PATTERNS.set(tag, pattern = new RegExp(`<${tag}>([^<]*)</${tag}>`));
  }
  const match = pattern.exec(xml);
  return match === null ? undefined : decodeEntities(match[1]!);
}

const NAMED_ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
};

function decodeEntities(text: string): string {
  if (!text.includes("&")) return text;
  return text.replace(
    /&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]{2,5});/g,
    (whole, body: string) => {
      if (body[0] === "#") {
        const code = body[1] === "x" || body[1] === "X"
          ? parseInt(body.slice(2), 16)
          : parseInt(body.slice(1), 10);
        return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
      }
      return NAMED_ENTITIES[body] ?? whole;
    },
  );
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

function stripPrefix(message: string): string {
  return message.replace(/^Cannot read [^:]*: /, "");
}
