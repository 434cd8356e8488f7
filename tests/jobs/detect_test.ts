// scripts/detect.ts and lib/jobs/detect.ts on sysfs trees written here in the
// kernel's format (KFD topology nodes with full `properties` files, DRM
// render nodes with PCI IDs), run as the real script in a child process.
import assert from "node:assert/strict";
import { join } from "node:path";
import { startFileServer } from "../_server.ts";
import { nixEnv, repoRoot, requireTools, run, type RunResult, withTempDir } from "../_tools.ts";
import { type Detection, recommendPackages } from "../../lib/jobs/detect.ts";
import { channelsIn, readChannel } from "../../lib/flake/channels.ts";
import { type KfdGpu, readKfdGpus } from "../../lib/jobs/kfd_topology.ts";

const SCRIPT = join(repoRoot, "scripts/detect.ts");
/** The permissions of the script's shebang line: the tests run it with exactly those. */
const PERMISSIONS = (await Deno.readTextFile(SCRIPT)).split("\n", 1)[0]!
  .replace("#!/usr/bin/env -S deno run", "").trim().split(/ +/);
const HASH = "sha256-rUhZSqJaTpuc2l6D1Q29oC0yTcTRRU/NO/JAFxaaVRA=";

/** A CPU node's properties, as amdgpu writes them for a 16-core CPU. */
const CPU_PROPERTIES = [
  "cpu_cores_count 16",
  "simd_count 0",
  "mem_banks_count 1",
  "caches_count 0",
  "io_links_count 1",
  "p2p_links_count 0",
  "cpu_core_id_base 0",
  "simd_id_base 0",
  "max_waves_per_simd 0",
  "lds_size_in_kb 0",
  "gds_size_in_kb 0",
  "num_gws 0",
  "wave_front_size 0",
  "array_count 0",
  "simd_arrays_per_engine 0",
  "cu_per_simd_array 0",
  "simd_per_cu 0",
  "max_slots_scratch_cu 0",
  "gfx_target_version 0",
  "vendor_id 0",
  "device_id 0",
  "location_id 0",
  "domain 0",
  "drm_render_minor 0",
  "hive_id 0",
  "num_sdma_engines 0",
  "num_sdma_xgmi_engines 0",
  "num_sdma_queues_per_engine 0",
  "num_cp_queues 0",
  "max_engine_clk_ccompute 5137",
].join("\n") + "\n";

interface GpuSpec {
  gfx: number;
  simd: number;
  device: number;
  minor: number;
  revision?: number;
}

/** A GPU node's properties in the kernel's order and format. */
function gpuProperties(gpu: GpuSpec): string {
  return [
    "cpu_cores_count 0",
    `simd_count ${gpu.simd}`,
    "mem_banks_count 1",
    "caches_count 206",
    "io_links_count 1",
    "p2p_links_count 0",
    "cpu_core_id_base 0",
    `simd_id_base ${2147487744 + gpu.minor}`,
    "max_waves_per_simd 16",
    "lds_size_in_kb 64",
    "gds_size_in_kb 0",
    "num_gws 64",
    "wave_front_size 32",
    "array_count 4",
    "simd_arrays_per_engine 2",
    "cu_per_simd_array 10",
    "simd_per_cu 2",
    "max_slots_scratch_cu 32",
    `gfx_target_version ${gpu.gfx}`,
    "vendor_id 4098",
    `device_id ${gpu.device}`,
    `location_id ${49920 + gpu.minor}`,
    "domain 0",
    `drm_render_minor ${gpu.minor}`,
    "hive_id 0",
    "num_sdma_engines 2",
    "num_sdma_xgmi_engines 0",
    "num_sdma_queues_per_engine 6",
    "num_cp_queues 8",
    "max_engine_clk_fcompute 2900",
    "local_mem_size 0",
    "fw_version 38",
    "capability 671588992",
    "debug_prop 1495",
    "sdma_fw_version 14",
    `unique_id ${18446744073709551615n - BigInt(gpu.minor)}`,
    "num_xcc 1",
    "max_engine_clk_ccompute 5137",
  ].join("\n") + "\n";
}

type NodeSpec = "cpu" | GpuSpec | { properties: string | Uint8Array };

