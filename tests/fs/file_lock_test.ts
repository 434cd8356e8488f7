import assert from "node:assert/strict";
import { join } from "node:path";
import { acquireLock, LockHeldError } from "../../lib/fs/file_lock.ts";

Deno.test("acquireLock() lets exactly one of concurrent callers in", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "x.lock");
    const attempts = await Promise.allSettled(
      Array.from({ length: 8 }, () => acquireLock(path, { purpose: "update x" })),
    );
    const won = attempts.filter((a) => a.status === "fulfilled");
    assert.equal(won.length, 1);
    for (const lost of attempts.filter((a) => a.status === "rejected")) {
      assert.ok(lost.reason instanceof LockHeldError);
      assert.match(lost.reason.message, /^Cannot update x: ".*x\.lock" is held by process \d+/);
    }
    await (won[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
    await (await acquireLock(path)).release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("acquireLock() respects a fresh unreadable lock and replaces an old one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "x.lock");
    await Deno.writeTextFile(path, "");
    await assert.rejects(acquireLock(path), LockHeldError);
    const old = new Date(Date.now() - 120_000);
    await Deno.utime(path, old, old);
    await (await acquireLock(path)).release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("acquireLock() refuses a lock path that is a FIFO, a symlink (even dangling) or huge, and leaves it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const plants: [string, (path: string) => Promise<unknown>, RegExp][] = [
      ["fifo", (p) => new Deno.Command("mkfifo", { args: [p] }).output(), /a FIFO/],
      ["dangling", (p) => Deno.symlink("nowhere", p), /a symbolic link/],
      ["zero", (p) => Deno.symlink("/dev/zero", p), /a symbolic link/],
      ["huge", (p) => Deno.writeFile(p, new Uint8Array(4097)), /4097 bytes/],
    ];
    for (const [name, plant, words] of plants) {
      const path = join(dir, `${name}.lock`);
      await plant(path);
      const before = Deno.lstatSync(path);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${name}: still reading after 10 s`)), 10_000);
      });
      const error = await Promise.race([acquireLock(path), late]).then(
        () => new Error(`${name}: taken`),
        (error: Error) => error,
      ).finally(() => clearTimeout(timer));
      assert.ok(error instanceof TypeError || error instanceof RangeError, String(error));
      assert.match(error.message, words);
      assert.match(error.message, /move this one away$/);
      assert.equal(Deno.lstatSync(path).ino, before.ino, `${name} left in place`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
