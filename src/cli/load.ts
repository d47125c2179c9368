/**
 * Loads a run definition from a file whose default export is the definition, or from a YAML
 * manifest's `run:`. Every way this can go wrong ends in one `UsageError` that names the file
 * (and, for a manifest, the line) and says what to fix.
 */
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError, describeError } from "../core/errors.ts";
import { checkRunDefinition } from "../core/run-definition.ts";
import type { Isolation } from "../core/records.ts";
import type { RunDefinition } from "../core/run-types.ts";
import type { AnySubAgent } from "../core/subagent-types.ts";
import type { Manifest } from "../models/manifest.ts";
import type { AgentsByKind } from "../runtime/tasks/worker.ts";
import { UsageError } from "./common.ts";

/** `:LINE` of a syntax error: Node's import error does not carry it, `node --check` prints it first. */
function syntaxErrorLine(path: string): string {
  const { stderr } = spawnSync(process.execPath, ["--check", path], { encoding: "utf8" });
  const line = /^.*:(\d+)$/m.exec(stderr.split("\n", 1)[0] ?? "");
  return line ? `:${line[1]}` : "";
}

const EXTENSIONS = new Set([".ts", ".mts", ".js", ".mjs"]);

/**
 * What to do about an ES module that Node loaded as CommonJS: a .ts or .js file takes its module
 * type from the nearest package.json, and `npm init` writes `"type": "commonjs"`.
 */
function commonJsAdvice(path: string): string {
  let manifest: string | undefined;
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) {
      manifest = join(dir, "package.json");
      break;
    }
    if (dir === dirname(dir)) break;
  }
  const renamed = `${basename(path, extname(path))}${extname(path) === ".ts" ? ".mts" : ".mjs"}`;
  const where = manifest === undefined ? "no package.json says it is a module" : `${manifest} does not say "type": "module"`;
  return `it uses import/export, but Node loads it as CommonJS (${where}); rename it ${renamed}, or add "type": "module" to that package.json`;
}

/** Imports a user's module; every way that can fail is a `UsageError` naming the file. */
export async function importFile(file: string, what: string): Promise<Record<string, unknown>> {
  const path = resolve(file);
  if (!existsSync(path)) throw new UsageError(`${file}: no such file`);
  if (!statSync(path).isFile()) throw new UsageError(`${file}: not a file`);
  if (!EXTENSIONS.has(extname(path))) throw new UsageError(`${file}: ${what} is a .ts, .mts, .js or .mjs file`);
  try {
    return (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof SyntaxError && /Cannot use import statement outside a module|Unexpected token 'export'/.test(error.message)) {
      throw new UsageError(`${file}: ${commonJsAdvice(path)}`, { cause: error });
    }
    if (error instanceof SyntaxError) {
      throw new UsageError(`${file}${syntaxErrorLine(path)}: syntax error: ${describeError(error)}`, { cause: error });
    }
    throw new UsageError(`${file}: failed to load: ${describeError(error)}`, { cause: error });
  }
}

const MANIFEST_EXTENSIONS = new Set([".yaml", ".yml"]);

/** Whether a file is a YAML manifest rather than a module. */
export function isManifestFile(file: string): boolean {
  return MANIFEST_EXTENSIONS.has(extname(file).toLowerCase());
}

/** The manifest loader, imported on first use: it brings the model SDK, which other commands start without. */
const manifests = () => import("../models/manifest.ts");

/** Loads a YAML manifest; its `ManifestError` (`file:line path: problem`) becomes a `UsageError` saying the same. */
export async function loadManifestFile(file: string): Promise<Manifest> {
  const { loadManifest } = await manifests();
  try {
    return await loadManifest(file);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message, { cause: error });
    throw error;
  }
}

export async function loadRunDefinition(file: string): Promise<RunDefinition> {
  if (isManifestFile(file)) {
    const { run } = await loadManifestFile(file);
    if (!run) throw new UsageError(`${file}: has no run: section; add \`run: { board, agents: [names], goal: { has: key } }\` to say what colony run runs`);
    return run;
  }
  const module = await importFile(file, "a run definition");
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

function isAgent(value: unknown): value is AnySubAgent {
  return typeof value === "object" && value !== null && (typeof (value as AnySubAgent).run === "function" || typeof (value as AnySubAgent).turn === "function");
}

/**
 * The agents a module exports, by export name (= the task kind they run), or a manifest's
 * (`worker.kinds`, else every agent under its own name). With an isolation other than inline they
 * come back as references, so that each thread or process loads its own copy.
 */
export async function loadAgents(file: string, isolation: Isolation): Promise<AgentsByKind> {
  if (isManifestFile(file)) {
    const manifest = await loadManifestFile(file);
    const { manifestAgentRef } = await manifests();
    return Object.fromEntries(
      Object.entries(manifest.kinds).map(([kind, name]) => [kind, isolation === "inline" ? manifest.agents[name]! : manifestAgentRef(manifest.file, name)]),
    );
  }
  const module = await importFile(file, "an agents module");
  const agents: AgentsByKind = {};
  for (const [name, value] of Object.entries(module)) {
    if (name === "default" || !isAgent(value)) continue;
    agents[name] = isolation === "inline" ? value : { module: resolve(file), export: name };
  }
  if (Object.keys(agents).length === 0) {
    throw new UsageError(`${file}: exports no agents; export each under its task kind, e.g. \`export const research = defineSubAgent({ name: "research", run })\``);
  }
  return agents;
}
