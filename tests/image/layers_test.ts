import assert from "node:assert/strict";
import { type Closure, parseClosure } from "../../lib/store/closure.ts";
import {
  isaTokens,
  targetIsas,
  tokenCoversIsa,
  tokensMatchTarget,
} from "../../lib/releases/isa_files.ts";
import { kernelKind, kernelTokens } from "../../lib/releases/kernel_files.ts";
import {
  type Layer,
  planLayers,
  popularity,
  rankStorePaths,
  splitBySubtree,
} from "../../lib/image/layers.ts";
import { compareTreePaths, type StoreFile } from "../../lib/store/store_scan.ts";

const hash = (name: string): string => {
  const alphabet = "0123456789abcdfghijklmnpqrsvwxyz";
  let out = "";
  for (let i = 0; i < 32; i++) out += alphabet[(name.charCodeAt(i % name.length) * (i + 7)) % 32];
  return out;
};
const p = (name: string): string => `/nix/store/${hash(name)}-${name}`;

function closureOf(graph: Record<string, string[]>): Closure {
  return parseClosure(
    JSON.stringify(
      Object.entries(graph).map(([name, refs]) => ({
        path: p(name),
        narSize: 1,
        references: refs.map(p),
      })),
    ),
  );
}

const dir = (path: string): StoreFile => ({
  path,
  type: "directory",
  mode: 0o555,
  size: 0,
});
const file = (path: string, size = 10): StoreFile => ({
  path,
  type: "file",
  mode: 0o444,
  size,
});

/** Each store path: its root directory and one small file. */
function smallFiles(closure: Closure): Map<string, StoreFile[]> {
  return new Map(closure.paths.map(({ path }) => [path, [dir(path), file(`${path}/data`)]]));
}

// app → lib → glibc; tool → glibc; tool → zlib; app → zlib
const graph = {
  app: ["lib", "zlib"],
  lib: ["glibc"],
  tool: ["glibc", "zlib"],
  glibc: [],
  zlib: [],
};

Deno.test("popularity() counts direct and transitive dependents", () => {
  const counts = popularity(closureOf(graph));
  assert.equal(counts.get(p("glibc")), 3, "lib, tool and (through lib) app");
  assert.equal(counts.get(p("zlib")), 2);
  assert.equal(counts.get(p("lib")), 1);
  assert.equal(counts.get(p("app")), 0);
  assert.equal(counts.get(p("tool")), 0);
});

Deno.test("rankStorePaths() orders by popularity, ties by name", () => {
  assert.deepEqual(rankStorePaths(closureOf(graph)), [
    p("glibc"),
    p("zlib"),
    p("lib"),
    p("app"),
    p("tool"),
  ]);
});

Deno.test("popularity() rejects a reference cycle", () => {
  assert.throws(() => popularity(closureOf({ a: ["b"], b: ["a"] })), RangeError);
});

Deno.test("planLayers() gives each path a layer when they fit, in rank order", () => {
  const closure = closureOf(graph);
  const layers = planLayers(closure, smallFiles(closure));
  assert.deepEqual(
    layers.map((layer) => layer.storePaths),
    rankStorePaths(closure).map((x) => [x]),
  );
});

Deno.test("planLayers() merges the least popular paths into the last layer", () => {
  const closure = closureOf(graph);
  const layers = planLayers(closure, smallFiles(closure), { maxLayers: 3 });
  assert.equal(layers.length, 3);
  assert.deepEqual(layers[0]!.storePaths, [p("glibc")]);
  assert.deepEqual(layers[1]!.storePaths, [p("zlib")]);
  assert.deepEqual(layers[2]!.storePaths, [p("lib"), p("app"), p("tool")]);
  const merged = layers[2]!.files.map((f) => f.path);
  assert.deepEqual(merged, [...merged].sort(compareTreePaths), "merged files are in tree order");
  assert.equal(merged.length, 6);
  assert.equal(planLayers(closure, smallFiles(closure), { maxLayers: 1 }).length, 1);
});

Deno.test("planLayers() refuses more than 125 layers or fewer than 1", () => {
  const closure = closureOf(graph);
  for (const maxLayers of [0, 126, 1.5]) {
    assert.throws(() => planLayers(closure, smallFiles(closure), { maxLayers }), RangeError);
  }
});

