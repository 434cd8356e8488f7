/**
 * `--max-bytes` holds for every source: a URL whose body has no length, a
 * local file and stdin (#14.13).
 *
 * @module
 */

import { assertFailedCleanly, type FaultCase, inTempDir, runScript, snapshot } from "./_harness.ts";
import { uniqueBytes } from "./_fixtures.ts";
import { startRawServer } from "./_raw_server.ts";

export const LIMIT_CASES: FaultCase[] = [
  {
    name: "prefetch --max-bytes 1K of stdin carrying 2 KiB (#14.13)",
    run: () =>
      inTempDir(async (dir) => {
        const before = snapshot(dir);
        const result = await runScript("prefetch", ["--max-bytes", "1K", "-o", `${dir}/out`, "-"], {
          stdin: uniqueBytes(2048),
        });
        await assertFailedCleanly(result, {
          code: 1,
          stderr: /Cannot read "stdin": the input exceeds the limit of 1024 bytes/,
          unchanged: [before],
        });
      }),
  },
  {
    name: "prefetch --max-bytes 1K of a 2 KiB file (#14.13)",
    run: () =>
      inTempDir(async (dir) => {
        await Deno.writeFile(`${dir}/input`, uniqueBytes(2048));
        const before = snapshot(dir);
        const result = await runScript("prefetch", [
          "--max-bytes",
          "1K",
          "-o",
          `${dir}/out`,
          `${dir}/input`,
        ]);
        await assertFailedCleanly(result, {
          code: 1,
          stderr: /its size, 2048 bytes, exceeds the limit of 1024 bytes/,
          unchanged: [before],
        });
      }),
  },
  {
    name: "prefetch --max-bytes 1K of a body without Content-Length",
    run: () =>
      inTempDir(async (dir) => {
        const body = uniqueBytes(4096);
        await using server = startRawServer(() => ({
          head: "HTTP/1.1 200 OK\r\nConnection: close",
          body,
        }));
        const before = snapshot(dir);
        const result = await runScript("prefetch", [
          "--max-bytes",
          "1K",
          "-o",
          `${dir}/out`,
          `${server.origin}/f`,
        ]);
        await assertFailedCleanly(result, {
          code: 1,
          stderr: /exceeds the limit of 1024 bytes/,
          unchanged: [before],
        });
      }),
  },
];
