/**
 * `image --target T` on a closure without T's GPU code still writes the
 * image, and says so: such an image runs no kernel on that GPU.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseClosure } from "../../lib/store/closure.ts";
import { writeImage } from "../../lib/image/image.ts";
import { writeSampleRocmTree } from "../../lib/package/sample_rocm.ts";
import { repoRoot, run, withTempDir } from "../_tools.ts";

/** A one-path closure in a store folder of its own, holding a ROCm-like tree for `isas`. */
async function sampleClosure(store: string, isas: string[]): Promise<string> {
  const path = join(store, `${"0".repeat(32)}-rocm`);
  await writeSampleRocmTree(path, { isas });
  const closure = join(store, "closure.json");
  await Deno.writeTextFile(closure, JSON.stringify([{ path, narSize: 0, references: [] }]));
  return closure;
}

Deno.test("writeImage() warns of the target's ISAs the closure has no GPU code for", async () => {
  await withTempDir(async (store) => {
    const closure = parseClosure(await Deno.readTextFile(await sampleClosure(store, ["gfx1151"])), {
      storeDir: store,
    });
    const write = (target: string) =>
      writeImage(closure, { name: "rocm", target, output: join(store, `${target}.tar`) });
    assert.deepEqual((await write("gfx1151")).warnings, []);
    const missing = await write("gfx1201");
    assert.equal(missing.warnings.length, 1);
    assert.match(
      missing.warnings[0]!,
      /^--target gfx1201: the closure has no GPU code for gfx1201 \(only for gfx1151\)/,
    );
    const family = await write("gfx120X-all");
    assert.match(family.warnings[0]!, /no GPU code for gfx1200, gfx1201 \(/);
    assert.deepEqual(
      (await write("multiarch")).warnings.length,
      1,
      "most multiarch ISAs lack code",
    );
  });
});

Deno.test("image --target on a closure without its GPU code warns on stderr and exits 0", async () => {
  await withTempDir(async (store) => {
    const closure = await sampleClosure(store, ["gfx1151"]);
    const out = join(store, "image.tar");
    const result = await run(Deno.execPath(), [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env=SOURCE_DATE_EPOCH",
      join(repoRoot, "scripts/image.ts"),
      ...["--closure", closure, "--store-dir", store, "--name", "rocm", "--target", "gfx1201"],
      ...["-o", out],
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      /^image: warning: --target gfx1201: the closure has no GPU code for gfx1201 \(only for gfx1151\); .*\n$/,
    );
    assert.match(result.stdout, /image\.tar: docker-archive rocm:latest/);
  });
});
