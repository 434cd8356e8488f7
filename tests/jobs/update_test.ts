import assert from "node:assert/strict";
import { join } from "node:path";
import {
  buildSampleTarball,
  type DemoMirrorOptions,
  type MirrorFile,
} from "../../lib/jobs/demo_mirror.ts";
import { canLockIfFree } from "../../lib/fs/cleanup.ts";
import { acquireLock, LockHeldError } from "../../lib/fs/file_lock.ts";
import { formatUpdateReport } from "../../lib/jobs/update.ts";
import { nixEnv, repoRoot, requireTools, run, sriOf } from "../_tools.ts";
import { type Fixture, updateFixture } from "../_update_fixture.ts";

const OLD_HASH = "sha256-rUhZSqJaTpuc2l6D1Q29oC0yTcTRRU/NO/JAFxaaVRA=";
const REGISTRY = `# A registry as flake.nix holds it, valid standalone Nix.
{
  nightly = {
    baseUrl = "https://rocm.nightlies.amd.com/tarball/";
    version = "7.12.0a20260308";
    srcHashes = {
      gfx1151 = "${OLD_HASH}";
      gfx110X-all = null; # not fetched yet
    };
  };
  # Look-alikes outside the registry stay as they are.
  other = { version = "7.12.0a20260308"; hash = "${OLD_HASH}"; };
}
`;

const name = (family: string, version: string): string =>
  `therock-dist-linux-${family}-${version}.tar.gz`;
