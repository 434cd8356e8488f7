import { equal } from "node:assert/strict";
import { unifiedDiff } from "../../lib/cli/unified_diff.ts";
import { requireTools, run } from "../_tools.ts";

Deno.test("unifiedDiff() is empty for equal texts", () => {
  equal(unifiedDiff("a\nb\n", "a\nb\n"), "");
  equal(unifiedDiff("", ""), "");
});

Deno.test("unifiedDiff() writes headers, ranges and context like diff -u", () => {
  equal(
    unifiedDiff("a\nb\n", "a\nc\n", { path: "flake.nix" }),
    "--- a/flake.nix\n+++ b/flake.nix\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n",
  );
  equal(unifiedDiff("", "x\n"), "--- a/file\n+++ b/file\n@@ -0,0 +1 @@\n+x\n");
  equal(
    unifiedDiff("", "x\n", { path: "/tmp/f.nix" }).split("\n", 2).join("\n"),
    "--- a/tmp/f.nix\n+++ b/tmp/f.nix",
  );
  equal(
    unifiedDiff("1\n2\n3\n4\n5\n", "1\n2\n4\n5\n", { context: 1 }),
    "--- a/file\n+++ b/file\n@@ -2,3 +2,2 @@\n 2\n-3\n 4\n",
  );
});

Deno.test("unifiedDiff() marks a last line without a line ending", () => {
  equal(
    unifiedDiff("a\nb", "a\nb\n"),
    "--- a/file\n+++ b/file\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n",
  );
});

const tools = await requireTools("diffs are checked against patch(1) and diff(1)", "patch", "diff");

Deno.test({
  name: "unifiedDiff() of random texts applies with patch and is as small as diff --minimal",
  ignore: !tools,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "unified_diff_test" });
    try {
      let seed = 7;
      const random = (n: number): number => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      const lines = (): string[] =>
        Array.from(
          { length: random(40) },
          () => `line ${random(8)}${random(3) === 0 ? "\r" : ""}\n`,
        );
      for (let round = 0; round < 30; round++) {
        const a = lines().join("");
        const b = random(4) === 0 ? a + "tail" : lines().join("");
        await Deno.writeTextFile(`${dir}/a`, a);
        await Deno.writeTextFile(`${dir}/b`, b);
        const diff = unifiedDiff(a, b, { path: "a" });
        await Deno.writeTextFile(`${dir}/d`, diff);
        const patched = await run("patch", ["--binary", "-s", "-o", "out", "a", "d"], { cwd: dir });
        equal(patched.code, 0, `round ${round}: ${patched.stdout}${patched.stderr}`);
        equal(await Deno.readTextFile(`${dir}/out`), b, `round ${round}`);
        const reference = await run("diff", ["--minimal", "-u", "a", "b"], { cwd: dir });
        const changed = (text: string): number =>
          text.split("\n").slice(2).filter((l) => l.startsWith("+") || l.startsWith("-")).length;
        equal(changed(diff), changed(reference.stdout), `round ${round}`);
        await Deno.remove(`${dir}/out`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
