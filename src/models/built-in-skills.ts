/**
 * The built-in skills a model agent can be given by name. They live apart from skills.ts so that
 * an agent's host loads them (and zod, their schemas) only when the agent has one.
 */
import { z } from "zod";
import { ConfigError, VersionConflictError } from "../core/errors.ts";
import { FINAL_STATUSES, type Task } from "../core/tasks.ts";
import type { Entry } from "../core/board.ts";
import { defineSkill, type AnySkill, type SkillBoard, type SkillContext } from "./skills.ts";

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

