import assert from "node:assert/strict";
import { join } from "node:path";
import { repoRoot, requireTools, run, withTempDir } from "../_tools.ts";

const ok = await requireTools("the fsync tests (system calls traced)", "strace");

// One program writes a flake-like file with writeFileAtomic and an image in
// both formats with writeImage; strace records every call that flushes a
// file to disk, with the path of its descriptor (-y).
const PROGRAM = `
import { parseClosure, writeFileAtomic, writeImage } from ${JSON.stringify(`${repoRoot}/mod.ts`)};
const [dir] = Deno.args;
const path = \`\${dir}/store/\${"0".repeat(32)}-big\`;
await Deno.mkdir(\`\${path}/lib\`, { recursive: true });
await Deno.writeFile(\`\${path}/lib/big.so\`, new Uint8Array(64 * 1024 * 1024).fill(7));
const closure = parseClosure(JSON.stringify([{ path, narSize: 0, references: [] }]), {
  storeDir: \`\${dir}/store\`,
});
await writeFileAtomic(\`\${dir}/flake.nix\`, "{ }\\n");
await writeImage(closure, { name: "big", output: \`\${dir}/image.tar\` });
await writeImage(closure, { name: "big", format: "oci", output: \`\${dir}/image.oci\` });
`;

Deno.test({
  name: "writeImage() writes without fsync; writeFileAtomic() fsyncs before the rename",
  ignore: !ok,
  fn: () =>
    withTempDir(async (dir) => {
      const program = join(dir, "program.ts");
      await Deno.writeTextFile(program, PROGRAM);
      const log = join(dir, "strace.log");
      const result = await run("strace", [
        ...["-f", "-y", "-o", log, "-e", "trace=fsync,fdatasync,sync_file_range,syncfs,sync"],
        ...[Deno.execPath(), "run", "--no-config", "--allow-read", "--allow-write", program, dir],
      ]);
      assert.equal(result.code, 0, result.stderr);
      const synced = (await Deno.readTextFile(log)).split("\n").filter((line) =>
        /\b(fsync|fdatasync|sync_file_range|syncfs|sync)\(/.test(line)
      );
      assert.ok(
        synced.some((line) =>
          line.includes(`<${dir}/.rocm-nightly-tmp/`) && line.includes("-flake-nix>")
        ),
        `flake.nix's temporary file is fsynced:\n${synced.join("\n")}`,
      );
      const images = synced.filter((line) => /image[.-](tar|oci)/.test(line));
      assert.deepEqual(images, [], "no image file is flushed to disk");
      assert.ok((await Deno.stat(join(dir, "image.tar"))).size > 64 * 1024 * 1024);
      assert.ok((await Deno.stat(join(dir, "image.oci", "index.json"))).isFile);
    }),
});