const bytesOf = (text: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(text);
const tarballRequests = (requests: string[]): string[] =>
  requests.filter((path) => path.endsWith(".tar.gz"));

function fixture(
  files: MirrorFile[],
  registry = REGISTRY,
  mirrorOptions: DemoMirrorOptions = {},
): Promise<Fixture> {
  return updateFixture(files, registry, mirrorOptions);
}

// Small generated tarballs: one real sample, the rest distinct bytes.
const sample = await buildSampleTarball({ isas: ["gfx1151"], version: "7.12.0a20260310" });
const other = bytesOf("gfx110X-all tarball bytes\n");

function standardIndex(): MirrorFile[] {
  return [
    { name: name("gfx1151", "7.12.0a20260308"), mtime: 1 },
    { name: name("gfx110X-all", "7.12.0a20260308"), mtime: 1 },
    { name: name("gfx1151", "7.12.0a20260310"), mtime: 2, body: sample },
    { name: name("gfx110X-all", "7.12.0a20260310"), mtime: 2, body: other },
    { name: name("gfx1151", "7.12.0a20260311"), mtime: 3, body: sample },
    { name: name("gfx1151", "7.12.0a20260311").replace("linux", "windows"), mtime: 3 },
  ];
}

Deno.test("updateFlake() moves every target to the newest common release", async () => {
  await using f = await fixture(standardIndex());
  const result = await f.update();
  assert.equal(result.oldVersion, "7.12.0a20260308");
  assert.equal(result.newVersion, "7.12.0a20260310");
  assert.equal(result.newBaseUrl, f.mirror.baseUrl);
  assert.deepEqual(result.heldBack, { version: "7.12.0a20260311", by: ["gfx110X-all"] });
  assert.equal(result.commitMessage, "rocm-nightly: 7.12.0a20260308 -> 7.12.0a20260310");
  const expected = REGISTRY
    .replace(
      'baseUrl = "https://rocm.nightlies.amd.com/tarball/"',
      `baseUrl = "${f.mirror.baseUrl}"`,
    )
    .replace('    version = "7.12.0a20260308"', '    version = "7.12.0a20260310"')
    .replace(`gfx1151 = "${OLD_HASH}"`, `gfx1151 = "${sriOf(sample)}"`)
    .replace("gfx110X-all = null", `gfx110X-all = "${sriOf(other)}"`);
  assert.equal(await Deno.readTextFile(f.flake), expected);
  assert.ok(result.diff.includes(`+      gfx1151 = "${sriOf(sample)}";`));
  assert.deepEqual(tarballRequests(f.mirror.requests).sort(), [
    `/tarball/${name("gfx110X-all", "7.12.0a20260310")}`,
    `/tarball/${name("gfx1151", "7.12.0a20260310")}`,
  ]);
  // No lock file is left behind.
  assert.deepEqual([...Deno.readDirSync(f.dir)].map((e) => e.name), ["flake.nix"]);
});

Deno.test("updateFlake() downloads nothing when already current", async () => {
  await using f = await fixture(standardIndex());
  await f.update();
  const before = await Deno.readFile(f.flake);
  const mtime = (await Deno.stat(f.flake)).mtime;
  const requests = f.mirror.requests.length;
  const again = await f.update();
  assert.equal(again.current, true);
  assert.equal(again.commitMessage, null);
  assert.deepEqual(f.mirror.requests.slice(requests), ["/tarball/"]);
  assert.deepEqual(await Deno.readFile(f.flake), before);
  assert.deepEqual((await Deno.stat(f.flake)).mtime, mtime);
});

Deno.test("updateFlake() leaves the flake byte for byte when one tarball 404s", async () => {
  const files = standardIndex().map((file) =>
    file.name === name("gfx110X-all", "7.12.0a20260310") ? { ...file, body: undefined } : file
  ) as MirrorFile[];
  await using f = await fixture(files);
  const before = await Deno.readFile(f.flake);
  await assert.rejects(
    f.update(),
    /fetching gfx110X-all \(7.12.0a20260310\) failed, nothing was written: .*404.*pass --skip 7.12.0a20260310/,
  );
  assert.deepEqual(await Deno.readFile(f.flake), before);
  assert.deepEqual([...Deno.readDirSync(f.dir)].map((e) => e.name), ["flake.nix"]);
});

Deno.test("updateFlake() --dry-run lists but neither downloads nor writes", async () => {
  await using f = await fixture(standardIndex());
  const before = await Deno.readFile(f.flake);
  const result = await f.update({ dryRun: true });
  assert.equal(result.dryRun, true);
  assert.equal(result.newVersion, "7.12.0a20260310");
  assert.deepEqual(result.targets.map((t) => t.action), ["would-fetch", "would-fetch"]);
  assert.deepEqual(tarballRequests(f.mirror.requests), []);
  assert.deepEqual(await Deno.readFile(f.flake), before);
});

Deno.test("updateFlake() refuses while another update holds the lock", async () => {
  await using f = await fixture(standardIndex());
  const lockPath = join(f.dir, ".flake.nix.update-lock");
  {
    await using _held = await acquireLock(lockPath);
    await assert.rejects(f.update(), LockHeldError);
    assert.deepEqual(f.mirror.requests, []);
  }
  // A lock left by a process that is gone is stale and taken over.
  const gone = new Deno.Command("true").spawn();
  await gone.status;
  await Deno.writeTextFile(lockPath, JSON.stringify({ pid: gone.pid }));
  if (!canLockIfFree) {
    // Before Deno 2.7 no holder can be proved gone: the lock is respected.
    await assert.rejects(f.update(), LockHeldError);
    return;
  }
  const result = await f.update();
  assert.equal(result.newVersion, "7.12.0a20260310");
  await assert.rejects(Deno.stat(lockPath), Deno.errors.NotFound);
});

Deno.test("updateFlake() never lets hostile index names reach a URL or the file", async () => {
  const hostile = [
    'therock-dist-linux-gfx1151-7.12.0a20260312"; evil = "x.tar.gz',
    "therock-dist-linux-gfx1151-7.12.0a20260312${builtins.abort 1}.tar.gz",
    "therock-dist-linux-gfx1151-../../7.12.0a20260312.tar.gz",
    "../therock-dist-linux-gfx1151-7.12.0a20260312.tar.gz",
    "therock-dist-linux-gfx1151-7.12.0a20260312\n.tar.gz",
    "therock-dist-linux-gfx11'51-7.12.0a20260312.tar.gz",
  ];
  for (const format of ["therock", "s3", "autoindex"] as const) {
    const files = [...standardIndex(), ...hostile.map((n) => ({ name: n, mtime: 9, body: other }))];
    await using f = await fixture(files, REGISTRY, { format });
    const result = await f.update();
    assert.equal(result.newVersion, "7.12.0a20260310", format);
    const text = await Deno.readTextFile(f.flake);
    for (const bad of ["evil", "${builtins", "..", "abort", "'"]) {
      assert.ok(!text.includes(bad), `${format}: ${bad} reached the file`);
    }
    for (const path of tarballRequests(f.mirror.requests)) {
      assert.match(
        path,
        /^\/(tarball|bucket)\/therock-dist-linux-[A-Za-z0-9-]+-7\.12\.0a20260310\.tar\.gz$/,
      );
    }
  }
  // A target whose only tarballs have hostile names is simply not in the index.
  await using f = await fixture(hostile.map((n) => ({ name: n, body: other })));
  const before = await Deno.readFile(f.flake);
  await assert.rejects(f.update(), /not in the index \(families there: none\)/);
  assert.deepEqual(await Deno.readFile(f.flake), before);
});

Deno.test("updateFlake() follows an S3 listing and takes its folder as baseUrl", async () => {
  await using f = await fixture(standardIndex(), REGISTRY, {
    format: "s3",
    prefix: "v4/tarball/",
    pageSize: 2,
  });
  const result = await f.update();
  assert.equal(result.format, "s3");
  assert.ok(result.newBaseUrl.endsWith("/bucket/v4/tarball/"));
  assert.ok((await Deno.readTextFile(f.flake)).includes(`baseUrl = "${result.newBaseUrl}"`));
});

Deno.test("updateFlake() adds --target families and ISAs as new keys", async () => {
  const files = [
    ...standardIndex(),
    { name: name("gfx120X-all", "7.12.0a20260310"), body: bytesOf("rdna4") },
    { name: name("multiarch", "7.12.0a20260310"), body: bytesOf("multi") },
  ];
  await using f = await fixture(files);
  const result = await f.update({ targets: ["gfx1201", "multiarch"] });
  assert.deepEqual(result.targets.map((t) => t.target), [
    "gfx1151",
    "gfx110X-all",
    "gfx120X-all",
    "multiarch",
  ]);
  const text = await Deno.readTextFile(f.flake);
  assert.match(
    text,
    new RegExp(`gfx120X-all = "${sriOf(bytesOf("rdna4")).replaceAll("+", "\\+")}";`),
  );
  assert.ok(text.includes(`multiarch = "${sriOf(bytesOf("multi"))}";`));
  await assert.rejects(f.update({ targets: ["gfx94X-dcgpu"] }), /"gfx94X-dcgpu": not in the index/);
});

Deno.test("updateFlake() pins targets missing from a new index to null", async () => {
  const registry = REGISTRY.replace(
    "gfx110X-all = null; # not fetched yet",
    `multiarch = "${OLD_HASH}";`,
  );
  const files = [{ name: name("multiarch", "10.0.0a20260815"), body: bytesOf("multi") }];
  await using f = await fixture(files, registry);
  const result = await f.update();
  assert.equal(result.newVersion, "10.0.0a20260815");
  assert.deepEqual(result.warnings, ["gfx1151: not in the index → null (not available)"]);
  const text = await Deno.readTextFile(f.flake);
  assert.ok(text.includes("gfx1151 = null;"));
  assert.ok(text.includes(`multiarch = "${sriOf(bytesOf("multi"))}";`));
});

Deno.test("updateFlake() refuses to go back without --version", async () => {
  const files = [
    { name: name("gfx1151", "7.12.0a20260301"), body: sample },
    { name: name("gfx110X-all", "7.12.0a20260301"), body: other },
  ];
  await using f = await fixture(files);
  const before = await Deno.readFile(f.flake);
  await assert.rejects(f.update(), /older than the pinned "7\.12\.0a20260308"/);
  assert.deepEqual(await Deno.readFile(f.flake), before);
  const result = await f.update({ version: "7.12.0a20260301" });
  assert.equal(result.newVersion, "7.12.0a20260301");
});

Deno.test("updateFlake() refuses to overwrite edits made during the downloads", async () => {
  await using f = await fixture(standardIndex());
  const edited = `${REGISTRY}# edited meanwhile\n`;
  await assert.rejects(
    f.update({ onStart: () => Deno.writeTextFileSync(f.flake, edited) }),
    /the file changed since it was read/,
  );
  assert.equal(await Deno.readTextFile(f.flake), edited);
});

const script = join(repoRoot, "scripts", "update.ts");
const permissions = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-run=nix-store,nix-daemon,sh",
];

