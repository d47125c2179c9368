/**
 * decompose → parallel → synthesize: a question becomes three research subtasks and a comparison
 * that depends on them; workers run the research at the same time, then the comparison, and the
 * synthesis writes the answer from every result.
 */
import type { WorkflowDefinition } from "../runtime/tasks/workflow.ts";
import { compare, research, type ResearchResult } from "./workflow-agents.ts";

export interface Question {
  question: string;
  topics: string[];
  weights: Record<string, number>;
}

export const QUESTION: Question = {
  question: "Which language should our new command-line tool be written in?",
  topics: ["go", "rust", "typescript"],
  weights: { speed: 1, safety: 1.5, ecosystem: 1.2 },
};

const workflow: WorkflowDefinition<Question, string> = {
  name: "choose-language",
  decompose: (q) => [
    ...q.topics.map((topic) => ({ id: topic, kind: "research", input: { topic } })),
    { id: "comparison", kind: "compare", input: { weights: q.weights }, dependsOn: q.topics },
  ],
  execute: { research, compare },
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
