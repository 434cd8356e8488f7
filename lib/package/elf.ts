/**
 * Reading what the dynamic loader reads from an ELF file: the header, the
 * program headers, PT_INTERP, and from PT_DYNAMIC the DT_NEEDED, DT_RUNPATH,
 * DT_RPATH and DT_SONAME strings (through DT_STRTAB, a virtual address mapped
 * to a file offset through the PT_LOAD segments, bounded by DT_STRSZ).
 *
 * Only ELF64 little-endian is read (x86-64 and AArch64 hosts, and AMD GPU
 * code objects); other classes and byte orders are reported as unsupported.
 * Sections are never read: the loader does not use them, and stripped or
 * hostile files may have none.
 *
 * Every offset is checked against what the file holds before it is used. A
 * file that is truncated, points outside itself or has garbage program
 * headers throws {@linkcode ElfFormatError} saying which part is wrong;
 * nothing is read past a fixed bound (at most 65,535 program headers, a
 * dynamic segment of at most 1 MiB, strings of at most 4 KiB), so a hostile
 * file can cost neither unbounded memory nor time.
 *
 * Built for tens of thousands of files: a reader keeps its buffers and reads
 * only the bytes it needs with positional reads (the first 1 KiB holds the
 * header, the program headers and the interpreter of nearly every file; the
 * dynamic segment and the strings are read where they are, at least 1 KiB at
 * a time: two or three reads per file. The kernel's copy is a large part of a
 * read: reading 4 KiB instead of 1 KiB costs about half a microsecond more,
 * and a larger first read costs more than the reads it spares). Fields are
 * read as 32-bit words of the host, which Deno's platforms (x86-64, AArch64)
 * order little-endian. With the `ffi` permission on Linux with glibc it calls
 * `openat`/`pread`/`close` directly, about 1.6× faster per file than Deno's
 * file API (measured on 5,000 small libraries), which it uses otherwise: the
 * same results, as tests/package/elf_test.ts checks by reading through both.
 *
 * Built-ins only: check-output runs it inside the Nix build sandbox.
 *
 * @module
 */

import { escapeName, nameBytes } from "../fs/dir_reader.ts";
import { O_CLOEXEC, O_DIRECTORY, O_NONBLOCK, O_PATH, openLibc } from "../fs/libc.ts";

/** What the loader needs to know about one ELF file. */
export interface ElfFile {
  /** `e_type`: 2 for an executable (ET_EXEC), 3 for a shared object or PIE (ET_DYN). */
  type: number;
  /** `e_machine`: 62 for x86-64 (EM_X86_64), 183 for AArch64, 224 for AMD GPU. */
  machine: number;
  /** The PT_INTERP path, when the file names an interpreter (an executable). */
  interpreter?: string;
  /** The DT_NEEDED names, in the file's order. */
  needed: string[];
  /** DT_RUNPATH, as written (`$ORIGIN` not expanded). */
  runpath?: string;
  /** DT_RPATH, as written (`$ORIGIN` not expanded). */
  rpath?: string;
  /** DT_SONAME. */
  soname?: string;
}

/**
 * An ELF file that cannot be read as the loader would: truncated, an offset
 * out of range, garbage program headers, or a class or byte order other than
 * ELF64 little-endian (then `unsupported` is `true`).
 *
 * @example Usage
 * ```ts
 * import { ElfFormatError, readElfBytes } from "./elf.ts";
 *
 * const bytes = new Uint8Array(64);
 * bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
 * bytes[32] = 0xff; // e_phoff far beyond the file
 * bytes[56] = 1; // one program header
 * try {
 *   readElfBytes(bytes);
 * } catch (error) {
 *   if (error instanceof ElfFormatError) console.log(error.message);
 * }
 * ```
 */
export class ElfFormatError extends Error {
  /** The error's name, for messages and logs. */
  override name = "ElfFormatError";
  /** `true` when the file is well-formed ELF of a class or byte order this reader does not read. */
  readonly unsupported: boolean;

  /**
   * Creates the error.
   *
   * @param message What is wrong, quoting the offending values.
   * @param options `unsupported` for a well-formed file of another class or byte order.
   */
  constructor(message: string, options: { unsupported?: boolean } = {}) {
    super(message);
    this.unsupported = options.unsupported ?? false;
  }
}

