/**
 * Benchmark of scripts/image.ts on a generated closure of more than 2 GiB,
 * beside `tar -cf - PATHS | openssl dgst -sha256` over the same paths: the
 * floor for reading and hashing everything once (OpenSSL's SHA-256 uses the
 * CPU's SHA extensions; `sha256sum` is 4× slower here and no floor). Targets:
 * at most 1.3× the floor's time writing the archive to stdout (a pipe, as in
 * `| podman load`) and to `--output FILE`, and a peak RSS of at most 256 MiB.
 * `--output FILE` is written to the work directory's disk (a temporary file
 * renamed into place, not fsynced: an image is regenerable; for information
 * the bench also times the floor writing the same bytes to a file with `tee`).
 *
 * The store paths are plain directories in a temporary "store" (image.ts
 * `--store-dir`), named like real store paths; image.ts reads them exactly as
 * it reads /nix/store. The image keeps every kernel (no `--target`), so both
 * sides read the same bytes. The floor and the stdout case end in the same
 * reader (`openssl`, `cat >/dev/null`). Times are the best of interleaved
 * rounds (the machine is shared), RSS the worst (`/usr/bin/time -f %M`).
 *
 * Run: `deno run -A tests/bench/image_bench.ts` (or `deno task bench image`).
 *
 * @module
 */

import { join } from "node:path";
import { writeSampleRocmTree } from "../../lib/package/sample_rocm.ts";

const MiB = 2 ** 20;
const ROUNDS = 5;
const here = new URL(".", import.meta.url).pathname;
const script = join(here, "../../scripts/image.ts");
const permissions = (await Deno.readTextFile(script)).split("\n")[0]!.split(" ").filter((word) =>
  word.startsWith("--allow-")
);

function storeName(name: string): string {
  const alphabet = "0123456789abcdfghijklmnpqrsvwxyz";
  let state = 0x811c9dc5;
  let hash = "";
  for (let i = 0; i < 32; i++) {
    state = Math.imul(state ^ name.charCodeAt(i % name.length) ^ i, 0x01000193) >>> 0;
    hash += alphabet[state % 32];
  }
  return `${hash}-${name}`;
}

/** Writes `size` bytes of varied (not compressible, not all equal) content. */
async function writeBlob(path: string, size: number, seed: number): Promise<void> {
  const block = new Uint8Array(MiB);
  const words = new Uint32Array(block.buffer);
  let state = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    words[i] = state >>> 0;
  }
  const file = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o444 });
  try {
    for (let written = 0, n = 0; written < size; n++) {
      words[0] = n; // every block differs
      const chunk = block.subarray(0, Math.min(MiB, size - written));
      let offset = 0;
      while (offset < chunk.length) offset += await file.write(chunk.subarray(offset));
      written += chunk.length;
    }
  } finally {
    file.close();
  }
}

async function generate(store: string): Promise<{ paths: string[]; bytes: number }> {
  const glibc = join(store, storeName("glibc-2.40"));
  const python = join(store, storeName("python3-3.12.8"));
  const rocm = join(store, storeName("rocm-7.12.0a20260308"));
  let bytes = 0;
  await Deno.mkdir(join(glibc, "lib"), { recursive: true });
  for (let i = 0; i < 300; i++) {
    await writeBlob(join(glibc, "lib", `libpart${i}.so`), 32 * 1024, i);
    bytes += 32 * 1024;
  }
  for (let d = 0; d < 30; d++) {
    const dir = join(python, "lib/python3.12", `package${d}`);
    await Deno.mkdir(dir, { recursive: true });
    for (let i = 0; i < 100; i++) {
      await writeBlob(join(dir, `module${i}.py`), 4096, d * 1000 + i);
      bytes += 4096;
    }
  }
  await writeSampleRocmTree(rocm, { isas: ["gfx1100", "gfx1151"], kernelBytes: 64 * MiB });
  bytes += 11 * 64 * MiB;
  for (let i = 0; i < 6; i++) {
    await writeBlob(join(rocm, "lib", `librocm_big${i}.so`), 256 * MiB, 7 + i);
    bytes += 256 * MiB;
  }
  return { paths: [glibc, python, rocm], bytes };
}

