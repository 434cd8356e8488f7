/**
 * The fault suite's harness: run a script as a user would (its shebang's
 * permissions, a fresh TMPDIR), optionally signal it at a chosen moment, and
 * check the promise of docs/guarantees.md for a failure — the exit code, one
 * line on stderr, nothing on stdout, the user's files byte-identical, no
 * leftover anywhere (the output's folder and TMPDIR), nothing added to the
 * Nix store.
 *
 * @module
 */

import { equal, match } from "node:assert/strict";
import { fixedOutputPath, isValidStorePath } from "../../lib/store/nix_store.ts";
import { parseSri } from "../../lib/hash/hash.ts";
import { needsOf } from "./_needs.ts";
import { nixEnv, repoRoot, unregisteredInStore } from "../_tools.ts";

// The fault cases' waiting and hashing are the whole suite's (tests/_tools.ts).
export { sriOf, waitUntil } from "../_tools.ts";

/** One fault case: a name and a body that throws when a promise breaks. */
export interface FaultCase {
  /** What is done to the script, e.g. "prefetch: 206 with Content-Range 0-999/204800". */
  name: string;
  /** Runs the case; every case is bounded in time by the harness. */
  run: () => Promise<void>;
  /**
   * What the case needs of this machine (root, a writable store): resolves
   * to `false` after printing why the case is skipped (tests/_tools.ts's
   * require* helpers; they throw with CI=true).
   */
  needs?: () => boolean | Promise<boolean>;
}

/** A fault class: the row of docs/guarantees.md's "What it survives" table, and its cases. */
export interface FaultClass {
  /** The class as docs/guarantees.md's table names it. */
  title: string;
  /** Its cases. */
  cases: FaultCase[];
  /** Removes what the cases shared, once they have all run. */
  cleanup?: () => Promise<void>;
}

/** The result of {@linkcode runScript}. */
export interface ScriptResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  /** The TMPDIR the child had; empty when it cleaned up. */
  tmpdir: string;
}

/** Options for {@linkcode runScript}. */
export interface RunScriptOptions {
  /** Bytes on stdin (default: none, stdin is /dev/null). */
  stdin?: Uint8Array;
  /** Extra environment. */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
  /** Send this signal once `when` resolves (it gets the child's PID). */
  signal?: {
    name: Deno.Signal;
    /** Resolves at the moment to signal; `exited` aborts when the child ends first. */
    when: (pid: number, exited: AbortSignal) => Promise<void>;
  };
  /** The bound on the whole run; a child still running then is killed and the case fails. */
  timeoutMs?: number;
  /** A command the script runs under, e.g. `["strace", …]` or `["setpriv", …]` (default: none). */
  under?: string[];
}

