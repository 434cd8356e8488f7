import { registerClasses } from "./_harness.ts";
import { FIRST_RUN } from "./classes.ts";

registerClasses([FIRST_RUN]);
