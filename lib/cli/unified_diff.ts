/**
 * Line-based unified diffs (the `diff -u` format `patch` and `git apply`
 * read), computed with Myers' O(ND) algorithm after trimming the common head
 * and tail, so a small edit of a large file costs little.
 *
 * @module
 */

/** Options for {@linkcode unifiedDiff}. */
export interface UnifiedDiffOptions {
  /**
   * The file name for the `--- a/<path>` and `+++ b/<path>` header lines
   * (leading slashes dropped).
   *
   * @default {"file"}
   */
  path?: string;
  /**
   * Lines of unchanged context around each change.
   *
   * @default {3}
   */
  context?: number;
}

/**
 * Computes a unified diff between two texts. Line endings are part of the
 * lines (a CRLF line changed to LF is a change), and a last line without a
 * line ending is marked `\ No newline at end of file`.
 *
 * @example Usage
 * ```ts
 * import { unifiedDiff } from "./unified_diff.ts";
 *
 * unifiedDiff("a\nb\n", "a\nc\n", { path: "flake.nix" });
 * // "--- a/flake.nix\n+++ b/flake.nix\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
 * ```
 *
 * @param oldText The text before.
 * @param newText The text after.
 * @param options The file name and context size.
 * @returns The diff, or `""` when the texts are equal.
 */
export function unifiedDiff(
  oldText: string,
  newText: string,
  options: UnifiedDiffOptions = {},
): string {
  if (oldText === newText) return "";
  // `a/` and `b/` prefixes as git writes them (`patch -p1`), also for an absolute path.
  const path = (options.path ?? "file").replace(/^\/+/, "");
  const context = options.context ?? 3;
  const a = splitLines(oldText);
  const b = splitLines(newText);
  const ops = diffLines(a, b);

  let out = `--- a/${path}\n+++ b/${path}\n`;
  let index = 0;
  while (index < ops.length) {
    const firstChange = ops.findIndex((op, i) => i >= index && op.kind !== " ");
    if (firstChange === -1) break;
    // Extend the hunk while the next change is within 2 × context unchanged lines.
    let last = firstChange;
    for (let i = firstChange + 1, equal = 0; i < ops.length; i++) {
      if (ops[i]!.kind === " ") {
        if (++equal > 2 * context) break;
      } else {
        last = i;
        equal = 0;
      }
    }
    const start = Math.max(index, firstChange - context);
    const end = Math.min(ops.length, last + context + 1);
    const hunk = ops.slice(start, end);
    const oldCount = hunk.filter((op) => op.kind !== "+").length;
    const newCount = hunk.filter((op) => op.kind !== "-").length;
    const first = hunk[0]!;
    out += `@@ -${range(first.oldLine, oldCount)} +${range(first.newLine, newCount)} @@\n`;
    for (const op of hunk) {
      const line = op.kind === "+" ? b[op.newLine]! : a[op.oldLine]!;
      out += op.kind + line;
      if (!line.endsWith("\n")) out += "\n\\ No newline at end of file\n";
    }
    index = end;
  }
  return out;
}

interface Op {
  kind: " " | "-" | "+";
  /** 0-based index into the old lines (of the next old line, for "+"). */
  oldLine: number;
  /** 0-based index into the new lines (of the next new line, for "-"). */
  newLine: number;
}

function range(line: number, count: number): string {
  // An empty range names the line before it, as diff(1) does.
  if (count === 0) return `${line},0`;
  return count === 1 ? `${line + 1}` : `${line + 1},${count}`;
}

function splitLines(text: string): string[] {
  const lines = text.split(/(?<=\n)/);
  return lines.at(-1) === "" ? lines.slice(0, -1) : lines;
}

function diffLines(a: string[], b: string[]): Op[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head && tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  ) tail++;

  const ops: Op[] = [];
  for (let i = 0; i < head; i++) ops.push({ kind: " ", oldLine: i, newLine: i });
  for (const op of myers(a.slice(head, a.length - tail), b.slice(head, b.length - tail))) {
    ops.push({ kind: op.kind, oldLine: op.oldLine + head, newLine: op.newLine + head });
  }
  for (let i = tail; i > 0; i--) {
    ops.push({ kind: " ", oldLine: a.length - i, newLine: b.length - i });
  }
  return ops;
}

/** Myers' greedy shortest edit script, keeping each round's frontier to trace back. */
function myers(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const offset = max + 1;
  let v: Int32Array = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  search: for (let d = 0; d <= max; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      const down = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!);
      let x = down ? v[offset + k + 1]! : v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) break search;
    }
  }

  const ops: Op[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d >= 0; d--) {
    v = trace[d]!;
    const k = x - y;
    const down = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!);
    const prevK = down ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : v[offset + prevK]!;
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      x--;
      y--;
      ops.push({ kind: " ", oldLine: x, newLine: y });
    }
    if (d === 0) break;
    if (down) {
      y--;
      ops.push({ kind: "+", oldLine: x, newLine: y });
    } else {
      x--;
      ops.push({ kind: "-", oldLine: x, newLine: y });
    }
  }
  return ops.reverse();
}
