/**
 * The model agents `bench/models.ts` measures, loadable in any isolation: a thread or process
 * that loads this file registers the provider prefix `bench:` in its own model registry, so a
 * model named `bench:loop-5` resolves there to a fresh scripted model (the AI SDK's mock, through
 * the real `generateText`). Imports Colony's model modules directly rather than `src/index.ts`,
 * so that a child loads what a model agent needs and not the backends (as bench/agents.ts keeps
 * to type-only imports).
 *
 * Each scripted model notes the wall-clock time (`now()`, comparable across threads and
 * processes) at the start of its first call and puts it in its final text reply, so that the
 * parent can time an agent from its first model call to its end, leaving out its start.
 */
import { fileURLToPath } from "node:url";
import { tool } from "ai";
import { z } from "zod";
import { defineModelAgent } from "../src/models/agent.ts";
import { registerModelProvider } from "../src/models/registry.ts";
import { scriptedModel, type ScriptedModel } from "../src/testing/scripted-model.ts";

export const MODEL_AGENTS = fileURLToPath(import.meta.url);

/** Model steps of the tool loop: `LOOP_STEPS - 1` tool-call replies, then a text reply. */
export const LOOP_STEPS = 10;
export const INSTRUCTIONS = "You count with the add_one tool.";
export const PROMPT = "Count to nine.";

/** Wall-clock milliseconds with sub-millisecond precision, comparable across threads and processes. */
export const now = (): number => performance.timeOrigin + performance.now();

/** What a scripted model's final text reply carries. */
export interface Stamp {
  /** `now()` at the start of the model's first call. */
  first: number;
  /** `now()` when its final reply was made. */
  last: number;
  calls: number;
}

export const addOne = tool({
  description: "Adds one to n.",
  inputSchema: z.object({ n: z.number() }),
  execute: ({ n }) => n + 1,
});

/**
 * A fresh scripted model answering after `latencyMs`: `steps - 1` replies calling `add_one`,
 * then a text reply, the JSON of its `Stamp`. With `steps` 1, a single text reply.
 */
export function stampedModel(latencyMs: number, steps: number): ScriptedModel {
  let first: number | undefined;
  const model = scriptedModel([], {
    provider: "bench",
    modelId: `stamped-${latencyMs}-${steps}`,
    latencyMs,
    fallback: (call) => (call < steps - 1 ? { toolCalls: [{ name: "add_one", args: { n: call } }] } : { text: JSON.stringify({ first: first!, last: now(), calls: call + 1 } satisfies Stamp) }),
  });
  const inner = model.doGenerate;
  model.doGenerate = (options) => {
    first ??= now();
    return inner(options);
  };
  return model;
}

/** `bench:loop-<latency ms>` (the tool loop) and `bench:once-<latency ms>` (one text reply). */
registerModelProvider("bench", (name) => {
  const match = /^(loop|once)-(\d+)$/.exec(name);
  if (!match) throw new Error(`bench models are loop-<ms> or once-<ms>, not ${name}`);
  return stampedModel(Number(match[2]), match[1] === "loop" ? LOOP_STEPS : 1);
});

function loopAgent(latencyMs: number) {
  return defineModelAgent({ name: `loop-${latencyMs}`, model: `bench:loop-${latencyMs}`, instructions: INSTRUCTIONS, tools: { add_one: addOne }, maxTurns: LOOP_STEPS });
}

/** The tool loop, the model answering after 5 ms. */
export const loop5 = loopAgent(5);
/** The tool loop, the model answering at once. */
export const loop0 = loopAgent(0);
/** One text reply after 50 ms: the fan-out's agent. */
export const once50 = defineModelAgent({ name: "once-50", model: "bench:once-50", instructions: INSTRUCTIONS });
