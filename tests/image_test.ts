import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { writeSampleRocmTree } from "../lib/sample_rocm.ts";
import { nixEnv, repoRoot, requireTools, run, runNixBuild, type RunResult } from "./_tools.ts";

const ok = await requireTools(
  "image tests with a real Nix closure",
  "nix",
  "nix-build",
  "skopeo",
  "umoci",
);

const script = join(repoRoot, "scripts/image.ts");
// The exact permissions of the shebang: the tests prove they are enough.
const permissions = (await Deno.readTextFile(script)).split("\n")[0]!.split(" ").filter((word) =>
  word.startsWith("--allow-")
);

function image(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return run(Deno.execPath(), ["run", "--no-config", ...permissions, script, ...args], { env });
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of (await Deno.open(path)).readable) hash.update(chunk);
  return hash.digest("hex");
}

/** A closure in the local store: rocm → glibc, rocm → zlib → glibc, with a ROCm-like tree. */
async function buildClosure(work: string): Promise<{ root: string; closure: string }> {
  const tree = join(work, "tree");
  await writeSampleRocmTree(tree, { isas: ["gfx1100", "gfx1151"], kernelBytes: 3000 });
  const expr = join(work, "closure.nix");
  await Deno.writeTextFile(
    expr,
    `let
  mk = name: script: builtins.derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/bin:/bin";
  };
  glibc = mk "glibc-2.40" "mkdir -p $out/lib && printf libc > $out/lib/libc.so.6 && chmod 555 $out/lib/libc.so.6";
  zlib = mk "zlib-1.3" "mkdir -p $out/lib && echo \${glibc} > $out/lib/libz.so.1";
  tree = builtins.path { path = ${JSON.stringify(tree)}; name = "rocm-sample-tree"; };
in mk "rocm-7.12.0a20260308" ''
  cp -R \${tree} $out && chmod -R u+w $out
  # The store (NAR) keeps no hard links: make the sample's pair again.
  ln -f $out/lib/libhsa-runtime64.so.1.18.0 $out/lib/libhsa-runtime64.so.1
  echo \${glibc} \${zlib} > $out/lib/references
''
`,
  );
  return await buildWithClosure(expr, work);
}

/** Builds the Nix expression file `expr`; its closure's JSON goes to `work/closure.json`. */
async function buildWithClosure(
  expr: string,
  work: string,
): Promise<{ root: string; closure: string }> {
  const built = await runNixBuild("nix-build", [expr, "--no-out-link"], { env: nixEnv() });
  assert.equal(built.code, 0, built.stderr);
  const root = built.stdout.trim();
  const info = await run("nix", ["path-info", "--json", "--recursive", root], { env: nixEnv() });
  assert.equal(info.code, 0, info.stderr);
  const closure = join(work, "closure.json");
  await Deno.writeTextFile(closure, info.stdout);
  return { root, closure };
}

interface Node {
  type: "file" | "directory" | "symlink";
  mode: number;
  content?: string;
  target?: string;
  ino?: number;
}

async function walk(root: string, rel = ""): Promise<Map<string, Node>> {
  const out = new Map<string, Node>();
  const path = join(root, rel);
  const info = await Deno.lstat(path);
  const mode = (info.mode ?? 0) & 0o777;
  if (info.isSymlink) out.set(rel, { type: "symlink", mode: 0, target: await Deno.readLink(path) });
  else if (info.isFile) {
    out.set(rel, { type: "file", mode, content: await sha256File(path), ino: info.ino ?? 0 });
  } else {
    out.set(rel, { type: "directory", mode });
    for await (const entry of Deno.readDir(path)) {
      for (const [k, v] of await walk(root, join(rel, entry.name))) out.set(k, v);
    }
  }
  return out;
}

