/**
 * Loads a run definition from a file whose default export is the definition. Every way this
 * can go wrong ends in one `UsageError` that names the file and says what to fix.
 */
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError, describeError } from "../core/errors.ts";
import { checkRunDefinition } from "../core/run-definition.ts";
import type { RunDefinition } from "../core/run-types.ts";
import { UsageError } from "./common.ts";

/** `:LINE` of a syntax error: Node's import error does not carry it, `node --check` prints it first. */
function syntaxErrorLine(path: string): string {
  const { stderr } = spawnSync(process.execPath, ["--check", path], { encoding: "utf8" });
  const line = /^.*:(\d+)$/m.exec(stderr.split("\n", 1)[0] ?? "");
  return line ? `:${line[1]}` : "";
}

const EXTENSIONS = new Set([".ts", ".mts", ".js", ".mjs"]);

export async function loadRunDefinition(file: string): Promise<RunDefinition> {
  const path = resolve(file);
  if (!existsSync(path)) throw new UsageError(`${file}: no such file`);
  if (!statSync(path).isFile()) throw new UsageError(`${file}: not a file`);
  if (!EXTENSIONS.has(extname(path))) throw new UsageError(`${file}: a run definition is a .ts, .mts, .js or .mjs file`);
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(path).href)) as { default?: unknown };
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new UsageError(`${file}${syntaxErrorLine(path)}: syntax error: ${describeError(error)}`, { cause: error });
    }
    throw new UsageError(`${file}: failed to load: ${describeError(error)}`, { cause: error });
  }
  if (module.default === undefined) {
    throw new UsageError(`${file}: has no default export; add \`export default defineRun({ board, agents })\``);
  }
  try {
    checkRunDefinition(module.default);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(`${file}: ${error.message}`, { cause: error });
    throw error;
  }
  return module.default as RunDefinition;
}