/** A ROCm-like store path: common files and kernels for three ISAs. */
function rocm(): { closure: Closure; files: Map<string, StoreFile[]> } {
  const closure = closureOf({ rocm: ["glibc"], glibc: [] });
  const root = p("rocm");
  const list = [
    dir(root),
    dir(`${root}/.kpack`),
    file(`${root}/.kpack/blas_lib_gfx1100.kpack`, 4000),
    file(`${root}/.kpack/blas_lib_gfx1151.kpack`, 4000),
    file(`${root}/.kpack/rccl_gfx110X.kpack`, 2000),
    dir(`${root}/bin`),
    file(`${root}/bin/rocminfo`),
    dir(`${root}/lib`),
    file(`${root}/lib/libamdhip64.so.7`, 3000),
    dir(`${root}/lib/rocblas`),
    dir(`${root}/lib/rocblas/library`),
    file(`${root}/lib/rocblas/library/Kernels.so-000-gfx1100.hsaco`, 5000),
    file(`${root}/lib/rocblas/library/Kernels.so-000-gfx1151.hsaco`, 5000),
    file(`${root}/lib/rocblas/library/Kernels.so-000-gfx90a.hsaco`, 5000),
    file(`${root}/lib/rocblas/library/TensileLibrary.dat`, 100),
  ];
  const files = smallFiles(closure);
  files.set(root, list);
  return { closure, files };
}

const names = (layers: Layer[]): string[] =>
  layers.flatMap((layer) => layer.files.map((f) => f.path.split("/").pop()!));

Deno.test("planLayers() keeps only the target's kernels, family tokens included", () => {
  const { closure, files } = rocm();
  const gfx1100 = planLayers(closure, files, { target: "gfx1100" });
  const gfx1151 = planLayers(closure, files, { target: "gfx1151" });
  const all = planLayers(closure, files);

  assert.ok(names(gfx1100).includes("blas_lib_gfx1100.kpack"));
  assert.ok(names(gfx1100).includes("rccl_gfx110X.kpack"));
  assert.ok(names(gfx1100).includes("Kernels.so-000-gfx1100.hsaco"));
  assert.ok(!names(gfx1100).some((name) => /gfx1151|gfx90a/.test(name)));
  assert.ok(names(gfx1151).includes("Kernels.so-000-gfx1151.hsaco"));
  assert.ok(!names(gfx1151).some((name) => /gfx1100|gfx110X|gfx90a/.test(name)));
  assert.equal(names(all).filter((name) => /gfx/.test(name)).length, 6);
  assert.ok(names(gfx1151).includes("TensileLibrary.dat"), "files without tokens are common");
  const common = (layers: Layer[]): Layer[] => layers.filter((layer) => layer.tokens.length === 0);
  assert.deepEqual(common(gfx1100), common(gfx1151), "common layers do not depend on the target");
  assert.deepEqual(common(all), common(gfx1151));
  assert.deepEqual(gfx1100.slice(-2).map((layer) => layer.tokens), [["gfx110X"], ["gfx1100"]]);
  assert.deepEqual(
    planLayers(closure, files, { target: "gfx110X-all" }).map((layer) => layer.tokens).slice(-2),
    [["gfx110X"], ["gfx1100"]],
  );
});

Deno.test("planLayers() keeps gfx-named files that are not GPU code in every image", () => {
  const { closure, files } = rocm();
  const root = p("rocm");
  const extra = [
    dir(`${root}/include`),
    file(`${root}/include/config_gfx1100.h`),
    file(`${root}/lib/hip-targets-gfx1151.cmake`),
    file(`${root}/lib/tensile_gfx90a.py`),
    file(`${root}/lib/libMIOpenCKGroupedConv_gfx1100.so`),
  ];
  files.set(root, [...files.get(root)!, ...extra].sort((a, b) => compareTreePaths(a.path, b.path)));
  const gfx1100 = planLayers(closure, files, { target: "gfx1100" });
  const gfx1151 = planLayers(closure, files, { target: "gfx1151" });
  const all = planLayers(closure, files);
  for (
    const name of [
      "config_gfx1100.h",
      "hip-targets-gfx1151.cmake",
      "tensile_gfx90a.py",
      "libMIOpenCKGroupedConv_gfx1100.so",
    ]
  ) {
    for (const layers of [gfx1100, gfx1151, all]) {
      const holder = layers.find((layer) => layer.files.some((f) => f.path.endsWith(`/${name}`)));
      assert.deepEqual(holder?.tokens, [], `${name} is in a common layer of every image`);
    }
  }
});

Deno.test("planLayers() counts every kernel layer against the budget", () => {
  const { closure, files } = rocm();
  // 4 kernel groups (gfx110X, gfx1100, gfx1151, gfx90a) + 2 common paths.
  assert.equal(planLayers(closure, files, { maxLayers: 6, target: "gfx1151" }).length, 3);
  const merged = planLayers(closure, files, { maxLayers: 5, target: "gfx1151" });
  assert.deepEqual(merged.map((layer) => layer.storePaths.length), [2, 1]);
  assert.throws(() => planLayers(closure, files, { maxLayers: 4 }), RangeError);
  assert.throws(() => planLayers(closure, files, { target: "gfx9999" }), RangeError);
});

