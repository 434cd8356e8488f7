/**
 * lib/store/local_store.ts on its own: the NAR framing it hashes in the same pass
 * (checked against `nix-store --dump`), and when it leaves the store to the
 * daemon. The seeding itself is tested end to end in store_seed_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { canLockIfFree } from "../../lib/fs/cleanup.ts";
import { chooseLocalStore, flatFileNar } from "../../lib/store/local_store.ts";
import { randomBytes, requireTools, withTempDir } from "../_tools.ts";

const nix = await requireTools("NAR framing against nix-store --dump", "nix-store");

Deno.test({
  name: "flatFileNar() frames a file as nix-store --dump serialises it",
  ignore: !nix,
  fn: () =>
    withTempDir(async (dir) => {
      for (const size of [0, 1, 7, 8, 9, 4096 + 3]) {
        const contents = randomBytes(size);
        const path = join(dir, `file-${size}`);
        await Deno.writeFile(path, contents);
        const dump = await new Deno.Command("nix-store", {
          args: ["--dump", path],
          stdout: "piped",
        })
          .output();
        assert.ok(dump.success, `nix-store --dump ${path}`);
        const { head, tail, narSize } = flatFileNar(size);
        assert.equal(narSize, dump.stdout.length, `NAR size of ${size} bytes`);
        const ours = createHash("sha256").update(head).update(contents).update(tail).digest("hex");
        const theirs = createHash("sha256").update(dump.stdout).digest("hex");
        assert.equal(ours, theirs, `NAR hash of ${size} bytes`);
      }
    }),
});

/**
 * An environment of these variables only (a test changing this process's
 * own would change it for the test files running beside it).
 */
const only = (values: Record<string, string>) => (name: string): string | undefined => values[name];

Deno.test("chooseLocalStore() leaves any store but a local one to the daemon, saying why", () => {
  if (!canLockIfFree) {
    // Deno before 2.7 cannot take the GC lock without waiting: always the daemon.
    assert.deepEqual(chooseLocalStore({ env: only({}) }), {
      reason: `Deno ${Deno.version.deno} cannot take the GC lock without waiting (Deno 2.7 can)`,
    });
    return;
  }
  assert.deepEqual(chooseLocalStore({ env: only({ NIX_REMOTE: "daemon" }) }), {
    reason: `NIX_REMOTE is "daemon"`,
  });
  assert.deepEqual(
    chooseLocalStore({ env: only({ NIX_CONFIG: "substituters =\nstore = ssh-ng://builder\n" }) }),
    { reason: `the Nix setting "store" is "ssh-ng://builder"` },
  );
  assert.deepEqual(chooseLocalStore({ env: only({ NIX_STORE_DIR: "/gnu/store" }) }), {
    reason: `NIX_STORE_DIR is "/gnu/store" (only /nix/store is written directly)`,
  });
  const choice = chooseLocalStore({
    env: only({ NIX_REMOTE: "", NIX_CONFIG: "", NIX_STATE_DIR: "/nonexistent/state" }),
  });
  assert.equal(choice.layout, undefined);
  assert.match(
    (choice as { reason: string }).reason,
    /^"\/nonexistent\/state\/db" is not writable here/,
  );
});
