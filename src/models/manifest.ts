/**
 * YAML manifests: agents, skills, a worker's offer, a run and a workflow declared as data.
 *
 * ```yaml
 * modules: [./providers.ts]         # imported first, for their side effects (registerModelProvider)
 * prices: { "local:qwen": { input: 0, output: 0 } }   # merged into every model agent's prices
 * skills: { publish: { module: ./skills.ts, export: publish } }
 * agents:
 *   - { name: researcher, model: openai:gpt-4.1-mini, skills: [board.read, publish], trigger: { missing: notes }, writes: notes }
 *   - { name: coder, cli: { command: my-coder, args: [--json], output: jsonl } }
 *   - { name: critic, module: ./agents.ts, export: critic }
 * run: { board: essay, seed: { topic: ants }, agents: [researcher], goal: { has: notes } }
 * worker: { kinds: { code: coder } }
 * workflow: { name: research, decompose: planner, execute: { research: researcher }, synthesize: writer }
 * ```
 *
 * A manifest names modules and never holds code: triggers and goals are `{ has, missing, tag }`,
 * YAML tags beyond plain data are refused. Paths (modules, a CLI's command and cwd) are relative
 * to the manifest. Every mistake is a `ManifestError` saying `file:line path: what is wrong`.
 */
import { existsSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { z } from "zod";
import { ConfigError, describeError } from "../core/errors.ts";
import { checkRunDefinition } from "../core/run-definition.ts";
import type { Agent, RunDefinition } from "../core/run-types.ts";
import type { AgentRef, AnySubAgent } from "../core/subagent-types.ts";
import { defineCliAgent } from "../runtime/agents/cli-agent.ts";
import type { AgentsByKind } from "../runtime/tasks/worker.ts";
import { checkWorkflow, type WorkflowDefinition } from "../runtime/tasks/workflow.ts";
import { defineModelAgent } from "./agent.ts";
import { AGENT_KINDS, cliAgentSchema, codeAgentSchema, conditionOf, issueText, manifestSchema, modelAgentSchema } from "./manifest-schema.ts";
import { ManifestError, readManifestSource, type ManifestPath, type ManifestSource } from "./manifest-source.ts";
import type { PriceTable } from "./prices.ts";
import { modelNameProblem } from "./registry.ts";
import { BUILT_IN_SKILLS } from "./built-in-skills.ts";
import { isSkill, type Skill } from "./skills.ts";

export { ManifestError };

export type ManifestAgent = AnySubAgent & Partial<Agent>;

export interface Manifest {
  /** The manifest's absolute path (what `manifestAgentRef` takes). */
  file: string;
  /** Every agent, by its name in the manifest. */
  agents: Record<string, ManifestAgent>;
  /** Task kind → agent name: `worker.kinds`, else every agent under its own name. */
  kinds: Record<string, string>;
  /** What `colony run manifest.yaml` runs, from `run:`. */
  run?: RunDefinition;
  /** What a worker offers, from `worker.kinds`: agents by task kind. */
  worker?: AgentsByKind;
  /** What `colony workflow manifest.yaml` runs, from `workflow:`. */
  workflow?: WorkflowDefinition;
}

type Kind = keyof typeof AGENT_KINDS;

/** What building the agents needs besides one agent's entry. */
interface Scope {
  source: ManifestSource;
  dir: string;
  prices: PriceTable | undefined;
  skills: Map<string, Skill>;
}

/** The value at a path of plain data, for a message about it. */
function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let value = data;
  for (const segment of path) value = typeof value === "object" && value !== null ? (value as Record<PropertyKey, unknown>)[segment] : undefined;
  return value;
}

/** Parses with a schema; the first issue is a `ManifestError` at its node (an unknown key: at that key). */
function check<S extends z.ZodType>(source: ManifestSource, schema: S, data: unknown, at: ManifestPath): z.infer<S> {
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = [...at, ...issue.path, ...(issue.code === "unrecognized_keys" ? [issue.keys[0]!] : [])];
  return source.fail(path, issueText(issue, valueAt(data, issue.path)));
}

/** Runs a check of the library's own (defineModelAgent, checkRunDefinition, …) and puts its `ConfigError` at `path`. */
function at<T>(source: ManifestSource, path: ManifestPath, build: () => T, strip?: RegExp): T {
  try {
    return build();
  } catch (error) {
    if (!(error instanceof ConfigError) || error instanceof ManifestError) throw error;
    return source.fail(path, strip ? error.message.replace(strip, "") : error.message, error);
  }
}

/** A path in the manifest, relative to its directory; a `file:` URL as it is. */
function localPath(scope: Scope, spec: string, path: ManifestPath): string {
  if (spec.startsWith("file:")) return fileURLToPath(spec);
  if (spec.startsWith(".") || isAbsolute(spec)) return resolve(scope.dir, spec);
  return scope.source.fail(path, `a module is a path relative to the manifest, like ./agents.ts; got ${JSON.stringify(spec)}`);
}