/** Writes `<root>/class/kfd/kfd/topology/nodes/<N>/…` and the GPUs' DRM render nodes. */
async function writeSysfs(root: string, nodes: NodeSpec[]): Promise<void> {
  const topology = join(root, "class/kfd/kfd/topology");
  await Deno.mkdir(join(topology, "nodes"), { recursive: true });
  await Deno.writeTextFile(join(topology, "generation_id"), "1\n");
  for (const [id, node] of nodes.entries()) {
    const dir = join(topology, "nodes", String(id));
    await Deno.mkdir(dir);
    if (node === "cpu") {
      await Deno.writeTextFile(join(dir, "properties"), CPU_PROPERTIES);
      await Deno.writeTextFile(join(dir, "name"), "\n");
      await Deno.writeTextFile(join(dir, "gpu_id"), "0\n");
    } else if ("properties" in node) {
      await Deno.writeFile(
        join(dir, "properties"),
        typeof node.properties === "string"
          ? new TextEncoder().encode(node.properties)
          : node.properties,
      );
    } else {
      await Deno.writeTextFile(join(dir, "properties"), gpuProperties(node));
      await Deno.writeTextFile(join(dir, "name"), "ip discovery\n");
      await Deno.writeTextFile(join(dir, "gpu_id"), `${40000 + id}\n`);
      const device = join(root, `class/drm/renderD${node.minor}/device`);
      await Deno.mkdir(device, { recursive: true });
      await Deno.writeTextFile(join(device, "vendor"), "0x1002\n");
      await Deno.writeTextFile(join(device, "device"), `0x${node.device.toString(16)}\n`);
      await Deno.writeTextFile(
        join(device, "revision"),
        `0x${(node.revision ?? 0xc1).toString(16)}\n`,
      );
    }
  }
}

/** A flake.nix registry with the given channels, in the layout of the project's flake. */
function flakeText(channels: Record<string, Record<string, string | null>>): string {
  const sets = Object.entries(channels).map(([name, hashes]) =>
    `      ${name} = {
        baseUrl = "https://rocm.nightlies.amd.com/tarball/";
        version = "7.12.0a20260308";
        srcHashes = {
${
      Object.entries(hashes).map(([k, v]) => `          ${k} = ${v === null ? "null" : `"${v}"`};`)
        .join("\n")
    }
        };
      };`
  ).join("\n");
  return `{\n  outputs = { self }:\n    let\n${sets}\n    in\n    { };\n}\n`;
}

/** Runs scripts/detect.ts as a child process in `cwd`, with `env` added. */
async function detect(cwd: string, ...args: string[]): Promise<RunResult> {
  return await detectWith({}, cwd, ...args);
}

async function detectWith(
  env: Record<string, string>,
  cwd: string,
  ...args: string[]
): Promise<RunResult> {
  return await run(Deno.execPath(), ["run", ...PERMISSIONS, SCRIPT, ...args], {
    cwd,
    env: { NO_COLOR: "1", ...env },
  });
}

/** Runs detect with --json on a tree, and parses stdout. */
async function detectJson(cwd: string, ...args: string[]): Promise<Detection> {
  const result = await detect(cwd, ...args, "--json");
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Detection;
}

const STRIX_HALO: GpuSpec = { gfx: 110501, simd: 80, device: 0x1586, minor: 128 };
const RX_7900_XTX: GpuSpec = { gfx: 110000, simd: 192, device: 0x744c, minor: 128, revision: 0xc8 };
const RX_6800: GpuSpec = { gfx: 100300, simd: 120, device: 0x73bf, minor: 129 };
const MI300X = (i: number): GpuSpec => ({ gfx: 90402, simd: 1216, device: 0x74a1, minor: 128 + i });

