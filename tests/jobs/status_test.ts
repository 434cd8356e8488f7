// status: pins checked against loopback servers — a pin 404ing on the
// primary but kept by a mirror, a pin gone everywhere, an unreachable mirror.
import assert from "node:assert/strict";
import { join } from "node:path";
import { renderTheRockIndex } from "../../lib/jobs/demo_mirror.ts";
import { flakeStatus, formatStatusReport } from "../../lib/jobs/status.ts";
import { type Route, startFileServer } from "../_server.ts";
import { repoRoot, run } from "../_tools.ts";

const HASH = "sha256-JWfV405HDbEEpioCw2qncMsEMBdeSMHEbfDu/AXh13w=";
const name = (family: string, version: string): string =>
  `therock-dist-linux-${family}-${version}.tar.gz`;

function registry(primary: string, mirrors: string[]): string {
  const list = mirrors.map((m) => `"${m}"`).join(" ");
  return `{
  nightly = {
    baseUrl = "${primary}";
    version = "7.12.0a20260308";
    srcHashes = {
      gfx1151 = "${HASH}";
      gfx110X-all = "${HASH}";
      multiarch = null;
    };
    mirrors = [ ${list} ];
    skip = [ "7.12.0a20260311" ];
  };
  stable = {
    baseUrl = "${primary}";
    version = "7.14.0";
    srcHashes = { gfx1151 = "${HASH}"; };
  };
}
`;
}

const kept = new Uint8Array(4321);