/** Reads ELF files one after another with one buffer; dispose of it (`using`) when done. */
export interface ElfReader extends Disposable {
  /** How files are read: `"pread"` (glibc through FFI) or `"Deno.FsFile"`. */
  readonly method: "pread" | "Deno.FsFile";
  /**
   * Reads `path`'s header, program headers and dynamic strings.
   *
   * @returns `undefined` when the file does not start with the ELF magic.
   * @throws {ElfFormatError} When the file is ELF but malformed or unsupported.
   * @throws {Deno.errors.NotFound} (and Deno's other errors) when it cannot be opened.
   */
  read(path: string): ElfFile | undefined;
  /**
   * Reads `name` in the folder `folder`, as `read(\`${folder}/${name}\`)`
   * does, opening it relative to the folder: the folder is looked up once
   * for a run of files in it, not once per file.
   *
   * @returns `undefined` when the file does not start with the ELF magic.
   * @throws {ElfFormatError} When the file is ELF but malformed or unsupported.
   * @throws {Deno.errors.NotFound} (and Deno's other errors) when it cannot be opened.
   */
  readIn(folder: string, name: string): ElfFile | undefined;
  /**
   * The first bytes of the file the last {@linkcode ElfReader.read} opened
   * (at most 1 KiB, the most of a `#!` line check-output reads; fewer when
   * the file is shorter), in a buffer the next
   * `read` reuses: a caller that looks for a `#!` line in a file that is not
   * ELF finds it here, without reading the file again.
   */
  readonly head: Uint8Array;
}

/**
 * An ELF reader: positional reads through glibc when the `ffi` permission is
 * granted on Linux, Deno's file API otherwise.
 *
 * @example Usage
 * ```ts
 * import { openElfReader } from "./elf.ts";
 *
 * using reader = openElfReader();
 * const elf = reader.read(Deno.execPath());
 * console.log(elf?.interpreter, elf?.needed);
 * ```
 */
export function openElfReader(): ElfReader {
  const source = openPreadSource() ?? denoSource();
  const parser = new Parser(source);
  return {
    method: source.method,
    read: (path) => parser.parse(path),
    readIn: (folder, name) => parser.parseIn(folder, name),
    get head(): Uint8Array {
      return parser.head;
    },
    [Symbol.dispose]: () => source.dispose(),
  };
}

/**
 * Reads an ELF file held in memory, as {@linkcode ElfReader.read} reads one on disk.
 *
 * @param bytes The whole file.
 * @returns `undefined` when `bytes` does not start with the ELF magic.
 * @throws {ElfFormatError} When the bytes are ELF but malformed or unsupported.
 *
 * @example Usage
 * ```ts
 * import { readElfBytes } from "./elf.ts";
 *
 * const elf = readElfBytes(await Deno.readFile(Deno.execPath()));
 * console.log(elf?.machine); // 62 on x86-64
 * readElfBytes(new TextEncoder().encode("#!/bin/sh\n")); // undefined
 * ```
 */
export function readElfBytes(bytes: Uint8Array): ElfFile | undefined {
  const source: Source = {
    method: "Deno.FsFile",
    open: () => true,
    openIn: () => true,
    read: (buffer, length, offset) => {
      if (offset >= bytes.length) return 0;
      const part = bytes.subarray(offset, Math.min(bytes.length, offset + length));
      buffer.set(part);
      return part.length;
    },
    close: () => {},
    dispose: () => {},
  };
  return new Parser(source).parse("");
}

// e_ident and header fields.
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const DYN_SIZE = 16;
const PHDR_WORDS = PHDR_SIZE / 4;
const DYN_WORDS = DYN_SIZE / 4;
const PN_XNUM = 0xffff;
const ET_EXEC = 2;
const ET_DYN = 3;
const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;
/** The tags read, indexed by tag (all are at most DT_RUNPATH). */
const WANTED_TAGS: readonly boolean[] = Array.from(
  { length: DT_RUNPATH + 1 },
  (_, tag) => [DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME, DT_RPATH, DT_RUNPATH].includes(tag),
);

