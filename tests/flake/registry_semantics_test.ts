// What the registry means, before and after an edit, as Nix evaluates it:
// every target's URL (baseUrl + tarball name + version) and hash, in every
// channel. For each form the editor accepts, rewrite's edit and a real update
// change exactly the intended targets and leave every other one identical;
// for each form it refuses, update leaves the file as it was (before the
// refusal, update moved the version while a hash it could not see stayed).
import { deepEqual, equal } from "node:assert/strict";
import { join } from "node:path";
import { applyEdits } from "../../lib/flake/flake_edit.ts";
import { nixEnv, requireTools, run, sriOf } from "../_tools.ts";
import { updateFixture } from "../_update_fixture.ts";
import { ACCEPTED_FORMS, REFUSED_FORMS, registryFlake, VERSION } from "./_registry_forms.ts";

const ok = await requireTools("registry evaluation before and after an edit", "nix-instantiate");

const NEW_VERSION = "7.12.0a20260310";
const NEW_PIN = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
const BODIES: Record<string, Uint8Array<ArrayBuffer>> = {
  gfx1151: new TextEncoder().encode("gfx1151 tarball\n"),
  "gfx110X-all": new TextEncoder().encode("gfx110X-all tarball\n"),
};
/** channel → target → what Nix fetches for it. */
type Meaning = Record<string, Record<string, { url: string; hash: string | null }>>;

/** Evaluates each flake file's `lib.channels` to its meaning, in one nix-instantiate. */
async function meanings(files: string[]): Promise<Meaning[]> {
  const each = (file: string): string =>
    `(meaning ((import ${file}).outputs { self = null; }).lib.channels)`;
  const expr = `let
    meaning = builtins.mapAttrs (_: c: builtins.mapAttrs (t: hash: {
      url = "\${c.baseUrl}therock-dist-linux-\${t}-\${c.version}.tar.gz"; inherit hash;
    }) c.srcHashes);
  in [ ${files.map(each).join(" ")} ]`;
  const result = await run("nix-instantiate", ["--eval", "--strict", "--json", "--expr", expr], {
    env: nixEnv(),
  });
  equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

/** `before` with nightly's targets moved to `version` at `baseUrl` and given `hashes`. */
function moved(
  before: Meaning,
  from: { baseUrl: string; version: string },
  to: { baseUrl: string; version: string; hashes: Record<string, string | null> },
): Meaning {
  const nightly = Object.fromEntries(
    Object.entries(before.nightly!).map(([target, { url, hash }]) => [target, {
      url: url.replace(`${from.baseUrl}`, to.baseUrl).replace(from.version, to.version),
      hash: target in to.hashes ? to.hashes[target]! : hash,
    }]),
  );
  return { ...before, nightly };
}

Deno.test({
  name: "rewrite's edit changes exactly the intended targets, in every accepted form",
  ignore: !ok,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "registry-semantics-" });
    try {
      const files: string[] = [];
      for (const [i, form] of ACCEPTED_FORMS.entries()) {
        const source = form.source("https://nightly.example/tarball/");
        const { text } = applyEdits(source, [
          { path: "nightly.version", value: NEW_VERSION },
          { path: "nightly.srcHashes.gfx1151", value: NEW_PIN },
        ]);
        await Deno.writeTextFile(join(dir, `before-${i}.nix`), source);
        await Deno.writeTextFile(join(dir, `after-${i}.nix`), text);
        files.push(join(dir, `before-${i}.nix`), join(dir, `after-${i}.nix`));
      }
      const results = await meanings(files);
      ACCEPTED_FORMS.forEach((form, i) => {
        const [before, after] = [results[2 * i]!, results[2 * i + 1]!];
        equal(Object.keys(before.nightly!).length, 2, form.name);
        equal(Object.keys(before.stable!).length, 2, form.name);
        const base = { baseUrl: "https://nightly.example/tarball/", version: VERSION };
        deepEqual(
          after,
          moved(before, base, { ...base, version: NEW_VERSION, hashes: { gfx1151: NEW_PIN } }),
          form.name,
        );
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "update changes exactly the intended targets, or refuses and changes nothing",
  ignore: !ok,
  fn: async () => {
    const files = Object.entries(BODIES).flatMap(([target, body]) => [
      { name: `therock-dist-linux-${target}-${VERSION}.tar.gz`, mtime: 1 },
      { name: `therock-dist-linux-${target}-${NEW_VERSION}.tar.gz`, mtime: 2, body },
    ]);
    const cases = [
      ...ACCEPTED_FORMS.map((form) => ({ name: form.name, source: form.source, refused: false })),
      ...REFUSED_FORMS.map((form) => ({
        name: form.name,
        source: (base: string) => registryFlake(base, form.parts),
        refused: true,
      })),
    ];
    const runs: { name: string; refused: boolean; base: string; fixture: AsyncDisposable }[] = [];
    const paths: string[] = [];
    try {
      for (const c of cases) {
        const f = await updateFixture(files, "");
        runs.push({ name: c.name, refused: c.refused, base: f.mirror.baseUrl, fixture: f });
        // A different base URL before: update moves it to the mirror's folder.
        const old = f.mirror.baseUrl.replace("127.0.0.1", "localhost");
        await Deno.writeTextFile(f.flake, c.source(old));
        await Deno.writeTextFile(join(f.dir, "hashes.nix"), "{ gfx110X-all = null; }\n");
        await Deno.copyFile(f.flake, join(f.dir, "before.nix"));
        await f.update().catch((error: Error) => {
          if (!c.refused) throw error;
        });
        paths.push(join(f.dir, "before.nix"), f.flake);
      }
      const results = await meanings(paths);
      runs.forEach((r, i) => {
        const [before, after] = [results[2 * i]!, results[2 * i + 1]!];
        if (r.refused) {
          // Refused, or (never) every target moved: nothing may be left behind.
          deepEqual(after, before, `${r.name}: refused, nothing changed`);
          return;
        }
        const old = r.base.replace("127.0.0.1", "localhost");
        const hashes = Object.fromEntries(
          Object.entries(BODIES).map(([target, body]) => [target, sriOf(body)]),
        );
        deepEqual(
          after,
          moved(before, { baseUrl: old, version: VERSION }, {
            baseUrl: r.base,
            version: NEW_VERSION,
            hashes,
          }),
          r.name,
        );
      });
    } finally {
      for (const r of runs) await r.fixture[Symbol.asyncDispose]();
    }
  },
});
