import assert from "node:assert/strict";
import {
  detectIndexFormat,
  type IndexEntry,
  type IndexFormat,
  listIndex,
  parseIndexPage,
  parseS3Listing,
  parseTheRockIndex,
  scanTarballNames,
} from "../../lib/releases/index_listing.ts";
import { type MirrorFile, startDemoMirror } from "../../lib/jobs/demo_mirror.ts";

// Names as they occur in AMD's listings over time, plus hostile look-alikes.
const MIXED: MirrorFile[] = [
  { name: "therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz", mtime: 1772937600.5 },
  { name: "therock-dist-linux-gfx110X-all-7.12.0a20260308.tar.gz", mtime: 1772937600 },
  { name: "therock-dist-linux-gfx110X-dgpu-7.0.0rc20250625.tar.gz", mtime: 1750809600 },
  { name: "therock-dist-linux-gfx1151-7.0.0rc2.tar.gz", mtime: 1751000000 },
  { name: "therock-dist-linux-gfx1151-7.0.0.tar.gz", mtime: 1752000000 },
  { name: "therock-dist-linux-gfx1151-7.9.0.dev0+0123abcdef.tar.gz", mtime: 1760000000 },
  { name: "therock-dist-linux-gfx1151-10.0.0a20260815.tar.gz", mtime: 1786752000 },
  { name: "therock-dist-linux-multiarch-10.0.0a20260815.tar.gz", mtime: 1786752000 },
  // skipped:
  { name: "therock-dist-windows-gfx1151-7.12.0a20260308.tar.gz" },
  { name: "therock-dist-linux-gfx1151-tests-7.12.0a20260308.tar.gz" },
  { name: "therock-dist-linux-gfx1151-ADHOCBUILD-7.0.0rc20250625.tar.gz" },
  { name: "index.html" },
  { name: 'therock-dist-linux-gfx1151-7.12.0a20260308";x="1.tar.gz' },
  { name: "therock-dist-linux-gfx1151-${builtins.abort 1}.tar.gz" },
  { name: "therock-dist-linux-../../etc-7.12.0a20260308.tar.gz" },
  { name: "therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz.sha256" },
  { name: "therock-dist-linux-gfx 1151-7.12.0a20260308.tar.gz" },
];
const USABLE = 8;

function versionsOf(entries: { family: string; version: string }[]): string[] {
  return entries.map((e) => `${e.family} ${e.version}`).sort();
}

const EXPECTED = [
  "gfx110X-all 7.12.0a20260308",
  "gfx110X-dgpu 7.0.0rc20250625",
  "gfx1151 10.0.0a20260815",
  "gfx1151 7.0.0",
  "gfx1151 7.0.0rc2",
  "gfx1151 7.12.0a20260308",
  "gfx1151 7.9.0.dev0+0123abcdef",
  "multiarch 10.0.0a20260815",
];

/** The dev build's "+" is literal in its name and %2B in its URL, which the mirror serves. */
async function assertDevBuildFetchable(entries: IndexEntry[], baseUrl: string): Promise<void> {
  const dev = entries.find((e) => e.version.includes("dev"))!;
  assert.equal(dev.name, "therock-dist-linux-gfx1151-7.9.0.dev0+0123abcdef.tar.gz");
  assert.equal(dev.url, `${baseUrl}therock-dist-linux-gfx1151-7.9.0.dev0%2B0123abcdef.tar.gz`);
  const response = await fetch(dev.url);
  assert.equal(response.status, 200);
  await response.body?.cancel();
}

for (const format of ["therock", "s3", "autoindex"] as IndexFormat[]) {
  Deno.test(`listIndex() reads a ${format} listing of mixed names`, async () => {
    const files = MIXED.map((file) => ({ ...file, body: new Uint8Array(7) }));
    await using mirror = startDemoMirror(files, {
      format,
      ...(format === "s3" ? { prefix: "v4/tarball/" } : {}),
    });
    const listing = await listIndex(mirror.indexUrl);
    assert.equal(listing.format, format);
    assert.equal(listing.pages, 1);
    assert.equal(listing.entries.length, USABLE);
    // An autoindex also links the parent folder.
    assert.equal(listing.skipped, MIXED.length - USABLE + (format === "autoindex" ? 1 : 0));
    assert.deepEqual(versionsOf(listing.entries), EXPECTED);
    await assertDevBuildFetchable(listing.entries, mirror.baseUrl);
    const first = listing.entries.find((e) => e.name === MIXED[0]!.name)!;
    if (format === "therock") assert.equal(first.mtime, 1772937600.5);
    else assert.equal(first.mtime, format === "s3" ? 1772937600.5 : 1772937600);
    if (format !== "therock") assert.equal(first.size, 7);
  });
}

