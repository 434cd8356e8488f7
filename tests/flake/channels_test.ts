// Channels in update: one channel rewritten and no byte of the others, skip
// lists, gates and mirrors, all against loopback servers.
import assert from "node:assert/strict";
import { join } from "node:path";
import { addChannel, channelsIn, readChannel, requireChannel } from "../../lib/flake/channels.ts";
import { buildSampleTarball, type MirrorFile } from "../../lib/jobs/demo_mirror.ts";
import { appendToList, MissingBindingError, readStringList } from "../../lib/flake/flake_edit.ts";
import { checkMirrors, probeUrl } from "../../lib/fetch/mirror_check.ts";
import { formatUpdateReport } from "../../lib/jobs/update.ts";
import { GateFailedError } from "../../lib/jobs/update_gate.ts";
import { startFileServer } from "../_server.ts";
import { nixEnv, pathExists, repoRoot, requireTools, run, sriOf, waitUntil } from "../_tools.ts";
import { type Fixture, updateFixture } from "../_update_fixture.ts";

const OLD_HASH = "sha256-rUhZSqJaTpuc2l6D1Q29oC0yTcTRRU/NO/JAFxaaVRA=";
const STABLE_HASH = "sha256-JWfV405HDbEEpioCw2qncMsEMBdeSMHEbfDu/AXh13w=";
const TWO_CHANNELS = `{
  nightly = {
    baseUrl = "https://nightly.repo.amd.com/rocm/core/tarball/";
    version = "7.12.0a20260308";
    srcHashes = {
      gfx1151 = "${OLD_HASH}";
      gfx110X-all = null;
    };
    mirrors = [ ];
    skip = [
      "7.12.0a20260311"
    ];
  };

  stable = {
    baseUrl = "https://repo.amd.com/rocm/tarball-multi-arch/";
    version = "7.14.0";
    srcHashes = {
      gfx1151 = "${STABLE_HASH}";
    };
    mirrors = [ ];
    skip = [ ];
  };
}
`;

const name = (family: string, version: string): string =>
  `therock-dist-linux-${family}-${version}.tar.gz`;
const nightlyBytes = await buildSampleTarball({ isas: ["gfx1151"], version: "7.12.0a20260310" });
const allBytes = new TextEncoder().encode("gfx110X-all tarball bytes\n");
const stableBytes = new TextEncoder().encode("stable 7.14.1 gfx1151 bytes\n");

function index(): MirrorFile[] {
  const files: MirrorFile[] = [];
  for (const [i, version] of ["7.12.0a20260310", "7.12.0a20260311"].entries()) {
    files.push({ name: name("gfx1151", version), mtime: 10 + i, body: nightlyBytes });
    files.push({ name: name("gfx110X-all", version), mtime: 10 + i, body: allBytes });
  }
  files.push({ name: name("gfx1151", "7.14.1"), mtime: 20, body: stableBytes });
  return files;
}

function fixture(text = TWO_CHANNELS, files = index()): Promise<Fixture> {
  return updateFixture(files, text);
}

const block = (text: string, channel: string): string => {
  const start = text.indexOf(`  ${channel} = {`);
  return text.slice(start, text.indexOf("\n  };\n", start));
};

Deno.test("updateFlake() of one channel leaves the other channel's bytes unchanged", async () => {
  await using f = await fixture();
  const nightly = await f.update();
  assert.equal(nightly.registry, "nightly");
  assert.equal(nightly.newVersion, "7.12.0a20260310"); // 0311 is in nightly.skip
  let text = await Deno.readTextFile(f.flake);
  assert.equal(block(text, "stable"), block(TWO_CHANNELS, "stable"));
  assert.ok(nightly.changes.every((change) => change.path.startsWith("nightly.")));
  assert.equal(readChannel(text, "nightly").srcHashes.gfx1151, sriOf(nightlyBytes));

  const before = text;
  const stable = await f.update({ channel: "stable" });
  assert.equal(stable.oldVersion, "7.14.0");
  assert.equal(stable.newVersion, "7.14.1");
  assert.equal(stable.commitMessage, "rocm-nightly: stable 7.14.0 -> 7.14.1");
  text = await Deno.readTextFile(f.flake);
  assert.equal(block(text, "nightly"), block(before, "nightly"));
  assert.deepEqual(readChannel(text, "stable").srcHashes, { gfx1151: sriOf(stableBytes) });
  assert.equal(readChannel(text, "stable").baseUrl, f.mirror.baseUrl);
  // Outside the stable set, every byte is as it was.
  const start = before.indexOf("  stable = {");
  assert.equal(text.slice(0, start), before.slice(0, start));
});

