// lib/package/elf.ts on real ELF files (Debian's rocminfo package: real ROCm objects)
// against readelf, through glibc's pread (this process holds --allow-all), in
// memory, and through Deno's file API (a child process without --allow-ffi);
// then on hostile copies: truncated, offsets out of range, program headers
// overwritten, and random corruption, each reported, never a crash or a hang.
import assert from "node:assert/strict";
import { join } from "node:path";
import { ElfFormatError, openElfReader, readElfBytes } from "../../lib/package/elf.ts";
import { ElfClosureCheck } from "../../lib/package/elf_closure.ts";
import { copyElf, readelfFields, SYSTEM_LIBS } from "../_elf_fixtures.ts";
import { requireTools, runReadOnly, withTempDir } from "../_tools.ts";

const ROCM_FILES = [
  "/usr/bin/rocminfo",
  `${SYSTEM_LIBS}/libhsa-runtime64.so.1`,
  `${SYSTEM_LIBS}/libhsakmt.so.1`,
];
const tools = await requireTools(
  "ELF reader tests (real ROCm ELF files from Debian's rocminfo, readelf, patchelf)",
  "rocminfo",
  "readelf",
  "patchelf",
);
/** Far more than any case needs: a hang or a quadratic loop fails it. */
const TIME_BOUND_MS = 2000;

/** The same reads from a child process that holds only --allow-read (Deno.FsFile). */
function readInChild(paths: string[]): Promise<{ method: string; results: unknown[] }> {
  return runReadOnly(
    `import { openElfReader } from "@repo/lib/package/elf.ts";
using reader = openElfReader();
const results = Deno.args.map((path) => {
  try {
    return reader.read(path) ?? null;
  } catch (error) {
    return { error: error.name, message: error.message };
  }
});
console.log(JSON.stringify({ method: reader.method, results }));
`,
    paths,
  ) as Promise<{ method: string; results: unknown[] }>;
}

Deno.test({
  name: "openElfReader() reads real ROCm ELF files as readelf does, through pread and Deno.FsFile",
  ignore: !tools,
  fn: async () => {
    await withTempDir(async (dir) => {
      // Copies with each kind of search path, set by patchelf.
      const runpath = join(dir, "bin/rocminfo");
      await copyElf("/usr/bin/rocminfo", runpath, {
        runpath: "$ORIGIN/../lib:$ORIGIN/../lib/llvm/lib:$ORIGIN/../lib/rocm_sysdeps/lib",
        interpreter:
          "/nix/store/00000000000000000000000000000000-glibc-2.40/lib/ld-linux-x86-64.so.2",
      });
      const rpath = join(dir, "lib/libhsakmt.so.1");
      await copyElf(`${SYSTEM_LIBS}/libhsakmt.so.1`, rpath, {
        rpath: "${ORIGIN}/rocm_sysdeps/lib",
      });
      const paths = [...ROCM_FILES, "/bin/true", runpath, rpath];
      using reader = openElfReader();
      assert.equal(reader.method, Deno.build.os === "linux" ? "pread" : "Deno.FsFile");
      const results = [];
      for (const path of paths) {
        const elf = reader.read(path);
        assert.ok(elf !== undefined, path);
        const { type, machine, ...fields } = elf;
        assert.deepEqual(fields, await readelfFields(path), path);
        assert.equal(machine, 62, path); // EM_X86_64
        assert.equal(type, 3, path); // ET_DYN: PIE executables and shared libraries
        assert.deepEqual(readElfBytes(await Deno.readFile(path)), elf, path);
        results.push(elf);
      }
      // Spot checks against known values, in case readelf and the reader share a mistake.
      assert.deepEqual(results[0]!.needed, [
        "libhsa-runtime64.so.1",
        "libstdc++.so.6",
        "libgcc_s.so.1",
        "libc.so.6",
      ]);
      assert.equal(results[0]!.interpreter, "/lib64/ld-linux-x86-64.so.2");
      assert.equal(results[1]!.soname, "libhsa-runtime64.so.1");
      assert.equal(results[2]!.soname, "libhsakmt.so.1");
      assert.equal(
        results[4]!.runpath,
        "$ORIGIN/../lib:$ORIGIN/../lib/llvm/lib:$ORIGIN/../lib/rocm_sysdeps/lib",
      );
      assert.equal(results[4]!.rpath, undefined);
      assert.equal(results[5]!.rpath, "${ORIGIN}/rocm_sysdeps/lib");
      assert.equal(results[5]!.runpath, undefined);
      const child = await readInChild(paths);
      assert.equal(child.method, "Deno.FsFile");
      assert.deepEqual(child.results, JSON.parse(JSON.stringify(results)));
    });
  },
});

