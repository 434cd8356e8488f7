import assert from "node:assert/strict";
import { join } from "node:path";
import { type TarEntry, tarEntrySize, tarHeader, tarStream } from "../../lib/image/tar.ts";
import { requireTools, run } from "../_tools.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const tar = await requireTools("tar tests comparing with GNU tar", "tar");

function bytesEntry(path: string, text: string, mode = 0o644): TarEntry {
  const bytes = encoder.encode(text);
  return {
    path,
    type: "file",
    mode,
    size: bytes.length,
    content: () => ReadableStream.from([bytes]),
  };
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const longDir = `deep/${"d".repeat(120)}`;
const longName = `${longDir}/${"f".repeat(110)}.txt`; // no ustar split fits: needs PAX
const splittable = `${"p".repeat(60)}/${"q".repeat(60)}/file.txt`; // 128 bytes: ustar prefix
const longTarget = `../${"t".repeat(120)}`;

function sample(): TarEntry[] {
  return [
    { path: "deep", type: "directory", mode: 0o755 },
    { path: longDir, type: "directory", mode: 0o555 },
    bytesEntry(longName, "long name\n"),
    bytesEntry("deep/run.sh", "#!/bin/sh\necho hi\n", 0o755),
    { path: "deep/link", type: "symlink", mode: 0o777, linkTarget: "run.sh" },
    { path: "deep/longlink", type: "symlink", mode: 0o777, linkTarget: longTarget },
    { path: "deep/hard", type: "hardlink", mode: 0o755, linkTarget: "deep/run.sh" },
    bytesEntry(splittable, "split\n", 0o444),
    bytesEntry("empty", ""),
  ];
}

Deno.test({
  name: "tarStream() output lists in GNU tar as written: types, modes, PAX names, links",
  ignore: !tar,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const bytes = await collect(tarStream(sample(), { mtime: 1 }));
      await Deno.writeFile(join(dir, "a.tar"), bytes);
      const { code, stdout, stderr } = await run("tar", [
        "--numeric-owner",
        "--utc",
        "-tvf",
        join(dir, "a.tar"),
      ]);
      assert.equal(code, 0, stderr);
      const lines = stdout.trimEnd().split("\n");
      assert.deepEqual(lines, [
        "drwxr-xr-x 0/0               0 1970-01-01 00:00 deep/",
        `dr-xr-xr-x 0/0               0 1970-01-01 00:00 ${longDir}/`,
        `-rw-r--r-- 0/0              10 1970-01-01 00:00 ${longName}`,
        "-rwxr-xr-x 0/0              18 1970-01-01 00:00 deep/run.sh",
        "lrwxrwxrwx 0/0               0 1970-01-01 00:00 deep/link -> run.sh",
        `lrwxrwxrwx 0/0               0 1970-01-01 00:00 deep/longlink -> ${longTarget}`,
        "hrwxr-xr-x 0/0               0 1970-01-01 00:00 deep/hard link to deep/run.sh",
        `-r--r--r-- 0/0               6 1970-01-01 00:00 ${splittable}`,
        "-rw-r--r-- 0/0               0 1970-01-01 00:00 empty",
      ]);

      const out = join(dir, "out");
      await Deno.mkdir(out);
      const extract = await run("tar", ["-xf", join(dir, "a.tar"), "-C", out]);
      assert.equal(extract.code, 0, extract.stderr);
      assert.equal(await Deno.readTextFile(join(out, longName)), "long name\n");
      assert.equal(await Deno.readTextFile(join(out, splittable)), "split\n");
      const script = await Deno.stat(join(out, "deep/run.sh"));
      const hard = await Deno.stat(join(out, "deep/hard"));
      assert.equal(script.ino, hard.ino, "the hard link shares the file's inode");
      assert.equal(await Deno.readLink(join(out, "deep/longlink")), longTarget);
    } finally {
      // The archive extracts a read-only folder: only root could remove it as it is.
      await run("chmod", ["-R", "u+w", dir]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("tarStream() is byte-identical across runs and sized as tarEntrySize() says", async () => {
  const a = await collect(tarStream(sample(), { mtime: 1 }));
  const b = await collect(tarStream(sample(), { mtime: 1 }));
  assert.deepEqual(a, b);
  const expected = sample().reduce((sum, entry) => sum + tarEntrySize(entry), 1024);
  assert.equal(a.length, expected);
  assert.equal(a.length % 512, 0);
});

Deno.test("tarHeader() uses the ustar prefix when it fits and PAX only when needed", () => {
  assert.equal(tarHeader(bytesEntry(splittable, "")).length, 512);
  const header = tarHeader(bytesEntry(splittable, ""));
  assert.equal(
    decoder.decode(header.subarray(345, 345 + 121)),
    `${"p".repeat(60)}/${"q".repeat(60)}`,
  );
  assert.equal(decoder.decode(header.subarray(0, 8)), "file.txt");

  const pax = tarHeader(bytesEntry(longName, "x"));
  assert.equal(pax.length, 3 * 512, "PAX header, PAX data block, ustar header");
  assert.equal(String.fromCharCode(pax[156]!), "x");
  const record = decoder.decode(pax.subarray(512, 1024)).replace(/\0+$/, "");
  const length = Number(record.split(" ")[0]);
  assert.equal(record, `${length} path=${longName}\n`);
  assert.equal(encoder.encode(record).length, length, "the PAX length counts the whole record");
});

Deno.test("tarHeader() encodes sizes over 8 GiB with PAX and GNU base-256", () => {
  const size = 9 * 2 ** 30 + 5;
  const header = tarHeader({ path: "huge.bin", type: "file", mode: 0o644, size }, { mtime: 1 });
  assert.equal(header.length, 3 * 512);
  const record = decoder.decode(header.subarray(512, 1024)).replace(/\0+$/, "");
  assert.equal(record, `19 size=${size}\n`);
  const ustar = header.subarray(1024);
  assert.equal(ustar[124], 0x80, "base-256 marker");
  let value = 0n;
  for (const byte of ustar.subarray(125, 136)) value = value * 256n + BigInt(byte);
  assert.equal(value, BigInt(size));
  // The checksum still validates (GNU tar rejects the header otherwise).
  const copy = ustar.slice();
  copy.fill(0x20, 148, 156);
  const sum = copy.reduce((total, byte) => total + byte, 0);
  assert.equal(Number.parseInt(decoder.decode(ustar.subarray(148, 154)), 8), sum);
  assert.equal(
    tarEntrySize({ path: "huge.bin", type: "file", mode: 0o644, size }),
    1536 + size + 507,
  );

  const below = tarHeader({ path: "big.bin", type: "file", mode: 0o644, size: 2 ** 33 - 1 });
  assert.equal(below.length, 512, "8 GiB − 1 still fits the octal field");
  assert.equal(decoder.decode(below.subarray(124, 135)), "77777777777");
});

Deno.test({
  name: "tarHeader() of a 9 GiB file lists in GNU tar with its size (sparse archive)",
  ignore: !tar,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const size = 9 * 2 ** 30 + 5;
      const entry: TarEntry = { path: "huge.bin", type: "file", mode: 0o644, size };
      const header = tarHeader(entry, { mtime: 1 });
      const path = join(dir, "huge.tar");
      const file = await Deno.open(path, { write: true, create: true });
      await file.write(header);
      // The content and trailer stay holes: the file takes no disk space.
      await file.truncate(tarEntrySize(entry) + 1024);
      file.close();
      const { code, stdout, stderr } = await run("tar", ["--numeric-owner", "--utc", "-tvf", path]);
      assert.equal(code, 0, stderr);
      assert.equal(stdout, `-rw-r--r-- 0/0      ${size} 1970-01-01 00:00 huge.bin\n`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("tarStream() rejects content whose length differs from size", async () => {
  const entry: TarEntry = {
    path: "short",
    type: "file",
    mode: 0o644,
    size: 10,
    content: () => ReadableStream.from([encoder.encode("abc")]),
  };
  await assert.rejects(collect(tarStream([entry])), RangeError);
  await assert.rejects(
    collect(tarStream([{ ...entry, content: () => ReadableStream.from([new Uint8Array(11)]) }])),
    RangeError,
  );
});

Deno.test("tarHeader() rejects absolute paths, `..` and links without targets", () => {
  for (const path of ["/etc/passwd", "a/../b", "..", "a//b", ""]) {
    assert.throws(() => tarHeader({ path, type: "file", mode: 0o644 }), TypeError, path);
  }
  assert.throws(() => tarHeader({ path: "l", type: "symlink", mode: 0o777 }), TypeError);
  assert.throws(
    () => tarHeader({ path: "h", type: "hardlink", mode: 0o644, linkTarget: "../x" }),
    TypeError,
  );
  assert.throws(() => tarHeader({ path: "f", type: "file", mode: 0o644, size: -1 }), RangeError);
});
