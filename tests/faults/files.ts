/**
 * Every file kind where a regular file is expected — FIFO, socket, character
 * device, symlink to a device, directory, dangling and looping links — as
 * prefetch's input and output, rewrite's and update's flake, and
 * check-output's setup hook. None may block, eat memory or write through.
 *
 * The readers that came later (#20.5: status's and detect's --flake, image's
 * --closure and --config, update's lock, detect's sysfs files) all go through
 * lib/fs/file_kind.ts's readRegularFile, whose every kind tests/fs/ covers in
 * one process; here each reader meets the kinds that fail differently on a
 * plain read — a FIFO (blocks), a character device (reads as empty), a
 * symlink to /dev/zero (never ends) and a sparse 10 GiB file (eats memory) —
 * plus, where a plain read silently skipped or removed them, a folder, a
 * symlink loop and a dangling symlink.
 *
 * @module
 */

import { equal, match } from "node:assert/strict";
import { assertFailedCleanly, type FaultCase, inTempDir, runScript, snapshot } from "./_harness.ts";
import { registry } from "./_fixtures.ts";
import { startRawServer } from "./_raw_server.ts";
import { ok, uniqueBytes } from "./_fixtures.ts";

/** A way to make an odd file at a path, and the words the refusal must use. */
interface Kind {
  name: string;
  make: (path: string, dir: string) => Promise<void>;
  refusal: RegExp;
}

async function mkfifo(path: string): Promise<void> {
  const { success } = await new Deno.Command("mkfifo", { args: [path] }).output();
  equal(success, true, "mkfifo");
}

/** A Unix socket file (no one listening): Deno removes its own on close, so a link to it stays. */
async function makeSocket(path: string, dir: string): Promise<void> {
  const listener = Deno.listen({ transport: "unix", path: `${dir}/.socket` });
  await Deno.link(`${dir}/.socket`, path);
  listener.close();
  await Deno.remove(`${dir}/.socket`).catch(() => {});
}

export const KINDS: Kind[] = [
  { name: "a FIFO", make: mkfifo, refusal: /FIFO/ },
  { name: "a socket", make: makeSocket, refusal: /socket/ },
  {
    name: "a character device (1:3, the numbers of /dev/null)",
    make: async (p) => {
      const { success } = await new Deno.Command("mknod", { args: [p, "c", "1", "3"] }).output();
      equal(success, true, "mknod (as root)");
    },
    refusal: /character device/,
  },
  {
    name: "/dev/null (a symlink to it)",
    make: (p) => Deno.symlink("/dev/null", p),
    refusal: /character device/,
  },
  {
    name: "a symlink to /dev/zero",
    make: (p) => Deno.symlink("/dev/zero", p),
    refusal: /character device/,
  },
  { name: "a directory", make: (p) => Deno.mkdir(p), refusal: /directory/ },
  {
    name: "a dangling symlink",
    make: (p) => Deno.symlink("nowhere", p),
    refusal: /No such file|not found|no such/i,
  },
  { name: "a looping symlink", make: (p) => Deno.symlink(p, p), refusal: /symbolic links|loop/i },
];

/** A sparse 10 GiB file: refused by its size before a byte is read. */
export const HUGE: Kind = {
  name: "a sparse 10 GiB file",
  make: async (p) => {
    await Deno.writeFile(p, new Uint8Array());
    await Deno.truncate(p, 10 * 2 ** 30);
  },
  refusal: /10737418240 bytes, more than the limit of/,
};

const byName = (words: string): Kind => KINDS.find((k) => k.name.includes(words))!;
/** The kinds each reader of #20.5 meets (see the module comment for why these). */
const READ_KINDS: Kind[] = [
  byName("FIFO"),
  byName("character device (1:3"),
  byName("/dev/zero"),
  HUGE,
];
/** A lock of ours is a regular file: a symlink is refused as one, whatever it points to. */
const LOCK_KINDS: Kind[] = [
  byName("FIFO"),
  byName("character device (1:3"),
  { ...byName("/dev/zero"), refusal: /symbolic link/ },
  { ...byName("dangling"), refusal: /symbolic link/ },
  { ...HUGE, refusal: /10737418240 bytes, more than the limit of 4 KiB/ },
];
/** In a sysfs tree a folder or a loop where a file belongs was skipped silently. */
const SYSFS_KINDS: Kind[] = [
  ...READ_KINDS.slice(0, 3),
  byName("a directory"),
  byName("looping"),
  { ...HUGE, refusal: /10737418240 bytes, more than the limit of 64 KiB/ },
];

