/**
 * Test helpers for external tools (nix, skopeo, umoci, podman…).
 *
 * A test that needs a missing tool is skipped with a printed reason, except
 * when `CI=true`, where a missing tool is a failure: CI installs every tool.
 *
 * @module
 */

import { createHash } from "node:crypto";

const found = new Map<string, boolean>();

/** Whether `name` runs on this machine (cached). */
export async function hasTool(name: string): Promise<boolean> {
  const known = found.get(name);
  if (known !== undefined) return known;
  let ok = false;
  try {
    const { success } = await new Deno.Command("sh", {
      args: ["-c", `command -v "$1" >/dev/null`, "sh", name],
      stdout: "null",
      stderr: "null",
    }).output();
    ok = success;
  } catch {
    ok = false;
  }
  found.set(name, ok);
  return ok;
}

/**
 * Resolves to `true` when every tool is present and usable. When one is
 * missing, or present but unusable for this user — Nix whose store this user
 * can neither open nor reach through a daemon; `nix-build` and `nix-daemon`,
 * which need a store this user can add to — it prints why the caller's tests
 * are skipped and resolves to `false`, or, when `CI=true`, throws.
 *
 * @example
 * ```ts
 * const nix = await requireTools("tests that build with Nix", "nix", "nix-build");
 * Deno.test({ name: "…", ignore: !nix, fn: async () => {} });
 * ```
 */
export async function requireTools(purpose: string, ...names: string[]): Promise<boolean> {
  const missing: string[] = [];
  for (const name of names) if (!await hasTool(name)) missing.push(name);
  if (missing.length > 0) return skip(purpose, `${missing.join(", ")} not found on PATH`);
  if (names.some((name) => NIX_TOOLS.has(name))) {
    const unusable = await nixUnusable();
    if (unusable !== undefined) return skip(purpose, unusable);
  }
  if (names.some((name) => STORE_WRITERS.has(name))) {
    const unwritable = await storeUnwritable();
    if (unwritable !== undefined) return skip(purpose, unwritable);
  }
  return true;
}

/**
 * Resolves to `true` when this user can add to the Nix store: the local store
 * is writable (root, or a single-user install of one's own), or a nix-daemon
 * answers on its socket (a multi-user install). Otherwise it skips with a
 * printed reason, or throws when `CI=true`.
 *
 * @example
 * ```ts
 * const store = await requireWritableStore("prefetch --add-to-store");
 * Deno.test({ name: "…", ignore: !store, fn: async () => {} });
 * ```
 */
export async function requireWritableStore(purpose: string): Promise<boolean> {
  if (!await requireTools(purpose, "nix-store")) return false;
  const unwritable = await storeUnwritable();
  return unwritable === undefined ? true : skip(purpose, unwritable);
}

/**
 * Resolves to `true` when this user can write the local Nix store itself
 * (`/nix/store` and its database), as prefetch's direct route and a private
 * nix-daemon need: root, or a single-user install owned by this user. A
 * daemon of a multi-user install does not count. Otherwise it skips with a
 * printed reason, or throws when `CI=true`.
 */
export async function requireLocalStore(purpose: string): Promise<boolean> {
  if (!await requireTools(purpose, "nix-store")) return false;
  const unwritable = await localStoreUnwritable();
  return unwritable === undefined ? true : skip(purpose, unwritable);
}

/**
 * Resolves to `true` when the tests run as root (mknod, chown to another
 * user, mount). Otherwise it skips with a printed reason, or throws when
 * `CI=true`.
 */
export function requireRoot(purpose: string): boolean {
  return Deno.uid() === 0 || skip(purpose, `not root (uid ${Deno.uid()})`);
}

/**
 * Prints why `purpose` is skipped and returns `false`; with `CI=true`, throws
 * instead (for a need no tool check covers, e.g. two file systems).
 */
export function skip(purpose: string, why: string): false {
  const reason = `${purpose}: ${why}`;
  if (Deno.env.get("CI") === "true") {
    throw new Error(`${reason} (CI=true: .ci/run must provide it)`);
  }
  console.log(`SKIP ${reason}`);
  return false;
}

/** Nix's programs, which all open the store (nix-hash and nix-prefetch-url aside). */
const NIX_TOOLS = new Set([
  "nix",
  "nix-build",
  "nix-instantiate",
  "nix-store",
  "nix-shell",
  "nix-env",
  "nix-daemon",
]);
/** Programs that add to the store: they need one this user can write or reach by a daemon. */
const STORE_WRITERS = new Set(["nix-build", "nix-shell", "nix-env", "nix-daemon"]);

