/** A module of agents that threads and processes load by themselves (see spawn.ts). */
import { defineSubAgent } from "../src/index.ts";

export const summarize = defineSubAgent<{ text: string }, string>({
  name: "summarize",
  async run(ctx) {
    ctx.usage.add({ tokens: 120 });
    ctx.emit("progress", { done: 0.5 });
    return ctx.input.text.slice(0, 40);
  },
});
