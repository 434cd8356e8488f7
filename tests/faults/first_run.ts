/**
 * A first run: the tools started away from the flake's folder find its
 * flake.nix as nix does (or say, in one line, that there is none), and a
 * network that fails says why in words: the name does not resolve, the
 * connection was refused, TLS failed, or nothing answered in time. Every
 * server is on 127.0.0.1; the name case runs in a network namespace of its
 * own, where no DNS query can leave the machine.
 *
 * @module
 */

import { equal, match } from "node:assert/strict";
import { join } from "node:path";
import { assertFailedCleanly, type FaultCase, inTempDir, runScript, snapshot } from "./_harness.ts";
import { registry, VERSION_NEW, VERSION_OLD } from "./_fixtures.ts";
import { requireTools, selfSignedCertificate } from "../_tools.ts";

/** dir/flake.nix above dir/repo/.git: from dir/repo/sub, nix finds no flake. */
async function behindRepositoryRoot(dir: string): Promise<string> {
  await Deno.writeTextFile(join(dir, "flake.nix"), registry("https://127.0.0.1:9/tarball/"));
  await Deno.mkdir(join(dir, "repo/.git"), { recursive: true });
  await Deno.mkdir(join(dir, "repo/sub"));
  return join(dir, "repo/sub");
}

function noFlake(script: "update" | "status" | "rewrite", args: string[]): FaultCase {
  return {
    name: `${script} with no flake.nix here or above (a .git ends the search, as for nix)`,
    run: () =>
      inTempDir(async (dir) => {
        const cwd = await behindRepositoryRoot(dir);
        const before = snapshot(dir);
        const result = await runScript(script, args, { cwd });
        await assertFailedCleanly(result, {
          code: 1,
          stderr: new RegExp(
            `^${script}: No flake\\.nix here or above: pass --flake PATH \\(searched .*/repo/sub ` +
              "and up to .*/repo, a git repository's root, where nix stops too\\)$",
          ),
          unchanged: [before],
        });
      }),
  };
}

function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A loopback server that accepts connections and never answers. */
function silentServer(): { origin: string } & Disposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) held.push(conn);
  })().catch(() => {});
  return {
    origin: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    [Symbol.dispose]: () => {
      listener.close();
      for (const conn of held) conn.close();
    },
  };
}

