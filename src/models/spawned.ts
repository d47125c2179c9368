/**
 * The helper the `agents.spawn` skill starts: a model agent made from its input (model name,
 * instructions, built-in skills), loaded by reference so that it runs in any isolation. Its
 * permissions are its parent's, narrowed as for any spawn.
 */
import { z } from "zod";
import { InvalidInputError } from "../core/errors.ts";
import type { SubAgent, SubAgentContext } from "../core/subagent-types.ts";
import { defineModelAgent, type ModelAgent } from "./agent.ts";

const helperInput = z.object({
  model: z.string(),
  name: z.string(),
  instructions: z.string(),
  prompt: z.string(),
  skills: z.array(z.string()),
});

/** Per run of the helper: its agent, and its context with the prompt as the input. */
const made = new WeakMap<object, { agent: ModelAgent; ctx: SubAgentContext }>();

function agentFor(ctx: SubAgentContext): { agent: ModelAgent; ctx: SubAgentContext } {
  let entry = made.get(ctx);
  if (!entry) {
    const parsed = helperInput.safeParse(ctx.input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new InvalidInputError(`helper ${ctx.name}`, issue.path.join("."), issue.message);
    }
    const { model, name, instructions, skills, prompt } = parsed.data;
    const own = Object.create(ctx, { input: { value: prompt } }) as SubAgentContext;
    entry = { agent: defineModelAgent({ name, model, instructions, skills }), ctx: own };
    made.set(ctx, entry);
  }
  return entry;
}

const helper: SubAgent = {
  name: "helper",
  turn: (ctx) => {
    const { agent, ctx: own } = agentFor(ctx);
    return agent.turn(own);
  },
};

export default helper;
