/**
 * Shell command lines as documentation shows them, split into words, and the
 * invocations of a tool in them in each form users type: `nix run .#NAME --
 * ARGS`, `deno task NAME ARGS`, `deno run … scripts/NAME.ts ARGS` or a bare
 * `NAME ARGS` (as --help's examples write it).
 *
 * @module
 */

/** The words of a shell command line: quotes and backslashes undone; no expansion. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      if (end === -1) throw new SyntaxError(`unbalanced quote in ${line}`);
      word = (word ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (c === "\\") {
      if (line[i + 1] === "\n") i++;
      else word = (word ?? "") + line[++i];
    } else if (c === "#" && word === undefined) {
      break;
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/**
 * The arguments of each invocation of one of `names` in a command line
 * (also after `|`, `&&` or `>`), with the tool's name.
 */
export function invocations(
  line: string,
  names: readonly string[],
): { name: string; args: string[] }[] {
  const found: { name: string; args: string[] }[] = [];
  for (const part of line.split(/\s(?:\||&&|>|<)\s/)) {
    const words = shellWords(part.trim());
    let name: string | undefined;
    let args: string[] = [];
    const flakeApp = /^(?:\.|github:[^#]+)#(.+)$/.exec(words[2] ?? "")?.[1];
    if (words[0] === "nix" && words[1] === "run" && flakeApp !== undefined) {
      name = flakeApp;
      args = words[3] === "--" ? words.slice(4) : words.slice(3);
    } else if (words[0] === "deno" && words[1] === "task") {
      name = words[2];
      args = words.slice(3);
    } else if (words[0] === "deno" && words[1] === "run") {
      const at = words.findIndex((w) => /(^|\/)scripts\/[a-z-]+\.ts$/.test(w));
      if (at !== -1) {
        name = /([a-z-]+)\.ts$/.exec(words[at]!)![1];
        args = words.slice(at + 1);
      }
    } else {
      name = words[0];
      args = words.slice(1);
    }
    if (name !== undefined && names.includes(name)) found.push({ name, args });
  }
  return found;
}