/** A KFD topology with one gfx1151 GPU (node 1, renderD128). */
async function writeSysfs(root: string): Promise<void> {
  const node = `${root}/class/kfd/kfd/topology/nodes/1`;
  await Deno.mkdir(node, { recursive: true });
  await Deno.writeTextFile(
    `${node}/properties`,
    "simd_count 80\ndrm_render_minor 128\ngfx_target_version 110501\n",
  );
  await Deno.writeTextFile(`${node}/name`, "ip discovery\n");
  const device = `${root}/class/drm/renderD128/device`;
  await Deno.mkdir(device, { recursive: true });
  await Deno.writeTextFile(`${device}/vendor`, "0x1002\n");
  await Deno.writeTextFile(`${device}/device`, "0x1586\n");
}

/** A closure of one store path that need not exist (image reads --config before any file). */
const CLOSURE = JSON.stringify([
  { path: "/nix/store/00000000000000000000000000000000-glibc", narSize: 8, references: [] },
]);

/** Runs `script args` in `dir` with `path` made of `kind`: one refusal, nothing changed. */
async function refusedOdd(
  dir: string,
  kind: Kind,
  path: string,
  script: string,
  args: string[],
): Promise<void> {
  await kind.make(path, dir);
  const before = snapshot(dir);
  const result = await runScript(script, args, { timeoutMs: 15_000, cwd: dir });
  await assertFailedCleanly(result, { code: 1, stderr: kind.refusal, unchanged: [before] });
}

/** For an output target, a missing file is fine, so a dangling link is no fault: the rest are. */
const OUTPUT_KINDS = KINDS.filter((k) => !k.name.includes("dangling"));

