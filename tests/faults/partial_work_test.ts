import { registerClasses } from "./_harness.ts";
import { PARTIAL_WORK } from "./classes.ts";

registerClasses([PARTIAL_WORK]);
