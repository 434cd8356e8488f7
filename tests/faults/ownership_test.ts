import { registerClasses } from "./_harness.ts";
import { OWNERSHIP } from "./classes.ts";

registerClasses([OWNERSHIP]);
