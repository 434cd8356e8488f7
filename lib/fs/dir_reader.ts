/**
 * Reading directories fast: names and entry kinds, as readdir reports them.
 *
 * `Deno.readDirSync` builds one JavaScript object per entry in Rust and hands
 * it over; on a ROCm output of 100,000 files that alone takes twice as long as
 * `find` takes for the whole walk. When the script holds the `ffi` permission
 * on Linux with glibc, the reader calls glibc's `getdents64` into one reused
 * buffer and decodes only the names, which walks faster than `find`. Without
 * that permission (or elsewhere) it uses `Deno.readDirSync`: both report the
 * same entries, which tests/fs/dir_reader_test.ts checks.
 *
 * @module
 */

import { concatBytes } from "./bytes.ts";
import { O_CLOEXEC, O_DIRECTORY, openLibc } from "./libc.ts";

/**
 * What a directory entry is, without following symlinks. `"undecodable"`:
 * a name that is not UTF-8, which `Deno.readDirSync` reports lossily (with
 * U+FFFD), so the entry cannot be reached by its name (getdents64 never
 * reports it: it keeps the bytes).
 */
export type EntryKind = "file" | "directory" | "symlink" | "other" | "undecodable";

/** Receives one directory entry: its name (never "." or "..") and kind. */
export type EntryVisitor = (name: string, kind: EntryKind) => void;

/** Lists directories; dispose of it (`using`) to release the C library. */
export interface DirectoryReader extends Disposable {
  /** How entries are read: `"getdents64"` or `"Deno.readDirSync"`. */
  readonly method: "getdents64" | "Deno.readDirSync";
  /**
   * Calls `visit` for each entry of `dir`. Throws Deno's error (e.g.
   * `Deno.errors.NotFound`, `Deno.errors.PermissionDenied`) when `dir` cannot
   * be listed.
   *
   * With getdents64, a name that is not UTF-8 (Nix allows any bytes but "/"
   * and NUL) keeps its bytes: each byte that is not part of valid UTF-8
   * becomes a lone surrogate U+DC80–U+DCFF (as Python's "surrogateescape"),
   * so the name can be given back to `read` and `follow`, and
   * {@linkcode escapeName} shows it (Deno's own file APIs cannot open it).
   * `Deno.readDirSync` decodes such names lossily, with U+FFFD, and reports
   * the entry as `"undecodable"`.
   */
  read(dir: string, visit: EntryVisitor): void;
  /**
   * Follows `path` (a path built from names `read` gave) through symlinks,
   * by its bytes, and returns where it leads: the real path, every link
   * resolved, its names as `read` gives them. Throws `Deno.errors.NotFound`
   * or `Deno.errors.FilesystemLoop` when it leads nowhere.
   */
  follow(path: string): string;
}

/**
 * A name from {@linkcode DirectoryReader.read} for people: bytes that are not
 * UTF-8 are shown as `\xNN`, everything else as it is.
 *
 * @example Usage
 * ```ts
 * import { escapeName } from "./dir_reader.ts";
 * escapeName("caf\udce9"); // "caf\\xe9"
 * ```
 *
 * @param name A name or path.
 * @returns The name with each escaped byte written `\xNN`.
 */
export function escapeName(name: string): string {
  return name.replace(
    ESCAPED,
    (c) => `\\x${(c.charCodeAt(0) - 0xdc00).toString(16).padStart(2, "0")}`,
  );
}

/**
 * Whether `Deno.readDirSync` reports every name. Deno 2.8.2 and later report
 * a name that is not UTF-8 (lossily, with U+FFFD); older ones (nixpkgs'
 * 2.6, 2.7, 2.8.0–2.8.1) leave it out without a word, so a walk without the
 * getdents64 reader cannot know that it missed one.
 *
 * @example Usage
 * ```ts
 * import { listsEveryName } from "./dir_reader.ts";
 * if (!listsEveryName) console.error("names that are not UTF-8 go unseen");
 * ```
 */
