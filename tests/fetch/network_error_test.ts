// lib/fetch/network_error.ts on the errors Deno really throws: a closed
// loopback port, a loopback server that never answers, a loopback TLS server
// with a self-signed certificate (made with openssl here), and, since no DNS
// query may leave the machine, the resolver's errors as Deno words them.
import assert from "node:assert/strict";
import { requireTools, selfSignedCertificate, withTempDir } from "../_tools.ts";
import { describeNetworkFailure, networkFailure } from "../../lib/fetch/network_error.ts";

const openssl = await requireTools(
  "a loopback TLS server with a self-signed certificate",
  "openssl",
);

function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function thrown(promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => assert.fail("expected a failure"), (error) => error);
}

Deno.test("networkFailure() says a closed port refused, from fetch() and Deno.connect", async () => {
  const port = closedPort();
  const url = `http://127.0.0.1:${port}/x`;
  for (
    const error of [
      await thrown(fetch(url)),
      await thrown(Deno.connect({ hostname: "127.0.0.1", port })),
    ]
  ) {
    const failure = networkFailure(error, { url });
    assert.equal(failure?.kind, "refused");
    assert.equal(failure?.words, `connection refused by 127.0.0.1:${port} (nothing listens there)`);
  }
});

Deno.test("networkFailure() says a server that never answers timed out", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    const url = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`;
    const error = await thrown(fetch(url, { signal: AbortSignal.timeout(200) }));
    assert.deepEqual(
      networkFailure(error, { url, timeoutSeconds: 0.2 })?.words,
      `timed out: no answer from 127.0.0.1:${(listener.addr as Deno.NetAddr).port} in 0.2 s`,
    );
    assert.equal(
      networkFailure(new Deno.errors.TimedOut("Connection timed out (os error 110)"))?.kind,
      "timeout",
    );
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const conn of held) conn.close();
  }
});

Deno.test({
  name: "networkFailure() says a self-signed certificate is a TLS failure",
  ignore: !openssl,
  fn: async () => {
    await withTempDir(async (dir) => {
      const listener = Deno.listenTls({
        hostname: "127.0.0.1",
        port: 0,
        ...await selfSignedCertificate(dir),
      });
      const held: Deno.TlsConn[] = [];
      const accepting = (async () => {
        for await (const conn of listener) {
          conn.handshake().catch(() => {});
          held.push(conn);
        }
      })();
      try {
        const port = (listener.addr as Deno.NetAddr).port;
        const url = `https://127.0.0.1:${port}/`;
        const errors = [
          await thrown(fetch(url)),
          await thrown((async () => {
            const conn = await Deno.connectTls({ hostname: "127.0.0.1", port });
            try {
              await conn.handshake();
            } finally {
              conn.close();
            }
          })()),
        ];
        for (const error of errors) {
          const failure = networkFailure(error, { url });
          assert.equal(failure?.kind, "tls", String(error));
          assert.match(
            failure!.words,
            /^TLS failure: the server's certificate is not signed by a trusted authority \(invalid peer certificate: .+\)$/,
          );
        }
      } finally {
        listener.close();
        await accepting.catch(() => {});
        for (const conn of held) conn.close();
      }
    });
  },
});

Deno.test("networkFailure() tells a name that does not exist from a failed lookup", () => {
  const url = "https://nonexistent.invalid/x";
  // fetch()'s shape, and Deno.connect's, for a name the resolver denies (NXDOMAIN).
  const viaFetch = new TypeError("fetch failed", {
    cause: new Error(
      "error sending request for url (https://nonexistent.invalid/x): client error (Connect): " +
        "dns error: failed to lookup address information: Name or service not known",
    ),
  });
  const viaConnect = new Error("failed to lookup address information: Name or service not known");
  for (const error of [viaFetch, viaConnect]) {
    assert.equal(
      networkFailure(error, { url })?.words,
      'name not found: "nonexistent.invalid" does not resolve (DNS)',
    );
  }
  // No answer at all (no network, the resolver down): EAI_AGAIN.
  const noAnswer = new Error(
    "failed to lookup address information: Temporary failure in name resolution",
  );
  assert.equal(
    networkFailure(noAnswer, { url })?.words,
    'name lookup failed: no DNS answer for "nonexistent.invalid" (is the network up?)',
  );
});

Deno.test("describeNetworkFailure() keeps other errors' own text, without fetch()'s prefixes", () => {
  assert.equal(networkFailure(new RangeError("too big")), null);
  assert.equal(describeNetworkFailure(new RangeError("too big")), "too big");
  assert.equal(
    describeNetworkFailure(
      new TypeError("fetch failed", {
        cause: new Error("error sending request for url (https://a/): client error (Connect): odd"),
      }),
    ),
    "odd",
  );
  assert.equal(
    describeNetworkFailure(
      new Deno.errors.ConnectionReset("Connection reset by peer (os error 104)"),
      {
        url: "https://example.org/",
      },
    ),
    "connection reset by example.org:443",
  );
});
