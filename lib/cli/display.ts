/**
 * Text fit to print: what a script shows on a terminal, in a log or in
 * `--json` must neither leak a secret nor let a server steer the terminal.
 *
 * - Credentials in a URL (`https://user:secret@host/…`) are shown as `***`
 *   (`https://***@host/…`), wherever the URL came from: the command line,
 *   flake.nix, or a redirect's `Location`. Only the display changes: the
 *   request is sent with the URL as it was given.
 * - Control characters (C0, DEL, C1), line and paragraph separators and the
 *   bidirectional overrides are escaped (`\x1b`, `\r`, `\n`, `\u202e`), so
 *   text a server chose (a reason phrase, a header value, a redirect target,
 *   a name in an index) cannot move the cursor, recolour the screen or split
 *   one line of stderr into two.
 *
 * Every message that quotes a URL or server text goes through
 * {@linkcode displayUrl} or {@linkcode displayText}; the scripts' doors pass
 * their last line through {@linkcode displayText} once more.
 *
 * @module
 */

/**
 * A URL as it may be shown: its credentials replaced by `***`, its control
 * characters escaped. Text that is not a URL is shown by
 * {@linkcode displayText}.
 *
 * @param url The URL.
 * @returns The URL without its user name or password.
 *
 * @example Usage
 * ```ts
 * import { displayUrl } from "./display.ts";
 *
 * displayUrl("https://user:secret@mirror.example/rocm/x.tar.gz");
 * // "https://***@mirror.example/rocm/x.tar.gz"
 * ```
 */
export function displayUrl(url: string | URL): string {
  const parsed = typeof url === "string" ? URL.parse(url) : url;
  if (parsed === null) return displayText(String(url));
  if (parsed.username === "" && parsed.password === "") return escapeControl(parsed.href);
  const copy = new URL(parsed.href);
  copy.username = "";
  copy.password = "";
  // The "//" after the scheme is where the userinfo was.
  const at = copy.href.indexOf("//") + 2;
  return escapeControl(`${copy.href.slice(0, at)}***@${copy.href.slice(at)}`);
}

/**
 * Free text as it may be shown: the credentials of every URL in it replaced
 * by `***`, and its control characters escaped (ESC as `\x1b`, CR as `\r`,
 * a newline as `\n`), so that it stays on one line and cannot steer a
 * terminal.
 *
 * @param text The text, e.g. an error message or a server's reason phrase.
 * @returns The text, safe to print.
 *
 * @example Usage
 * ```ts
 * import { displayText } from "./display.ts";
 *
 * displayText('Cannot download "http://u:pw@127.0.0.1/f": HTTP 500 \x1b[31mOops\r');
 * // 'Cannot download "http://***@127.0.0.1/f": HTTP 500 \\x1b[31mOops\\r'
 * ```
 */
export function displayText(text: string): string {
  return escapeControl(redactCredentials(text));
}

/**
 * A `--json` result as it may be printed: indented JSON in which every
 * string has passed through {@linkcode displayText} (no URL credentials, no
 * control character, even escaped as `\u001b`).
 *
 * @param value The result.
 * @returns The JSON text.
 *
 * @example Usage
 * ```ts
 * import { displayJson } from "./display.ts";
 *
 * displayJson({ url: "https://u:pw@h.example/f" });
 * // '{\n  "url": "https://***@h.example/f"\n}'
 * ```
 */
export function displayJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, field: unknown) => typeof field === "string" ? displayText(field) : field,
    2,
  );
}

// A scheme and "//", then a userinfo: anything up to an "@" that ends before
// the host (no "/", "?", "#", space or quote on the way).
const USERINFO = /([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#@\s"'<>`]*@/g;

function redactCredentials(text: string): string {
  return text.includes("@") ? text.replace(USERINFO, "$1***@") : text;
}

// C0, DEL, C1, and the invisible characters that reorder or break lines.
// deno-lint-ignore no-control-regex -- these are exactly what is escaped
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return NAMED[c] ??
      (code <= 0xff
        ? `\\x${code.toString(16).padStart(2, "0")}`
        : `\\u${code.toString(16).padStart(4, "0")}`);
  });
}
