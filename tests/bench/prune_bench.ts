/**
 * One package per GPU: what pruning saves and costs. The bench tree is the
 * sample tree's GPU code for the 4 ISAs of gfx110X-all plus
 * TheRock-shaped real ELF files, and 20,000 more kernel-like files (4 KiB
 * each, spread over 40 library folders, one ISA in four); it is installed by
 * nix/install.sh as nix/package.nix does, then pruned to gfx1100 by
 * scripts/prune.ts (with its check). Reports files and bytes removed per
 * kind, and install time with and without pruning. Target: pruning costs at
 * most 10% over the plain install. Exits 1 when the target is missed.
 *
 * @module
 */

import { join } from "node:path";
import { writeSampleRocmTree } from "../../lib/package/sample_rocm.ts";
import { glibcStandIn, writeTheRockShapedTree } from "../_elf_fixtures.ts";

const FILES = 20_000;
const DIRS = 40;
const KERNEL_BYTES = 4096;
const RUNS = 3;
const TARGET = 0.1;
const ISAS = ["gfx1100", "gfx1101", "gfx1102", "gfx1103"];
const root = new URL("../..", import.meta.url).pathname;

async function timed(cmd: string, args: string[]): Promise<{ ms: number; stderr: string }> {
  const start = performance.now();
  const { code, stderr } = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" })
    .output();
  const ms = performance.now() - start;
  const text = new TextDecoder().decode(stderr);
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${code}: ${text}`);
  return { ms, stderr: text };
}

function median(values: number[]): number {
  return values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

const dir = await Deno.makeTempDir({ prefix: "prune_bench_" });
try {
  const tree = join(dir, "tree");
  await writeSampleRocmTree(tree, { isas: ISAS, kernelBytes: KERNEL_BYTES });
  await Deno.remove(join(tree, "lib/libhsa-runtime64.so.1")); // the sample's stand-in
  const glibc = await glibcStandIn(dir);
  await writeTheRockShapedTree(tree, glibc.interpreter);
  const bytes = new Uint8Array(KERNEL_BYTES).fill(1);
  for (let d = 0; d < DIRS; d++) {
    const folder = join(tree, `lib/bench${d % 10}/library${d}`);
    Deno.mkdirSync(folder, { recursive: true });
    for (let f = 0; f < FILES / DIRS; f++) {
      Deno.writeFileSync(join(folder, `Kernels.so-${f}-${ISAS[f % ISAS.length]}.hsaco`), bytes);
    }
  }
  const install = [join(root, "nix/install.sh"), "--source", tree, "--pname", "bench"];
  const interp = ["--interpreter", glibc.interpreter, "--patchelf", "patchelf"];
  const prune = [
    ...["run", "--no-config", "--allow-read", "--allow-write", "--allow-ffi"],
    join(root, "scripts/prune.ts"),
  ];
  const plain: number[] = [];
  const pruning: number[] = [];
  let record: {
    removed: { files: number; bytes: number };
    groups: { kind: string; isa: string; files: number; bytes: number }[];
  } | undefined;
  let summary = "";
  for (let i = 0; i < RUNS; i++) {
    const a = join(dir, `plain${i}`);
    plain.push((await timed("bash", [...install, "--out", a, ...interp])).ms);
    await Deno.remove(a, { recursive: true });
    const b = join(dir, `pruned${i}`);
    const installed = await timed("bash", [...install, "--out", b, ...interp]);
    const pruned = await timed(Deno.execPath(), [...prune, b, "--isa", "gfx1100"]);
    pruning.push(pruned.ms);
    summary = pruned.stderr.trim();
    record = JSON.parse(await Deno.readTextFile(join(b, "nix-support/pruned")));
    await Deno.remove(b, { recursive: true });
    plain.push(installed.ms);
  }
  const p = median(plain);
  const q = median(pruning);
  const cost = q / p;
  console.log(
    `Tree: the sample's GPU code for ${ISAS.join(", ")} (its kinds), real ELF files, ` +
      `${FILES} more kernel files of ${KERNEL_BYTES} bytes; median of ${RUNS} runs.`,
  );
  console.log(`${summary}\n`);
  console.log("| kind | ISA | files removed | bytes removed |");
  console.log("|---|---|---:|---:|");
  for (const g of record!.groups) console.log(`| ${g.kind} | ${g.isa} | ${g.files} | ${g.bytes} |`);
  console.log(`| all | | ${record!.removed.files} | ${record!.removed.bytes} |\n`);
  console.log("| step | time (ms) | vs plain install | target | result |");
  console.log("|---|---:|---:|---:|---|");
  console.log(`| install.sh (plain install) | ${p.toFixed(0)} | 1.00× | — | reference |`);
  console.log(
    `| + prune.ts --isa gfx1100 (prune, record, check) | ${q.toFixed(0)} | +${
      (cost * 100).toFixed(1)
    }% | ≤ +${TARGET * 100}% | ${cost <= TARGET ? "pass" : "MISSED"} |`,
  );
  if (cost > TARGET) Deno.exitCode = 1;
} finally {
  await Deno.remove(dir, { recursive: true });
}
