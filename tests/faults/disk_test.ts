import { registerClasses } from "./_harness.ts";
import { DISK } from "./classes.ts";

registerClasses([DISK]);
