import assert from "node:assert/strict";
import { formatHash, type HashAlgorithm } from "../../lib/hash/hash.ts";
import { Hasher, hashFile, hashReader, hashStream } from "../../lib/hash/hasher.ts";
import { nixEnv, requireTools, run } from "../_tools.ts";

const MiB = 1024 * 1024;
// Around the 4 MiB block boundary, plus the empty file and a multi-block file.
const SIZES = [0, 1, 4 * MiB - 1, 4 * MiB, 4 * MiB + 1, 9 * MiB + 7];

function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(offset + 65536, size)));
  }
  return bytes;
}

async function subtleHex(
  algorithm: HashAlgorithm,
  bytes: Uint8Array<ArrayBuffer>,
): Promise<string> {
  const name = algorithm === "sha256" ? "SHA-256" : "SHA-512";
  const digest = new Uint8Array(await crypto.subtle.digest(name, bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function withTempFile<T>(bytes: Uint8Array, fn: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ prefix: "hasher-test-" });
  try {
    await Deno.writeFile(path, bytes);
    return await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("hashFile() equals crypto.subtle for sizes around the block boundary", async () => {
  for (const size of SIZES) {
    const bytes = randomBytes(size);
    for (const algorithm of ["sha256", "sha512"] as const) {
      const result = await withTempFile(bytes, (path) => hashFile(path, { algorithm }));
      assert.equal(result.size, size);
      assert.equal(result.hash.algorithm, algorithm);
      assert.equal(
        formatHash(result.hash, "hex"),
        await subtleHex(algorithm, bytes),
        `size ${size}`,
      );
    }
  }
});

Deno.test("hashFile() equals openssl dgst on a multi-block file", async () => {
  const bytes = randomBytes(9 * MiB + 7);
  await withTempFile(bytes, async (path) => {
    for (const algorithm of ["sha256", "sha512"] as const) {
      const { stdout, code } = await run("openssl", ["dgst", `-${algorithm}`, "-r", path]);
      assert.equal(code, 0);
      const { hash } = await hashFile(path, { algorithm });
      assert.equal(formatHash(hash, "hex"), stdout.split(" ")[0]);
    }
  });
});

const nix = await requireTools("hasher tests comparing with nix hash file", "nix");

Deno.test({
  name: "hashFile() equals nix hash file in SRI and nix32, sha256 and sha512",
  ignore: !nix,
  fn: async () => {
    const bytes = randomBytes(5 * MiB + 3);
    await withTempFile(bytes, async (path) => {
      for (const algorithm of ["sha256", "sha512"] as const) {
        const { hash } = await hashFile(path, { algorithm });
        const sri = await run("nix", ["hash", "file", "--type", algorithm, "--sri", path], {
          env: nixEnv(),
        });
        assert.equal(sri.code, 0, sri.stderr);
        assert.equal(formatHash(hash, "sri"), sri.stdout.trim());
        const base32 = await run("nix", ["hash", "file", "--type", algorithm, "--base32", path], {
          env: nixEnv(),
        });
        assert.equal(base32.code, 0, base32.stderr);
        assert.equal(formatHash(hash, "nix32"), base32.stdout.trim());
      }
    });
  },
});

Deno.test("hashStream() hashes Web streams and async iterables chunked any way", async () => {
  const bytes = randomBytes(3 * MiB + 11);
  const expected = await subtleHex("sha256", bytes);
  const fromStream = await hashStream(new Blob([bytes]).stream());
  assert.equal(formatHash(fromStream.hash, "hex"), expected);
  assert.equal(fromStream.size, bytes.length);
  async function* oddChunks(): AsyncGenerator<Uint8Array> {
    let offset = 0;
    for (let step = 1; offset < bytes.length; step = (step * 7 + 3) % 100_003) {
      yield bytes.subarray(offset, offset + step);
      offset += step;
    }
  }
  const fromIterable = await hashStream(oddChunks(), { algorithm: "sha512" });
  assert.equal(formatHash(fromIterable.hash, "hex"), await subtleHex("sha512", bytes));
  assert.equal(fromIterable.size, bytes.length);
});

Deno.test("hashStream() rejects chunks that are not bytes", async () => {
  async function* strings(): AsyncGenerator<Uint8Array> {
    yield "text" as unknown as Uint8Array;
  }
  await assert.rejects(() => hashStream(strings()), {
    name: "TypeError",
    message: /expected Uint8Array/,
  });
});

Deno.test("hashReader() hands every block to onBlock in order", async () => {
  const bytes = randomBytes(9 * MiB + 1);
  await withTempFile(bytes, async (path) => {
    using file = await Deno.open(path);
    const copy = new Uint8Array(bytes.length);
    let offset = 0;
    const progress: number[] = [];
    const { size } = await hashReader(file, {
      onBlock: (block) => {
        copy.set(block, offset);
        offset += block.length;
        return Promise.resolve();
      },
      onProgress: (received) => progress.push(received),
    });
    assert.equal(size, bytes.length);
    assert.equal(offset, bytes.length);
    assert.ok(copy.every((byte, i) => byte === bytes[i]), "copy differs");
    assert.equal(progress.at(-1), bytes.length);
  });
});

Deno.test("hashFile() rejects a directory and a missing file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(() => hashFile(dir), /is a directory/);
    await assert.rejects(() => hashFile(`${dir}/missing`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir);
  }
});

Deno.test("hashFile() stops when its signal is aborted", async () => {
  const bytes = randomBytes(9 * MiB);
  await withTempFile(bytes, async (path) => {
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await assert.rejects(() => hashFile(path, { signal: controller.signal }), /stop/);
  });
});

Deno.test("Hasher counts bytes and matches the known vectors", () => {
  const hasher = new Hasher();
  hasher.update(new TextEncoder().encode("ab"));
  hasher.update(new TextEncoder().encode("c"));
  assert.equal(hasher.size, 3);
  assert.equal(
    formatHash(hasher.digest(), "nix32"),
    "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s",
  );
  assert.equal(
    formatHash(new Hasher("sha256").digest(), "sri"),
    "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
  );
});
