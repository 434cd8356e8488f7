/**
 * `deno task bench`: runs every benchmark in this folder, one after another
 * (never in parallel: they compare throughput side by side), each printing its
 * own table of figures measured against reference tools in the same run.
 *
 * @module
 */

const here = new URL(".", import.meta.url);
const only = Deno.args;
const files: string[] = [];
for await (const entry of Deno.readDir(here)) {
  if (entry.isFile && entry.name.endsWith("_bench.ts")) files.push(entry.name);
}
files.sort();
let failed = 0;
for (const name of files) {
  if (only.length > 0 && !only.some((word) => name.includes(word))) continue;
  // deno-lint-ignore no-console
  console.log(`\n## ${name.replace(/_bench\.ts$/, "")}\n`);
  const { success } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL(name, here).pathname],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!success) failed++;
}
Deno.exit(failed === 0 ? 0 : 1);