/** Compares a store path with its copy in an unpacked rootfs, except `skip`ped paths. */
async function assertSameTree(
  store: string,
  rootfs: string,
  skip: (rel: string) => boolean,
  options: { hardLinks?: boolean } = {},
): Promise<Map<string, Node>> {
  const expected = await walk(store);
  const actual = await walk(join(rootfs, store));
  const strip = (tree: Map<string, Node>): Map<string, Omit<Node, "ino">> =>
    new Map(
      [...tree].filter(([rel]) => !skip(rel)).map(([rel, { ino: _, ...node }]) => [rel, node]),
    );
  assert.deepEqual(strip(actual), strip(expected), `rootfs copy of ${store}`);
  // Hard links: paths sharing an inode in the store share one in the rootfs.
  const groups = (tree: Map<string, Node>): string[][] => {
    const byIno = new Map<number, string[]>();
    for (const [rel, node] of tree) {
      if (node.ino !== undefined && !skip(rel)) {
        byIno.set(node.ino, [...byIno.get(node.ino) ?? [], rel]);
      }
    }
    return [...byIno.values()].filter((group) => group.length > 1).map((g) => g.sort()).sort();
  };
  if (options.hardLinks ?? true) assert.deepEqual(groups(actual), groups(expected));
  return expected;
}

async function layerDigests(archive: string): Promise<string[]> {
  const inspect = await run("skopeo", ["inspect", `docker-archive:${archive}`]);
  assert.equal(inspect.code, 0, inspect.stderr);
  return JSON.parse(inspect.stdout).Layers;
}