export const FILE_CASES: FaultCase[] = [
  ...KINDS.map((kind): FaultCase => ({
    name: `prefetch: the input is ${kind.name} (#14.6)`,
    run: () =>
      inTempDir(async (dir) => {
        await kind.make(`${dir}/input`, dir);
        const before = snapshot(dir);
        const result = await runScript("prefetch", [`${dir}/input`], { timeoutMs: 15_000 });
        await assertFailedCleanly(result, { code: 1, stderr: kind.refusal, unchanged: [before] });
      }),
  })),
  ...OUTPUT_KINDS.map((kind): FaultCase => ({
    name: `prefetch --add-to-store -o: the output is ${kind.name} (#14.5)`,
    run: () =>
      inTempDir(async (dir) => {
        const body = uniqueBytes(4096);
        await using server = startRawServer(() => ok(body));
        await kind.make(`${dir}/out`, dir);
        const before = snapshot(dir);
        const name = `fault-${crypto.randomUUID().slice(0, 8)}.bin`;
        const result = await runScript("prefetch", [
          "--add-to-store",
          "--name",
          name,
          "-o",
          `${dir}/out`,
          `${server.origin}/f`,
        ]);
        const { sriOf } = await import("./_harness.ts");
        await assertFailedCleanly(result, {
          code: 1,
          stderr: kind.refusal,
          unchanged: [before],
          notInStore: [{ name, hash: sriOf(body), unique: true }],
        });
        equal(server.requests.length, 0, "refused before downloading");
      }),
  })),
  ...KINDS.map((kind): FaultCase => ({
    name: `rewrite: --flake is ${kind.name}`,
    run: () =>
      inTempDir(async (dir) => {
        await kind.make(`${dir}/flake.nix`, dir);
        const before = snapshot(dir);
        const result = await runScript("rewrite", [
          "--flake",
          `${dir}/flake.nix`,
          "--set",
          "nightly.version=7.12.0a20260310",
        ], { timeoutMs: 15_000 });
        await assertFailedCleanly(result, { code: 1, stderr: kind.refusal, unchanged: [before] });
      }),
  })),
  ...KINDS.map((kind): FaultCase => ({
    name: `update: --flake is ${kind.name}`,
    run: () =>
      inTempDir(async (dir) => {
        await kind.make(`${dir}/flake.nix`, dir);
        const before = snapshot(dir);
        const result = await runScript("update", ["--flake", `${dir}/flake.nix`], {
          timeoutMs: 15_000,
        });
        await assertFailedCleanly(result, { code: 1, stderr: kind.refusal, unchanged: [before] });
      }),
  })),
  ...KINDS.map((kind): FaultCase => ({
    name: `check-output: nix-support/setup-hook is ${kind.name} (#14.7)`,
    run: () =>
      inTempDir(async (dir) => {
        const out = `${dir}/out`;
        await Deno.mkdir(`${out}/nix-support`, { recursive: true });
        await kind.make(`${out}/nix-support/setup-hook`, dir);
        const result = await runScript("check-output", ["--json", out], { timeoutMs: 15_000 });
        equal(result.code, 1, result.stderr);
        equal(result.stderr, "");
        const report = JSON.parse(result.stdout) as {
          failures: { check: string; message: string }[];
        };
        const hook = report.failures.filter((f) => f.check === "setup-hook");
        equal(hook.length, 1, JSON.stringify(hook));
        match(hook[0]!.message, kind.name.includes("dangling") ? /missing/ : kind.refusal);
        // Every other finding is still there.
        equal(report.failures.some((f) => f.check === "opt-rocm"), true);
        await Deno.remove(result.tmpdir, { recursive: true });
      }),
  })),
  {
    name:
      "check-output: a folder under share/licenses deeper than PATH_MAX is a finding, the rest kept (#14.8)",
    run: () =>
      inTempDir(async (dir) => {
        const out = `${dir}/out`;
        await Deno.mkdir(`${out}/share/licenses`, { recursive: true });
        // 20 levels of 250-character names: 5,000 bytes, past PATH_MAX (4,096).
        const deep = await new Deno.Command("bash", {
          args: [
            "-c",
            `cd "$1" && for i in $(seq 20); do mkdir "$2" && cd "$2" || exit 1; done && echo x > f`,
            "bash",
            `${out}/share/licenses`,
            "d".repeat(250),
          ],
        }).output();
        equal(deep.success, true);
        const result = await runScript("check-output", ["--json", out], { timeoutMs: 15_000 });
        equal(result.code, 1, result.stderr);
        equal(result.stderr, "");
        const report = JSON.parse(result.stdout) as {
          failures: { check: string; message: string }[];
        };
        const unreadable = report.failures.filter((f) => f.check === "unreadable");
        equal(unreadable.length, 1, JSON.stringify(report.failures));
        match(unreadable[0]!.message, /cannot be listed: .*(too long|File name)/i);
        for (const check of ["opt-rocm", "bin", "setup-hook", "licenses"]) {
          equal(report.failures.some((f) => f.check === check), true, `${check} still reported`);
        }
        await Deno.remove(result.tmpdir, { recursive: true });
      }),
  },
  {
    name:
      "check-output: a folder under share/licenses it may not list is a finding, the rest kept (#14.8)",
    run: () =>
      inTempDir(async (dir) => {
        // root lists everything: run as nobody, for whom a mode-0 folder is closed.
        await Deno.chmod(dir, 0o755);
        const out = `${dir}/out`;
        await Deno.mkdir(`${out}/share/licenses/closed`, { recursive: true });
        await Deno.writeTextFile(`${out}/share/licenses/closed/LICENSE`, "MIT\n");
        await Deno.chmod(`${out}/share/licenses/closed`, 0);
        const denoDir = `${dir}/deno-dir`;
        await Deno.mkdir(denoDir, { mode: 0o777 });
        await Deno.chmod(denoDir, 0o777);
        const { repoRoot } = await import("../_tools.ts");
        const child = await new Deno.Command("setpriv", {
          args: [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            Deno.execPath(),
            "run",
            "--allow-read",
            "--allow-ffi",
            `${repoRoot}/scripts/check-output.ts`,
            "--json",
            out,
          ],
          env: { DENO_DIR: denoDir, HOME: denoDir },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stdout = new TextDecoder().decode(child.stdout);
        equal(child.code, 1, new TextDecoder().decode(child.stderr));
        const report = JSON.parse(stdout) as {
          failures: { check: string; path?: string; message: string }[];
        };
        const unreadable = report.failures.filter((f) => f.check === "unreadable");
        equal(unreadable.length, 1, JSON.stringify(report.failures));
        equal(unreadable[0]!.path, "share/licenses/closed");
        for (const check of ["opt-rocm", "bin", "setup-hook", "licenses"]) {
          equal(report.failures.some((f) => f.check === check), true, `${check} still reported`);
        }
        await Deno.chmod(`${out}/share/licenses/closed`, 0o755);
      }),
  },
  {
    name: "update: a symlinked flake.nix keeps the link and gets its target rewritten (#14.2)",
    run: () =>
      inTempDir(async (dir) => {
        const { indexAndTarball, tarballName } = await import("./_fixtures.ts");
        const body = uniqueBytes(4096);
        await using server = startRawServer(indexAndTarball(() => ok(body)));
        await Deno.mkdir(`${dir}/real`);
        await Deno.writeTextFile(`${dir}/real/flake.nix`, registry(`${server.origin}/tarball/`));
        await Deno.symlink("real/flake.nix", `${dir}/flake.nix`);
        const result = await runScript("update", ["--flake", `${dir}/flake.nix`]);
        equal(result.code, 0, result.stderr);
        equal(Deno.lstatSync(`${dir}/flake.nix`).isSymlink, true, "still a link");
        const text = await Deno.readTextFile(`${dir}/real/flake.nix`);
        const { sriOf } = await import("./_harness.ts");
        equal(text.includes(sriOf(body)), true, `target pinned: ${text}`);
        equal(text.includes("7.12.0a20260310"), true);
        equal(server.requests.some((r) => r.path.endsWith(tarballName())), true);
        equal([...Deno.readDirSync(`${dir}/real`)].map((e) => e.name).join(), "flake.nix");
        await Deno.remove(result.tmpdir, { recursive: true });
      }),
  },
  ...[["rewrite", ["--flake", "flake.nix", "--set", "nightly.version=7.12.0a20260310"]], [
    "update",
    ["--flake", "flake.nix"],
  ]].map(([script, args]): FaultCase => ({
    name: `${script}: the flake is ${HUGE.name} (#20.5)`,
    run: () =>
      inTempDir((dir) =>
        refusedOdd(dir, HUGE, `${dir}/flake.nix`, script as string, args as string[])
      ),
  })),
  ...READ_KINDS.map((kind): FaultCase => ({
    name: `status: --flake is ${kind.name} (#20.5)`,
    run: () =>
      inTempDir((dir) =>
        refusedOdd(dir, kind, `${dir}/flake.nix`, "status", ["--flake", `${dir}/flake.nix`])
      ),
  })),
  ...READ_KINDS.map((kind): FaultCase => ({
    name: `detect: --flake is ${kind.name} (#20.5)`,
    run: () =>
      inTempDir(async (dir) => {
        await writeSysfs(`${dir}/sys`);
        await refusedOdd(dir, kind, `${dir}/flake.nix`, "detect", [
          "--sysfs",
          `${dir}/sys`,
          "--flake",
          `${dir}/flake.nix`,
        ]);
      }),
  })),
  ...READ_KINDS.map((kind): FaultCase => ({
    name: `image: --closure is ${kind.name} (#20.5)`,
    run: () =>
      inTempDir((dir) =>
        refusedOdd(dir, kind, `${dir}/closure.json`, "image", [
          "--closure",
          `${dir}/closure.json`,
          "--name",
          "rocm",
          "--output",
          `${dir}/image.tar`,
        ])
      ),
  })),
  ...READ_KINDS.map((kind): FaultCase => ({
    name: `image: --config is ${kind.name} (#20.5)`,
    run: () =>
      inTempDir(async (dir) => {
        await Deno.writeTextFile(`${dir}/closure.json`, CLOSURE);
        await refusedOdd(dir, kind, `${dir}/config.json`, "image", [
          "--closure",
          `${dir}/closure.json`,
          "--config",
          `${dir}/config.json`,
          "--name",
          "rocm",
          "--output",
          `${dir}/image.tar`,
        ]);
      }),
  })),
  ...LOCK_KINDS.map((kind): FaultCase => ({
    name: `update: its lock file is ${kind.name}: refused, never read nor removed (#20.5)`,
    run: () =>
      inTempDir(async (dir) => {
        await Deno.writeTextFile(`${dir}/flake.nix`, registry("http://127.0.0.1:9/"));
        await refusedOdd(dir, kind, `${dir}/.flake.nix.update-lock`, "update", [
          "--flake",
          `${dir}/flake.nix`,
        ]);
      }),
  })),
  ...SYSFS_KINDS.map((kind): FaultCase => ({
    name: `detect --sysfs: a node's properties is ${kind.name} (#20.5)`,
    run: () =>
      inTempDir(async (dir) => {
        await writeSysfs(`${dir}/sys`);
        const properties = `${dir}/sys/class/kfd/kfd/topology/nodes/1/properties`;
        await Deno.remove(properties);
        await refusedOdd(dir, kind, properties, "detect", ["--sysfs", `${dir}/sys`]);
      }),
  })),
  {
    name: "detect --sysfs: the GPU's PCI vendor file is a FIFO (#20.5)",
    run: () =>
      inTempDir(async (dir) => {
        await writeSysfs(`${dir}/sys`);
        const vendor = `${dir}/sys/class/drm/renderD128/device/vendor`;
        await Deno.remove(vendor);
        await refusedOdd(dir, byName("FIFO"), vendor, "detect", ["--sysfs", `${dir}/sys`]);
      }),
  },
];
