// The `#!` rule of check-output (lib/package/_shebang.ts), case by case.
import assert from "node:assert/strict";
import { checkShebang, shebangLine, type ShebangWorld } from "../../lib/package/_shebang.ts";

const WORLD: ShebangWorld = {
  root: "/nix/store/aaaa-rocm",
  store: "/nix/store",
  isFile: (path) =>
    path === "/nix/store/bbbb-bash/bin/bash" || path === "/nix/store/aaaa-rocm/bin/x",
};

Deno.test("checkShebang() passes /bin/sh, env with a bare name or -S, and existing store paths", () => {
  for (
    const line of [
      "/bin/sh",
      " /bin/sh -e",
      "/usr/bin/env python3",
      "/usr/bin/env -S python3 -u -W ignore",
      "/usr/bin/env -Sperl -w",
      "/usr/bin/env --split-string=bash -e",
      "/usr/bin/env -S -u HOME LC_ALL=C bash -e",
      "/usr/bin/env /nix/store/bbbb-bash/bin/bash",
      "/nix/store/bbbb-bash/bin/bash -e",
      "\t/nix/store/aaaa-rocm/bin/x",
    ]
  ) {
    assert.equal(checkShebang(line, WORLD), undefined, line);
  }
});

Deno.test("checkShebang() names each interpreter NixOS does not have", () => {
  const cases: [string, string, RegExp][] = [
    ["/bin/bash", "/bin/bash", /outside the output and the Nix store/],
    ["/bin/bash -e", "/bin/bash", /outside/],
    ["/usr/bin/python3", "/usr/bin/python3", /outside/],
    ["/opt/x", "/opt/x", /outside/],
    ["/bin/sh\r", "/bin/sh\r", /outside/], // a CRLF line: the kernel keeps the CR
    ["/usr/bin/env -S /usr/bin/python3 -u", "/usr/bin/python3", /outside/],
    ["/usr/bin/env python3 -u", "python3 -u", /use `env -S`/],
    ["/usr/bin/env", "/usr/bin/env", /without a program/],
    ["/usr/bin/env -S -i", "/usr/bin/env", /without a program/],
    ["/nix/store/cccc-gone/bin/python3", "/nix/store/cccc-gone/bin/python3", /does not exist/],
    ["python3", "python3", /not an absolute path/],
    ["", "", /names no interpreter/],
  ];
  for (const [line, interpreter, problem] of cases) {
    const bad = checkShebang(line, WORLD);
    assert.equal(bad?.interpreter, interpreter, line);
    assert.match(bad.problem, problem, line);
  }
});

Deno.test("shebangLine() reads the first line of a #! file only", () => {
  const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
  assert.equal(shebangLine(encode("#!/bin/bash -e\nbody\n")), "/bin/bash -e");
  assert.equal(shebangLine(encode("#!/bin/sh")), "/bin/sh");
  assert.equal(shebangLine(encode("# !/bin/sh\n")), undefined);
  assert.equal(shebangLine(encode("\x7fELF")), undefined);
});