let nixProbe: Promise<string | undefined> | undefined;
/** Why Nix cannot open its store for this user, or `undefined` when it can (asked once). */
function nixUnusable(): Promise<string | undefined> {
  return nixProbe ??= (async () => {
    // Evaluating opens the store: a root-owned single-user store fails here
    // for anyone else ("could not set permissions on …/profiles/per-user",
    // "opening lock file …/big-lock: Permission denied").
    const probe = await run("nix-instantiate", ["--eval", "-E", "1"], { env: nixEnv() })
      .catch((error: Error) => ({ code: -1, stdout: "", stderr: error.message }));
    if (probe.code === 0) return undefined;
    const first = probe.stderr.trim().split("\n")[0] ?? "";
    return `Nix cannot open its store as uid ${Deno.uid()}: ${first}`;
  })();
}

const DAEMON_SOCKET = "/nix/var/nix/daemon-socket/socket";
let storeProbe: Promise<string | undefined> | undefined;
/** Why this user cannot add to the store, or `undefined` when they can (asked once). */
function storeUnwritable(): Promise<string | undefined> {
  return storeProbe ??= (async () => {
    const local = await localStoreUnwritable();
    if (local === undefined) return undefined;
    const socket = Deno.env.get("NIX_DAEMON_SOCKET_PATH") ?? DAEMON_SOCKET;
    try {
      const conn = await Deno.connect({ transport: "unix", path: socket });
      conn.close();
      return undefined;
    } catch (error) {
      return `${local}, and no nix-daemon answers on ${socket} (${(error as Error).message})`;
    }
  })();
}

/** Why this user cannot write the local store itself, or `undefined` when they can. */
async function localStoreUnwritable(): Promise<string | undefined> {
  const test = await run("sh", [
    "-c",
    'test -w "$1" && test -w "$2"',
    "sh",
    "/nix/store",
    "/nix/var/nix/db",
  ]);
  return test.code === 0
    ? undefined
    : `uid ${Deno.uid()} cannot write /nix/store and /nix/var/nix/db`;
}

/**
 * Environment for running Nix 2.8+ here: flakes enabled, no substituters
 * (there is no network), no sandbox (Debian's nix-bin cannot sandbox).
 */
export function nixEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    NIX_CONFIG: [
      "experimental-features = nix-command flakes",
      "substituters =",
      "sandbox = false",
      // Build as root: concurrent test builds then never wait for, or get
      // killed over, a shared nixbld user.
      "build-users-group =",
      "warn-dirty = false",
    ].join("\n"),
    ...extra,
  };
}

/** The result of {@linkcode run}. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Deno's own notice when it fetches a module or npm package into its cache,
 * e.g. "Download https://registry.npmjs.org/zod". With a fresh cache a
 * script's first run can print these before it starts (seen in CI, after
 * `deno install` had cached the packages), and they are not its output.
 */
// deno-lint-ignore no-control-regex -- the notice may carry ANSI colour codes
const DENO_DOWNLOAD_NOTICE = /^(?:\x1b\[[0-9;]*m)*Download(?:\x1b\[[0-9;]*m)* https?:\/\/\S+\n/gm;

/**
 * Runs a command to completion, capturing its output as text. Deno's cache
 * download notices are dropped from stderr, so tests see what the program
 * itself printed.
 */
export async function run(
  cmd: string,
  args: string[],
  options: {
    cwd?: string;
    env?: Record<string, string>;
    stdin?: Uint8Array;
    signal?: AbortSignal;
  } = {},
): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.env === undefined ? {} : { env: options.env }),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(options.stdin);
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return {
    code,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr).replace(DENO_DOWNLOAD_NOTICE, ""),
  };
}

/** Absolute path of the repository root (for running scripts from tests). */
export const repoRoot: string = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/**
 * Runs `source`, a script that imports the repository's modules as `@repo/`
 * (`import { openElfReader } from "@repo/lib/package/elf.ts"`), in a child
 * process that holds only --allow-read (so no FFI), and returns what it
 * printed as JSON.
 */
export async function runReadOnly(source: string, args: string[]): Promise<unknown> {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(script, source.replaceAll("@repo/", `file://${repoRoot}/`));
    const result = await run(Deno.execPath(), [
      "run",
      "--no-lock",
      "--allow-read",
      script,
      ...args,
    ]);
    if (result.code !== 0) throw new Error(`the child failed: ${result.stderr}`);
    return JSON.parse(result.stdout);
  } finally {
    await Deno.remove(script);
  }
}

/**
 * The files below a folder of the repository whose names end in `suffix`,
 * as sorted repository paths (`docs/tools/update.md`), subfolders included.
 */
export function repoFiles(folder: string, suffix: string): string[] {
  const found: string[] = [];
  const walk = (path: string): void => {
    for (const entry of Deno.readDirSync(`${repoRoot}/${path}`)) {
      if (entry.isDirectory) walk(`${path}/${entry.name}`);
      else if (entry.isFile && entry.name.endsWith(suffix)) found.push(`${path}/${entry.name}`);
    }
  };
  walk(folder);
  return found.sort();
}