Deno.test("detect: Strix Halo (a CPU node, then gfx1151) gets its package, image and snippet", async () => {
  await withTempDir(async (dir) => {
    await writeSysfs(join(dir, "sys"), ["cpu", STRIX_HALO]);
    await Deno.writeTextFile(
      join(dir, "flake.nix"),
      flakeText({ nightly: { gfx1151: HASH, multiarch: null } }),
    );
    const result = await detect(dir, "--sysfs", "sys");
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    const text = result.stdout;
    assert.match(
      text,
      /^GPU node 1: gfx1151 \(gfx_target_version 110501, PCI 1002:1586, renderD128\)$/m,
    );
    assert.doesNotMatch(text, /GPU node 0/);
    assert.match(text, /^gfx1151 \(node 1\): Radeon 8060S \(Strix Halo\)$/m);
    assert.match(text, /^ {2}nightly: rocm-nightly-gfx1151 \(7\.12\.0a20260308\)$/m);
    assert.match(text, /^ {2}image: +docker-gfx1151$/m);
    assert.match(
      text,
      /^ {2}NixOS: +services\.rocm-nightly = \{ enable = true; target = "gfx1151"; \};$/m,
    );
    assert.doesNotMatch(text, /One package for all|unsupported|note:/);

    const json = await detectJson(dir, "--sysfs", "sys");
    assert.deepEqual(json.channels, ["nightly"]);
    assert.equal(json.gpus.length, 1);
    assert.equal(json.gpus[0]!.isa, "gfx1151");
    assert.equal(json.gpus[0]!.uniqueId, "18446744073709551487");
    assert.deepEqual(json.gpus[0]!.pci, { vendor: "0x1002", device: "0x1586", revision: "0xc1" });
    const [r] = json.recommendations;
    assert.deepEqual(r!.packages, [{
      channel: "nightly",
      package: "rocm-nightly-gfx1151",
      family: "gfx1151",
      pinned: true,
      version: "7.12.0a20260308",
      chain: ["gfx1151", "multiarch"],
    }]);
    assert.equal(r!.image, "docker-gfx1151");
    assert.equal(r!.supported, true);
    assert.equal(r!.hsaOverrideGfxVersion, null);
    assert.deepEqual(json.unknown, []);
  });
});

Deno.test("detect: RX 7900 XTX (gfx1100) follows the fallback chain on every channel", async () => {
  await withTempDir(async (dir) => {
    await writeSysfs(join(dir, "sys"), ["cpu", RX_7900_XTX]);
    const flake = join(dir, "two.nix");
    await Deno.writeTextFile(
      flake,
      flakeText({
        nightly: { gfx1151: HASH, "gfx110X-all": null, multiarch: HASH },
        stable: { "gfx110X-all": HASH },
      }),
    );
    const result = await detect(dir, "--sysfs", "sys", "--flake", flake);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^gfx1100 \(node 1\): Radeon RX 7900 XTX\/XT, Radeon Pro W7900$/m);
    // One package per GPU: the ISA's package, its family's tarball pruned to it.
    assert.match(result.stdout, /^ {2}nightly: rocm-nightly-gfx1100 \(7\.12\.0a20260308\)$/m);
    assert.match(result.stdout, /^ {2}stable: +rocm-stable-gfx1100 \(7\.12\.0a20260308\)$/m);
    assert.match(result.stdout, /^ {2}image: +docker-gfx1100$/m);
    assert.match(result.stdout, /target = "gfx1100"; channel = "nightly"; \};$/m);

    // Only the second channel pins the chain: the snippet names that channel.
    await Deno.writeTextFile(
      flake,
      flakeText({
        nightly: { gfx1151: HASH, "gfx110X-all": null },
        stable: { "gfx110X-all": HASH },
      }),
    );
    const json = await detectJson(dir, "--sysfs", "sys", "--flake", flake);
    const [r] = json.recommendations;
    assert.deepEqual(r!.packages.map((p) => [p.channel, p.package, p.pinned]), [
      ["nightly", null, false],
      ["stable", "rocm-stable-gfx1100", true],
    ]);
    // Images come from the channel that pins the default target (gfx1151): the nightly.
    assert.equal(json.imageChannel, "nightly");
    assert.equal(r!.image, null);
    assert.equal(
      r!.nixos,
      'services.rocm-nightly = { enable = true; target = "gfx1100"; channel = "stable"; };',
    );
    const text = await detect(dir, "--sysfs", "sys", "--flake", flake);
    assert.match(
      text.stdout,
      /^ {2}nightly: no pinned tarball \(tried gfx110X-all, gfx110X-dgpu, multiarch\)$/m,
    );
  });
});

