/**
 * Benchmark of scripts/image.ts on a generated closure of more than 2 GiB,
 * beside `tar -c … | sha256sum` over the same paths: the floor for reading
 * and hashing everything once. Targets: at most 1.3× the floor's time, and a
 * peak RSS of at most 256 MiB (the writer streams; memory must not grow with
 * file sizes).
 *
 * The store paths are plain directories in a temporary "store" (image.ts
 * `--store-dir`), named like real store paths; image.ts reads them exactly as
 * it reads /nix/store. The image keeps every kernel (no `--target`), so both
 * sides read the same bytes. The archive goes to /dev/null: the cost measured
 * is image.ts's own. Times are the best of interleaved rounds (the machine is
 * shared), RSS the worst.
 *
 * Run: `deno run -A tests/bench/image_bench.ts` (or `deno task bench image`).
 *
 * @module
 */

import { join } from "node:path";
import { writeSampleRocmTree } from "../../lib/sample_rocm.ts";

const MiB = 2 ** 20;
const ROUNDS = 3;
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

/** Runs a command, returning its wall time and the peak RSS of the process itself. */
async function measure(
  cmd: string,
  args: string[],
): Promise<{ seconds: number; peakMiB: number }> {
  const start = performance.now();
  const child = new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).spawn();
  let peak = 0;
  let running = true;
  const poll = (async () => {
    while (running) {
      try {
        const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
        const kib = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
        peak = Math.max(peak, kib / 1024);
      } catch {
        // The process has exited between two polls.
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const { code, stderr } = await child.output();
  const seconds = (performance.now() - start) / 1000;
  running = false;
  await poll;
  if (code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(stderr)}`);
  }
  return { seconds, peakMiB: peak };
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
  const floorArgs = ["-c", `tar -cf - -C / "$@" | sha256sum >/dev/null`, "sh", ...relative];
  // For information: the same pipeline with OpenSSL's (faster, SHA-NI) hashing.
  const opensslArgs = [
    "-c",
    `tar -cf - -C / "$@" | openssl dgst -sha256 >/dev/null`,
    "sh",
    ...relative,
  ];
  const imageArgs = [
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

  let floor = Infinity;
  let openssl = Infinity;
  let best = Infinity;
  let rss = 0;
  for (let round = 0; round < ROUNDS; round++) {
    floor = Math.min(floor, (await measure("sh", floorArgs)).seconds);
    openssl = Math.min(openssl, (await measure("sh", opensslArgs)).seconds);
    const result = await measure(Deno.execPath(), imageArgs);
    best = Math.min(best, result.seconds);
    rss = Math.max(rss, result.peakMiB);
  }

  const ratio = best / floor;
  const timeOk = ratio <= 1.3;
  const rssOk = rss <= 256;
  const mark = (ok: boolean): string => (ok ? "pass" : "FAIL");
  console.log(
    `Closure: ${paths.length} store paths, ${(bytes / 2 ** 30).toFixed(2)} GiB of file data; ` +
      `best of ${ROUNDS} interleaved rounds.\n`,
  );
  console.log("| measure | image.ts | floor: tar -c \\| sha256sum | ratio | target | result |");
  console.log("| --- | ---: | ---: | ---: | --- | --- |");
  console.log(
    `| time (s) | ${best.toFixed(2)} | ${floor.toFixed(2)} | ${ratio.toFixed(2)}× | ≤ 1.3× | ${
      mark(timeOk)
    } |`,
  );
  console.log(
    `| throughput (MiB/s) | ${(bytes / MiB / best).toFixed(0)} | ${
      (bytes / MiB / floor).toFixed(0)
    } | | | |`,
  );
  console.log(
    `| time (s), reference tar -c \\| openssl dgst | ${best.toFixed(2)} | ${openssl.toFixed(2)} | ${
      (best / openssl).toFixed(2)
    }× | (information) | |`,
  );
  console.log(`| peak RSS (MiB) | ${rss.toFixed(0)} | | | ≤ 256 | ${mark(rssOk)} |`);
  if (!timeOk || !rssOk) Deno.exitCode = 1;
} finally {
  await Deno.remove(work, { recursive: true });
}