Deno.test("listIndex() reads a page of unknown form by the tarball names in its text", async () => {
  const files = MIXED.map((file) => ({ ...file, body: new Uint8Array(7) }));
  await using mirror = startDemoMirror(files, { format: "text" });
  const listing = await listIndex(mirror.indexUrl);
  assert.equal(listing.format, "text");
  assert.deepEqual(versionsOf(listing.entries), EXPECTED);
  // Windows, -tests- and ADHOCBUILD names match the scan but not the grammar;
  // the hostile ones never match, and the .sha256 name is the first one again.
  assert.equal(listing.skipped, 3);
  assert.equal(listing.warnings.length, 1);
  assert.match(listing.warnings[0]!, /is in no known format .*took 8 tarball names/);
  // Dates come from the versions; a stable version has none.
  const byName = new Map(listing.entries.map((e) => [e.name, e]));
  assert.equal(byName.get(MIXED[0]!.name)!.mtime, Date.UTC(2026, 2, 8) / 1000);
  assert.equal(byName.get(MIXED[2]!.name)!.mtime, Date.UTC(2025, 5, 25) / 1000);
  assert.equal(byName.get(MIXED[4]!.name)!.mtime, undefined);
  await assertDevBuildFetchable(listing.entries, mirror.baseUrl);
  // A page of links to none of its tarballs is read the same way; %2B is decoded.
  const links = parseIndexPage(
    '<a href="/">home</a><td>therock-dist-linux-gfx1151-7.9.0.dev0%2Babcdef1.tar.gz</td>',
    "https://nightly.repo.amd.com/rocm/core/tarball/",
  );
  assert.equal(links.format, "text");
  assert.equal(links.entries[0]?.version, "7.9.0.dev0+abcdef1");
  assert.deepEqual(scanTarballNames("no names, only therock-dist- alone", "http://x/").entries, []);
});

Deno.test("listIndex() follows S3 continuation tokens over 3 pages", async () => {
  const files: MirrorFile[] = [];
  for (let day = 1; day <= 25; day++) {
    const date = `202603${String(day).padStart(2, "0")}`;
    files.push({ name: `therock-dist-linux-multiarch-7.12.0a${date}.tar.gz`, mtime: day });
  }
  files.push({ name: "therock-dist-windows-multiarch-7.12.0a20260301.tar.gz" });
  await using mirror = startDemoMirror(files, {
    format: "s3",
    prefix: "v4/tarball/",
    pageSize: 10,
  });
  const listing = await listIndex(mirror.indexUrl);
  assert.equal(listing.pages, 3);
  assert.equal(listing.entries.length, 25);
  assert.equal(listing.skipped, 1);
  assert.equal(new Set(listing.entries.map((e) => e.name)).size, 25);
  assert.equal(mirror.requests.length, 3);
  assert.ok(mirror.requests[1]!.includes("continuation-token="));
  assert.ok(listing.entries.every((e) => e.url.startsWith(`${mirror.baseUrl}therock-dist-`)));
  assert.ok(mirror.baseUrl.endsWith("/bucket/v4/tarball/"));
  await assert.rejects(listIndex(mirror.indexUrl, { maxPages: 2 }), RangeError);
});

Deno.test("listIndex() reads empty listings in each format", async () => {
  for (const format of ["therock", "s3", "autoindex"] as IndexFormat[]) {
    await using mirror = startDemoMirror([], { format });
    const listing = await listIndex(mirror.indexUrl);
    assert.equal(listing.format, format);
    assert.deepEqual(listing.entries, []);
  }
  assert.deepEqual(
    parseTheRockIndex("<script>\nconst files = [];\n</script>", "http://127.0.0.1/").entries,
    [],
  );
});

/** Serves one fixed answer on loopback. */
/** The most a loopback connection's kernel buffers can hold: receive plus send maximum. */
function socketBufferBytes(): number {
  const maximum = (path: string): number => {
    try {
      return Number(Deno.readTextFileSync(path).trim().split(/\s+/).at(-1)) || 0;
    } catch {
      return 0;
    }
  };
  const bytes = maximum("/proc/sys/net/ipv4/tcp_rmem") + maximum("/proc/sys/net/ipv4/tcp_wmem");
  return bytes > 0 ? bytes : 64 * 1024 * 1024;
}

