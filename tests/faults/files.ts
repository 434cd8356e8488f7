/**
 * Every file kind where a regular file is expected — FIFO, socket, character
 * device, symlink to a device, directory, dangling and looping links — as
 * prefetch's input and output, rewrite's and update's flake, and
 * check-output's setup hook. None may block, eat memory or write through.
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
    name: `rewrite: --file is ${kind.name}`,
    run: () =>
      inTempDir(async (dir) => {
        await kind.make(`${dir}/flake.nix`, dir);
        const before = snapshot(dir);
        const result = await runScript("rewrite", [
          "--file",
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
];
