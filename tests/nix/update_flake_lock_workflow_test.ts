// .github/workflows/update-flake-lock.yml cannot run here (it needs GitHub
// and the network): these tests read it as text and check its promises. A
// weekly schedule; flake.lock refreshed, then `nix flake check` building
// every check, then the pull request, which therefore opens only when the
// check passed; nothing lets a failed step through.
import assert from "node:assert/strict";
import { join } from "node:path";
import { repoRoot } from "../_tools.ts";

const WORKFLOW = join(repoRoot, ".github/workflows/update-flake-lock.yml");

/** The workflow's steps: each `- ` item under `steps:`, as text. */
function steps(text: string): string[] {
  const body = text.slice(text.indexOf("\n    steps:\n") + "\n    steps:\n".length);
  return body.split(/\n(?= {6}- )/).map((step) => step.trim());
}

Deno.test("update-flake-lock workflow: weekly, lock then check then pull request", async () => {
  const text = await Deno.readTextFile(WORKFLOW);
  // Weekly: a minute, an hour, any day of the month, any month, one weekday.
  const cron = text.match(/^\s+- cron: "([^"]+)"$/m);
  assert.ok(cron, "no schedule");
  assert.match(cron[1]!, /^\d{1,2} \d{1,2} \* \* [0-6]$/);
  assert.match(text, /^\s+workflow_dispatch:$/m);
  assert.doesNotMatch(text, /continue-on-error/);

  const all = steps(text);
  const index = (what: RegExp): number => {
    const found = all.findIndex((step) => what.test(step));
    assert.notEqual(found, -1, `no step matching ${what}`);
    return found;
  };
  const update = index(/run: \|?[\s\S]*nix flake update/);
  const check = index(/run: nix flake check/);
  const pr = index(/uses: peter-evans\/create-pull-request/);
  assert.ok(update < check && check < pr, `steps out of order: ${update} ${check} ${pr}`);
  // The check builds the checks (no --no-build), and the pull request step
  // runs only after every earlier step succeeded (no always()/failure()).
  assert.doesNotMatch(all[check]!, /--no-build/);
  assert.doesNotMatch(all[pr]!, /always\(\)|failure\(\)|cancelled\(\)/);
  assert.match(all[pr]!, /add-paths: flake\.lock$/m);
  // The check and the pull request both wait for a changed lock.
  for (const step of [all[check]!, all[pr]!]) {
    assert.match(step, /if: steps\.lock\.outputs\.changed == 'true'/);
  }
});