Deno.test("updateFlake() on a flake with only a nightly set keeps working, and names a missing channel", async () => {
  const onlyNightly = TWO_CHANNELS.slice(0, TWO_CHANNELS.indexOf("\n  stable = {")) + "\n}\n";
  await using f = await fixture(onlyNightly);
  assert.deepEqual(channelsIn(onlyNightly), ["nightly"]);
  const result = await f.update();
  assert.equal(result.newVersion, "7.12.0a20260310");
  const text = await Deno.readTextFile(f.flake);
  // Named as a registry path, a missing channel is an error that prints the set to add.
  await assert.rejects(
    f.update({ registry: "rc" }),
    (error: Error) =>
      error instanceof MissingBindingError &&
      /has no "rc" channel. Add one beside "nightly".*rc = \{ baseUrl = "https:\/\/rc\.repo\.amd\.com\/rocm\/core\/tarball\/"; version = "10\.1\.0rc0";/
        .test(error.message),
  );
  assert.equal(await Deno.readTextFile(f.flake), text);
  assert.doesNotThrow(() => requireChannel(text, "nightly"));
  // Asked for by --channel, the rc set is added (the nightly's targets) in the same rewrite.
  const rc = await f.update({ channel: "rc" });
  assert.equal(rc.registry, "rc");
  assert.equal(rc.oldVersion, null);
  assert.equal(rc.newVersion, "7.12.0a20260311");
  const after = await Deno.readTextFile(f.flake);
  assert.ok(after.startsWith(text.slice(0, text.lastIndexOf("}"))));
  assert.deepEqual(readChannel(after, "rc").srcHashes, {
    gfx1151: sriOf(nightlyBytes),
    "gfx110X-all": sriOf(allBytes),
  });
  assert.deepEqual(channelsIn(after), ["nightly", "rc"]);
});

Deno.test("addChannel() adds the set beside the others and to the flake's channels", async () => {
  const real = await Deno.readTextFile(join(repoRoot, "flake.nix"));
  const text = addChannel(real, "rc");
  assert.match(text, /channels = \{ inherit nightly stable rc; \};/);
  assert.deepEqual(readChannel(text, "rc"), {
    channel: "rc",
    baseUrl: "https://rc.repo.amd.com/rocm/core/tarball/",
    version: null,
    srcHashes: readChannel(real, "nightly").srcHashes,
    versions: {},
    mirrors: [],
    skip: [],
  });
  // Every byte of the original is kept, in order.
  let at = 0;
  for (const char of real) {
    at = text.indexOf(char, at) + 1;
    assert.ok(at > 0);
  }
  assert.equal(addChannel(text, "rc"), text);
  assert.throws(() => addChannel("{ x = 1; }", "rc"), MissingBindingError);
});

Deno.test("updateFlake() never picks a skipped version; --version of one needs force", async () => {
  await using f = await fixture();
  const original = await Deno.readFile(f.flake);
  await assert.rejects(
    f.update({ version: "7.12.0a20260311" }),
    /Cannot pin version "7.12.0a20260311": it is in nightly.skip \(known bad\); pass --force/,
  );
  assert.deepEqual(await Deno.readFile(f.flake), original);
  const forced = await f.update({ version: "7.12.0a20260311", force: true });
  assert.equal(forced.newVersion, "7.12.0a20260311");
});

Deno.test("updateFlake() skip adds versions to the skip list in the same rewrite", async () => {
  // A flake without a skip list: the list is added to the channel's set.
  const noSkip = TWO_CHANNELS.replace('    skip = [\n      "7.12.0a20260311"\n    ];\n', "");
  await using f = await fixture(noSkip);
  const result = await f.update({ skip: ["7.12.0a20260311"] });
  assert.equal(result.newVersion, "7.12.0a20260310");
  const text = await Deno.readTextFile(f.flake);
  assert.deepEqual(readStringList(text, "nightly.skip"), ["7.12.0a20260311"]);
  assert.deepEqual(readStringList(text, "stable.skip"), []);
  assert.ok(result.diff.includes('+    skip = [ "7.12.0a20260311" ];'), result.diff);
  // Nothing else to do: the skip list alone is written.
  const only = await f.update({ skip: ["7.12.0a20260309"] });
  assert.equal(only.current, false);
  assert.equal(only.commitMessage, "rocm-nightly: 7.12.0a20260310: skip list");
  assert.match(formatUpdateReport(only), /^skip: \+ 7\.12\.0a20260309\n/);
  assert.deepEqual(readStringList(await Deno.readTextFile(f.flake), "nightly.skip"), [
    "7.12.0a20260311",
    "7.12.0a20260309",
  ]);
  // A value outside the version grammar never reaches the file.
  const kept = await Deno.readFile(f.flake);
  await assert.rejects(f.update({ skip: ['1"; x = "'] }), SyntaxError);
  assert.deepEqual(await Deno.readFile(f.flake), kept);
});

Deno.test("updateFlake() gate exiting 0 sees the candidate in a temporary copy, then writes", async () => {
  await using f = await fixture();
  await Deno.writeTextFile(join(f.dir, "beside.txt"), "copied too\n");
  const seen = join(f.dir, "..", `${f.dir.split("/").at(-1)}-gate-seen`);
  try {
    const result = await f.update({
      gate: `grep -q 'version = "7.12.0a20260310"' "$ROCM_NIGHTLY_FLAKE/flake.nix" && ` +
        `test -f beside.txt && test "$PWD" = "$ROCM_NIGHTLY_FLAKE" && ` +
        `echo "$ROCM_NIGHTLY_FLAKE" > '${seen}' && echo checked`,
    });
    assert.deepEqual(result.gate, ["checked"]);
    assert.equal(result.newVersion, "7.12.0a20260310");
    assert.match(await Deno.readTextFile(f.flake), /version = "7.12.0a20260310"/);
    const copy = (await Deno.readTextFile(seen)).trim();
    assert.notEqual(copy, f.dir);
    await assert.rejects(Deno.stat(copy), Deno.errors.NotFound); // removed
  } finally {
    await Deno.remove(seen).catch(() => {});
  }
});

Deno.test("updateFlake() gate exiting 1 leaves the flake byte-identical and shows its last lines", async () => {
  await using f = await fixture();
  const original = await Deno.readFile(f.flake);
  const seen = join(f.dir, "gate-seen");
  const lines = Array.from({ length: 30 }, (_, i) => `echo line${i}`).join("; ");
  await assert.rejects(
    f.update({
      gate: `echo "$ROCM_NIGHTLY_FLAKE" > '${seen}'; ${lines}; echo crashed >&2; exit 3`,
    }),
    (error: Error) => {
      assert.ok(error instanceof GateFailedError, String(error));
      assert.equal(error.code, 3);
      assert.equal(error.tail.length, 20);
      assert.equal(error.tail.at(-1), "crashed");
      assert.ok(!error.tail.includes("line0"));
      assert.match(error.message, /exited with 3; the flake was not changed/);
      return true;
    },
  );
  assert.deepEqual(await Deno.readFile(f.flake), original);
  await assert.rejects(Deno.stat((await Deno.readTextFile(seen)).trim()), Deno.errors.NotFound);

  // The script: exit 1, the gate's lines, then the verdict.
  const script = join(repoRoot, "scripts", "update.ts");
  const cli = await run(Deno.execPath(), [
    "run",
    ...["--allow-net", "--allow-read", "--allow-write", "--allow-run=nix-store,nix-daemon,sh"],
    "--allow-env=TMPDIR", // the gate's copy goes into TMPDIR
    script,
    ...["--flake", f.flake, "--index", f.mirror.indexUrl, "--no-add-to-store", "--no-cache"],
    ...["--gate", "echo smoke: no gfx1151 agent; exit 1"],
  ]);
  assert.equal(cli.code, 1, cli.stderr);
  assert.match(cli.stderr, /update: gate \| smoke: no gfx1151 agent\n/);
  assert.match(
    cli.stderr,
    /update: Cannot update: the gate .* exited with 1; the flake was not changed\n/,
  );
  assert.deepEqual(await Deno.readFile(f.flake), original);
});

Deno.test("updateFlake() checks each mirror serves the new tarball at the hashed size", async () => {
  const nightlyName = name("gfx1151", "7.12.0a20260310");
  const allName = name("gfx110X-all", "7.12.0a20260310");
  await using good = startFileServer({
    routes: {
      [`/m/${nightlyName}`]: { body: nightlyBytes },
      [`/m/${allName}`]: { body: allBytes },
    },
  });
  await using bad = startFileServer({
    routes: { [`/m/${nightlyName}`]: { body: allBytes }, [`/m/${allName}`]: { status: 404 } },
  });
  const text = TWO_CHANNELS.replace(
    "    mirrors = [ ];",
    `    mirrors = [ "${good.url("/m/")}" "${bad.url("/m")}" ];`,
  );
  await using f = await fixture(text);
  const result = await f.update();
  assert.deepEqual(result.warnings.sort(), [
    `gfx110X-all: mirror ${bad.url(`/m/${allName}`)}: HTTP 404 (gone)`,
    `gfx1151: mirror ${
      bad.url(`/m/${nightlyName}`)
    }: serves ${allBytes.length} bytes, the primary ${nightlyBytes.length}`,
  ]);
  // HEAD only: no mirror sent a body.
  assert.ok([...good.requests, ...bad.requests].every((r) => r.method === "HEAD"));
  // The flake is still written: a mirror's fault is a warning.
  assert.equal(result.newVersion, "7.12.0a20260310");
});

Deno.test("probeUrl() tells gone, error and unreachable apart, and falls back to a range GET", async () => {
  await using server = startFileServer({
    routes: {
      "/ok": { body: new Uint8Array(1234) },
      "/gone": { status: 410 },
      "/broken": { body: new Uint8Array(1), serverError: true },
    },
  });
  assert.deepEqual(await probeUrl(server.url("/ok")), {
    url: server.url("/ok"),
    state: "ok",
    status: 200,
    size: 1234,
  });
  assert.equal((await probeUrl(server.url("/gone"))).state, "gone");
  assert.equal((await probeUrl(server.url("/missing"))).state, "gone");
  const broken = await probeUrl(server.url("/broken"));
  assert.equal(broken.state, "error");
  assert.equal(broken.status, 500);
  const closed = startFileServer();
  const url = closed.url("/x");
  await closed.close();
  assert.equal((await probeUrl(url)).state, "unreachable");
  // A server that refuses HEAD: the 1-byte range GET gives the size.
  const noHead = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen(): void {} },
    (request) =>
      request.method === "HEAD"
        ? new Response(null, { status: 405 })
        : new Response(new Uint8Array(1), {
          status: 206,
          headers: { "content-range": "bytes 0-0/5555" },
        }),
  );
  try {
    const probe = await probeUrl(`http://127.0.0.1:${noHead.addr.port}/f`);
    assert.equal(probe.state, "ok");
    assert.equal(probe.size, 5555);
  } finally {
    await noHead.shutdown();
  }
  assert.deepEqual(await checkMirrors("f", 1234, [server.url("/")]), [
    `mirror ${server.url("/f")}: HTTP 404 (gone)`,
  ]);
  // A URL the policy refuses is not asked, and not served either.
  const refused = await probeUrl("http://example.invalid/x");
  assert.equal(refused.state, "unverified");
  assert.match(refused.detail ?? "", /plain http is only allowed for loopback hosts/);
});

