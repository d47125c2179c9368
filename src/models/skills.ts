/**
 * Skills: what a model agent can do besides answer. A plain AI SDK tool works unchanged; a
 * swarm-aware skill (`defineSkill`) also gets the agent's context: its board (writes authored by
 * the agent, held to its prefixes), spawning, its children, events and usage. The built-in
 * skills are named by string (`"board.read"`, `"agents.spawn"`, …).
 */
import { tool, type Tool } from "ai";
import { z } from "zod";
import type { Entry } from "../core/board.ts";
import { ConfigError, VersionConflictError } from "../core/errors.ts";
import type { Usage } from "../core/records.ts";
import type { AgentRef, SpawnOptions, SubAgent, SubAgentContext, SubAgentHandle } from "../core/subagent-types.ts";
import { FINAL_STATUSES, type Task } from "../core/tasks.ts";

/** The board as a skill sees it: the agent's own view of it (authored writes, checked prefixes). */
export interface SkillBoard {
  readonly name: string;
  write<V>(key: string, value: V, options?: { expectedVersion?: number }): Promise<Entry<V>>;
  get<V = unknown>(key: string): Promise<Entry<V> | undefined>;
  /** Keys on the board (a loop agent's snapshot); absent where the agent cannot list them. */
  keys?(prefix?: string): string[];
}

/** What a swarm-aware skill gets besides its arguments. */
export interface SkillContext {
  readonly agent: { readonly id: string; readonly name: string };
  readonly board: SkillBoard | undefined;
  /** Aborts when the agent is asked to stop. */
  readonly signal: AbortSignal;
  spawn<R = unknown, I = unknown>(agent: AgentRef | SubAgent<I, R>, input?: I, options?: SpawnOptions): Promise<SubAgentHandle<R>>;
  /** The children this agent spawned through its skills, live and ended. */
  readonly agents: {
    list(): { id: string; name: string; state: string }[];
    terminate(id: string): Promise<void>;
  };
  emit(name: string, data?: unknown): void;
  usage: { add(usage: Usage): void };
  /** The colony's task boards; absent for a loop agent (spawn a sub-agent to use them). */
  readonly tasks: SubAgentContext["tasks"] | undefined;
  /** The model agent itself: its model name, for skills that start helpers like it. */
  readonly model: { readonly spec: unknown };
}

export interface Skill<A = unknown, R = unknown> {
  readonly kind: "colony.skill";
  /** How permissions name it (`permissions.tools`); the model sees it with dots as underscores. */
  readonly name: string;
  readonly description: string;
  readonly input: z.ZodType<A>;
  /** Pause for a person's approval before it runs: always, or when this says so for the arguments. */
  readonly needsApproval?: boolean | ((args: A) => boolean);
  execute(args: A, ctx: SkillContext): R | Promise<R>;
}

/** Any skill, whatever its argument and result types: what a tool set carries. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnySkill = Skill<any, any>;

/**
 * @example
 * export const publish = defineSkill({
 *   name: "publish",
 *   description: "Publish the final report",
 *   input: z.object({ text: z.string() }),
 *   execute: async ({ text }, ctx) => (await ctx.board!.write("report", text)).version,
 * });
 */
export function defineSkill<A, R>(skill: Omit<Skill<A, R>, "kind">): Skill<A, R> {
  if (typeof skill.name !== "string" || !/^[A-Za-z][\w.-]{0,63}$/.test(skill.name)) {
    throw new ConfigError(`skill name ${JSON.stringify(skill.name)}: use letters, digits, dots, dashes and underscores, starting with a letter, at most 64`);
  }
  if (typeof skill.execute !== "function") throw new ConfigError(`skill ${skill.name}: execute(args, ctx) is a function`);
  if (typeof skill.description !== "string" || skill.description.length === 0) throw new ConfigError(`skill ${skill.name}: give it a description (the model reads it to decide when to use it)`);
  return { kind: "colony.skill", ...skill };
}

export function isSkill(value: unknown): value is AnySkill {
  return typeof value === "object" && value !== null && (value as AnySkill).kind === "colony.skill";
}

/** The name a model sees for a skill: providers accept letters, digits, `_` and `-`. */
export function wireName(name: string): string {
  return name.replaceAll(".", "_");
}

/** A board entry as the model reads it. */
function shown(entry: Entry): Record<string, unknown> {
  return { key: entry.key, value: entry.value, version: entry.version, author: entry.author, tags: entry.tags };
}

function needBoard(ctx: SkillContext): SkillBoard {
  if (!ctx.board) throw new ConfigError(`${ctx.agent.name} has no board`);
  return ctx.board;
}

const boardRead = defineSkill({
  name: "board.read",
  description: "Read entries of the shared board. Give a key to read one entry (value, version, author, tags); give no key to list the keys (where the board can be listed).",
  input: z.object({ key: z.string().optional().describe("the entry's key"), prefix: z.string().optional().describe("list only keys starting with this") }),
  async execute({ key, prefix }, ctx) {
    const board = needBoard(ctx);
    if (key !== undefined) {
      const entry = await board.get(key);
      return entry ? shown(entry) : { key, missing: true };
    }
    if (!board.keys) return { error: "this agent can read keys only one at a time: give a key" };
    return { keys: board.keys(prefix) };
  },
});

