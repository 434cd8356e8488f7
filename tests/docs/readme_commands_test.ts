/**
 * README's commands work as written. Each fenced `sh` block that README marks
 * with a `<!-- runnable -->` comment is run, line by line and in order, with
 * `sh -c` in a copy of the checkout. The copy's registry points every channel
 * at a loopback mirror serving the next nightly of each tracked target, and
 * its deno.json grants network access to 127.0.0.1 only, so a command that
 * would reach AMD fails instead of leaving this machine.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { applyEdits, listAttrNames, readBinding } from "../../lib/flake/flake_edit.ts";
import {
  buildSampleTarball,
  type MirrorFile,
  startDemoMirror,
} from "../../lib/jobs/demo_mirror.ts";
import { targetTable } from "../../lib/releases/targets.ts";
import { parseVersion } from "../../lib/releases/versions.ts";
import { NEXT_COMMANDS } from "../../scripts/demo.ts";
import { repoRoot, run, withTempDir } from "../_tools.ts";

/** What a checkout holds that `deno task` needs. */
const CHECKOUT = ["deno.json", "deno.lock", "mod.ts", "flake.nix", "lib", "scripts"];

/** The command lines of README's runnable `sh` blocks, in order. */
function runnableCommands(markdown: string): string[] {
  const blocks = markdown.matchAll(/^<!-- runnable[^>]*-->\n+```sh\n([\s\S]*?)^```$/gm);
  return [...blocks].flatMap((block) =>
    block[1]!.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#"))
  );
}

/** The day after a TheRock nightly version (7.12.0a20260308 → 7.12.0a20260309). */
function nextNightly(version: string): string {
  const { base, date } = parseVersion(version);
  const day = date === undefined ? Date.UTC(2026, 2, 8) : Date.UTC(
    Number(date.slice(0, 4)),
    Number(date.slice(4, 6)) - 1,
    Number(date.slice(6, 8)),
  );
  const next = new Date(day + 86_400_000).toISOString().slice(0, 10).replaceAll("-", "");
  return `${base.join(".")}a${next}`;
}

Deno.test("README marks its runnable commands", () => {
  const commands = runnableCommands(Deno.readTextFileSync(join(repoRoot, "README.md")));
  assert.ok(commands.includes("deno task demo"), commands.join("\n"));
  assert.ok(commands.some((c) => c.startsWith("deno task update -- ")), commands.join("\n"));
});

Deno.test("the demo's closing hint names commands README runs, as written", () => {
  const commands = runnableCommands(Deno.readTextFileSync(join(repoRoot, "README.md")))
    .map((command) => command.replace(/\s+#.*$/, ""));
  const hinted = NEXT_COMMANDS.map((hint) => hint.split(/\s{2,}/)[0]!)
    .filter((command) => command.startsWith("deno task "));
  assert.ok(hinted.length > 0, NEXT_COMMANDS.join("\n"));
  for (const command of hinted) {
    assert.ok(commands.includes(command), `"${command}" is not among README's runnable commands`);
  }
});

Deno.test("README's runnable commands succeed as written, against a loopback mirror", async (t) => {
  const readme = await Deno.readTextFile(join(repoRoot, "README.md"));
  const flake = await Deno.readTextFile(join(repoRoot, "flake.nix"));
  const tracked = listAttrNames(flake, "nightly.srcHashes");
  const next = nextNightly(readBinding(flake, "nightly.version") ?? "7.12.0a20260308");
  const files: MirrorFile[] = [];
  for (const target of tracked) {
    const isas = (targetTable.families[target]?.isas ?? ["gfx1151"]).slice(0, 2);
    files.push({
      name: `therock-dist-linux-${target}-${next}.tar.gz`,
      mtime: Date.UTC(2026, 2, 10) / 1000,
      body: await buildSampleTarball({ isas, version: next }),
    });
  }
  await using mirror = startDemoMirror(files);

  await withTempDir(async (dir) => {
    for (const entry of CHECKOUT) {
      await run("cp", ["-r", join(repoRoot, entry), join(dir, entry)]);
    }
    const channels = ["nightly", "stable"].filter((c) => readBinding(flake, `${c}.version`));
    const pointed = applyEdits(
      flake,
      channels.map((channel) => ({ path: `${channel}.baseUrl`, value: mirror.baseUrl })),
    );
    await Deno.writeTextFile(join(dir, "flake.nix"), pointed.text);
    const denoJson = await Deno.readTextFile(join(dir, "deno.json"));
    await Deno.writeTextFile(
      join(dir, "deno.json"),
      denoJson.replaceAll(/--allow-net(?=[ "])/g, "--allow-net=127.0.0.1"),
    );

    for (const command of runnableCommands(readme)) {
      await t.step(command, async () => {
        const result = await run("sh", ["-c", command], {
          cwd: dir,
          env: { NO_COLOR: "1" },
          signal: AbortSignal.timeout(120_000),
        });
        assert.equal(
          result.code,
          0,
          `"${command}" exited ${result.code}:\n${result.stdout}\n${result.stderr}`,
        );
      });
    }
    assert.ok(
      mirror.requests.some((path) => path.endsWith(`-${next}.tar.gz`)),
      `no tarball was downloaded: ${mirror.requests.join(", ")}`,
    );
  });
});