/** Runs `sh -c script`, returning its wall time and the peak RSS `/usr/bin/time` wrote to `rssFile`. */
async function measure(
  script: string,
  args: string[],
  rssFile?: string,
): Promise<{ seconds: number; peakMiB: number }> {
  const start = performance.now();
  const { code, stderr } = await new Deno.Command("sh", {
    args: ["-c", script, "sh", ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - start) / 1000;
  if (code !== 0) throw new Error(`${script} failed: ${new TextDecoder().decode(stderr)}`);
  const kib = rssFile === undefined ? 0 : Number((await Deno.readTextFile(rssFile)).trim());
  return { seconds, peakMiB: kib / 1024 };
}

const work = await Deno.makeTempDir({ prefix: "image_bench_" });
try {
  const store = join(work, "store");
  const { paths, bytes } = await generate(store);
  const closure = join(work, "closure.json");
  const [glibc, python, rocm] = paths as [string, string, string];
  await Deno.writeTextFile(
    closure,
    JSON.stringify([
      { path: glibc, narSize: 0, references: [] },
      { path: python, narSize: 0, references: [glibc] },
      { path: rocm, narSize: 0, references: [glibc, python] },
    ]),
  );
  const relative = paths.map((path) => path.slice(1));
  const floorScript = `tar -cf - -C / "$@" | openssl dgst -sha256 >/dev/null`;
  const rss = join(work, "rss");
  const output = join(work, "image.tar");
  const image = [
    "/usr/bin/time",
    "-f",
    "%M",
    "-o",
    rss,
    Deno.execPath(),
    "run",
    "--no-config",
    ...permissions,
    script,
    "--closure",
    closure,
    "--name",
    "bench",
    "--store-dir",
    store,
  ];
  // --output FILE goes to the work directory's disk (not fsynced, as a Nix
  // builder or tar leaves its output). Beside it, for information, the floor
  // that also writes the same bytes to a file on that disk.
  // (tmpfs is out of reach: Deno wants --allow-all for /dev/shm.)
  const modes = [
    ["stdout", "stdout \\| cat", `"$@" | cat >/dev/null`],
    ["file", "--output FILE", `"$@" --output ${JSON.stringify(output)}`],
  ] as const;
  const writingFloorScript = `tar -cf - -C / "$@" | tee ${
    JSON.stringify(output)
  } | openssl dgst -sha256 >/dev/null`;

  let floor = Infinity;
  let writingFloor = Infinity;
  const best: Record<string, number> = {};
  const peak: Record<string, number> = {};
  for (let round = 0; round < ROUNDS; round++) {
    floor = Math.min(floor, (await measure(floorScript, relative)).seconds);
    for (const [mode, _label, text] of modes) {
      const result = await measure(text, image, rss);
      best[mode] = Math.min(best[mode] ?? Infinity, result.seconds);
      peak[mode] = Math.max(peak[mode] ?? 0, result.peakMiB);
      await Deno.remove(output).catch(() => {});
    }
    writingFloor = Math.min(writingFloor, (await measure(writingFloorScript, relative)).seconds);
    await Deno.remove(output).catch(() => {});
  }

  const mark = (ok: boolean): string => (ok ? "pass" : "FAIL");
  let failed = false;
  console.log(
    `Closure: ${paths.length} store paths, ${(bytes / 2 ** 30).toFixed(2)} GiB of file data; ` +
      `best of ${ROUNDS} interleaved rounds.\n`,
  );
  console.log("| image.ts output | time (s) | floor (s) | ratio (≤ 1.3×) | peak RSS (≤ 256 MiB) |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const [mode, label] of modes) {
    const ratio = best[mode]! / floor;
    failed ||= ratio > 1.3 || peak[mode]! > 256;
    console.log(
      `| ${label} | ${best[mode]!.toFixed(2)} | ${floor.toFixed(2)} | ${ratio.toFixed(2)}× ${
        mark(ratio <= 1.3)
      } | ${peak[mode]!.toFixed(0)} MiB ${mark(peak[mode]! <= 256)} |`,
    );
  }
  console.log(
    `\nFloor: \`tar -cf - PATHS | openssl dgst -sha256\` at ${
      (bytes / MiB / floor).toFixed(0)
    } MiB/s of file data. For information, the floor that also writes the bytes to a file on ` +
      `the same disk (\`tar | tee FILE | openssl\`): ` +
      `${writingFloor.toFixed(2)} s; --output FILE (disk) is ${
        (best.file! / writingFloor).toFixed(2)
      }× that.`,
  );
  if (failed) Deno.exitCode = 1;
} finally {
  await Deno.remove(work, { recursive: true });
}
