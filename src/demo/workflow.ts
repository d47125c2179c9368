/**
 * decompose → parallel → synthesize: a question becomes three research subtasks and a comparison
 * that depends on them; workers run the research at the same time, then the comparison, and the
 * synthesis writes the answer from every result.
 */
import { z } from "zod";
import type { WorkflowDefinition } from "../runtime/tasks/workflow.ts";
import { compare, research, type ResearchResult } from "./workflow-agents.ts";

const questionSchema = z.object({
  question: z.string().min(1),
  topics: z.array(z.string().min(1)).min(1),
  weights: z.record(z.string(), z.number()),
});

export type Question = z.infer<typeof questionSchema>;

export const QUESTION: Question = {
  question: "Which language should our new command-line tool be written in?",
  topics: ["go", "rust", "typescript"],
  weights: { speed: 1, safety: 1.5, ecosystem: 1.2 },
};

const workflow: WorkflowDefinition<Question, string> = {
  name: "choose-language",
  input: questionSchema,
  decompose: (q) => [
    ...q.topics.map((topic) => ({ id: topic, kind: "research", input: { topic } })),
    { id: "comparison", kind: "compare", input: { weights: q.weights }, dependsOn: q.topics },
  ],
  execute: { research, compare },
  // A board of its own: a worker someone started on the default board must not take its subtasks.
  tasks: "demo",
  synthesize: ({ input, results, failures }) => {
    const failed = Object.keys(failures);
    if (!results.comparison) return `No answer to "${input.question}": ${failed.map((id) => `${id} ${failures[id]!.status} (${failures[id]!.reason})`).join("; ")}`;
    const { ranking, scores } = results.comparison as { ranking: string[]; scores: Record<string, number> };
    const best = results[ranking[0]!] as ResearchResult;
    const lines = ranking.map((topic, i) => `  ${i + 1}. ${topic} (${scores[topic]}): ${(results[topic] as ResearchResult).note}`);
    return [`${input.question}`, `Answer: ${best.topic}.`, ...lines].join("\n");
  },
  concurrency: 3,
};

export default workflow;