export const listsEveryName: boolean = (() => {
  const [major = 0, minor = 0, patch = 0] = Deno.version.deno.split(/[.-]/).map(Number);
  return major * 1e6 + minor * 1e3 + patch >= 2_008_002;
})();

/** A lone surrogate standing for a byte (never produced by decoding valid UTF-8). */
const ESCAPED = /[\udc80-\udcff]/g;
const HAS_ESCAPED = /[\udc80-\udcff]/;

/**
 * A directory reader: getdents64 when the `ffi` permission is granted on
 * Linux and glibc can be opened, `Deno.readDirSync` otherwise.
 *
 * @example
 * ```ts
 * import { openDirectoryReader } from "./dir_reader.ts";
 * using reader = openDirectoryReader();
 * reader.read(".", (name, kind) => console.log(kind, name));
 * ```
 */
export function openDirectoryReader(): DirectoryReader {
  return openGetdentsReader() ?? denoReader();
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function denoReader(): DirectoryReader {
  return {
    method: "Deno.readDirSync",
    follow(path: string): string {
      return Deno.realPathSync(path);
    },
    read(dir: string, visit: EntryVisitor): void {
      for (const entry of Deno.readDirSync(dir)) {
        visit(
          entry.name,
          entry.name.includes("\ufffd") && !exists(`${dir}/${entry.name}`)
            ? "undecodable"
            : kindOf(entry),
        );
      }
    },
    [Symbol.dispose](): void {},
  };
}

const ENOENT = 2;
const ELOOP = 40;

// d_type values of <dirent.h>.
const DT_UNKNOWN = 0;
const DT_DIR = 4;
const DT_REG = 8;
const DT_LNK = 10;

// struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
const RECLEN_OFFSET = 16;
const TYPE_OFFSET = 18;
const NAME_OFFSET = 19;

const NON_ASCII = /[^ -~\t\n\r]/; // anything but printable ASCII: re-decode to be sure

/** 128 KiB: a folder of 2,000 kernel files in a few calls. */
const BUFFER_BYTES = 128 * 1024;

/** A reader through glibc (lib/fs/libc.ts), when it can be opened and has getdents64. */
function openGetdentsReader(): DirectoryReader | undefined {
  const libc = openLibc();
  if (libc === undefined) return undefined; // not glibc (musl, say), or no ffi permission
  const { open, close, getdents64 } = libc.symbols;
  if (getdents64 === null) { // glibc < 2.30
    libc[Symbol.dispose]();
    return undefined;
  }
  const errno = (): number => libc.errno();
  const buffer = new Uint8Array(BUFFER_BYTES);
  const view = new DataView(buffer.buffer);
  const encoder = new TextEncoder();
  // One decode per buffer, one character per byte ("latin1" is
  // windows-1252): each name is then a cheap slice. A name with a byte above
  // 0x7f is decoded again as UTF-8 on its own.
  const bytewise = new TextDecoder("latin1");
  return {
    method: "getdents64",
    follow(path: string): string {
      if (!HAS_ESCAPED.test(path)) return Deno.realPathSync(path);
      const { realpath, strlen, free } = libc.rare();
      const real = realpath(encodeName(`${path}\0`, encoder), null);
      if (real === null) {
        const code = errno();
        const shown = escapeName(path);
        if (code === ENOENT) throw new Deno.errors.NotFound(`no such file: "${shown}"`);
        if (code === ELOOP) {
          throw new Deno.errors.FilesystemLoop(`too many levels of symbolic links: "${shown}"`);
        }
        throw new Error(`cannot follow "${shown}": errno ${code}`);
      }
      try {
        const view = new Deno.UnsafePointerView(real);
        return decodeName(new Uint8Array(view.getArrayBuffer(Number(strlen(real)))));
      } finally {
        free(real);
      }
    },
    read(dir: string, visit: EntryVisitor): void {
      // open(2) rather than opendir(3), which also calls fstat(2) and allocates.
      const fd = open(encodeName(`${dir}\0`, encoder), O_DIRECTORY | O_CLOEXEC);
      // Let Deno name the failure (NotFound, PermissionDenied, NotADirectory…).
      if (fd < 0) return denoReader().read(dir, visit);
      try {
        for (;;) {
          const filled = Number(getdents64(fd, buffer, BigInt(BUFFER_BYTES)));
          if (filled === 0) return;
          if (filled < 0) throw new Error(`cannot read directory ${dir}: getdents64 failed`);
          const text = bytewise.decode(buffer.subarray(0, filled));
          for (
            let offset = 0;
            offset < filled;
            offset += view.getUint16(offset + RECLEN_OFFSET, true)
          ) {
            const start = offset + NAME_OFFSET;
            const end = buffer.indexOf(0, start);
            let name = text.slice(start, end);
            if (NON_ASCII.test(name)) name = decodeName(buffer.subarray(start, end));
            if (name === "." || name === "..") continue;
            const type = buffer[offset + TYPE_OFFSET];
            visit(
              name,
              type === DT_REG
                ? "file"
                : type === DT_DIR
                ? "directory"
                : type === DT_LNK
                ? "symlink"
                : type === DT_UNKNOWN
                ? kindByLstat(`${dir}/${name}`)
                : "other",
            );
          }
        }
      } finally {
        close(fd);
      }
    },
    [Symbol.dispose](): void {
      libc[Symbol.dispose]();
    },
  };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** UTF-8, with each byte outside a valid sequence as U+DC80–U+DCFF (see `read`). */
function decodeName(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    let name = "";
    for (let i = 0; i < bytes.length;) {
      const b = bytes[i]!;
      const length = b < 0x80 ? 1 : b >> 5 === 6 ? 2 : b >> 4 === 14 ? 3 : b >> 3 === 30 ? 4 : 0;
      try {
        if (length === 0 || i + length > bytes.length) throw new RangeError();
        name += utf8.decode(bytes.subarray(i, i + length));
        i += length;
      } catch {
        name += String.fromCharCode(0xdc00 + b);
        i++;
      }
    }
    return name;
  }
}

/**
 * The bytes of a path built from names {@linkcode DirectoryReader.read}
 * gave: UTF-8, with each lone surrogate U+DC80–U+DCFF as the byte it stands
 * for. What a C call (open(2)) must get for a name that is not UTF-8.
 *
 * @example Usage
 * ```ts
 * import { nameBytes } from "./dir_reader.ts";
 * nameBytes("caf\udce9"); // Uint8Array [0x63, 0x61, 0x66, 0xe9]
 * ```
 *
 * @param name A name or path.
 * @returns Its bytes.
 */
export function nameBytes(name: string): Uint8Array<ArrayBuffer> {
  return encodeName(name, new TextEncoder());
}

/** The bytes of a name {@linkcode decodeName} made. */
function encodeName(name: string, encoder: TextEncoder): Uint8Array<ArrayBuffer> {
  if (!HAS_ESCAPED.test(name)) return encoder.encode(name);
  const parts = name.split(/([\udc80-\udcff])/);
  const chunks = parts.map((part) =>
    part.length === 1 && HAS_ESCAPED.test(part)
      ? Uint8Array.of(part.charCodeAt(0) - 0xdc00)
      : encoder.encode(part)
  );
  return concatBytes(chunks);
}

/** For file systems whose readdir does not fill in d_type. */
function kindByLstat(path: string): EntryKind {
  if (HAS_ESCAPED.test(path)) return "undecodable";
  return kindOf(Deno.lstatSync(path));
}

/** The kind a `Deno.DirEntry` or an lstat reports. */
function kindOf(info: { isFile: boolean; isDirectory: boolean; isSymlink: boolean }): EntryKind {
  return info.isFile
    ? "file"
    : info.isDirectory
    ? "directory"
    : info.isSymlink
    ? "symlink"
    : "other";
}
