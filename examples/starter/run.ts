/**
 * A stigmergic run: a researcher writes findings tagged with a confidence, a critic approves the
 * confident ones by tag, a writer reports once nothing awaits review. No agent calls another.
 *
 *   npx colony run run.ts --fresh
 */
import { defineAgent, defineRun } from "../../src/index.ts";

const researcher = defineAgent({
  name: "researcher",
  trigger: (view) => view.keys("findings/").length === 0,
  run: async (ctx) => {
    await ctx.board.write("findings/trails", "shorter trails build up pheromone faster", { tags: { confidence: 0.9, status: "pending_review" } });
    await ctx.board.write("findings/luck", "ants find food by luck alone", { tags: { confidence: 0.3, status: "pending_review" } });
  },
});

const critic = defineAgent({
  name: "critic",
  trigger: (view) => view.readByTag("status", (v) => v === "pending_review").length > 0,
  run: async (ctx) => {
    for (const finding of ctx.view.readByTag("status", (v) => v === "pending_review")) {
      const status = Number(finding.tags.confidence ?? 0) > 0.7 ? "approved" : "rejected";
      await ctx.board.write(finding.key, finding.value, { tags: { ...finding.tags, status }, expectedVersion: finding.version });
    }
  },
});

const writer = defineAgent({
  name: "writer",
  trigger: (view) => view.keys("findings/").length > 0 && view.readByTag("status", (v) => v === "pending_review").length === 0 && !view.has("report"),
  run: async (ctx) => {
    const approved = ctx.view.readByTag("status", (v) => v === "approved").map((e) => String(e.value));
    await ctx.board.write("report", approved.join("; "));
  },
});

export default defineRun({ board: "starter", agents: [researcher, critic, writer], goal: (view) => view.has("report"), maxSteps: 10 });
