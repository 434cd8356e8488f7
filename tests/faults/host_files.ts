/**
 * A tarball that tries to carry the host into the package (issue #20, items 8
 * and 9): nix/install.sh reads no file through a symlink out of the tree,
 * refuses device nodes, FIFOs and sockets in one line, and check-output
 * reports them and links out of the package in a built output. A rewritten
 * `env -S` shebang still gives the interpreter its arguments one by one.
 *
 * @module
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { type FaultCase, inTempDir, runScript, snapshot } from "./_harness.ts";
import {
  addSpecialFiles,
  assertNoHostBytes,
  HOST_SECRET,
  writeLeakyTree,
  writeTreeWithHostFolders,
} from "../_host_leaks.ts";
import { writeSampleRocmTree } from "../../lib/package/sample_rocm.ts";
import { goodOutput } from "../_elf_fixtures.ts";
import { repoRoot, run } from "../_tools.ts";

const INSTALL = `${repoRoot}/nix/install.sh`;

/** The tree packed as a gzipped tarball at `<dir>/rocm.tar.gz`. */
async function tarballOf(tree: string, dir: string): Promise<string> {
  const tarball = join(dir, "rocm.tar.gz");
  const tar = await run("tar", ["-czf", tarball, "-C", tree, "."]);
  equal(tar.code, 0, tar.stderr);
  return tarball;
}

async function install(...args: string[]): Promise<{ code: number; stderr: string }> {
  return await run("bash", [INSTALL, ...args, "--pname", "p"]);
}

/** install.sh failed in one line on stderr naming `names`, and left no special file in `out`. */
async function assertRefused(
  result: { code: number; stderr: string },
  names: string[],
  out: string,
): Promise<void> {
  equal(result.code, 1, result.stderr);
  equal(result.stderr.split("\n").length, 2, `one line: ${result.stderr}`);
  for (const name of names) ok(result.stderr.includes(name), `"${name}" named: ${result.stderr}`);
  const left = await run("find", [out, "-type", "b", "-o", "-type", "c", "-o", "-type", "p"]);
  equal(left.stdout, "", "no special file left in the output");
}

interface Report {
  failures: { check: string; path?: string; message: string }[];
}

async function checkOutput(out: string): Promise<Report> {
  const result = await runScript("check-output", ["--json", out], { timeoutMs: 30_000 });
  await Deno.remove(result.tmpdir, { recursive: true }).catch(() => {});
  equal(result.code, 1, result.stderr);
  equal(result.stderr, "");
  return JSON.parse(result.stdout) as Report;
}

/** A root-only case outside root: skipped with its reason, but failed when CI=true. */
function needsRoot(what: string): boolean {
  if (Deno.uid() === 0) return true;
  if (Deno.env.get("CI") === "true") throw new Error(`${what} needs root (mknod)`);
  console.log(`skipped: ${what} needs root (mknod)`);
  return false;
}

