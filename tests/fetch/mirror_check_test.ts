// probeUrl() follows redirects hop by hop with prefetch's policy: a refused
// hop is never contacted, and the URL is unverified, never ok.
import assert from "node:assert/strict";
import { describeProbe, probeUrl } from "../../lib/fetch/mirror_check.ts";
import { startFileServer } from "../_server.ts";

Deno.test("probeUrl() follows allowed redirects to the file", async () => {
  await using server = startFileServer({
    routes: {
      "/a": { redirect: "/b", status: 301 },
      "/b": { redirect: "f", status: 307 },
      "/f": { body: new Uint8Array(77) },
    },
  });
  const probe = await probeUrl(server.url("/a"));
  assert.equal(probe.state, "ok");
  assert.equal(probe.size, 77);
  assert.equal(probe.url, server.url("/a"));
});

Deno.test("probeUrl() sends nothing to a hop past the 10th, or to plain http elsewhere", async () => {
  await using forbidden = startFileServer({ routes: { "/f": { body: new Uint8Array(5) } } });
  const away = forbidden.url("/f").replace("127.0.0.1", "0.0.0.0");
  const routes: Record<string, { redirect: string }> = {
    "/plain": { redirect: away },
    "/ftp": { redirect: "ftp://127.0.0.1/f" },
  };
  for (let hop = 0; hop < 10; hop++) routes[`/hop/${hop}`] = { redirect: `/hop/${hop + 1}` };
  routes["/hop/10"] = { redirect: forbidden.url("/f") };
  await using server = startFileServer({ routes });
  const cases: [string, RegExp][] = [
    ["/hop/0", /more than 10 redirects/],
    ["/plain", /"http:\/\/0\.0\.0\.0:\d+\/f": plain http is only allowed for loopback hosts/],
    ["/ftp", /unsupported scheme "ftp:"/],
  ];
  for (const [path, detail] of cases) {
    const probe = await probeUrl(server.url(path));
    assert.equal(probe.state, "unverified", path);
    assert.match(probe.detail ?? "", detail);
    assert.match(describeProbe(probe), /^not verified: /);
  }
  assert.equal(forbidden.requests.length, 0, "the refused hops were never contacted");
  // The same redirect with --allow-http is followed.
  const allowed = await probeUrl(server.url("/plain"), { allowHttp: true });
  assert.equal(allowed.state, "ok");
  assert.equal(forbidden.requests.length, 1);
});

Deno.test("probeUrl() shows credentials as ***, also those of a redirect's Location", async () => {
  await using server = startFileServer({
    routes: { "/f": { redirect: "ftp://eve:secret@127.0.0.1/x" } },
  });
  const probe = await probeUrl(server.url("/f").replace("http://", "http://u:secret@"));
  assert.equal(probe.url, server.url("/f").replace("http://", "http://***@"));
  assert.equal(probe.state, "unverified");
  assert.match(probe.detail ?? "", /ftp:\/\/\*\*\*@127\.0\.0\.1\/x/);
  assert.doesNotMatch(JSON.stringify(probe), /secret/);
});