Deno.test("detect: eight MI300X (gfx942) are one recommendation for eight nodes", async () => {
  await withTempDir(async (dir) => {
    const gpus = Array.from({ length: 8 }, (_, i) => MI300X(i));
    await writeSysfs(join(dir, "sys"), ["cpu", "cpu", ...gpus]);
    await Deno.writeTextFile(
      join(dir, "flake.nix"),
      flakeText({ nightly: { gfx1151: HASH, "gfx94X-dcgpu": null } }),
    );
    const result = await detect(dir, "--sysfs", "sys");
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.match(/^GPU node \d+: gfx942 /gm)?.length, 8);
    assert.match(
      result.stdout,
      /^gfx942 \(8 GPUs, nodes 2, 3, 4, 5, 6, 7, 8, 9\): Instinct MI300A\/MI300X\/MI325X$/m,
    );
    assert.match(
      result.stdout,
      /^ {2}nightly: no pinned tarball \(tried gfx94X-dcgpu, multiarch\)$/m,
    );
    assert.match(
      result.stdout,
      /^ {2}image: +none: the flake's images come from the nightly channel, which pins none of gfx94X-dcgpu, multiarch$/m,
    );
    assert.match(result.stdout, /target = "gfx942"; \};$/m);
    assert.doesNotMatch(result.stdout, /One package for all/);
    const json = await detectJson(dir, "--sysfs", "sys");
    assert.equal(json.recommendations.length, 1);
    assert.deepEqual(json.recommendations[0]!.nodes, [2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(json.common, null);
  });
});

Deno.test("detect: an ISA in no family gets the nearest supported ISA and HSA_OVERRIDE_GFX_VERSION", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "flake.nix"),
      flakeText({ nightly: { "gfx103X-all": HASH, "gfx110X-all": HASH } }),
    );
    // gfx1037 and gfx1104: generations the table has, ISAs no family ships;
    // gfx1013 (Cyan Skillfish, a real chip) likewise in gfx101X.
    const cases = [
      { gfx: 100307, isa: "gfx1037", target: "gfx1030", value: "10.3.0", pkg: "gfx103X-all" },
      { gfx: 110004, isa: "gfx1104", target: "gfx1100", value: "11.0.0", pkg: "gfx110X-all" },
      { gfx: 100103, isa: "gfx1013", target: "gfx1010", value: "10.1.0", pkg: null },
    ];
    for (const c of cases) {
      const sys = join(dir, c.isa);
      await writeSysfs(sys, ["cpu", { gfx: c.gfx, simd: 40, device: 0x1234, minor: 128 }]);
      const result = await detect(dir, "--sysfs", sys);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`^${c.isa} \\(node 1\\): no product name`, "m"));
      assert.match(
        result.stdout,
        new RegExp(
          `unsupported by AMD: ${c.isa} is in no TheRock family; it can run, unsupported, as ${c.target} with HSA_OVERRIDE_GFX_VERSION=${c.value}$`,
          "m",
        ),
      );
      const json = await detectJson(dir, "--sysfs", sys);
      const [r] = json.recommendations;
      assert.equal(r!.supported, false, c.isa);
      assert.equal(r!.target, c.target);
      assert.equal(r!.hsaOverrideGfxVersion, c.value);
      assert.equal(r!.packages[0]!.package, c.pkg === null ? null : `rocm-nightly-${c.target}`);
      assert.equal(
        r!.nixos,
        `services.rocm-nightly = { enable = true; target = "${c.target}"; hsaOverrideGfxVersion = "${c.value}"; };`,
      );
    }
  });
});

