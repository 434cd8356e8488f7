/**
 * `prefetch --add-to-store` seeds the store in one pass: straight into the
 * local store (as root, lib/store/local_store.ts), through `nix-daemon --stdio`
 * on it (`--via-daemon`), and through a nix-daemon started here on a private
 * socket so that other Nix users of this machine are not disturbed. Each
 * seeded path must pass `nix-store --verify-path` and serve
 * `<nix/fetchurl.nix>` with the server stopped. The direct route must keep
 * Nix's garbage collector away from the file it writes: through the
 * temporary-roots file, and through the collector's socket while a
 * collection holds the GC lock.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { canLockIfFree } from "../../lib/fs/cleanup.ts";
import { parseHash } from "../../lib/hash/hash.ts";
import { fixedOutputPath } from "../../lib/store/nix_store.ts";
import { startFileServer } from "../_server.ts";
import {
  markingNixDaemon,
  nixEnv,
  pathExists,
  randomBytes,
  repoRoot,
  requireLocalStore,
  requireTools,
  run,
  runNixBuild,
  sha256Sri,
  unregisteredInStore,
  waitUntil,
  withTempDir,
  wrapOnPath,
} from "../_tools.ts";

const SCRIPT = join(repoRoot, "scripts/prefetch.ts");
const PERMISSIONS = (await Deno.readTextFile(SCRIPT)).split("\n")[0]!
  .replace(/^#!\/usr\/bin\/env -S deno run /, "").split(" ");
// Writes the local store itself, or starts nix-daemons of its own on it.
const nix = await requireTools(
  "store seeding tests",
  "nix-store",
  "nix-build",
  "nix-daemon",
) && await requireLocalStore("store seeding tests");

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
    await waitUntil(() => pathExists(socket), "nix-daemon's socket", 10_000, 20);
    return await fn({ ...env, NIX_REMOTE: "daemon" }, accepted);
  } finally {
    daemon.kill("SIGTERM");
    await daemon.status;
    await logging;
  }
}

/** Asserts that `storePath` is valid, with its bytes as registered, and no temporary of `name` is left. */
async function assertSeeded(
  storePath: string,
  name: string,
  env: Record<string, string>,
): Promise<void> {
  const verify = await run("nix-store", ["--verify-path", storePath], { env });
  assert.equal(verify.code, 0, verify.stderr);
  assert.deepEqual(await unregisteredInStore(name, env), [], "no temporary left");
}

/** Runs `checks`, then {@linkcode assertSeeded}; deletes the path whatever they find. */
async function assertSeededThenDelete(
  storePath: string,
  name: string,
  env: Record<string, string>,
  checks: () => Promise<void> | void = () => {},
): Promise<void> {
  try {
    await checks();
    await assertSeeded(storePath, name, env);
  } finally {
    await run("nix-store", ["--delete", storePath], { env });
  }
}

/**
 * Seeds a 10 MiB file over 3 connections with `env`, then checks the path
 * and builds `<nix/fetchurl.nix>` with the server stopped; deletes the path.
 */
async function seedAndBuild(
  env: Record<string, string>,
  afterSeed: () => Promise<void> = () => Promise.resolve(),
  flags: string[] = [],
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
      ...flags,
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
  name: "prefetch --add-to-store writes straight into the local store, used by fetchurl offline",
  // The direct route needs FsFile.tryLock (Deno 2.7); before, the daemon adds the file.
  ignore: !nix || !canLockIfFree,
  fn: () =>
    withTempDir(async (dir) => {
      const daemon = await markingNixDaemon(dir);
      const env = nixEnv({ PATH: daemon.PATH });
      await seedAndBuild(env, async () => {
        assert.equal(await daemon.ran(), false, "no nix-daemon: the file went straight in");
        assert.deepEqual(
          await unregisteredInStore("rocm-seed.tar.gz", env),
          [],
          "no temporary left",
        );
      });
    }),
});

Deno.test({
  name: "prefetch --add-to-store --via-daemon seeds the local store through nix-daemon --stdio",
  ignore: !nix,
  fn: () =>
    withTempDir(async (dir) => {
      const daemon = await markingNixDaemon(dir);
      await seedAndBuild(nixEnv({ PATH: daemon.PATH }), async () => {
        assert.equal(await daemon.ran(), true, "went through nix-daemon");
      }, ["--via-daemon"]);
    }),
});

/** A store name no other test uses. */
const uniqueName = (stem: string): string => `${stem}-${crypto.randomUUID().slice(0, 8)}.bin`;

