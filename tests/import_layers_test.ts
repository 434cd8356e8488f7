/**
 * lib/ is a stack of folders, one job each; a folder imports only folders
 * below it, so a reader knows what a file may depend on from its folder's
 * name alone (docs/architecture.md draws the stack). This test reads every
 * import under lib/ and scripts/ and names each one that goes up, sideways
 * between folders of one level, into a folder the stack does not know, or
 * out of the repository's own files.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { repoFiles, repoRoot } from "./_tools.ts";

/** The stack, lowest first; folders on one line are siblings and never import each other. */
const LEVELS: readonly (readonly string[])[] = [
  ["fs"],
  ["cli", "hash"],
  ["store"],
  ["fetch"],
  ["releases"],
  ["flake", "package", "image"],
  ["jobs"],
];

/** Scripts that run inside a Nix build, where npm: packages cannot be fetched. */
const BUILD_TIME_SCRIPTS = ["scripts/check-output.ts", "scripts/image.ts", "scripts/prune.ts"];

const levelOf = new Map(LEVELS.flatMap((folders, level) => folders.map((f) => [f, level])));

/** Source text without comments, so JSDoc examples do not count as imports. */
function withoutComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|\s)\/\/.*$/gm, "$1");
}

/** Every module specifier a file names: static, dynamic, re-exports, Worker URLs. */
function specifiers(source: string): string[] {
  const code = withoutComments(source);
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^;"'`]*?\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\(\s*["']([^"']+)["']/g,
    /\bnew URL\(\s*["'](\.[^"']*)["']\s*,\s*import\.meta\.url/g,
  ];
  return patterns.flatMap((pattern) => [...code.matchAll(pattern)].map((m) => m[1]!));
}

/** The lib/ folder a repository path lies in ("" for a file directly in lib/), or undefined. */
function libFolder(path: string): string | undefined {
  const parts = path.split("/");
  if (parts[0] !== "lib") return undefined;
  return parts.length > 2 ? parts[1]! : "";
}

/**
 * What is wrong with each import of the given files (paths relative to the
 * repository, each with its source), as one line each.
 */
function layerViolations(files: ReadonlyMap<string, string>): string[] {
  const found: string[] = [];
  for (const [path, source] of files) {
    const from = libFolder(path);
    if (from !== undefined && !levelOf.has(from)) {
      found.push(`${path}: lib/${from ? `${from}/` : ""} is not a folder of the stack`);
      continue;
    }
    for (const specifier of specifiers(source)) {
      if (specifier.startsWith("node:")) continue;
      if (specifier.startsWith("npm:")) {
        if (!/^npm:(@[\w.-]+\/)?[\w.-]+@[^/]+/.test(specifier)) {
          found.push(`${path}: "${specifier}" has no version`);
        }
        continue;
      }
      if (!specifier.startsWith("./") && !specifier.startsWith("../")) {
        found.push(`${path}: "${specifier}" is a bare specifier (remote runs ignore deno.json)`);
        continue;
      }
      const target = join(path, "..", specifier);
      if (target.startsWith("..")) {
        found.push(`${path}: "${specifier}" leaves the repository`);
        continue;
      }
      if (target.startsWith("scripts/") && path.startsWith("lib/")) {
        found.push(`${path}: "${specifier}" imports a script`);
        continue;
      }
      const to = libFolder(target);
      if (from === undefined || to === undefined || to === from) continue;
      if (!levelOf.has(to)) {
        found.push(`${path}: "${specifier}" imports lib/${to}/, which is not in the stack`);
      } else if (levelOf.get(to)! >= levelOf.get(from)!) {
        const how = levelOf.get(to) === levelOf.get(from) ? "beside" : "above";
        found.push(`${path}: "${specifier}" imports lib/${to}/, ${how} lib/${from}/`);
      }
    }
  }
  for (const script of BUILD_TIME_SCRIPTS) {
    for (const [path, specifier] of npmImportsReached(script, files)) {
      found.push(
        `${script}: runs inside a Nix build, where ${path}'s "${specifier}" cannot be fetched`,
      );
    }
  }
  return found;
}

/** The npm: imports of every file a script reaches through relative imports. */
function npmImportsReached(script: string, files: ReadonlyMap<string, string>): [string, string][] {
  const seen = new Set<string>();
  const reached: [string, string][] = [];
  const visit = (path: string): void => {
    const source = files.get(path);
    if (source === undefined || seen.has(path)) return;
    seen.add(path);
    for (const specifier of specifiers(source)) {
      if (specifier.startsWith("npm:")) reached.push([path, specifier]);
      else if (specifier.startsWith(".")) visit(join(path, "..", specifier));
    }
  };
  visit(script);
  return reached;
}

Deno.test("lib/ and scripts/ import only downwards through the stack of lib/ folders", () => {
  const files = new Map(
    [...repoFiles("lib", ".ts"), ...repoFiles("scripts", ".ts")].map((path) => [
      path,
      Deno.readTextFileSync(join(repoRoot, path)),
    ]),
  );
  assert.ok(files.size > 50, `read only ${files.size} files`);
  assert.deepEqual(layerViolations(files), []);
});

Deno.test("every folder of lib/ is in the stack and every folder of the stack exists", () => {
  const entries = [...Deno.readDirSync(join(repoRoot, "lib"))];
  const folders = entries.filter((e) => e.isDirectory).map((e) => e.name).sort();
  assert.deepEqual(folders, [...levelOf.keys()].sort());
  assert.deepEqual(entries.filter((e) => !e.isDirectory).map((e) => e.name), []);
});

Deno.test("layerViolations() names each import that breaks the stack", () => {
  const files = new Map([
    ["lib/fs/a.ts", `import { x } from "../fetch/download.ts";`],
    ["lib/flake/b.ts", `export { y } from "../image/tar.ts";\nimport "../hash/hash.ts";`],
    ["lib/jobs/c.ts", `const w = new Worker(new URL("../../scripts/update.ts", import.meta.url));`],
    ["lib/misc/d.ts", `import "../fs/a.ts";`],
    ["lib/e.ts", `import "./fs/a.ts";`],
    ["lib/store/f.ts", `import { z } from "@std/path";\nimport p from "npm:zod@^4";`],
    ["scripts/g.ts", `import p from "npm:cli-progress";\nimport { q } from "../lib/jobs/c.ts";`],
    ["scripts/image.ts", `import { p } from "../lib/store/f.ts";`],
    [
      "lib/fetch/ok.ts",
      `/** @example\n * import { u } from "../jobs/update.ts";\n */\n` +
      `import type { H } from "../hash/hash.ts";\nimport { c } from "node:crypto";`,
    ],
  ]);
  assert.deepEqual(layerViolations(files), [
    `lib/fs/a.ts: "../fetch/download.ts" imports lib/fetch/, above lib/fs/`,
    `lib/flake/b.ts: "../image/tar.ts" imports lib/image/, beside lib/flake/`,
    `lib/jobs/c.ts: "../../scripts/update.ts" imports a script`,
    `lib/misc/d.ts: lib/misc/ is not a folder of the stack`,
    `lib/e.ts: lib/ is not a folder of the stack`,
    `lib/store/f.ts: "@std/path" is a bare specifier (remote runs ignore deno.json)`,
    `scripts/g.ts: "npm:cli-progress" has no version`,
    `scripts/image.ts: runs inside a Nix build, where lib/store/f.ts's "npm:zod@^4" cannot be fetched`,
  ]);
});