Deno.test("detect: a gfx1100 + gfx1030 machine names the one package for both", async () => {
  await withTempDir(async (dir) => {
    await writeSysfs(join(dir, "sys"), ["cpu", RX_7900_XTX, RX_6800]);
    await Deno.writeTextFile(
      join(dir, "flake.nix"),
      flakeText({ nightly: { "gfx110X-all": HASH, "gfx103X-all": HASH, multiarch: HASH } }),
    );
    const result = await detect(dir, "--sysfs", "sys");
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^gfx1100 \(node 1\): /m);
    assert.match(result.stdout, /^gfx1030 \(node 2\): Radeon RX 6800\/6900 XT, Radeon Pro W6800$/m);
    assert.match(result.stdout, /^ {2}nightly: rocm-nightly-gfx1030 /m);
    assert.match(result.stdout, /^One package for all \(gfx1100, gfx1030\): multiarch$/m);
    const json = await detectJson(dir, "--sysfs", "sys");
    assert.deepEqual(json.common?.serves, ["gfx1100", "gfx1030"]);
    assert.equal(json.common?.packages[0]?.package, "rocm-nightly-multiarch");
    assert.equal(json.common?.image, "docker-multiarch");
    assert.equal(
      json.common?.nixos,
      'services.rocm-nightly = { enable = true; target = "multiarch"; };',
    );
  });
});

Deno.test("detect: no kfd folder is one line naming what to check, exit 1", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "sys/class/drm"), { recursive: true });
    for (const args of [["--sysfs", "sys"], ["--sysfs", "sys", "--json"]]) {
      const result = await detect(dir, ...args);
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "");
      const lines = result.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, result.stderr);
      assert.match(
        lines[0]!,
        /^detect: No sys\/class\/kfd: the amdgpu kernel driver is not loaded/,
      );
      assert.match(lines[0]!, /`lsmod \| grep amdgpu`/);
      assert.match(lines[0]!, /render and video groups/);
    }
    // A kfd folder without a topology.
    await Deno.mkdir(join(dir, "sys/class/kfd/kfd"), { recursive: true });
    const empty = await detect(dir, "--sysfs", "sys");
    assert.equal(empty.code, 1);
    assert.match(
      empty.stderr,
      /^detect: Cannot list sys\/class\/kfd\/kfd\/topology\/nodes: .*; the amdgpu driver has no KFD topology\n$/,
    );
  });
});

Deno.test("detect: a properties file with garbage lines still yields its GPU", async () => {
  await withTempDir(async (dir) => {
    const garbage = [
      "\x00\x01\xff binary",
      "",
      "gfx_target_version",
      "simd_count -4",
      "simd_count eighty",
      "device_id 0x744c",
      `${"x".repeat(10_000)} 1`,
      "GFX_TARGET_VERSION 90402",
      "drm_render_minor 128\r",
      "gfx_target_version 110000",
      "gfx_target_version 90402",
      "vendor_id\t4098",
      "unique_id 123456789012345678901234",
    ].join("\n");
    const bytes = new TextEncoder().encode(garbage);
    bytes[0] = 0xff; // not UTF-8
    await writeSysfs(join(dir, "sys"), ["cpu", { properties: bytes }]);
    const nodes = join(dir, "sys/class/kfd/kfd/topology/nodes");
    // Not nodes: a stray file, a node without properties (odd files where a
    // properties file belongs are refused: see the next test).
    await Deno.writeTextFile(join(nodes, "README"), "x");
    await Deno.mkdir(join(nodes, "7"));
    const gpus = await readKfdGpus(join(dir, "sys"));
    assert.deepEqual(gpus.map((g) => [g.node, g.gfxTargetVersion, g.drmRenderMinor, g.vendorId]), [
      [1, 110000, 128, 4098],
    ]);
    assert.equal(gpus[0]!.simdCount, null);
    assert.equal(gpus[0]!.deviceId, null);
    assert.equal(gpus[0]!.pci, null);
    const result = await detect(dir, "--sysfs", "sys");
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^GPU node 1: gfx1100 \(gfx_target_version 110000, renderD128\)$/m);
  });
});

