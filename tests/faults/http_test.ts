import { registerClasses } from "./_harness.ts";
import { HTTP, LIMITS, REDIRECTS } from "./classes.ts";

registerClasses([HTTP, REDIRECTS, LIMITS]);
