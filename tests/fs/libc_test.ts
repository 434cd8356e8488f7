// lib/fs/libc.ts: one opening of glibc shared by its users at a time.
import assert from "node:assert/strict";
import { join } from "node:path";
import { O_CLOEXEC, openLibc } from "../../lib/fs/libc.ts";
import { withTempDir } from "../_tools.ts";

/** Reads the first bytes of `path` through `libc`: open, pread, close. */
function readStart(libc: NonNullable<ReturnType<typeof openLibc>>, path: string): string {
  const { open, pread, close } = libc.symbols;
  const name = new TextEncoder().encode(`${path}\0`);
  const fd = open(name, O_CLOEXEC);
  assert.ok(fd >= 0, `open ${path}: errno ${libc.errno()}`);
  const bytes = new Uint8Array(16);
  const read = Number(pread(fd, bytes, 16n, 0n));
  close(fd);
  return new TextDecoder().decode(bytes.subarray(0, read));
}

Deno.test({
  name: "openLibc() is shared: a use disposed leaves the others working; the last one closes it",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "file");
      await Deno.writeTextFile(path, "hello");
      const first = openLibc();
      const second = openLibc();
      assert.ok(first !== undefined && second !== undefined, "glibc through FFI (this is Linux)");
      assert.equal(first.symbols, second.symbols, "one opening for both");
      first[Symbol.dispose]();
      first[Symbol.dispose](); // twice is once
      assert.equal(readStart(second, path), "hello");
      // The rarely needed calls, bound on first use.
      const { realpath, strlen, free } = second.rare();
      const real = realpath(new TextEncoder().encode(`${dir}/./file\0`), null);
      assert.ok(real !== null);
      const view = new Deno.UnsafePointerView(real);
      assert.equal(
        new TextDecoder().decode(new Uint8Array(view.getArrayBuffer(Number(strlen(real))))),
        await Deno.realPath(path),
      );
      free(real);
      second[Symbol.dispose]();
      using third = openLibc();
      assert.ok(third !== undefined);
      assert.notEqual(third.symbols, second.symbols, "opened again after the last use ended");
      assert.equal(readStart(third, path), "hello");
    });
  },
});

Deno.test("openLibc() without the ffi permission is undefined", async () => {
  await withTempDir(async (dir) => {
    const script = join(dir, "probe.ts");
    const url = new URL("../../lib/fs/libc.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { openLibc } from ${JSON.stringify(url)};\nconsole.log(openLibc());\n`,
    );
    const { code, stdout } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-lock", "--allow-read", script],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.equal(code, 0);
    assert.equal(new TextDecoder().decode(stdout).trim(), "undefined");
  });
});
