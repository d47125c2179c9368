/**
 * Fan-out and fan-in on a board: three researchers fire in the same step, each on its own
 * subtopic, and a synthesizer waits until every finding is there. No agent knows the others.
 */
import type { Agent } from "../core/run-types.ts";
import { defineAgent, defineRun } from "../core/define.ts";

const SUBTOPICS = {
  trails: "pheromone trails reinforce the paths that return food fastest",
  division: "workers switch tasks by local cues such as encounter rates",
  nests: "scouts choose a new nest by quorum: recruitment speeds up past a threshold",
};

type Subtopic = keyof typeof SUBTOPICS;

const researcherFor = (subtopic: Subtopic): Agent =>
  defineAgent({
    name: `researcher-${subtopic}`,
    trigger: (view) => view.has("question") && !view.has(`findings/${subtopic}`),
    run: async (ctx) => {
      // Stands in for a model call that takes a while; the three run at the same time.
      await new Promise((resolve) => setTimeout(resolve, 20));
      const finding = SUBTOPICS[subtopic];
      await ctx.board.write(`findings/${subtopic}`, finding, { tags: ["finding"] });
      return { usage: { tokens: Math.ceil(finding.length / 4), costUsd: 0.0003 } };
    },
  });

const synthesizer = defineAgent({
  name: "synthesizer",
  trigger: (view) => view.readByTag("finding").length === Object.keys(SUBTOPICS).length && !view.has("summary"),
  run: async (ctx) => {
    const findings = ctx.view.readByTag("finding").map((e) => `${e.key.slice("findings/".length)}: ${String(e.value)}`);
    const summary = `Colonies decide without a leader. ${findings.join(". ")}.`;
    await ctx.board.write("summary", summary, { tags: ["answer"] });
    return { usage: { tokens: Math.ceil(summary.length / 4), costUsd: 0.0005 } };
  },
});

export default defineRun({
  name: "survey",
  board: "survey",
  seed: { question: "How does a colony decide anything without a leader?" },
  agents: [...(Object.keys(SUBTOPICS) as Subtopic[]).map(researcherFor), synthesizer],
  goal: (view) => view.has("summary"),
  maxSteps: 10,
});
