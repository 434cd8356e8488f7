import { registerClasses } from "./_harness.ts";
import { HOST_FILES } from "./classes.ts";

registerClasses([HOST_FILES]);