async function importModule(scope: Scope, spec: string, path: ManifestPath): Promise<Record<string, unknown>> {
  const file = localPath(scope, spec, path);
  if (!existsSync(file)) scope.source.fail(path, `no such file ${spec} (module paths are relative to the manifest)`);
  try {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    return scope.source.fail(path, `${spec} failed to load: ${describeError(error)}`, error);
  }
}

/** A module's export, checked; a missing export names the ones there are. */
async function exported(scope: Scope, ref: { module: string; export?: string | undefined }, path: ManifestPath, what: string, is: (value: unknown) => boolean): Promise<unknown> {
  const module = await importModule(scope, ref.module, [...path, "module"]);
  const name = ref.export ?? "default";
  const where = ref.export === undefined ? [...path, "module"] : [...path, "export"];
  if (!(name in module)) scope.source.fail(where, `${ref.module} has no export "${name}" (it exports ${Object.keys(module).join(", ") || "nothing"})`);
  if (!is(module[name])) scope.source.fail(where, `${ref.module}'s export "${name}" is not ${what}`);
  return module[name];
}

const isAgent = (value: unknown): boolean =>
  typeof value === "object" && value !== null && (typeof (value as AnySubAgent).run === "function" || typeof (value as AnySubAgent).turn === "function");

/**
 * JSON Schema to zod with zod 4's own `z.fromJSONSchema` (semi-experimental in zod, but it gives
 * the agent a real zod schema, so output is parsed and checked the same as in code).
 */
function toZod(scope: Scope, schema: Record<string, unknown>, path: ManifestPath): z.ZodType {
  try {
    return z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
  } catch (error) {
    return scope.source.fail(path, `not a JSON Schema that can be used: ${describeError(error)}`, error);
  }
}

/** Only the name's shape and provider, as `defineModelAgent` does: keys are checked where the agent runs. */
function checkModel(scope: Scope, model: string, path: ManifestPath): void {
  const problem = modelNameProblem(model);
  if (problem !== undefined) scope.source.fail(path, problem);
}

function buildModelAgent(scope: Scope, entry: unknown, path: ManifestPath): ManifestAgent {
  const spec = check(scope.source, modelAgentSchema, entry, path);
  checkModel(scope, spec.model, [...path, "model"]);
  const skills = (spec.skills ?? []).map(
    (name, j) =>
      BUILT_IN_SKILLS[name] ??
      scope.skills.get(name) ??
      scope.source.fail([...path, "skills", j], `no skill "${name}": the built-in ones are ${Object.keys(BUILT_IN_SKILLS).join(", ")}; declare others under skills:`),
  );
  const output = spec.output === undefined ? undefined : toZod(scope, spec.output, [...path, "output"]);
  const prices = scope.prices || spec.prices ? { ...scope.prices, ...spec.prices } : undefined;
  const { trigger, output: _output, skills: _skills, prices: _prices, ...rest } = spec;
  const agent = at(scope.source, path, () =>
    defineModelAgent<unknown>({
      ...rest,
      skills,
      ...(output && { output }),
      ...(prices && { prices }),
      ...(trigger && { trigger: conditionOf(trigger) }),
    }),
  );
  return agent as ManifestAgent;
}

function buildCliAgent(scope: Scope, entry: unknown, path: ManifestPath): ManifestAgent {
  const { name, cli, delivery, budget, permissions } = check(scope.source, cliAgentSchema, entry, path);
  // A command given as a path is the manifest's, like its modules; a bare name is looked up on PATH.
  const command = cli.command.startsWith(".") ? resolve(scope.dir, cli.command) : cli.command;
  const agent = at(
    scope.source,
    [...path, "cli"],
    () =>
      defineCliAgent({
        ...cli,
        name,
        command,
        ...(cli.cwd !== undefined && { cwd: resolve(scope.dir, cli.cwd) }),
        ...(delivery && { delivery }),
        ...(budget && { budget }),
        ...(permissions && { tools: permissions.tools }),
      }),
    /^defineCliAgent: /,
  );
  return agent as ManifestAgent;
}

async function buildCodeAgent(scope: Scope, entry: unknown, path: ManifestPath): Promise<ManifestAgent> {
  const spec = check(scope.source, codeAgentSchema, entry, path);
  return (await exported(scope, spec, path, "an agent (an object with a run or turn function)", isAgent)) as ManifestAgent;
}

const BUILDERS: Record<Kind, (scope: Scope, entry: unknown, path: ManifestPath) => ManifestAgent | Promise<ManifestAgent>> = {
  model: buildModelAgent,
  cli: buildCliAgent,
  module: buildCodeAgent,
};

