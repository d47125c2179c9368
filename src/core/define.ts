import type { Agent, RunDefinition } from "./run-types.ts";

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
