/**
 * Each script has a page in docs/tools/ whose Usage block is the script's own
 * `--help`, byte for byte, and whose permissions line is the script's shebang;
 * README's table of tools links every page. When a flag changes, this test
 * names the page to update.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { shebangPermissions } from "../faults/_harness.ts";
import { repoFiles, repoRoot, run } from "../_tools.ts";

const scripts = repoFiles("scripts", ".ts").map((path) => path.slice("scripts/".length, -3));

/** The text of a page's Usage block (between "```text" after "## Usage" and the closing fence). */
function usageBlock(page: string): string | undefined {
  return /^## Usage\n+```text\n([\s\S]*?)^```$/m.exec(page)?.[1];
}

Deno.test("docs/tools/ has one page for each script, and README links each", () => {
  const pages = repoFiles("docs/tools", ".md").map((path) => path.slice("docs/tools/".length, -3));
  assert.deepEqual(pages, scripts);
  const readme = Deno.readTextFileSync(join(repoRoot, "README.md"));
  for (const name of scripts) {
    assert.ok(readme.includes(`[${name}](docs/tools/${name}.md)`), `README does not link ${name}`);
  }
});

for (const name of scripts) {
  Deno.test(`docs/tools/${name}.md shows the script's --help and permissions`, async () => {
    const page = await Deno.readTextFile(join(repoRoot, `docs/tools/${name}.md`));
    const help = await run(
      Deno.execPath(),
      ["run", ...shebangPermissions(name), `scripts/${name}.ts`, "--help"],
      { cwd: repoRoot, signal: AbortSignal.timeout(60_000) },
    );
    assert.equal(help.code, 0, help.stderr);
    assert.equal(
      usageBlock(page),
      help.stdout,
      `docs/tools/${name}.md's Usage block differs from \`${name} --help\`: paste it again`,
    );
    const permissions = `Permissions: \`${shebangPermissions(name).join(" ")}\``;
    assert.ok(
      page.replaceAll(/\s+/g, " ").includes(permissions),
      `docs/tools/${name}.md does not say "${permissions}" (the shebang's permissions)`,
    );
  });
}
