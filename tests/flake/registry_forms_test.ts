// Registries written in Nix forms the editor cannot rewrite are refused by
// every editing entry point, before anything changes; the forms it handles
// are accepted. The fault suite runs the same forms through the scripts
// (tests/faults/registry_forms.ts); registry_semantics_test.ts evaluates them.
import { deepEqual, equal, rejects, throws } from "node:assert/strict";
import {
  appendToList,
  applyEdits,
  requirePlainForms,
  UnsupportedFormError,
} from "../../lib/flake/flake_edit.ts";
import { updateFixture } from "../_update_fixture.ts";
import {
  ACCEPTED_FORMS,
  refusal,
  REFUSED_FORMS,
  registryFlake,
  VERSION,
} from "./_registry_forms.ts";

const BASE = "https://nightly.example/tarball/";
const ROOTS = ["nightly", "stable", "rc"];

/** Asserts `fn` throws one line starting with `expected`. */
function throwsLine(fn: () => unknown, expected: string, name: string): void {
  throws(fn, (error: Error) => {
    equal(error.message.startsWith(expected), true, `${name}: ${error.message}`);
    equal(error.message.includes("\n"), false, `${name}: one line`);
    return true;
  });
}

Deno.test("requirePlainForms() refuses each form the editor cannot rewrite, naming line and form", () => {
  for (const form of REFUSED_FORMS) {
    const source = registryFlake(BASE, form.parts);
    throwsLine(() => requirePlainForms(source, ROOTS), refusal(form, source, "rewrite"), form.name);
    throwsLine(
      () => requirePlainForms(source, ROOTS, { action: "update" }),
      refusal(form, source, "update"),
      form.name,
    );
  }
  const inherit = registryFlake(BASE, REFUSED_FORMS[0]!.parts);
  throws(
    () => requirePlainForms(inherit, ROOTS),
    (e) =>
      e instanceof UnsupportedFormError && e.line === 10 && e.form === "inherit" &&
      e.path === "nightly.srcHashes.gfx1151",
  );
});

Deno.test("applyEdits() and appendToList() refuse those forms, whatever path they edit", () => {
  for (const form of REFUSED_FORMS) {
    const source = registryFlake(BASE, form.parts);
    const expected = refusal(form, source, "rewrite");
    // The version alone: before, it moved while the hash it could not see stayed.
    throwsLine(
      () => applyEdits(source, [{ path: "nightly.version", value: "7.12.0a20260310" }]),
      expected,
      form.name,
    );
    throwsLine(
      () => appendToList(source, "nightly.skip", ["7.12.0a20260310"], { addMissing: true }),
      expected,
      form.name,
    );
  }
});

Deno.test("updateFlake() refuses those forms before any request, leaving flake.nix as it was", async () => {
  for (const form of REFUSED_FORMS) {
    await using f = await updateFixture([
      { name: `therock-dist-linux-gfx1151-${VERSION}.tar.gz`, mtime: 1 },
      {
        name: "therock-dist-linux-gfx1151-7.12.0a20260310.tar.gz",
        mtime: 2,
        body: new Uint8Array(9),
      },
    ], "");
    const source = registryFlake(f.mirror.baseUrl, form.parts);
    await Deno.writeTextFile(f.flake, source);
    await Deno.writeTextFile(`${f.dir}/hashes.nix`, "{ }\n");
    await rejects(f.update(), (error: Error) => {
      equal(error.message.startsWith(refusal(form, source, "update")), true, error.message);
      return true;
    });
    equal(await Deno.readTextFile(f.flake), source, form.name);
    deepEqual(f.mirror.requests, [], `${form.name}: no request`);
  }
});

Deno.test("requirePlainForms() accepts comments, layout, order, escapes, quoted names and dotted paths", () => {
  for (const form of ACCEPTED_FORMS) requirePlainForms(form.source(BASE), ROOTS);
});

Deno.test("requirePlainForms() checks only what is bound under the given names", () => {
  const source = `let
  inherit (nixpkgs) lib;
  other = rec { a = "1"; b = a; } // { c = import ./c.nix; };
  nightly = { version = "${VERSION}"; srcHashes = { gfx1151 = null; }; };
in
{ inherit nightly other; channels = { inherit nightly; }; }
`;
  requirePlainForms(source, ROOTS);
  throwsLine(
    () => requirePlainForms(source, ["other"]),
    'Cannot rewrite flake.nix: line 3 binds "other" with rec,',
    "other",
  );
  // A plain `inherit nightly;` at the top level is fine only when the editor sees nightly's binding.
  throwsLine(
    () => requirePlainForms("let pins = import ./p.nix; in { inherit (pins) nightly; }", ROOTS),
    'Cannot rewrite flake.nix: line 1 binds "nightly" with inherit (…),',
    "from",
  );
});