Deno.test("appendToList() keeps every other byte and adds the list when missing", () => {
  assert.equal(
    appendToList("{ n = { skip = [ ]; }; }", "n.skip", ["7.0.0"]).text,
    '{ n = { skip = [ "7.0.0" ]; }; }',
  );
  const multi = '{\n  n = {\n    skip = [\n      "7.0.0"\n    ];\n  };\n}\n';
  assert.equal(
    appendToList(multi, "n.skip", ["7.0.0", "7.1.0"]).text,
    '{\n  n = {\n    skip = [\n      "7.0.0"\n      "7.1.0"\n    ];\n  };\n}\n',
  );
  const added = appendToList('{\n  n = {\n    version = "1";\n  };\n}\n', "n.skip", ["7.1.0"], {
    addMissing: true,
  });
  assert.equal(added.text, '{\n  n = {\n    version = "1";\n    skip = [ "7.1.0" ];\n  };\n}\n');
  assert.deepEqual(added.changes, [
    { path: "n.skip", line: 4, oldValue: undefined, newValue: "7.1.0" },
  ]);
  assert.throws(() => appendToList("{ n = { }; }", "n.skip", ["7.1.0"]), MissingBindingError);
  assert.throws(() => appendToList("{ n.skip = [ ]; }", "n.skip", ["nope"]), SyntaxError);
  assert.throws(() => appendToList('{ n.skip = "x"; }', "n.skip", ["7.1.0"]), TypeError);
  assert.throws(() => appendToList("{ n.m = [ ]; }", "n.m", ['a"b']), TypeError);
});