/** Agents by name, in manifest order, with the kind each is. */
async function buildAgents(scope: Scope, entries: Record<string, unknown>[]): Promise<Map<string, { agent: ManifestAgent; kind: Kind }>> {
  const agents = new Map<string, { agent: ManifestAgent; kind: Kind; index: number }>();
  for (const [i, entry] of entries.entries()) {
    const path = ["agents", i];
    const kinds = (Object.keys(AGENT_KINDS) as Kind[]).filter((kind) => Object.hasOwn(entry, kind));
    if (kinds.length === 0) scope.source.fail(path, "an agent needs one of model (a model agent), cli (a command-line program) or module (a code agent)");
    if (kinds.length > 1) scope.source.fail([...path, kinds[1]!], `an agent is of one kind, but this one has ${kinds.join(" and ")}`);
    const kind = kinds[0]!;
    const agent = await BUILDERS[kind](scope, entry, path);
    const name = entry.name as string;
    const earlier = agents.get(name);
    if (earlier) scope.source.fail([...path, "name"], `agents[${earlier.index}] is already named "${name}"; names must be unique`);
    agents.set(name, { agent, kind, index: i });
  }
  return agents;
}

/**
 * Loads a manifest: imports its `modules`, loads its skills and code agents, builds its model
 * and CLI agents, and puts together its run, worker offer and workflow. Nothing runs and no key
 * is looked up: a model's provider is checked, its API key only where the agent runs.
 *
 * @example
 * const manifest = await loadManifest("agents.yaml");
 * await colony.run(manifest.run!);
 * // agents.yaml:12 agents[1].model: unknown provider "opena" (known: …)   ← a ManifestError
 */
export async function loadManifest(file: string): Promise<Manifest> {
  const path = resolve(file);
  const source = await readManifestSource(file, path);
  const top = check(source, manifestSchema, source.data, []);
  const scope: Scope = { source, dir: dirname(path), prices: top.prices, skills: new Map() };
  // Before anything is built: these register what the agents name (a model provider, say).
  for (const [i, module] of (top.modules ?? []).entries()) await importModule(scope, module, ["modules", i]);
  for (const [name, ref] of Object.entries(top.skills ?? {})) {
    if (BUILT_IN_SKILLS[name]) source.fail(["skills", name], `"${name}" is a built-in skill; give yours another name`);
    scope.skills.set(name, (await exported(scope, ref, ["skills", name], "a skill (made with defineSkill)", isSkill)) as Skill);
  }
  const built = await buildAgents(scope, top.agents);
  const named = (name: string, where: ManifestPath): ManifestAgent =>
    built.get(name)?.agent ?? source.fail(where, `no agent named "${name}" (the manifest has ${[...built.keys()].join(", ")})`);
  const agents = Object.fromEntries([...built].map(([name, { agent }]) => [name, agent]));

  const kinds = top.worker ? top.worker.kinds : Object.fromEntries([...built.keys()].map((name) => [name, name]));
  const worker = top.worker && Object.fromEntries(Object.entries(kinds).map(([kind, name]) => [kind, named(name, ["worker", "kinds", kind])]));

  let run: RunDefinition | undefined;
  if (top.run) {
    const { agents: names, goal, ...rest } = top.run;
    const loop = names.map((name, j) => {
      const agent = named(name, ["run", "agents", j]);
      if (built.get(name)!.kind === "cli") source.fail(["run", "agents", j], `"${name}" is a CLI agent: it runs as a task's or a spawn's agent, not in a run's loop`);
      if (typeof agent.run !== "function") source.fail(["run", "agents", j], `"${name}" has no run(ctx) function, so it cannot be a loop agent`);
      return agent as Agent;
    });
    const definition: RunDefinition = { ...rest, agents: loop, ...(goal && { goal: conditionOf(goal) }) };
    at(source, ["run"], () => checkRunDefinition(definition), /^run definition: /);
    run = definition;
  }

  let workflow: WorkflowDefinition | undefined;
  if (top.workflow) {
    const { decompose, execute, synthesize, input, ...rest } = top.workflow;
    const definition: WorkflowDefinition = {
      ...rest,
      decompose: named(decompose, ["workflow", "decompose"]),
      execute: Object.fromEntries(Object.entries(execute).map(([kind, name]) => [kind, named(name, ["workflow", "execute", kind])])),
      synthesize: named(synthesize, ["workflow", "synthesize"]),
      ...(input && { input: toZod(scope, input, ["workflow", "input"]) }),
    };
    at(source, ["workflow"], () => checkWorkflow(definition));
    workflow = definition;
  }

  return { file: path, agents, kinds, ...(run && { run }), ...(worker && { worker }), ...(workflow && { workflow }) };
}

/** The module that hosts a manifest's agent in a thread or process: `.js` where Colony runs compiled. */
const HOST_MODULE = `./manifest-agent${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`;

/**
 * A reference to a manifest's agent that a thread or process child can load by itself: the
 * child imports a module whose default export is that agent, named in the module's URL query.
 *
 * @example
 * await colony.spawn(manifestAgentRef("agents.yaml", "researcher"), "Find sources.", { isolation: "process" });
 */
export function manifestAgentRef(file: string, name: string): AgentRef {
  const url = new URL(HOST_MODULE, import.meta.url);
  url.searchParams.set("manifest", resolve(file));
  url.searchParams.set("agent", name);
  return { module: url.href };
}
