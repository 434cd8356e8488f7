import assert from "node:assert/strict";
import { join } from "node:path";
import {
  createTemporaryFile,
  createTemporaryFolder,
  PRIVATE_FOLDER,
  sweepTemporaries,
} from "../../lib/fs/temporaries.ts";
import { run, withTempDir } from "../_tools.ts";
import { canLockIfFree } from "../../lib/fs/cleanup.ts";

const names = (dir: string): string[] => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

/** A user's files that look like the temporaries of today or of the old scheme. */
async function lookAlikes(dir: string, victim: string): Promise<void> {
  const old = new Date("2020-01-01T00:00:00Z");
  await Deno.mkdir(join(dir, "prefetch-2024-results"));
  await Deno.writeTextFile(join(dir, "prefetch-2024-results", "data"), "keep\n");
  await Deno.writeTextFile(join(dir, ".notes.2024-draft.tmp"), "keep\n");
  await Deno.writeTextFile(join(dir, ".out.bin.1234-abc.tmp"), "keep\n");
  await Deno.mkdir(join(dir, ".prefetch-1-x"));
  for (const name of ["prefetch-2024-results", ".notes.2024-draft.tmp", ".prefetch-1-x"]) {
    await Deno.utime(join(dir, name), old, old);
  }
  assert.equal((await run("mkfifo", [join(dir, ".fifo.1-a.tmp")])).code, 0);
  await Deno.symlink(victim, join(dir, ".prefetch-2-link"));
}

Deno.test("createTemporaryFile() writes in the private folder and removes it when done", async () => {
  await withTempDir(async (dir) => {
    const temporary = await createTemporaryFile(dir, "out.bin");
    assert.match(temporary.path, new RegExp(`^${dir}/\\${PRIVATE_FOLDER}/\\d+-out-bin$`));
    const info = await Deno.lstat(join(dir, PRIVATE_FOLDER));
    assert.equal(info.mode! & 0o777, 0o700);
    temporary.file.close();
    await Deno.rename(temporary.path, join(dir, "out.bin"));
    temporary[Symbol.dispose]();
    assert.deepEqual(names(dir), ["out.bin"]);
  });
});

Deno.test("sweepTemporaries() leaves a user's look-alike files, folders, FIFOs and links alone", async () => {
  await withTempDir(async (dir) => {
    const victim = join(dir, "victim");
    await Deno.mkdir(victim);
    await Deno.writeTextFile(join(victim, "precious"), "keep\n");
    const place = join(dir, "place");
    await Deno.mkdir(place);
    await lookAlikes(place, victim);
    // A folder named like ours, but the user's: no marker, and another mode.
    await Deno.mkdir(join(place, PRIVATE_FOLDER), { mode: 0o755 });
    await Deno.writeTextFile(join(place, PRIVATE_FOLDER, "123-old"), "keep\n");
    await Deno.mkdir(join(place, `${PRIVATE_FOLDER}-1`), { mode: 0o700 });
    await Deno.writeTextFile(join(place, `${PRIVATE_FOLDER}-1`, "456-x"), "keep\n");
    const before = names(place);
    assert.equal(await sweepTemporaries(place), 0);
    const temporary = await createTemporaryFolder(place, "gate");
    // Neither of the user's folders was used.
    assert.ok(temporary.path.startsWith(join(place, `${PRIVATE_FOLDER}-2`)));
    await temporary.remove();
    assert.deepEqual(names(place), before);
    assert.deepEqual(names(join(place, PRIVATE_FOLDER)), ["123-old"]);
    assert.deepEqual(names(join(place, `${PRIVATE_FOLDER}-1`)), ["456-x"]);
    assert.deepEqual(names(victim), ["precious"]);
  });
});