Deno.test("readKfdGpus() refuses a FIFO, a sparse 1 TiB file, a folder or a symlink loop as a sysfs file, naming it", async () => {
  await withTempDir(async (dir) => {
    const plants: [string, (path: string) => Promise<unknown>, RegExp][] = [
      ["FIFO", (path) => run("mkfifo", [path]), /FIFO/],
      ["sparse", async (path) => {
        await Deno.writeTextFile(path, "gfx_target_version 110501\n");
        await Deno.truncate(path, 2 ** 40);
      }, /1099511627776 bytes, more than the limit of 64 KiB/],
      ["folder", (path) => Deno.mkdir(path), /directory/],
      ["loop", (path) => Deno.symlink(path, path), /symbolic links/],
      ["/dev/zero", (path) => Deno.symlink("/dev/zero", path), /character device/],
    ];
    for (const [label, plant, refusal] of plants) {
      const sys = join(dir, label.replace("/", ""));
      await writeSysfs(sys, ["cpu", STRIX_HALO]);
      const properties = join(sys, "class/kfd/kfd/topology/nodes/1/properties");
      await Deno.remove(properties);
      await plant(properties);
      await assert.rejects(() => readKfdGpus(sys), (error: Error) => {
        assert.match(error.message, refusal, label);
        assert.equal(error.message.includes(properties), true, error.message);
        return true;
      });
    }
  });
});

Deno.test("detect: a GPU whose ISA the table does not know is named with its gfx_target_version, exit 1", async () => {
  await withTempDir(async (dir) => {
    await writeSysfs(join(dir, "sys"), [
      "cpu",
      STRIX_HALO,
      { gfx: 130000, simd: 64, device: 0x9999, minor: 129 },
      { gfx: 101600, simd: 64, device: 0x9998, minor: 130 },
    ]);
    const result = await detect(dir, "--sysfs", "sys");
    assert.equal(result.code, 1);
    const lines = result.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(
      lines[0]!,
      /^detect: GPU node 2 \(gfx_target_version 130000, gfx1300\) is unknown to the target table/,
    );
    assert.match(lines[0]!, /GPU node 3 \(gfx_target_version 101600\) has no ISA name/);
    assert.doesNotMatch(result.stderr, /\bat .*\.ts:\d+/);
    // The known GPU is still reported.
    assert.match(result.stdout, /^gfx1151 \(node 1\): Radeon 8060S/m);
    const json = await detect(dir, "--sysfs", "sys", "--json");
    assert.equal(json.code, 1);
    assert.deepEqual(JSON.parse(json.stdout).unknown, [
      { node: 2, gfxTargetVersion: 130000, isa: "gfx1300" },
      { node: 3, gfxTargetVersion: 101600, isa: null },
    ]);
  });
});

Deno.test("detect: a topology of CPU nodes only fails with one line, exit 1", async () => {
  await withTempDir(async (dir) => {
    await writeSysfs(join(dir, "sys"), ["cpu", "cpu"]);
    const result = await detect(dir, "--sysfs", "sys");
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^detect: No GPU in the KFD topology of sys\/class\/kfd: only CPU nodes/,
    );
    assert.equal(result.stderr.trimEnd().split("\n").length, 1);
  });
});

Deno.test("detect: without a registry, package names are listed without pin status and it says so", async () => {
  await withTempDir(async (dir) => {
    await writeSysfs(join(dir, "sys"), ["cpu", RX_7900_XTX]);
    const result = await detect(dir, "--sysfs", "sys");
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^ {2}nightly: rocm-nightly-gfx1100 \(or, along the fallback chain, rocm-nightly-gfx110X-all, rocm-nightly-gfx110X-dgpu, rocm-nightly-multiarch\)$/m,
    );
    assert.match(result.stdout, /^note: no flake\.nix in this folder, so pin status is unknown/m);
    // A flake.nix that is not this project's (no srcHashes) is no registry either.
    await Deno.writeTextFile(join(dir, "flake.nix"), "{ outputs = { self }: { }; }\n");
    const other = await detect(dir, "--sysfs", "sys");
    assert.equal(other.code, 0, other.stderr);
    assert.match(
      other.stdout,
      /^note: \.\/flake\.nix has no registry \(srcHashes\), so pin status/m,
    );
    const json = await detectJson(dir, "--sysfs", "sys");
    assert.equal(json.channels, null);
    assert.equal(json.recommendations[0]!.packages[0]!.pinned, null);
    // Under `nix run`, the app names its own flake.nix: its registry serves.
    const appFlake = join(dir, "app-flake.nix");
    await Deno.writeTextFile(appFlake, flakeText({ stable: { "gfx110X-all": HASH } }));
    const app = await detectWith({ ROCM_NIGHTLY_APP_FLAKE: appFlake }, dir, "--sysfs", "sys");
    assert.equal(app.code, 0, app.stderr);
    assert.match(app.stdout, /^ {2}stable: rocm-stable-gfx1100 \(7\.12\.0a20260308\)$/m);
    assert.doesNotMatch(app.stdout, /pin status is unknown/);
    // One that cannot be read leaves the note.
    const gone = await detectWith(
      { ROCM_NIGHTLY_APP_FLAKE: join(dir, "gone.nix") },
      dir,
      "--sysfs",
      "sys",
    );
    assert.equal(gone.code, 0, gone.stderr);
    assert.match(
      gone.stdout,
      /^note: \.\/flake\.nix has no registry \(srcHashes\), so pin status/m,
    );
  });
});

