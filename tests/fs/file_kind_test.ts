import assert from "node:assert/strict";
import { join } from "node:path";
import { openRegularFile, readRegularFile, readStreamText } from "../../lib/fs/file_kind.ts";
import { requireTools, run, withTempDir } from "../_tools.ts";

// A read that blocks (a FIFO opened before its kind was checked) fails the
// test here instead of hanging it; the blocked open is left behind.
function bounded<T>(work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("still reading after 10 s")), 10_000);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

async function refusal(work: Promise<unknown>): Promise<Error> {
  const error = await bounded(work).then(
    () => new Error("read, not refused"),
    (error: Error) => error,
  );
  return error;
}

Deno.test("readRegularFile() reads a regular file of up to maxBytes, through a symlink", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "flake.nix");
    const bytes = new Uint8Array(10_000).map((_, i) => i % 251);
    await Deno.writeFile(path, bytes);
    await Deno.symlink("flake.nix", join(dir, "link"));
    assert.deepEqual(await readRegularFile(path, { maxBytes: 10_000 }), bytes);
    assert.deepEqual(await readRegularFile(join(dir, "link"), { maxBytes: 10_000 }), bytes);
    await Deno.writeFile(path, new Uint8Array());
    assert.deepEqual(await readRegularFile(path, { maxBytes: 0 }), new Uint8Array());
  });
});

Deno.test("readRegularFile() refuses a file over maxBytes by its size, a sparse 10 GiB one at once", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "big");
    await Deno.writeFile(path, new Uint8Array(10_001));
    const over = await refusal(readRegularFile(path, { maxBytes: 10_000, what: "the flake" }));
    assert.ok(over instanceof RangeError, String(over));
    assert.equal(
      over.message,
      `Cannot read the flake "${path}": it is 10001 bytes, more than the limit of 10000 bytes`,
    );
    await Deno.truncate(path, 10 * 2 ** 30);
    const huge = await refusal(readRegularFile(path, { maxBytes: 16 * 2 ** 20 }));
    assert.ok(huge instanceof RangeError, String(huge));
    assert.match(huge.message, /it is 10737418240 bytes, more than the limit of 16 MiB$/);
  });
});

Deno.test("readRegularFile() stops one byte past maxBytes in a file that claims less (procfs says 0)", async () => {
  const path = "/proc/self/maps";
  if ((await Deno.stat(path).catch(() => null))?.size !== 0) {
    console.log(`skipped: no ${path} of size 0 here`);
    return;
  }
  const error = await refusal(readRegularFile(path, { maxBytes: 16 }));
  assert.ok(error instanceof RangeError, String(error));
  assert.equal(
    error.message,
    `Cannot read "${path}": it grew past the limit of 16 bytes while being read`,
  );
  // Within the bound it reads to the end.
  const text = new TextDecoder().decode(await readRegularFile(path, { maxBytes: 2 ** 24 }));
  assert.match(text, /\n$/);
});

const mkfifo = await requireTools("the FIFO test", "mkfifo");

Deno.test({
  name:
    "readRegularFile() refuses a FIFO, a socket, a device, /dev/zero through a link and a folder, naming the kind, without blocking",
  ignore: !mkfifo,
  fn: () =>
    withTempDir(async (dir) => {
      const fifo = join(dir, "fifo");
      assert.equal((await run("mkfifo", [fifo])).code, 0);
      const listener = Deno.listen({ transport: "unix", path: join(dir, "socket") });
      await Deno.symlink("/dev/zero", join(dir, "zero"));
      await Deno.mkdir(join(dir, "folder"));
      try {
        const cases: [string, RegExp][] = [
          [fifo, /: it is a FIFO \(named pipe\), not a regular file$/],
          [join(dir, "socket"), /: it is a socket, not a regular file$/],
          ["/dev/null", /: it is a character device, not a regular file$/],
          [join(dir, "zero"), /: it is a character device, not a regular file$/],
          [join(dir, "folder"), /: it is a directory, not a regular file$/],
        ];
        for (const [path, words] of cases) {
          const error = await refusal(readRegularFile(path, { maxBytes: 4096, what: "the lock" }));
          assert.ok(error instanceof TypeError, `${path}: ${error}`);
          assert.match(error.message, words);
          assert.equal(error.message.startsWith(`Cannot read the lock "${path}"`), true);
          const opened = await refusal(openRegularFile(path));
          assert.ok(opened instanceof TypeError, `${path}: ${opened}`);
        }
      } finally {
        listener.close();
      }
    }),
});

Deno.test("readRegularFile() passes on a missing file's and a symlink loop's errors", async () => {
  await withTempDir(async (dir) => {
    await Deno.symlink("nowhere", join(dir, "dangling"));
    await Deno.symlink("loop", join(dir, "loop"));
    await assert.rejects(
      readRegularFile(join(dir, "dangling"), { maxBytes: 1 }),
      Deno.errors.NotFound,
    );
    await assert.rejects(
      readRegularFile(join(dir, "loop"), { maxBytes: 1 }),
      Deno.errors.FilesystemLoop,
    );
  });
});

Deno.test("readRegularFile() with followSymlinks: false refuses any symlink, even to a regular file", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "file"), "{}\n");
    await Deno.symlink("file", join(dir, "link"));
    await Deno.symlink("nowhere", join(dir, "dangling"));
    for (const name of ["link", "dangling"]) {
      const error = await refusal(
        readRegularFile(join(dir, name), { maxBytes: 10, followSymlinks: false }),
      );
      assert.ok(error instanceof TypeError, String(error));
      assert.match(error.message, /: it is a symbolic link, not a regular file$/);
    }
    assert.equal(
      new TextDecoder().decode(
        await readRegularFile(join(dir, "file"), { maxBytes: 10, followSymlinks: false }),
      ),
      "{}\n",
    );
  });
});

Deno.test("readStreamText() reads a stream of up to maxBytes and stops one byte past it", async () => {
  const chunk = new TextEncoder().encode("x".repeat(1000));
  const endless = (counter: { pulled: number }): ReadableStream<Uint8Array> =>
    new ReadableStream({
      pull(controller): void {
        counter.pulled++;
        controller.enqueue(chunk);
      },
    });
  const tenChunks = (): ReadableStream<Uint8Array> => {
    let left = 10;
    return new ReadableStream({
      pull(controller): void {
        if (left-- === 0) controller.close();
        else controller.enqueue(chunk);
      },
    });
  };
  const options = { what: "closure", from: "stdin" };
  assert.equal(
    await readStreamText(tenChunks(), { ...options, maxBytes: 10_000 }),
    "x".repeat(10_000),
  );
  assert.equal(await readStreamText(ReadableStream.from([]), { ...options, maxBytes: 0 }), "");
  await assert.rejects(readStreamText(tenChunks(), { ...options, maxBytes: 9_999 }), {
    name: "RangeError",
    message: "Cannot read closure from stdin: it is more than the limit of 9999 bytes",
  });
  // A stream that never ends is cancelled at the bound, not read on.
  const counter = { pulled: 0 };
  await assert.rejects(
    bounded(readStreamText(endless(counter), { ...options, maxBytes: 1024 * 1024 })),
    /more than the limit of 1 MiB/,
  );
  const pulled = counter.pulled;
  assert.ok(pulled <= 1050, `pulled ${pulled} chunks of 1000 bytes for a 1 MiB bound`);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(counter.pulled, pulled, "pulled on after the refusal");
});