async function withFlake(
  text: string,
  fn: (flake: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "status-test-" });
  try {
    const flake = join(dir, "flake.nix");
    await Deno.writeTextFile(flake, text);
    await fn(flake);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function primaryRoutes(gfx1151: Route): Record<string, Route> {
  const files = [
    { name: name("gfx1151", "7.12.0a20260308"), mtime: 1 },
    { name: name("gfx110X-all", "7.12.0a20260308"), mtime: 1 },
    { name: name("gfx1151", "7.12.0a20260310"), mtime: 2 },
    { name: name("gfx110X-all", "7.12.0a20260310"), mtime: 2 },
    { name: name("gfx1151", "7.12.0a20260311"), mtime: 3 },
    { name: name("gfx110X-all", "7.12.0a20260311"), mtime: 3 },
  ];
  return {
    "/tarball/": {
      body: new TextEncoder().encode(renderTheRockIndex(files)),
      contentType: "text/html",
    },
    [`/tarball/${name("gfx1151", "7.12.0a20260308")}`]: gfx1151,
    [`/tarball/${name("gfx110X-all", "7.12.0a20260308")}`]: { body: kept },
    [`/tarball/${name("gfx1151", "7.14.0")}`]: {
      body: kept,
      headers: { "Last-Modified": new Date(Date.UTC(2026, 0, 1)).toUTCString() },
    },
  };
}

const script = join(repoRoot, "scripts", "status.ts");
const cli = (...args: string[]) =>
  run(Deno.execPath(), ["run", "--allow-net", "--allow-read", script, ...args]);

Deno.test("flakeStatus() passes a pin 404ing on the primary but kept by a mirror, with a warning", async () => {
  await using primary = startFileServer({ routes: primaryRoutes({ status: 404 }) });
  await using mirror = startFileServer({
    routes: {
      [`/keep/${name("gfx1151", "7.12.0a20260308")}`]: { body: kept },
      [`/keep/${name("gfx110X-all", "7.12.0a20260308")}`]: { body: new Uint8Array(7) },
    },
  });
  await withFlake(registry(primary.url("/tarball/"), [mirror.url("/keep/")]), async (flake) => {
    const report = await flakeStatus({ flake, now: Date.UTC(2026, 2, 18, 12) });
    assert.deepEqual(report.gone, []);
    const nightly = report.channels[0]!;
    assert.equal(nightly.channel, "nightly");
    assert.equal(nightly.ageDays, 10);
    // The newest the index offers for every tracked target, 0311 being skipped.
    assert.equal(nightly.newest, "7.12.0a20260310");
    const gfx1151 = nightly.targets.find((t) => t.target === "gfx1151")!;
    assert.deepEqual(gfx1151.urls.map((u) => [u.state, u.size]), [["gone", undefined], [
      "ok",
      4321,
    ]]);
    assert.deepEqual(nightly.targets.find((t) => t.target === "multiarch"), {
      target: "multiarch",
      hash: null,
      version: null,
      ageDays: null,
      urls: [],
      gone: false,
    });
    assert.deepEqual(report.unverified, []);
    assert.deepEqual(report.warnings, [
      `nightly.gfx1151: ${
        primary.url(`/tarball/${name("gfx1151", "7.12.0a20260308")}`)
      } HTTP 404 (gone); served by the mirror ${
        mirror.url(`/keep/${name("gfx1151", "7.12.0a20260308")}`)
      }`,
      `nightly.gfx110X-all: mirror ${
        mirror.url(`/keep/${name("gfx110X-all", "7.12.0a20260308")}`)
      } serves 7 bytes, the primary 4321`,
    ]);
    // A stable version has no date: the age comes from Last-Modified.
    const stable = report.channels[1]!;
    assert.equal(
      stable.ageDays,
      Math.floor((Date.UTC(2026, 2, 18, 12) - Date.UTC(2026, 0, 1)) / 86400000),
    );
    assert.match(
      formatStatusReport(report),
      /^nightly 7.12.0a20260308 \(10 days old; newest in its index: 7.12.0a20260310\)\n {2}gfx1151: ok\n/,
    );

    // Near AMD's 120-day retention, the nightly's age is a warning too.
    const old = await flakeStatus({ flake, channels: ["nightly"], now: Date.UTC(2026, 5, 20) });
    assert.ok(
      old.warnings.some((w) => /^nightly 7.12.0a20260308 is 104 days old: AMD keeps/.test(w)),
    );
    assert.ok(!report.warnings.some((w) => w.includes("days old")));

    const result = await cli("--flake", flake, "--channel", "nightly");
    assert.equal(result.code, 0, result.stderr);
    // Each finding once, on stdout; stderr only the summary.
    // (2 warnings, or 3 once today is 90 days past the pinned nightly.)
    assert.match(result.stderr, /^status: every pin is served; [23] warnings in the report\n$/);
    const lines = result.stdout.split("\n");
    const gone = primary.url(`/tarball/${name("gfx1151", "7.12.0a20260308")}`);
    assert.deepEqual(lines.filter((l) => l.includes(gone)), [`    ${gone}: HTTP 404 (gone)`]);
    const smaller = mirror.url(`/keep/${name("gfx110X-all", "7.12.0a20260308")}`);
    assert.deepEqual(lines.filter((l) => l.includes(smaller)), [
      `    mirror ${smaller}: serves 7 bytes, the primary 4321`,
    ]);
    assert.doesNotMatch(result.stdout, /stable/);
  });
});

Deno.test("flakeStatus() ages each pin by the version pinned for its target; the channel by its oldest", async () => {
  // gfx1151 stays at an older nightly (versions.gfx1151) while the channel moved on.
  const files = [
    { name: name("gfx1151", "7.12.0a20251201"), mtime: 1 },
    { name: name("gfx110X-all", "7.12.0a20260308"), mtime: 2 },
  ];
  const routes: Record<string, Route> = {
    "/tarball/": {
      body: new TextEncoder().encode(renderTheRockIndex(files)),
      contentType: "text/html",
    },
  };
  for (const file of files) routes[`/tarball/${file.name}`] = { body: kept };
  await using primary = startFileServer({ routes });
  const text = registry(primary.url("/tarball/"), []).replace(
    "    mirrors = [",
    '    versions = { gfx1151 = "7.12.0a20251201"; };\n    mirrors = [',
  );
  await withFlake(text, async (flake) => {
    const now = Date.UTC(2026, 2, 18, 12);
    const report = await flakeStatus({ flake, channels: ["nightly"], now });
    const nightly = report.channels[0]!;
    const pin = (target: string) => nightly.targets.find((t) => t.target === target)!;
    assert.deepEqual([pin("gfx1151").version, pin("gfx1151").ageDays], ["7.12.0a20251201", 107]);
    assert.deepEqual([pin("gfx110X-all").version, pin("gfx110X-all").ageDays], [
      "7.12.0a20260308",
      10,
    ]);
    // The channel's age is the pin AMD deletes first.
    assert.equal(nightly.ageDays, 107);
    assert.deepEqual(report.gone, []);
    assert.deepEqual(report.warnings, [
      "nightly 7.12.0a20251201 (gfx1151) is 107 days old: AMD keeps nightlies for about 120 days (`update` moves to a newer one)",
    ]);
    const lines = formatStatusReport(report).split("\n");
    assert.match(lines[0]!, /^nightly 7\.12\.0a20260308 \(oldest pin 107 days old; /);
    assert.equal(lines[1], `  warning: ${report.warnings[0]}`);
    assert.ok(lines.includes("  gfx1151 (7.12.0a20251201, 107 days old): ok"), lines.join("\n"));
    assert.ok(lines.includes("  gfx110X-all: ok"), lines.join("\n"));
  });
});

Deno.test("status.ts exits 1 when a pin is gone from every URL, or not verified: unreachable is neither gone nor ok", async () => {
  await using primary = startFileServer({ routes: primaryRoutes({ status: 410 }) });
  await using mirror = startFileServer({
    routes: { [`/keep/${name("gfx110X-all", "7.12.0a20260308")}`]: { body: kept } },
  });
  await withFlake(registry(primary.url("/tarball/"), [mirror.url("/keep/")]), async (flake) => {
    const result = await cli("--flake", flake, "--json");
    assert.equal(result.code, 1, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.deepEqual(report.gone, ["nightly.gfx1151"]);
    assert.match(result.stderr, /status: nightly.gfx1151 is gone from every URL/);
    const text = await cli("--flake", flake, "--channel", "nightly");
    assert.match(
      text.stdout,
      /gfx1151: GONE from every URL\n.*HTTP 410 \(gone\)\n.*HTTP 404 \(gone\)/,
    );
  });
  // The same pin with a mirror that cannot be reached: unreachable, not gone.
  const closed = startFileServer();
  const dead = closed.url("/keep/");
  await closed.close();
  await withFlake(registry(primary.url("/tarball/"), [dead]), async (flake) => {
    const report = await flakeStatus({ flake, channels: ["nightly"] });
    assert.deepEqual(report.gone, []);
    const gfx1151 = report.channels[0]!.targets.find((t) => t.target === "gfx1151")!;
    assert.deepEqual(gfx1151.urls.map((u) => u.state), ["gone", "unreachable"]);
    assert.ok(
      report.warnings.some((w) => /mirror .* unreachable: /.test(w)),
      report.warnings.join("\n"),
    );
    // Not gone, but not shown to be served either: not verified, and a failure.
    assert.deepEqual(report.unverified, ["nightly.gfx1151"]);
    assert.match(formatStatusReport(report), /gfx1151: NOT VERIFIED/);
    const result = await cli("--flake", flake, "--channel", "nightly");
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /status: nightly.gfx1151 is not verified/);
    assert.doesNotMatch(result.stderr, /gone from every URL/);
  });
});

Deno.test("status.ts exits 3 when nothing could be checked, printing each finding once", async () => {
  // Two listeners closed again: every URL is refused, the index too.
  const closed = [startFileServer(), startFileServer()];
  const [primary, mirror] = closed.map((s) => s.url("/tarball/"));
  for (const server of closed) await server.close();
  await withFlake(registry(primary!, [mirror!]), async (flake) => {
    const result = await cli("--flake", flake);
    assert.equal(result.code, 3, result.stderr);
    // One summary line on stderr, distinct from a lost pin's exit 1.
    const stderr = result.stderr.trimEnd().split("\n");
    assert.equal(stderr.length, 1, result.stderr);
    assert.match(
      stderr[0]!,
      /^status: nothing could be checked: none of the 5 pinned URLs answered \(.*(refused|Connection).*\); check the network/,
    );
    // The report still lists every URL once, each unreachable.
    const urls = result.stdout.split("\n").filter((l) => l.includes("therock-dist-linux-"));
    assert.equal(urls.length, 5, result.stdout);
    assert.equal(new Set(urls).size, 5);
    for (const line of urls) assert.match(line, /: unreachable: /);
    assert.match(result.stdout, /gfx1151: NOT VERIFIED/);
    const json = await cli("--flake", flake, "--json", "--channel", "stable");
    assert.equal(json.code, 3, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout).urls, { asked: 1, answered: 0 });
  });
  // One URL answering (a 404) is a check: the pin is gone (1), not "unchecked" (3).
  await using answering = startFileServer({ routes: {} });
  await withFlake(registry(answering.url("/tarball/"), [mirror!]), async (flake) => {
    const result = await cli("--flake", flake, "--channel", "stable");
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stderr, "status: stable.gfx1151 is gone from every URL\n");
  });
});

Deno.test("status.ts exits 2 on a bad command line", async () => {
  const bad = await cli("--channel", "beta");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /status: invalid --channel "beta"/);
  const help = await cli("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: status/);
});