/** With PN_XNUM the count lives in section 0; never read more program headers than this. */
const MAX_PHNUM = 65535;
const MAX_DYNAMIC_BYTES = 1 << 20;
const MAX_STRING_BYTES = 4096;
const MAX_FILE_BYTES = 2 ** 43;
/**
 * The first read: the header, the program headers and the interpreter of
 * nearly every file, and as much of a file that is not ELF as check-output
 * searches for a `#!` line (MAX_SHEBANG_BYTES of lib/package/_shebang.ts).
 */
const HEAD_BYTES = 1024;
/** Reads past the head fetch at least this much. */
const EXTRA_SLACK = 1024;
/** An interpreter and a dynamic segment this close are read in one go. */
const PREFETCH_BYTES = 16384;
/** Strings up to this long are checked for ASCII, built without a decoder call and kept. */
const ASCII_FAST_BYTES = 256;
/** At most this many strings are kept (a hostile tree's distinct names cost at most 1 MiB). */
const MAX_KNOWN_STRINGS = 4096;
/** Strings within this span of each other are read in one go. */
const STRING_WINDOW = 16384;
/** That read takes this much past the last string's start; a longer one is read again. */
const STRING_SLACK = 256;

/** Where bytes come from: a file opened by path, read at offsets. */
interface Source {
  readonly method: "pread" | "Deno.FsFile";
  /** Opens `path`; `false` when it is not a file that can be read (then the caller learns why). */
  open(path: string): boolean;
  /** Opens `name` in the folder `folder`, as `open` opens their joined path. */
  openIn(folder: string, name: string): boolean;
  /** Reads up to `length` bytes at `offset` into `buffer`; the count read (short at the end). */
  read(buffer: Uint8Array<ArrayBuffer>, length: number, offset: number): number;
  close(): void;
  dispose(): void;
}

const TWO_32 = 4294967296;

/**
 * The parser over one source with reused buffers. Values of 64-bit fields are
 * read as two 32-bit halves into a number: exact below 2^53, and anything
 * larger is out of range of every file anyway.
 */
class Parser {
  #source: Source;
  #head = new Uint8Array(HEAD_BYTES);
  #headView = new DataView(this.#head.buffer);
  #headWords = new Uint32Array(this.#head.buffer);
  #headLength = 0;
  #extra = new Uint8Array(HEAD_BYTES);
  #extraView = new DataView(this.#extra.buffer);
  #extraWords = new Uint32Array(this.#extra.buffer);
  /** The file offset of what the extra buffer holds (-1: nothing of this file), and how much. */
  #extraOffset = -1;
  #extraFilled = 0;
  /** Where the bytes of the last {@linkcode Parser.#at} are: the head or the extra buffer. */
  #buffer = this.#head;
  #view = this.#headView;
  #words = this.#headWords;
  /** The end of what is valid in `#buffer` after the last {@linkcode Parser.#at}. */
  #end = 0;
  /** Reused lists: PT_LOAD [vaddr, filesz, offset] triples, DT_NEEDED string offsets. */
  #loads: number[] = [];
  #needed: number[] = [];
  #decoder = new TextDecoder();
  /** The span of the dynamic string table read in one go (start -1: none), see #readDynamic. */
  #windowStart = -1;
  #windowEnd = 0;
  #windowFirst = 0;
  /** Where the last {@linkcode Parser.#text} stopped: at its NUL, or at its `end`. */
  #stop = 0;
  /** ASCII strings met before, by their length and a few of their bytes (see {@linkcode Parser.#text}). */
  #known = new Map<number, { bytes: Uint8Array; text: string }>();

  constructor(source: Source) {
    if (new Uint8Array(Uint32Array.of(1).buffer)[0] !== 1) {
      throw new Error("lib/package/elf.ts reads little-endian words: this machine is big-endian");
    }
    this.#source = source;
  }

  /** What the last parse read from the start of its file. */
  get head(): Uint8Array {
    return this.#head.subarray(0, this.#headLength);
  }