export const HOST_FILE_CASES: FaultCase[] = [
  {
    name: "install.sh: LICENSE and etc/OpenCL/vendors/*.icd link to a host file: never copied",
    run: () =>
      inTempDir(async (dir) => {
        const { tree, escaping } = await writeLeakyTree(dir);
        const out = join(dir, "out");
        const result = await install("--tarball", await tarballOf(tree, dir), "--out", out);
        equal(result.code, 0, result.stderr);
        for (const path of escaping) match(result.stderr, new RegExp(`"${path}": symlink `));
        assertNoHostBytes(out);
      }),
  },
  {
    name: "install.sh: share/doc and etc are links to host folders: nothing below them read",
    run: () =>
      inTempDir(async (dir) => {
        const { tree } = await writeTreeWithHostFolders(dir);
        const out = join(dir, "out");
        const result = await install("--tarball", await tarballOf(tree, dir), "--out", out);
        equal(result.code, 0, result.stderr);
        match(result.stderr, /not reading "share\/doc": symlink "share\/doc" → "\/.*" leads out/);
        assertNoHostBytes(out);
      }),
  },
  {
    name: "install.sh: a FIFO in the tarball: exit 1 naming it, nothing of it left",
    run: () =>
      inTempDir(async (dir) => {
        const tree = join(dir, "tree");
        await writeSampleRocmTree(tree, { isas: [] });
        equal((await run("mkfifo", [join(tree, "lib/pipe")])).code, 0);
        const out = join(dir, "out");
        const result = await install("--tarball", await tarballOf(tree, dir), "--out", out);
        await assertRefused(result, ["lib/pipe (FIFO)"], out);
      }),
  },
  {
    name: "install.sh: a character device in the tarball (as root): exit 1 naming it, removed",
    run: () =>
      inTempDir(async (dir) => {
        if (!needsRoot("a tarball holding a character device")) return;
        const tree = join(dir, "tree");
        await writeSampleRocmTree(tree, { isas: [] });
        equal((await run("mknod", [join(tree, "lib/zero"), "c", "1", "5"])).code, 0);
        const out = join(dir, "out");
        const result = await install("--tarball", await tarballOf(tree, dir), "--out", out);
        await assertRefused(result, ["lib/zero (character device)"], out);
      }),
  },
  {
    name: "install.sh: a FIFO, a socket and a device in an unpacked tree: all named, none copied",
    run: () =>
      inTempDir(async (dir) => {
        const tree = join(dir, "tree");
        await writeSampleRocmTree(tree, { isas: [] });
        const special = await addSpecialFiles(tree);
        const before = snapshot(tree);
        const out = join(dir, "out");
        const result = await install("--source", tree, "--out", out);
        await assertRefused(result, special.map(({ path, kind }) => `${path} (${kind})`), out);
        deepEqual([...Deno.readDirSync(join(out, "opt/rocm"))], [], "nothing copied");
        deepEqual(snapshot(tree).entries, before.entries, "the tree is as it was");
      }),
  },
  {
    name: "check-output: a FIFO, a socket and a device in a built output are findings",
    run: () =>
      inTempDir(async (dir) => {
        const out = await goodOutput(dir);
        const special = await addSpecialFiles(join(out, "opt/rocm"));
        const report = await checkOutput(out);
        deepEqual(
          report.failures.map(({ check, path }) => `${check} ${path}`).sort(),
          special.map(({ path }) => `special-file opt/rocm/${path}`).sort(),
        );
      }),
  },
  {
    name: "check-output: a link to a host file in a built output is a finding, not followed",
    run: () =>
      inTempDir(async (dir) => {
        // The output in a store-like folder: the host file is outside both.
        await Deno.mkdir(join(dir, "store"));
        const out = await goodOutput(join(dir, "store"));
        await Deno.writeTextFile(join(dir, "secret"), HOST_SECRET);
        await Deno.symlink(join(dir, "secret"), join(out, "opt/rocm/LICENSE.host"));
        await Deno.symlink("/dev/zero", join(out, "opt/rocm/lib/zero"));
        const report = await checkOutput(out);
        deepEqual(report.failures.map(({ check, path }) => `${check} ${path}`).sort(), [
          "symlink-outside opt/rocm/LICENSE.host",
          "symlink-outside opt/rocm/lib/zero",
        ]);
        ok(!JSON.stringify(report).includes(HOST_SECRET.trim()), "the secret is never read");
      }),
  },
  {
    name: "install.sh: `#!/usr/bin/env -S python3 -u -W ignore` still splits its arguments",
    run: () =>
      inTempDir(async (dir) => {
        const tree = join(dir, "tree");
        await writeSampleRocmTree(tree, { isas: [] });
        const python = join(dir, "store/python3/bin/python3");
        await Deno.mkdir(join(python, ".."), { recursive: true });
        await Deno.writeTextFile(
          python,
          '#!/bin/sh\nfor a in "$@"; do printf "[%s]" "$a"; done\n',
          {
            mode: 0o755,
          },
        );
        await Deno.writeTextFile(
          join(tree, "bin/rocm-tool"),
          "#!/usr/bin/env -S python3 -u -W ignore\r\nprint('hi')\r\n",
          { mode: 0o755 },
        );
        const out = join(dir, "out");
        const result = await install(
          ...["--tarball", await tarballOf(tree, dir), "--out", out],
          ...["--python", python, "--env", "/usr/bin/env"],
        );
        equal(result.code, 0, result.stderr);
        const script = join(out, "opt/rocm/bin/rocm-tool");
        const ran = await run(script, []);
        equal(ran.stdout, `[-u][-W][ignore][${script}]`, ran.stderr);
      }),
  },
];
