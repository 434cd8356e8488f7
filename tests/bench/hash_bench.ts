/**
 * Hash benchmark, every figure measured side by side in the same run on the
 * same 2 GiB file (`.bench/`, generated once): `scripts/prefetch.ts --no-add-to-store FILE`
 * (the real CLI, Deno start-up included) vs `openssl dgst -sha256`,
 * `nix hash file` and `sha256sum`. Downloads are in download_bench.ts.
 *
 * Tools run in interleaved rounds and the best time of each is kept, which
 * cuts the noise of a shared machine. Targets: hash throughput ≥ 0.95×
 * openssl's, peak RSS ≤ 64 MiB. Exits 1 when a target is missed.
 *
 * Options: `--size-mib N` (default 2048), `--rounds N` (default 3).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  assertAgree,
  benchFile,
  bestOf,
  hasTool,
  hexOf,
  MiB,
  NIX_ENV,
  ROOT,
  shebangPermissions,
  Table,
  type Tool,
} from "./_measure.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { "size-mib": { type: "string" }, rounds: { type: "string" } },
});
const SIZE = Number(values["size-mib"] ?? 2048) * MiB;
const ROUNDS = Number(values.rounds ?? 3);
const SCRIPT = join(ROOT, "scripts/prefetch.ts");
const PERMISSIONS = await shebangPermissions(SCRIPT);

const file = await benchFile(SIZE);
const deno = Deno.execPath();
const tools: Tool[] = [
  // The hash alone: a usable store would otherwise get the 2 GiB file too (the default).
  {
    name: "prefetch.ts --no-add-to-store FILE (ours)",
    argv: () => [deno, "run", ...PERMISSIONS, SCRIPT, "--no-add-to-store", file],
  },
  { name: "openssl dgst -sha256", argv: () => ["openssl", "dgst", "-sha256", file] },
  { name: "sha256sum", argv: () => ["sha256sum", file] },
];
if (await hasTool("nix")) {
  tools.push({
    name: "nix hash file",
    argv: () => ["nix", "hash", "file", "--type", "sha256", file],
    env: NIX_ENV,
  });
}
const hashed = await bestOf(tools, ROUNDS);
const openssl = hashed.get("openssl dgst -sha256")!;
assertAgree(hashed, hexOf(openssl.stdout));
const ours = hashed.get("prefetch.ts --no-add-to-store FILE (ours)")!;
const table = new Table(SIZE);
table.row("hash", "prefetch.ts --no-add-to-store FILE (ours)", ours, openssl, {
  text: "≥ 0.95× openssl, ≤ 64 MiB",
  pass: openssl.seconds / ours.seconds >= 0.95 && ours.rssKiB <= 64 * 1024,
});
for (const [name, sample] of hashed) {
  if (sample !== ours) table.row("hash", name, sample, openssl);
}
table.print(ROUNDS);
Deno.exit(table.failed ? 1 : 0);