  parse(path: string): ElfFile | undefined {
    this.#headLength = 0;
    if (!this.#source.open(path)) return undefined;
    try {
      return this.#parseOpen();
    } finally {
      this.#source.close();
    }
  }

  parseIn(folder: string, name: string): ElfFile | undefined {
    this.#headLength = 0;
    if (!this.#source.openIn(folder, name)) return undefined;
    try {
      return this.#parseOpen();
    } finally {
      this.#source.close();
    }
  }

  #parseOpen(): ElfFile | undefined {
    const head = this.#head;
    const view = this.#headView;
    const filled = this.#source.read(head, HEAD_BYTES, 0);
    this.#headLength = filled;
    this.#extraOffset = -1;
    if (
      filled < 4 || head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46
    ) {
      return undefined;
    }
    if (filled < EHDR_SIZE) {
      throw new ElfFormatError(
        `truncated: the ELF header needs ${EHDR_SIZE} bytes, the file holds ${filled}`,
      );
    }
    const elfClass = head[4]!;
    const data = head[5]!;
    if (elfClass !== ELFCLASS64 || data !== ELFDATA2LSB) {
      throw new ElfFormatError(
        `unsupported: ELF class ${elfClass} (${elfClass === 1 ? "32-bit" : "unknown"}), ` +
          `byte order ${data} (${
            data === 2 ? "big-endian" : data === 1 ? "little-endian" : "unknown"
          }); only ELF64 little-endian is read`,
        { unsupported: (elfClass === 1 || elfClass === 2) && (data === 1 || data === 2) },
      );
    }
    const type = view.getUint16(16, true);
    const machine = view.getUint16(18, true);
    const phoff = u64(view, 32);
    const phentsize = view.getUint16(54, true);
    let phnum = view.getUint16(56, true);
    const elf: ElfFile = { type, machine, needed: [] };
    if (phnum === 0) return elf; // no segments: nothing for the loader (a relocatable object)
    // The loader accepts no other size (glibc: "ELF file's phentsize not the expected size").
    if (phentsize !== PHDR_SIZE) {
      throw new ElfFormatError(
        `malformed: e_phentsize is ${phentsize}, not the ${PHDR_SIZE} bytes of an ELF64 program header`,
      );
    }
    if (phnum === PN_XNUM) phnum = this.#extendedPhnum(view);

    const tableBytes = phentsize * phnum;
    const table = this.#at(phoff, tableBytes, "the program header table", false, true);
    const words = this.#words;
    // PT_LOAD segments as [vaddr, filesz, offset] triples, for mapping DT_STRTAB.
    // Written from the start, never shortened: its room stays from file to file.
    const loads = this.#loads;
    let loadCount = 0;
    let dynamicOffset = -1;
    let dynamicBytes = 0;
    let interpOffset = -1;
    let interpBytes = 0;
    // Fields as 32-bit words (the table starts at a multiple of 4, see #at): p_type
    // at word 0, p_offset at 2, p_vaddr at 4, p_filesz at 8.
    for (let i = 0, w = table >> 2; i < phnum; i++, w += PHDR_WORDS) {
      const pType = words[w];
      if (pType === PT_LOAD) {
        loads[loadCount] = words[w + 4]! + words[w + 5]! * TWO_32;
        loads[loadCount + 1] = words[w + 8]! + words[w + 9]! * TWO_32;
        loads[loadCount + 2] = words[w + 2]! + words[w + 3]! * TWO_32;
        loadCount += 3;
      } else if (pType === PT_DYNAMIC && dynamicOffset === -1) {
        dynamicOffset = words[w + 2]! + words[w + 3]! * TWO_32;
        dynamicBytes = words[w + 8]! + words[w + 9]! * TWO_32;
      } else if (pType === PT_INTERP && interpOffset === -1) {
        interpOffset = words[w + 2]! + words[w + 3]! * TWO_32;
        interpBytes = words[w + 8]! + words[w + 9]! * TWO_32;
      }
    }
    // glibc: "object file has no loadable segments" (program headers overwritten, say).
    if (loadCount === 0 && (type === ET_EXEC || type === ET_DYN)) {
      throw new ElfFormatError(
        `malformed: none of the ${phnum} program headers is a PT_LOAD segment`,
      );
    }
    // The interpreter is read before the dynamic segment reuses the extra buffer.
    if (interpOffset !== -1) {
      if (interpBytes === 0 || interpBytes > MAX_STRING_BYTES) {
        throw new ElfFormatError(
          `malformed: PT_INTERP is ${interpBytes} bytes long (expected 1 to ${MAX_STRING_BYTES})`,
        );
      }
      // patchelf puts an interpreter and a dynamic segment it rewrites
      // together at the end of a file (install.sh sets every executable's):
      // past the first read, both and the strings after them come in one.
      if (interpOffset >= this.#headLength && dynamicOffset >= this.#headLength) {
        const first = Math.min(interpOffset, dynamicOffset);
        const end = Math.max(interpOffset + interpBytes, dynamicOffset + dynamicBytes) +
          EXTRA_SLACK;
        if (end - first <= PREFETCH_BYTES && end <= MAX_FILE_BYTES) {
          this.#prefetch(first, end - first);
        }
      }
      const start = this.#at(interpOffset, interpBytes, "PT_INTERP");
      const interpreter = this.#text(start, start + interpBytes);
      if (interpreter === "") throw new ElfFormatError("malformed: PT_INTERP is an empty string");
      elf.interpreter = interpreter;
    }
    if (dynamicOffset === -1) return elf; // statically linked
    this.#readDynamic(elf, dynamicOffset, dynamicBytes, loads, loadCount);
    return elf;
  }

  /** e_phnum of PN_XNUM: the real count is sh_info of section header 0. */
  #extendedPhnum(view: DataView): number {
    const shoff = u64(view, 40);
    if (shoff === 0) {
      throw new ElfFormatError("malformed: e_phnum is PN_XNUM (0xffff) but there is no section 0");
    }
    const section = this.#at(shoff, 64, "section header 0 (e_phnum is PN_XNUM)");
    const count = this.#view.getUint32(section + 44, true);
    if (count > MAX_PHNUM) {
      throw new ElfFormatError(
        `malformed: ${count} program headers (at most ${MAX_PHNUM} are read)`,
      );
    }
    return count;
  }

