/**
 * Files where a regular file is expected: naming the kind of one that is
 * not, and opening or reading one safely. The kind is checked BEFORE the
 * file is opened, since opening a FIFO blocks until a writer comes (Deno has
 * no O_NONBLOCK) and reading /dev/zero never ends; the open file is checked
 * again (fstat) and must be the one checked, so a swap between the two is
 * refused too; and a read stops one byte past its bound, whatever the file
 * claimed. What comes through a pipe instead (`-` for stdin) has no size to
 * check first: its read stops one byte past the bound the same way. A file
 * of its own: check-output imports it, and importing
 * lib/hash/hasher.ts (node:crypto) would cost its start some 35 ms.
 *
 * @module
 */

import { concatBytes } from "./bytes.ts";

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
 * @param info The file's stat (or lstat).
 * @returns "a directory", "a FIFO (named pipe)", "a socket", ….
 */
export function describeKind(info: Deno.FileInfo): string {
  if (info.isSymlink) return "a symbolic link";
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a FIFO (named pipe)";
  if (info.isSocket) return "a socket";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  return "not a regular file";
}

/** Options for {@linkcode openRegularFile}. */
export interface OpenRegularFileOptions {
  /**
   * What the file is, for messages: `Cannot read the flake "x": …`.
   *
   * @default {""} (the path alone)
   */
  what?: string;
  /**
   * Whether a symlink is followed to its target; when `false` a symlink is
   * refused (for files only this program writes, such as a lock).
   *
   * @default {true}
   */
  followSymlinks?: boolean;
  /**
   * The most bytes the file may hold; a bigger one is refused with a
   * `RangeError` before anything is read.
   *
   * @default {Infinity}
   */
  maxBytes?: number;
}

/** Options for {@linkcode readRegularFile}: the bound is required. */
export interface ReadRegularFileOptions extends OpenRegularFileOptions {
  /** The most bytes read; a bigger file (or one that grows past it) is refused. */
  maxBytes: number;
}

/**
 * Opens `path` for reading, refusing anything but a regular file (checked
 * before the open, through symlinks unless `followSymlinks` is false) and,
 * with `maxBytes`, a bigger one; the open file must be the one checked.
 *
 * @example Usage
 * ```ts
 * import { openRegularFile } from "./file_kind.ts";
 *
 * const path = await Deno.makeTempFile();
 * using file = await openRegularFile(path, { maxBytes: 1024 });
 * (await file.stat()).size; // 0
 * ```
 *
 * @param path The file to open.
 * @param options What it is (for messages), whether to follow a symlink, its bound.
 * @returns The open file (the caller closes it).
 * @throws {TypeError} When `path` is not a regular file, or was replaced
 * between its check and its opening; the message names its kind.
 * @throws {RangeError} When it is bigger than `maxBytes`.
 * @throws {Deno.errors.NotFound} When it does not exist (or is a dangling symlink).
 */
export async function openRegularFile(
  path: string,
  options: OpenRegularFileOptions = {},
): Promise<Deno.FsFile> {
  const before = options.followSymlinks === false ? await Deno.lstat(path) : await Deno.stat(path);
  check(path, before, options);
  const file = await Deno.open(path, { read: true });
  try {
    checkSame(path, before, await file.stat(), options);
    return file;
  } catch (error) {
    file.close();
    throw error;
  }
}

/**
 * Reads a regular file of at most `maxBytes` bytes, refusing anything else
 * before reading it: a FIFO, socket, device (or a symlink to one, such as
 * /dev/zero), a directory, a bigger file (even a sparse one), one replaced
 * between its check and its opening, or one that grows past the bound while
 * read. Memory and time stay bounded by `maxBytes`.
 *
 * @example Usage
 * ```ts
 * import { readRegularFile } from "./file_kind.ts";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "{ }\n");
 * await readRegularFile(path, { maxBytes: 1024, what: "the flake" }); // Uint8Array(4)
 * await readRegularFile("/dev/zero", { maxBytes: 1024 }).catch((e) => e.message);
 * // 'Cannot read "/dev/zero": it is a character device, not a regular file'
 * ```
 *
 * @param path The file.
 * @param options Its bound, what it is (for messages), whether to follow a symlink.
 * @returns The bytes.
 * @throws {TypeError} When `path` is not a regular file (the message names its kind).
 * @throws {RangeError} When it holds (or grows to) more than `maxBytes`.
 * @throws {Deno.errors.NotFound} When it does not exist; other `Deno.errors` as the system reports them.
 */
export async function readRegularFile(
  path: string,
  options: ReadRegularFileOptions,
): Promise<Uint8Array> {
  using file = await openRegularFile(path, options);
  let buffer = new Uint8Array(firstBufferSize((await file.stat()).size, options.maxBytes));
  let filled = 0;
  for (;;) {
    if (filled === buffer.length) buffer = grow(buffer, path, options);
    const n = await file.read(buffer.subarray(filled));
    if (n === null) return buffer.subarray(0, filled);
    filled += n;
  }
}