Deno.test({
  name: "prefetch --add-to-store: the file being written is a GC root, and the path ends valid",
  // The direct route needs FsFile.tryLock (Deno 2.7); before, the daemon adds the file.
  ignore: !nix || !canLockIfFree,
  fn: async () => {
    const env = nixEnv();
    const name = uniqueName("gc-root");
    const body = randomBytes(4 * 1024 * 1024);
    const storePath = fixedOutputPath(name, parseHash(await sha256Sri(body)));
    // 2 s of download: time to find the file and try to collect it.
    await using server = startFileServer({
      routes: { [`/${name}`]: { body, bytesPerSecond: 2 * 1024 * 1024 } },
    });
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...PERMISSIONS, SCRIPT, "--add-to-store", server.url(`/${name}`)],
      env,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = child.output();
    try {
      let temporary: string | undefined;
      for (let waited = 0; temporary === undefined; waited += 20) {
        assert.ok(waited < 10_000, "the store file appeared within 10 s");
        await new Promise((resolve) => setTimeout(resolve, 20));
        temporary = (await unregisteredInStore(name, env))[0];
      }
      const roots = await Deno.readFile(`/nix/var/nix/temproots/${child.pid}`);
      assert.ok(
        new TextDecoder().decode(roots).split("\0").includes(`/nix/store/${temporary}`),
        "listed in the temporary-roots file of prefetch's process",
      );
      const collect = await run("nix-store", ["--delete", `/nix/store/${temporary}`], { env });
      assert.notEqual(collect.code, 0, "the collector refuses to delete it");
      assert.match(collect.stderr, /still alive/);
    } finally {
      const { code, stdout, stderr } = await output;
      assert.equal(code, 0, new TextDecoder().decode(stderr));
      assert.equal(new TextDecoder().decode(stdout).split("\n")[1], storePath);
    }
    await assertSeededThenDelete(storePath, name, env, async () => {
      assert.equal(
        await pathExists(`/nix/var/nix/temproots/${child.pid}`),
        false,
        "roots file removed",
      );
    });
  },
});

