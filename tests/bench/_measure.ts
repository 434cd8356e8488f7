/**
 * What the hash and download benchmarks share: running a command while
 * measuring its wall time and peak RSS, best-of-N interleaved rounds, the
 * 2 GiB test file (generated once under `.bench/`, reused), the loopback
 * server in its own process, digests in any encoding, and the result table.
 *
 * @module
 */

import { join } from "node:path";
import { pathExists } from "../_tools.ts";

export const ROOT: string = new URL("../..", import.meta.url).pathname;
export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;
export const NIX_ENV: Record<string, string> = {
  NIX_CONFIG:
    "experimental-features = nix-command flakes\nsubstituters =\nsandbox = false\nbuild-users-group =",
};
const GNU_TIME = await pathExists("/usr/bin/time");
export const RSS_SOURCE: string = GNU_TIME ? "GNU time %M" : "/proc VmHWM";

/** The permissions in a script's shebang. */
export async function shebangPermissions(script: string): Promise<string[]> {
  return (await Deno.readTextFile(script)).split("\n")[0]!
    .replace(/^#!\/usr\/bin\/env -S deno run /, "").split(" ");
}

export interface Sample {
  seconds: number;
  rssKiB: number;
  stdout: string;
}

export async function hasTool(name: string): Promise<boolean> {
  const { success } = await new Deno.Command("sh", {
    args: ["-c", `command -v "$1" >/dev/null`, "sh", name],
  }).output();
  return success;
}

/** Runs one command, measuring wall time and peak RSS (of the command itself). */
export async function measure(
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
export function hexOf(stdout: string): string {
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
  // Independent of lib/hash/nix32.ts on purpose: the benchmark checks agreement.
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

export interface Tool {
  name: string;
  argv: () => string[];
  env?: Record<string, string>;
  /** Runs before each measurement, unmeasured (e.g. remove a store path). */
  before?: () => Promise<void>;
  /** Extra measured commands after the main one (curl then openssl). */
  then?: string[];
}

/** Runs every tool `rounds` times, interleaved, keeping each one's best time and highest RSS. */
export async function bestOf(tools: Tool[], rounds: number): Promise<Map<string, Sample>> {
  const best = new Map<string, Sample>();
  for (let round = 0; round < rounds; round++) {
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

/** Checks that every sample printed the digest `truth`. */
export function assertAgree(samples: Map<string, Sample>, truth: string): void {
  for (const [name, sample] of samples) {
    if (hexOf(sample.stdout) !== truth) throw new Error(`${name} disagrees: ${sample.stdout}`);
  }
}

/**
 * The benchmark file `.bench/big-<MiB>.bin`: incompressible (a random 4 MiB
 * block, each copy salted with its index), generated once and reused, then
 * read once so every tool reads it from the page cache.
 */
export async function benchFile(size: number): Promise<string> {
  const dir = join(ROOT, ".bench");
  await Deno.mkdir(dir, { recursive: true });
  const file = join(dir, `big-${Math.round(size / MiB)}.bin`);
  if (!(await pathExists(file)) || (await Deno.stat(file)).size !== size) {
    const block = new Uint8Array(4 * MiB);
    crypto.getRandomValues(block.subarray(0, 65536));
    for (let offset = 65536; offset < block.length; offset *= 2) {
      block.copyWithin(offset, 0, offset);
    }
    const temp = `${file}.tmp`;
    {
      using out = await Deno.open(temp, { write: true, create: true, truncate: true });
      for (let written = 0, index = 0; written < size; written += block.length, index++) {
        new DataView(block.buffer).setUint32(0, index);
        const part = block.subarray(0, Math.min(block.length, size - written));
        for (let o = 0; o < part.length;) o += await out.write(part.subarray(o));
      }
    }
    await Deno.rename(temp, file);
  }
  await measure(["sh", "-c", 'cat "$0" >/dev/null', file]);
  return file;
}

/**
 * tests/_server.ts serving `dir` in its own process, optionally throttled
 * per connection, with a round-trip time acted out, closing every
 * connection after one response.
 */
export async function startServer(
  dir: string,
  options: { bytesPerSecond?: number; rttMs?: number; closeEveryConnection?: boolean } = {},
): Promise<{ port: number } & AsyncDisposable> {
  const { bytesPerSecond, rttMs } = options;
  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "tests/_server.ts"),
      ...(bytesPerSecond === undefined ? [] : ["--bytes-per-second", String(bytesPerSecond)]),
      ...(rttMs === undefined ? [] : ["--rtt-ms", String(rttMs)]),
      ...(options.closeEveryConnection ? ["--close-every-connection"] : []),
      dir,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = server.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  await server.stdout.cancel();
  return {
    port: Number(new TextDecoder().decode(value).trim()),
    [Symbol.asyncDispose]: async () => {
      server.kill();
      await server.status;
    },
  };
}

/**
 * busybox httpd serving `dir` on 127.0.0.1 (it sends files with sendfile(2),
 * so the server costs next to no CPU and the measured client gets the
 * machine's other core), or `undefined` with the reason printed when busybox
 * is not installed.
 */
export async function startSendfileServer(
  dir: string,
): Promise<({ port: number } & AsyncDisposable) | undefined> {
  if (!await hasTool("busybox")) {
    console.log("busybox not installed: the unthrottled rows use tests/_server.ts (costs a core)");
    return undefined;
  }
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const server = new Deno.Command("busybox", {
    args: ["httpd", "-f", "-p", `127.0.0.1:${port}`, "-h", dir],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const stop = async (): Promise<void> => {
    server.kill();
    await server.status;
  };
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return { port, [Symbol.asyncDispose]: stop };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  await stop();
  throw new Error(`busybox httpd did not listen on port ${port} within 2 s`);
}

/** The rows of a result table: each tool's time against a reference's. */
export class Table {
  #rows: string[][] = [];
  #size: number;
  failed = false;

  constructor(size: number) {
    this.#size = size;
  }

  row(
    group: string,
    name: string,
    sample: Sample,
    reference: Sample,
    target?: { text: string; pass: boolean },
  ): void {
    this.#rows.push([
      group,
      name,
      sample.seconds.toFixed(2),
      (this.#size / GiB / sample.seconds).toFixed(2),
      (sample.rssKiB / 1024).toFixed(1),
      `${(reference.seconds / sample.seconds).toFixed(2)}×`,
      target?.text ?? "",
      target === undefined ? "" : target.pass ? "pass" : "**MISS**",
    ]);
    if (target !== undefined && !target.pass) this.failed = true;
  }

  print(rounds: number): void {
    const header = ["job", "tool", "best s", "GiB/s", "peak RSS MiB", "ratio", "target", "result"];
    console.log(
      `File: ${
        (this.#size / GiB).toFixed(2)
      } GiB, best of ${rounds} interleaved rounds; peak RSS via ${RSS_SOURCE}; ratio = reference time / tool time.\n`,
    );
    console.log(`| ${header.join(" | ")} |`);
    console.log(`|${header.map(() => "---").join("|")}|`);
    for (const cells of this.#rows) console.log(`| ${cells.join(" | ")} |`);
  }
}
