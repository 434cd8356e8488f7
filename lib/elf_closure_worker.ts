/**
 * The Worker of lib/elf_closure_job.ts: reads each batch of paths as it
 * comes, then resolves and posts the report back.
 *
 * @module
 */

import { ElfClosureCheck } from "./elf_closure.ts";
import type { ElfClosureRequest } from "./elf_closure_job.ts";

let check: ElfClosureCheck | undefined;
const scope = self as unknown as Worker;
scope.onmessage = (event: MessageEvent<ElfClosureRequest>) => {
  const request = event.data;
  if ("start" in request) check = new ElfClosureCheck(request.start);
  else if ("paths" in request) { for (const path of request.paths) check!.add(path); }
  else scope.postMessage(check!.finish());
};
