import {
  deepEqual as assertEquals,
  notDeepEqual as assertNotEquals,
  ok as assert,
  rejects,
} from "node:assert/strict";
import { join } from "node:path";
import { writeSampleRocmTree } from "../../lib/package/sample_rocm.ts";
import { withTempDir } from "../_tools.ts";

async function listTree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(join(dir, prefix))) {
    const path = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory) out.push(...await listTree(dir, path));
    else out.push(path);
  }
  return out.sort();
}

Deno.test("writeSampleRocmTree() writes the tarbomb layout with dot-directories", async () => {
  await withTempDir(async (dir) => {
    await writeSampleRocmTree(dir);
    const top = [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
    assertEquals(top, [".info", ".kpack", "LICENSE", "bin", "include", "lib", "share"]);
    assertEquals(await Deno.readTextFile(join(dir, ".info/version")), "7.12.0a20260308\n");
    for (const name of ["rocminfo", "hipcc", "amd-smi"]) {
      const info = await Deno.stat(join(dir, "bin", name));
      assertEquals(info.mode! & 0o777, 0o755, name);
      assert((await Deno.readTextFile(join(dir, "bin", name))).startsWith("#!/bin/sh\n"));
    }
    assertEquals(await Deno.readLink(join(dir, "bin/clang")), "../lib/llvm/bin/clang");
    assertEquals((await Deno.stat(join(dir, "bin/clang"))).mode! & 0o111, 0o111);
    assertEquals(await Deno.readLink(join(dir, "lib/libamdhip64.so")), "libamdhip64.so.7");
    await Deno.stat(join(dir, "lib/llvm/amdgcn/bitcode/ocml.bc"));
    await Deno.stat(join(dir, "include/hip/hip_runtime.h"));
  });
});

Deno.test("writeSampleRocmTree() writes per-ISA kernels and family tokens", async () => {
  await withTempDir(async (dir) => {
    await writeSampleRocmTree(dir, { isas: ["gfx1100", "gfx1151"], kernelBytes: 10 });
    const files = await listTree(dir);
    for (const isa of ["gfx1100", "gfx1151"]) {
      const own = files.filter((path) => path.includes(isa));
      assertEquals(own.length, 5, `${isa}: ${own.join(", ")}`);
      assert(own.includes(`.kpack/blas_lib_${isa}.kpack`));
      assert(own.some((path) => path.endsWith(".hsaco")));
      assert(own.some((path) => path.endsWith(".co")));
      assert(own.some((path) => path.endsWith(".kdb")));
      for (const path of own) assertEquals((await Deno.stat(join(dir, path))).size, 10);
    }
    // gfx1100 belongs to gfx110X-all; gfx1151 to no gfxNNNX family.
    assert(files.includes(".kpack/rccl_gfx110X.kpack"));
    assertEquals(files.filter((path) => path.includes("gfx115X")), []);
  });
});

Deno.test("writeSampleRocmTree() writes a hard-link pair and a path over 100 bytes", async () => {
  await withTempDir(async (dir) => {
    await writeSampleRocmTree(dir, { isas: [] });
    const a = await Deno.stat(join(dir, "lib/libhsa-runtime64.so.1.18.0"));
    const b = await Deno.stat(join(dir, "lib/libhsa-runtime64.so.1"));
    assertEquals(a.ino, b.ino);
    assertEquals(a.nlink, 2);
    const files = await listTree(dir);
    assert(files.some((path) => path.startsWith("share/doc/") && path.length > 100));
    assertEquals(files.filter((path) => /gfx\d/.test(path)), []);
  });
});

Deno.test("writeSampleRocmTree() is deterministic and rewritable", async () => {
  await withTempDir(async (dir) => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    await writeSampleRocmTree(a, { version: "7.13.0a20260401" });
    await writeSampleRocmTree(b, { version: "7.13.0a20260401" });
    await writeSampleRocmTree(b, { version: "7.13.0a20260401" }); // over an existing tree
    const files = await listTree(a);
    assertEquals(await listTree(b), files);
    for (const path of files) {
      const info = await Deno.lstat(join(a, path));
      if (info.isSymlink) continue;
      assertEquals(await Deno.readFile(join(b, path)), await Deno.readFile(join(a, path)), path);
    }
    const k1 = await Deno.readFile(join(a, ".kpack/blas_lib_gfx1100.kpack"));
    const k2 = await Deno.readFile(join(a, ".kpack/blas_lib_gfx1151.kpack"));
    assertNotEquals(k1, k2);
    assertEquals(await Deno.readTextFile(join(a, ".info/version")), "7.13.0a20260401\n");
  });
});

Deno.test("writeSampleRocmTree() rejects malformed options before writing", async () => {
  await withTempDir(async (dir) => {
    await rejects(writeSampleRocmTree(dir, { isas: ["../x"] }), SyntaxError);
    await rejects(writeSampleRocmTree(dir, { version: "1.0/../../x" }), SyntaxError);
    await rejects(writeSampleRocmTree(dir, { kernelBytes: -1 }), RangeError);
    assertEquals([...Deno.readDirSync(dir)], []);
  });
});
