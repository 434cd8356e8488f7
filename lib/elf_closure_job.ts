/**
 * The ELF closure check of lib/elf_closure.ts, run beside a tree walk: paths
 * are handed over as the walk finds them, and a Worker reads them on another
 * thread while the walk goes on, then resolves them. On a package output the
 * walk and the ELF reads cost about the same (100,000 entries listed; 5,000
 * files opened and read), so with a core to spare the two overlap.
 *
 * Built-ins only: check-output runs it inside the Nix build sandbox.
 *
 * @module
 */

import { ElfClosureCheck, type ElfClosureOptions, type ElfClosureReport } from "./elf_closure.ts";

/** Paths handed to the Worker in one message (a message per path would cost more than its read). */
const BATCH = 512;

/** Messages to the Worker (lib/elf_closure_worker.ts). */
export type ElfClosureRequest =
  | { start: ElfClosureOptions }
  | { paths: string[] }
  | { finish: true };

/** A closure check under way: add paths, then wait for the report. */
export interface ElfClosureJob extends Disposable {
  /** Hands over one more path (a regular file that may be ELF). */
  add(path: string): void;
  /** The report on every path added; the job is over afterwards. */
  finish(): Promise<ElfClosureReport>;
}

/**
 * Starts a closure check with `options`; dispose of it (`using`) so the
 * Worker stops even when the caller fails before `finish`.
 *
 * @throws {TypeError} When an `allowMissing` glob is empty (checked here, before any Worker starts).
 */
export function startElfClosure(options: ElfClosureOptions): ElfClosureJob {
  new ElfClosureCheck(options)[Symbol.dispose](); // validates the options, opens nothing
  const worker = new Worker(new URL("./elf_closure_worker.ts", import.meta.url), {
    type: "module",
  });
  let failure: string | undefined;
  worker.onerror = (event) => {
    event.preventDefault();
    failure = event.message;
  };
  const post = (message: ElfClosureRequest): void => worker.postMessage(message);
  post({ start: options });
  let batch: string[] = [];
  return {
    add(path: string): void {
      batch.push(path);
      if (batch.length === BATCH) {
        post({ paths: batch });
        batch = [];
      }
    },
    finish(): Promise<ElfClosureReport> {
      return new Promise<ElfClosureReport>((resolve, reject) => {
        const fail = (message: string): void =>
          reject(new Error(`The ELF closure check failed: ${message}`));
        if (failure !== undefined) return fail(failure);
        worker.onmessage = (event: MessageEvent<ElfClosureReport>) => resolve(event.data);
        worker.onerror = (event) => {
          event.preventDefault();
          fail(event.message);
        };
        if (batch.length > 0) post({ paths: batch });
        batch = [];
        post({ finish: true });
      }).finally(() => worker.terminate());
    },
    [Symbol.dispose](): void {
      worker.terminate();
    },
  };
}