function serve(
  handler: (request: Request) => Response | Promise<Response>,
): { url: string; requests: string[]; server: Deno.HttpServer<Deno.NetAddr> } {
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen(): void {} }, (request) => {
    const url = new URL(request.url);
    requests.push(url.pathname + url.search);
    return handler(request);
  });
  return { url: `http://127.0.0.1:${server.addr.port}/tarball/`, requests, server };
}

Deno.test("listIndex() rejects garbage with a SyntaxError naming the URL", async () => {
  for (
    const body of [
      "hello world",
      "<html><body>No links here</body></html>",
      "<html><body>therock-dist-windows-gfx1151-10.0.0.tar.gz only</body></html>",
      '<script>const files = [{"name": "a",]</script>',
      '<script>const files = [{"name": 5}];</script>',
      '<script>const files = [{"name": "x"}, {"name": "y"</script>',
      "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
      "<ListBucketResult><KeyCount>0</KeyCount><IsTruncated>true</IsTruncated></ListBucketResult>",
    ]
  ) {
    const { url, server } = serve(() => new Response(body));
    try {
      await assert.rejects(
        listIndex(url),
        (error: Error) => error instanceof SyntaxError && error.message.includes(`"${url}"`),
        body,
      );
    } finally {
      await server.shutdown();
    }
  }
});

Deno.test("listIndex() refuses an oversized index while streaming it", async () => {
  let sent = 0;
  const chunk = new TextEncoder().encode(`<script>const files = [${" ".repeat(65535)}`);
  const { url, server } = serve(() =>
    // No Content-Length: the cap must be counted on the bytes as they arrive.
    new Response(
      new ReadableStream({
        pull(controller): void {
          sent += chunk.length;
          controller.enqueue(chunk);
        },
      }),
    )
  );
  try {
    await assert.rejects(listIndex(url), /exceeds 16777216 bytes/);
    // The client closed the connection soon after the cap instead of taking it
    // all: what the server could push beyond 16 MiB is what the kernel's socket
    // buffers hold (their sizes differ between machines, so they are read here)
    // plus a little in the HTTP layers, and the server stops being pulled.
    const slack = socketBufferBytes() + 4 * 1024 * 1024;
    assert.ok(sent < 16 * 1024 * 1024 + slack, `server sent ${sent} bytes`);
    const settled = sent;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(sent - settled <= slack, `server went on: ${settled} then ${sent} bytes`);
    await assert.rejects(listIndex(url, { maxBytes: 1000 }), RangeError);
  } finally {
    await server.shutdown();
  }
  const declared = serve(() => new Response("x".repeat(5000)));
  try {
    await assert.rejects(listIndex(declared.url, { maxBytes: 4096 }), RangeError);
  } finally {
    await declared.server.shutdown();
  }
});

Deno.test("listIndex() reports HTTP errors and timeouts with the URL", async () => {
  const missing = serve(() => new Response("nope", { status: 404 }));
  try {
    await assert.rejects(
      listIndex(missing.url),
      /"http:\/\/127\.0\.0\.1:\d+\/tarball\/": HTTP 404/,
    );
  } finally {
    await missing.server.shutdown();
  }
  const { promise: never, resolve: release } = Promise.withResolvers<Response>();
  const stalled = serve(() => never);
  try {
    await assert.rejects(listIndex(stalled.url, { timeoutSeconds: 0.3 }), /timed out/);
  } finally {
    release(new Response(""));
    await stalled.server.shutdown();
  }
});

Deno.test("listIndex() allows plain http only to loopback", async () => {
  await assert.rejects(listIndex("http://example.invalid/tarball/"), TypeError);
  await assert.rejects(listIndex("ftp://127.0.0.1/"), TypeError);
  await assert.rejects(listIndex("not a url"), TypeError);
});

