/**
 * A run: two agents that fire when the board shows work for them, until the goal holds.
 *
 *   npx colony run examples/essay-run.ts --fresh
 */
import { defineRun } from "../src/index.ts";

export default defineRun({
  board: "first-run",
  seed: { topic: "How do ant colonies find the shortest path to food?" },
  agents: [
    {
      name: "researcher",
      trigger: (v) => v.has("topic") && !v.has("notes"),
      run: async (ctx) => {
        await ctx.board.write("notes", ["shorter trails build up pheromone faster"]);
        ctx.usage.add({ tokens: 120 });
      },
    },
    {
      name: "writer",
      trigger: (v) => v.has("notes") && !v.has("draft"),
      run: async (ctx) => ({ writes: { draft: `About ${String(ctx.view.read("topic")?.value)}` } }),
    },
  ],
  goal: (v) => v.has("draft"),
});
