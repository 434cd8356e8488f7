import { registerClasses } from "./_harness.ts";
import { EDITS } from "./classes.ts";

registerClasses([EDITS]);