Deno.test("openElfReader() returns undefined for files that are not ELF", async () => {
  await withTempDir(async (dir) => {
    const cases: [string, Uint8Array][] = [
      ["empty", new Uint8Array(0)],
      ["script", new TextEncoder().encode("#!/bin/sh\nexit 0\n")],
      ["linker-script.so", new TextEncoder().encode("/* GNU ld script */\nGROUP ( libc.so.6 )\n")],
      ["three-bytes", new Uint8Array([0x7f, 0x45, 0x4c])],
    ];
    using reader = openElfReader();
    for (const [name, bytes] of cases) {
      await Deno.writeFile(join(dir, name), bytes);
      assert.equal(reader.read(join(dir, name)), undefined, name);
      // What check-output searches for a #! line, without reading the file again.
      assert.deepEqual(reader.head, bytes, name);
      assert.equal(readElfBytes(bytes), undefined, name);
    }
    assert.throws(() => reader.read(join(dir, "missing")), Deno.errors.NotFound);
  });
});

Deno.test("ElfClosureCheck.head is the start of the file add() found not to be ELF", async () => {
  await withTempDir(async (dir) => {
    const script = new TextEncoder().encode(`#!/bin/sh\n${"x".repeat(5000)}\n`);
    await Deno.writeFile(join(dir, "tool"), script);
    using check = new ElfClosureCheck();
    assert.equal(check.add(join(dir, "tool")), false);
    assert.deepEqual(check.head, script.subarray(0, 1024));
    assert.equal(check.add(join(dir, "tool")), false); // read before: not read again
    assert.equal(check.head.length, 0);
  });
});

Deno.test({
  name: "openElfReader() reads tables at odd offsets and strings longer than its window alike",
  ignore: !tools,
  fn: async () => {
    await withTempDir(async (dir) => {
      // The reader reads 32-bit words: tables at offsets that are not a
      // multiple of 4, in its first read and in a later one.
      const path = `${SYSTEM_LIBS}/libhsakmt.so.1`;
      const real = await Deno.readFile(path);
      const layout = layoutOf(real);
      const tableBytes = layout.phnum * 56;
      const inHead = real.slice();
      inHead.copyWithin(layout.phoff + 1, layout.phoff, layout.phoff + tableBytes);
      new DataView(inHead.buffer).setBigUint64(32, BigInt(layout.phoff + 1), true);
      // Past the first read: the program headers up to PT_DYNAMIC, then the
      // dynamic segment 1 byte after them, both in one later read.
      const phnum = (layout.dynamicPhdr - layout.phoff) / 56 + 1;
      const tableAt = real.length + 3;
      const dynamicAt = tableAt + phnum * 56 + 1;
      const later = new Uint8Array(dynamicAt + 1024);
      later.set(real);
      later.set(real.subarray(layout.phoff, layout.phoff + phnum * 56), tableAt);
      later.set(real.subarray(layout.dynamicOffset, layout.dynamicOffset + 1024), dynamicAt);
      const view = new DataView(later.buffer);
      view.setBigUint64(32, BigInt(tableAt), true);
      view.setUint16(56, phnum, true);
      view.setBigUint64(tableAt + (phnum - 1) * 56 + 8, BigInt(dynamicAt), true);
      // A DT_RUNPATH far longer than what is read past the last string's start.
      const long = `$ORIGIN/${"a-long-folder-name/".repeat(40)}lib`;
      await copyElf(path, join(dir, "long"), { runpath: long });
      await Deno.writeFile(join(dir, "in-head"), inHead);
      await Deno.writeFile(join(dir, "later"), later);
      using reader = openElfReader();
      const expected = reader.read(path);
      assert.deepEqual(reader.read(join(dir, "in-head")), expected);
      assert.deepEqual(reader.read(join(dir, "later")), expected);
      assert.deepEqual(readElfBytes(later), expected);
      // patchelf's interpreter and dynamic segment at the end, read in one
      // go: a file cut short there is reported as when they are read apart.
      await copyElf("/usr/bin/rocminfo", join(dir, "exe"), {
        interpreter: "/nix/store/00000000000000000000000000000000-glibc/lib/ld-linux-x86-64.so.2",
      });
      const exe = await Deno.readFile(join(dir, "exe"));
      const { interpreter } = reader.read(join(dir, "exe"))!;
      const interpAt = new TextDecoder("latin1").decode(exe).indexOf(interpreter!);
      await Deno.writeFile(join(dir, "cut"), exe.subarray(0, interpAt + 10));
      assert.throws(() => reader.read(join(dir, "cut")), {
        name: "ElfFormatError",
        message: `truncated: PT_INTERP (${interpreter!.length + 1} bytes at offset ${interpAt}) ` +
          "is cut off after 10 bytes",
      });
      const library = reader.read(join(dir, "long"))!;
      assert.equal(library.runpath, long);
      assert.deepEqual(library, {
        ...(await readelfFields(join(dir, "long"))),
        type: 3,
        machine: 62,
      });
    });
  },
});