Deno.test({
  name: "image.ts writes docker-archive and OCI images that skopeo, umoci and podman accept",
  ignore: !ok,
  fn: async (t) => {
    const work = await Deno.makeTempDir({ prefix: "image_test_" });
    try {
      const { root, closure } = await buildClosure(work);
      const a = join(work, "gfx1100.tar");
      const gfx1100 = [
        "--closure",
        closure,
        "--name",
        "rocm",
        "--tag",
        "gfx1100",
        "--target",
        "gfx1100",
      ];

      await t.step("docker-archive passes skopeo inspect with the planned config", async () => {
        const result = await image([...gfx1100, "--output", a, "--json"]);
        assert.equal(result.code, 0, result.stderr);
        const written = JSON.parse(result.stdout);
        const inspect = await run("skopeo", ["inspect", "--config", `docker-archive:${a}`]);
        assert.equal(inspect.code, 0, inspect.stderr);
        const config = JSON.parse(inspect.stdout);
        assert.equal(config.architecture, "amd64");
        assert.equal(config.os, "linux");
        assert.equal(config.created, "1970-01-01T00:00:01Z");
        assert.deepEqual(
          config.rootfs.diff_ids,
          written.layers.map((l: { digest: string }) => l.digest),
        );
        assert.equal(config.history.length, written.layers.length);
        assert.match(config.history[0].comment, /-glibc-2\.40$/, "most popular path first");
        // A bare tree (no opt/rocm) is its own ROCm root.
        assert.ok(config.config.Env.includes(`ROCM_PATH=${root}`));
        assert.ok(!config.config.Env.some((e: string) => e.startsWith("LD_LIBRARY_PATH=")));
        assert.deepEqual(config.config.Cmd, [`${root}/bin/rocminfo`]);
        assert.equal(config.config.Labels["org.opencontainers.image.version"], "7.12.0a20260308");
        assert.equal(config.config.Labels["org.rocm-nightly.target"], "gfx1100");
      });

      await t.step(
        "skopeo copy (checks every diff_id) and umoci unpack give the store's files",
        async () => {
          const oci = join(work, "copied");
          const copy = await run("skopeo", ["copy", `docker-archive:${a}`, `oci:${oci}:gfx1100`]);
          assert.equal(copy.code, 0, copy.stderr);
          const bundle = join(work, "bundle");
          const unpack = await run("umoci", [
            "unpack",
            "--rootless",
            "--image",
            `${oci}:gfx1100`,
            bundle,
          ]);
          assert.equal(unpack.code, 0, unpack.stderr);
          const rootfs = join(bundle, "rootfs");
          const isGfx1151 = (rel: string): boolean => rel.includes("gfx1151");
          const tree = await assertSameTree(root, rootfs, isGfx1151);
          assert.ok([...tree.keys()].some((rel) => rel.length > 100), "a long name was compared");
          assert.equal(tree.get("bin/rocminfo")?.mode, 0o555);
          assert.equal(tree.get("bin/clang")?.type, "symlink");
          for (const rel of tree.keys()) {
            if (isGfx1151(rel)) {
              await assert.rejects(Deno.lstat(join(rootfs, root, rel)), Deno.errors.NotFound);
            }
          }
          assert.ok(tree.has(".kpack/rccl_gfx110X.kpack"), "the family's kernels are kept");
          const closureInfo = JSON.parse(await Deno.readTextFile(closure)) as { path: string }[];
          for (const { path } of closureInfo) {
            if (path !== root) {
              await assertSameTree(path, rootfs, () => false);
            }
          }
          await Deno.remove(bundle, { recursive: true });
        },
      );

      await t.step("repeated runs, to a file and to stdout, are byte-identical", async () => {
        const again = join(work, "again.tar");
        const result = await image([...gfx1100, "--output", again]);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(await sha256File(again), await sha256File(a));
        const piped = await run("sh", [
          "-c",
          `deno="$0"; script="$1"; shift; "$deno" run --no-config ${
            permissions.join(" ")
          } "$script" "$@" | sha256sum`,
          Deno.execPath(),
          script,
          ...gfx1100,
        ]);
        assert.equal(piped.code, 0, piped.stderr);
        assert.equal(piped.stderr, "");
        assert.equal(piped.stdout.split(" ")[0], await sha256File(a));
      });

      await t.step(
        "two targets share their common layers and lack each other's kernels",
        async () => {
          const b = join(work, "gfx1151.tar");
          const result = await image([
            "--closure",
            closure,
            "--name",
            "rocm",
            "--tag",
            "gfx1151",
            "--target",
            "gfx1151",
            "--output",
            b,
          ]);
          assert.equal(result.code, 0, result.stderr);
          const [la, lb] = [await layerDigests(a), await layerDigests(b)];
          const shared = la.filter((digest) => lb.includes(digest));
          assert.equal(shared.length, 3, "glibc, zlib and the ROCm tree without kernels");
          assert.deepEqual(la.slice(0, 3), lb.slice(0, 3), "common layers come first, in order");
          assert.equal(la.length, 5, "common + gfx110X + gfx1100");
          assert.equal(lb.length, 4, "common + gfx1151");
          const listing = (await run("tar", ["-xOf", b, "--wildcards", "layer-*.tar"])).stdout;
          assert.ok(!listing.includes("gfx1100") && !listing.includes("gfx110X"));
          const all = join(work, "all.tar");
          assert.equal(
            (await image(["--closure", closure, "--name", "rocm", "--output", all])).code,
            0,
          );
          const lall = await layerDigests(all);
          assert.deepEqual(lall.slice(0, 3), la.slice(0, 3));
          assert.equal(lall.length, 6, "every kernel layer without --target");
          assert.ok(
            la.every((digest) => lall.includes(digest)) && lb.every((d) => lall.includes(d)),
          );
        },
      );

      await t.step("--format oci writes a layout skopeo and umoci read", async () => {
        const dir = join(work, "layout");
        const result = await image([...gfx1100, "--format", "oci", "--output", dir, "--json"]);
        assert.equal(result.code, 0, result.stderr);
        const index = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
        assert.deepEqual(index.manifests[0].annotations, {
          "io.containerd.image.name": "rocm:gfx1100",
          "org.opencontainers.image.ref.name": "gfx1100",
        });
        assert.deepEqual(JSON.parse(await Deno.readTextFile(join(dir, "oci-layout"))), {
          imageLayoutVersion: "1.0.0",
        });
        for await (const blob of Deno.readDir(join(dir, "blobs/sha256"))) {
          assert.equal(await sha256File(join(dir, "blobs/sha256", blob.name)), blob.name);
        }
        const inspect = await run("skopeo", ["inspect", `oci:${dir}:gfx1100`]);
        assert.equal(inspect.code, 0, inspect.stderr);
        assert.deepEqual(JSON.parse(inspect.stdout).Layers, await layerDigests(a));
        const bundle = join(work, "oci-bundle");
        const unpack = await run("umoci", [
          "unpack",
          "--rootless",
          "--image",
          `${dir}:gfx1100`,
          bundle,
        ]);
        assert.equal(unpack.code, 0, unpack.stderr);
        await assertSameTree(root, join(bundle, "rootfs"), (rel) => rel.includes("gfx1151"));
        await Deno.remove(bundle, { recursive: true });
        const again = await image([...gfx1100, "--format", "oci", "--output", dir]);
        assert.equal(again.code, 1, "an existing layout is not replaced");
        assert.match(again.stderr, /exists/);
      });

      await t.step(
        "--split-bytes cuts the ROCm tree into subtree layers that unpack whole",
        async () => {
          const split = join(work, "split.tar");
          const result = await image([
            "--closure",
            closure,
            "--name",
            "rocm",
            "--split-bytes",
            "8192",
            "--output",
            split,
            "--json",
          ]);
          assert.equal(result.code, 0, result.stderr);
          const layers = JSON.parse(result.stdout).layers as {
            description: string;
            size: number;
          }[];
          const parts = layers.filter((layer) => / \(part \d+ of \d+\)$/.test(layer.description));
          assert.ok(parts.length >= 4, `${parts.length} split layers`);
          const oci = join(work, "split-oci");
          const copy = await run("skopeo", ["copy", `docker-archive:${split}`, `oci:${oci}:split`]);
          assert.equal(copy.code, 0, copy.stderr);
          const bundle = join(work, "split-bundle");
          const unpack = await run("umoci", [
            "unpack",
            "--rootless",
            "--image",
            `${oci}:split`,
            bundle,
          ]);
          assert.equal(unpack.code, 0, unpack.stderr);
          // A hard-link pair may land in two layers, where it becomes two copies.
          await assertSameTree(root, join(bundle, "rootfs"), () => false, { hardLinks: false });
          await Deno.remove(bundle, { recursive: true });
        },
      );

      await t.step("podman load reads the docker-archive", async () => {
        if (!await requireTools("podman load of the image", "podman")) return;
        const storage = join(work, "podman");
        const flags = [
          "--storage-driver",
          "vfs",
          "--root",
          join(storage, "root"),
          "--runroot",
          join(storage, "run"),
        ];
        const load = await run("podman", [...flags, "load", "-i", a]);
        if (load.code !== 0 && /permission|namespace|cannot|not supported/i.test(load.stderr)) {
          console.log(`SKIP podman load cannot run here: ${load.stderr.trim().split("\n").pop()}`);
          return;
        }
        assert.equal(load.code, 0, load.stderr);
        assert.match(load.stdout, /Loaded image: localhost\/rocm:gfx1100/);
        const images = await run("podman", [...flags, "image", "inspect", "rocm:gfx1100"]);
        assert.equal(images.code, 0, images.stderr);
        assert.equal(JSON.parse(images.stdout)[0].RootFS.Layers.length, 5);
        await run("podman", [...flags, "rmi", "-a", "-f"]);
        await run("podman", [...flags, "system", "reset", "-f"]);
      });

      await t.step("SOURCE_DATE_EPOCH and --created set every time; --config merges", async () => {
        const config = join(work, "config.json");
        await Deno.writeTextFile(
          config,
          JSON.stringify({
            Env: ["FOO=1", "PATH=/custom"],
            Entrypoint: ["/bin/x"],
            Labels: { a: "b" },
          }),
        );
        const out = join(work, "dated.tar");
        const result = await image([...gfx1100, "--output", out, "--config", config], {
          SOURCE_DATE_EPOCH: "1772928000",
        });
        assert.equal(result.code, 0, result.stderr);
        const inspected = JSON.parse(
          (await run("skopeo", ["inspect", "--config", `docker-archive:${out}`])).stdout,
        );
        assert.equal(inspected.created, "2026-03-08T00:00:00Z");
        assert.ok(
          inspected.config.Env.includes("FOO=1") && inspected.config.Env.includes("PATH=/custom"),
        );
        assert.ok(inspected.config.Env.some((e: string) => e.startsWith("ROCM_PATH=")));
        assert.deepEqual(inspected.config.Entrypoint, ["/bin/x"]);
        assert.equal(inspected.config.Labels.a, "b");
        const listing = await run("tar", ["-tvf", out, "--utc"]);
        assert.match(listing.stdout, /2026-03-08 00:00 manifest\.json/);
        const flagged = join(work, "flagged.tar");
        const viaFlag = await image([
          ...gfx1100,
          "--output",
          flagged,
          "--created",
          "2026-03-08T00:00:00Z",
        ]);
        assert.equal(viaFlag.code, 0, viaFlag.stderr);
        const plain = join(work, "plain.tar");
        assert.equal(
          (await image([
            ...gfx1100,
            "--output",
            plain,
            "--created",
            "2026-03-08T00:00:00Z",
            "--config",
            config,
          ])).code,
          0,
        );
        assert.equal(await sha256File(plain), await sha256File(out));
      });

      await t.step(
        "bad input fails with exit 1 or 2 and leaves the output file as it was",
        async () => {
          const out = join(work, "keep.tar");
          await Deno.writeTextFile(out, "previous contents");
          const outside = join(work, "outside.json");
          await Deno.writeTextFile(
            outside,
            JSON.stringify([{ path: "/etc", narSize: 1, references: [] }]),
          );
          const missing = join(work, "missing.json");
          const ghost = `/nix/store/${"0".repeat(32)}-not-built`;
          await Deno.writeTextFile(
            missing,
            JSON.stringify([{ path: ghost, narSize: 1, references: [] }]),
          );
          const dotdot = join(work, "dotdot.json");
          await Deno.writeTextFile(
            dotdot,
            JSON.stringify([{ path: `${root}/../x`, narSize: 1, references: [] }]),
          );
          const cases: [string[], number, RegExp][] = [
            [["--closure", outside, "--name", "x"], 1, /not a path directly inside "\/nix\/store"/],
            [["--closure", dotdot, "--name", "x"], 1, /not a path directly inside/],
            [["--closure", missing, "--name", "x"], 1, /not-built/],
            [["--closure", closure, "--name", "x", "--max-layers", "126"], 2, /126/],
            [
              ["--closure", closure, "--name", "x", "--max-layers", "2"],
              1,
              /Cannot fit the image in 2 layers/,
            ],
            [
              ["--closure", closure, "--name", "x", "--target", "gfx1"],
              2,
              /Unknown GPU target "gfx1"/,
            ],
            [["--closure", closure, "--name", "x", "--created", "yesterday"], 2, /yesterday/],
            [["--closure", closure], 2, /--name/],
            [["--name", "x"], 2, /--closure/],
          ];
          for (const [args, code, message] of cases) {
            const result = await image([...args, "--output", out]);
            assert.equal(result.code, code, `${args.join(" ")}: ${result.stderr}`);
            assert.match(result.stderr, message);
            assert.equal(result.stderr.trim().split("\n").length, 1, "one error line");
          }
          assert.equal(await Deno.readTextFile(out), "previous contents");
          const leftovers = [...Deno.readDirSync(work)].filter((entry) =>
            entry.name.endsWith(".tmp")
          );
          assert.deepEqual(leftovers, [], "no temporary files left behind");
          const help = await image(["--help"]);
          assert.equal(help.code, 0);
          assert.match(help.stdout, /Example:/);
        },
      );
    } finally {
      await Deno.remove(work, { recursive: true }).catch(async () => {
        await run("chmod", ["-R", "u+w", work]);
        await Deno.remove(work, { recursive: true });
      });
    }
  },
});

