// lib/flake/find_flake.ts: the flake.nix nix would use, found upward from a
// folder, stopping at a git repository's root (nix's rule, from its flake
// reference parser).
import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../_tools.ts";
import { findFlake, FlakeNotFoundError } from "../../lib/flake/find_flake.ts";

const FLAKE = "{ outputs = _: { }; }\n";

Deno.test("findFlake() takes ./flake.nix as the relative path flake.nix", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "flake.nix"), FLAKE);
    assert.deepEqual(await findFlake({ from: dir }), {
      path: "flake.nix",
      absolute: join(dir, "flake.nix"),
      above: false,
    });
  });
});

Deno.test("findFlake() finds the nearest flake.nix above, by its absolute path", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "flake.nix"), FLAKE);
    await Deno.mkdir(join(dir, "a/b/c"), { recursive: true });
    await Deno.writeTextFile(join(dir, "a/flake.nix"), FLAKE);
    const found = await findFlake({ from: join(dir, "a/b/c") });
    assert.deepEqual(found, {
      path: join(dir, "a/flake.nix"),
      absolute: join(dir, "a/flake.nix"),
      above: true,
    });
    // A repository root that holds flake.nix is the flake (flake.nix before .git, as nix checks).
    await Deno.mkdir(join(dir, "a/.git"));
    assert.equal((await findFlake({ from: join(dir, "a/b") })).path, join(dir, "a/flake.nix"));
  });
});

Deno.test("findFlake() stops at a git repository's root, as nix does", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "flake.nix"), FLAKE);
    await Deno.mkdir(join(dir, "repo/.git"), { recursive: true });
    await Deno.mkdir(join(dir, "repo/sub"));
    const error = await findFlake({ from: join(dir, "repo/sub") }).catch((e) => e);
    assert.ok(error instanceof FlakeNotFoundError);
    assert.equal(
      error.message,
      `No flake.nix here or above: pass --flake PATH (searched ${
        join(dir, "repo/sub")
      } and up to ` +
        `${join(dir, "repo")}, a git repository's root, where nix stops too)`,
    );
    // A .git file (a worktree's) counts as well.
    await Deno.remove(join(dir, "repo/.git"));
    await Deno.writeTextFile(join(dir, "repo/.git"), "gitdir: /elsewhere\n");
    await assert.rejects(findFlake({ from: join(dir, "repo/sub") }), FlakeNotFoundError);
  });
});

Deno.test("findFlake() never reads / itself and names the root when it gets there", async () => {
  // /flake.nix is never looked at (nix's loop ends before "/"); a folder
  // under / with no flake.nix and no .git above reaches the root.
  const error = await findFlake({ from: "/proc/self" }).catch((e) => e);
  assert.ok(error instanceof FlakeNotFoundError, String(error));
  assert.match(error.message, /up to (the file system's root|\/proc, on another file system)/);
});
