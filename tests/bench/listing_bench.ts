/**
 * Listing parse speed: a generated 10,000-entry index in each of the three
 * forms, parsed by lib/releases/index_listing.ts (name validation included), side by
 * side with a bare reference extractor that only pulls the names out (the
 * floor any parser pays), and four hostile 16 MiB pages that must be
 * refused in linear time (reference: one indexOf pass over the page).
 * Target: under 100 ms each. Exits 1 when a target is missed.
 *
 * @module
 */

import {
  parseAutoindex,
  parseIndexPage,
  parseS3Listing,
  parseTheRockIndex,
} from "../../lib/releases/index_listing.ts";
import {
  type MirrorFile,
  renderAutoindex,
  renderS3ListPage,
  renderTheRockIndex,
} from "../../lib/jobs/demo_mirror.ts";

const ENTRIES = 10_000;
const RUNS = 9;
const TARGET_MS = 100;
const FAMILIES = ["gfx1151", "gfx110X-all", "gfx120X-all", "gfx94X-dcgpu", "multiarch"];
const PAGE_URL = "https://rocm.nightlies.amd.com/tarball/";

const files: MirrorFile[] = [];
for (let i = 0; files.length < ENTRIES; i++) {
  const day = new Date(Date.UTC(2025, 9, 1) + i * 86_400_000).toISOString().slice(0, 10);
  const version = `7.${9 + (i >> 9)}.0a${day.replaceAll("-", "")}`;
  for (const family of FAMILIES) {
    if (files.length === ENTRIES) break;
    // One name in ten is a Windows or test build, as in AMD's listings.
    const os = i % 10 === 3 ? "windows" : "linux";
    files.push({
      name: `therock-dist-${os}-${family}-${version}.tar.gz`,
      mtime: 1759276800 + i * 86400 + 0.25,
      body: new Uint8Array(0),
    });
  }
}

const therock = renderTheRockIndex(files);
const autoindex = renderAutoindex(files, "/tarball/");
const s3Pages: string[] = [];
for (let token: string | undefined, page = 0; page < ENTRIES / 1000; page++) {
  const xml = renderS3ListPage(files, { prefix: "", pageSize: 1000, token });
  s3Pages.push(xml);
  token = /<NextContinuationToken>([^<]*)</.exec(xml)?.[1];
}

function median(fn: () => number): { ms: number; count: number } {
  let count = fn(); // warm-up
  const times: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const start = performance.now();
    count = fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { ms: times[RUNS >> 1]!, count };
}

const cases = [
  {
    form: "therock (JS array)",
    bytes: therock.length,
    ours: () => parseTheRockIndex(therock, PAGE_URL).entries.length,
    reference: () => {
      const start = therock.indexOf("const files = ") + "const files = ".length;
      const end = therock.indexOf("];", start) + 1;
      return (JSON.parse(therock.slice(start, end)) as unknown[]).length;
    },
  },
  {
    form: "s3 (10 pages of 1000)",
    bytes: s3Pages.reduce((sum, page) => sum + page.length, 0),
    ours: () => s3Pages.reduce((n, page) => n + parseS3Listing(page, PAGE_URL).entries.length, 0),
    reference: () => s3Pages.reduce((n, page) => n + page.match(/<Key>[^<]*<\/Key>/g)!.length, 0),
  },
  {
    form: "autoindex (HTML links)",
    bytes: autoindex.length,
    ours: () => parseAutoindex(autoindex, PAGE_URL).entries.length,
    reference: () => autoindex.match(/<a href="[^"]*">/g)!.length,
  },
];

// Hostile pages of the largest size accepted: each must be refused in
// linear time (a backtracking extractor would take minutes).
const HOSTILE_BYTES = 16 * 1024 * 1024;
const hostile = [
  ["therock, unterminated string", `<script>const files = [{"name": "${"[".repeat(HOSTILE_BYTES)}`],
  ["s3, unclosed <Contents>", `<ListBucketResult>${"<Contents>".repeat(HOSTILE_BYTES / 10)}`],
  ["autoindex, unclosed <a", `<a href="x">x</a>${"<a ".repeat(HOSTILE_BYTES / 3)}`],
  ["autoindex, one 16 MiB tag", `<a ${"hre ".repeat(HOSTILE_BYTES / 4)}href="x">`],
] as const;
for (const [form, text] of hostile) {
  cases.push({
    form: `hostile: ${form}`,
    bytes: text.length,
    ours: () => {
      try {
        return parseIndexPage(text, PAGE_URL).entries.length;
      } catch {
        return 0;
      }
    },
    reference: () => text.indexOf("\u0000") + 1,
  });
}

const rows: string[] = [
  "| form | listed | usable | size | ours (median of 9) | reference: bare name extraction | ratio | target | ok |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
];
let missed = 0;
for (const c of cases) {
  const ours = median(c.ours);
  const reference = median(c.reference);
  const ok = ours.ms < TARGET_MS;
  if (!ok) missed++;
  rows.push(
    `| ${c.form} | ${c.form.startsWith("hostile") ? "—" : ENTRIES} | ${ours.count} | ${
      (c.bytes / 1024 / 1024).toFixed(2)
    } MiB | ` +
      `${ours.ms.toFixed(1)} ms | ${reference.ms.toFixed(1)} ms | ` +
      `${(ours.ms / reference.ms).toFixed(1)}× | < ${TARGET_MS} ms | ${ok ? "yes" : "**no**"} |`,
  );
}
// deno-lint-ignore no-console
console.log(rows.join("\n"));
Deno.exit(missed === 0 ? 0 : 1);
