/**
 * Streaming a file into the Nix store while it downloads, through the Nix
 * daemon protocol (the worker protocol `nix-store` itself speaks).
 *
 * Nix 2.8's `nix-store --add-fixed` reads its file twice (hash, then copy)
 * and cannot read a pipe, so a download would be written, read, hashed and
 * copied again. The protocol's `AddToStore` operation (protocol 1.25+)
 * instead takes the file's bytes as a stream of frames: the daemon hashes
 * and writes them as they arrive and, once the last frame is sent, registers
 * the flat fixed-output path with its content address. Aborting before the
 * last frame (closing the connection) makes the daemon discard everything.
 *
 * The connection is `nix-daemon --stdio`, which serves whatever store Nix
 * would use: the local store (as root) directly, or, with
 * `NIX_REMOTE=daemon`, the running daemon it forwards to (at
 * `NIX_DAEMON_SOCKET_PATH` when set).
 *
 * @module
 */

import { concatBytes } from "../fs/bytes.ts";
import type { HashAlgorithm } from "../hash/hash.ts";
import { wireNumber as u64, wirePadding, wireString as str } from "./nix_wire.ts";

const WORKER_MAGIC_1 = 0x6e697863;
const WORKER_MAGIC_2 = 0x6478696f;
/** 1.25: the first version whose AddToStore streams framed contents. */
const CLIENT_VERSION = (1 << 8) | 25;
const OP_ADD_TO_STORE = 7;
const STDERR_NEXT = 0x6f6c6d67;
const STDERR_READ = 0x64617461;
const STDERR_WRITE = 0x64617416;
const STDERR_LAST = 0x616c7473;
const STDERR_ERROR = 0x63787470;
const STDERR_START_ACTIVITY = 0x53545254;
const STDERR_STOP_ACTIVITY = 0x53544f50;
const STDERR_RESULT = 0x52534c54;
/** Strings from the daemon (paths, messages) are never longer. */
const MAX_STRING = 1024 * 1024;

/** What the store registered, as the daemon reports it. */
export interface StoreAddResult {
  /** The store path. */
  path: string;
  /** The SHA-256 of the path's NAR serialisation, in hex. */
  narHash: string;
  /** The size of the NAR serialisation. */
  narSize: number;
  /** When the path was registered (Unix seconds): before this addition if it was valid already. */
  registrationTime: number;
  /** The content address, e.g. `fixed:sha256:…`. */
  ca: string;
}

/**
 * A flat file being added to the Nix store as it is written: the bytes go
 * to the daemon, which hashes and stores them; {@linkcode StoreStream.finish}
 * registers the path, {@linkcode StoreStream.abort} leaves the store as it
 * was.
 *
 * @example Usage
 * ```ts ignore
 * import { StoreStream } from "./nix_daemon.ts";
 *
 * const store = await StoreStream.open("hello.txt", "sha256");
 * await store.write(new TextEncoder().encode("hello\n"));
 * const { path } = await store.finish(); // "/nix/store/…-hello.txt"
 * ```
 */
export class StoreStream {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #reader: DaemonReader;
  #stderr: Promise<string>;
  #name: string;
  #closed = false;
  /** The daemon's answer, read from the moment the operation starts (an error may come early). */
  #answer: Promise<StoreAddResult> | undefined;

  private constructor(child: Deno.ChildProcess, name: string) {
    this.#child = child;
    this.#name = name;
    this.#writer = child.stdin.getWriter();
    this.#reader = new DaemonReader(child.stdout);
    this.#stderr = new Response(child.stderr).text().catch(() => "");
  }

  /**
   * Connects to the store and starts adding a flat file named `name`.
   *
   * @param name The store name (the caller checked it).
   * @param algorithm The hash algorithm of the content address.
   * @returns The open stream.
   * @throws {Error} When nix-daemon cannot be run or refuses the connection.
   */
  static async open(name: string, algorithm: HashAlgorithm): Promise<StoreStream> {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command("nix-daemon", {
        // A local store's AddToStore first gathers up to nar-buffer-size
        // (32 MiB) in memory before it spills to a temporary file in the
        // store: with 0 it streams to the file at once, which halves
        // nix-daemon's peak RSS (65 → 33 MiB) and changes nothing else. (A
        // daemon this one forwards to keeps its own setting.)
        args: ["--stdio", "--option", "nar-buffer-size", "0"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new Error(`Cannot run "nix-daemon": it is not on PATH (is Nix installed?)`);
      }
      throw error;
    }
    const stream = new StoreStream(child, name);
    try {
      await stream.#handshake();
      await stream.#send(
        u64(OP_ADD_TO_STORE),
        str(name),
        str(`fixed:${algorithm}`),
        u64(0), // no references
        u64(0), // no repair
      );
      stream.#answer = stream.#readAnswer();
      stream.#answer.catch(() => {});
    } catch (error) {
      await stream.abort();
      throw await stream.#failure(error);
    }
    return stream;
  }