Deno.test("update.ts leaves the flake unchanged when killed mid-download", async () => {
  // 1 MiB in 16 KiB chunks every 100 ms: the download takes over 6 seconds.
  const slow = new Uint8Array(1024 * 1024).fill(7);
  const files = standardIndex().map((file) =>
    file.body ? { ...file, body: slow, chunkDelayMs: 100 } : file
  );
  await using f = await fixture(files);
  const before = await Deno.readFile(f.flake);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", ...permissions, script, "--flake", f.flake, "--index", f.mirror.indexUrl],
      ...["--no-add-to-store", "--no-cache"],
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const deadline = Date.now() + 30_000;
    while (tarballRequests(f.mirror.requests).length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(tarballRequests(f.mirror.requests).length > 0, "the download never started");
    await new Promise((resolve) => setTimeout(resolve, 300));
  } finally {
    child.kill("SIGKILL");
  }
  const status = await child.status;
  assert.equal(status.signal, "SIGKILL");
  assert.deepEqual(await Deno.readFile(f.flake), before);
  // The killed process left its lock; the next update takes it over as stale.
  const lockPath = join(f.dir, ".flake.nix.update-lock");
  assert.equal(JSON.parse(await Deno.readTextFile(lockPath)).pid, child.pid);
  // (Before Deno 2.7 no holder can be proved gone: the lock is respected.)
  if (!canLockIfFree) await assert.rejects(acquireLock(lockPath), LockHeldError);
  else await (await acquireLock(lockPath)).release();
});

