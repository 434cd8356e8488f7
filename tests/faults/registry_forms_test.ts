import { registerClasses } from "./_harness.ts";
import { REGISTRY_FORMS } from "./classes.ts";

registerClasses([REGISTRY_FORMS]);