  /**
   * Sends the next bytes (one frame). The chunk may be reused once the
   * promise settles.
   *
   * @param chunk The next bytes of the file.
   */
  async write(chunk: Uint8Array): Promise<void> {
    if (chunk.length === 0) return; // an empty frame would end the file
    try {
      // A daemon that failed stops reading: its answer says why.
      await Promise.race([this.#send(u64(chunk.length), chunk), this.#answer]);
    } catch (error) {
      throw await this.#failure(error);
    }
  }

  /**
   * Ends the file: the daemon registers the path.
   *
   * @returns What the store registered.
   * @throws {Error} When the daemon refuses the file.
   */
  async finish(): Promise<StoreAddResult> {
    try {
      await Promise.race([this.#send(u64(0)), this.#answer]);
      return await this.#answer!;
    } catch (error) {
      throw await this.#failure(error);
    } finally {
      await this.abort();
    }
  }

  async #readAnswer(): Promise<StoreAddResult> {
    await this.#reader.messages();
    const path = await this.#reader.string();
    await this.#reader.string(); // deriver
    const narHash = await this.#reader.string();
    const references = await this.#reader.number();
    for (let i = 0; i < references; i++) await this.#reader.string();
    const registrationTime = await this.#reader.number();
    const narSize = await this.#reader.number();
    await this.#reader.number(); // ultimate
    const signatures = await this.#reader.number();
    for (let i = 0; i < signatures; i++) await this.#reader.string();
    const ca = await this.#reader.string();
    return { path, narHash, narSize, registrationTime, ca };
  }

  /** Closes the connection; unless {@linkcode finish} succeeded, nothing is added. */
  async abort(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.#writer.abort().catch(() => {});
    await this.#reader.cancel();
    await this.#child.status;
    await this.#stderr;
  }

  async #handshake(): Promise<void> {
    await this.#send(u64(WORKER_MAGIC_1));
    if ((await this.#reader.number()) !== WORKER_MAGIC_2) {
      throw new Error("nix-daemon does not speak the Nix worker protocol");
    }
    const version = await this.#reader.number();
    if ((version >> 8) !== 1 || (version & 0xff) < 25) {
      throw new Error(
        `nix-daemon speaks protocol ${version >> 8}.${
          version & 0xff
        }; 1.25 or later (Nix 2.4+) is needed`,
      );
    }
    await this.#send(u64(CLIENT_VERSION), u64(0), /* no CPU affinity */ u64(0) /* reserveSpace */);
    await this.#reader.messages();
  }

  async #send(...parts: Uint8Array[]): Promise<void> {
    for (const part of parts) await this.#writer.write(part);
  }

  /** The daemon's own words for a failure, else the error itself. */
  async #failure(error: unknown): Promise<Error> {
    if (error instanceof DaemonError) {
      return new Error(`Cannot add "${this.#name}" to the Nix store: ${error.message}`);
    }
    if (!this.#closed) await this.abort();
    const stderr = (await this.#stderr).trim().split("\n").at(-1) ?? "";
    const detail = stderr !== "" ? stderr : (error as Error).message;
    return new Error(`Cannot add "${this.#name}" to the Nix store: nix-daemon failed: ${detail}`);
  }
}

/** An error the daemon reported (STDERR_ERROR). */
class DaemonError extends Error {
  override name = "DaemonError";
}

/** Reads protocol values from the daemon's stdout. */
class DaemonReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer = new Uint8Array(0);

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  async #take(length: number): Promise<Uint8Array> {
    while (this.#buffer.length < length) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error("nix-daemon closed the connection");
      this.#buffer = concatBytes([this.#buffer, value]);
    }
    const taken = this.#buffer.subarray(0, length);
    this.#buffer = this.#buffer.subarray(length);
    return taken;
  }

  async number(): Promise<number> {
    const bytes = await this.#take(8);
    const value = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error("nix-daemon sent a huge number");
    return Number(value);
  }

  async string(): Promise<string> {
    const length = await this.number();
    if (length > MAX_STRING) throw new Error("nix-daemon sent a string longer than 1 MiB");
    const bytes = await this.#take(length + wirePadding(length));
    return new TextDecoder().decode(bytes.subarray(0, length));
  }

  /** Skips log messages up to STDERR_LAST; throws the daemon's error. */
  async messages(): Promise<void> {
    for (let count = 0; count < 1_000_000; count++) {
      const message = await this.number();
      switch (message) {
        case STDERR_LAST:
          return;
        case STDERR_ERROR: {
          const text = await this.string();
          await this.number(); // exit status
          // Nix colours its messages for a terminal: drop the escapes.
          // deno-lint-ignore no-control-regex
          throw new DaemonError(text.replace(/\x1b\[[0-9;]*m/g, "").replace(/^error: /, ""));
        }
        case STDERR_NEXT:
          await this.string();
          break;
        case STDERR_START_ACTIVITY:
          await this.number(); // id
          await this.number(); // level
          await this.number(); // type
          await this.string(); // text
          await this.fields();
          await this.number(); // parent
          break;
        case STDERR_STOP_ACTIVITY:
          await this.number();
          break;
        case STDERR_RESULT:
          await this.number(); // id
          await this.number(); // type
          await this.fields();
          break;
        case STDERR_READ:
        case STDERR_WRITE:
          throw new Error("nix-daemon asked for a data exchange AddToStore does not use");
        default:
          throw new Error(`nix-daemon sent an unknown message 0x${message.toString(16)}`);
      }
    }
    throw new Error("nix-daemon sent more than a million log messages");
  }

  async fields(): Promise<void> {
    const count = await this.number();
    for (let i = 0; i < count; i++) {
      if ((await this.number()) === 0) await this.number();
      else await this.string();
    }
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}
