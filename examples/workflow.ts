/**
 * decompose → parallel → synthesize, with the input checked by its schema. With no worker up,
 * the subtasks run here; `colony worker` processes on the same store would take them.
 *
 *   node examples/workflow.ts
 */
import { z } from "zod";
import { createColony, defineSubAgent, memoryBackend } from "../src/index.ts";

const research = defineSubAgent<{ topic: string }, number>({ name: "research", run: (ctx) => ctx.input.topic.length });
const compare = defineSubAgent<{ dependencies: Record<string, number> }, string[]>({
  name: "compare",
  run: (ctx) => Object.entries(ctx.input.dependencies).sort((a, b) => b[1] - a[1]).map(([id]) => id),
});

const colony = createColony({ backend: memoryBackend() });
const choose = colony.workflow({
  name: "choose-language",
  input: z.object({ topics: z.array(z.string()).min(1) }),
  decompose: (q) => [
    ...q.topics.map((topic) => ({ id: topic, kind: "research", input: { topic } })),
    { id: "comparison", kind: "compare", dependsOn: q.topics },
  ],
  execute: { research, compare },
  synthesize: ({ results }) => `ranked: ${(results.comparison as string[]).join(" > ")}`,
  budget: { wallMs: 60_000 },
});
const { result, tasks } = await choose.run({ topics: ["go", "rust", "typescript"] });
console.log(result, `(${tasks.length} subtasks)`);
await colony.close();
