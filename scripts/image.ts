#!/usr/bin/env -S deno run --allow-read --allow-write --allow-env=SOURCE_DATE_EPOCH
/**
 * Builds a layered Docker/OCI image of a Nix closure, per GPU target, in one
 * pass over the files. See `image.ts --help`.
 *
 * @module
 */

import { runMain, UsageError } from "../lib/cli/cli.ts";
import {
  type Command,
  defineCommand,
  filePath,
  formatHelp,
  oneOf,
  parseCommandLine,
  wholeNumber,
} from "../lib/cli/command_line.ts";
import { readRegularText, readStreamText } from "../lib/fs/file_kind.ts";
import { parseClosure } from "../lib/store/closure.ts";
import { parseCreationTime, writeImage } from "../lib/image/image.ts";
import { targetName } from "../lib/releases/target_names.ts";
import { MAX_LAYERS_LIMIT } from "../lib/image/layers.ts";
import { imageReference, parseContainerConfig } from "../lib/image/oci.ts";

const COMMAND = defineCommand({
  name: "image",
  description: `Writes a layered image of a Nix closure: a docker-archive (to stdout, for
\`docker load\`, or to --output) or an OCI image layout directory (--output).
Popular store paths get their own layers, big ones are split by subtree, and
GPU kernels go into per-ISA layers, of which only --target's are kept.
--closure and --name are required.`,
  flags: {
    closure: {
      type: "string",
      value: "FILE",
      help:
        'the closure: `nix path-info --json --recursive` output, an exportReferencesGraph list, or closureInfo\'s registration file ("-": stdin)',
      parse: filePath,
    },
    name: { type: "string", value: "NAME", help: "image name, e.g. rocm" },
    tag: { type: "string", value: "TAG", help: "image tag (default: latest)" },
    target: {
      type: "string",
      value: "ISA",
      help:
        "keep only this GPU target's kernels (an ISA or family, e.g. gfx1151; list them: detect --list-targets); default: all. A closure without its GPU code gets a warning",
      parse: targetName,
    },
    "max-layers": {
      type: "string",
      value: "N",
      help: `most layers (default 100, at most ${MAX_LAYERS_LIMIT})`,
      parse: wholeNumber(1, MAX_LAYERS_LIMIT),
    },
    "split-bytes": {
      type: "string",
      value: "N",
      help: "split content bigger than this by subtree (default 1 GiB)",
      parse: wholeNumber(1, Number.MAX_SAFE_INTEGER),
    },
    format: {
      type: "string",
      value: "FORMAT",
      help: "docker-archive (default) or oci",
      parse: oneOf(["docker-archive", "oci"]),
    },
    output: {
      type: "string",
      short: "o",
      value: "PATH",
      help:
        "file (docker-archive) or new directory (oci), renamed into place when complete; not fsynced (an image can be made again): run `sync PATH` if it must survive a crash",
      parse: filePath,
    },
    config: {
      type: "string",
      value: "FILE",
      help:
        'JSON of container settings merged over the defaults ({"Env": [...], "Cmd": [...], "Labels": {...}, ...})',
      parse: filePath,
    },
    created: {
      type: "string",
      value: "TIME",
      help:
        "image and file time: ISO 8601 or seconds (default: $SOURCE_DATE_EPOCH, else 1970-01-01T00:00:01Z)",
    },
    "store-dir": {
      type: "string",
      value: "DIR",
      help: "store directory (default /nix/store)",
      parse: filePath,
    },
    json: { type: "boolean", help: "with --output, print the result as JSON" },
  },
  exitStatus: { 0: "written", 1: "the job failed (nothing written)" },
  examples: [
    "nix path-info --json --recursive ./result > closure.json",
    "image --closure closure.json --name rocm --tag gfx1151 --target gfx1151 | docker load",
    "image --closure closure.json --name rocm --format oci -o rocm-oci",
  ],
});

/** The command line and --help of this script (lib/cli/command_line.ts), for tests and docs. */
export const command: Command = COMMAND;

async function main(args: string[]): Promise<number> {
  const { help, values } = parseCommandLine(COMMAND, args);
  if (help) {
    console.log(formatHelp(COMMAND));
    return 0;
  }
  if (values.closure === undefined) throw new UsageError("missing --closure FILE (see --help)");
  if (values.name === undefined) throw new UsageError("missing --name NAME (see --help)");
  const format = values.format ?? "docker-archive";
  if (format === "oci" && values.output === undefined) {
    throw new UsageError("--format oci needs --output DIR (see --help)");
  }
  if (values.output === undefined && Deno.stdout.isTerminal()) {
    throw new UsageError(
      "Refusing to write an image archive to a terminal: redirect or use --output",
    );
  }
  const tag = values.tag ?? "latest";
  const maxLayers = values["max-layers"] ?? 100;
  const splitBytes = values["split-bytes"] ?? 2 ** 30;
  const storeDir = values["store-dir"] ?? "/nix/store";
  try {
    imageReference(values.name, tag);
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
    ? await readStreamText(Deno.stdin.readable, {
      maxBytes: MAX_CLOSURE_BYTES,
      what: "closure",
      from: "stdin",
    })
    : await readRegularText(values.closure, { maxBytes: MAX_CLOSURE_BYTES, what: "closure" });
  const closure = parseClosure(closureText, { storeDir });
  const config = values.config === undefined ? {} : parseContainerConfig(
    await readRegularText(values.config, {
      maxBytes: MAX_CONFIG_BYTES,
      what: "container config",
    }),
  );
  const result = await writeImage(closure, {
    name: values.name,
    tag,
    target: values.target,
    maxLayers,
    splitBytes,
    format,
    output: values.output ?? Deno.stdout,
    config,
    created,
  });
  for (const warning of result.warnings) console.error(`image: warning: ${warning}`);
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

if (import.meta.main) await runMain("image", main);