/** A loopback TLS server whose certificate, made here by openssl, no authority signed. */
async function selfSignedServer(dir: string): Promise<{ origin: string } & Disposable> {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    ...await selfSignedCertificate(dir),
  });
  const held: Deno.TlsConn[] = [];
  (async () => {
    for await (const conn of listener) {
      conn.handshake().catch(() => {});
      held.push(conn);
    }
  })().catch(() => {});
  return {
    origin: `https://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    [Symbol.dispose]: () => {
      listener.close();
      for (const conn of held) conn.close();
    },
  };
}

/** update against an index at `origin`: one line naming the URL and the cause. */
async function updateFails(dir: string, origin: string, cause: RegExp): Promise<void> {
  await Deno.writeTextFile(join(dir, "flake.nix"), registry(`${origin}/tarball/`));
  const before = snapshot(dir);
  const result = await runScript("update", ["--no-progress"], { cwd: dir });
  const url = origin.replaceAll(".", "\\.").replaceAll("/", "\\/");
  await assertFailedCleanly(result, {
    code: 1,
    stderr: new RegExp(`^update: Cannot list "${url}\\/tarball\\/": ${cause.source}$`),
    unchanged: [before],
  });
}

export const FIRST_RUN_CASES: FaultCase[] = [
  noFlake("update", ["--no-progress"]),
  noFlake("status", []),
  noFlake("rewrite", ["--set", `nightly.version=${VERSION_NEW}`]),
  {
    name: "rewrite from a subfolder edits the flake.nix above and names it",
    run: () =>
      inTempDir(async (dir) => {
        await Deno.writeTextFile(join(dir, "flake.nix"), registry("https://127.0.0.1:9/tarball/"));
        await Deno.mkdir(join(dir, "docs/notes"), { recursive: true });
        const result = await runScript("rewrite", ["--set", `nightly.version=${VERSION_NEW}`], {
          cwd: join(dir, "docs/notes"),
        });
        equal(result.code, 0, result.stderr);
        equal(result.stderr, `rewrite: using ${join(dir, "flake.nix")}\n`);
        equal(result.stdout, `nightly.version: "${VERSION_OLD}" → "${VERSION_NEW}"\n`);
        match(await Deno.readTextFile(join(dir, "flake.nix")), new RegExp(VERSION_NEW));
        await Deno.remove(result.tmpdir, { recursive: true });
      }),
  },
  {
    name: "update: the index's port is closed (connection refused)",
    run: () =>
      inTempDir(async (dir) => {
        const port = closedPort();
        await updateFails(
          dir,
          `http://127.0.0.1:${port}`,
          new RegExp(`connection refused by 127\\.0\\.0\\.1:${port} \\(nothing listens there\\)`),
        );
      }),
  },
  {
    name: "update: the index's TLS certificate is self-signed (TLS failure)",
    run: () =>
      inTempDir(async (dir) => {
        if (!await requireTools("a self-signed loopback TLS server", "openssl")) return;
        using server = await selfSignedServer(dir);
        await updateFails(
          dir,
          server.origin,
          /TLS failure: the server's certificate is not signed by a trusted authority \(invalid peer certificate: .+\)/,
        );
      }),
  },
  {
    name: "prefetch: a server that accepts and never answers, --timeout 1 (timeout)",
    run: () =>
      inTempDir(async (dir) => {
        using server = silentServer();
        const result = await runScript("prefetch", [
          "--timeout",
          "1",
          "--retries",
          "0",
          "-o",
          join(dir, "out.bin"),
          `${server.origin}/file.bin`,
        ]);
        await assertFailedCleanly(result, {
          code: 1,
          stderr:
            /^prefetch: Cannot download "http:\/\/127\.0\.0\.1:\d+\/file\.bin": timed out: no response for 1 s$/,
        });
      }),
  },
  {
    name: "status: nothing listens where the pin and the index are (each URL named, refused)",
    run: () =>
      inTempDir(async (dir) => {
        const port = closedPort();
        await Deno.writeTextFile(
          join(dir, "flake.nix"),
          registry(`http://127.0.0.1:${port}/tarball/`),
        );
        const result = await runScript("status", ["--timeout", "5"], { cwd: dir });
        const refused = `connection refused by 127\\.0\\.0\\.1:${port} \\(nothing listens there\\)`;
        // Exit code and layout are status's own (#21.5); the cause is in words.
        match(
          result.stdout + result.stderr,
          new RegExp(
            `http://127\\.0\\.0\\.1:${port}/tarball/therock-dist-linux-gfx1151-${VERSION_OLD}\\.tar\\.gz.*${refused}`,
          ),
        );
        match(
          result.stdout + result.stderr,
          new RegExp(`Cannot list "http://127\\.0\\.0\\.1:${port}/tarball/": ${refused}`),
        );
        await Deno.remove(result.tmpdir, { recursive: true });
      }),
  },
  {
    name: "prefetch: a name that cannot be looked up (no network: its own namespace)",
    run: async () => {
      if (!await requireTools("a network namespace without DNS", "bwrap")) return;
      const result = await runScript("prefetch", [
        "--retries",
        "3",
        "https://nonexistent.invalid/file.bin",
      ], {
        under: ["bwrap", "--dev-bind", "/", "/", "--unshare-net", "--"],
      });
      await assertFailedCleanly(result, {
        code: 1,
        stderr:
          /^prefetch: Cannot download "https:\/\/nonexistent\.invalid\/file\.bin": name (lookup failed: no DNS answer for|not found:) "nonexistent\.invalid"/,
      });
    },
  },
];
