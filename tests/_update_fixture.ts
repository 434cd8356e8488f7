/**
 * A flake file in a temporary folder and a loopback mirror serving an index
 * of generated tarballs, for tests of `updateFlake()`.
 *
 * @module
 */
import { join } from "node:path";
import {
  type DemoMirrorOptions,
  type MirrorFile,
  startDemoMirror,
} from "../lib/jobs/demo_mirror.ts";
import { updateFlake, type UpdateOptions } from "../lib/jobs/update.ts";

/** The flake, its folder, the mirror, and `update()` against the mirror's index. */
export interface Fixture extends AsyncDisposable {
  dir: string;
  flake: string;
  mirror: ReturnType<typeof startDemoMirror>;
  update(options?: UpdateOptions): ReturnType<typeof updateFlake>;
}

/** Writes `registry` as flake.nix and serves `files`; disposing removes both. */
export async function updateFixture(
  files: MirrorFile[],
  registry: string,
  mirrorOptions: DemoMirrorOptions = {},
): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "update-test-" });
  const flake = join(dir, "flake.nix");
  await Deno.writeTextFile(flake, registry);
  const mirror = startDemoMirror(files, mirrorOptions);
  return {
    dir,
    flake,
    mirror,
    update: (options = {}) =>
      updateFlake({ flake, index: mirror.indexUrl, retries: 0, ...options }),
    [Symbol.asyncDispose]: async () => {
      await mirror.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
