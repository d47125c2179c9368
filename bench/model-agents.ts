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
 *
 * The fanned-out agent (one text reply, no tools) is here; the tool loop's agents are in
 * bench/model-loop-agents.ts, which imports zod for their tool's schema: a host that loads this
 * file alone loads no zod (zod loads all its locales, some 40 to 60 ms of a cold host's start).
 */
import { fileURLToPath } from "node:url";
import { defineModelAgent } from "../src/models/agent.ts";
import { registerModelProvider } from "../src/models/registry.ts";
import type { ScriptedModel } from "../src/testing/scripted-model.ts";

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

/**
 * A fresh scripted model answering after `latencyMs`: `steps - 1` replies calling `add_one`,
 * then a text reply, the JSON of its `Stamp`. With `steps` 1, a single text reply.
 */
export async function stampedModel(latencyMs: number, steps: number): Promise<ScriptedModel> {
  // Loaded when a model is made, where it is called: a thread or process agent's host does not load the SDK.
  const { scriptedModel } = await import("../src/testing/scripted-model.ts");
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

/** One text reply after 50 ms: the fan-out's agent. */
export const once50 = defineModelAgent({ name: "once-50", model: "bench:once-50", instructions: INSTRUCTIONS });
