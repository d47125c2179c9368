/**
 * decompose → parallel → synthesize: one research subtask per topic, run by `colony worker`
 * processes when they are up (or here when none is), then one answer from every result.
 *
 *   npx colony workflow workflow.ts --input '{"topics":["trails","nests"]}'
 *   npx colony worker --agents agents.ts      (in other terminals, to run the subtasks there)
 */
import { z } from "zod";
import type { WorkflowDefinition } from "../../src/index.ts";
import { research } from "./agents.ts";

const input = z.object({ topics: z.array(z.string().min(1)).min(1) });

const survey: WorkflowDefinition<z.infer<typeof input>, string> = {
  name: "survey",
  input,
  decompose: ({ topics }) => topics.map((topic) => ({ id: topic, kind: "research", input: { topic } })),
  execute: { research },
  synthesize: ({ results, failures }) =>
    [...Object.entries(results).map(([topic, found]) => `${topic}: ${String(found)}`), ...Object.keys(failures).map((topic) => `${topic}: failed`)].join("\n"),
};

export default survey;
