/**
 * Researcher → critic → writer, as the blackboard design tells it: the researcher writes findings
 * tagged with its confidence and `status: "pending_review"`; the critic selects what awaits review
 * by tag and approves a finding only if its confidence is over 0.7; the writer reports once nothing
 * awaits review. No agent calls another: each fires when the board shows work for it.
 *
 *   npx colony run examples/review.ts --fresh
 */
import { defineAgent, defineRun } from "../src/index.ts";

const FINDINGS = {
  pheromone: { text: "foragers mark the way back to food with pheromone", confidence: 0.92 },
  evaporation: { text: "pheromone evaporates, so long trails fade", confidence: 0.85 },
  telepathy: { text: "ants agree on paths by telepathy", confidence: 0.2 },
};

const researcher = defineAgent({
  name: "researcher",
  trigger: (view) => view.keys("findings/").length === 0,
  run: async (ctx) => {
    for (const [name, { text, confidence }] of Object.entries(FINDINGS)) {
      await ctx.board.write(`findings/${name}`, text, { tags: { confidence, status: "pending_review" } });
    }
  },
});

const critic = defineAgent({
  name: "critic",
  trigger: (view) => view.readByTag("status", (v) => v === "pending_review").length > 0,
  run: async (ctx) => {
    for (const finding of ctx.view.readByTag("status", (v) => v === "pending_review")) {
      const confidence = Number(finding.tags.confidence ?? 0);
      const status = confidence > 0.7 ? "approved" : "rejected";
      // Only if nobody rewrote it since this snapshot: a conflict is retried on a later step.
      await ctx.board.write(finding.key, finding.value, { tags: { ...finding.tags, status }, expectedVersion: finding.version });
    }
  },
});

const writer = defineAgent({
  name: "writer",
  trigger: (view) =>
    view.keys("findings/").length > 0 && view.readByTag("status", (v) => v === "pending_review").length === 0 && !view.has("report"),
  run: async (ctx) => {
    const approved = ctx.view.readByTag("status", (v) => v === "approved").map((e) => String(e.value));
    await ctx.board.write("report", `Ants find short paths because ${approved.join(", and ")}.`, { tags: { status: "final" } });
  },
});

export default defineRun({
  board: "review",
  agents: [researcher, critic, writer],
  goal: (view) => view.has("report"),
  maxSteps: 10,
});