const decoder = new TextDecoder();
// deno-lint-ignore no-control-regex -- Deno's cache notice may carry colour codes
const DENO_DOWNLOAD_NOTICE = /^(?:\x1b\[[0-9;]*m)*Download(?:\x1b\[[0-9;]*m)* https?:\/\/\S+\n/gm;

/** The permission flags of a script's shebang: the ones docs/tools/ and the flake give it. */
export function shebangPermissions(script: string): string[] {
  const first = Deno.readTextFileSync(`${repoRoot}/scripts/${script}.ts`).split("\n", 1)[0]!;
  return first.split(" ").filter((word) => word.startsWith("--allow-"));
}

/** This process's Deno cache folder, as Deno finds it. */
export function denoDir(): string {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  return Deno.env.get("DENO_DIR") ??
    `${xdg !== undefined && xdg.startsWith("/") ? xdg : `${Deno.env.get("HOME")}/.cache`}/deno`;
}

/**
 * Runs `scripts/<script>.ts` with its shebang's permissions and a fresh
 * TMPDIR, bounded in time. prefetch and update add to the Nix store by
 * default: unless a case passes `--add-to-store` (or `--no-add-to-store`)
 * they get `--no-add-to-store`, so the suite leaves the system store as it
 * was; and unless a case names one, XDG_CACHE_HOME is a fresh folder,
 * removed after the run, so no download cache lands in the user's home.
 */
export async function runScript(
  script: string,
  args: string[],
  options: RunScriptOptions = {},
): Promise<ScriptResult> {
  const tmpdir = await Deno.makeTempDir({ prefix: "fault-tmp-" });
  const storeFlag = (script === "update" || script === "prefetch") &&
      !args.includes("--add-to-store") && !args.includes("--no-add-to-store")
    ? ["--no-add-to-store"]
    : [];
  args = [...storeFlag, ...args];
  const cache = options.env?.XDG_CACHE_HOME === undefined
    ? await Deno.makeTempDir({ prefix: "fault-cache-" })
    : undefined;
  const [program, ...wrapper] = [...options.under ?? [], Deno.execPath()];
  const child = new Deno.Command(program!, {
    args: [
      ...wrapper,
      "run",
      "--quiet",
      ...shebangPermissions(script),
      `${repoRoot}/scripts/${script}.ts`,
      ...args,
    ],
    env: {
      ...nixEnv(),
      TMPDIR: tmpdir,
      NO_COLOR: "1",
      // Deno's own cache stays where it was (it defaults to $XDG_CACHE_HOME/deno).
      DENO_DIR: denoDir(),
      ...(cache === undefined ? {} : { XDG_CACHE_HOME: cache }),
      ...options.env,
    },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(options.stdin).catch(() => {});
    await writer.close().catch(() => {});
  }
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // exited, but something it started still holds its output open
    }
  }, timeoutMs);
  // The wait for the moment ends when the child does: it may finish first.
  const exited = new AbortController();
  child.status.finally(() => exited.abort());
  const signalled = options.signal === undefined
    ? Promise.resolve()
    : options.signal.when(child.pid, exited.signal).then(() => child.kill(options.signal!.name));
  try {
    const [output] = await Promise.all([child.output(), signalled.catch(() => {})]);
    if (timedOut) {
      throw new Error(`${script} ${args.join(" ")}: still running after ${timeoutMs} ms`);
    }
    return {
      code: output.code,
      signal: output.signal,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr).replace(DENO_DOWNLOAD_NOTICE, ""),
      tmpdir,
    };
  } finally {
    clearTimeout(timer);
    if (cache !== undefined) await Deno.remove(cache, { recursive: true }).catch(() => {});
  }
}

/** What a failed run must look like, and what it must have left alone. */
export interface CleanFailure {
  /** The exit code. */
  code: number;
  /** The one stderr line must match this. */
  stderr?: RegExp;
  /** Folders whose contents must be exactly as in their snapshot (the user's files, the output's folder). */
  unchanged?: Snapshot[];
  /**
   * Store paths (name and body) that must not have been added. For a name
   * only this case uses (`unique`), no unregistered file of that name may be
   * left in the store folder either; a shared name (the update fixtures')
   * may be mid-download in a case running beside this one.
   */
  notInStore?: { name: string; hash: string; unique?: boolean }[];
}

/**
 * Asserts docs/guarantees.md's promise for a failed (or interrupted) run, and
 * removes the child's TMPDIR.
 */
export async function assertFailedCleanly(
  result: ScriptResult,
  promise: CleanFailure,
): Promise<void> {
  try {
    const context = `stderr: ${JSON.stringify(result.stderr)}, stdout: ${
      JSON.stringify(result.stdout)
    }`;
    equal(result.code, promise.code, `exit code (${context})`);
    equal(result.stdout, "", "nothing on stdout");
    const lines = result.stderr.split("\n").filter((line) => line !== "");
    equal(lines.length, 1, `one line on stderr, got ${JSON.stringify(result.stderr)}`);
    if (promise.stderr !== undefined) match(lines[0]!, promise.stderr);
    const left = [...Deno.readDirSync(result.tmpdir)].map((entry) => entry.name);
    equal(left.length, 0, `TMPDIR left empty, found ${JSON.stringify(left)}`);
    for (const snapshot of promise.unchanged ?? []) await assertUnchanged(snapshot);
    for (const { name, hash, unique } of promise.notInStore ?? []) {
      const path = fixedOutputPath(name, parseSri(hash));
      equal(await isValidStorePath(path), false, `${path} not added to the store`);
      if (!unique) continue;
      // Nor an unregistered file of that name left in the store folder (a
      // direct write's temporary).
      const left = await unregisteredInStore(name);
      equal(left.join(" "), "", `no unregistered "*-${name}" left in /nix/store`);
    }
  } finally {
    await Deno.remove(result.tmpdir, { recursive: true }).catch(() => {});
  }
}

