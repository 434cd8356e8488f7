import { registerClasses } from "./_harness.ts";
import { FILES, NAMES } from "./classes.ts";

registerClasses([FILES, NAMES]);