Deno.test("planLayers() splits a big store path along subtrees", () => {
  const { closure, files } = rocm();
  const layers = planLayers(closure, files, { splitBytes: 5000 });
  const rocmLayers = layers.filter((layer) =>
    layer.tokens.length === 0 && layer.storePaths.includes(p("rocm"))
  );
  assert.ok(rocmLayers.length >= 2, `split into ${rocmLayers.length}`);
  for (const layer of rocmLayers) assert.match(layer.description, /part \d of \d/);
  const commonFiles = files.get(p("rocm"))!.filter((f) => isaTokens(f.path).length === 0);
  assert.deepEqual(rocmLayers.flatMap((layer) => layer.files), commonFiles);
  for (const layer of layers) {
    const weight = layer.files.reduce((sum, f) => sum + 512 + Math.ceil(f.size / 512) * 512, 0);
    assert.ok(weight <= 5000 || layer.files.length === 1, `${layer.description}: ${weight}`);
  }
});

Deno.test("splitBySubtree() keeps subtrees whole when they fit and covers every file", () => {
  const files = [
    dir("/s"),
    dir("/s/a"),
    file("/s/a/1", 1000),
    file("/s/a/2", 1000),
    dir("/s/b"),
    file("/s/b/1", 1000),
    file("/s/b/2", 1000),
    file("/s/c", 5000),
    file("/s/d", 10),
  ];
  const runs = splitBySubtree(files, 4100); // a subtree here: 512 + 2 × 1536 bytes of tar
  assert.deepEqual(runs.flat(), files);
  assert.deepEqual(runs.map((run) => run.map((f) => f.path)), [
    ["/s", "/s/a", "/s/a/1", "/s/a/2"],
    ["/s/b", "/s/b/1", "/s/b/2"],
    ["/s/c"],
    ["/s/d"],
  ]);
  assert.deepEqual(splitBySubtree(files, 10 ** 9), [files]);
  assert.deepEqual(splitBySubtree([], 10), []);
});

Deno.test("isaTokens() finds ISA, family and generic tokens only as whole words", () => {
  assert.deepEqual(isaTokens(".kpack/blas_lib_gfx1100.kpack"), ["gfx1100"]);
  assert.deepEqual(isaTokens("lib/Kernels.so-000-gfx90a.hsaco"), ["gfx90a"]);
  assert.deepEqual(isaTokens("share/miopen/db/gfx1151_60.kdb"), ["gfx1151"]);
  assert.deepEqual(isaTokens(".kpack/rccl_gfx110x.kpack"), ["gfx110X"]);
  assert.deepEqual(isaTokens("lib/x_gfx11-generic.co"), ["gfx11-generic"]);
  assert.deepEqual(isaTokens("lib/Tensile_gfx1100_gfx1101.dat"), ["gfx1100", "gfx1101"]);
  assert.deepEqual(isaTokens("lib/libgfx1100x.so"), []);
  assert.deepEqual(isaTokens("lib/libamdhip64.so"), []);
});

Deno.test("kernelTokens() takes GPU code of the KERNEL_KINDS table only", () => {
  const kernels: [string, string][] = [
    ["lib/rocblas/library/Kernels.so-000-gfx90a.hsaco", "AMDGPU code object"],
    ["lib/hipblaslt/library/extop_gfx942.co", "AMDGPU code object"],
    [".kpack/rccl_gfx110X.kpack", "kpack device code archive"],
    ["lib/rocblas/library/TensileLibrary_lazy_gfx1151.dat", "Tensile solution library"],
    ["lib/hipblaslt/library/gfx942/TensileLibrary_gfx942.yaml", "Tensile solution library"],
    ["share/miopen/db/gfx1100_48.kdb", "MIOpen kernel database"],
    ["share/miopen/db/gfx1030_36.HIP.fdb.txt", "MIOpen find/performance database or tuning model"],
    ["share/miopen/db/gfx90a68.db", "MIOpen find/performance database or tuning model"],
    ["share/miopen/db/gfx908.tn.model", "MIOpen find/performance database or tuning model"],
    ["share/miopen/db/gfx90878.db.txt", "MIOpen find/performance database or tuning model"],
    ["lib/aotriton.images/amd-gfx942/flash/attn_fwd/k.aks2", "AOTriton kernel image"],
  ];
  for (const [path, kind] of kernels) {
    assert.equal(kernelKind(path)?.name, kind, path);
    assert.notDeepEqual(kernelTokens(path), [], path);
  }
  for (
    const path of [
      "include/rocwmma/internal/config_gfx942.h",
      "lib/cmake/hip/hip-targets-gfx1100.cmake",
      "lib/python3.12/site-packages/tensile/gfx90a.py",
      "lib/libMIOpenCKGroupedConv_gfx1151.so",
      "share/doc/gfx1100.dat",
      "lib/pkgconfig/gfx1100.db",
      "lib/llvm/amdgcn/bitcode/oclc_isa_version_1100.bc",
    ]
  ) {
    assert.deepEqual(kernelTokens(path), [], path);
  }
  assert.deepEqual(kernelTokens("lib/rocblas/library/TensileLibrary.dat"), [], "no token");
  assert.deepEqual(kernelTokens("share/miopen/db/gfx90a68.kdb"), ["gfx90a"]);
  assert.deepEqual(kernelTokens("share/miopen/db/gfx90878.db.txt"), ["gfx908"]);
  assert.deepEqual(kernelTokens("share/miopen/db/gfx1030_36.HIP.fdb.txt"), ["gfx1030"]);
});