/**
 * Asserts that `fn` throws an instance of `ErrorClass` whose message contains
 * `fragment` (node:assert has no such one-liner).
 */
export function assertThrowsWith(
  fn: () => unknown,
  ErrorClass: new (...args: never[]) => Error,
  fragment = "",
): void {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof ErrorClass)) {
      throw new Error(`expected ${ErrorClass.name}, got ${String(error)}`);
    }
    if (!error.message.includes(fragment)) {
      throw new Error(
        `expected a message containing ${JSON.stringify(fragment)}, got ${
          JSON.stringify(error.message)
        }`,
      );
    }
    return;
  }
  throw new Error(`expected ${ErrorClass.name} to be thrown`);
}

/**
 * Runs a Nix command that may build, trying again (at most 12 times in all)
 * only when Nix killed its own builder.
 *
 * Nix 2.8 takes end-of-file on a builder's log terminal as the builder's end
 * and SIGKILLs its process group. On this machine's kernel that end-of-file
 * sometimes arrives before the builder has exited, so a sound build fails
 * "due to signal 9 (Killed)" — about 3 in 10 here, for any builder, a bare
 * `echo; sleep` included, and more often on a loaded machine. A build is
 * deterministic and what finished stays built, so trying again is safe; a
 * command that builds several derivations needs a try for each kill, hence
 * the cap of 40 tries or 3 minutes (12 still left a short builder that ends
 * right after its output failing about 1 CI run in 4, with two test passes
 * loading the machine).
 * Any other failure is returned at once.
 */
export async function runNixBuild(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const deadline = Date.now() + 180_000;
  for (let attempt = 1;; attempt++) {
    const result = await run(cmd, args, options);
    const killedByNix = /failed due to signal 9 \(Killed\)/.test(result.stderr);
    if (result.code === 0 || !killedByNix) return result;
    if (attempt === 40 || Date.now() > deadline) return result;
  }
}

/** Runs `fn` with a new temporary directory, removed afterwards whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "rocm-nightly-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `size` random bytes (getRandomValues fills at most 64 KiB per call). */
export function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(offset + 65536, size)));
  }
  return bytes;
}

/** The SHA-256 SRI hash of `bytes`, computed independently of lib/ (node:crypto). */
export function sriOf(bytes: Uint8Array): string {
  return `sha256-${createHash("sha256").update(bytes).digest("base64")}`;
}

/** {@linkcode sriOf}, for callers that await it. */
export function sha256Sri(bytes: Uint8Array): Promise<string> {
  return Promise.resolve(sriOf(bytes));
}

/**
 * Polls `predicate` every `everyMs` (default 5 ms) until it holds, at most
 * `timeoutMs`, unless `stop` aborts; throws naming `what` when it gives up.
 */