Deno.test("detect: a --flake that cannot be read, and bad flags, fail with one line", async () => {
  await withTempDir(async (dir) => {
    await writeSysfs(join(dir, "sys"), ["cpu", STRIX_HALO]);
    const missing = await detect(dir, "--sysfs", "sys", "--flake", "nope.nix");
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^detect: Cannot read --flake nope\.nix: /);
    await Deno.writeTextFile(join(dir, "broken.nix"), "{ nightly = { srcHashes = { ");
    const broken = await detect(dir, "--sysfs", "sys", "--flake", "broken.nix");
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /^detect: Cannot read the registry of --flake broken\.nix: /);
    for (const args of [["--bogus"], ["extra"], ["--sysfs", ""]]) {
      const usage = await detect(dir, ...args);
      assert.equal(usage.code, 2, args.join(" "));
      assert.equal(usage.stderr.trimEnd().split("\n").length, 1, usage.stderr);
    }
  });
});

Deno.test("detect runs from a URL on a captured tree, with its shebang's permissions", async () => {
  await withTempDir(async (dir) => {
    await writeSysfs(join(dir, "sys"), ["cpu", STRIX_HALO]);
    await using server = startFileServer({ root: repoRoot });
    const result = await run(Deno.execPath(), [
      "run",
      `--allow-import=127.0.0.1:${server.port}`,
      // A port an earlier run used may still be in Deno's module cache.
      `--reload=${server.origin}`,
      ...PERMISSIONS,
      server.url("/scripts/detect.ts"),
      "--sysfs",
      "sys",
    ], { cwd: dir, env: { NO_COLOR: "1" } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^ {2}nightly: rocm-nightly-gfx1151 \(or, along the fallback chain, rocm-nightly-multiarch\)$/m,
    );
    assert.match(result.stdout, /^note: no flake\.nix in this folder/m);
    assert.ok(server.requests.some((r) => r.path === "/lib/releases/targets.json"));
  });
});

Deno.test("recommendPackages() reads the channels of this repository's flake.nix", async () => {
  const source = await Deno.readTextFile(join(repoRoot, "flake.nix"));
  const channels = channelsIn(source).map((channel) => readChannel(source, channel));
  assert.ok(channels.some((c) => c.channel === "nightly"), JSON.stringify(channels));
  const gpu = (await writeAndRead([STRIX_HALO]))[0]!;
  const detection = recommendPackages([gpu], { channels });
  const { packages } = detection.recommendations[0]!;
  assert.deepEqual(packages.map((p) => p.channel), channels.map((c) => c.channel));
  for (const [i, channel] of channels.entries()) {
    const pinned = ["gfx1151", "multiarch"].some((f) => typeof channel.srcHashes[f] === "string");
    assert.equal(packages[i]!.pinned, pinned, channel.channel);
  }
});

async function writeAndRead(gpus: GpuSpec[]): Promise<KfdGpu[]> {
  return await withTempDir(async (dir) => {
    await writeSysfs(dir, ["cpu", ...gpus]);
    return await readKfdGpus(dir);
  });
}

Deno.test({
  name:
    "apps.nix: the detect app runs with its shebang's permissions and names the app's flake.nix",
  ignore: !await requireTools("apps.nix evaluation", "nix"),
  fn: async () => {
    // A bare lib: toFile stands in for writeShellScriptBin, so the runner's text can be read back.
    const expr = `let
      apps = import ${repoRoot}/nix/apps.nix {
        lib = {
          getExe = _: "/deno/bin/deno";
          optionalAttrs = cond: attrs: if cond then attrs else { };
          escapeShellArgs = args: builtins.concatStringsSep " " (map (a: "'\${a}'") args);
        };
        writeShellScriptBin = name: text: builtins.toFile name text;
        deno = { };
        src = "${repoRoot}";
        defaultPackage = { name = "rocm"; };
        flake = "/nix/store/00000000000000000000000000000000-source";
      };
      runner = builtins.head (builtins.match "(.*)/bin/.*" apps.detect.program);
    in builtins.readFile runner`;
    const result = await run("nix", ["eval", "--impure", "--raw", "--expr", expr], {
      env: nixEnv(),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^export ROCM_NIGHTLY_APP_FLAKE="\/nix\/store\/0{32}-source\/flake\.nix"$/m,
    );
    assert.ok(
      result.stdout.includes(
        `${PERMISSIONS.map((p) => `'${p}'`).join(" ")} ${repoRoot}/scripts/detect.ts "$@"`,
      ),
      result.stdout,
    );
  },
});

Deno.test("recommendPackages() takes images from the channel the flake defaults to, skip lists included", () => {
  const gpu = { ...RX_7900_XTX_GPU };
  const nightly = { channel: "nightly" as const, version: "1.0.0a1", srcHashes: { gfx1151: HASH } };
  const stable = {
    channel: "stable" as const,
    version: "1.0.0",
    srcHashes: { gfx1151: HASH, "gfx110X-all": HASH },
  };
  const pinned = recommendPackages([gpu], { channels: [nightly, stable] });
  assert.equal(pinned.imageChannel, "nightly");
  assert.equal(pinned.recommendations[0]!.image, null);
  // A skipped nightly pin serves nothing: the flake falls back to stable, and so do its images.
  const skipped = recommendPackages([gpu], {
    channels: [{ ...nightly, skip: ["1.0.0a1"] }, stable],
  });
  assert.equal(skipped.imageChannel, "stable");
  assert.equal(skipped.recommendations[0]!.image, "docker-gfx1100");
  // No channel serves the default target: the first channel, as nix/channels.nix does.
  const none = recommendPackages([gpu], {
    channels: [{ ...nightly, srcHashes: {} }, { ...stable, srcHashes: { "gfx110X-all": HASH } }],
  });
  assert.equal(none.imageChannel, "nightly");
});

const RX_7900_XTX_GPU: KfdGpu = {
  node: 1,
  name: "",
  gfxTargetVersion: 110000,
  simdCount: 192,
  vendorId: 4098,
  deviceId: 0x744c,
  drmRenderMinor: 128,
  uniqueId: null,
  locationId: null,
  pci: null,
};

Deno.test("detect reads the real /sys with its shebang's permissions, as `nix run .#detect` runs it", async () => {
  // This process holds --allow-all: it may look at /sys itself.
  const kfd = await Deno.stat("/sys/class/kfd").then(() => true, () => false);
  await withTempDir(async (dir) => {
    const result = await detect(dir);
    assert.doesNotMatch(result.stderr, /Requires (all|read|run) access|NotCapable|--allow-all/);
    if (kfd) {
      // A machine with amdgpu: whatever it finds, it read it.
      assert.ok(result.code === 0 || result.code === 1, result.stderr);
      return;
    }
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, "");
    assert.match(
      result.stderr,
      /^detect: No \/sys\/class\/kfd: the amdgpu kernel driver is not loaded, or this is not Linux\. .*`lsmod \| grep amdgpu`.*\n$/,
    );
  });
});

Deno.test("detect --sysfs naming a missing folder says the folder is missing, not the driver", async () => {
  await withTempDir(async (dir) => {
    const result = await detect(dir, "--sysfs", "./typo");
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^detect: No folder "\.\/typo" \(--sysfs\): it does not exist; /);
    assert.doesNotMatch(result.stderr, /amdgpu/);
    await Deno.writeTextFile(join(dir, "file"), "");
    const file = await detect(dir, "--sysfs", "file");
    assert.equal(file.code, 1, file.stderr);
    assert.match(file.stderr, /^detect: Cannot read "file" \(--sysfs\): it is not a folder; /);
  });
});