Deno.test({
  name: "prefetch --add-to-store sends its roots to a running collector's socket",
  // The direct route needs FsFile.tryLock (Deno 2.7); before, the daemon adds the file.
  ignore: !nix || !canLockIfFree,
  fn: () =>
    withTempDir(async (dir) => {
      // A store of its own state (database, locks, roots) over /nix/store, so
      // that holding its GC lock stops nobody else.
      const state = join(dir, "state");
      const env = nixEnv({ NIX_STATE_DIR: state });
      const init = await run("nix-store", ["--init"], { env });
      assert.equal(init.code, 0, init.stderr);
      // A collection in progress: the GC lock held, the socket listening.
      using gcLock = await Deno.open(join(state, "gc.lock"), { write: true, create: true });
      await gcLock.lock(true);
      await Deno.mkdir(join(state, "gc-socket"));
      const listener = Deno.listen({ transport: "unix", path: join(state, "gc-socket/socket") });
      const received: string[] = [];
      const serving = (async () => {
        for await (const connection of listener) {
          const buffer = new Uint8Array(4096);
          let text = "";
          for (let n; (n = await connection.read(buffer)) !== null;) {
            text += new TextDecoder().decode(buffer.subarray(0, n));
            while (text.includes("\n")) {
              received.push(text.slice(0, text.indexOf("\n")));
              text = text.slice(text.indexOf("\n") + 1);
              await connection.write(new TextEncoder().encode("1"));
            }
          }
          connection.close();
        }
      })().catch(() => {});
      const name = uniqueName("gc-socket");
      const body = randomBytes(64 * 1024);
      const storePath = fixedOutputPath(name, parseHash(await sha256Sri(body)));
      await using server = startFileServer({ routes: { [`/${name}`]: { body } } });
      try {
        const result = await run(Deno.execPath(), [
          "run",
          ...PERMISSIONS,
          SCRIPT,
          "--add-to-store",
          server.url(`/${name}`),
        ], { env });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(received.length, 2, `the file and the path: ${received.join(", ")}`);
        assert.match(received[0]!, new RegExp(`^/nix/store/[0-9a-z]{32}-${name}$`));
        assert.notEqual(received[0], storePath);
        assert.equal(received[1], storePath);
        const valid = await run("nix-store", ["--check-validity", storePath], { env });
        assert.equal(valid.code, 0, "valid in the store it was registered in");
      } finally {
        listener.close();
        await serving;
        await Deno.remove(storePath).catch(() => {});
      }
    }),
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

Deno.test({
  name: "prefetch --add-to-store FILE and stdin write straight into the local store, valid paths",
  ignore: !nix,
  fn: () =>
    withTempDir(async (dir) => {
      const env = nixEnv();
      // A file (its size known: the NAR hash comes from the same pass) and stdin (unknown).
      for (const source of ["file", "stdin"] as const) {
        const name = uniqueName(`local-${source}`);
        const body = randomBytes(1024 * 1024 + 5);
        const storePath = fixedOutputPath(name, parseHash(await sha256Sri(body)));
        await Deno.writeFile(join(dir, name), body);
        const result = await run(Deno.execPath(), [
          ...["run", ...PERMISSIONS, SCRIPT, "--add-to-store", "--name", name],
          source === "file" ? join(dir, name) : "-",
        ], { env, ...(source === "stdin" ? { stdin: body } : {}) });
        await assertSeededThenDelete(storePath, name, env, () => {
          assert.equal(result.code, 0, result.stderr);
          assert.equal(result.stdout.split("\n")[1], storePath);
        });
      }
    }),
});

/** Whether this process may make a mount namespace with a read-only /nix/store (root, unshare). */
async function canMountReadOnlyStore(): Promise<boolean> {
  const probe = await run("unshare", ["-m", "sh", "-c", READ_ONLY_STORE + "true"]);
  if (probe.code === 0) return true;
  const reason =
    `read-only store test: cannot remount /nix/store read-only (${probe.stderr.trim()})`;
  if (Deno.env.get("CI") === "true") throw new Error(`${reason} (CI=true)`);
  console.log(`SKIP ${reason}`);
  return false;
}

/** NixOS's store: a read-only bind mount, here in a mount namespace of the test's own. */
const READ_ONLY_STORE =
  "mount --bind /nix/store /nix/store && mount -o remount,ro,bind /nix/store && exec ";

Deno.test({
  name: "prefetch --add-to-store on a read-only store (NixOS) goes through nix-daemon instead",
  ignore: !nix || !await canMountReadOnlyStore(),
  fn: () =>
    withTempDir(async (dir) => {
      const daemon = await markingNixDaemon(dir);
      const env = nixEnv({ PATH: daemon.PATH });
      const name = uniqueName("read-only");
      const body = randomBytes(256 * 1024);
      const storePath = fixedOutputPath(name, parseHash(await sha256Sri(body)));
      await using server = startFileServer({ routes: { [`/${name}`]: { body } } });
      // nix-daemon --stdio, as root, remounts the store writable in a
      // namespace of its own, as Nix does; Deno cannot, so it must hand over.
      const result = await run("unshare", [
        ...["-m", "sh", "-c", `${READ_ONLY_STORE}"$@"`, "sh", Deno.execPath(), "run"],
        ...[...PERMISSIONS, SCRIPT, "--add-to-store", server.url(`/${name}`)],
      ], { env });
      await assertSeededThenDelete(storePath, name, env, async () => {
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout.split("\n")[1], storePath);
        assert.equal(await daemon.ran(), true, "handed over to nix-daemon");
      });
    }),
});

Deno.test({
  name: "prefetch --add-to-store: a refused registration leaves nothing in the store",
  // The direct route needs FsFile.tryLock (Deno 2.7); before, the daemon adds the file.
  ignore: !nix || !canLockIfFree,
  fn: () =>
    withTempDir(async (dir) => {
      // nix-store as it is, except that it refuses to register anything.
      const PATH = await wrapOnPath(
        dir,
        "nix-store",
        `case "$1" in --register-validity) echo "error: disk quota exceeded" >&2; exit 1;; esac`,
      );
      const env = nixEnv({ PATH });
      const name = uniqueName("refused");
      const body = randomBytes(64 * 1024);
      const storePath = fixedOutputPath(name, parseHash(await sha256Sri(body)));
      await using server = startFileServer({ routes: { [`/${name}`]: { body } } });
      const result = await run(Deno.execPath(), [
        ...["run", ...PERMISSIONS, SCRIPT, "--add-to-store", server.url(`/${name}`)],
      ], { env });
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "");
      assert.match(
        result.stderr.trim(),
        /^prefetch: Cannot register ".*" in the Nix store: nix-store failed: error: disk quota exceeded$/,
      );
      assert.equal(await pathExists(storePath), false, "the moved file was taken out again");
      assert.deepEqual(await unregisteredInStore(name, nixEnv()), [], "no temporary left");
    }),
});

Deno.test({
  name:
    "prefetch --add-to-store --via-daemon reports the hash of a path valid without a content address",
  ignore: !nix,
  fn: async () => {
    await using server = startFileServer({ routes: { "/f": { body: randomBytes(4096) } } });
    const name = uniqueName("no-ca");
    const body = await (await fetch(server.url("/f"))).bytes();
    const sri = await sha256Sri(body);
    // Registered as the direct route and nix-store --register-validity register: no ca field.
    const path = fixedOutputPath(name, parseHash(sri));
    await Deno.writeFile(path, body);
    const registered = await new Deno.Command("nix-store", {
      args: ["--register-validity"],
      env: nixEnv(),
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const writer = registered.stdin.getWriter();
    await writer.write(new TextEncoder().encode(`${path}\n\n0\n`));
    await writer.close();
    const status = await registered.output();
    assert.ok(status.success, new TextDecoder().decode(status.stderr));
    try {
      const result = await run(Deno.execPath(), [
        ...["run", ...PERMISSIONS, SCRIPT, "--add-to-store", "--via-daemon", "--json"],
        ...["--name", name, server.url("/f")],
      ], { env: nixEnv() });
      assert.equal(result.code, 0, result.stderr);
      const json = JSON.parse(result.stdout);
      assert.equal(json.hash, sri);
      assert.equal(json.storePath, path);
    } finally {
      await run("nix-store", ["--delete", path], { env: nixEnv() });
    }
  },
});
