import assert from "node:assert/strict";
import { join } from "node:path";
import { AtomicFile, DestinationChangedError, writeFileAtomic } from "../../mod.ts";

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

Deno.test("writeFileAtomic() replaces contents and keeps the file's mode", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "flake.nix");
    await Deno.writeTextFile(path, "old\n");
    await Deno.chmod(path, 0o640);
    await writeFileAtomic(path, "new\n");
    assert.deepEqual(await Deno.readTextFile(path), "new\n");
    assert.deepEqual((await Deno.stat(path)).mode! & 0o777, 0o640);
    assert.deepEqual(await listDir(dir), ["flake.nix"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AtomicFile.abort() leaves the destination exactly as it was", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "tarball.tar.gz");
    await Deno.writeTextFile(path, "complete old file");
    const file = await AtomicFile.create(path);
    await file.write(new TextEncoder().encode("half a new fi"));
    assert.deepEqual(await Deno.readTextFile(path), "complete old file");
    await file.abort();
    await file.abort();
    assert.deepEqual(await Deno.readTextFile(path), "complete old file");
    assert.deepEqual(await listDir(dir), ["tarball.tar.gz"]);
    await assert.rejects(
      () => file.write(new Uint8Array(1)),
      (error: Error) => error.message.includes("already committed or aborted"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AtomicFile.create() makes new files with the requested mode", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "new.bin");
    const file = await AtomicFile.create(path, { mode: 0o600 });
    await file.write(new Uint8Array([1, 2, 3]));
    await file.commit();
    await file.abort(); // no-op after commit
    assert.deepEqual(await Deno.readFile(path), new Uint8Array([1, 2, 3]));
    assert.deepEqual((await Deno.stat(path)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AtomicFile.commit() keeps a destination written after it was read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "flake.nix");
    await Deno.writeTextFile(path, "read\n");
    const read = await Deno.readFile(path);
    const file = await AtomicFile.create(path);
    try {
      await file.write(new TextEncoder().encode("made from what was read\n"));
      // Another process writes, between the read and the commit.
      await Deno.writeTextFile(path, "edited meanwhile\n");
      await assert.rejects(file.commit({ expected: read }), DestinationChangedError);
    } finally {
      await file.abort();
    }
    assert.equal(await Deno.readTextFile(path), "edited meanwhile\n");
    assert.deepEqual(await listDir(dir), ["flake.nix"]);
    // Unchanged (same bytes), it commits; a vanished destination counts as changed.
    await writeFileAtomic(path, "new\n", {
      expected: new TextEncoder().encode("edited meanwhile\n"),
    });
    assert.equal(await Deno.readTextFile(path), "new\n");
    await Deno.remove(path);
    await assert.rejects(
      writeFileAtomic(path, "x\n", { expected: new Uint8Array() }),
      DestinationChangedError,
    );
    assert.deepEqual(await listDir(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic() with keepLinks refuses a hard-linked destination", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "flake.nix");
    await Deno.writeTextFile(path, "old\n");
    await Deno.link(path, join(dir, "other.nix"));
    await assert.rejects(
      writeFileAtomic(path, "new\n", { keepLinks: true }),
      /it has 2 hard links, and replacing it would split them/,
    );
    assert.equal(await Deno.readTextFile(join(dir, "other.nix")), "old\n");
    assert.equal(await Deno.readTextFile(path), "old\n");
    assert.deepEqual(await listDir(dir), ["flake.nix", "other.nix"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
