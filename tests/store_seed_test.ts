/**
 * `prefetch --add-to-store` streams the download into the store in one pass:
 * through the local store (as root) and through a nix-daemon started here,
 * on a private socket so that other Nix users of this machine are not
 * disturbed. Each seeded path must pass `nix-store --verify-path` and serve
 * `<nix/fetchurl.nix>` with the server stopped.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseHash } from "../lib/hash.ts";
import { fixedOutputPath } from "../lib/nix_store.ts";
import { startFileServer } from "./_server.ts";
import {
  nixEnv,
  randomBytes,
  repoRoot,
  requireTools,
  run,
  runNixBuild,
  sha256Sri,
  withTempDir,
} from "./_tools.ts";

const SCRIPT = join(repoRoot, "scripts/prefetch.ts");
const PERMISSIONS = (await Deno.readTextFile(SCRIPT)).split("\n")[0]!
  .replace(/^#!\/usr\/bin\/env -S deno run /, "").split(" ");
const nix = await requireTools(
  "store seeding tests",
  "nix-store",
  "nix-build",
  "nix-daemon",
);

/**
 * Runs `nix-daemon` on a socket in `dir` until `fn` settles; `fn` gets the
 * client's environment and a count of the connections the daemon accepted.
 */
async function withDaemon<T>(
  dir: string,
  fn: (env: Record<string, string>, accepted: () => number) => Promise<T>,
): Promise<T> {
  const socket = join(dir, "daemon-socket");
  const env = nixEnv({ NIX_DAEMON_SOCKET_PATH: socket });
  const daemon = new Deno.Command("nix-daemon", { env, stdout: "null", stderr: "piped" }).spawn();
  let log = "";
  const logging = daemon.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (text) => void (log += text) }),
  ).catch(() => {});
  const accepted = (): number => log.match(/accepted connection/g)?.length ?? 0;
  try {
    for (let waited = 0; !(await exists(socket)); waited += 20) {
      if (waited > 10_000) throw new Error("nix-daemon did not open its socket within 10 s");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return await fn({ ...env, NIX_REMOTE: "daemon" }, accepted);
  } finally {
    daemon.kill("SIGTERM");
    await daemon.status;
    await logging;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Seeds a 10 MiB file over 3 connections with `env`, then checks the path
 * and builds `<nix/fetchurl.nix>` with the server stopped; deletes the path.
 */
async function seedAndBuild(
  env: Record<string, string>,
  afterSeed: () => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  const body = randomBytes(10 * 1024 * 1024 + 17);
  const expected = await sha256Sri(body);
  const storePath = fixedOutputPath("rocm-seed.tar.gz", parseHash(expected));
  const server = startFileServer({ routes: { "/d/rocm-seed.tar.gz": { body } } });
  const url = server.url("/d/rocm-seed.tar.gz");
  try {
    const result = await run(Deno.execPath(), [
      "run",
      ...PERMISSIONS,
      SCRIPT,
      "--add-to-store",
      "--connections",
      "3",
      url,
    ], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `${expected}\n${storePath}\n`);
    assert.ok(server.requests.length >= 3, "fetched in ranges");
    await afterSeed();
  } finally {
    await server.close();
  }
  try {
    const verify = await run("nix-store", ["--verify-path", storePath], { env });
    assert.equal(verify.code, 0, verify.stderr);
    assert.deepEqual(await Deno.readFile(storePath), body);
    const build = await runNixBuild("nix-build", [
      "--no-out-link",
      "-E",
      `import <nix/fetchurl.nix> { url = "${url}"; hash = "${expected}"; }`,
    ], { env });
    assert.equal(build.code, 0, build.stderr);
    assert.equal(build.stdout.trim(), storePath);
  } finally {
    await run("nix-store", ["--delete", storePath], { env });
  }
}

Deno.test({
  name: "prefetch --add-to-store seeds the local store in one pass, used by fetchurl offline",
  ignore: !nix,
  fn: () => seedAndBuild(nixEnv()),
});

Deno.test({
  name: "prefetch --add-to-store seeds through a nix-daemon (NIX_REMOTE=daemon)",
  ignore: !nix,
  fn: () =>
    withTempDir((dir) =>
      withDaemon(dir, (env, accepted) =>
        seedAndBuild(env, async () => {
          // The daemon's log lags its accept() a little.
          for (let waited = 0; accepted() === 0 && waited < 2000; waited += 20) {
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          assert.equal(accepted(), 1, "prefetch went through the daemon");
        }))
    ),
});

Deno.test({
  name: "prefetch --add-to-store adds nothing when the download fails half-way",
  ignore: !nix,
  fn: async () => {
    const body = randomBytes(3 * 1024 * 1024);
    const storePath = fixedOutputPath("half.bin", parseHash(await sha256Sri(body)));
    await using server = startFileServer({
      routes: { "/half.bin": { body, resetAfter: 2 * 1024 * 1024 } },
    });
    const result = await run(Deno.execPath(), [
      "run",
      ...PERMISSIONS,
      SCRIPT,
      "--add-to-store",
      "--retries",
      "0",
      server.url("/half.bin"),
    ], { env: nixEnv() });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.match(result.stderr.trim(), /^prefetch: .*connection closed after/);
    const valid = await run("nix-store", ["--check-validity", storePath], { env: nixEnv() });
    assert.notEqual(valid.code, 0, "the truncated file was not registered");
  },
});
