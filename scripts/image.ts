#!/usr/bin/env -S deno run --allow-read --allow-write --allow-env=SOURCE_DATE_EPOCH
/**
 * Builds a layered Docker/OCI image of a Nix closure, per GPU target, in one
 * pass over the files. See `image.ts --help`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { runMain, UsageError } from "../lib/cli/cli.ts";
import { readRegularFile } from "../lib/fs/file_kind.ts";
import { parseClosure } from "../lib/store/closure.ts";
import { parseCreationTime, writeImage } from "../lib/image/image.ts";
import { targetIsas } from "../lib/releases/isa_files.ts";
import { MAX_LAYERS_LIMIT } from "../lib/image/layers.ts";
import { imageReference, parseContainerConfig } from "../lib/image/oci.ts";

const HELP = `Usage: image.ts --closure FILE --name NAME [options]

Writes a layered image of a Nix closure: a docker-archive (to stdout, for
\`docker load\`, or to --output) or an OCI image layout directory (--output).
Popular store paths get their own layers, big ones are split by subtree, and
GPU kernels go into per-ISA layers, of which only --target's are kept.

Options:
  --closure FILE        the closure: \`nix path-info --json --recursive\` output,
                        an exportReferencesGraph list, or closureInfo's
                        registration file ("-": stdin)
  --name NAME           image name, e.g. rocm
  --tag TAG             image tag (default: latest)
  --target ISA          keep only this GPU target's kernels (an ISA or family
                        of lib/releases/targets.json, e.g. gfx1151); default: all
  --max-layers N        most layers (default 100, at most 125)
  --split-bytes N       split content bigger than this by subtree (default 1 GiB)
  --format FORMAT       docker-archive (default) or oci
  --output PATH         file (docker-archive) or new directory (oci), renamed
                        into place when complete; not fsynced (an image can be
                        made again): run \`sync PATH\` if it must survive a crash
  --config FILE         JSON of container settings merged over the defaults
                        ({"Env": [...], "Cmd": [...], "Labels": {...}, ...})
  --created TIME        image and file time: ISO 8601 or seconds (default:
                        $SOURCE_DATE_EPOCH, else 1970-01-01T00:00:01Z)
  --store-dir DIR       store directory (default /nix/store)
  --json                with --output, print the result as JSON
  -h, --help            show this help

Example:
  nix path-info --json --recursive ./result > closure.json
  image.ts --closure closure.json --name rocm --tag gfx1151 --target gfx1151 | docker load

Exit codes: 0 written, 1 failed, 2 usage error, 128+N ended by signal N.`;

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      closure: { type: "string" },
      name: { type: "string" },
      tag: { type: "string", default: "latest" },
      target: { type: "string" },
      "max-layers": { type: "string", default: "100" },
      "split-bytes": { type: "string", default: String(2 ** 30) },
      format: { type: "string", default: "docker-archive" },
      output: { type: "string" },
      config: { type: "string" },
      created: { type: "string" },
      "store-dir": { type: "string", default: "/nix/store" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (values.closure === undefined) throw new UsageError("Missing --closure FILE");
  if (values.name === undefined) throw new UsageError("Missing --name NAME");
  const format = values.format;
  if (format !== "docker-archive" && format !== "oci") {
    throw new UsageError(`Invalid --format "${format}": expected docker-archive or oci`);
  }
  if (format === "oci" && values.output === undefined) {
    throw new UsageError("--format oci needs --output DIR");
  }
  if (values.output === undefined && Deno.stdout.isTerminal()) {
    throw new UsageError(
      "Refusing to write an image archive to a terminal: redirect or use --output",
    );
  }
  const maxLayers = integer(values["max-layers"], "--max-layers");
  if (maxLayers < 1 || maxLayers > MAX_LAYERS_LIMIT) {
    throw new UsageError(`Invalid --max-layers ${maxLayers}: expected 1 to ${MAX_LAYERS_LIMIT}`);
  }
  const splitBytes = integer(values["split-bytes"], "--split-bytes");
  if (splitBytes < 1) throw new UsageError(`Invalid --split-bytes ${splitBytes}: expected > 0`);
  try {
    imageReference(values.name, values.tag);
    if (values.target !== undefined) targetIsas(values.target);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const createdText = values.created ?? Deno.env.get("SOURCE_DATE_EPOCH") ?? "";
  let created = 1;
  try {
    if (createdText !== "") created = parseCreationTime(createdText);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }

  const closureText = values.closure === "-"
    ? await new Response(Deno.stdin.readable).text()
    : await readText(values.closure, "closure", MAX_CLOSURE_BYTES);
  const closure = parseClosure(closureText, { storeDir: values["store-dir"] });
  const config = values.config === undefined
    ? {}
    : parseContainerConfig(await readText(values.config, "container config", MAX_CONFIG_BYTES));
  const result = await writeImage(closure, {
    name: values.name,
    tag: values.tag,
    target: values.target,
    maxLayers,
    splitBytes,
    format,
    output: values.output ?? Deno.stdout,
    config,
    created,
  });
  if (values.output === undefined) return 0;
  if (values.json) console.log(JSON.stringify({ format, output: values.output, ...result }));
  else {
    console.log(
      `${values.output}: ${format} ${result.reference}, ${result.layers.length} layers, ` +
        `config ${result.configDigest}`,
    );
  }
  return 0;
}

// Bounds on what is read: a closure of thousands of paths, with signatures,
// is a few MiB; a container config a few KiB.
const MAX_CLOSURE_BYTES = 256 * 1024 * 1024;
const MAX_CONFIG_BYTES = 1024 * 1024;

async function readText(path: string, what: string, maxBytes: number): Promise<string> {
  // Refused before reading: a FIFO would block, /dev/zero never end.
  const bytes = await readRegularFile(path, { maxBytes, what }).catch((error) => {
    if (error instanceof TypeError || error instanceof RangeError) throw error;
    throw new Error(`Cannot read ${what} "${path}": ${(error as Error).message}`);
  });
  return new TextDecoder().decode(bytes);
}

function integer(text: string, flag: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) {
    throw new UsageError(`Invalid ${flag} "${text}": expected a whole number`);
  }
  return value;
}

if (import.meta.main) await runMain("image", main);