/** Little-endian field writers over a copy of a real file. */
function edit(bytes: Uint8Array, change: (view: DataView) => void): Uint8Array {
  const copy = bytes.slice();
  change(new DataView(copy.buffer));
  return copy;
}

interface Layout {
  phoff: number;
  phnum: number;
  /** Offset of the PT_DYNAMIC program header. */
  dynamicPhdr: number;
  dynamicOffset: number;
  /** Offsets of the DT_STRTAB and DT_STRSZ entries in the file. */
  strtabEntry: number;
  strszEntry: number;
  strtabOffset: number;
  strsz: number;
}

/** Where /bin/true keeps what the cases below damage, read independently of lib/package/elf.ts. */
function layoutOf(bytes: Uint8Array): Layout {
  const view = new DataView(bytes.buffer);
  const phoff = Number(view.getBigUint64(32, true));
  const phnum = view.getUint16(56, true);
  let dynamicPhdr = -1;
  const loads: [number, number][] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * 56;
    const type = view.getUint32(at, true);
    if (type === 2) dynamicPhdr = at;
    if (type === 1) {
      loads.push([
        Number(view.getBigUint64(at + 16, true)),
        Number(view.getBigUint64(at + 8, true)),
      ]);
    }
  }
  const dynamicOffset = Number(view.getBigUint64(dynamicPhdr + 8, true));
  let strtabEntry = -1;
  let strszEntry = -1;
  for (let at = dynamicOffset; view.getBigUint64(at, true) !== 0n; at += 16) {
    const tag = view.getBigUint64(at, true);
    if (tag === 5n) strtabEntry = at;
    if (tag === 10n) strszEntry = at;
  }
  const strtab = Number(view.getBigUint64(strtabEntry + 8, true));
  const [vaddr, offset] = loads.findLast(([v]) => v <= strtab)!;
  return {
    phoff,
    phnum,
    dynamicPhdr,
    dynamicOffset,
    strtabEntry,
    strszEntry,
    strtabOffset: strtab - vaddr + offset,
    strsz: Number(view.getBigUint64(strszEntry + 8, true)),
  };
}

