/**
 * A loopback mirror of AMD's tarball site, for the demo, the tests and the
 * benchmarks: it serves a listing in any of the three forms
 * {@linkcode listIndex} reads (TheRock's index page, S3 ListObjectsV2 pages,
 * an nginx-style autoindex) and the files behind it.
 *
 * @module
 */

import { join, relative } from "node:path";
import { onCleanup } from "../fs/cleanup.ts";
import type { IndexFormat } from "../releases/index_listing.ts";
import { writeSampleRocmTree } from "../package/sample_rocm.ts";
import { type TarEntry, tarStream } from "../image/tar.ts";

/** One file of the mirror. */
export interface MirrorFile {
  /** The file name (any text: tests list hostile names too). */
  name: string;
  /** The modification time in seconds since 1970. */
  mtime?: number;
  /** The content; a listed file without one answers 404. */
  body?: Uint8Array<ArrayBuffer>;
  /** Milliseconds to wait between 16 KiB chunks of the body (a slow server). */
  chunkDelayMs?: number;
}

/** Options for {@linkcode startDemoMirror}. */
export interface DemoMirrorOptions {
  /**
   * The listing form the mirror serves.
   *
   * @default {"therock"}
   */
  format?: IndexFormat;
  /**
   * Keys per page of an S3 listing.
   *
   * @default {1000}
   */
  pageSize?: number;
  /**
   * The key prefix of the files in an S3 listing (the multi-arch set lives under `v4/tarball/`).
   *
   * @default {""}
   */
  prefix?: string;
}

/** A running mirror. */
export interface DemoMirror extends AsyncDisposable {
  /** The URL to list (an index page, or an S3 listing request). */
  indexUrl: string;
  /** The folder URL the files are served under. */
  baseUrl: string;
  /** The path (and query) of every request received, in order. */
  requests: string[];
  /** Stops the server. */
  close(): Promise<void>;
}

/**
 * Starts a mirror on 127.0.0.1 (port chosen by the system).
 *
 * @param files The files to list and serve.
 * @param options The listing form, S3 page size and key prefix.
 * @returns The running mirror; `await using` or `close()` stops it.
 *
 * @example Usage
 * ```ts
 * import { startDemoMirror } from "./demo_mirror.ts";
 *
 * await using mirror = startDemoMirror([
 *   { name: "therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz", body: new Uint8Array(3) },
 * ]);
 * const page = await (await fetch(mirror.indexUrl)).text();
 * page.includes("const files = ["); // true
 * ```
 */
export function startDemoMirror(files: MirrorFile[], options: DemoMirrorOptions = {}): DemoMirror {
  const format = options.format ?? "therock";
  const prefix = options.prefix ?? "";
  const pageSize = options.pageSize ?? 1000;
  const folder = format === "s3" ? `/bucket/${prefix}` : "/tarball/";
  const byName = new Map(files.map((file) => [file.name, file]));
  const requests: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen(): void {} },
    (request): Response => {
      const url = new URL(request.url);
      requests.push(url.pathname + url.search);
      if (format === "s3" && url.pathname === "/bucket/" && url.searchParams.has("list-type")) {
        const page = renderS3ListPage(files, {
          prefix: url.searchParams.get("prefix") ?? "",
          filesPrefix: prefix,
          pageSize,
          token: url.searchParams.get("continuation-token") ?? undefined,
        });
        return new Response(page, { headers: { "content-type": "application/xml" } });
      }
      if (format !== "s3" && url.pathname === folder) {
        const page = format === "therock" ? renderTheRockIndex(files) : format === "text"
          // An index of no known form whose text carries the names.
          ? `<html><body><script>window.__DATA__ = ${
            JSON.stringify({ items: files.map((file) => ({ key: file.name })) })
          };</script></body></html>\n`
          : renderAutoindex(files, folder);
        return new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } });
      }
      if (url.pathname.startsWith(folder)) {
        let name: string;
        try {
          name = decodeURIComponent(url.pathname.slice(folder.length));
        } catch {
          return new Response("bad name\n", { status: 400 });
        }
        const file = byName.get(name);
        if (file?.body !== undefined) {
          return serveFile(file.body, file.chunkDelayMs);
        }
      }
      return new Response("not found\n", { status: 404 });
    },
  );
  const origin = `http://127.0.0.1:${server.addr.port}`;
  const indexUrl = format === "s3"
    ? `${origin}/bucket/?list-type=2&prefix=${encodeURIComponent(prefix)}`
    : `${origin}${folder}`;
  const close = async (): Promise<void> => {
    await server.shutdown();
  };
  return {
    indexUrl,
    baseUrl: `${origin}${folder}`,
    requests,
    close,
    [Symbol.asyncDispose]: close,
  };
}

