import { registerClasses } from "./_harness.ts";
import { SECRETS } from "./classes.ts";

registerClasses([SECRETS]);
