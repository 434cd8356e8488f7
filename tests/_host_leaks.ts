// Trees that try to carry the host into a package (issue #20, item 8): symlinks
// out of the tree where nix/install.sh copies or reads files, and device
// nodes, FIFOs and sockets. For tests/nix/install_test.ts, tests/package/ and
// the fault suite.
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeSampleRocmTree } from "../lib/package/sample_rocm.ts";

/** What the host's secret file holds: no byte run of it may reach an output. */
export const HOST_SECRET = "host secret 5f2c91: never in a package\n";

/** A tree whose links lead out of it, from {@linkcode writeLeakyTree}. */
export interface LeakyTree {
  /** The tree (a sample ROCm tree), at `<dir>/tree`. */
  tree: string;
  /** The host's folder, `<dir>/host`, holding `secret` and the `tool` that prints it. */
  host: string;
  /** Each link out of the tree install.sh meets, relative to the tree: a warning names each. */
  escaping: string[];
}

/**
 * A sample tree whose license files, OpenCL ICDs and one bin/ entry are
 * symlinks to `<dir>/host/secret` (absolute, relative with `..` above the
 * tree, and through a folder link that leaves it), beside links that stay
 * inside and must still be followed. Relative links reach the secret from an
 * output at `<dir>/<name>` (from its `opt/rocm`, `../../..` is `<dir>`).
 */
export async function writeLeakyTree(dir: string): Promise<LeakyTree> {
  const tree = join(dir, "tree");
  const host = join(dir, "host");
  await writeSampleRocmTree(tree, { isas: [] });
  await Deno.mkdir(host);
  await Deno.writeTextFile(join(host, "secret"), HOST_SECRET);
  await Deno.writeTextFile(join(host, "tool"), `#!/bin/sh\ncat "${host}/secret"\n`, {
    mode: 0o755,
  });
  const links: Record<string, string> = {
    "LICENSE": join(host, "secret"),
    "LICENSE.txt": "../../../host/secret",
    "lib/host": "../../../../host",
    "NOTICE": "lib/host/secret",
    "etc/OpenCL/vendors/amd.icd": join(host, "secret"),
    "etc/OpenCL/vendors/up.icd": "../../../../../../host/secret",
    "bin/host-tool": join(host, "tool"),
    // Inside the tree, through a folder link: followed as before.
    "share/licenses-here": "doc",
    "COPYING": "share/licenses-here/COPYING.inside",
    "etc/OpenCL/vendors/inside.icd": "../../../share/doc/inside.icd",
  };
  await Deno.remove(join(tree, "LICENSE"));
  await Deno.mkdir(join(tree, "etc/OpenCL/vendors"), { recursive: true });
  await Deno.writeTextFile(join(tree, "share/doc/COPYING.inside"), "In-tree license.\n");
  await Deno.writeTextFile(join(tree, "share/doc/inside.icd"), "libinside.so\n");
  for (const [path, target] of Object.entries(links)) {
    await Deno.symlink(target, join(tree, path));
  }
  return {
    tree,
    host,
    escaping: [
      "LICENSE",
      "LICENSE.txt",
      "NOTICE",
      "etc/OpenCL/vendors/amd.icd",
      "etc/OpenCL/vendors/up.icd",
      "bin/host-tool",
    ],
  };
}

/**
 * A tree (no license of its own) whose `share/doc` and `etc` folders are
 * links to folders of the host holding a license and an ICD: none of them
 * may be read (`etc` is relative: for an output at `<dir>/<name>`).
 */
export async function writeTreeWithHostFolders(dir: string): Promise<LeakyTree> {
  const tree = join(dir, "tree");
  const host = join(dir, "host");
  await writeSampleRocmTree(tree, { isas: [] });
  await Deno.remove(join(tree, "LICENSE"));
  await Deno.mkdir(join(host, "doc"), { recursive: true });
  await Deno.mkdir(join(host, "etc/OpenCL/vendors"), { recursive: true });
  await Deno.writeTextFile(join(host, "doc/LICENSE"), HOST_SECRET);
  await Deno.writeTextFile(join(host, "etc/OpenCL/vendors/host.icd"), HOST_SECRET);
  await Deno.remove(join(tree, "share/doc"), { recursive: true });
  await Deno.symlink(join(host, "doc"), join(tree, "share/doc"));
  await Deno.symlink("../../../host/etc", join(tree, "etc"));
  return { tree, host, escaping: ["share/doc", "etc/OpenCL/vendors"] };
}

/**
 * Asserts that no regular file below `out` (links are not followed: a link
 * is a name, not bytes) holds the host's secret.
 */
export function assertNoHostBytes(out: string): void {
  const needle = HOST_SECRET.slice(0, 20);
  const stack = [out];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    for (const entry of Deno.readDirSync(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) stack.push(path);
      else if (entry.isFile) {
        const text = new TextDecoder().decode(Deno.readFileSync(path));
        assert.ok(!text.includes(needle), `"${path}" holds the host's secret`);
      }
    }
  }
}

/** A special file: its path below the tree and the word install.sh names its kind with. */
export interface SpecialFile {
  path: string;
  kind: "FIFO" | "socket" | "character device" | "block device";
}

/**
 * Makes a FIFO, a socket and (as root) a character device like /dev/null
 * below `root`, in existing folders `bin/` and `lib/`.
 */
export async function addSpecialFiles(root: string): Promise<SpecialFile[]> {
  const made: SpecialFile[] = [{ path: "bin/fifo", kind: "FIFO" }];
  const fifo = await new Deno.Command("mkfifo", { args: [join(root, "bin/fifo")] }).output();
  assert.ok(fifo.success, "mkfifo");
  makeSocket(join(root, "lib/socket"));
  made.push({ path: "lib/socket", kind: "socket" });
  if (Deno.uid() === 0) {
    const device = await new Deno.Command("mknod", {
      args: [join(root, "lib/null"), "c", "1", "3"],
    }).output();
    assert.ok(device.success, "mknod");
    made.push({ path: "lib/null", kind: "character device" });
  }
  return made;
}

/** Leaves a Unix socket file at `path` (nothing listens on it). */
export function makeSocket(path: string): void {
  // Deno removes a listener's socket file when it closes: a second name keeps it.
  const listener = Deno.listen({ transport: "unix", path: `${path}.listening` });
  Deno.linkSync(`${path}.listening`, path);
  listener.close();
  // Deno 2.6 leaves the listener's own name behind.
  try {
    Deno.removeSync(`${path}.listening`);
  } catch {
    // removed on close
  }
}