function serveFile(body: Uint8Array<ArrayBuffer>, delayMs: number | undefined): Response {
  if (!delayMs) {
    return new Response(body, { headers: { "content-length": String(body.length) } });
  }
  let offset = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller): Promise<void> {
      if (offset >= body.length) return controller.close();
      await new Promise((resolve) => timer = setTimeout(resolve, delayMs));
      const end = Math.min(offset + 16 * 1024, body.length);
      controller.enqueue(body.slice(offset, end));
      offset = end;
    },
    // A client gone mid-body (a killed update): no timer outlives the server.
    cancel(): void {
      clearTimeout(timer);
    },
  });
  return new Response(stream, { headers: { "content-length": String(body.length) } });
}

/**
 * Renders a listing as AMD's index page renders it: the file list is a
 * JavaScript array written by Python's `json.dumps`.
 *
 * @param files The files (`name`, `mtime`).
 * @returns The HTML page.
 *
 * @example Usage
 * ```ts
 * import { renderTheRockIndex } from "./demo_mirror.ts";
 *
 * renderTheRockIndex([]).includes("const files = [];"); // true
 * ```
 */
export function renderTheRockIndex(files: Pick<MirrorFile, "name" | "mtime">[]): string {
  const items = files.map((file) =>
    `{"name": ${JSON.stringify(file.name)}, "mtime": ${pythonFloat(file.mtime ?? 0)}}`
  );
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>ROCm nightly tarballs</title></head>
<body>
<h1>TheRock nightly tarballs</h1>
<table id="files"><thead><tr><th>Name</th><th>Modified</th></tr></thead><tbody></tbody></table>
<script>
const files = [${items.join(", ")}];
const body = document.querySelector("#files tbody");
for (const file of files) {
  const row = body.insertRow();
  const link = document.createElement("a");
  link.href = encodeURIComponent(file.name); // names like "[x]" stay inside strings
  link.textContent = file.name;
  row.insertCell().append(link);
  row.insertCell().textContent = new Date(file.mtime * 1000).toISOString();
}
</script>
</body>
</html>
`;
}

/** Options for {@linkcode renderS3ListPage}. */
export interface S3ListPageOptions {
  /** The `prefix` of the request: only keys starting with it are listed. */
  prefix: string;
  /**
   * The prefix every file's key has in the bucket.
   *
   * @default {""}
   */
  filesPrefix?: string;
  /**
   * Keys per page.
   *
   * @default {1000}
   */
  pageSize?: number;
  /** The `continuation-token` of the request. */
  token?: string | undefined;
}

/**
 * Renders one page of an S3 ListObjectsV2 response: keys in binary order,
 * at most `pageSize` of them, and a continuation token when more follow.
 *
 * @param files The files; their keys are `filesPrefix` + name.
 * @param options The request's prefix and token, and the page size.
 * @returns The XML.
 *
 * @example Usage
 * ```ts
 * import { renderS3ListPage } from "./demo_mirror.ts";
 *
 * const xml = renderS3ListPage([{ name: "a" }, { name: "b" }], { prefix: "", pageSize: 1 });
 * xml.includes("<IsTruncated>true</IsTruncated>"); // true
 * ```
 */
export function renderS3ListPage(
  files: Pick<MirrorFile, "name" | "mtime" | "body">[],
  options: S3ListPageOptions,
): string {
  const pageSize = options.pageSize ?? 1000;
  const keyed = files
    .map((file) => ({ file, key: (options.filesPrefix ?? "") + file.name }))
    .filter(({ key }) => key.startsWith(options.prefix))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const after = options.token === undefined ? undefined : atob(options.token);
  const start = after === undefined ? 0 : keyed.findIndex(({ key }) => key > after);
  const page = start < 0 ? [] : keyed.slice(start, start + pageSize);
  const truncated = start >= 0 && start + pageSize < keyed.length;
  const contents = page.map(({ file, key }) =>
    `<Contents><Key>${escapeXml(key)}</Key>` +
    `<LastModified>${new Date((file.mtime ?? 0) * 1000).toISOString()}</LastModified>` +
    `<ETag>&quot;${key.length.toString(16).padStart(32, "0")}&quot;</ETag>` +
    `<Size>${file.body?.length ?? 0}</Size><StorageClass>STANDARD</StorageClass></Contents>`
  );
  const next = truncated
    ? `<NextContinuationToken>${btoa(page.at(-1)!.key)}</NextContinuationToken>`
    : "";
  return `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>therock-nightly-tarball</Name><Prefix>${
    escapeXml(options.prefix)
  }</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${pageSize}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${next}${
    contents.join("")
  }</ListBucketResult>`;
}

/**
 * Renders an nginx-style autoindex page of links.
 *
 * @param files The files.
 * @param folder The folder path shown in the title.
 * @returns The HTML page.
 *
 * @example Usage
 * ```ts
 * import { renderAutoindex } from "./demo_mirror.ts";
 *
 * renderAutoindex([{ name: "a b" }], "/tarball/").includes('href="a%20b"'); // true
 * ```
 */
export function renderAutoindex(
  files: Pick<MirrorFile, "name" | "mtime" | "body">[],
  folder: string,
): string {
  const months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(" ");
  const lines = files.map((file) => {
    const date = new Date((file.mtime ?? 0) * 1000);
    const stamp =
      `${pad(date.getUTCDate())}-${months[date.getUTCMonth()]}-${date.getUTCFullYear()} ` +
      `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}`;
    const shown = file.name.length > 50 ? `${file.name.slice(0, 47)}..&gt;` : escapeXml(file.name);
    return `<a href="${escapeXml(encodeURIComponent(file.name))}">${shown}</a>`.padEnd(60) +
      ` ${stamp} ${String(file.body?.length ?? 0).padStart(19)}`;
  });
  const title = `Index of ${escapeXml(folder)}`;
  return `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<h1>${title}</h1><hr><pre>` +
    `<a href="../../">../</a>\r\n${lines.join("\r\n")}\r\n</pre><hr></body>\r\n</html>\r\n`;
}

/** Options for {@linkcode buildSampleTarball}. */
export interface SampleTarballOptions {
  /**
   * The ISAs to generate kernel files for.
   *
   * @default {["gfx1151"]}
   */
  isas?: string[];
  /**
   * The version written into the tree.
   *
   * @default {"7.12.0a20260308"}
   */
  version?: string;
}

/**
 * Builds a small gzip-compressed tarball shaped like a TheRock tarball (a
 * tarbomb of `bin/`, `lib/`, …) from {@linkcode writeSampleRocmTree}.
 *
 * @param options The ISAs and version.
 * @returns The `.tar.gz` bytes (deterministic for given options).
 *
 * @example Usage
 * ```ts
 * import { buildSampleTarball } from "./demo_mirror.ts";
 *
 * const bytes = await buildSampleTarball({ isas: ["gfx1151"] });
 * bytes[0] === 0x1f && bytes[1] === 0x8b; // true: gzip
 * ```
 */
export async function buildSampleTarball(
  options: SampleTarballOptions = {},
): Promise<Uint8Array<ArrayBuffer>> {
  const dir = await Deno.makeTempDir({ prefix: "rocm-nightly-sample-" });
  using _cleanup = onCleanup(() => Deno.removeSync(dir, { recursive: true }));
  try {
    await writeSampleRocmTree(dir, {
      isas: options.isas ?? ["gfx1151"],
      version: options.version ?? "7.12.0a20260308",
    });
    const entries = await treeEntries(dir);
    const gzip = new Response(tarStream(entries)).body!.pipeThrough(new CompressionStream("gzip"));
    return new Uint8Array(await new Response(gzip).arrayBuffer());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// Lists a folder as tar entries in a stable order; a second name of an inode
// becomes a hard link to the first.
async function treeEntries(root: string): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const inodes = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    names.sort();
    for (const name of names) {
      const full = join(dir, name);
      const path = relative(root, full);
      const info = await Deno.lstat(full);
      const mode = (info.mode ?? 0o644) & 0o7777;
      if (info.isSymlink) {
        entries.push({ path, type: "symlink", mode: 0o777, linkTarget: await Deno.readLink(full) });
      } else if (info.isDirectory) {
        entries.push({ path, type: "directory", mode });
        await walk(full);
      } else {
        const inode = `${info.dev}:${info.ino}`;
        const first = inodes.get(inode);
        if (first !== undefined && (info.nlink ?? 1) > 1) {
          entries.push({ path, type: "hardlink", mode, linkTarget: first });
          continue;
        }
        inodes.set(inode, path);
        entries.push({
          path,
          type: "file",
          mode,
          size: info.size,
          content: async () => (await Deno.open(full)).readable,
        });
      }
    }
  };
  await walk(root);
  return entries;
}

const XML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

function pythonFloat(value: number): string {
  return Number.isInteger(value) ? `${value}.0` : String(value);
}

function pad(value: number): string {
  return String(value).padStart(2, "0");
}
