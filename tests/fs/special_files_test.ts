// lib/fs/special_files.ts: what Deno refuses under /proc and /sys without
// --allow-all is read through cat and ls, in a child process holding only
// --allow-read and --allow-run=cat,ls (this process holds --allow-all).
import assert from "node:assert/strict";
import { join } from "node:path";
import { repoRoot, requireTools, run, withTempDir } from "../_tools.ts";
import { kernelPathKind, listKernelFolder, readKernelFile } from "../../lib/fs/special_files.ts";

const MODULE = `file://${join(repoRoot, "lib/fs/special_files.ts")}`;
const tools = await requireTools("reading /sys through cat and ls", "cat", "ls");
const linux = Deno.build.os === "linux";

/** Runs `body` (with the module's exports in scope) under `permissions`; returns its JSON output. */
async function child(permissions: string[], body: string): Promise<Record<string, unknown>> {
  return await withTempDir(async (dir) => {
    const file = join(dir, "child.ts");
    await Deno.writeTextFile(
      file,
      `import * as m from ${JSON.stringify(MODULE)};\n` +
        `const out: Record<string, unknown> = {};\n` +
        `const attempt = async (key: string, f: () => Promise<unknown>) => {\n` +
        `  try { out[key] = await f(); } catch (e) { out[key] = { error: (e as Error).name, message: (e as Error).message }; }\n` +
        `};\n${body}\nconsole.log(JSON.stringify(out));\n`,
    );
    const result = await run(Deno.execPath(), ["run", "--quiet", ...permissions, file], {
      env: { NO_COLOR: "1" },
    });
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout);
  });
}

const PROBES = `
await attempt("ostype", async () => new TextDecoder().decode(await m.readKernelFile("/proc/sys/kernel/ostype", { maxBytes: 64 })));
await attempt("classes", async () => (await m.listKernelFolder("/sys/class")).includes("net"));
await attempt("folder", () => m.kernelPathKind("/sys/class"));
await attempt("file", () => m.kernelPathKind("/proc/sys/kernel/ostype"));
await attempt("missing", () => m.kernelPathKind("/sys/class/no-such-class"));
await attempt("missingFile", () => m.readKernelFile("/sys/class/no-such-class/x", { maxBytes: 64 }));
await attempt("missingFolder", () => m.listKernelFolder("/sys/class/no-such-class"));
await attempt("tooBig", () => m.readKernelFile("/proc/self/maps", { maxBytes: 8 }));
`;

Deno.test({
  name:
    "readKernelFile() and friends read /proc and /sys through cat and ls with --allow-run=cat,ls",
  ignore: !tools || !linux,
  fn: async () => {
    const out = await child(["--allow-read", "--allow-run=cat,ls"], PROBES);
    assert.equal(out.ostype, "Linux\n");
    assert.equal(out.classes, true);
    assert.equal(out.folder, "folder");
    assert.equal(out.file, "other");
    assert.equal(out.missing, "missing");
    assert.deepEqual(out.missingFile, {
      error: "NotFound",
      message: 'Cannot read "/sys/class/no-such-class/x": No such file or directory',
    });
    assert.equal((out.missingFolder as { error: string }).error, "NotFound");
    assert.equal((out.tooBig as { error: string }).error, "RangeError");
  },
});

Deno.test({
  name: "readKernelFile() without --allow-run names the flag that is missing",
  ignore: !linux,
  fn: async () => {
    const out = await child(["--allow-read"], PROBES);
    if (out.ostype === "Linux\n") {
      // A Deno before 2.7 lets --allow-read read /proc and /sys: nothing is refused.
      console.log(`SKIP: Deno ${Deno.version.deno} reads /proc with --allow-read alone`);
      return;
    }
    const refusal = out.ostype as { error: string; message: string };
    assert.equal(refusal.error, "NotCapable");
    assert.match(
      refusal.message,
      /^Cannot read "\/proc\/sys\/kernel\/ostype": Requires all access to .*only with --allow-all.*needs --allow-run=cat,ls$/,
    );
    // Deno 2.6 lets --allow-read stat /sys (not read it); later ones refuse both.
    if (out.folder !== "folder") {
      assert.equal((out.folder as { error: string }).error, "NotCapable");
    }
  },
});

Deno.test("readKernelFile() reads other files through Deno, refusing a FIFO", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "a"), "x\n");
    assert.equal(
      new TextDecoder().decode(await readKernelFile(join(dir, "a"), { maxBytes: 8 })),
      "x\n",
    );
    await assert.rejects(readKernelFile(join(dir, "a"), { maxBytes: 1 }), RangeError);
    assert.deepEqual(await listKernelFolder(dir), ["a"]);
    assert.equal(await kernelPathKind(join(dir, "a")), "other");
    assert.equal(await kernelPathKind(join(dir, "b")), "missing");
    const mkfifo = await new Deno.Command("mkfifo", { args: [join(dir, "fifo")] }).output()
      .catch(() => null);
    if (mkfifo?.success) {
      await assert.rejects(readKernelFile(join(dir, "fifo"), { maxBytes: 8 }), TypeError);
    }
  });
});
