/**
 * `update --commit` commits flake.nix, and only it, with the message update
 * printed, as nix-update's --commit; `--target` on a target a tracked family
 * already serves says so.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { buildSampleTarball, type MirrorFile } from "../../lib/jobs/demo_mirror.ts";
import { repoRoot, requireTools, run } from "../_tools.ts";
import { updateFixture } from "../_update_fixture.ts";

const REGISTRY = `{
  nightly = {
    baseUrl = "https://rocm.nightlies.amd.com/tarball/";
    version = "7.12.0a20260308";
    srcHashes = {
      gfx1151 = null;
      multiarch = null;
    };
  };
}
`;

const name = (family: string, version: string): string =>
  `therock-dist-linux-${family}-${version}.tar.gz`;

async function files(): Promise<MirrorFile[]> {
  const body = await buildSampleTarball({ isas: ["gfx1151"], version: "7.12.0a20260310" });
  return [
    { name: name("gfx1151", "7.12.0a20260310"), mtime: 2, body },
    { name: name("multiarch", "7.12.0a20260310"), mtime: 2, body: new Uint8Array([1, 2, 3]) },
  ];
}

const UPDATE = join(repoRoot, "scripts/update.ts");
const PERMISSIONS = ["--allow-net=127.0.0.1", "--allow-read", "--allow-write", "--allow-run=git"];
const git = await requireTools("update --commit tests", "git");

Deno.test({
  name: "update --commit commits flake.nix alone, with the printed message",
  ignore: !git,
  fn: async () => {
    await using f = await updateFixture(await files(), REGISTRY);
    const env = {
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@example.com",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@example.com",
    };
    const inRepo = (...args: string[]) => run("git", ["-C", f.dir, ...args], { env });
    await inRepo("init", "--quiet");
    await inRepo("add", "flake.nix");
    await inRepo("commit", "--quiet", "-m", "initial");
    // Something else staged stays staged and out of the commit.
    await Deno.writeTextFile(join(f.dir, "notes.txt"), "mine\n");
    await inRepo("add", "notes.txt");

    const update = (...args: string[]) =>
      run(Deno.execPath(), [
        "run",
        ...PERMISSIONS,
        UPDATE,
        "--",
        "--flake",
        f.flake,
        "--index",
        f.mirror.indexUrl,
        "--no-progress",
        // Neither the store nor a download cache: this is about git.
        "--no-add-to-store",
        "--no-cache",
        ...args,
      ], { env });
    const refused = await update("--commit", "--dry-run");
    assert.equal(refused.code, 2, refused.stderr);

    const result = await update("--commit");
    assert.equal(result.code, 0, result.stderr);
    const message = "rocm-nightly: 7.12.0a20260308 -> 7.12.0a20260310";
    assert.ok(result.stdout.includes(`\n  ${message}`), result.stdout);
    assert.match(result.stderr, new RegExp(`^update: committed [0-9a-f]+ "${message}"\\n$`));
    const log = await inRepo("log", "-1", "--format=%s", "--name-only");
    assert.equal(log.stdout, `${message}\n\nflake.nix\n`);
    const status = await inRepo("status", "--porcelain");
    assert.equal(status.stdout, "A  notes.txt\n");

    // Already current: nothing to commit, no commit.
    const again = await update("--commit");
    assert.equal(again.code, 0, again.stderr);
    assert.equal((await inRepo("rev-list", "--count", "HEAD")).stdout, "2\n");
  },
});

Deno.test({
  name: "update --commit outside a git repository fails in one line, flake.nix written",
  ignore: !git,
  fn: async () => {
    await using f = await updateFixture(await files(), REGISTRY);
    const result = await run(Deno.execPath(), [
      "run",
      ...PERMISSIONS,
      UPDATE,
      "--flake",
      f.flake,
      "--index",
      f.mirror.indexUrl,
      "--no-add-to-store",
      "--no-cache",
      "--commit",
    ], { env: { GIT_CEILING_DIRECTORIES: f.dir.replace(/\/[^/]*$/, "") } });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /^update: Cannot commit ".*flake\.nix": git add exited \d+: /);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(await Deno.readTextFile(f.flake), /7\.12\.0a20260310/);
  },
});

Deno.test("update --target says so when a tracked family already serves the target", async () => {
  await using f = await updateFixture(await files(), REGISTRY);
  const result = await f.update({ targets: ["gfx1201"], dryRun: true });
  assert.deepEqual(result.targets.map((t) => t.target), ["gfx1151", "multiarch"]);
  assert.ok(
    result.warnings.includes(
      "--target gfx1201: already served by the tracked family multiarch; nothing to add",
    ),
    result.warnings.join("\n"),
  );
});
