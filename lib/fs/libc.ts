/**
 * glibc's file calls through FFI, opened once for everything that uses them
 * at a time: each `Deno.dlopen` costs about a millisecond (check-output's
 * walk, its ELF reader and the folder listings of its library search would
 * otherwise open glibc three times per run).
 *
 * @module
 */

const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  openat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  opendir: { parameters: ["buffer"], result: "pointer" },
  dirfd: { parameters: ["pointer"], result: "i32" },
  // glibc 2.30 and later: an older one has no directory reader by getdents64.
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize", optional: true },
  closedir: { parameters: ["pointer"], result: "i32" },
  realpath: { parameters: ["buffer", "pointer"], result: "pointer" },
  strlen: { parameters: ["pointer"], result: "usize" },
  free: { parameters: ["pointer"], result: "void" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** glibc's calls, as {@linkcode openLibc} gives them. */
export type LibcSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** A use of glibc; dispose of it (`using`) when done: the last use closes it. */
export interface Libc extends Disposable {
  /** The calls (`getdents64` is `null` before glibc 2.30). */
  readonly symbols: LibcSymbols;
  /** The calling thread's `errno`, after a call that failed. */
  errno(): number;
}

let shared: { library: Deno.DynamicLibrary<typeof SYMBOLS>; uses: number } | undefined;

/**
 * glibc, or `undefined` where it cannot be opened (musl, another system, no
 * `ffi` permission).
 *
 * @example Usage
 * ```ts
 * import { openLibc } from "./libc.ts";
 *
 * using libc = openLibc();
 * console.log(libc === undefined ? "Deno's file API" : "glibc");
 * ```
 */
export function openLibc(): Libc | undefined {
  if (
    Deno.build.os !== "linux" || Deno.permissions.querySync({ name: "ffi" }).state !== "granted"
  ) {
    return undefined;
  }
  if (shared === undefined) {
    try {
      shared = { library: Deno.dlopen("libc.so.6", SYMBOLS), uses: 0 };
    } catch {
      return undefined; // not glibc
    }
  }
  shared.uses++;
  const { library } = shared;
  let disposed = false;
  return {
    symbols: library.symbols,
    errno(): number {
      const at = library.symbols.__errno_location();
      return at === null ? 0 : new Deno.UnsafePointerView(at).getInt32();
    },
    [Symbol.dispose](): void {
      if (disposed) return;
      disposed = true;
      if (--shared!.uses > 0) return;
      shared = undefined;
      library.close();
    },
  };
}
