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
