/**
 * glibc's file calls through FFI, opened once for everything that uses them
 * at a time: a `Deno.dlopen` costs about 0.6 ms, and 0.1 ms more per
 * function (check-output's walk, its ELF reader and the folder listings of
 * its library search would otherwise open glibc three times per run). The
 * calls every run makes are bound at once; those only a name that is not
 * UTF-8 needs, on first use.
 *
 * @module
 */

const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  openat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  // glibc 2.30 and later: an older one has no directory reader by getdents64.
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize", optional: true },
} as const;

const RARE_SYMBOLS = {
  realpath: { parameters: ["buffer", "pointer"], result: "pointer" },
  strlen: { parameters: ["pointer"], result: "usize" },
  free: { parameters: ["pointer"], result: "void" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** glibc's calls that are rarely needed, as {@linkcode Libc.rare} gives them. */
export type RareLibcSymbols = Deno.DynamicLibrary<typeof RARE_SYMBOLS>["symbols"];

/** `open(2)` flags of <fcntl.h> on Linux. */
export const O_NONBLOCK = 0o4000;
/** See {@linkcode O_NONBLOCK}. */
export const O_DIRECTORY = 0o200000;
/** See {@linkcode O_NONBLOCK}. */
export const O_CLOEXEC = 0o2000000;
/** See {@linkcode O_NONBLOCK}. */
export const O_PATH = 0o10000000;

/** glibc's calls, as {@linkcode openLibc} gives them. */
export type LibcSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** A use of glibc; dispose of it (`using`) when done: the last use closes it. */
export interface Libc extends Disposable {
  /** The calls (`getdents64` is `null` before glibc 2.30). */
  readonly symbols: LibcSymbols;
  /** The calls rarely needed (`realpath`…), bound on first use. */
  rare(): RareLibcSymbols;
  /** The calling thread's `errno`, after a call that failed. */
  errno(): number;
}

let shared:
  | {
    library: Deno.DynamicLibrary<typeof SYMBOLS>;
    rare: Deno.DynamicLibrary<typeof RARE_SYMBOLS> | undefined;
    uses: number;
  }
  | undefined;

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
      shared = { library: Deno.dlopen("libc.so.6", SYMBOLS), rare: undefined, uses: 0 };
    } catch {
      return undefined; // not glibc
    }
  }
  shared.uses++;
  const opened = shared;
  let disposed = false;
  const rare = (): RareLibcSymbols =>
    (opened.rare ??= Deno.dlopen("libc.so.6", RARE_SYMBOLS)).symbols;
  return {
    symbols: opened.library.symbols,
    rare,
    errno(): number {
      const at = rare().__errno_location();
      return at === null ? 0 : new Deno.UnsafePointerView(at).getInt32();
    },
    [Symbol.dispose](): void {
      if (disposed) return;
      disposed = true;
      if (--opened.uses > 0) return;
      shared = undefined;
      opened.library.close();
      opened.rare?.close();
    },
  };
}