  #readDynamic(
    elf: ElfFile,
    offset: number,
    bytes: number,
    loads: number[],
    loadCount: number,
  ): void {
    if (bytes > MAX_DYNAMIC_BYTES) {
      throw new ElfFormatError(
        `malformed: the dynamic segment is ${bytes} bytes (at most ${MAX_DYNAMIC_BYTES} are read)`,
      );
    }
    const length = bytes - (bytes % DYN_SIZE);
    const dynamic = this.#at(offset, length, "the dynamic segment", false, true);
    const words = this.#words;
    let strtab = -1;
    let strsz = -1;
    let soname = -1;
    let rpath = -1;
    let runpath = -1;
    // As `loads`: written from the start, never shortened.
    const needed = this.#needed;
    let neededCount = 0;
    for (let w = dynamic >> 2, end = (dynamic + length) >> 2; w < end; w += DYN_WORDS) {
      // d_tag is signed, but every tag read here fits in the low 32 bits:
      // the high half is read only when the low one is DT_NULL or wanted.
      const tag = words[w]!;
      // Tags above DT_RUNPATH (DT_GNU_HASH, DT_VERSYM…) and the rest are not read.
      if (tag > DT_RUNPATH || !(tag === DT_NULL || WANTED_TAGS[tag])) continue;
      if (words[w + 1] !== 0) continue;
      if (tag === DT_NULL) break;
      const value = words[w + 2]! + words[w + 3]! * TWO_32;
      if (tag === DT_NEEDED) needed[neededCount++] = value;
      else if (tag === DT_STRTAB) strtab = value;
      else if (tag === DT_STRSZ) strsz = value;
      else if (tag === DT_SONAME) soname = value;
      else if (tag === DT_RPATH) rpath = value;
      else runpath = value;
    }
    if (neededCount === 0 && soname === -1 && rpath === -1 && runpath === -1) return;
    if (strtab === -1) {
      throw new ElfFormatError("malformed: strings are named but DT_STRTAB is missing");
    }
    if (strsz === -1) throw new ElfFormatError("malformed: DT_STRSZ is missing");
    const tableOffset = fileOffset(loads, loadCount, strtab, strsz);
    // Offsets into the table, then one read spanning them when they are close.
    let first = Infinity;
    let last = -1;
    for (let i = 0; i < neededCount + 3; i++) {
      const at = i < neededCount
        ? needed[i]!
        : i === neededCount
        ? soname
        : i === neededCount + 1
        ? rpath
        : runpath;
      if (at === -1) continue;
      if (at >= strsz) {
        throw new ElfFormatError(
          `malformed: a dynamic string at ${at} lies beyond DT_STRSZ (${strsz})`,
        );
      }
      if (at < first) first = at;
      if (at > last) last = at;
    }
    this.#windowStart = -1;
    if (last - first <= STRING_WINDOW) {
      const span = Math.min(strsz, last + STRING_SLACK) - first;
      this.#windowStart = this.#at(tableOffset + first, span, "the dynamic string table", true);
      this.#windowEnd = this.#end;
      this.#windowFirst = first;
    }
    if (neededCount !== 0) {
      // Made at its size: a list grown by pushing takes room for 17 names.
      const names = new Array<string>(neededCount);
      for (let i = 0; i < neededCount; i++) {
        names[i] = this.#dynamicString(needed[i]!, tableOffset, strsz);
      }
      elf.needed = names;
    }
    if (soname !== -1) elf.soname = this.#dynamicString(soname, tableOffset, strsz);
    if (rpath !== -1) elf.rpath = this.#dynamicString(rpath, tableOffset, strsz);
    if (runpath !== -1) elf.runpath = this.#dynamicString(runpath, tableOffset, strsz);
  }

  /**
   * The dynamic string at `at` of the table at file offset `tableOffset`:
   * from the window {@linkcode Parser.#readDynamic} read when there is one
   * (the window is in `#buffer` until the next read), else read on its own.
   */
  #dynamicString(at: number, tableOffset: number, strsz: number): string {
    if (this.#windowStart !== -1) {
      const end = this.#windowEnd;
      const value = this.#text(this.#windowStart + (at - this.#windowFirst), end);
      if (this.#stop < end) return value;
      // Longer than the window holds: read on its own, into the window's buffer.
      this.#windowStart = -1;
    }
    const length = Math.min(strsz - at, MAX_STRING_BYTES);
    const start = this.#at(tableOffset + at, length, "the dynamic string table", true);
    const end = this.#end;
    const value = this.#text(start, end);
    if (this.#stop >= end) {
      throw new ElfFormatError(
        `malformed: the dynamic string at ${at} has no terminating NUL within ${length} bytes`,
      );
    }
    return value;
  }

  /**
   * The text of `#buffer` from `start` to its first NUL before `end` (or to
   * `end`), `#stop` telling where it stopped. An ASCII string (nearly every
   * name) is scanned in the same pass that finds the NUL and, when the
   * parser has met its bytes before, not built again: thousands of files
   * name the same few libraries, runpaths and interpreter, and keeping one
   * copy of each saves both the work and the memory of the files' names
   * kept until they are resolved. Anything else is decoded as UTF-8.
   */
  #text(start: number, end: number): string {
    const buffer = this.#buffer;
    const nul = buffer.indexOf(0, start);
    const at = nul === -1 || nul > end ? end : nul;
    this.#stop = at;
    const length = at - start;
    if (length === 0) return "";
    if (length > ASCII_FAST_BYTES) return this.#decoder.decode(buffer.subarray(start, at));
    // Looked up by its length and a few of its bytes, then compared whole.
    const key = ((length * 31 + buffer[start]!) * 31 + buffer[at - 1]!) * 31 +
      buffer[start + (length >> 1)]! + buffer[start + (length >> 2)]! * 65536;
    const known = this.#known.get(key);
    if (known !== undefined && known.bytes.length === length) {
      const bytes = known.bytes;
      let i = 0;
      while (i < length && bytes[i] === buffer[start + i]) i++;
      if (i === length) return known.text;
    }
    const bytes = buffer.slice(start, at);
    for (let i = 0; i < length; i++) {
      if (bytes[i]! >= 0x80) return this.#decoder.decode(bytes);
    }
    const text = String.fromCharCode.apply(null, bytes as unknown as number[]);
    if (this.#known.size < MAX_KNOWN_STRINGS) this.#known.set(key, { bytes, text });
    return text;
  }

  /** Grows the extra buffer to hold `bytes` (a whole number of words); returns `bytes`. */
  #extraOf(bytes: number): number {
    if (this.#extra.length < bytes) {
      this.#extra = new Uint8Array(bytes);
      this.#extraView = new DataView(this.#extra.buffer);
      this.#extraWords = new Uint32Array(this.#extra.buffer);
    }
    return bytes;
  }

  /**
   * Reads `length` bytes at `offset` into the extra buffer for the
   * {@linkcode Parser.#at} calls that follow, which check what they get.
   */
  #prefetch(offset: number, length: number): void {
    const want = this.#extraOf((length + 3) & ~3);
    const got = this.#source.read(this.#extra, want, offset);
    this.#extraOffset = got > 0 ? offset : -1;
    this.#extraFilled = got;
  }

  /**
   * Makes `length` bytes at `offset` available in `#buffer` (the head buffer
   * when they lie in it, else the extra buffer, grown as needed but never
   * beyond the bounds above) and returns where they start there. Throws
   * naming `what` when the file ends first; with `partial`, a short read at
   * the end of the file is kept as it is (strings), `#end` telling how far.
   * With `aligned`, they start at a multiple of 4 there, to be read through
   * `#words` (a table at an odd offset of the file is read into the extra
   * buffer, which starts at it).
   */
  #at(offset: number, length: number, what: string, partial = false, aligned = false): number {
    if (offset + length <= this.#headLength && (!aligned || (offset & 3) === 0)) {
      this.#buffer = this.#head;
      this.#view = this.#headView;
      this.#words = this.#headWords;
      this.#end = offset + length;
      return offset;
    }
    // Beyond any real file; file systems refuse such offsets (EINVAL) rather than read nothing.
    if (offset + length > MAX_FILE_BYTES) {
      throw new ElfFormatError(`out of range: ${what} at offset ${offset} lies beyond the file`);
    }
    const cached = offset - this.#extraOffset;
    if (
      this.#extraOffset !== -1 && cached >= 0 && cached + length <= this.#extraFilled &&
      (!aligned || (cached & 3) === 0)
    ) {
      this.#buffer = this.#extra;
      this.#view = this.#extraView;
      this.#words = this.#extraWords;
      this.#end = cached + length;
      return cached;
    }
    // A little more than asked: what comes next (the strings after a dynamic
    // segment that patchelf moved, say) is then often read already.
    // A whole number of 32-bit words (see #words).
    const want = this.#extraOf(Math.max((length + 3) & ~3, EXTRA_SLACK));
    const got = this.#source.read(this.#extra, want, offset);
    this.#extraOffset = offset;
    this.#extraFilled = got;
    if (got < length && !(partial && got > 0)) {
      throw new ElfFormatError(
        got === 0
          ? `out of range: ${what} (${length} bytes at offset ${offset}) lies beyond the file's end`
          : `truncated: ${what} (${length} bytes at offset ${offset}) is cut off after ${got} bytes`,
      );
    }
    this.#buffer = this.#extra;
    this.#view = this.#extraView;
    this.#words = this.#extraWords;
    this.#end = Math.min(got, length);
    return 0;
  }
}

