/**
 * Naming the kind of a file that should have been a regular one, for error
 * messages. A file of its own: check-output imports it, and importing
 * lib/hash/hasher.ts (node:crypto) would cost its start some 35 ms.
 *
 * @module
 */

/**
 * What kind of file `info` describes, for messages about a file that should
 * have been a regular one.
 *
 * @example Usage
 * ```ts
 * import { describeKind } from "./file_kind.ts";
 * describeKind(Deno.statSync("/dev/null")); // "a character device"
 * ```
 *
 * @param info The file's stat.
 * @returns "a directory", "a FIFO (named pipe)", "a socket", ….
 */
export function describeKind(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a FIFO (named pipe)";
  if (info.isSocket) return "a socket";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  return "not a regular file";
}
