/**
 * The tool loop's model agents (see bench/model-agents.ts, which registers the `bench:` models
 * they call): `LOOP_STEPS - 1` calls of `add_one`, then a text reply.
 */
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { defineModelAgent, type PlainTool } from "../src/models/agent.ts";
import { INSTRUCTIONS, LOOP_STEPS } from "./model-agents.ts";

export const MODEL_LOOP_AGENTS = fileURLToPath(import.meta.url);

export const addOne: PlainTool = {
  description: "Adds one to n.",
  input: z.object({ n: z.number() }),
  execute: ({ n }: { n: number }) => n + 1,
};

function loopAgent(latencyMs: number) {
  return defineModelAgent({ name: `loop-${latencyMs}`, model: `bench:loop-${latencyMs}`, instructions: INSTRUCTIONS, tools: { add_one: addOne }, maxTurns: LOOP_STEPS });
}

/** The tool loop, the model answering after 5 ms. */
export const loop5 = loopAgent(5);
/** The tool loop, the model answering at once. */
export const loop0 = loopAgent(0);