function u64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * TWO_32;
}

/** The file offset of virtual address `address`, through the PT_LOAD segment holding it (of the first `count` entries of `loads`). */
function fileOffset(loads: number[], count: number, address: number, size: number): number {
  for (let i = 0; i < count; i += 3) {
    const vaddr = loads[i]!;
    const filesz = loads[i + 1]!;
    if (address >= vaddr && address < vaddr + filesz) {
      if (address + size > vaddr + filesz) {
        throw new ElfFormatError(
          `malformed: DT_STRTAB (0x${address.toString(16)}, DT_STRSZ ${size}) runs past ` +
            `the end of its PT_LOAD segment`,
        );
      }
      return loads[i + 2]! + (address - vaddr);
    }
  }
  throw new ElfFormatError(
    `malformed: DT_STRTAB (0x${address.toString(16)}) lies in no PT_LOAD segment`,
  );
}

function denoSource(): Source {
  let file: Deno.FsFile | undefined;
  return {
    method: "Deno.FsFile",
    open(path: string): boolean {
      file = Deno.openSync(path);
      return true;
    },
    openIn(folder: string, name: string): boolean {
      file = Deno.openSync(`${folder}/${name}`);
      return true;
    },
    read(buffer: Uint8Array<ArrayBuffer>, length: number, offset: number): number {
      file!.seekSync(offset, Deno.SeekMode.Start);
      let filled = 0;
      while (filled < length) {
        const n = file!.readSync(buffer.subarray(filled, length));
        if (n === null || n === 0) break;
        filled += n;
      }
      return filled;
    },
    close(): void {
      file?.close();
      file = undefined;
    },
    dispose(): void {},
  };
}

