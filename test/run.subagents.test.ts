import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { BudgetExceededError, createColony, memoryBackend, SubAgentError, type Agent, type SubAgent } from "../src/index.ts";
import { CLI } from "./fixtures/cli.ts";

const summarizer: SubAgent<{ text: string }, string> = {
  name: "summarizer",
  async run(ctx) {
    ctx.usage.add({ tokens: 40, costUsd: 0.001 });
    await ctx.board!.write(`summaries/${ctx.input.text}`, ctx.input.text.toUpperCase());
    return ctx.input.text.slice(0, 3);
  },
};

const sleeper: SubAgent = {
  name: "sleeper",
  run: (ctx) => new Promise((resolve) => ctx.signal.addEventListener("abort", () => resolve(null), { once: true })),
};

describe("sub-agents inside a run", () => {
  test("a loop agent spawns children on the run's board; their usage counts in the run's totals", async () => {
    const colony = createColony({ backend: memoryBackend() });
    const lead: Agent = {
      name: "lead",
      async run(ctx) {
        ctx.usage.add({ tokens: 10 });
        const handles = await Promise.all(["alpha", "beta"].map((text) => ctx.spawn(summarizer, { text })));
        const results = await Promise.all(handles.map((h) => h.result));
        await ctx.board.write("done", results);
      },
    };
    const result = await colony.run({ board: "sub", agents: [lead], goal: (v) => v.has("done") });
    assert.equal(result.stopReason, "goal");
    const board = await colony.board("sub");
    assert.deepEqual(board.view().read("done")?.value, ["alp", "bet"]);
    // A sub-agent writes as its name and its id, so it cannot pass for the run's own agents.
    assert.match(board.view().read("summaries/alpha")?.author ?? "", /^summarizer@agent-/);
    assert.equal(result.totalTokens, 10 + 2 * 40, "children's usage counts for the run");
    assert.equal(result.steps[0]!.fired[0]!.tokens, 10, "the step record keeps the agent's own usage");
    await colony.close();
  });

  test("a child's usage past the run's token budget is refused, and the run stops with budget", async () => {
    const colony = createColony({ backend: memoryBackend() });
    let refused: unknown;
    const lead: Agent = {
      name: "lead",
      trigger: () => true,
      async run(ctx) {
        const child = await ctx.spawn(summarizer, { text: "gamma" });
        try {
          await child.result;
        } catch (error) {
          refused = error;
          throw error;
        }
      },
    };
    const result = await colony.run({ board: "budget", agents: [lead], budget: { tokens: 100 }, maxSteps: 10 });
    assert.equal(result.stopReason, "budget");
    assert.ok(refused instanceof SubAgentError && refused.reason === "budget", `child ended over budget, got ${String(refused)}`);
    assert.ok(result.totalTokens <= 100, `nothing past the limit was counted (${result.totalTokens})`);
    await colony.close();
  });

  test("an agent's own usage past its budget is a BudgetExceededError on its step, and the run stops with budget", async () => {
    const colony = createColony({ backend: memoryBackend() });
    let thrown: unknown;
    const spender: Agent = {
      name: "spender",
      trigger: () => true,
      budget: { tokens: 25 },
      async run(ctx) {
        try {
          ctx.usage.add({ tokens: 10 });
        } catch (error) {
          thrown = error;
          throw error;
        }
        await ctx.board.write(`tick-${ctx.step}`, ctx.step);
      },
    };
    const result = await colony.run({ board: "own", agents: [spender], maxSteps: 20 });
    assert.equal(result.stopReason, "budget");
    assert.ok(thrown instanceof BudgetExceededError);
    assert.equal(result.totalTokens, 20, "the refused charge counted nothing");
    assert.equal(result.steps.length, 3);
    await colony.close();
  });

  test("the run's step budget stops it with budget before the step that would cross it", async () => {
    const colony = createColony({ backend: memoryBackend() });
    const result = await colony.run({
      board: "steps",
      agents: [{ name: "ticker", trigger: () => true, run: async (ctx) => void (await ctx.board.write("t", ctx.step)) }],
      budget: { steps: 4 },
    });
    assert.equal(result.stopReason, "budget");
    assert.equal(result.steps.length, 4);
    await colony.close();
  });

  test("children still running when the run ends are terminated with it", async () => {
    const colony = createColony({ backend: memoryBackend() });
    let childId = "";
    const result = await colony.run({
      board: "orphans",
      agents: [
        {
          name: "starter",
          async run(ctx) {
            childId = (await ctx.spawn(sleeper, null)).id;
          },
        },
      ],
    });
    assert.equal(result.stopReason, "quiescence");
    const [record] = await colony.agents.list();
    assert.equal(record!.id, childId);
    assert.equal(record!.state, "terminated");
    await colony.close();
  });

  test("spawn depth under a run's budget is refused before the child starts", async () => {
    const colony = createColony({ backend: memoryBackend() });
    const nested: SubAgent = {
      name: "nested",
      async run(ctx) {
        return ctx.spawn(nested, null).then((h) => h.result);
      },
    };
    let error: unknown;
    await colony.run({
      board: "depth",
      budget: { depth: 2 },
      agents: [
        {
          name: "root",
          async run(ctx) {
            try {
              await (await ctx.spawn(nested, null)).result;
            } catch (caught) {
              error = caught;
            }
          },
        },
      ],
    });
    // root's child (level 1) spawns level 2, whose own spawn (level 3) is refused; that failure travels up.
    assert.ok(error instanceof SubAgentError, String(error));
    assert.match(String((error as Error).message), /depth/);
    const records = await colony.agents.list();
    assert.equal(records.length, 2, "the refused third level was never registered");
    await colony.close();
  });
});

describe("colony run --step", () => {
  test("pauses before every step, shows what changed, and goes on at each Enter", () => {
    const essay = fileURLToPath(new URL("../src/demo/essay.ts", import.meta.url));
    const result = spawnSync(process.execPath, [CLI, "run", essay, "--memory", "--step"], { input: "\n".repeat(10), encoding: "utf8" });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr.match(/Enter to go on/g)?.length, 5, "one pause per step");
    assert.match(result.stderr, /\+ \[topic\] v1 by seed/);
    assert.match(result.stderr, /\+ \[draft\] v2 by writer/);
    assert.match(result.stdout, /stopped: goal · 5 steps/);
  });
});