Deno.test({
  name: "nix/docker.nix builds, inside a Nix build, the archive image.ts writes",
  ignore: !ok,
  fn: async () => {
    const work = await Deno.makeTempDir({ prefix: "image_nix_test_" });
    try {
      const { root, closure } = await buildClosure(work);
      // closureInfo's registration format, from the path-info JSON.
      const infos = JSON.parse(await Deno.readTextFile(closure)) as {
        path: string;
        narHash: string;
        narSize: number;
        references: string[];
      }[];
      const registration = join(work, "registration");
      await Deno.writeTextFile(
        registration,
        infos.flatMap((info) => [
          info.path,
          info.narHash,
          String(info.narSize),
          "",
          String(info.references.length),
          ...info.references,
        ]).join("\n") + "\n",
      );
      // Stand-ins for the few nixpkgs functions docker.nix uses (no nixpkgs here).
      const expr = join(work, "docker.nix");
      await Deno.writeTextFile(
        expr,
        `let
  system = builtins.currentSystem;
  lib = rec {
    escapeShellArg = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\\\''" ] (toString s) + "'";
    escapeShellArgs = l: builtins.concatStringsSep " " (map escapeShellArg l);
    optionals = c: l: if c then l else [ ];
  };
  runCommand = name: env: script: builtins.derivation (builtins.removeAttrs env [ "nativeBuildInputs" ] // {
    inherit name system;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/bin:/bin";
  });
  closureInfo = { rootPaths }: builtins.derivation {
    name = "closure-info";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "mkdir $out && cp \${builtins.path { path = ${
          JSON.stringify(registration)
        }; name = "registration"; }} $out/registration" ];
    PATH = "/usr/bin:/bin";
  };
  src = builtins.path {
    path = ${JSON.stringify(repoRoot)};
    name = "rocm-nightly-src";
    filter = path: type: builtins.match ".*/(\\.git|tests|\\.bench|result.*)" path == null;
  };
in import ${JSON.stringify(join(repoRoot, "nix/docker.nix"))} {
  inherit lib runCommand closureInfo src;
  deno = null;
  package = ${JSON.stringify(root)};
  target = "gfx1151";
}
`,
      );
      const built = await runNixBuild("nix-build", [expr, "--no-out-link"], { env: nixEnv() });
      assert.equal(built.code, 0, built.stderr);
      const archive = built.stdout.trim();
      assert.match(archive, /-docker-image-rocm-nightly-gfx1151\.tar$/);
      const direct = join(work, "direct.tar");
      const result = await image([
        "--closure",
        closure,
        "--name",
        "rocm-nightly",
        "--tag",
        "gfx1151",
        "--target",
        "gfx1151",
        "--output",
        direct,
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(await sha256File(archive), await sha256File(direct));
      const inspect = await run("skopeo", ["inspect", `docker-archive:${archive}`]);
      assert.equal(inspect.code, 0, inspect.stderr);
      assert.equal(JSON.parse(inspect.stdout).Labels["org.rocm-nightly.target"], "gfx1151");
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name: "rocmContainerConfig() of an installed package names opt/rocm, the wrappers, its version",
  ignore: !ok,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "image_test_installed_" });
    try {
      // The package as nix/install.sh lays it out: opt/rocm and bin/ wrappers.
      const tree = join(dir, "tree");
      await writeSampleRocmTree(tree, { isas: ["gfx1151"], version: "7.12.0a20260401" });
      const expr = join(dir, "package.nix");
      // The store name carries another version: the label must come from the tree.
      await Deno.writeTextFile(
        expr,
        `builtins.derivation {
  name = "rocm-nightly-gfx1151-0.0.0";
  system = builtins.currentSystem;
  builder = "/bin/bash";
  PATH = "/usr/bin:/bin";
  args = [
    (builtins.path { path = ${JSON.stringify(join(repoRoot, "nix/install.sh"))}; })
    "--source" (builtins.path { path = ${JSON.stringify(tree)}; name = "tree"; })
    "--out" (builtins.placeholder "out")
    "--pname" "rocm-nightly-gfx1151"
  ];
}`,
      );
      const { root: pkg, closure } = await buildWithClosure(expr, dir);
      const archive = join(dir, "image.tar");
      const written = await image([
        ...["--closure", closure, "--name", "rocm", "--target", "gfx1151", "--output", archive],
      ]);
      assert.equal(written.code, 0, written.stderr);
      const inspect = await run("skopeo", ["inspect", "--config", `docker-archive:${archive}`]);
      assert.equal(inspect.code, 0, inspect.stderr);
      const config = JSON.parse(inspect.stdout).config;
      assert.deepEqual(config.Env, [
        `PATH=${pkg}/bin`,
        `ROCM_PATH=${pkg}/opt/rocm`,
        `HIP_PATH=${pkg}/opt/rocm`,
      ]);
      assert.deepEqual(config.Cmd, [`${pkg}/bin/rocminfo`]);
      assert.equal(config.Labels["org.opencontainers.image.version"], "7.12.0a20260401");
      await Deno.stat(join(pkg, "bin/rocminfo"));
      await Deno.stat(join(pkg, "opt/rocm/.info/version"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
