/**
 * Model-backed agents on a scripted model (the AI SDK's mock, through the real generateText):
 * turns with tool calls in every isolation, structured output, usage and price, budgets refusing a
 * call before it is made, steering between steps, terminate aborting the call in flight, helpers
 * spawned by the model, permissions, and the same agent as a loop agent and a task worker's agent.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { tool } from "ai";
import { z } from "zod";
import { BUILT_IN_SKILLS, ConfigError, createColony, defineModelAgent, defineSkill, memoryBackend, SubAgentError, subtasksSchema, type ModelCallRecord, type SubAgentEvent } from "../src/index.ts";
import { progressText } from "../src/cli/format.ts";
import { BUILT_IN_SKILL_NAMES } from "../src/models/skills.ts";
import { scriptedModel } from "../src/testing/index.ts";
import { join } from "node:path";
import { runCli } from "./fixtures/cli.ts";
import { colonyPerFile, waitFor } from "./fixtures/helpers.ts";
import { delegator, modelRef, structured, writer } from "./fixtures/model-agents.ts";

const T = { timeout: 30_000 };
const env = colonyPerFile("colony-models-");

async function calls(events: AsyncIterable<SubAgentEvent>): Promise<ModelCallRecord[]> {
  const found: ModelCallRecord[] = [];
  for await (const event of events) {
    if (event.type === "emit" && event.name === "model.call") found.push(event.data as ModelCallRecord);
    if (event.type === "subagent.completed" || event.type === "subagent.failed") break;
  }
  return found;
}

for (const isolation of ["inline", "thread", "process"] as const) {
  describe(`a model agent as a ${isolation} sub-agent`, () => {
    it("runs one model step per turn: a tool call writes the board as the agent, then it answers", T, async () => {
      const handle = await env.colony.spawn(isolation === "inline" ? writer : modelRef("writer"), "Note that it went well.", { isolation, board: `models-${isolation}` });
      const seen = calls(handle.events);
      assert.equal(await handle.result, "wrote it");
      const records = await seen;
      assert.equal(records.length, 2);
      assert.deepEqual(records[0]!.toolCalls.map((c) => c.name), ["board_write"]);
      assert.equal(records[1]!.toolCalls.length, 0);
      const entry = await (await env.colony.board(`models-${isolation}`)).get("notes/writer");
      assert.deepEqual(entry?.value, { ok: true });
      assert.equal(entry?.author, `writer@${handle.id}`);
      // 80+10 and 100+20 tokens; priced at $1 / $2 per million.
      const row = (await env.colony.agents.list()).find((r) => r.id === handle.id)!;
      assert.equal(row.usage.tokens, 210);
      assert.equal(row.usage.turns, 2);
      assert.ok(Math.abs(row.usage.costUsd - (180 * 1 + 30 * 2) / 1e6) < 1e-12);
    });

    it("starts a helper for a sub-goal and answers once the helper's result reaches it", T, async () => {
      const handle = await env.colony.spawn(modelRef("planner"), "Plan the work.", { isolation });
      assert.equal(await handle.result, "final: helper found 42");
      const rows = await env.colony.agents.list();
      const helper = rows.find((r) => r.parentId === handle.id);
      assert.equal(helper?.name, "scout");
      assert.equal(helper?.state, "succeeded");
      // What each spent: the helper's tokens are in the planner's tree total, not in its own.
      const tree = await waitFor(async () => {
        const usage = await env.colony.agents.usage(handle.id);
        return usage.children[0]?.own.tokens ? usage : undefined;
      }, 20_000, "the helper's usage in the registry");
      assert.equal(tree.children[0]!.name, "scout");
      assert.ok(tree.own.tokens > 0);
      assert.equal(tree.total.tokens, tree.own.tokens + tree.children[0]!.total.tokens);
      assert.ok(tree.own.turns >= 2, "spawned, then answered");
      const shown = await runCli(["agents", "--tree", handle.id, "--db", join(env.dir, "colony.db")]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, new RegExp(`${handle.id} +planner .* ${tree.own.tokens} .* ${tree.total.tokens} `));
      assert.match(shown.stdout, /\n\S+ + {2}scout +succeeded/);
    });
  });
}

describe("a model agent's task skills", () => {
  it("submit a task for a worker and wait for its result, inline and from a child process", T, async () => {
    const worker = await env.colony.worker({ agents: { research: { name: "research", run: (ctx) => `${(ctx.input as { q: string }).q} live in colonies` } } });
    try {
      for (const isolation of ["inline", "process"] as const) {
        const handle = await env.colony.spawn(isolation === "inline" ? delegator : modelRef("delegator"), "Find out about ants.", { isolation });
        assert.equal(await handle.result, "the worker said: ants live in colonies");
      }
      const done = await (await env.colony.tasks()).list({ status: "succeeded" });
      assert.equal(done.filter((t) => t.kind === "research").length, 2);
    } finally {
      await worker.stop();
    }
  });
});

describe("model agents", () => {
  it("parse structured output, wrapping a schema that is not an object", T, async () => {
    const handle = await env.colony.spawn(structured, { topic: "ants" });
    assert.deepEqual(await handle.result, [{ id: "a", kind: "research" }]);
  });

  it("show each model call in a worker's progress line", T, () => {
    const call: ModelCallRecord = { agent: "a", model: "openai:gpt-4.1-mini", turn: 2, inputTokens: 1200, outputTokens: 80, cachedTokens: 0, reasoningTokens: 0, costUsd: 0.000608, ms: 812.4, retries: 0, finishReason: "tool-calls", toolCalls: [{ name: "board_write", args: '{"key":"notes","value":"x"}' }] };
    assert.equal(progressText({ type: "emit", name: "model.call", data: call }), 'openai:gpt-4.1-mini turn 2: 1200 in / 80 out, $0.00061, 812 ms → board_write({"key":"notes","value":"x"})');
    assert.match(progressText({ type: "emit", name: "model.call", data: { ...call, costUsd: null, toolCalls: [] } }), /80 out, cost unknown, 812 ms$/);
  });

  it("price calls from the table, and say when a model's price is unknown", T, async () => {
    const priced = defineModelAgent({ name: "priced", model: scriptedModel([{ text: "hi", usage: { input: 1000, output: 500, cached: 400 } }], { provider: "openai", modelId: "gpt-4.1-mini" }) });
    const handle = await env.colony.spawn(priced, "hello");
    const seen = calls(handle.events);
    await handle.result;
    const [call] = await seen;
    // 600 fresh at $0.40, 400 cached at $0.10, 500 out at $1.60 per million.
    assert.ok(Math.abs(call!.costUsd! - (600 * 0.4 + 400 * 0.1 + 500 * 1.6) / 1e6) < 1e-12);
    assert.equal(call!.cachedTokens, 400);

    const unknown = defineModelAgent({ name: "unknown", model: scriptedModel([{ text: "hi" }], { provider: "acme", modelId: "x1" }) });
    const second = await env.colony.spawn(unknown, "hello");
    const [unpriced] = await calls(second.events);
    assert.equal(unpriced!.costUsd, null);
    const underDollars = await env.colony.spawn(unknown, "hello", { budget: { costUsd: 1 } });
    await assert.rejects(underDollars.result, (error: unknown) => error instanceof SubAgentError && /price of acme:x1 is unknown/.test(error.message));
  });

  it("refuse a call whose estimate does not fit the token budget, before calling", T, async () => {
    const model = scriptedModel([{ text: "never" }]);
    const agent = defineModelAgent({ name: "thrifty", model, maxOutputTokens: 500 });
    const handle = await env.colony.spawn(agent, "hello", { budget: { tokens: 100 } });
    await assert.rejects(handle.result, (error: unknown) => error instanceof SubAgentError && error.reason === "budget");
    assert.equal(model.calls, 0);
  });

  it("stop a tree whose spending crosses the budget between calls", T, async () => {
    const model = scriptedModel([{ toolCalls: [{ name: "shout", args: { word: "a" } }], usage: { input: 60, output: 10 } }]);
    const shout = defineSkill({ name: "shout", description: "Shout", input: z.object({ word: z.string() }), execute: ({ word }) => word.toUpperCase() });
    const agent = defineModelAgent({ name: "loud", model, skills: [shout], maxOutputTokens: 1 });
    const handle = await env.colony.spawn(agent, "go", { budget: { tokens: 150 } });
    await assert.rejects(handle.result, (error: unknown) => error instanceof SubAgentError && error.reason === "budget");
    assert.equal(model.calls, 2);
  });

  it("count a call that crossed the budget, then stop the agent for its budget", T, async () => {
    for (const isolation of ["inline", "thread"] as const) {
      const model = scriptedModel([{ text: "expensive", usage: { input: 90, output: 30 } }]);
      const agent = isolation === "inline" ? defineModelAgent({ name: "pricey", model, maxOutputTokens: 1 }) : modelRef("pricey");
      const handle = await env.colony.spawn(agent, "hi", { budget: { tokens: 100 }, isolation });
      await assert.rejects(handle.result, (error: unknown) => error instanceof SubAgentError && error.reason === "budget");
      const row = await waitFor(async () => (await env.colony.agents.list()).find((r) => r.id === handle.id && r.usage.tokens > 0), 20_000, "the spent tokens in the registry");
      assert.equal(row.usage.tokens, 120, `${isolation}: the call was made, so its tokens count`);
    }
  });

  it("stop a tree mid-call when its wall-time budget runs out, aborting the request in flight", T, async () => {
    const model = scriptedModel([{ text: "too slow" }], { latencyMs: 600_000 });
    const slow = defineModelAgent({ name: "slow-child", model });
    const parent = defineModelAgent({
      name: "parent",
      model: scriptedModel([{ toolCalls: [{ name: "start", args: {} }] }, { text: "never" }]),
      skills: [
        defineSkill({
          name: "start",
          description: "Start the slow helper and wait for it",
          input: z.object({}),
          execute: async (_args, ctx) => (await ctx.spawn(slow, "go")).result,
        }),
      ],
    });
    const handle = await env.colony.spawn(parent, "go", { budget: { wallMs: 500 } });
    await assert.rejects(handle.result, (error: unknown) => error instanceof SubAgentError && error.reason === "budget");
    await waitFor(() => model.doGenerateCalls[0]?.abortSignal?.aborted, 20_000, "the child's call to be aborted");
  });

  it("hear a steering message between steps", T, async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const waiting = new Promise<void>((resolve) => (started = resolve));
    const pause = defineSkill({
      name: "pause",
      description: "Wait",
      input: z.object({}),
      execute: async () => {
        started();
        await gate;
        return "ok";
      },
    });
    const model = scriptedModel([{ toolCalls: [{ name: "pause", args: {} }] }, { text: "done" }]);
    const handle = await env.colony.spawn(defineModelAgent({ name: "steered", model, skills: [pause] }), "start");
    await waiting;
    await handle.signal("focus on the ants");
    release();
    assert.equal(await handle.result, "done");
    assert.match(JSON.stringify(model.doGenerateCalls[1]!.prompt), /\[message from [^\]]*\]: focus on the ants/);
  });

  it("abort the call in flight when terminated", T, async () => {
    const model = scriptedModel([{ text: "too late" }], { latencyMs: 600_000 });
    const handle = await env.colony.spawn(defineModelAgent({ name: "slow", model }), "hello");
    await waitFor(() => model.calls === 1, 20_000, "the call to start");
    await handle.terminate();
    await assert.rejects(handle.result, (error: unknown) => error instanceof SubAgentError && error.reason === "terminated");
    assert.equal(model.doGenerateCalls[0]!.abortSignal?.aborted, true);
  });

  it("take a plain function with a zod schema as a tool, and an AI SDK tool, unchanged", T, async () => {
    const model = scriptedModel([], {
      fallback: (call, options) => {
        const text = JSON.stringify(options.prompt);
        if (call === 0) return { toolCalls: [{ name: "add", args: { a: 2, b: 3 } }, { name: "upper", args: { text: "ant" } }] };
        return { text: `${/"value":5/.test(text) ? "5" : "?"} ${text.includes("ANT") ? "ANT" : "?"}` };
      },
    });
    const agent = defineModelAgent({
      name: "plain",
      model,
      tools: {
        add: { description: "Add two numbers", input: z.object({ a: z.number(), b: z.number() }), execute: ({ a, b }: { a: number; b: number }) => a + b },
        upper: tool({ description: "Upper-case", inputSchema: z.object({ text: z.string() }), execute: async ({ text }) => text.toUpperCase() }),
      },
    });
    assert.equal(await (await env.colony.spawn(agent, "go")).result, "5 ANT");
  });

  it("offer the model only the tools its permissions allow", T, async () => {
    const model = scriptedModel([{ text: "fine" }]);
    const agent = defineModelAgent({ name: "narrow", model, skills: ["board.read", "board.write", "agents.list"] });
    const handle = await env.colony.spawn(agent, "hi", { permissions: { tools: ["board.read"] } });
    await handle.result;
    assert.deepEqual(model.doGenerateCalls[0]!.tools?.map((t) => t.name), ["board_read"]);
  });

  it("refuse an unknown provider or skill when defined, and a missing key before any call", T, async () => {
    assert.throws(() => defineModelAgent({ name: "x", model: "opena:gpt-4.1" }), (e: unknown) => e instanceof ConfigError && /unknown provider "opena"/.test(e.message));
    assert.throws(() => defineModelAgent({ name: "x", model: "gpt-4.1" }), /name it as provider:model/);
    assert.throws(() => defineModelAgent({ name: "x", model: "openai:gpt-4.1", skills: ["board.reed"] }), /no built-in skill "board.reed"/);
    assert.throws(() => defineModelAgent({ name: "x", model: scriptedModel([]), skills: ["agents.spawn"] }), /agents.spawn starts helpers that find the model by name/);
    // The names checked when an agent is defined are the skills there are (defined apart, loaded on use).
    assert.deepEqual(Object.keys(BUILT_IN_SKILLS).sort(), [...BUILT_IN_SKILL_NAMES].sort());
    const saved = process.env.OPENAI_API_KEY;
    delete process.env.OPENAI_API_KEY;
    try {
      const handle = await env.colony.spawn(defineModelAgent({ name: "keyless", model: "openai:gpt-4.1" }), "hi");
      await assert.rejects(handle.result, /set OPENAI_API_KEY/);
    } finally {
      if (saved !== undefined) process.env.OPENAI_API_KEY = saved;
    }
  });

  it("fire as a loop agent: its trigger decides, it sees the board, its answer is written", T, async () => {
    const colony = createColony({ backend: memoryBackend() });
    try {
      const model = scriptedModel([{ text: "Needs a conclusion.", usage: { input: 50, output: 5 } }]);
      const critic = defineModelAgent({ name: "critic", model, trigger: (view) => view.has("draft") && !view.has("review"), writes: "review" });
      const result = await colony.run({ board: "essay", seed: { draft: "Ants are social." }, agents: [critic], goal: (view) => view.has("review") });
      assert.equal(result.stopReason, "goal");
      const review = await (await colony.board("essay")).get("review");
      assert.equal(review?.value, "Needs a conclusion.");
      assert.equal(review?.author, "critic");
      const fired = result.steps.flatMap((s) => s.fired).find((f) => f.agent === "critic")!;
      assert.equal(fired.tokens, 55);
      assert.match(fired.logs?.[0] ?? "", /scripted:model turn 1: 50 in \/ 5 out/);
      assert.deepEqual(fired.calls?.map((c) => [c.model, c.inputTokens, c.outputTokens]), [["scripted:model", 50, 5]]);
      const [stored] = (await colony.runs.get(result.runId)).steps.flatMap((s) => s.fired).filter((f) => f.agent === "critic");
      assert.equal(stored?.calls?.[0]?.turn, 1, "the run's stored step keeps the call");
      assert.match(JSON.stringify(model.doGenerateCalls[0]!.prompt), /draft \(version 1, by seed\): Ants are social\./);
    } finally {
      await colony.close();
    }
  });

  it("pause a loop agent between its model steps where the colony steps through turns (colony run --step)", T, async () => {
    const held: { name: string; turn: number }[] = [];
    let release!: () => void;
    const colony = createColony({
      backend: memoryBackend(),
      beforeTurn: (agent) => {
        held.push({ name: agent.name, turn: agent.turn });
        return new Promise<void>((resolve) => (release = resolve));
      },
    });
    try {
      const model = scriptedModel([{ toolCalls: [{ name: "board_read", args: { key: "draft" } }] }, { text: "Fine." }]);
      const critic = defineModelAgent({ name: "critic", model, skills: ["board.read"], writes: "review" });
      const running = colony.run({ board: "stepped", seed: { draft: "Ants." }, agents: [critic], goal: (view) => view.has("review") });
      await waitFor(() => held.length === 1, 20_000, "the pause before the second model step");
      assert.deepEqual(held, [{ name: "critic", turn: 2 }]);
      assert.equal(model.calls, 1, "the second step waits for the pause to end");
      release();
      assert.equal((await running).stopReason, "goal");
      assert.equal(model.calls, 2);
    } finally {
      await colony.close();
    }
  });

  it("decompose and synthesize a workflow, the plan checked against the plan schema", T, async () => {
    const colony = createColony({ backend: memoryBackend() });
    try {
      const plan = [
        { id: "a", kind: "research", input: "ants" },
        { id: "b", kind: "research", input: "bees" },
      ];
      const planModel = scriptedModel([{ object: { result: plan } }]);
      const planner = defineModelAgent({ name: "planner", model: planModel, output: subtasksSchema });
      const writer = defineModelAgent({ name: "writer", model: scriptedModel([], { fallback: (_call, options) => ({ text: JSON.stringify(options.prompt).includes("bees are busy") ? "both found" : "missing" }) }) });
      const flow = colony.workflow({
        name: "study",
        decompose: planner,
        execute: { research: { name: "research", run: (ctx) => `${String(ctx.input)} are busy` } },
        synthesize: writer,
      });
      const run = await flow.run("Study insects");
      assert.equal(run.result, "both found");
      assert.equal(run.tasks.length, 2);
      // The model was asked for the plan's JSON schema, wrapped as { result } (providers want an object).
      const format = planModel.doGenerateCalls[0]!.responseFormat;
      assert.equal(format?.type, "json");
      assert.match(JSON.stringify(format), /"result".*"kind"/);

      const badPlanner = defineModelAgent({ name: "bad", model: scriptedModel([{ object: { result: [{ id: "a" }] } }]), output: subtasksSchema });
      const bad = colony.workflow({ name: "bad", decompose: badPlanner, execute: { research: { name: "research", run: () => "" } }, synthesize: writer });
      await assert.rejects(bad.run("x"), /does not fit the output schema: 0\.kind/);
    } finally {
      await colony.close();
    }
  });

  it("serve as a task worker's agent", T, async () => {
    const colony = createColony({ backend: memoryBackend() });
    try {
      const summarize = defineModelAgent({ name: "summarize", model: scriptedModel([{ text: "short" }]) });
      const worker = await colony.worker({ agents: { summarize } });
      const tasks = await colony.tasks();
      await tasks.submit({ id: "s1", kind: "summarize", input: "A long text about ants." });
      const done = await waitFor(async () => {
        const task = await tasks.get("s1");
        return task?.status === "succeeded" ? task : undefined;
      }, 20_000, "the task to succeed");
      assert.equal(done.result, "short");
      await worker.stop();
    } finally {
      await colony.close();
    }
  });
});
