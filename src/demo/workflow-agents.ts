/**
 * The agents of the workflow demo, one export per task kind, so that `colony worker --agents`
 * can load them in a process of its own. Deterministic: canned findings, no model.
 */
import { defineSubAgent } from "../core/define.ts";

const FINDINGS: Record<string, { speed: number; safety: number; ecosystem: number; note: string }> = {
  go: { speed: 8, safety: 7, ecosystem: 8, note: "one static binary, fast builds, goroutines for I/O" },
  rust: { speed: 10, safety: 10, ecosystem: 7, note: "the fastest and safest, at the price of longer builds and a steeper curve" },
  typescript: { speed: 6, safety: 6, ecosystem: 10, note: "npm's ecosystem and the quickest start, with a runtime to ship" },
};

export interface ResearchResult {
  topic: string;
  speed: number;
  safety: number;
  ecosystem: number;
  note: string;
  by: string;
}

/** Looks one language up; stands in for a model call that takes a while, so the three overlap. */
export const research = defineSubAgent<{ topic: string }, ResearchResult>({
  name: "research",
  async run(ctx) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const found = FINDINGS[ctx.input.topic];
    if (!found) throw new Error(`nothing known about ${JSON.stringify(ctx.input.topic)}`);
    return { topic: ctx.input.topic, ...found, by: `pid ${process.pid}` };
  },
});

/** Ranks what the research found, weighting by the question's priorities. */
export const compare = defineSubAgent<{ input: { weights: Record<string, number> }; dependencies: Record<string, ResearchResult> }, { ranking: string[]; scores: Record<string, number> }>({
  name: "compare",
  run(ctx) {
    const { weights } = ctx.input.input;
    const scores: Record<string, number> = {};
    for (const found of Object.values(ctx.input.dependencies)) {
      scores[found.topic] = Math.round((found.speed * (weights.speed ?? 1) + found.safety * (weights.safety ?? 1) + found.ecosystem * (weights.ecosystem ?? 1)) * 10) / 10;
    }
    const ranking = Object.keys(scores).sort((a, b) => scores[b]! - scores[a]! || a.localeCompare(b));
    return { ranking, scores };
  },
});