Deno.test("tokenCoversIsa() follows lib/releases/targets.json families and generic targets", () => {
  assert.ok(tokenCoversIsa("gfx110X", "gfx1103"));
  assert.ok(!tokenCoversIsa("gfx110X", "gfx1151"));
  assert.ok(tokenCoversIsa("gfx90X", "gfx90a"));
  assert.ok(!tokenCoversIsa("gfx90X", "gfx900"), "targets.json: gfx90X is 906, 908, 90a");
  assert.ok(tokenCoversIsa("gfx11-generic", "gfx1151"));
  assert.ok(tokenCoversIsa("gfx10-3-generic", "gfx1030"));
  assert.ok(!tokenCoversIsa("gfx10-3-generic", "gfx1010"));
  assert.ok(tokenCoversIsa("gfx9-generic", "gfx90c"));
  assert.ok(tokensMatchTarget([], ["gfx1151"]));
  assert.deepEqual(targetIsas("gfx120X-all"), ["gfx1200", "gfx1201"]);
  assert.throws(() => targetIsas("gfx110X"), RangeError);
});

Deno.test("parseClosure() reads Nix 2.8 arrays, keyed objects and exportReferencesGraph", () => {
  const a = p("a");
  const b = p("b");
  const array = [
    { path: a, narHash: "sha256-x", narSize: 5, references: [a, b] },
    { path: b, narSize: 7, references: [] },
  ];
  const expected = {
    storeDir: "/nix/store",
    paths: [
      { path: a, narSize: 5, references: [b] },
      { path: b, narSize: 7, references: [] },
    ].sort((x, y) => (x.path < y.path ? -1 : 1)),
  };
  assert.deepEqual(parseClosure(JSON.stringify(array)), expected);
  const keyed = {
    [a]: { narSize: 5, references: [b.slice("/nix/store/".length)] },
    [b]: { narSize: 7, references: [] },
  };
  assert.deepEqual(parseClosure(JSON.stringify(keyed)), expected);
  assert.deepEqual(parseClosure(JSON.stringify({ closure: array })), expected);
});

Deno.test("parseClosure() rejects paths outside the store, `..`, open closures and bad fields", () => {
  const a = p("a");
  const cases: [unknown, ErrorConstructor][] = [
    [[{ path: "/etc/passwd", narSize: 1, references: [] }], RangeError],
    [[{ path: "/nix/store/../etc", narSize: 1, references: [] }], RangeError],
    [[{ path: `${a}/..`, narSize: 1, references: [] }], RangeError],
    [[{ path: a, narSize: 1, references: [p("missing")] }], RangeError],
    [[{ path: a, narSize: -1, references: [] }], TypeError],
    [[{ path: a, narSize: 1 }], TypeError],
    [
      [{ path: a, narSize: 1, references: [] }, { path: a, narSize: 2, references: [] }],
      RangeError,
    ],
    [{ [a]: null }, TypeError],
    [[], TypeError],
    ["text", TypeError],
  ];
  for (const [json, error] of cases) {
    assert.throws(() => parseClosure(JSON.stringify(json)), error, JSON.stringify(json));
  }
  assert.throws(() => parseClosure("{"), SyntaxError);
  assert.throws(
    () =>
      parseClosure(JSON.stringify([{ path: a, narSize: 1, references: [] }]), {
        storeDir: "/other",
      }),
    RangeError,
  );
});

Deno.test("parseClosure() reads closureInfo's registration and rejects a truncated one", () => {
  const a = p("a");
  const b = p("b");
  const text = [a, "sha256:0a", "5", "", "2", a, b, b, "sha256:0b", "7", "", "0"].join("\n") + "\n";
  assert.deepEqual(
    parseClosure(text).paths,
    [
      { path: a, narSize: 5, references: [b] },
      { path: b, narSize: 7, references: [] },
    ].sort((x, y) => (x.path < y.path ? -1 : 1)),
  );
  assert.throws(() => parseClosure([a, "sha256:0a", "5", "", "2", b].join("\n")), SyntaxError);
  assert.throws(() => parseClosure([a, "sha256:0a", "five", "", "0"].join("\n")), SyntaxError);
});
