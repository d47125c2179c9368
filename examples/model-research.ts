/**
 * A research workflow on model agents: a planner splits the question into topics (its answer
 * checked by a zod schema), a researcher per topic runs in parallel on the task board, and a
 * writer answers from the findings. COLONY_EXAMPLE_MODEL names the model ("openai:gpt-4.1-mini"
 * with OPENAI_API_KEY set, "ollama:llama3.2", …); without it, scripted stand-ins answer, offline.
 *
 *   node examples/model-research.ts
 */
import { z } from "zod";
import { createColony, defineModelAgent, memoryBackend } from "../src/index.ts";
import { scriptedModel, type ScriptedReply } from "../src/testing/index.ts";

/** The model to use, or a scripted one that answers from what it is asked. */
const model = (offline: (asked: string) => ScriptedReply) =>
  process.env.COLONY_EXAMPLE_MODEL ?? scriptedModel([], { fallback: (_call, { prompt }) => offline(JSON.stringify(prompt)) });

const planner = defineModelAgent({
  name: "planner",
  model: model(() => ({ object: { topics: ["pheromone trails", "evaporation"] } })),
  instructions: 'Split the question into 2 or 3 research topics of a few words. Answer as JSON: {"topics": ["…"]}.',
  output: z.object({ topics: z.array(z.string()).min(2).max(3) }),
});

const researcher = defineModelAgent({
  name: "researcher",
  model: model((asked) => ({ text: asked.includes("trails") ? "Ants lay pheromone on the way back from food." : "Pheromone evaporates, so long trails fade." })),
  instructions: "Answer in one sentence with what is known about the topic, as it bears on the question.",
});

const writer = defineModelAgent({
  name: "writer",
  model: model(() => ({ text: "Short trails are walked more often, so their pheromone builds up while long ones fade." })),
  instructions: "Answer the question in one or two sentences from the findings you are given.",
});

const colony = createColony({ backend: memoryBackend() });
const research = colony.workflow({
  name: "research",
  input: z.object({ question: z.string() }),
  decompose: async ({ question }) => {
    const { topics } = await (await colony.spawn(planner, question)).result;
    console.log(`plan: ${topics.join(", ")}`);
    return topics.map((topic, i) => ({ id: `topic-${i + 1}`, kind: "research", input: `${question} Topic: ${topic}.` }));
  },
  execute: { research: researcher },
  synthesize: writer, // gets { input, results, failures } as JSON
  budget: { tokens: 50_000, wallMs: 300_000 }, // tokens per agent run, wallMs for the whole workflow
});
const { result, tasks } = await research.run({ question: "How do ants find the shortest path to food?" });
for (const task of tasks) console.log(`${task.id.split(".").pop()}: ${String(task.result)}`);
console.log(`answer: ${result}`);
await colony.close();
