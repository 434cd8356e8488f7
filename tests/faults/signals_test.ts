import { registerClasses } from "./_harness.ts";
import { SIGNALS } from "./classes.ts";

registerClasses([SIGNALS]);
