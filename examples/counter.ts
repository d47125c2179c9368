/**
 * Four agents race to increment one counter with compare-and-set. Every step all four fire at
 * once on the same snapshot; one write per step wins and the others get a version conflict,
 * which the loop records and which they retry on the next step. No update is ever lost.
 *
 *   node src/cli/main.ts run examples/counter.ts --fresh
 */
import { defineAgent, defineRun, type Agent } from "../src/index.ts";

const TARGET = 12;

const incrementer = (name: string): Agent =>
  defineAgent({
    name,
    trigger: (view) => (view.read<number>("count")?.value ?? 0) < TARGET,
    run: async (ctx) => {
      const current = ctx.view.read<number>("count");
      // Write only if nobody has written since our snapshot; otherwise this throws a conflict.
      await ctx.board.write("count", (current?.value ?? 0) + 1, { expectedVersion: current?.version ?? 0 });
    },
  });

export default defineRun({
  board: "counter",
  agents: ["ant-a", "ant-b", "ant-c", "ant-d"].map(incrementer),
  goal: (view) => view.read<number>("count")?.value === TARGET,
  maxSteps: 50,
});
