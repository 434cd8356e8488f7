import { registerClasses } from "./_harness.ts";
import { GATE } from "./classes.ts";

registerClasses([GATE]);
