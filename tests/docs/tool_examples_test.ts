/**
 * Every command the documentation shows is accepted as written: each
 * invocation of a tool in README's and docs/tools/*.md's `sh` blocks and in
 * README's table of tools (`nix run .#update -- …`, `deno task update …`,
 * `deno run … scripts/update.ts …`) parses with the tool's own parser. The
 * commands that can run here run in tests/docs/readme_commands_test.ts.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Command, parseCommandLine } from "../../lib/cli/command_line.ts";
import { repoFiles, repoRoot } from "../_tools.ts";
import { invocations, shellWords } from "../_shell_words.ts";

const names = repoFiles("scripts", ".ts").map((path) => path.slice("scripts/".length, -3));
const commands = new Map<string, Command>();
for (const name of names) {
  commands.set(name, (await import(`../../scripts/${name}.ts`) as { command: Command }).command);
}

/** The command lines of a page: `sh` blocks (continuations joined) and inline code spans. */
function commandLines(page: string): string[] {
  const lines: string[] = [];
  for (const block of page.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    lines.push(...block[1]!.replaceAll(/\\\n\s*/g, " ").split("\n"));
  }
  for (const span of page.matchAll(/`((?:nix run|deno task) [^`]+)`/g)) lines.push(span[1]!);
  return lines.filter((line) => line.trim() !== "" && !line.trim().startsWith("#"));
}

Deno.test("shellWords() undoes quotes, continuations and comments", () => {
  assert.deepEqual(shellWords(`update --gate \\\n  'nix build "a b"' x\\ y # note`), [
    "update",
    "--gate",
    'nix build "a b"',
    "x y",
  ]);
});

for (const page of ["README.md", ...repoFiles("docs/tools", ".md")]) {
  Deno.test(`${page}: every tool command it shows is accepted by the tool's parser`, async () => {
    const text = await Deno.readTextFile(join(repoRoot, page));
    let checked = 0;
    for (const line of commandLines(text)) {
      for (const { name, args } of invocations(line, names)) {
        // "…" alone elides arguments: nothing to check; a placeholder
        // (<url>, sha256-…) stands for a value.
        if (args.includes("…")) continue;
        const filled = args.map((arg) => arg.replaceAll(/<[a-z-]+>|…/g, "x"));
        try {
          parseCommandLine(commands.get(name)!, filled);
        } catch (error) {
          assert.fail(`${page}: "${line.trim()}": ${(error as Error).message}`);
        }
        checked++;
      }
    }
    assert.ok(checked > 0, `${page} shows no tool command`);
  });
}
