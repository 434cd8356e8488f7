/**
 * Hash and prefetch benchmark, every figure measured side by side in the same
 * run on the same 2 GiB file (generated in a temporary folder, removed after):
 *
 * - hashing: `scripts/prefetch.ts FILE` (the real CLI, Deno start-up
 *   included) vs `openssl dgst -sha256`, `nix hash file` and `sha256sum`;
 * - prefetch over loopback HTTP (the server runs in its own process):
 *   `scripts/prefetch.ts URL` (with and without `--add-to-store`) vs
 *   `nix-prefetch-url URL` and `curl -o FILE URL && openssl dgst -sha256 FILE`.
 *
 * Tools run in interleaved rounds and the best time of each is kept, which
 * cuts the noise of a shared machine. Peak RSS comes from GNU time's `%M`, or,
 * without it, from polling VmHWM in /proc. Targets: hash throughput ≥ 0.95×
 * openssl's, peak RSS ≤ 64 MiB, prefetch ≥ 3× faster than nix-prefetch-url.
 * Exits 1 when a target is missed.
 *
 * Options: `--size-mib N` (default 2048), `--rounds N` (default 3).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";

const { values } = parseArgs({
  args: Deno.args,
  options: { "size-mib": { type: "string" }, rounds: { type: "string" } },
});
const SIZE = Number(values["size-mib"] ?? 2048) * 1024 * 1024;
const ROUNDS = Number(values.rounds ?? 3);
const ROOT = new URL("../..", import.meta.url).pathname;
const SCRIPT = join(ROOT, "scripts/prefetch.ts");
const PERMISSIONS = (await Deno.readTextFile(SCRIPT)).split("\n")[0]!
  .replace(/^#!\/usr\/bin\/env -S deno run /, "").split(" ");
const NIX_ENV = {
  NIX_CONFIG: "experimental-features = nix-command flakes\nsubstituters =\nsandbox = false",
};
const GNU_TIME = await exists("/usr/bin/time");

interface Sample {
  seconds: number;
  rssKiB: number;
  stdout: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function hasTool(name: string): Promise<boolean> {
  const { success } = await new Deno.Command("sh", {
    args: ["-c", `command -v "$1" >/dev/null`, "sh", name],
  }).output();
  return success;
}

/** Runs one command, measuring wall time and peak RSS. */
async function measure(
  argv: string[],
  env: Record<string, string> = {},
): Promise<Sample> {
  const report = await Deno.makeTempFile();
  try {
    const [cmd, ...args] = GNU_TIME ? ["/usr/bin/time", "-f", "%M", "-o", report, ...argv] : argv;
    const started = performance.now();
    const child = new Deno.Command(cmd!, { args, env, stdout: "piped", stderr: "piped" }).spawn();
    let peak = 0;
    let polling = true;
    const poller = GNU_TIME ? Promise.resolve() : (async () => {
      while (polling) {
        try {
          const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
          peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
        } catch { /* exited */ }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const output = await child.output();
    const seconds = (performance.now() - started) / 1000;
    polling = false;
    await poller;
    const stdout = new TextDecoder().decode(output.stdout);
    if (!output.success) {
      throw new Error(
        `${argv.join(" ")} failed: ${new TextDecoder().decode(output.stderr).trim()}`,
      );
    }
    const rssKiB = GNU_TIME
      ? Number((await Deno.readTextFile(report)).trim().split("\n").at(-1))
      : peak;
    return { seconds, rssKiB, stdout };
  } finally {
    await Deno.remove(report);
  }
}

/** Hex digest found in a tool's output (hex, SRI or nix32 are all normalised to hex). */
function hexOf(stdout: string): string {
  const hex = /\b[0-9a-f]{64}\b/.exec(stdout);
  if (hex !== null) return hex[0];
  const sri = /sha256-([A-Za-z0-9+/]{43}=)/.exec(stdout);
  if (sri !== null) {
    return Array.from(atob(sri[1]!), (c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
  }
  const nix32 = /\b[0-9a-df-np-sv-z]{52}\b/.exec(stdout);
  if (nix32 !== null) return nix32ToHex(nix32[0]);
  throw new Error(`no sha256 in output: ${stdout}`);
}

function nix32ToHex(text: string): string {
  // Independent of lib/nix32.ts on purpose: the benchmark checks agreement.
  const alphabet = "0123456789abcdfghijklmnpqrsvwxyz";
  const bytes = new Uint8Array(32);
  for (let n = 0; n < text.length; n++) {
    const digit = alphabet.indexOf(text[text.length - n - 1]!);
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    bytes[i]! |= (digit << j) & 0xff;
    if (i + 1 < 32) bytes[i + 1]! |= digit >> (8 - j);
  }
  return Array.from(bytes, (x) => x.toString(16).padStart(2, "0")).join("");
}

interface Tool {
  name: string;
  argv: () => string[];
  env?: Record<string, string>;
  /** Runs before each measurement, unmeasured (e.g. remove a store path). */
  before?: () => Promise<void>;
  /** Extra measured commands after the main one (curl then openssl). */
  then?: string[];
}

async function bestOf(tools: Tool[]): Promise<Map<string, Sample>> {
  const best = new Map<string, Sample>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const tool of tools) {
      await tool.before?.();
      let sample = await measure(tool.argv(), tool.env);
      if (tool.then !== undefined) {
        const next = await measure(tool.then, tool.env);
        sample = {
          seconds: sample.seconds + next.seconds,
          rssKiB: Math.max(sample.rssKiB, next.rssKiB),
          stdout: next.stdout,
        };
      }
      const previous = best.get(tool.name);
      best.set(tool.name, {
        seconds: Math.min(previous?.seconds ?? Infinity, sample.seconds),
        rssKiB: Math.max(previous?.rssKiB ?? 0, sample.rssKiB),
        stdout: sample.stdout,
      });
    }
  }
  return best;
}

const GiB = 1024 ** 3;
const rows: string[][] = [];
let failed = false;

function row(
  group: string,
  name: string,
  sample: Sample,
  reference: Sample,
  target: { text: string; pass: boolean } | undefined,
): void {
  const rate = SIZE / GiB / sample.seconds;
  rows.push([
    group,
    name,
    sample.seconds.toFixed(2),
    rate.toFixed(2),
    (sample.rssKiB / 1024).toFixed(1),
    `${(reference.seconds / sample.seconds).toFixed(2)}×`,
    target?.text ?? "",
    target === undefined ? "" : target.pass ? "pass" : "**MISS**",
  ]);
  if (target !== undefined && !target.pass) failed = true;
}

const dir = await Deno.makeTempDir({ prefix: "hash-bench-" });
let server: Deno.ChildProcess | undefined;
let storePath: string | undefined;
/** Deletes the benchmark file's store path, so that each run adds it anew. */
async function dropStorePath(): Promise<void> {
  if (storePath === undefined) return;
  await new Deno.Command("nix-store", {
    args: ["--delete", storePath],
    env: NIX_ENV,
    stdout: "null",
    stderr: "null",
  }).output();
}
try {
  const file = join(dir, "big.bin");
  {
    // Incompressible data: a random 4 MiB block, each copy salted with its index.
    const block = new Uint8Array(4 * 1024 * 1024);
    crypto.getRandomValues(block.subarray(0, 65536));
    for (let offset = 65536; offset < block.length; offset *= 2) {
      block.copyWithin(offset, 0, offset);
    }
    using out = await Deno.open(file, { write: true, create: true, truncate: true });
    for (let written = 0, index = 0; written < SIZE; written += block.length, index++) {
      new DataView(block.buffer).setUint32(0, index);
      const part = block.subarray(0, Math.min(block.length, SIZE - written));
      for (let o = 0; o < part.length;) o += await out.write(part.subarray(o));
    }
  }
  // Warm the page cache so every tool reads from memory, not disk.
  await measure(["sh", "-c", 'cat "$0" >/dev/null', file]);

  const deno = Deno.execPath();
  const nix = await hasTool("nix") && await hasTool("nix-prefetch-url");
  const hashTools: Tool[] = [
    { name: "prefetch.ts FILE (ours)", argv: () => [deno, "run", ...PERMISSIONS, SCRIPT, file] },
    { name: "openssl dgst -sha256", argv: () => ["openssl", "dgst", "-sha256", file] },
    { name: "sha256sum", argv: () => ["sha256sum", file] },
  ];
  if (nix) {
    hashTools.push({
      name: "nix hash file",
      argv: () => ["nix", "hash", "file", "--type", "sha256", file],
      env: NIX_ENV,
    });
  }
  const hashed = await bestOf(hashTools);
  const truth = hexOf(hashed.get("openssl dgst -sha256")!.stdout);
  for (const [name, sample] of hashed) {
    if (hexOf(sample.stdout) !== truth) throw new Error(`${name} disagrees: ${sample.stdout}`);
  }
  const openssl = hashed.get("openssl dgst -sha256")!;
  const ours = hashed.get("prefetch.ts FILE (ours)")!;
  row("hash", "prefetch.ts FILE (ours)", ours, openssl, {
    text: "≥ 0.95× openssl, ≤ 64 MiB",
    pass: openssl.seconds / ours.seconds >= 0.95 && ours.rssKiB <= 64 * 1024,
  });
  for (const [name, sample] of hashed) {
    if (sample !== ours) row("hash", name, sample, openssl, undefined);
  }

  // Prefetch over loopback: the server in its own process, serving `dir`.
  server = new Deno.Command(deno, {
    args: ["run", "-A", join(ROOT, "tests/_server.ts"), dir],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = server.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const port = Number(new TextDecoder().decode(value).trim());
  const url = `http://127.0.0.1:${port}/big.bin`;
  const copy = join(dir, "curl.bin");
  storePath = nix
    ? (await measure(["nix-store", "--print-fixed-path", "sha256", truth, "big.bin"])).stdout.trim()
    : undefined;
  const fetchTools: Tool[] = [
    { name: "prefetch.ts URL (ours)", argv: () => [deno, "run", ...PERMISSIONS, SCRIPT, url] },
    {
      name: "curl -o FILE && openssl dgst",
      argv: () => ["curl", "-sS", "-o", copy, url],
      then: ["openssl", "dgst", "-sha256", copy],
      before: () => Deno.remove(copy).catch(() => {}),
    },
  ];
  if (nix) {
    fetchTools.push(
      {
        name: "prefetch.ts --add-to-store URL (ours)",
        argv: () => [deno, "run", ...PERMISSIONS, SCRIPT, "--add-to-store", url],
        env: NIX_ENV,
        before: dropStorePath,
      },
      {
        name: "nix-prefetch-url URL",
        argv: () => ["nix-prefetch-url", url],
        env: NIX_ENV,
        before: dropStorePath,
      },
    );
  }
  const fetched = await bestOf(fetchTools);
  for (const [name, sample] of fetched) {
    if (hexOf(sample.stdout) !== truth) throw new Error(`${name} disagrees: ${sample.stdout}`);
  }
  const reference = fetched.get("nix-prefetch-url URL") ??
    fetched.get("curl -o FILE && openssl dgst")!;
  const referenceName = nix ? "nix-prefetch-url" : "curl + openssl";
  for (const [name, sample] of fetched) {
    if (sample === reference) continue;
    const target = name === "prefetch.ts URL (ours)" && nix
      ? { text: "≥ 3× nix-prefetch-url", pass: reference.seconds / sample.seconds >= 3 }
      : undefined;
    row(`prefetch (vs ${referenceName})`, name, sample, reference, target);
  }
  row(
    `prefetch (vs ${referenceName})`,
    nix ? "nix-prefetch-url URL" : "curl -o FILE && openssl dgst",
    reference,
    reference,
    undefined,
  );
} finally {
  if (server !== undefined) {
    server.kill();
    await server.status;
  }
  await dropStorePath();
  await Deno.remove(dir, { recursive: true });
}

const header = ["job", "tool", "best s", "GiB/s", "peak RSS MiB", "ratio", "target", "result"];
console.log(
  `File: ${(SIZE / GiB).toFixed(2)} GiB, best of ${ROUNDS} interleaved rounds; peak RSS via ${
    GNU_TIME ? "GNU time %M" : "/proc VmHWM"
  }; ratio = reference time / tool time.\n`,
);
console.log(`| ${header.join(" | ")} |`);
console.log(`|${header.map(() => "---").join("|")}|`);
for (const cells of rows) console.log(`| ${cells.join(" | ")} |`);
Deno.exit(failed ? 1 : 0);
