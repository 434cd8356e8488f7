/**
 * A streaming, reproducible POSIX tar (ustar + PAX) writer.
 *
 * Every header field that could vary between machines is fixed: uid and gid
 * are 0, user and group names are empty, and the modification time is one
 * value for the whole archive unless an entry sets its own. Names that do not
 * fit the ustar `prefix`/`name` fields, link targets over 100 bytes and sizes
 * of 8 GiB and more get a PAX extended header (sizes are also written in the
 * GNU base-256 form, so readers that skip PAX still see the right size).
 *
 * The size of every entry follows from its metadata alone
 * ({@linkcode tarEntrySize}), which lets a caller announce a layer's size
 * before streaming it.
 *
 * @module
 */

/** One entry of a tar archive. */
export interface TarEntry {
  /** Path inside the archive: relative, `/`-separated, no `.` or `..` components. */
  path: string;
  /** What the entry is. */
  type: "file" | "directory" | "symlink" | "hardlink";
  /** Permission bits (`0o755`); bits above `0o7777` are dropped. */
  mode: number;
  /**
   * Content size in bytes (files only).
   *
   * @default {0}
   */
  size?: number;
  /** Target of a symlink, or the archive path of a hard link's first occurrence. */
  linkTarget?: string;
  /**
   * Modification time in seconds since the epoch.
   *
   * @default {the archive's `mtime` option}
   */
  mtime?: number;
  /** The file's bytes (exactly `size` of them); may be omitted when `size` is 0. */
  content?: () => ReadableStream<Uint8Array> | Promise<ReadableStream<Uint8Array>>;
}

/** Options for {@linkcode tarStream}. */
export interface TarStreamOptions {
  /**
   * Modification time (seconds since the epoch) of entries that do not set one.
   *
   * @default {0}
   */
  mtime?: number;
}

/** Size of a tar block; headers and content are padded to it. */
export const TAR_BLOCK_SIZE = 512;
/** Size of the end-of-archive marker (two zero blocks). */
export const TAR_TRAILER_SIZE = 1024;

const encoder = new TextEncoder();
const ZEROS = new Uint8Array(1024);
const OCTAL_SIZE_MAX = 0o77777777777; // 11 octal digits: 8 GiB − 1
const TYPE_FLAGS = { file: "0", hardlink: "1", symlink: "2", directory: "5" } as const;

/**
 * Streams a tar archive of `entries`, in the order given, ending with the
 * end-of-archive marker. File contents are read one entry at a time, so the
 * memory used does not depend on file sizes.
 *
 * @param entries The entries, in archive order.
 * @param options The default modification time.
 * @returns The archive bytes.
 * @throws {TypeError} (when read) For a malformed entry.
 * @throws {RangeError} (when read) When a content stream's length differs from `size`.
 *
 * @example Usage
 * ```ts
 * import { tarStream } from "./tar.ts";
 *
 * const hello = new TextEncoder().encode("hello\n");
 * const archive = tarStream([
 *   { path: "greeting", type: "directory", mode: 0o755 },
 *   {
 *     path: "greeting/hello.txt",
 *     type: "file",
 *     mode: 0o644,
 *     size: hello.length,
 *     content: () => ReadableStream.from([hello]),
 *   },
 * ]);
 * const bytes = new Uint8Array(await new Response(archive).arrayBuffer());
 * bytes.length; // 2560: two headers, one content block, two trailer blocks
 * ```
 */
