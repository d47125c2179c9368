/**
 * The researcher → critic → writer loop from the blackboard literature, with deterministic
 * agents: nobody calls anybody; each agent fires when the board shows work for it.
 *
 * A stand-in for model usage: each agent reports the characters it produced / 4 as tokens,
 * which is what a model call of that size would cost in tokens, so the run's accounting shows.
 */
import { defineAgent, defineRun } from "../core/define.ts";

interface Critique {
  draftVersion: number;
  missing: string[];
  approved: boolean;
}

const FACTS = [
  "foragers lay pheromone on the way back from food",
  "shorter paths are walked more often per minute, so their pheromone builds up faster",
  "pheromone evaporates, so longer paths fade",
  "each ant follows stronger trails with higher probability",
];

const tokensFor = (text: string) => Math.ceil(text.length / 4);

const researcher = defineAgent({
  name: "researcher",
  trigger: (view) => view.has("topic") && !view.has("notes"),
  run: async (ctx) => {
    await ctx.board.write("notes", FACTS, { tags: ["research"] });
    ctx.log(`collected ${FACTS.length} facts`);
    return { usage: { tokens: tokensFor(FACTS.join(" ")), costUsd: 0.0004 } };
  },
});

const writer = defineAgent({
  name: "writer",
  trigger: (view) => {
    if (!view.has("notes")) return false;
    const draft = view.read("draft");
    const critique = view.read<Critique>("critique")?.value;
    return draft === undefined || (critique?.draftVersion === draft.version && !critique.approved);
  },
  run: async (ctx) => {
    const notes = ctx.view.read<string[]>("notes")!.value;
    const critique = ctx.view.read<Critique>("critique")?.value;
    // A first draft uses the first half of the notes; a revision adds what the critic missed.
    const used = critique ? [...notes.slice(0, 2), ...critique.missing] : notes.slice(0, 2);
    const text = `Ant colonies find short paths without a map: ${used.join("; ")}.`;
    await ctx.board.write("draft", text, { tags: ["essay"] });
    return { usage: { tokens: tokensFor(text), costUsd: 0.0006 } };
  },
});

const critic = defineAgent({
  name: "critic",
  trigger: (view) => {
    const draft = view.read("draft");
    return draft !== undefined && view.read<Critique>("critique")?.value.draftVersion !== draft.version;
  },
  run: async (ctx) => {
    const draft = ctx.view.read<string>("draft")!;
    const notes = ctx.view.read<string[]>("notes")!.value;
    const missing = notes.filter((fact) => !draft.value.includes(fact));
    const critique: Critique = { draftVersion: draft.version, missing, approved: missing.length === 0 };
    await ctx.board.write("critique", critique, { tags: ["review"] });
    ctx.log(critique.approved ? "approved" : `missing ${missing.length} of ${notes.length} facts`);
    return { usage: { tokens: tokensFor(JSON.stringify(critique)), costUsd: 0.0002 } };
  },
});

export default defineRun({
  name: "essay",
  board: "essay",
  seed: { topic: "How do ant colonies find the shortest path to food?" },
  agents: [researcher, writer, critic],
  goal: (view) => view.read<Critique>("critique")?.value.approved === true,
  maxSteps: 20,
});