// One byte past what the file claims (or the bound) shows where it ends:
// sysfs files claim 4096 bytes whatever they hold, procfs files 0.
function firstBufferSize(size: number, maxBytes: number): number {
  return Math.min(Math.max(size, 4096), maxBytes) + 1;
}

/** Options for {@linkcode readStreamText}. */
export interface ReadStreamOptions {
  /** The most bytes taken; one more is refused. */
  maxBytes: number;
  /** What the stream carries, for messages: `"closure"`. */
  what: string;
  /** Where it comes from, for messages: `"stdin"`. */
  from: string;
}

/**
 * The text (UTF-8) of `stream`, such as stdin given for a file, refused once
 * it passes `maxBytes`: the read stops there and cancels the stream.
 *
 * @example Usage
 * ```ts
 * import { readStreamText } from "./file_kind.ts";
 *
 * const text = await readStreamText(Deno.stdin.readable, {
 *   maxBytes: 1024 * 1024,
 *   what: "closure",
 *   from: "stdin",
 * });
 * ```
 *
 * @param stream The bytes, read to their end.
 * @param options The bound, and what and where the bytes are, for messages.
 * @returns The text.
 * @throws {RangeError} When the stream holds more than `maxBytes`:
 *   `Cannot read closure from stdin: it is more than the limit of 256 MiB`.
 */
export async function readStreamText(
  stream: ReadableStream<Uint8Array>,
  options: ReadStreamOptions,
): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > options.maxBytes) {
        await reader.cancel().catch(() => {});
        throw new RangeError(
          `Cannot read ${options.what} from ${options.from}: it is more than ${
            limit(options.maxBytes)
          }`,
        );
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return new TextDecoder().decode(concatBytes(chunks));
}

function grow(
  buffer: Uint8Array<ArrayBuffer>,
  path: string,
  options: ReadRegularFileOptions,
): Uint8Array<ArrayBuffer> {
  if (buffer.length > options.maxBytes) {
    throw new RangeError(
      `${cannotRead(path, options)}: it grew past ${limit(options.maxBytes)} while being read`,
    );
  }
  const bigger = new Uint8Array(Math.min(buffer.length * 2, options.maxBytes + 1));
  bigger.set(buffer);
  return bigger;
}

function check(path: string, info: Deno.FileInfo, options: OpenRegularFileOptions): void {
  if (!info.isFile) {
    const kind = describeKind(info);
    throw new TypeError(
      `${cannotRead(path, options)}: it is ${
        kind === "not a regular file" ? kind : `${kind}, not a regular file`
      }`,
    );
  }
  const maxBytes = options.maxBytes ?? Infinity;
  if (info.size > maxBytes) {
    throw new RangeError(
      `${cannotRead(path, options)}: it is ${info.size} bytes, more than ${limit(maxBytes)}`,
    );
  }
}

function checkSame(
  path: string,
  before: Deno.FileInfo,
  now: Deno.FileInfo,
  options: OpenRegularFileOptions,
): void {
  if (!now.isFile || now.ino !== before.ino || now.dev !== before.dev) {
    throw new TypeError(`${cannotRead(path, options)}: it was replaced while being opened`);
  }
  check(path, now, options);
}

function cannotRead(path: string, options: OpenRegularFileOptions): string {
  return `Cannot read ${options.what ? `${options.what} ` : ""}"${path}"`;
}

function limit(bytes: number): string {
  const units: [number, string][] = [[2 ** 30, "GiB"], [2 ** 20, "MiB"], [2 ** 10, "KiB"]];
  for (const [size, unit] of units) {
    if (bytes >= size && bytes % size === 0) return `the limit of ${bytes / size} ${unit}`;
  }
  return `the limit of ${bytes} bytes`;
}

/**
 * Reads a regular file as {@linkcode readRegularFile} does and decodes it as
 * UTF-8 (an invalid byte becomes U+FFFD: for text that is parsed, never
 * written back). A refusal (`TypeError`, `RangeError`) keeps its message;
 * any other failure (missing, unreadable) becomes an `Error` naming what the
 * file is and its path.
 *
 * @example Usage
 * ```ts
 * import { readRegularText } from "./file_kind.ts";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "{ }\n");
 * await readRegularText(path, { maxBytes: 1024, what: "the flake" }); // "{ }\n"
 * await readRegularText(`${path}.gone`, { maxBytes: 1024, what: "the flake" })
 *   .catch((e) => e.message.startsWith('Cannot read the flake "')); // true
 * ```
 *
 * @param path The file.
 * @param options Its bound, what it is (for messages), whether to follow a symlink.
 * @returns The text.
 * @throws {TypeError} When `path` is not a regular file (the message names its kind).
 * @throws {RangeError} When it holds (or grows to) more than `maxBytes`.
 * @throws {Error} When it cannot be read otherwise: `Cannot read <what> "<path>": …`.
 */
export async function readRegularText(
  path: string,
  options: ReadRegularFileOptions,
): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await readRegularFile(path, options);
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) throw error;
    throw new Error(`${cannotRead(path, options)}: ${(error as Error).message}`, { cause: error });
  }
  return new TextDecoder().decode(bytes);
}