export async function waitUntil(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
  everyMs = 5,
  stop?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (stop?.aborted) throw new Error(`Stopped waiting for ${what}: the child ended`);
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Whether `path` exists (a dangling symlink counts). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** {@linkcode pathExists}, synchronously. */
export function pathExistsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Puts a shell wrapper named `tool` first on PATH, in `dir/bin`: `before`
 * runs, then the real tool with the same arguments.
 *
 * @returns The PATH to run with.
 */
export async function wrapOnPath(dir: string, tool: string, before: string): Promise<string> {
  const real = (await run("sh", ["-c", `command -v ${tool}`])).stdout.trim();
  if (real === "") throw new Error(`${tool} is not on PATH`);
  await Deno.mkdir(`${dir}/bin`, { recursive: true });
  await Deno.writeTextFile(`${dir}/bin/${tool}`, `#!/bin/sh\n${before}\nexec "${real}" "$@"\n`);
  await Deno.chmod(`${dir}/bin/${tool}`, 0o755);
  return `${dir}/bin:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`;
}

/**
 * A `nix-daemon` on PATH that marks that it ran, then runs the real one:
 * `ran()` tells whether prefetch took the daemon route.
 */
export async function markingNixDaemon(
  dir: string,
): Promise<{ PATH: string; ran: () => Promise<boolean> }> {
  const marker = `${dir}/nix-daemon-ran`;
  const PATH = await wrapOnPath(dir, "nix-daemon", `: > "${marker}"`);
  return { PATH, ran: () => pathExists(marker) };
}

/** Entries `/nix/store/*-<name>` that are not valid paths: what a direct store write left. */
export async function unregisteredInStore(
  name: string,
  env: Record<string, string> = nixEnv(),
): Promise<string[]> {
  const left: string[] = [];
  for await (const entry of Deno.readDir("/nix/store")) {
    if (!entry.name.endsWith(`-${name}`)) continue;
    const valid = await run("nix-store", ["--check-validity", `/nix/store/${entry.name}`], { env });
    if (valid.code !== 0) left.push(entry.name);
  }
  return left;
}

/** A current Nix, nixpkgs' real lib and the nixpkgs stand-in (tests/fixtures/nixpkgs-standin). */
export interface CurrentNix {
  /** The current Nix (.ci/current-nix installs it). */
  nix: string;
  /** A folder whose lib/ is nixpkgs' lib/. */
  nixpkgsLib: string;
  /** The stand-in flake's folder. */
  standin: string;
  /** Flags that put the stand-in (with the real lib) in place of the flake's nixpkgs. */
  overrideFlags: string[];
}

/**
 * Finds the current Nix (`ROCM_NIGHTLY_CURRENT_NIX`, default
 * /opt/rocm-nightly-nix/bin/nix, installed by .ci/current-nix) and nixpkgs'
 * real lib (`ROCM_NIGHTLY_NIXPKGS_LIB`, default `../shared/nixpkgs-lib` beside
 * the repository, or two levels up for a worktree). Resolves to `null` with a
 * printed reason when one is missing, and throws when `CI=true`.
 */
export async function requireCurrentNix(purpose: string): Promise<CurrentNix | null> {
  const nix = Deno.env.get("ROCM_NIGHTLY_CURRENT_NIX") ?? "/opt/rocm-nightly-nix/bin/nix";
  const libCandidates = [
    Deno.env.get("ROCM_NIGHTLY_NIXPKGS_LIB"),
    `${repoRoot}/../shared/nixpkgs-lib`,
    `${repoRoot}/../../shared/nixpkgs-lib`,
  ].filter((path): path is string => path !== undefined && path !== "");
  const problems: string[] = [];
  let usable = false;
  try {
    usable = (await run(nix, ["--version"], { env: nixEnv() })).code === 0;
  } catch {
    usable = false;
  }
  if (!usable) problems.push(`${nix} does not run (.ci/current-nix installs it)`);
  else {
    // Present but unusable: a store this user cannot open (a root-owned one).
    const probe = await run(nix, ["eval", "--expr", "1"], { env: nixEnv() });
    if (probe.code !== 0) {
      problems.push(
        `${nix} cannot open its store as uid ${Deno.uid()}: ${
          probe.stderr.trim().split("\n").at(-1)
        }`,
      );
    }
  }
  let nixpkgsLib: string | undefined;
  for (const path of libCandidates) {
    if (await pathExists(`${path}/lib/default.nix`)) {
      nixpkgsLib = await Deno.realPath(path);
      break;
    }
  }
  if (nixpkgsLib === undefined) {
    problems.push(
      `no nixpkgs lib in ${libCandidates.join(", ")} (set ROCM_NIGHTLY_NIXPKGS_LIB)`,
    );
  }
  if (problems.length > 0 || nixpkgsLib === undefined) {
    const reason = `${purpose}: ${problems.join("; ")}`;
    if (Deno.env.get("CI") === "true") {
      throw new Error(`${reason} (CI=true: .ci/run must provide it)`);
    }
    console.log(`SKIP ${reason}`);
    return null;
  }
  const standin = `${repoRoot}/tests/fixtures/nixpkgs-standin`;
  return {
    nix,
    nixpkgsLib,
    standin,
    overrideFlags: [
      "--no-write-lock-file",
      ...["--override-input", "nixpkgs", `path:${standin}`],
      ...["--override-input", "nixpkgs/nixpkgs-lib", `path:${nixpkgsLib}`],
    ],
  };
}

/**
 * Copies what the flake reads (flake.nix, flake.lock, deno.json, deno.lock,
 * mod.ts, lib/, nix/, scripts/) into `dir`, so a Nix evaluation of the copy
 * puts no work tree in the store.
 */
export async function copyFlakeSources(dir: string): Promise<void> {
  const copy = await run("sh", [
    "-c",
    'mkdir -p "$2" && cd "$1" && cp -r flake.nix flake.lock deno.json mod.ts lib nix scripts "$2"/ && { [ ! -e deno.lock ] || cp deno.lock "$2"/; }',
    "sh",
    repoRoot,
    dir,
  ]);
  if (copy.code !== 0) throw new Error(`Cannot copy the flake to "${dir}": ${copy.stderr}`);
}

/** A certificate for 127.0.0.1 and its key (PEM), self-signed by openssl in `dir`. */
export async function selfSignedCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const made = await run("openssl", [
    ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"],
    ...["-keyout", `${dir}/key.pem`, "-out", `${dir}/cert.pem`],
  ]);
  if (made.code !== 0) throw new Error(`openssl could not make a certificate: ${made.stderr}`);
  return {
    cert: await Deno.readTextFile(`${dir}/cert.pem`),
    key: await Deno.readTextFile(`${dir}/key.pem`),
  };
}