Deno.test("sweepTemporaries() removes a killed owner's entries and only those", async () => {
  await withTempDir(async (dir) => {
    const victim = join(dir, "victim");
    await Deno.mkdir(victim);
    await Deno.writeTextFile(join(victim, "precious"), "keep\n");
    // A child makes a file and a folder (holding a link out) and is killed.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { createTemporaryFile, createTemporaryFolder } from "${new URL(
          "../../lib/fs/temporaries.ts",
          import.meta.url,
        )}";
        const file = await createTemporaryFile(${JSON.stringify(dir)}, "out.bin");
        const folder = await createTemporaryFolder(${JSON.stringify(dir)}, "gate");
        await Deno.symlink(${JSON.stringify(victim)}, folder.path + "/link");
        console.log("ready");
        await new Promise(() => setInterval(() => {}, 1000));`,
      ],
      stdout: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    assert.match((await reader.read()).value ?? "", /ready/);
    const alive = await createTemporaryFile(dir, "alive");
    // While the child lives, nothing of it is swept.
    assert.equal(await sweepTemporaries(dir), 0);
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    if (!canLockIfFree) {
      // Before Deno 2.7 no owner can be proved dead: the sweep keeps everything.
      assert.equal(await sweepTemporaries(dir), 0);
      assert.equal(names(join(dir, PRIVATE_FOLDER)).filter((n) => !n.startsWith(".")).length, 6);
      alive.file.close();
      await alive.remove();
      assert.deepEqual(names(victim), ["precious"]);
      return;
    }
    assert.equal(await sweepTemporaries(dir), 2);
    assert.deepEqual(names(join(dir, PRIVATE_FOLDER)).filter((n) => !n.startsWith(".")), [
      alive.path.slice(alive.path.lastIndexOf("/") + 1),
      `${alive.path.slice(alive.path.lastIndexOf("/") + 1)}.lock`,
    ]);
    alive.file.close();
    await alive.remove();
    assert.deepEqual(names(dir), ["victim"]);
    assert.deepEqual(names(victim), ["precious"]);
  });
});

Deno.test("createTemporaryFile() never writes into a private folder that is a link", async () => {
  await withTempDir(async (dir) => {
    const elsewhere = join(dir, "elsewhere");
    await Deno.mkdir(elsewhere, { mode: 0o700 });
    const place = join(dir, "place");
    await Deno.mkdir(place);
    await Deno.symlink(elsewhere, join(place, PRIVATE_FOLDER));
    const temporary = await createTemporaryFile(place, "x");
    assert.ok(temporary.path.startsWith(join(place, `${PRIVATE_FOLDER}-1/`)));
    temporary.file.close();
    await temporary.remove();
    assert.deepEqual(names(elsewhere), []);
    assert.deepEqual(names(place), [PRIVATE_FOLDER]);
  });
});

Deno.test("createTemporaryFile() fails in one line when all sixteen names are taken", async () => {
  await withTempDir(async (dir) => {
    for (let slot = 0; slot < 16; slot++) {
      await Deno.writeTextFile(
        join(dir, slot === 0 ? PRIVATE_FOLDER : `${PRIVATE_FOLDER}-${slot}`),
        "",
      );
    }
    await assert.rejects(
      () => createTemporaryFile(dir, "x"),
      /^Error: Cannot make a temporary in ".*": ".rocm-nightly-tmp" and its 15 alternates/,
    );
  });
});

Deno.test("createTemporaryFile() leaves another user's private folder alone (a shared /tmp)", async () => {
  await withTempDir(async (dir) => {
    await Deno.chmod(dir, 0o1777);
    // Another user's folder, marker and all, with a dead-looking entry.
    const theirs = join(dir, PRIVATE_FOLDER);
    await Deno.mkdir(theirs, { mode: 0o700 });
    const marker = "rocm-nightly temporaries: each <id> is alive while <id>.lock is flock(2)ed\n";
    await Deno.writeTextFile(join(theirs, ".rocm-nightly"), marker);
    await Deno.writeTextFile(join(theirs, "1-out-bin"), "theirs\n");
    try {
      for (const path of [theirs, join(theirs, ".rocm-nightly"), join(theirs, "1-out-bin")]) {
        await Deno.chown(path, 4242, 4242);
      }
    } catch (error) {
      if (Deno.env.get("CI") === "true") throw error;
      console.log(`SKIP another user's folder: chown needs root (${(error as Error).message})`);
      return;
    }
    assert.equal(await sweepTemporaries(dir), 0);
    const temporary = await createTemporaryFile(dir, "out.bin");
    assert.ok(temporary.path.startsWith(join(dir, `${PRIVATE_FOLDER}-1/`)));
    temporary.file.close();
    await temporary.remove();
    assert.deepEqual(names(dir), [PRIVATE_FOLDER]);
    assert.deepEqual(names(theirs), [".rocm-nightly", "1-out-bin"]);
  });
});
