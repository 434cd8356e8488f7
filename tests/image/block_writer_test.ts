import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { concatBytes } from "../../lib/fs/bytes.ts";
import { BlockWriter, type ByteSink } from "../../lib/image/block_writer.ts";
import { withTempDir } from "../_tools.ts";

/** A sink that keeps what it gets, taking at most `step` bytes per write, and can fail. */
function memorySink(step = Infinity): ByteSink & { bytes(): Uint8Array } {
  const chunks: Uint8Array[] = [];
  let wouldBlock = true;
  return {
    write(chunk: Uint8Array): Promise<number> {
      // The first write meets a full non-blocking pipe once.
      if (wouldBlock) {
        wouldBlock = false;
        return Promise.reject(new Deno.errors.WouldBlock("Resource temporarily unavailable"));
      }
      const count = Math.min(step, chunk.length);
      chunks.push(chunk.slice(0, count));
      return Promise.resolve(count);
    },
    bytes: (): Uint8Array => concatBytes(chunks),
  };
}

const sha256 = (bytes: Uint8Array): string =>
  `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

function pattern(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes;
}

Deno.test("BlockWriter writes bytes, zeros and files in order and hashes only the open ranges", () =>
  withTempDir(async (dir) => {
    // Sizes around the 512-byte block: empty, one short, exact, one over, many blocks.
    const sizes = [0, 511, 512, 513, 5000];
    const files = sizes.map((size, i) => ({ path: join(dir, `f${i}`), data: pattern(size, i) }));
    for (const file of files) await Deno.writeFile(file.path, file.data);
    const sink = memorySink(100);
    const writer = new BlockWriter(sink, { blockSize: 512 });
    const expected: Uint8Array[] = [];
    const head = pattern(700, 99);
    await writer.bytes(head);
    expected.push(head);
    writer.beginHash();
    const hashed: Uint8Array[] = [];
    for (const file of files) {
      await writer.file(file.path, file.data.length);
      await writer.zeros(3);
      hashed.push(file.data, new Uint8Array(3));
    }
    const digest = writer.endHash();
    expected.push(...hashed);
    await writer.bytes(head.subarray(0, 10));
    expected.push(head.subarray(0, 10));
    assert.equal(writer.position, expected.reduce((sum, part) => sum + part.length, 0));
    await writer.close();
    assert.deepEqual(sink.bytes(), concatBytes(expected));
    assert.equal(digest, sha256(concatBytes(hashed)));
  }));

Deno.test("BlockWriter.file() rejects a file whose size is not the one listed", () =>
  withTempDir(async (dir) => {
    const path = join(dir, "f");
    await Deno.writeFile(path, pattern(1000, 1));
    for (const listed of [999, 1001]) {
      const writer = new BlockWriter(memorySink(), { blockSize: 512 });
      await assert.rejects(writer.file(path, listed), RangeError, "changed since it was listed");
    }
    const writer = new BlockWriter(memorySink(), { blockSize: 512 });
    await assert.rejects(writer.file(dir, 0), RangeError);
    // A file that stat calls empty but reads as more (procfs) has grown while reading.
    await assert.rejects(writer.file("/proc/self/status", 0), RangeError, "grew while reading");
  }));

Deno.test("BlockWriter.close() reports a failed write", async () => {
  const writer = new BlockWriter({
    write: () => Promise.reject(new Deno.errors.BrokenPipe("Broken pipe (os error 32)")),
  }, { blockSize: 512 });
  await writer.bytes(new Uint8Array(100));
  await assert.rejects(writer.close(), Deno.errors.BrokenPipe);
});

Deno.test("BlockWriter hash ranges fail when nested or unopened", () => {
  const writer = new BlockWriter(memorySink());
  assert.throws(() => writer.endHash(), /none is open/);
  writer.beginHash();
  assert.throws(() => writer.beginHash(), /already open/);
  assert.throws(() => new BlockWriter(memorySink(), { blockSize: 100 }), RangeError);
});
