/**
 * The hashing thread behind lib/hash/block_pipeline.ts: hashes the blocks it is
 * sent (transferred, not copied) and sends each buffer back for reuse.
 *
 * Messages in: `{ start: algorithm }`, `{ buffer, length }`, `{ digest: true }`.
 * Messages out: `{ buffer }` once a block is hashed, `{ digest }` (bytes).
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";

interface WorkerScope {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;
let hash: Hash | undefined;

scope.onmessage = (event: MessageEvent): void => {
  const message = event.data as
    | { start: string }
    | { buffer: ArrayBuffer; length: number }
    | { digest: true };
  if ("start" in message) {
    hash = createHash(message.start);
  } else if ("buffer" in message) {
    hash!.update(new Uint8Array(message.buffer, 0, message.length));
    scope.postMessage({ buffer: message.buffer }, [message.buffer]);
  } else {
    const digest = new Uint8Array(hash!.digest());
    hash = undefined;
    scope.postMessage({ digest }, [digest.buffer]);
  }
};