/** Every entry below a folder: kind, and the bytes of files and link targets. */
export interface Snapshot {
  root: string;
  entries: Map<string, string>;
}

/** Records a folder's contents (names as bytes do not matter here: Deno names them). */
export function snapshot(root: string): Snapshot {
  const entries = new Map<string, string>();
  const walk = (dir: string, prefix: string): void => {
    for (const entry of Deno.readDirSync(dir)) {
      const path = `${dir}/${entry.name}`;
      const rel = `${prefix}${entry.name}`;
      const info = Deno.lstatSync(path);
      if (info.isSymlink) entries.set(rel, `link:${Deno.readLinkSync(path)}`);
      else if (info.isDirectory) {
        entries.set(rel, "dir");
        walk(path, `${rel}/`);
      } else if (info.isFile) {
        // A huge (sparse) test file is told by its size, time and inode, not read.
        const content = info.size > 2 ** 26
          ? `${info.size}:${info.mtime?.getTime()}:${info.ino}`
          : digest(Deno.readFileSync(path));
        entries.set(rel, `file:${info.mode?.toString(8)}:${content}`);
      } else entries.set(rel, "special");
    }
  };
  walk(root, "");
  return { root, entries };
}

async function assertUnchanged(before: Snapshot): Promise<void> {
  const after = snapshot(before.root);
  const added = [...after.entries.keys()].filter((k) => !before.entries.has(k));
  const removed = [...before.entries.keys()].filter((k) => !after.entries.has(k));
  const changed = [...before.entries.keys()].filter((k) =>
    after.entries.has(k) && after.entries.get(k) !== before.entries.get(k)
  );
  equal(
    JSON.stringify({ added, removed, changed }),
    JSON.stringify({ added: [], removed: [], changed: [] }),
    `"${before.root}" is exactly as it was`,
  );
  await Promise.resolve();
}

function digest(bytes: Uint8Array): string {
  // FNV-1a over the bytes and the length: enough to tell any change in a test file.
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return `${bytes.length}:${hash.toString(16)}`;
}

/** A value made once, on first use, by `make` in a shared folder that `dispose` removes. */
export function shared<T>(
  make: (dir: string) => Promise<T>,
): { get(): Promise<T>; dispose(): Promise<void> } {
  let dir: string | undefined;
  let value: Promise<T> | undefined;
  return {
    get: () =>
      value ??= (async () => {
        dir = await Deno.makeTempDir({ prefix: "fault-shared-" });
        return await make(dir);
      })(),
    dispose: async () => {
      if (dir !== undefined) await Deno.remove(dir, { recursive: true }).catch(() => {});
      dir = undefined;
      value = undefined;
    },
  };
}

/** Runs `fn` with a fresh folder, removed afterwards. */
export async function inTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "fault-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Runs each class's cases as steps of one test, a few at a time. */
export function registerClasses(classes: FaultClass[]): void {
  for (const { title, cases, cleanup } of classes) {
    Deno.test(`fault suite: ${title}`, async (t) => {
      const failures: string[] = [];
      await using _shared = { [Symbol.asyncDispose]: async () => await cleanup?.() };
      await pool(cases, 3, async (c) => {
        const ignore = !(await (c.needs ?? needsOf(c.name))?.() ?? true);
        const ok = await t.step({
          name: c.name,
          ignore,
          fn: () => bounded(c.run(), 120_000, c.name),
          sanitizeOps: false,
          sanitizeResources: false,
          sanitizeExit: false,
        });
        if (!ok && !ignore) failures.push(c.name);
      });
      equal(failures.length, 0, `failed: ${failures.join("; ")}`);
    });
  }
}

async function pool<T>(items: T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
}

async function bounded(work: Promise<void>, ms: number, name: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${name}: still running after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
