import assert from "node:assert/strict";
import { join } from "node:path";
import { kernelKind } from "../../lib/releases/kernel_files.ts";
import { writeSampleRocmTree } from "../../lib/package/sample_rocm.ts";
import { buildStoreClosure, mkBinding, sha256File } from "../_store_closure.ts";
import { nixEnv, repoRoot, requireTools, run, runNixBuild, type RunResult } from "../_tools.ts";

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

/** A closure in the local store: rocm → glibc, rocm → zlib → glibc, with a ROCm-like tree. */
async function buildClosure(work: string): Promise<{ root: string; closure: string }> {
  const tree = join(work, "tree");
  await writeSampleRocmTree(tree, { isas: ["gfx1100", "gfx1151"], kernelBytes: 3000 });
  return await buildWithClosure(
    `let
${mkBinding()}  glibc = mk "glibc-2.40" "mkdir -p $out/lib && printf libc > $out/lib/libc.so.6 && chmod 555 $out/lib/libc.so.6";
  zlib = mk "zlib-1.3" "mkdir -p $out/lib && echo \${glibc} > $out/lib/libz.so.1";
  tree = builtins.path { path = ${JSON.stringify(tree)}; name = "rocm-sample-tree"; };
in mk "rocm-7.12.0a20260308" ''
  cp -R \${tree} $out && chmod -R u+w $out
  # The store (NAR) keeps no hard links: make the sample's pair again.
  ln -f $out/lib/libhsa-runtime64.so.1.18.0 $out/lib/libhsa-runtime64.so.1
  # Named after an ISA but not GPU code: every target's image keeps them.
  mkdir -p $out/include/rocwmma $out/lib/cmake/hip $out/lib/python
  echo '#define ROCWMMA_ARCH 1100' > $out/include/rocwmma/config_gfx1100.h
  echo 'set(HIP_TARGET gfx1151)' > $out/lib/cmake/hip/hip-targets-gfx1151.cmake
  echo 'ISA = "gfx1100"' > $out/lib/python/tensile_gfx1100.py
  echo \${glibc} \${zlib} > $out/lib/references
''
`,
    work,
  );
}