Deno.test({
  name: "openElfReader() reports malformed ELF files with what is wrong, within a time bound",
  ignore: !tools,
  fn: async () => {
    const real = await Deno.readFile("/bin/true");
    const layout = layoutOf(real);
    const cases: [string, Uint8Array, RegExp][] = [
      [
        "truncated in the header",
        real.subarray(0, 10),
        /^truncated: the ELF header needs 64 bytes, the file holds 10$/,
      ],
      ["truncated before the last header byte", real.subarray(0, 63), /^truncated: the ELF header/],
      [
        "truncated in the program headers",
        real.subarray(0, layout.phoff + 56 * 2 + 5),
        /^truncated: the program header table \(\d+ bytes at offset 64\) is cut off/,
      ],
      [
        "truncated before the dynamic segment",
        real.subarray(0, layout.dynamicOffset),
        /^out of range: the dynamic segment .* lies beyond the file's end$/,
      ],
      [
        "truncated in the dynamic segment",
        real.subarray(0, layout.dynamicOffset + 40),
        /^truncated: the dynamic segment .* is cut off after 40 bytes$/,
      ],
      [
        "the string table overwritten without a NUL",
        edit(real, (v) => {
          for (let at = layout.strtabOffset; at < layout.strtabOffset + layout.strsz; at++) {
            v.setUint8(at, 0x41);
          }
        }),
        /^malformed: the dynamic string at \d+ has no terminating NUL within \d+ bytes$/,
      ],
      [
        "e_phoff out of range",
        edit(real, (v) => v.setBigUint64(32, 1n << 40n, true)),
        /^out of range: the program header table .* at offset 1099511627776\) lies beyond the file's end$/,
      ],
      [
        "e_phoff beyond 2^53",
        edit(real, (v) => v.setBigUint64(32, 0xffffffffffffff00n, true)),
        /^out of range: the program header table at offset \d+ lies beyond the file$/,
      ],
      [
        "program headers overwritten with 0xff",
        edit(real, (v) => {
          for (let at = layout.phoff; at < layout.phoff + layout.phnum * 56; at++) {
            v.setUint8(at, 0xff);
          }
        }),
        /^malformed: none of the 13 program headers is a PT_LOAD segment$/,
      ],
      [
        "PT_DYNAMIC's offset out of range",
        edit(real, (v) => v.setBigUint64(layout.dynamicPhdr + 8, 0x7fffffffn, true)),
        /^out of range: the dynamic segment \(480 bytes at offset 2147483647\)/,
      ],
      [
        "PT_DYNAMIC far too large",
        edit(real, (v) => v.setBigUint64(layout.dynamicPhdr + 32, 1n << 40n, true)),
        /^malformed: the dynamic segment is 1099511627776 bytes \(at most 1048576 are read\)$/,
      ],
      [
        "DT_STRTAB pointing outside every segment",
        edit(real, (v) => v.setBigUint64(layout.strtabEntry + 8, 0x7fff0000n, true)),
        /^malformed: DT_STRTAB \(0x7fff0000\) lies in no PT_LOAD segment$/,
      ],
      [
        "DT_STRSZ running past its segment",
        edit(real, (v) => v.setBigUint64(layout.strszEntry + 8, 1n << 32n, true)),
        /^malformed: DT_STRTAB \(0x[0-9a-f]+, DT_STRSZ 4294967296\) runs past the end of its PT_LOAD segment$/,
      ],
      [
        "DT_STRSZ too small for the strings",
        edit(real, (v) => v.setBigUint64(layout.strszEntry + 8, 1n, true)),
        /^malformed: a dynamic string at \d+ lies beyond DT_STRSZ \(1\)$/,
      ],
      [
        "a huge e_phnum",
        edit(real, (v) => v.setUint16(56, 0xfffe, true)),
        /^truncated: the program header table \(3669904 bytes at offset 64\) is cut off after \d+ bytes$/,
      ],
      [
        "e_phnum PN_XNUM with garbage in section 0",
        edit(real, (v) => {
          v.setUint16(56, 0xffff, true);
          v.setBigUint64(40, 1n << 50n, true);
        }),
        /^out of range: section header 0 \(e_phnum is PN_XNUM\)/,
      ],
      [
        "e_phentsize not 56",
        edit(real, (v) => v.setUint16(54, 0xffff, true)),
        /^malformed: e_phentsize is 65535, not the 56 bytes of an ELF64 program header$/,
      ],
      [
        "PT_INTERP too long",
        edit(real, (v) => {
          for (let i = 0; i < layout.phnum; i++) {
            const at = layout.phoff + i * 56;
            if (v.getUint32(at, true) === 3) v.setBigUint64(at + 32, 1n << 20n, true);
          }
        }),
        /^malformed: PT_INTERP is 1048576 bytes long \(expected 1 to 4096\)$/,
      ],
    ];
    const unsupported: [string, Uint8Array, RegExp][] = [
      [
        "ELF32",
        edit(real, (v) => v.setUint8(4, 1)),
        /^unsupported: ELF class 1 \(32-bit\), byte order 1/,
      ],
      [
        "big-endian",
        edit(real, (v) => v.setUint8(5, 2)),
        /^unsupported: .*byte order 2 \(big-endian\)/,
      ],
    ];
    const invalid: [string, Uint8Array, RegExp][] = [
      ["class 7", edit(real, (v) => v.setUint8(4, 7)), /^unsupported: ELF class 7 \(unknown\)/],
    ];
    await withTempDir(async (dir) => {
      using reader = openElfReader();
      for (const [name, bytes, message] of [...cases, ...unsupported, ...invalid]) {
        const path = join(dir, name.replaceAll(" ", "-"));
        await Deno.writeFile(path, bytes);
        const start = performance.now();
        let fromFile: unknown;
        try {
          reader.read(path);
        } catch (error) {
          fromFile = error;
        }
        assert.ok(fromFile instanceof ElfFormatError, `${name}: ${String(fromFile)}`);
        assert.match(fromFile.message, message, name);
        assert.equal(fromFile.unsupported, unsupported.some(([n]) => n === name), name);
        assert.throws(() => readElfBytes(bytes), {
          name: "ElfFormatError",
          message: fromFile.message,
        }, name);
        assert.ok(performance.now() - start < TIME_BOUND_MS, `${name}: took too long`);
      }
      // The Deno.FsFile reader reports the same.
      const names = cases.map(([name]) => join(dir, name.replaceAll(" ", "-")));
      const child = await readInChild(names);
      for (const [i, result] of child.results.entries()) {
        assert.equal((result as { error: string }).error, "ElfFormatError", cases[i]![0]);
        assert.match((result as { message: string }).message, cases[i]![2], cases[i]![0]);
      }
    });
  },
});