Deno.test("update.ts exits 0/1/2 and prints one error line", async () => {
  const files = standardIndex().map((file) =>
    file.name.includes("110X") ? { ...file, body: undefined } : file
  ) as MirrorFile[];
  await using f = await fixture(files);
  const cli = (...args: string[]) => run(Deno.execPath(), ["run", ...permissions, script, ...args]);
  const help = await cli("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Example/);
  assert.equal((await cli("--jobs", "0")).code, 2);
  assert.equal((await cli("--version", "7.12")).code, 2);
  assert.equal((await cli("--bogus")).code, 2);
  const dry = await cli("--flake", f.flake, "--index", f.mirror.indexUrl, "--dry-run", "--json");
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal(JSON.parse(dry.stdout).newVersion, "7.12.0a20260310");
  const failed = await cli(
    ...["--flake", f.flake, "--index", f.mirror.indexUrl, "--no-progress"],
    ...["--no-add-to-store", "--no-cache"],
  );
  assert.equal(failed.code, 1);
  assert.equal(failed.stderr.trim().split("\n").length, 1, failed.stderr);
  assert.match(
    failed.stderr,
    /^update: Cannot update: fetching gfx110X-all \(7.12.0a20260310\) failed/,
  );
  assert.equal(await Deno.readTextFile(f.flake), REGISTRY);
});

const nix = await requireTools(
  "update tests that evaluate the rewritten registry",
  "nix",
  "nix-instantiate",
);

Deno.test({
  name: "updateFlake() output parses and evaluates in Nix",
  ignore: !nix,
  fn: async () => {
    await using f = await fixture(standardIndex());
    await f.update();
    const parse = await run("nix-instantiate", ["--parse", f.flake], { env: nixEnv() });
    assert.equal(parse.code, 0, parse.stderr);
    const evaluated = await run(
      "nix",
      ["eval", "--json", "--file", f.flake, "nightly"],
      { env: nixEnv() },
    );
    assert.equal(evaluated.code, 0, evaluated.stderr);
    assert.deepEqual(JSON.parse(evaluated.stdout), {
      baseUrl: f.mirror.baseUrl,
      version: "7.12.0a20260310",
      srcHashes: { gfx1151: sriOf(sample), "gfx110X-all": sriOf(other) },
    });
    // The project's flake.nix, updated the same way, still parses.
    const real = join(repoRoot, "flake.nix");
    try {
      await Deno.copyFile(real, f.flake);
    } catch {
      return; // no flake.nix yet
    }
    // Its nightly pins a newer release than this index has: go back explicitly.
    await f.update({ version: "7.12.0a20260310" });
    const reparse = await run("nix-instantiate", ["--parse", f.flake], { env: nixEnv() });
    assert.equal(reparse.code, 0, reparse.stderr);
  },
});

Deno.test({
  name: "updateFlake() --add-to-store seeds the store under the fetchurl name",
  ignore: !nix,
  fn: async () => {
    await using f = await fixture(standardIndex());
    const result = await f.update({ addToStore: true });
    for (const target of result.targets) {
      assert.match(target.storePath ?? "", /^\/nix\/store\/[a-z0-9]{32}-therock-dist-linux-/);
      assert.ok(target.storePath!.endsWith("-7.12.0a20260310.tar.gz"));
      const valid = await run("nix-store", ["--check-validity", target.storePath!], {
        env: nixEnv(),
      });
      assert.equal(valid.code, 0, valid.stderr);
    }
  },
});

Deno.test("formatUpdateReport() prints target: old → new lines", async () => {
  const registry = REGISTRY.replace(
    "gfx110X-all = null; # not fetched yet",
    "gfx110X-all = null;\n      multiarch = null;",
  );
  await using f = await fixture(standardIndex(), registry);
  const dry = formatUpdateReport(await f.update({ dryRun: true, targets: ["gfx1100"] }));
  assert.ok(dry.includes("version: 7.12.0a20260308 → 7.12.0a20260310\n"), dry);
  assert.ok(
    dry.includes(
      `gfx1151: ${OLD_HASH} → (fetch ${f.mirror.baseUrl}${name("gfx1151", "7.12.0a20260310")})`,
    ),
    dry,
  );
  assert.ok(!dry.includes("multiarch"), dry);
  assert.ok(
    dry.includes(
      "would change; suggested commit message:\n  rocm-nightly: 7.12.0a20260308 -> 7.12.0a20260310",
    ),
    dry,
  );
  const done = formatUpdateReport(await f.update());
  assert.ok(done.includes(`gfx110X-all: null → ${sriOf(other)}`), done);
  assert.ok(done.includes("held back: 7.12.0a20260311 is not available for gfx110X-all"), done);
  assert.equal(
    formatUpdateReport(await f.update()),
    `${f.flake} is up to date: 7.12.0a20260310\nheld back: 7.12.0a20260311 is not available for gfx110X-all`,
  );
});

// --- one target at a time (#21.3) ---

const TWO_PINNED = REGISTRY.replace(
  "gfx110X-all = null; # not fetched yet",
  `gfx110X-all = "${sriOf(other)}";`,
);

/** What nix/resolve.nix makes of a flake's nightly set: each target's URL, hash and version. */
async function resolved(flake: string, targets: string[]): Promise<Record<string, unknown>> {
  const expr = `let
    registry = (import ${flake}).nightly;
    table = builtins.fromJSON (builtins.readFile ${repoRoot}/lib/releases/targets.json);
    r = import ${repoRoot}/nix/resolve.nix { inherit registry; targets = table; };
  in builtins.listToAttrs (map (t: { name = t; value = { inherit (r.resolve t) url hash version; }; })
    ${JSON.stringify(targets).replaceAll(",", " ")})`;
  const result = await run("nix", ["eval", "--json", "--impure", "--expr", expr], {
    env: nixEnv(),
  });
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

Deno.test({
  name: "updateFlake() only: moves the named target alone, every pin stays true in nix eval",
  ignore: !nix,
  fn: async () => {
    await using f = await fixture(standardIndex(), TWO_PINNED);
    const base = f.mirror.baseUrl;
    await Deno.writeTextFile(
      f.flake,
      TWO_PINNED.replace("https://rocm.nightlies.amd.com/tarball/", base),
    );
    const result = await f.update({ only: ["gfx1151"] });
    assert.equal(result.channelVersion, "7.12.0a20260308");
    assert.equal(result.newVersion, "7.12.0a20260311");
    assert.equal(result.commitMessage, "rocm-nightly: gfx1151 -> 7.12.0a20260311");
    const text = await Deno.readTextFile(f.flake);
    assert.ok(text.includes('\n    version = "7.12.0a20260308";'), text);
    assert.match(text, /versions\.gfx1151 = "7\.12\.0a20260311";/);
    assert.match(text, new RegExp(`gfx110X-all = "${sriOf(other).replace(/[+/]/g, "\\$&")}";`));
    assert.deepEqual(tarballRequests(f.mirror.requests), [
      `/tarball/${name("gfx1151", "7.12.0a20260311")}`,
    ]);
    assert.deepEqual(await resolved(f.flake, ["gfx1151", "gfx110X-all"]), {
      gfx1151: {
        url: `${base}${name("gfx1151", "7.12.0a20260311")}`,
        hash: sriOf(sample),
        version: "7.12.0a20260311",
      },
      "gfx110X-all": {
        url: `${base}${name("gfx110X-all", "7.12.0a20260308")}`,
        hash: sriOf(other),
        version: "7.12.0a20260308",
      },
    });
  },
});

Deno.test("updateFlake() only: with no other pin the channel's version moves; an untracked name is refused", async () => {
  const local = REGISTRY.replace("https://rocm.nightlies.amd.com/tarball/", "BASE");
  await using f = await fixture(standardIndex(), local);
  const text = local.replace("BASE", f.mirror.baseUrl);
  await Deno.writeTextFile(f.flake, text);
  // gfx110X-all has no hash: the channel's version itself moves.
  const result = await f.update({ only: ["gfx1151"] });
  assert.equal(result.channelVersion, "7.12.0a20260311");
  assert.doesNotMatch(await Deno.readTextFile(f.flake), /versions/);
  await assert.rejects(f.update({ only: ["gfx1030"] }), /not tracked in nightly\.srcHashes/);
});

Deno.test("updateFlake() of every target moves version and resets versions.<target>", async () => {
  const pinnedApart = TWO_PINNED.replace(
    "    srcHashes = {",
    '    versions.gfx1151 = "7.12.0a20260309";\n    srcHashes = {',
  );
  await using f = await fixture(standardIndex(), pinnedApart);
  const result = await f.update();
  assert.equal(result.channelVersion, "7.12.0a20260310");
  const text = await Deno.readTextFile(f.flake);
  assert.match(text, /versions\.gfx1151 = null;/);
  assert.ok(text.includes('\n    version = "7.12.0a20260310";'), text);
});

Deno.test("updateFlake() with a cache keeps a failed run's work; the rerun continues by Range", async () => {
  const { startFileServer } = await import("../_server.ts");
  const { renderTheRockIndex } = await import("../../lib/jobs/demo_mirror.ts");
  const { DownloadCache } = await import("../../lib/fetch/download_cache.ts");
  const big = new Uint8Array(300_000).map((_, i) => (i * 7) % 251);
  const first = name("gfx1151", "7.12.0a20260310");
  const second = name("gfx110X-all", "7.12.0a20260310");
  const page = bytesOf(renderTheRockIndex([{ name: first, mtime: 2 }, { name: second, mtime: 2 }]));
  await using server = startFileServer({
    routes: {
      "/tarball/": { body: page, contentType: "text/html" },
      [`/tarball/${first}`]: { body: sample, headers: { ETag: '"a"' } },
      // The first request is cut after 100 000 bytes; later ones are whole.
      [`/tarball/${second}`]: {
        body: big,
        headers: { ETag: '"b"' },
        resetAfter: 100_000,
        faultTimes: 1,
      },
    },
  });
  await using f = await fixture([], REGISTRY);
  const cacheDir = join(f.dir, "cache");
  const cache = await DownloadCache.open(cacheDir);
  const options = { index: server.url("/tarball/"), cache, jobs: 1, retries: 0 };
  const before = await Deno.readTextFile(f.flake);
  await assert.rejects(
    f.update(options),
    /fetching gfx110X-all \(7\.12\.0a20260310\) failed, nothing was written \(what was received is kept in the download cache: a rerun continues it\): .*; gfx1151 is in the download cache$/,
  );
  assert.equal(await Deno.readTextFile(f.flake), before);
  const count = server.requests.length;
  await f.update(options);
  const rerun = server.requests.slice(count).filter((r) => r.path.endsWith(".tar.gz"));
  // The finished file: only its last byte, to confirm it; the cut one: from where it stopped.
  assert.deepEqual(rerun.map((r) => [r.path, r.headers["range"], r.headers["if-range"]]), [
    [`/tarball/${first}`, `bytes=${sample.length - 1}-`, '"a"'],
    [`/tarball/${second}`, "bytes=100000-", '"b"'],
  ]);
  const text = await Deno.readTextFile(f.flake);
  assert.ok(text.includes(`gfx1151 = "${sriOf(sample)}"`));
  assert.ok(text.includes(`gfx110X-all = "${sriOf(big)}"`));
  // Entries go once the flake holds their hashes.
  assert.deepEqual(
    [...Deno.readDirSync(cacheDir)].map((e) => e.name).filter((n) => !n.startsWith(".")),
    [],
  );
});

// --- into the store by default (#21.4) ---

Deno.test({
  name: "update.ts adds to the store by default; with none usable it says so once and continues",
  ignore: !nix,
  fn: async () => {
    const { startFileServer } = await import("../_server.ts");
    const { renderTheRockIndex } = await import("../../lib/jobs/demo_mirror.ts");
    const { deleteStorePath, fixedOutputPath, isValidStorePath } = await import(
      "../../lib/store/nix_store.ts"
    );
    const { parseSri } = await import("../../lib/hash/hash.ts");
    const { denoDir } = await import("../faults/_harness.ts");
    const shebang = (await Deno.readTextFile(script)).split("\n", 1)[0]!.split(" ")
      .filter((word) => word.startsWith("--allow-"));
    for (const usable of [true, false]) {
      const body = crypto.getRandomValues(new Uint8Array(4096));
      const file = name("gfx110X-all", "7.12.0a20260310");
      await using server = startFileServer({
        routes: {
          "/tarball/": {
            body: bytesOf(renderTheRockIndex([{ name: file, mtime: 2 }])),
            contentType: "text/html",
          },
          [`/tarball/${file}`]: { body, headers: { ETag: '"x"' } },
        },
      });
      await using f = await fixture([], REGISTRY.replace(/gfx1151 = "[^"]*";\n/, ""));
      const storePath = fixedOutputPath(file, parseSri(sriOf(body)));
      try {
        const result = await run(Deno.execPath(), [
          ...["run", ...shebang, script, "--flake", f.flake, "--index", server.url("/tarball/")],
        ], {
          env: {
            ...nixEnv(),
            XDG_CACHE_HOME: join(f.dir, "cache"),
            DENO_DIR: denoDir(),
            ...(usable
              ? {}
              : { NIX_REMOTE: "daemon", NIX_DAEMON_SOCKET_PATH: join(f.dir, "none") }),
          },
        });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(await isValidStorePath(storePath), usable);
        const lines = result.stderr.split("\n").filter((line) => line !== "");
        assert.deepEqual(
          lines.map((line) => line.replace(/(to the Nix store): .*/, "$1")),
          usable ? [] : ["update: not adding to the Nix store"],
          result.stderr,
        );
      } finally {
        if (usable) await deleteStorePath(storePath);
      }
    }
  },
});
