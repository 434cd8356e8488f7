import assert from "node:assert/strict";
import { displayJson, displayText, displayUrl } from "../../lib/cli/display.ts";

Deno.test("displayUrl() shows credentials as *** and keeps the rest readable", () => {
  assert.equal(
    displayUrl("https://user:secret@mirror.example:8443/rocm/x.tar.gz?a=1#f"),
    "https://***@mirror.example:8443/rocm/x.tar.gz?a=1#f",
  );
  assert.equal(displayUrl("http://user@127.0.0.1/x"), "http://***@127.0.0.1/x");
  assert.equal(displayUrl("http://:secret@127.0.0.1/x"), "http://***@127.0.0.1/x");
  assert.equal(displayUrl(new URL("ftp://u:p%40ss@h/f")), "ftp://***@h/f");
  assert.equal(displayUrl("https://h.example/a%20b"), "https://h.example/a%20b");
  // Not a URL: shown as free text.
  assert.equal(displayUrl("not a url\x1b[2J"), "not a url\\x1b[2J");
});

Deno.test("displayText() redacts every URL's credentials in free text", () => {
  assert.equal(
    displayText('Cannot download "http://u:pw@127.0.0.1/f" (from https://a:b@c.example/)'),
    'Cannot download "http://***@127.0.0.1/f" (from https://***@c.example/)',
  );
  // An address that is not in a URL's userinfo stays.
  assert.equal(
    displayText("mail me@example.org, see https://h/x@y"),
    "mail me@example.org, see https://h/x@y",
  );
});

Deno.test("displayText() escapes control characters, so one line stays one line", () => {
  assert.equal(
    displayText("a\x1b[31mb\rc\nd\te\x00f\x7fg\x9bh"),
    "a\\x1b[31mb\\rc\\nd\\te\\x00f\\x7fg\\x9bh",
  );
  assert.equal(displayText("abc\u202edcba\u2028x"), "abc\\u202edcba\\u2028x");
  assert.equal(displayText("ünïcödé and 𝄞 stay"), "ünïcödé and 𝄞 stay");
  const all = displayText(String.fromCharCode(...Array.from({ length: 160 }, (_, i) => i)));
  // deno-lint-ignore no-control-regex -- what must not remain
  assert.doesNotMatch(all, /[\x00-\x1f\x7f-\x9f]/);
});

Deno.test("displayJson() redacts and escapes every string of a result", () => {
  const text = displayJson({
    url: "http://u:secret@h/x",
    nested: [{ reason: "Oops\x1b[0m\r" }],
    n: 1,
  });
  // deno-lint-ignore no-control-regex -- what must not remain
  assert.doesNotMatch(text, /secret|\\u001b|\x1b|\r/);
  assert.deepEqual(JSON.parse(text), {
    url: "http://***@h/x",
    nested: [{ reason: "Oops\\x1b[0m\\r" }],
    n: 1,
  });
});