export function tarStream(
  entries: Iterable<TarEntry> | AsyncIterable<TarEntry>,
  options: TarStreamOptions = {},
): ReadableStream<Uint8Array> {
  const chunks = tarChunks(entries, options.mtime ?? 0);
  return new ReadableStream<Uint8Array>({
    async pull(controller): Promise<void> {
      const next = await chunks.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel(reason): Promise<void> {
      await chunks.throw(reason ?? new Error("tar stream cancelled")).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

async function* tarChunks(
  entries: Iterable<TarEntry> | AsyncIterable<TarEntry>,
  mtime: number,
): AsyncGenerator<Uint8Array> {
  for await (const entry of entries) {
    yield tarHeader(entry, { mtime });
    const size = entry.type === "file" ? entry.size ?? 0 : 0;
    if (size === 0) continue;
    if (entry.content === undefined) {
      throw new TypeError(`Cannot write tar entry "${entry.path}": ${size} bytes but no content`);
    }
    let seen = 0;
    const stream = await entry.content();
    for await (const chunk of stream) {
      seen += chunk.length;
      if (seen > size) break;
      yield chunk;
    }
    if (seen !== size) {
      throw new RangeError(
        `Cannot write tar entry "${entry.path}": content ${
          seen > size ? "exceeds" : "is"
        } ${seen} bytes, expected ${size}`,
      );
    }
    const pad = tarPadding(size);
    if (pad > 0) yield ZEROS.subarray(0, pad);
  }
  yield ZEROS.subarray(0, TAR_TRAILER_SIZE);
}

/**
 * The header block(s) of an entry: a PAX extended header when needed, then the
 * ustar header. Content and its padding follow them in the archive.
 *
 * @param entry The entry (its `content` is not used).
 * @param options The modification time used when the entry sets none.
 * @returns The header bytes, a multiple of 512.
 * @throws {TypeError} For a malformed path, link target or mode.
 * @throws {RangeError} For a negative or unsafe size or time.
 *
 * @example Usage
 * ```ts
 * import { tarHeader } from "./tar.ts";
 *
 * tarHeader({ path: "a.txt", type: "file", mode: 0o644, size: 3 }).length; // 512
 * ```
 */
export function tarHeader(entry: TarEntry, options: TarStreamOptions = {}): Uint8Array {
  const path = validatePath(entry.path, "path");
  const size = entry.type === "file" ? entry.size ?? 0 : 0;
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`Cannot write tar entry "${path}": size ${size} is not a byte count`);
  }
  const mtime = entry.mtime ?? options.mtime ?? 0;
  if (!Number.isSafeInteger(mtime) || mtime < 0 || mtime > OCTAL_SIZE_MAX) {
    throw new RangeError(`Cannot write tar entry "${path}": mtime ${mtime} is out of range`);
  }
  if (!Number.isInteger(entry.mode) || entry.mode < 0) {
    throw new TypeError(`Cannot write tar entry "${path}": mode ${entry.mode} is not a mode`);
  }
  if (!(entry.type in TYPE_FLAGS)) {
    throw new TypeError(`Cannot write tar entry "${path}": unknown type "${entry.type}"`);
  }
  let link = "";
  if (entry.type === "symlink" || entry.type === "hardlink") {
    if (entry.linkTarget === undefined || entry.linkTarget === "") {
      throw new TypeError(`Cannot write tar entry "${path}": a ${entry.type} needs a linkTarget`);
    }
    link = entry.type === "hardlink"
      ? validatePath(entry.linkTarget, "hard link target")
      : entry.linkTarget;
    if (link.includes("\0")) {
      throw new TypeError(`Cannot write tar entry "${path}": link target contains NUL`);
    }
  }

  const name = entry.type === "directory" ? `${path}/` : path;
  const nameBytes = encoder.encode(name);
  const linkBytes = encoder.encode(link);
  const split = splitUstarName(nameBytes);
  const records: string[] = [];
  if (split === undefined) records.push(paxRecord("path", name));
  if (linkBytes.length > 100) records.push(paxRecord("linkpath", link));
  if (size > OCTAL_SIZE_MAX) records.push(paxRecord("size", String(size)));

  const header = ustarHeader({
    name: split?.name ?? truncatedName(nameBytes),
    prefix: split?.prefix ?? new Uint8Array(0),
    mode: entry.mode & 0o7777,
    size,
    mtime,
    type: TYPE_FLAGS[entry.type],
    link: linkBytes.subarray(0, 100),
  });
  if (records.length === 0) return header;

  const data = encoder.encode(records.join(""));
  const baseName = name.replace(/\/$/, "").split("/").pop() ?? "";
  const paxName = truncatedName(encoder.encode(`PaxHeader/${baseName}`));
  const paxHeader = ustarHeader({
    name: paxName,
    prefix: new Uint8Array(0),
    mode: 0o644,
    size: data.length,
    mtime,
    type: "x",
    link: new Uint8Array(0),
  });
  const out = new Uint8Array(2 * TAR_BLOCK_SIZE + data.length + tarPadding(data.length));
  out.set(paxHeader, 0);
  out.set(data, TAR_BLOCK_SIZE);
  out.set(header, out.length - TAR_BLOCK_SIZE);
  return out;
}

/**
 * The number of bytes an entry takes in the archive: its header block(s) plus
 * its content padded to 512 bytes.
 *
 * @param entry The entry.
 * @param options The modification time (it does not change the size).
 * @returns The entry's size in the archive.
 *
 * @example Usage
 * ```ts
 * import { tarEntrySize } from "./tar.ts";
 *
 * tarEntrySize({ path: "a.txt", type: "file", mode: 0o644, size: 3 }); // 1024
 * ```
 */
export function tarEntrySize(entry: TarEntry, options: TarStreamOptions = {}): number {
  const size = entry.type === "file" ? entry.size ?? 0 : 0;
  return tarHeader(entry, options).length + size + tarPadding(size);
}

/**
 * The zero bytes that follow `size` bytes of content, up to the next 512-byte block.
 *
 * @param size A content size.
 * @returns The padding, 0 to 511.
 *
 * @example Usage
 * ```ts
 * import { tarPadding } from "./tar.ts";
 *
 * tarPadding(3); // 509
 * ```
 */
export function tarPadding(size: number): number {
  return (TAR_BLOCK_SIZE - size % TAR_BLOCK_SIZE) % TAR_BLOCK_SIZE;
}

function validatePath(path: string, what: string): string {
  if (
    typeof path !== "string" || path === "" || path.startsWith("/") || path.includes("\0") ||
    path.split("/").some((part) => part === "" || part === "." || part === "..")
  ) {
    throw new TypeError(`Cannot write tar ${what} "${path}": not a relative, normalized path`);
  }
  return path;
}

/** The ustar split of a name into `prefix` (≤ 155 bytes) and `name` (≤ 100 bytes), if any. */
function splitUstarName(bytes: Uint8Array): { name: Uint8Array; prefix: Uint8Array } | undefined {
  if (bytes.length <= 100) return { name: bytes, prefix: new Uint8Array(0) };
  // The separator must leave a non-empty name of at most 100 bytes; try the
  // longest prefix first, as other writers do, so the split is canonical.
  const slash = 0x2f;
  const end = bytes[bytes.length - 1] === slash ? bytes.length - 1 : bytes.length;
  for (let i = Math.min(155, end - 1); i > 0; i--) {
    if (bytes[i] !== slash) continue;
    if (bytes.length - i - 1 > 100) return undefined;
    return { prefix: bytes.subarray(0, i), name: bytes.subarray(i + 1) };
  }
  return undefined;
}

function truncatedName(bytes: Uint8Array): Uint8Array {
  return bytes.subarray(0, 100);
}

function paxRecord(key: string, value: string): string {
  // The length field counts the whole record, its own digits included.
  const rest = encoder.encode(` ${key}=${value}\n`).length;
  let length = rest + String(rest).length;
  if (String(length).length !== String(rest).length) length = rest + String(length).length;
  return `${length} ${key}=${value}\n`;
}

interface UstarFields {
  name: Uint8Array;
  prefix: Uint8Array;
  mode: number;
  size: number;
  mtime: number;
  type: string;
  link: Uint8Array;
}

function ustarHeader(fields: UstarFields): Uint8Array {
  const block = new Uint8Array(TAR_BLOCK_SIZE);
  block.set(fields.name, 0);
  writeOctal(block, 100, 8, fields.mode);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  if (fields.size > OCTAL_SIZE_MAX) writeBase256(block, 124, 12, fields.size);
  else writeOctal(block, 124, 12, fields.size);
  writeOctal(block, 136, 12, fields.mtime);
  block.fill(0x20, 148, 156); // checksum is computed over spaces in its own field
  block[156] = fields.type.charCodeAt(0);
  block.set(fields.link, 157);
  block.set(encoder.encode("ustar\u000000"), 257);
  writeOctal(block, 329, 8, 0);
  writeOctal(block, 337, 8, 0);
  block.set(fields.prefix, 345);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.set(encoder.encode(sum.toString(8).padStart(6, "0")), 148);
  block[154] = 0;
  block[155] = 0x20;
  return block;
}

function writeOctal(block: Uint8Array, offset: number, width: number, value: number): void {
  block.set(encoder.encode(value.toString(8).padStart(width - 1, "0")), offset);
  block[offset + width - 1] = 0;
}

/** GNU base-256: the high bit of the first byte set, then a big-endian number. */
function writeBase256(block: Uint8Array, offset: number, width: number, value: number): void {
  let rest = BigInt(value);
  for (let i = offset + width - 1; i > offset; i--) {
    block[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  block[offset] = 0x80;
}
