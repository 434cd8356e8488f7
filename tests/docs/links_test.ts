/**
 * Every relative link of README.md and docs/ leads somewhere: the file or
 * folder exists, and a `#fragment` names a heading of that page (as GitHub
 * derives anchors from headings).
 */

import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { repoFiles, repoRoot } from "../_tools.ts";

/** Markdown without its fenced code blocks, where `](…)` and `#` are not links or headings. */
function prose(markdown: string): string {
  return markdown.replaceAll(/^```[\s\S]*?^```$/gm, "");
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replaceAll(/[^\p{L}\p{N} _-]/gu, "").replaceAll(" ", "-");
}

/** The anchors of a Markdown page's headings. */
function anchors(markdown: string): Set<string> {
  return new Set([...prose(markdown).matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchorOf(m[1]!)));
}

Deno.test("README.md and docs/ link only to files and headings that exist", () => {
  const broken: string[] = [];
  for (const page of ["README.md", ...repoFiles("docs", ".md")]) {
    const text = prose(Deno.readTextFileSync(join(repoRoot, page)));
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      const [path, fragment] = target!.split("#") as [string, string | undefined];
      const file = path === "" ? page : relative(repoRoot, join(repoRoot, dirname(page), path));
      let stat: Deno.FileInfo;
      try {
        stat = Deno.statSync(join(repoRoot, file));
      } catch {
        broken.push(`${page}: ${target} (no ${file})`);
        continue;
      }
      if (fragment !== undefined && stat.isFile) {
        const headings = anchors(Deno.readTextFileSync(join(repoRoot, file)));
        if (!headings.has(fragment)) broken.push(`${page}: ${target} (no heading #${fragment})`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

Deno.test("anchorOf() derives GitHub's anchors", () => {
  assert.equal(anchorOf("Using it in a derivation"), "using-it-in-a-derivation");
  assert.equal(anchorOf("Parsing a 10,000-entry index"), "parsing-a-10000-entry-index");
  assert.equal(anchorOf("`--max-bytes` on every source"), "--max-bytes-on-every-source");
});