const nix = await requireTools("channel tests that evaluate the flake", "nix", "nix-instantiate");

Deno.test({
  name:
    "updateFlake() of the project's flake.nix: a nightly update keeps stable's bytes, and it evaluates",
  ignore: !nix,
  fn: async () => {
    const real = await Deno.readTextFile(join(repoRoot, "flake.nix"));
    await using f = await fixture(real);
    // The shipped nightly pins a newer version than this index: pin one explicitly.
    const result = await f.update({ version: "7.12.0a20260310" });
    assert.equal(result.registry, "nightly");
    const text = await Deno.readTextFile(f.flake);
    const stable = (t: string): string =>
      t.slice(t.indexOf("      stable = {"), t.indexOf("      channels ="));
    assert.equal(stable(text), stable(real));
    assert.deepEqual(readChannel(text, "stable"), readChannel(real, "stable"));
    const parse = await run("nix-instantiate", ["--parse", f.flake], { env: nixEnv() });
    assert.equal(parse.code, 0, parse.stderr);
  },
});

Deno.test("updateFlake() gate never writes through a symlinked flake.nix, and an abort kills it", async () => {
  await using f = await fixture();
  const real = join(f.dir, "real.nix");
  await Deno.rename(f.flake, real);
  await Deno.symlink("real.nix", f.flake);
  const original = await Deno.readFile(real);
  await assert.rejects(
    f.update({ gate: 'test ! -L "$ROCM_NIGHTLY_FLAKE/flake.nix" || exit 9; exit 1' }),
    (error: Error) => error instanceof GateFailedError && error.code === 1,
  );
  assert.deepEqual(await Deno.readFile(real), original);
  // Aborted while the gate runs: the command is stopped, the copy removed.
  const controller = new AbortController();
  const seen = join(f.dir, "gate-seen");
  const running = f.update({
    gate: `echo "$ROCM_NIGHTLY_FLAKE" > '${seen}'; exec sleep 30`,
    signal: controller.signal,
  });
  await waitUntil(() => pathExists(seen), "the gate's copy", 5_000, 25);
  controller.abort(new Error("stop"));
  await assert.rejects(running, /stop/);
  assert.deepEqual(await Deno.readFile(real), original);
  await assert.rejects(Deno.stat((await Deno.readTextFile(seen)).trim()), Deno.errors.NotFound);
});
