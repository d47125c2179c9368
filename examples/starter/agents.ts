/**
 * Agents one export per task kind, as `colony worker --agents agents.ts` loads them. These look
 * things up in a table; put a model call in their place when you have one.
 */
import { defineSubAgent } from "../../src/index.ts";

const KNOWN: Record<string, string> = {
  trails: "ants lay pheromone on the way back from food, and shorter trails build up faster",
  nests: "scouts choose a new nest by quorum: recruitment speeds up past a threshold",
  tasks: "workers switch tasks by local cues such as how often they meet others",
};

export const research = defineSubAgent<{ topic: string }, string>({
  name: "research",
  async run(ctx) {
    ctx.log(`looking up ${ctx.input.topic}`);
    return KNOWN[ctx.input.topic] ?? `nothing known about ${ctx.input.topic} yet`;
  },
});