const boardWrite = defineSkill({
  name: "board.write",
  description:
    "Write an entry on the shared board. Give expectedVersion (the version you read; 0 for a key that must not exist yet) to write only if nobody changed it since; on a conflict you get the current entry and may retry.",
  input: z.object({
    key: z.string(),
    value: z.any().describe("any JSON value"),
    expectedVersion: z.number().int().min(0).optional(),
  }),
  async execute({ key, value, expectedVersion }, ctx) {
    const board = needBoard(ctx);
    try {
      const entry = await board.write(key, value, expectedVersion === undefined ? {} : { expectedVersion });
      return { ok: true, key, version: entry.version };
    } catch (error) {
      if (!(error instanceof VersionConflictError)) throw error;
      const current = await board.get(key);
      return { ok: false, conflict: true, key, expectedVersion, current: current ? shown(current) : { missing: true } };
    }
  },
});

const agentsSpawn = defineSkill({
  name: "agents.spawn",
  description:
    "Start a helper agent (same model, a fresh context) for a sub-goal. It works on its own; its result comes back to you as a message when it ends. Returns its id at once.",
  input: z.object({
    name: z.string().regex(/^[\w.-]{1,64}$/).describe("a short name for the helper"),
    instructions: z.string().describe("who the helper is and how it should work"),
    prompt: z.string().describe("the sub-goal, with everything the helper needs to know"),
    skills: z.array(z.string()).optional().describe("built-in skills to give it, from your own"),
  }),
  async execute({ name, instructions, prompt, skills }, ctx) {
    const handle = await ctx.spawn(
      { module: new URL(`./spawned${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url) },
      { model: ctx.model.spec, name, instructions, prompt, skills: skills ?? [] },
      { name },
    );
    return { id: handle.id, name: handle.name };
  },
});

const agentsList = defineSkill({
  name: "agents.list",
  description: "List the helper agents you started, with their state.",
  input: z.object({}),
  execute: (_args, ctx) => ({ agents: ctx.agents.list() }),
});

const agentsTerminate = defineSkill({
  name: "agents.terminate",
  description: "Stop a helper agent you started (and its own helpers).",
  input: z.object({ id: z.string() }),
  async execute({ id }, ctx) {
    await ctx.agents.terminate(id);
    return { terminated: id };
  },
});

function needTasks(ctx: SkillContext): NonNullable<SkillContext["tasks"]> {
  if (!ctx.tasks) throw new ConfigError(`${ctx.agent.name} runs as a loop agent, which has no task boards; spawn it as a sub-agent to submit tasks`);
  return ctx.tasks;
}

/** A task as the model reads it. */
function taskShown(task: Task): Record<string, unknown> {
  return {
    id: task.id,
    kind: task.kind,
    status: task.status,
    ...(task.status === "succeeded" && { result: task.result }),
    ...(FINAL_STATUSES.has(task.status) && task.status !== "succeeded" && task.failures.length > 0 && { failure: task.failures.at(-1) }),
  };
}

const tasksSubmit = defineSkill({
  name: "tasks.submit",
  description: "Submit a task to the task board for a worker with the right capability. Returns its id at once; use tasks.wait for its result.",
  input: z.object({
    kind: z.string().describe("what kind of work: the capability a worker must offer"),
    input: z.any().optional().describe("the task's input, any JSON"),
    priority: z.number().int().optional(),
    dependsOn: z.array(z.string()).optional().describe("ids of tasks that must succeed first"),
    board: z.string().optional().describe("the task board; default the colony's default one"),
  }),
  async execute({ board, ...request }, ctx) {
    return taskShown(await needTasks(ctx).submit(request, board === undefined ? {} : { board }));
  },
});

const tasksWait = defineSkill({
  name: "tasks.wait",
  description: "Wait until a task has ended and get its result (or why it failed).",
  input: z.object({ id: z.string(), board: z.string().optional() }),
  async execute({ id, board }, ctx) {
    return taskShown(await needTasks(ctx).wait(id, board === undefined ? {} : { board }));
  },
});

/** The skills a model agent can be given by name. */
export const BUILT_IN_SKILLS: Readonly<Record<string, AnySkill>> = Object.fromEntries(
  [boardRead, boardWrite, tasksSubmit, tasksWait, agentsSpawn, agentsList, agentsTerminate].map((skill) => [skill.name, skill]),
);

/** Looks a built-in skill up; throws `ConfigError` listing the names there are. */
export function builtInSkill(name: string, who: string): AnySkill {
  const skill = BUILT_IN_SKILLS[name];
  if (!skill) throw new ConfigError(`${who}: no built-in skill "${name}" (there are ${Object.keys(BUILT_IN_SKILLS).join(", ")})`);
  return skill;
}

/** Turns a skill into an AI SDK tool bound to a context. */
export function skillTool(skill: AnySkill, ctx: () => SkillContext): Tool {
  return tool({
    description: skill.description,
    inputSchema: skill.input as z.ZodType<unknown>,
    execute: async (args: unknown) => skill.execute(args, ctx()),
  }) as Tool;
}
