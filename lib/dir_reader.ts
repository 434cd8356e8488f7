/**
 * Reading directories fast: names and entry kinds, as readdir reports them.
 *
 * `Deno.readDirSync` builds one JavaScript object per entry in Rust and hands
 * it over; on a ROCm output of 100,000 files that alone takes twice as long as
 * `find` takes for the whole walk. When the script holds the `ffi` permission
 * on Linux with glibc, the reader calls glibc's `getdents64` into one reused
 * buffer and decodes only the names, which walks faster than `find`. Without
 * that permission (or elsewhere) it uses `Deno.readDirSync`: both report the
 * same entries, which tests/dir_reader_test.ts checks.
 *
 * @module
 */

/** What a directory entry is, without following symlinks. */
export type EntryKind = "file" | "directory" | "symlink" | "other";

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
   */
  read(dir: string, visit: EntryVisitor): void;
}

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
  const ffiGranted = Deno.build.os === "linux" &&
    Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  return (ffiGranted ? openGetdentsReader() : undefined) ?? denoReader();
}

function denoReader(): DirectoryReader {
  return {
    method: "Deno.readDirSync",
    read(dir: string, visit: EntryVisitor): void {
      for (const entry of Deno.readDirSync(dir)) {
        visit(
          entry.name,
          entry.isFile
            ? "file"
            : entry.isDirectory
            ? "directory"
            : entry.isSymlink
            ? "symlink"
            : "other",
        );
      }
    },
    [Symbol.dispose](): void {},
  };
}

const GLIBC_SYMBOLS = {
  opendir: { parameters: ["buffer"], result: "pointer" },
  dirfd: { parameters: ["pointer"], result: "i32" },
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  closedir: { parameters: ["pointer"], result: "i32" },
} as const;

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

function openGetdentsReader(): DirectoryReader | undefined {
  let glibc: Deno.DynamicLibrary<typeof GLIBC_SYMBOLS>;
  try {
    glibc = Deno.dlopen("libc.so.6", GLIBC_SYMBOLS);
  } catch {
    return undefined; // not glibc (musl, say), or getdents64 missing (glibc < 2.30)
  }
  const { opendir, dirfd, getdents64, closedir } = glibc.symbols;
  const buffer = new Uint8Array(BUFFER_BYTES);
  const view = new DataView(buffer.buffer);
  const encoder = new TextEncoder();
  // One decode per buffer, one character per byte ("latin1" is
  // windows-1252): each name is then a cheap slice. A name with a byte above
  // 0x7f is decoded again as UTF-8 on its own.
  const bytewise = new TextDecoder("latin1");
  const utf8 = new TextDecoder();
  return {
    method: "getdents64",
    read(dir: string, visit: EntryVisitor): void {
      const handle = opendir(encoder.encode(`${dir}\0`));
      // Let Deno name the failure (NotFound, PermissionDenied, NotADirectory…).
      if (handle === null) return denoReader().read(dir, visit);
      try {
        const fd = dirfd(handle);
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
            if (NON_ASCII.test(name)) name = utf8.decode(buffer.subarray(start, end));
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
        closedir(handle);
      }
    },
    [Symbol.dispose](): void {
      glibc.close();
    },
  };
}

/** For file systems whose readdir does not fill in d_type. */
function kindByLstat(path: string): EntryKind {
  const info = Deno.lstatSync(path);
  return info.isFile
    ? "file"
    : info.isDirectory
    ? "directory"
    : info.isSymlink
    ? "symlink"
    : "other";
}