Deno.test("listIndex() decodes XML entities in continuation tokens", async () => {
  const key = "therock-dist-linux-multiarch-7.12.0a20260308.tar.gz";
  const seen: (string | null)[] = [];
  const { url, server } = serve((request) => {
    const token = new URL(request.url).searchParams.get("continuation-token");
    seen.push(token);
    const body = token === null
      ? "<ListBucketResult><KeyCount>0</KeyCount><IsTruncated>true</IsTruncated>" +
        "<NextContinuationToken>a&amp;b+/=&lt;</NextContinuationToken></ListBucketResult>"
      : `<ListBucketResult><KeyCount>1</KeyCount><Contents><Key>${key}</Key></Contents>` +
        "<IsTruncated>false</IsTruncated></ListBucketResult>";
    return new Response(body);
  });
  try {
    const listing = await listIndex(`${url}?list-type=2`);
    assert.deepEqual(seen, [null, "a&b+/=<"]);
    assert.equal(listing.entries.length, 1);
    assert.equal(listing.entries[0]!.url, `${url}${key}`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("listIndex() continues an S3 ListObjects V1 listing by marker", async () => {
  const key = (day: number): string => `therock-dist-linux-gfx1151-7.12.0a2026030${day}.tar.gz`;
  const markers: (string | null)[] = [];
  const { url, server } = serve((request) => {
    const marker = new URL(request.url).searchParams.get("marker");
    markers.push(marker);
    const keys = marker === null ? [key(1), key(2)] : [key(3)];
    const body = `<ListBucketResult>${
      keys.map((k) => `<Contents><Key>${k}</Key></Contents>`).join("")
    }<IsTruncated>${marker === null}</IsTruncated></ListBucketResult>`;
    return new Response(body);
  });
  try {
    const listing = await listIndex(url);
    assert.deepEqual(markers, [null, key(2)]);
    assert.equal(listing.pages, 2);
    assert.deepEqual(listing.entries.map((e) => e.name), [key(1), key(2), key(3)]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("parseS3Listing() skips keys that would escape the bucket folder", () => {
  const page = parseS3Listing(
    "<ListBucketResult>" +
      "<Contents><Key>../therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz</Key></Contents>" +
      "<Contents><Key>a//therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz</Key></Contents>" +
      "<Contents><Key>a/%2e%2e/therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz</Key></Contents>" +
      "<Contents><Key>v4/tarball/therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz</Key></Contents>" +
      "</ListBucketResult>",
    "https://bucket.example/?list-type=2",
  );
  assert.equal(page.skipped, 3);
  assert.deepEqual(page.entries.map((e) => e.url), [
    "https://bucket.example/v4/tarball/therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz",
  ]);
});

Deno.test("parseIndexPage() keeps only autoindex links into the page's folder", () => {
  const name = "therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz";
  const page = parseIndexPage(
    `<pre><a href="../../">../</a>
<a href="http://evil.example/tarball/${name}">x</a>
<a href="/elsewhere/${name}">x</a>
<a href="sub/${name}">x</a>
<a href='${name}'>${name}</a>
<a href="therock-dist-linux-gfx1151-7.12.0a20260309.tar.gz?x=1&amp;y=2">odd</a>
</pre>`,
    "http://127.0.0.1:1/tarball/",
  );
  assert.equal(page.format, "autoindex");
  assert.deepEqual(page.entries.map((e) => e.url), [
    `http://127.0.0.1:1/tarball/${name}`,
    "http://127.0.0.1:1/tarball/therock-dist-linux-gfx1151-7.12.0a20260309.tar.gz",
  ]);
  assert.equal(page.skipped, 4);
});

Deno.test("parseTheRockIndex() finds the array among other script text", () => {
  const page = parseTheRockIndex(
    `<script>let x = "[not it]";
const files = [{"name": "therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz", "mtime": 1.5, "size": 3},
  {"name": "a ] \\" [ b", "mtime": null}];
files.forEach((f) => { if (f.name.endsWith("]")) {} });</script>`,
    "https://rocm.nightlies.amd.com/tarball/index.html",
  );
  assert.equal(page.entries.length, 1);
  assert.equal(page.skipped, 1);
  assert.equal(
    page.entries[0]!.url,
    "https://rocm.nightlies.amd.com/tarball/therock-dist-linux-gfx1151-7.12.0a20260308.tar.gz",
  );
  assert.equal(page.entries[0]!.mtime, 1.5);
  assert.equal(page.entries[0]!.size, 3);
});

Deno.test("parseIndexPage() resolves names against the listed folder", () => {
  const page =
    '<script>const files = [{"name": "therock-dist-linux-gfx1151-7.12.0.tar.gz"}];</script>';
  for (
    const url of [
      "https://x.example/tarball/",
      "https://x.example/tarball",
      "https://x.example/tarball/index.html?sort=name",
    ]
  ) {
    assert.equal(
      parseIndexPage(page, url).entries[0]?.url,
      "https://x.example/tarball/therock-dist-linux-gfx1151-7.12.0.tar.gz",
      url,
    );
  }
});

Deno.test("detectIndexFormat() tells the three forms apart", () => {
  assert.equal(detectIndexFormat("<script>var files = [];</script>"), "therock");
  assert.equal(detectIndexFormat('<?xml version="1.0"?><ListBucketResult xmlns="x">'), "s3");
  assert.equal(detectIndexFormat('<A HREF="x">x</A>'), "autoindex");
  assert.throws(() => detectIndexFormat("{}"), SyntaxError);
});