Deno.test({
  name:
    "readElfBytes() survives random corruption of a real ROCm library: a result or ElfFormatError",
  ignore: !tools,
  fn: async () => {
    const real = await Deno.readFile(`${SYSTEM_LIBS}/libhsakmt.so.1`);
    const layout = layoutOf(real);
    // xorshift32: the same corruptions every run, so a failure can be replayed.
    let seed = 0x9e3779b9;
    const random = (below: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % below;
    };
    // Where the reader looks: the header, the program headers, the dynamic segment.
    const regions = [
      [0, 64],
      [layout.phoff, layout.phnum * 56],
      [layout.dynamicOffset, 512],
    ] as const;
    let parsed = 0;
    let rejected = 0;
    const start = performance.now();
    for (let i = 0; i < 3000; i++) {
      const bytes = real.slice(0, i % 7 === 0 ? random(real.length) : real.length);
      for (let flips = 1 + random(8); flips > 0; flips--) {
        const [from, length] = regions[random(regions.length)]!;
        const at = from + random(length);
        if (at < bytes.length) bytes[at] = random(256);
      }
      try {
        if (readElfBytes(bytes) !== undefined) parsed++;
      } catch (error) {
        if (!(error instanceof ElfFormatError)) throw new Error(`case ${i}: ${String(error)}`);
        rejected++;
      }
    }
    assert.ok(parsed > 0 && rejected > 0, `parsed ${parsed}, rejected ${rejected}`);
    assert.ok(performance.now() - start < 10 * TIME_BOUND_MS, "3000 corrupt files took too long");
  },
});

Deno.test({
  name: "openElfReader() agrees with readelf on a sample of this system's libraries",
  ignore: !tools,
  fn: async () => {
    // Every 10th regular file of Debian's multiarch folder (sorted: the same
    // sample on every run of one system), ELF or not, up to 30 ELF files.
    const names = [...Deno.readDirSync(SYSTEM_LIBS)].filter((entry) => entry.isFile)
      .map((entry) => entry.name).sort();
    using reader = openElfReader();
    let compared = 0;
    for (let i = 0; i < names.length && compared < 30; i += 10) {
      const path = join(SYSTEM_LIBS, names[i]!);
      let elf;
      try {
        elf = reader.read(path);
      } catch (error) {
        if (error instanceof Deno.errors.PermissionDenied) continue;
        throw error;
      }
      if (elf === undefined) continue;
      const { type: _type, machine: _machine, ...fields } = elf;
      assert.deepEqual(fields, await readelfFields(path), path);
      compared++;
    }
    assert.ok(compared >= 10, `only ${compared} ELF files in ${SYSTEM_LIBS}`);
  },
});