/** Builds a Nix expression; its closure's JSON goes to `work/closure.json`. */
async function buildWithClosure(
  expression: string,
  work: string,
): Promise<{ root: string; closure: string }> {
  const { root, pathInfo } = await buildStoreClosure(work, expression);
  const closure = join(work, "closure.json");
  await Deno.writeTextFile(closure, pathInfo);
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

/**
 * Compares a store path with its copy in an unpacked rootfs, except `skip`ped
 * paths. Images never hold hard links: every file of the rootfs has one name.
 */
async function assertSameTree(
  store: string,
  rootfs: string,
  skip: (rel: string) => boolean,
): Promise<Map<string, Node>> {
  const expected = await walk(store);
  const actual = await walk(join(rootfs, store));
  const strip = (tree: Map<string, Node>): Map<string, Omit<Node, "ino">> =>
    new Map(
      [...tree].filter(([rel]) => !skip(rel)).map(([rel, { ino: _, ...node }]) => [rel, node]),
    );
  assert.deepEqual(strip(actual), strip(expected), `rootfs copy of ${store}`);
  const inodes = [...actual.values()].flatMap((node) => node.ino === undefined ? [] : [node.ino]);
  assert.equal(new Set(inodes).size, inodes.length, `no hard links in the rootfs copy of ${store}`);
  return expected;
}

/** Files named after an ISA that are not GPU code (the closure's rocm path has them). */
const NOT_GPU_CODE = [
  "include/rocwmma/config_gfx1100.h",
  "lib/cmake/hip/hip-targets-gfx1151.cmake",
  "lib/python/tensile_gfx1100.py",
];

/** The entry names of every layer of a docker-archive. */
async function layerNames(archive: string): Promise<string[]> {
  const listing = await run("sh", [
    "-c",
    `tar -xOf "$0" --wildcards 'layer-*.tar' | tar -t --ignore-zeros`,
    archive,
  ]);
  assert.equal(listing.code, 0, listing.stderr);
  return listing.stdout.split("\n").filter((name) => name !== "");
}

/** A Debian `docker-registry` (the reference distribution server) on a free 127.0.0.1 port. */
async function startRegistry(dir: string): Promise<{
  host: string;
  uploads(): Promise<string[]>;
  stop(): Promise<void>;
}> {
  await Deno.mkdir(dir, { recursive: true });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const config = join(dir, "config.yml");
  await Deno.writeTextFile(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: info",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(dir, "storage")}`,
      "http:",
      `  addr: 127.0.0.1:${port}`,
      "",
    ].join("\n"),
  );
  const log = join(dir, "registry.log");
  const child = new Deno.Command("sh", {
    args: ["-c", `exec docker-registry serve "$0" >"$1" 2>&1`, config, log],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async (): Promise<void> => {
    try {
      child.kill("SIGTERM");
    } catch {
      // It has exited already.
    }
    await child.status;
  };
  // Up when its port accepts connections: at most 10 s.
  for (let attempt = 0;; attempt++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch (error) {
      if (attempt === 100) {
        await stop();
        throw new Error(
          `docker-registry did not listen on ${port}: ${await Deno.readTextFile(log)}`,
        );
      }
      if (!(error instanceof Deno.errors.ConnectionRefused)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    host: `127.0.0.1:${port}`,
    // Each completed blob upload is one access-log line: the PUT (or a
    // monolithic POST) that names the blob's digest and got 201 Created.
    uploads: async () =>
      [...(await Deno.readTextFile(log)).matchAll(
        /"(?:PUT|POST) \/v2\/rocm\/blobs\/uploads\/[^" ]*digest=sha256%3A([0-9a-f]{64})[^" ]* HTTP\/1\.1" 201/g,
      )].map((match) => `sha256:${match[1]}`),
    stop,
  };
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
          const isGfx1151 = (rel: string): boolean =>
            rel.includes("gfx1151") && kernelKind(rel) !== undefined;
          const tree = await assertSameTree(root, rootfs, isGfx1151);
          const pair = await Deno.lstat(join(root, "lib/libhsa-runtime64.so.1"));
          assert.ok(
            (pair.nlink ?? 1) >= 2,
            "the store holds a hard-link pair, the image two files",
          );
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
          for (const [archive, other] of [[a, /gfx1151/], [b, /gfx1100|gfx110X/]] as const) {
            const names = await layerNames(archive);
            for (const kept of NOT_GPU_CODE) {
              assert.ok(names.some((name) => name.endsWith(kept)), `${archive} keeps ${kept}`);
            }
            const foreign = names.filter((name) => other.test(name) && kernelKind(name));
            assert.deepEqual(foreign, [], `${archive} lacks the other target's kernels`);
          }
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

      await t.step(
        "a real registry: the second target's push uploads only its kernel layers and config",
        async () => {
          if (!await requireTools("pushes to a real registry", "docker-registry")) return;
          const b = join(work, "gfx1151.tar");
          const registry = await startRegistry(join(work, "registry"));
          try {
            const push = async (archive: string, tag: string): Promise<string[]> => {
              const before = (await registry.uploads()).length;
              const copy = await run("skopeo", [
                "copy",
                "--dest-tls-verify=false",
                `docker-archive:${archive}`,
                `docker://${registry.host}/rocm:${tag}`,
              ]);
              assert.equal(copy.code, 0, copy.stderr);
              return (await registry.uploads()).slice(before);
            };
            const [la, lb] = [await layerDigests(a), await layerDigests(b)];
            const first = await push(b, "gfx1151");
            assert.equal(
              first.length,
              lb.length + 1,
              "the first push uploads every layer and config",
            );
            const second = await push(a, "gfx1100");
            const own = la.filter((digest) => !lb.includes(digest));
            assert.equal(own.length, 2, "gfx110X and gfx1100 kernels");
            assert.equal(
              second.length,
              own.length + 1,
              `the second push uploads its ${own.length} kernel layers and its config, ` +
                `not the shared layers: ${second.join(", ")}`,
            );
            assert.ok(second.every((digest) => !first.includes(digest)));

            const others = { gfx1151: /gfx1100|gfx110X/, gfx1100: /gfx1151/ };
            for (const [tag, other] of Object.entries(others)) {
              const oci = join(work, `pulled-${tag}`);
              const pull = await run("skopeo", [
                "copy",
                "--src-tls-verify=false",
                `docker://${registry.host}/rocm:${tag}`,
                `oci:${oci}:${tag}`,
              ]);
              assert.equal(pull.code, 0, pull.stderr);
              const config = JSON.parse(
                (await run("skopeo", ["inspect", "--config", `oci:${oci}:${tag}`])).stdout,
              );
              assert.deepEqual(config.rootfs.diff_ids, tag === "gfx1151" ? lb : la);
              const bundle = join(work, `pulled-${tag}-bundle`);
              const unpack = await run("umoci", [
                "unpack",
                "--rootless",
                "--image",
                `${oci}:${tag}`,
                bundle,
              ]);
              assert.equal(unpack.code, 0, unpack.stderr);
              const rootfs = join(bundle, "rootfs");
              const isOther = (rel: string): boolean =>
                other.test(rel) && kernelKind(rel) !== undefined;
              await assertSameTree(root, rootfs, isOther);
              const closureInfo = JSON.parse(await Deno.readTextFile(closure)) as {
                path: string;
              }[];
              for (const { path } of closureInfo) {
                if (path !== root) await assertSameTree(path, rootfs, () => false);
              }
              await Deno.remove(bundle, { recursive: true });
            }
          } finally {
            await registry.stop();
          }
        },
      );

      await t.step(
        "stdout streams into podman load and skopeo copy docker-archive:/dev/stdin",
        async () => {
          const pipe = (consumer: string): Promise<RunResult> =>
            run("bash", [
              "-c",
              `set -o pipefail; deno="$1"; script="$2"; shift 2; ` +
              `"$deno" run --no-config ${permissions.join(" ")} "$script" "$@" | ${consumer}`,
              "bash",
              Deno.execPath(),
              script,
              ...gfx1100,
            ]);
          const oci = join(work, "from-stdin");
          const skopeo = await pipe(`skopeo copy docker-archive:/dev/stdin oci:${oci}:gfx1100`);
          if (skopeo.code === 0) {
            const inspect = await run("skopeo", ["inspect", `oci:${oci}:gfx1100`]);
            assert.deepEqual(JSON.parse(inspect.stdout).Layers, await layerDigests(a));
          } else {
            // Debian 12's skopeo 1.9 (containers/image's NewReaderFromFile) reads
            // the path's first bytes to sniff compression, then opens the path
            // again per component: through a pipe those bytes are gone, so no
            // docker-archive can come in on stdin (newer containers/image checks
            // that the file is seekable first). The same failure with an archive
            // skopeo wrote itself shows it is skopeo's, not the writer's.
            assert.match(skopeo.stderr, /loading tar component manifest\.json/, skopeo.stderr);
            const own = join(work, "skopeo-written.tar");
            const copy = await run("skopeo", [
              "copy",
              `docker-archive:${a}`,
              `docker-archive:${own}:rocm:gfx1100`,
            ]);
            assert.equal(copy.code, 0, copy.stderr);
            const reference = await run("sh", [
              "-c",
              `cat "$0" | skopeo copy docker-archive:/dev/stdin oci:"$1":x`,
              own,
              join(work, "from-stdin-reference"),
            ]);
            assert.match(reference.stderr, /loading tar component manifest\.json/);
            const version = (await run("skopeo", ["--version"])).stdout.trim();
            console.log(`SKIP ${version} cannot read docker-archive:/dev/stdin from a pipe`);
          }
          if (!await requireTools("podman load of a stream", "podman")) return;
          const storage = join(work, "podman-stdin");
          const flags = `--storage-driver vfs --root ${storage}/root --runroot ${storage}/run`;
          const load = await pipe(`podman ${flags} load`);
          if (load.code !== 0 && /permission|namespace|not supported/i.test(load.stderr)) {
            console.log(
              `SKIP podman load cannot run here: ${load.stderr.trim().split("\n").pop()}`,
            );
            return;
          }
          assert.equal(load.code, 0, load.stderr);
          assert.match(load.stdout, /Loaded image: localhost\/rocm:gfx1100/);
          const inspect = await run("sh", [
            "-c",
            `podman ${flags} image inspect rocm:gfx1100`,
          ]);
          assert.equal(inspect.code, 0, inspect.stderr);
          assert.deepEqual(JSON.parse(inspect.stdout)[0].RootFS.Layers, await layerDigests(a));
          await run("sh", ["-c", `podman ${flags} system reset -f`]);
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
        await assertSameTree(
          root,
          join(bundle, "rootfs"),
          (rel) => rel.includes("gfx1151") && kernelKind(rel) !== undefined,
        );
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
          await assertSameTree(root, join(bundle, "rootfs"), () => false);
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
              /invalid --target "gfx1": not a family or ISA of the target table/,
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
          assert.match(help.stdout, /Examples:\n {2}nix path-info/);
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
      // The store name carries another version: the label must come from the tree.
      const { root: pkg, closure } = await buildWithClosure(
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
        dir,
      );
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

Deno.test("image --closure - refuses a closure on stdin past 256 MiB without holding the rest", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", ...permissions, script, "--closure", "-", "--name", "x"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Written until the reader stops taking it (it quits at 256 MiB and 1 byte).
  const writer = child.stdin.getWriter();
  const chunk = new Uint8Array(1024 * 1024).fill(0x20);
  let written = 0;
  try {
    for (; written < 320; written++) await writer.write(chunk);
    await writer.close();
  } catch {
    // the pipe closed: refused
  }
  const { code, stderr } = await child.output();
  assert.equal(code, 1);
  assert.equal(
    new TextDecoder().decode(stderr).trim(),
    "image: Cannot read closure from stdin: it is more than the limit of 256 MiB",
  );
  assert.ok(written < 320, `took all ${written} MiB`);
});
