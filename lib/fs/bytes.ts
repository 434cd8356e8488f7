/**
 * Byte arrays joined end to end, and written whole.
 *
 * @module
 */

/**
 * The bytes of `parts`, one after the other, in a new array.
 *
 * @example Usage
 * ```ts
 * import { concatBytes } from "./bytes.ts";
 *
 * concatBytes([Uint8Array.of(1, 2), Uint8Array.of(3)]); // Uint8Array [1, 2, 3]
 * ```
 *
 * @param parts The arrays, in order.
 * @returns Their bytes in one array.
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

/**
 * Writes every byte of `bytes` to `writer`, whose `write` may take fewer
 * bytes than it is given (a file, a connection, stdout).
 *
 * @example Usage
 * ```ts
 * import { writeAll } from "./bytes.ts";
 *
 * using file = await Deno.open(await Deno.makeTempFile(), { write: true });
 * await writeAll(file, new TextEncoder().encode("complete\n"));
 * ```
 *
 * @param writer Where the bytes go.
 * @param bytes The bytes, all of which are written.
 */
export async function writeAll(
  writer: { write(bytes: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await writer.write(bytes.subarray(at));
}
