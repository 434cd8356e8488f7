/**
 * A registry written in a Nix form the flake editor cannot rewrite (inherit,
 * a dynamic name, rec, let … in, with, //, import, a variable, a channel in
 * two scopes): update and rewrite refuse in one line naming the line and the
 * form, before anything is written — update before any request.
 *
 * @module
 */

import { equal } from "node:assert/strict";
import { assertFailedCleanly, type FaultCase, inTempDir, runScript, snapshot } from "./_harness.ts";
import { indexAndTarball, ok, uniqueBytes } from "./_fixtures.ts";
import { startRawServer } from "./_raw_server.ts";
import { refusal, REFUSED_FORMS, registryFlake } from "../flake/_registry_forms.ts";

/** `text` as a regular expression matching it literally. */
function literally(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export const REGISTRY_FORM_CASES: FaultCase[] = REFUSED_FORMS.flatMap((form): FaultCase[] => [
  {
    name: `update: ${form.name}`,
    run: () =>
      inTempDir(async (dir) => {
        await using server = startRawServer(indexAndTarball(() => ok(uniqueBytes(64))));
        const source = registryFlake(`${server.origin}/tarball/`, form.parts);
        await Deno.writeTextFile(`${dir}/flake.nix`, source);
        await Deno.writeTextFile(`${dir}/hashes.nix`, "{ }\n");
        const before = snapshot(dir);
        const result = await runScript("update", ["--flake", `${dir}/flake.nix`]);
        await assertFailedCleanly(result, {
          code: 1,
          stderr: new RegExp(`^update: ${literally(refusal(form, source, "update"))}`),
          unchanged: [before],
        });
        equal(server.requests.length, 0, "refused before any request");
      }),
  },
  {
    name: `rewrite: ${form.name}`,
    run: () =>
      inTempDir(async (dir) => {
        const source = registryFlake("https://nightly.example/tarball/", form.parts);
        await Deno.writeTextFile(`${dir}/flake.nix`, source);
        const before = snapshot(dir);
        const result = await runScript("rewrite", [
          "--flake",
          `${dir}/flake.nix`,
          "--set",
          "nightly.version=7.12.0a20260310",
        ]);
        await assertFailedCleanly(result, {
          code: 1,
          stderr: new RegExp(
            `^rewrite: ${literally(refusal(form, source, "rewrite", `${dir}/flake.nix`))}`,
          ),
          unchanged: [before],
        });
      }),
  },
]);
