/**
 * Images are a function of the closure's contents, not of how the store keeps
 * them: `nix-store --optimise` hard-links equal files across and within store
 * paths, and the image bytes must not change.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseClosure } from "../../lib/store/closure.ts";
import { writeImage } from "../../lib/image/image.ts";
import { buildStoreClosure, mkBinding, sha256File } from "../_store_closure.ts";
import { nixEnv, requireTools, run, withTempDir } from "../_tools.ts";

const ok = await requireTools("images on an optimised store", "nix", "nix-build", "nix-store");

Deno.test({
  name: "writeImage() writes the same bytes before and after nix-store --optimise",
  ignore: !ok,
  fn: () =>
    withTempDir(async (work) => {
      // A fresh closure each run (the nonce), so the store has not linked it yet.
      const nonce = crypto.randomUUID();
      const { root, pathInfo } = await buildStoreClosure(
        work,
        `let
${
          mkBinding({ nonce })
        }  base = mk "dups-base" "mkdir -p $out/share && seq 1 5000 > $out/share/common.txt";
in mk "dups-rocm" ''
  mkdir -p $out/a $out/b
  seq 1 5000 > $out/a/same-as-base.txt
  seq 7 9000 > $out/a/twin.bin
  seq 7 9000 > $out/b/twin.bin
  seq 7 9000 > $out/b/triplet.bin
  echo \${base} > $out/references
''
`,
      );
      const closure = parseClosure(pathInfo);
      const base = closure.paths.find((path) => path.path !== root)!.path;
      const duplicates = [
        `${base}/share/common.txt`,
        `${root}/a/same-as-base.txt`,
        `${root}/a/twin.bin`,
        `${root}/b/twin.bin`,
        `${root}/b/triplet.bin`,
      ];
      const links = async (): Promise<number[]> =>
        await Promise.all(duplicates.map(async (path) => (await Deno.lstat(path)).nlink ?? 1));
      try {
        assert.deepEqual(await links(), [1, 1, 1, 1, 1], "a fresh build has no hard links");
        const write = async (name: string): Promise<string> => {
          const output = join(work, name);
          await writeImage(closure, { name: "dups", output, splitBytes: 2 ** 30 });
          return await sha256File(output);
        };
        const before = await write("before.tar");
        const optimise = await run("nix-store", ["--optimise"], { env: nixEnv() });
        assert.equal(optimise.code, 0, optimise.stderr);
        const after = await links();
        assert.ok(after.every((count) => count >= 2), `optimised: link counts ${after}`);
        assert.equal(await write("after.tar"), before);
      } finally {
        // Nothing else refers to these paths: take them out of the store again.
        await run("nix-store", ["--delete", root, base], { env: nixEnv() });
      }
    }),
});
