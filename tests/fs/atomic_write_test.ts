import assert from "node:assert/strict";
import { join } from "node:path";
import { AtomicFile, writeFileAtomic } from "../../mod.ts";

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
