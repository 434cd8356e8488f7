// Progress that finishes: queued lines, retries counted from 1, and each
// download's final frame drawn when it ends — on a fake terminal, and in a
// real one (tmux) around a real `update` run.
import assert from "node:assert/strict";
import { join } from "node:path";
import { createProgressDisplay } from "../../lib/cli/progress.ts";
import { renderTheRockIndex } from "../../lib/jobs/demo_mirror.ts";
import { readRequest } from "../_server.ts";
import { denoDir } from "../faults/_harness.ts";
import { repoRoot, requireTools, run, sha256Sri, withTempDir } from "../_tools.ts";

/** A fake terminal: what was written, with the last frame of each line read back. */
function fakeTerminal(): { output: { writeSync(b: Uint8Array): number }; text: () => string } {
  const chunks: string[] = [];
  const decoder = new TextDecoder();
  return {
    output: {
      writeSync(bytes: Uint8Array): number {
        chunks.push(decoder.decode(bytes));
        return bytes.length;
      },
    },
    text: () => chunks.join(""),
  };
}

/** The screen's lines as a terminal would show them now (cursor-up redraws applied). */
function screen(written: string): string[] {
  const lines: string[] = [];
  let row = 0;
  // deno-lint-ignore no-control-regex -- terminal control sequences
  for (const token of written.split(/(\x1b\[[0-9;?]*[A-Za-z]|\n|\r)/)) {
    if (token === "" || token === "\r") continue;
    // deno-lint-ignore no-control-regex -- the cursor-up sequence
    const up = /^\x1b\[(\d+)A$/.exec(token);
    if (up !== null) row -= Number(up[1]);
    else if (token === "\n") row++;
    else if (token.startsWith("\x1b[2K")) lines[row] = "";
    else if (!token.startsWith("\x1b")) lines[row] = (lines[row] ?? "") + token;
  }
  return lines.filter((line) => line !== undefined);
}

Deno.test("createProgressDisplay() lists queued lines and draws a final frame when a download ends", () => {
  const terminal = fakeTerminal();
  const display = createProgressDisplay({
    enabled: true,
    color: false,
    output: terminal.output,
    columns: () => 200,
  });
  const a = display.queue("gfx1151");
  const b = display.queue("gfx110X-all");
  assert.deepEqual(screen(terminal.text()), ["queued  gfx1151", "queued  gfx110X-all"]);
  a.start(1000);
  a.update(990);
  a.retry({ retry: 1, retries: 5, received: 990, error: new Error("HTTP 503") });
  let lines = screen(terminal.text());
  assert.equal(lines[0], "gfx1151: retry 1/5 from 990 B: HTTP 503");
  assert.match(lines[1]!, /99% .*retry 1\/5 {2}gfx1151$/);
  // Done is drawn at once (no throttle, no stop()), while the other is still queued.
  a.done({ size: 1000, hash: "sha256-abc=" });
  lines = screen(terminal.text());
  assert.match(lines[1]!, /^done {4}1000 B in 0:0\d {2}gfx1151 {2}sha256-abc=$/);
  assert.equal(lines[2], "queued  gfx110X-all");
  b.start(undefined);
  b.fail("stopped");
  display.stop();
  lines = screen(terminal.text());
  assert.equal(lines[2], "failed  gfx110X-all: stopped");
  assert.equal(lines.length, 3);
  // Lines are cut at the terminal's width, never wrapped.
  const narrow = fakeTerminal();
  const small = createProgressDisplay({
    enabled: true,
    color: false,
    output: narrow.output,
    columns: () => 40,
  });
  small.bar("gfx1151", 10).done({ size: 10, hash: `sha256-${"A".repeat(43)}=` });
  small.stop();
  for (const line of screen(narrow.text())) assert.ok(line.length < 40, line);
});

const tmux = await requireTools("progress checked in a real terminal", "tmux");

/** Single-quotes a word for sh. */
const quote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;

const VERSION = "7.12.0a20260310";
const tarball = (family: string): string => `therock-dist-linux-${family}-${VERSION}.tar.gz`;

Deno.test({
  name: "update.ts in a terminal (tmux): queued targets, retry 1/5, each final frame as it ends",
  ignore: !tmux,
  fn: () =>
    withTempDir(async (dir) => {
      const bodies: Record<string, Uint8Array<ArrayBuffer>> = {
        gfx1151: new Uint8Array(300_000).fill(1),
        "gfx110X-all": new Uint8Array(400_000).fill(2),
        "gfx120X-all": new Uint8Array(500_000).fill(3),
      };
      // Gates the test opens: gfx1151's retry waits for the first, and
      // gfx110X-all's body stops halfway until the second.
      const retryGate = Promise.withResolvers<void>();
      const halfGate = Promise.withResolvers<void>();
      const seen: string[] = [];
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const origin = `http://127.0.0.1:${listener.addr.port}`;
      const index = new TextEncoder().encode(renderTheRockIndex(
        Object.keys(bodies).map((family) => ({ name: tarball(family), mtime: 2 })),
      ));
      const write = async (conn: Deno.Conn, bytes: Uint8Array): Promise<void> => {
        for (let offset = 0; offset < bytes.length;) {
          offset += await conn.write(bytes.subarray(offset));
        }
      };
      const head = (status: string, length: number, type = "application/octet-stream") =>
        new TextEncoder().encode(
          `HTTP/1.1 ${status}\r\nContent-Type: ${type}\r\nContent-Length: ${length}\r\n` +
            "Connection: close\r\n\r\n",
        );
      const serve = async (conn: Deno.Conn): Promise<void> => {
        const request = await readRequest(conn);
        if (request === undefined) return;
        seen.push(request.path);
        const family = Object.keys(bodies).find((f) => request.path === `/tarball/${tarball(f)}`);
        const body = family === undefined ? undefined : bodies[family]!;
        if (request.path === "/tarball/") {
          await write(conn, head("200 OK", index.length, "text/html"));
          await write(conn, index);
        } else if (family === "gfx1151" && seen.filter((p) => p === request.path).length === 1) {
          await write(conn, head("503 Service Unavailable", 0));
        } else if (body !== undefined) {
          if (family === "gfx1151") await retryGate.promise;
          await write(conn, head("200 OK", body.length));
          const half = family === "gfx110X-all" ? body.length / 2 : body.length;
          await write(conn, body.subarray(0, half));
          if (half < body.length) {
            await halfGate.promise;
            await write(conn, body.subarray(half));
          }
        } else {
          await write(conn, head("404 Not Found", 0));
        }
      };
      const connections: Promise<void>[] = [];
      const accepting = (async () => {
        for await (const conn of listener) {
          connections.push(serve(conn).catch(() => {}).finally(() => conn.close()));
        }
      })().catch(() => {});

      const flake = join(dir, "flake.nix");
      await Deno.writeTextFile(
        flake,
        `{\n  nightly = {\n    baseUrl = "${origin}/tarball/";\n    version = "7.12.0a20260308";\n` +
          `    srcHashes = {\n      gfx1151 = null;\n      gfx110X-all = null;\n` +
          `      gfx120X-all = null;\n    };\n  };\n}\n`,
      );
      const socket = join(dir, "tmux.sock");
      // Deno's own cache stays the runner's (its npm packages are there: a
      // fresh one would need the registry); the download cache is the test's.
      const tmuxEnv = {
        TERM: "xterm-256color",
        HOME: dir,
        DENO_DIR: denoDir(),
        XDG_CACHE_HOME: join(dir, "cache"),
      };
      const command = [
        Deno.execPath(),
        "run",
        "--allow-net",
        "--allow-read",
        "--allow-write",
        "--allow-run=nix-store,nix-daemon,sh",
        "--allow-env",
        join(repoRoot, "scripts", "update.ts"),
        ...["--flake", flake, "--index", `${origin}/tarball/`, "--jobs", "1", "--no-add-to-store"],
      ].map(quote).join(" ");
      const started = await run("tmux", [
        ...["-S", socket, "-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "40"],
        `${command}; echo "update exited $?"; sleep 600`,
      ], { env: tmuxEnv });
      assert.equal(started.code, 0, started.stderr);
      const pane = async (): Promise<string> =>
        (await run("tmux", ["-S", socket, "capture-pane", "-p"], { env: tmuxEnv })).stdout;
      /** Captures the pane until `ready` holds (at most 30 s, 300 captures). */
      const when = async (what: string, ready: (text: string) => boolean): Promise<string> => {
        let text = "";
        for (let i = 0; i < 300; i++) {
          text = await pane();
          if (ready(text)) return text;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        throw new Error(`the pane never showed ${what}; it shows:\n${text}`);
      };
      try {
        // gfx1151 failed once and waits for its retry; the others are queued.
        let text = await when("retry 1/5", (t) => /retry 1\/5 +gfx1151/.test(t));
        assert.match(text, /^queued {2}gfx110X-all *$/m);
        assert.match(text, /^queued {2}gfx120X-all *$/m);
        assert.match(text, /gfx1151: retry 1\/5 from 0 B: .*503/);
        assert.doesNotMatch(text, /retry 2\/6/);
        retryGate.resolve();

        // gfx1151's final frame is drawn while gfx110X-all is halfway and gfx120X-all queued.
        const hashA = await sha256Sri(bodies.gfx1151!);
        text = await when("gfx1151 done", (t) => /^done .*gfx1151/m.test(t));
        assert.match(text, /^done {4}292\.97 KiB in \d+:\d\d {2}gfx1151 {2}sha256-\S+/m);
        assert.ok(text.includes(hashA), text);
        text = await when("gfx110X-all halfway", (t) => / 50% .*gfx110X-all/.test(t));
        assert.match(text, /^done .*gfx1151/m);
        assert.match(text, /^queued {2}gfx120X-all *$/m);
        assert.doesNotMatch(text, /update exited/);
        halfGate.resolve();

        // The end: three final frames, each with its size and hash, and the exit.
        text = await when("the end", (t) => /update exited \d+/.test(t));
        assert.match(text, /update exited 0/);
        for (const [family, body] of Object.entries(bodies)) {
          const line = text.split("\n").find((l) => l.startsWith("done") && l.includes(family));
          assert.ok(line !== undefined, `no final frame for ${family}:\n${text}`);
          assert.ok(line.includes(await sha256Sri(body)), line);
        }
        assert.doesNotMatch(text, /queued|%/);
      } finally {
        retryGate.resolve();
        halfGate.resolve();
        await run("tmux", ["-S", socket, "kill-server"], { env: tmuxEnv });
        listener.close();
        await accepting;
        await Promise.all(connections);
      }
    }),
});
