// The getdents64 reader (this process holds --allow-all) against the
// Deno.readDirSync fallback (a child process without --allow-ffi) on the same
// awkward directories: every kind of entry, non-ASCII and 255-byte names, and
// a folder too big for one getdents64 call.
import assert from "node:assert/strict";
import { join } from "node:path";
import { openDirectoryReader } from "../../lib/fs/dir_reader.ts";
import { run, runReadOnly, withTempDir } from "../_tools.ts";

const linux = Deno.build.os === "linux";

function listing(dir: string): string[] {
  using reader = openDirectoryReader();
  const seen: string[] = [];
  reader.read(dir, (name, kind) => seen.push(`${kind} ${name}`));
  return seen.sort();
}

/** The same listing from a child process that holds only --allow-read. */
function fallbackListing(dir: string): Promise<{ method: string; entries: string[] }> {
  return runReadOnly(
    `import { openDirectoryReader } from "@repo/lib/fs/dir_reader.ts";
using reader = openDirectoryReader();
const seen: string[] = [];
reader.read(Deno.args[0]!, (name, kind) => seen.push(kind + " " + name));
console.log(JSON.stringify({ method: reader.method, entries: seen.sort() }));
`,
    [dir],
  ) as Promise<{ method: string; entries: string[] }>;
}

Deno.test({
  name: "openDirectoryReader() uses getdents64 with --allow-ffi on Linux",
  ignore: !linux,
  fn: () => {
    using reader = openDirectoryReader();
    assert.equal(reader.method, "getdents64");
  },
});

Deno.test({
  name: "getdents64 and Deno.readDirSync report the same entries",
  ignore: !linux,
  fn: async (t) => {
    await withTempDir(async (dir) => {
      await t.step("every kind of entry, odd names", async () => {
        const names = ["plain", "é-accent", "€uro-0x82", "日本語", "emoji-🎉", "x".repeat(255)];
        for (const name of names) await Deno.writeTextFile(join(dir, name), "");
        await Deno.mkdir(join(dir, "folder"));
        await Deno.symlink("plain", join(dir, "link"));
        await Deno.symlink("nowhere", join(dir, "dangling"));
        const fifo = await run("mkfifo", [join(dir, "fifo")]);
        assert.equal(fifo.code, 0, fifo.stderr);
        const fast = listing(dir);
        const expected: string[] = [
          ...names.map((name) => `file ${name}`),
          "directory folder",
          "symlink link",
          "symlink dangling",
          "other fifo",
        ].sort();
        assert.deepEqual(fast, expected);
        const slow = await fallbackListing(dir);
        assert.equal(slow.method, "Deno.readDirSync");
        assert.deepEqual(slow.entries, expected);
      });

      await t.step("a folder that takes several getdents64 calls", async () => {
        const big = join(dir, "big");
        await Deno.mkdir(big);
        const expected: string[] = [];
        // 3,000 entries of over 100 bytes each: more than the 128 KiB buffer.
        for (let i = 0; i < 3000; i++) {
          const name = `${String(i).padStart(5, "0")}-${"k".repeat(100)}.hsaco`;
          Deno.writeFileSync(join(big, name), new Uint8Array());
          expected.push(`file ${name}`);
        }
        expected.sort();
        assert.deepEqual(listing(big), expected);
        assert.deepEqual((await fallbackListing(big)).entries, expected);
      });
    });
  },
});

Deno.test("openDirectoryReader() throws Deno's error for what it cannot list", async () => {
  await withTempDir(async (dir) => {
    using reader = openDirectoryReader();
    const none = () => {};
    assert.throws(() => reader.read(join(dir, "missing"), none), Deno.errors.NotFound);
    await Deno.writeTextFile(join(dir, "file"), "");
    assert.throws(() => reader.read(join(dir, "file"), none), Deno.errors.NotADirectory);
  });
});

Deno.test({
  name: "DirectoryReader.follow() returns the real path, names that are not UTF-8 included",
  ignore: !linux,
  fn: async () => {
    await withTempDir(async (dir) => {
      const real = await Deno.realPath(dir);
      // A folder named with byte 0xe9 (Latin-1 "é"), reached through two links.
      const made = await run("sh", [
        "-c",
        `cd "$1" && mkdir "caf$(printf '\\351')" && ln -s "caf$(printf '\\351')" hop && ln -s hop/.. back && ln -s back/hop "l$(printf '\\351')"`,
        "sh",
        dir,
      ]);
      assert.equal(made.code, 0, made.stderr);
      using reader = openDirectoryReader();
      assert.equal(reader.follow(`${dir}/l\udce9`), `${real}/caf\udce9`);
      assert.equal(reader.follow(`${dir}/back`), real);
      assert.throws(() => reader.follow(`${dir}/nowhere\udce9`), Deno.errors.NotFound);
    });
  },
});
