/**
 * The ELF closure check of lib/elf_closure.ts, run beside a tree walk: paths
 * are handed over as the walk finds them, and a Worker reads and resolves
 * them on another core while the walk goes on. On a package output the walk
 * and the ELF reads cost about the same (100,000 entries listed; 5,000 files
 * opened and read), so overlapping them is what keeps check-output within 2×
 * of `find` (tests/bench/check_output_bench.ts). Where no Worker can start,
 * the check runs in this thread when the walk is done: the same report.
 *
 * Built-ins only: check-output runs it inside the Nix build sandbox.
 *
 * @module
 */

import { ElfClosureCheck, type ElfClosureOptions, type ElfClosureReport } from "./elf_closure.ts";

/** Paths handed to the Worker in one message (one message per path costs more than the read). */
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
 */
export function startElfClosure(options: ElfClosureOptions): ElfClosureJob {
  // Checked here, where the caller can catch it (a TypeError for an empty glob).
  new ElfClosureCheck(options)[Symbol.dispose]();
  const all: string[] = [];
  let batch: string[] = [];
  let worker: Worker | undefined;
  let failed: unknown;
  try {
    worker = new Worker(new URL("./elf_closure_worker.ts", import.meta.url), { type: "module" });
    worker.onerror = (event) => {
      event.preventDefault();
      failed = event.message;
    };
  } catch {
    worker = undefined; // e.g. no Worker in this runtime: run in this thread
  }
  const post = (message: ElfClosureRequest): void => worker?.postMessage(message);
  post({ start: options });
  const inThread = (): ElfClosureReport => {
    using check = new ElfClosureCheck(options);
    for (const path of all) check.add(path);
    return check.finish();
  };
  return {
    add(path: string): void {
      all.push(path);
      if (worker === undefined) return;
      batch.push(path);
      if (batch.length === BATCH) {
        post({ paths: batch });
        batch = [];
      }
    },
    finish(): Promise<ElfClosureReport> {
      if (worker === undefined || failed !== undefined) return Promise.resolve(inThread());
      const running = worker;
      return new Promise<ElfClosureReport>((resolve) => {
        running.onmessage = (event: MessageEvent<ElfClosureReport>) => resolve(event.data);
        // A Worker that fails (it should not) costs the time, not the check.
        running.onerror = (event) => {
          event.preventDefault();
          resolve(inThread());
        };
        if (batch.length > 0) post({ paths: batch });
        batch = [];
        post({ finish: true });
      }).finally(() => running.terminate());
    },
    [Symbol.dispose](): void {
      worker?.terminate();
    },
  };
}
