/**
 * A thread agent's first module. It turns on Node's compile cache before the host code loads, so
 * that code is stripped of its types and compiled once per machine and version, not once per
 * thread (without it, most of a thread's start went to that). Unless NODE_DISABLE_COMPILE_CACHE
 * is set; NODE_COMPILE_CACHE names another directory than the default one under the temp folder.
 */
import { enableCompileCache } from "node:module";

enableCompileCache();
await import("./thread-entry.ts");
