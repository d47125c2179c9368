/**
 * Where an agent reference's module is: `{ module: new URL("./agents.ts", import.meta.url) }`
 * names it from the calling file, wherever the program runs from; a `file:` URL string too. A
 * path starting with `.` is taken from the current directory of the process that spawns, and is
 * made absolute there, so that a thread or process child (or a child's child) finds the same
 * file whatever its own directory. Anything else is a package name, as `import` takes it.
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError } from "../../core/errors.ts";
import type { AgentRef } from "../../core/subagent-types.ts";

/** The reference with its module as a specifier any process can import: a file URL, or a package name. */
export function resolveAgentRef(ref: AgentRef): AgentRef & { module: string } {
  const { module } = ref;
  let specifier: string;
  if (module instanceof URL) specifier = module.href;
  else if (typeof module !== "string" || module === "") throw new ConfigError("an agent reference is { module: string | URL, export?: string }");
  else if (module.startsWith("file:")) specifier = module;
  else if (module.startsWith(".") || isAbsolute(module)) specifier = pathToFileURL(resolve(module)).href;
  else specifier = module;
  return { module: specifier, ...(ref.export !== undefined && { export: ref.export }) };
}
