/**
 * The workflow demo on a model (`colony demo --model`): a decomposer model agent turns the
 * question into a plan (candidates and what matters), which a zod schema checks; each candidate
 * becomes a research subtask for a model agent on the workers; a comparison in code ranks them
 * once all are in, and the synthesis writes the answer.
 */
import { z } from "zod";
import { defineSubAgent } from "../core/define.ts";
import { defineModelAgent, type ModelAgent } from "../models/agent.ts";
import type { ModelCallRecord } from "../models/call-record.ts";
import type { Subtask, WorkflowDefinition } from "../runtime/tasks/workflow.ts";

const CRITERIA = ["speed", "safety", "ecosystem"] as const;
type Criterion = (typeof CRITERIA)[number];

/** What the decomposer must answer: 2 to 4 candidates, each a subtask id, and a weight per criterion. */
export const planSchema = z.object({
  candidates: z.array(z.string().regex(/^[a-z][a-z0-9-]{0,31}$/)).min(2).max(4),
  weights: z.object({ speed: z.number().min(0).max(3), safety: z.number().min(0).max(3), ecosystem: z.number().min(0).max(3) }),
});

const score = z.number().int().min(1).max(10);
const findingSchema = z.object({ speed: score, safety: score, ecosystem: score, note: z.string() });

export type Finding = z.infer<typeof findingSchema>;

export interface ModelQuestion {
  question: string;
}

export const MODEL_QUESTION: ModelQuestion = { question: "Which language should our new command-line tool be written in?" };

/**
 * The research agent, one per candidate: scores it from 1 to 10 on each criterion, with a one-line note.
 *
 * @example
 * await colony.worker({ agents: { research: modelResearch("openai:gpt-4.1-mini"), compare } });
 */
export function modelResearch(model: string): ModelAgent<Finding> {
  return defineModelAgent({
    name: "research",
    model,
    instructions:
      "You research one candidate answer to a question for a team that must choose. Score the candidate from 1 (poor) to 10 (best) on speed, safety and ecosystem, " +
      'and give a one-line note of its strengths and costs. Answer as JSON: {"speed": n, "safety": n, "ecosystem": n, "note": "…"}.',
    output: findingSchema,
    maxTurns: 3,
  });
}

/** Ranks the research results (by subtask id) with the plan's weights; code, no model. */
export const compare = defineSubAgent<{ input: { weights: Record<Criterion, number> }; dependencies: Record<string, Finding> }, { ranking: string[]; scores: Record<string, number> }>({
  name: "compare",
  run(ctx) {
    const { weights } = ctx.input.input;
    const scores: Record<string, number> = {};
    for (const [candidate, found] of Object.entries(ctx.input.dependencies)) {
      scores[candidate] = Math.round(CRITERIA.reduce((sum, c) => sum + found[c] * weights[c], 0) * 10) / 10;
    }
    const ranking = Object.keys(scores).sort((a, b) => scores[b]! - scores[a]! || a.localeCompare(b));
    return { ranking, scores };
  },
});

/**
 * The workflow; `onCall` hears each of the decomposer's model calls (the research runs on the
 * workers, whose events tell theirs).
 *
 * @example
 * const { result } = await colony.workflow(modelWorkflow("openai:gpt-4.1-mini")).run(MODEL_QUESTION);
 */
export function modelWorkflow(model: string, onCall: (agent: string, call: ModelCallRecord) => void = () => {}): WorkflowDefinition<ModelQuestion, string> {
  const decomposer = defineModelAgent({
    name: "decomposer",
    model,
    instructions:
      "You plan research for a team that must choose. Given a question, name 2 to 4 candidate answers worth comparing, each as a short lowercase id " +
      '(letters, digits, dashes: "go", "rust"), and weigh how much speed, safety and ecosystem matter for it, each from 0 to 3. ' +
      'Answer as JSON: {"candidates": ["…"], "weights": {"speed": n, "safety": n, "ecosystem": n}}.',
    output: planSchema,
    maxTurns: 3,
  });

  // A sub-agent around the decomposer, so that its model calls are seen as they happen.
  const decompose = defineSubAgent<ModelQuestion, Subtask[]>({
    name: "decompose",
    async run(ctx) {
      const planner = await ctx.spawn(decomposer, ctx.input.question);
      for await (const event of planner.events) {
        if (event.type === "emit" && event.name === "model.call") onCall(decomposer.name, event.data as ModelCallRecord);
      }
      const plan = await planner.result;
      const candidates = [...new Set(plan.candidates)].filter((candidate) => candidate !== "comparison");
      return [
        ...candidates.map((candidate) => ({ id: candidate, kind: "research", input: { question: ctx.input.question, candidate } })),
        { id: "comparison", kind: "compare", input: { weights: plan.weights }, dependsOn: candidates },
      ];
    },
  });

  return {
    name: "choose-language",
    input: z.object({ question: z.string().min(1) }),
    decompose,
    execute: { research: modelResearch(model), compare },
    // The same task board as the offline demo, which its workers serve.
    tasks: "demo",
    synthesize: ({ input, results, failures }) => {
      const failed = Object.keys(failures);
      if (!results.comparison) return `No answer to "${input.question}": ${failed.map((id) => `${id} ${failures[id]!.status} (${failures[id]!.reason})`).join("; ")}`;
      const { ranking, scores } = results.comparison as { ranking: string[]; scores: Record<string, number> };
      const lines = ranking.map((candidate, i) => `  ${i + 1}. ${candidate} (${scores[candidate]}): ${(results[candidate] as Finding).note}`);
      return [input.question, `Answer: ${ranking[0]}.`, ...lines].join("\n");
    },
    concurrency: 3,
  };
}
