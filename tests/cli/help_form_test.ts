/**
 * One CLI: every script's `--help` has the shared form (usage line, sections
 * in order, the same Exit status block, examples, no trailing blank line),
 * every script refuses an unknown option with the same one line and exit 2,
 * and every example its help shows is accepted by its real parser.
 */

import assert from "node:assert/strict";
import { shebangPermissions } from "../faults/_harness.ts";
import { repoFiles, repoRoot, run } from "../_tools.ts";
import { type Command, parseCommandLine } from "../../lib/cli/command_line.ts";
import { invocations } from "../_shell_words.ts";

const names = repoFiles("scripts", ".ts").map((path) => path.slice("scripts/".length, -3));

const USAGE_EXIT = "  2      usage error: an unknown option, a bad value or a wrong argument\n";
const SIGNAL_EXIT = "  128+N  ended by signal N (130 SIGINT, 143 SIGTERM, 129 SIGHUP)\n";

function script(name: string, args: string[]): ReturnType<typeof run> {
  return run(Deno.execPath(), ["run", ...shebangPermissions(name), `scripts/${name}.ts`, ...args], {
    cwd: repoRoot,
    signal: AbortSignal.timeout(60_000),
  });
}

Deno.test("every script's --help has the shared form", async () => {
  assert.equal(names.length, 9, names.join(", "));
  const helps = await Promise.all(names.map((name) => script(name, ["--help"])));
  names.forEach((name, i) => {
    const { code, stdout, stderr } = helps[i]!;
    assert.equal(code, 0, `${name}: ${stderr}`);
    assert.equal(stderr, "", name);
    assert.match(stdout, new RegExp(`^Usage: ${name} \\[options\\]( .+)?\\n\\n\\S`), name);
    assert.ok(stdout.endsWith("\n") && !stdout.endsWith("\n\n"), `${name}: a trailing blank line`);
    const titles = [...stdout.matchAll(/^([A-Z][a-z ]+):$/gm)].map((m) => m[1]);
    assert.equal(titles[0], "Options", `${name}: ${titles.join(", ")}`);
    assert.deepEqual(titles.slice(-2), ["Exit status", "Examples"], name);
    assert.match(stdout, /\n {2}-h, --help +show this help\n/, name);
    const exits = /\n\nExit status:\n([\s\S]*?\n)\nExamples:\n {2}\S/.exec(stdout)?.[1];
    assert.ok(exits !== undefined, `${name}: no Exit status block before the examples`);
    assert.match(exits, /^ {2}0 {6}\S.*\n(?: {9}\S.*\n)* {2}1 {6}\S/, `${name}: exit 0, then 1`);
    // A script's own codes (status's 3) may sit between the shared 2 and 128+N.
    assert.ok(
      exits.includes(USAGE_EXIT) && exits.endsWith(SIGNAL_EXIT),
      `${name}: exit codes 2 and 128+N:\n${exits}`,
    );
    assert.doesNotMatch(stdout, /\.ts\b.*--|Exit codes/, `${name}: names a file or "Exit codes"`);
    for (const line of stdout.split("\n")) {
      assert.ok(line.length <= 100, `${name}: a line of ${line.length} characters: ${line}`);
      assert.equal(line, line.trimEnd(), `${name}: trailing spaces in "${line}"`);
    }
  });
});

Deno.test("every script refuses an unknown option in one line, exit 2", async () => {
  const results = await Promise.all(names.map((name) => script(name, ["--bogus"])));
  names.forEach((name, i) => {
    const { code, stdout, stderr } = results[i]!;
    assert.equal(code, 2, `${name}: ${stderr}`);
    assert.equal(stdout, "", name);
    assert.equal(stderr, `${name}: unknown option "--bogus" (see --help)\n`);
  });
});

for (const name of names) {
  Deno.test(`${name} --help's examples are accepted by its parser`, async () => {
    const { command: COMMAND } = await import(`../../scripts/${name}.ts`) as { command: Command };
    assert.equal(COMMAND.name, name);
    let checked = 0;
    for (const example of COMMAND.examples) {
      for (const { args } of invocations(example, [name])) {
        // Placeholders of the help (<url>, …) stand for a value: any text will do.
        const filled = args.map((arg) => arg.replaceAll(/<[a-z-]+>|…/g, "x"));
        const parsed = parseCommandLine(COMMAND, filled);
        assert.equal(parsed.help, false, example);
        checked++;
      }
    }
    assert.ok(checked > 0, `${name}: no example invokes ${name}`);
  });
}
