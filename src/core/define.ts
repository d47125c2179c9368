import type { Agent, RunDefinition } from "./run-types.ts";
import type { SubAgent } from "./subagent-types.ts";

/**
 * Identity helpers that give a definition file its types; a plain object works as well.
 *
 * @example
 * export default defineRun({ board: "essay", agents: [writer, critic], maxSteps: 20 });
 */
export function defineRun(definition: RunDefinition): RunDefinition {
  return definition;
}

/** @example const critic = defineAgent({ name: "critic", trigger: (v) => v.has("draft"), run: ... }); */
export function defineAgent(agent: Agent): Agent {
  return agent;
}

/**
 * @example
 * export const summarizer = defineSubAgent<{ text: string }, string>({
 *   name: "summarizer",
 *   run: async (ctx) => ctx.input.text.slice(0, 100),
 * });
 */
export function defineSubAgent<I = unknown, R = unknown>(agent: SubAgent<I, R>): SubAgent<I, R> {
  return agent;
}
