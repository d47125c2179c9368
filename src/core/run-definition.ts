/**
 * Checks a run definition before anything runs, so that a wrong field is one clear message
 * (naming the field and what it should be) instead of a failure in the middle of a run.
 */
import { z } from "zod";
import { ConfigError } from "./errors.ts";
import { checkBudget } from "./governance.ts";
import { checkAuthor } from "./json.ts";
import type { RunDefinition } from "./run-types.ts";

export const BOARD_NAME = /^[A-Za-z0-9_-]{1,64}$/;

const fn = (what: string) =>
  z.custom<(...args: never[]) => unknown>((v) => typeof v === "function", { message: `${what} must be a function` });

const count = (what: string, min: number) =>
  z.number({ message: `${what} must be a number` }).int({ message: `${what} must be a whole number` }).min(min, {
    message: `${what} must be at least ${min}`,
  });

const agentSchema = z.looseObject({
  name: z.string({ message: "an agent needs a name (a string)" }).min(1, { message: "an agent's name must not be empty" }),
  trigger: fn("trigger").optional(),
  run: fn("run"),
  maxFires: count("maxFires", 1).optional(),
  priority: z.number({ message: "priority must be a number" }).optional(),
});

const runSchema = z.looseObject({
  name: z.string().min(1).optional(),
  board: z.string({ message: "board must be a board name (a string)" }).regex(BOARD_NAME, {
    message: "board names are 1 to 64 letters, digits, '-' or '_'",
  }),
  seed: z.record(z.string(), z.unknown(), { message: "seed must be an object of key → value" }).optional(),
  agents: z.array(agentSchema, { message: "agents must be an array of agents" }).min(1, { message: "agents must list at least one agent" }),
  goal: fn("goal").optional(),
  maxSteps: count("maxSteps", 1).optional(),
  parallel: z.boolean({ message: "parallel must be true or false" }).optional(),
  concurrency: count("concurrency", 1).optional(),
  deadlockAfter: count("deadlockAfter", 1).optional(),
  budget: z.record(z.string(), z.unknown(), { message: "budget must be an object of limits" }).optional(),
  signal: z.instanceof(AbortSignal, { message: "signal must be an AbortSignal" }).optional(),
});

export type CheckedRunDefinition = RunDefinition & Required<Pick<RunDefinition, "maxSteps" | "parallel" | "concurrency" | "deadlockAfter">>;

/** Returns the definition with defaults filled in, or throws `ConfigError` naming the field at fault. */
export function checkRunDefinition(definition: unknown): CheckedRunDefinition {
  if (typeof definition !== "object" || definition === null) {
    throw new ConfigError(`a run definition is an object with board and agents, got ${definition === null ? "null" : typeof definition}`);
  }
  const parsed = runSchema.safeParse(definition);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").slice(1) : "definition";
    throw new ConfigError(`run definition: ${where}: ${issue.message}`);
  }
  const def = definition as RunDefinition;
  checkBudget(def.budget, "run definition");
  for (const agent of def.agents) checkBudget(agent.budget, `run definition: agent ${agent.name}`);
  const names = new Set<string>();
  for (const agent of def.agents) {
    // A loop agent's name is the author of its writes: refused here, not at its first write.
    checkAuthor(agent.name);
    if (names.has(agent.name)) throw new ConfigError(`run definition: two agents are named "${agent.name}"; names must be unique`);
    names.add(agent.name);
  }
  return {
    ...def,
    maxSteps: def.maxSteps ?? 100,
    parallel: def.parallel ?? true,
    concurrency: def.concurrency ?? 16,
    deadlockAfter: def.deadlockAfter ?? 3,
  };
}
