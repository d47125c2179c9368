/**
 * A sub-agent in a process of its own, its events as they come and its result. In a loop agent
 * or another sub-agent, `ctx.spawn` takes the same arguments.
 *
 *   node examples/spawn.ts
 */
import { createColony, memoryBackend } from "../src/index.ts";

const colony = createColony({ backend: memoryBackend() });
const agents = new URL("./summarize-agents.ts", import.meta.url); // found from this file, wherever you run from
const text = "Ant colonies find short paths because shorter trails build up pheromone faster.";
const child = await colony.spawn({ module: agents, export: "summarize" }, { text }, {
  isolation: "process", // or "inline" (an agent object works too), "thread" (with resourceLimits)
  timeoutMs: 30_000,
  budget: { tokens: 5_000, depth: 2 },
  permissions: { writePrefixes: ["summaries/"] },
});
const seen = new Set<string>();
for await (const event of child.events) seen.add(event.type); // state, turn, emit, usage, …, subagent.completed
console.log([...seen].sort().join(" "));
console.log(await child.result); // or a SubAgentError with reason error | crash | timeout | terminated | budget
await colony.close();
