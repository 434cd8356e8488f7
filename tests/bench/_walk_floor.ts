/**
 * The floors of check-output's work, for tests/bench/check_output_bench.ts:
 * `deno run --allow-read --allow-ffi _walk_floor.ts TREE [--read-elf | --read-dynamic]`
 * walks TREE with lib/fs/dir_reader.ts (getdents64) and prints how many
 * regular files it holds; with `--read-elf`, it also opens each ELF candidate
 * (check-output's rule: below bin, sbin or libexec, or named `*.so`, `*.so.*`,
 * not `*.debug`) relative to its folder and reads its first 4 KiB, the least
 * any reader of its program headers does: openat, pread, close, through
 * glibc, no parsing. With `--read-dynamic`, it also reads each file's
 * dynamic segment where the program headers say it lies (when the first
 * 4 KiB do not hold it): the least any check of DT_NEEDED reads, with only
 * the parsing that finds it.
 *
 * @module
 */

import { openDirectoryReader } from "../../lib/fs/dir_reader.ts";

const [tree, flag] = Deno.args;
if (tree === undefined) throw new TypeError("usage: _walk_floor.ts TREE [--read-elf]");
const readDynamic = flag === "--read-dynamic";
const readElf = flag === "--read-elf" || readDynamic;
const glibc = Deno.dlopen(
  "libc.so.6",
  {
    open: { parameters: ["buffer", "i32"], result: "i32" },
    openat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
    pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
    close: { parameters: ["i32"], result: "i32" },
  } as const,
);
const { open, openat, pread, close } = glibc.symbols;
// <fcntl.h>: O_PATH | O_DIRECTORY | O_CLOEXEC for folders, O_NONBLOCK | O_CLOEXEC for files.
const FOLDER_FLAGS = 0o10000000 | 0o200000 | 0o2000000;
const FILE_FLAGS = 0o4000 | 0o2000000;
const EXECUTABLE_DIRS = new Set(["bin", "sbin", "libexec"]);
const encoder = new TextEncoder();
const pathBytes = new Uint8Array(8192);
const head = new Uint8Array(4096);
const headView = new DataView(head.buffer);
const dynamic = new Uint8Array(4096);
/** Reads the dynamic segment of the ELF64 file `fd` whose first `length` bytes are in `head`. */
const readDynamicSegment = (fd: number, length: number): void => {
  const phoff = Number(headView.getBigUint64(32, true));
  const phnum = headView.getUint16(56, true);
  for (let i = 0, at = phoff; i < phnum && at + 56 <= length; i++, at += 56) {
    if (headView.getUint32(at, true) !== 2) continue; // PT_DYNAMIC
    const offset = headView.getBigUint64(at + 8, true);
    const size = Number(headView.getBigUint64(at + 32, true));
    if (Number(offset) + size > length) {
      pread(fd, dynamic, BigInt(Math.min(size, dynamic.length)), offset);
    }
    return;
  }
};
const cString = (text: string): Uint8Array<ArrayBuffer> => {
  pathBytes[encoder.encodeInto(text, pathBytes).written] = 0;
  return pathBytes;
};

let files = 0;
let elfFiles = 0;
using reader = openDirectoryReader();
const stack: { dir: string; executable: boolean }[] = [{ dir: tree, executable: false }];
while (stack.length > 0) {
  const { dir, executable } = stack.pop()!;
  let folder = -1;
  reader.read(dir, (name, kind) => {
    if (kind === "directory") {
      stack.push({ dir: `${dir}/${name}`, executable: executable || EXECUTABLE_DIRS.has(name) });
    } else if (kind === "file") {
      files++;
      if (
        !readElf || name.endsWith(".debug") ||
        !(executable || name.endsWith(".so") || name.includes(".so."))
      ) return;
      if (folder < 0) folder = open(cString(dir), FOLDER_FLAGS);
      const fd = openat(folder, cString(name), FILE_FLAGS);
      if (fd < 0) throw new Error(`cannot open "${dir}/${name}"`);
      const length = Number(pread(fd, head, BigInt(head.length), 0n));
      if (length >= 4 && head[0] === 0x7f) {
        elfFiles++;
        // ELF64 (all the tree holds): its program headers say where the segment is.
        if (readDynamic && length >= 64 && head[4] === 2) readDynamicSegment(fd, length);
      }
      close(fd);
    }
  });
  if (folder >= 0) close(folder);
}
glibc.close();
// deno-lint-ignore no-console
console.log(readElf ? `${files} ${elfFiles}` : `${files}`);