/** A lone surrogate standing for a byte of a name that is not UTF-8 (lib/fs/dir_reader.ts). */
const NOT_UTF8 = /[\udc80-\udcff]/;

// O_RDONLY (0), and O_NONBLOCK: a FIFO swapped in never blocks.
const OPEN_FLAGS = O_NONBLOCK | O_CLOEXEC;
// A folder to open files relative to.
const DIRECTORY_FLAGS = O_PATH | O_DIRECTORY | O_CLOEXEC;

function openPreadSource(): Source | undefined {
  const libc = openLibc();
  if (libc === undefined) return undefined; // not glibc, or no ffi permission
  const { open, openat, pread, close } = libc.symbols;
  const encoder = new TextEncoder();
  let pathBytes = new Uint8Array(4096);
  let fd = -1;
  // Files come folder by folder (a walk's order): opening each relative to
  // its folder spares the kernel the lookup of every folder above it.
  let folder = "";
  let folderFd = -1;
  /** Whether the last text given to `encode` was ASCII. */
  let ascii = true;
  const encode = (text: string): Uint8Array<ArrayBuffer> => {
    if (pathBytes.length < text.length * 3 + 1) pathBytes = new Uint8Array(text.length * 3 + 1);
    // ASCII (nearly every name) byte by byte: a call to the encoder costs
    // more than the loop for a short name.
    let i = 0;
    for (; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code >= 0x80) break;
      pathBytes[i] = code;
    }
    ascii = i === text.length;
    const written = ascii ? i : encoder.encodeInto(text, pathBytes).written;
    pathBytes[written] = 0;
    return pathBytes;
  };
  /** Makes `dir` the folder files are opened relative to (-1 when it cannot be opened). */
  const enter = (dir: string): void => {
    if (dir === folder) return;
    if (folderFd >= 0) close(folderFd);
    folder = dir;
    folderFd = NOT_UTF8.test(dir) ? -1 : open(encode(dir), DIRECTORY_FLAGS);
  };
  /** Opens `path` on its own: a name that is not UTF-8 by its bytes (lib/fs/dir_reader.ts). */
  const openPath = (path: string): boolean => {
    const escaped = NOT_UTF8.test(path);
    fd = open(escaped ? nameBytes(`${path}\0`) : encode(path), OPEN_FLAGS);
    if (fd >= 0) return true;
    if (escaped) throw new Error(`cannot open "${escapeName(path)}"`);
    // Let Deno name the failure (NotFound, PermissionDenied…).
    Deno.openSync(path).close();
    throw new Error(`cannot open "${path}"`);
  };
  return {
    method: "pread",
    open(path: string): boolean {
      const slash = path.lastIndexOf("/");
      if (slash <= 0 || !path.startsWith("/")) return openPath(path);
      return this.openIn(path.slice(0, slash), path.slice(slash + 1));
    },
    openIn(dir: string, name: string): boolean {
      enter(dir);
      if (folderFd < 0) return openPath(`${dir}/${name}`);
      const bytes = encode(name);
      // An ASCII name needs no test for the bytes of a name that is not UTF-8.
      if (!ascii && NOT_UTF8.test(name)) return openPath(`${dir}/${name}`);
      fd = openat(folderFd, bytes, OPEN_FLAGS);
      return fd >= 0 || openPath(`${dir}/${name}`);
    },
    read(buffer: Uint8Array<ArrayBuffer>, length: number, offset: number): number {
      // One call: on a regular file pread returns less only at the end of the
      // file, and asking again there would cost a second call for nothing.
      const n = Number(pread(fd, buffer, BigInt(length), BigInt(offset)));
      if (n < 0) throw new Error(`cannot read at offset ${offset}: pread failed`);
      return n;
    },
    close(): void {
      if (fd >= 0) close(fd);
      fd = -1;
    },
    dispose(): void {
      if (folderFd >= 0) close(folderFd);
      folderFd = -1;
      libc[Symbol.dispose]();
    },
  };
}
