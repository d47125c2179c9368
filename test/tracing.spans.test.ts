/**
 * OpenTelemetry spans, with the SDK's in-memory exporter registered as an application would: a
 * run with its steps and fires, sub-agents and their turns in every isolation (a child's under
 * its parent's turn), model calls as GenAI `chat` spans and tool calls as `execute_tool` spans.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { SpanStatusCode, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { defineModelAgent, defineRun, type Agent, type SubAgent } from "../src/index.ts";
import { scriptedModel } from "../src/testing/index.ts";
import { colonyPerFile } from "./fixtures/helpers.ts";
import { modelRef, writer } from "./fixtures/model-agents.ts";
import { ref } from "./fixtures/subagents.ts";
import { childrenOf, isChild, only, tracingPerFile } from "./fixtures/tracing.ts";

const T = { timeout: 30_000 };
const env = colonyPerFile("colony-tracing-");
const traces = tracingPerFile();
/** Loaded only by the hosts it runs in: it registers an SDK of its own where it is loaded. */
const TRACED_AGENTS = fileURLToPath(new URL("./fixtures/traced-agents.ts", import.meta.url));
const OTEL_PROBE = new URL("./fixtures/otel-probe.ts", import.meta.url);

/** Runs `fn` in a span of the test's own, as an application's request handler would; its result and the span. */
async function inSpan<T>(fn: () => Promise<T>): Promise<{ value: T; span: ReadableSpan }> {
  return trace.getTracer("test").startActiveSpan("test", async (span) => {
    try {
      return { value: await fn(), span: span as unknown as ReadableSpan };
    } finally {
      span.end();
    }
  });
}

const failed = (span: ReadableSpan) => span.status.code === SpanStatusCode.ERROR;

describe("a run", () => {
  it("is a span with a span per step and per fire; a fire's sub-agents and model calls are under it", T, async () => {
    const helper: SubAgent<string, string> = { name: "helper", run: (ctx) => ctx.input.toUpperCase() };
    const researcher: Agent = {
      name: "researcher",
      trigger: (v) => !v.has("notes"),
      run: async (ctx) => ({ writes: { notes: await (await ctx.spawn(helper, "ants")).result } }),
    };
    const broken: Agent = { name: "broken", run: () => Promise.reject(new Error("broken on purpose")) };
    const summarizer = defineModelAgent({ name: "summarizer", model: scriptedModel([{ text: "short", usage: { input: 12, output: 3 } }]), trigger: (v) => v.has("notes") && !v.has("summary"), writes: "summary" });
    const result = await env.colony.run(defineRun({ board: "traced-run", agents: [researcher, broken, summarizer], goal: (v) => v.has("summary"), maxSteps: 5 }));
    assert.equal(result.stopReason, "goal");

    const spans = await traces.spans();
    const run = only(spans, "colony.run");
    assert.equal(run.attributes["colony.run.id"], result.runId);
    assert.equal(run.attributes["colony.board"], "traced-run");
    assert.equal(run.attributes["colony.run.stop_reason"], "goal");
    const steps = childrenOf(spans, run, "colony.step").sort((a, b) => Number(a.attributes["colony.step.index"]) - Number(b.attributes["colony.step.index"]));
    assert.deepEqual(steps.map((s) => s.attributes["colony.step.index"]), [1, 2]);
    const fires = steps.map((step) => childrenOf(spans, step, "colony.agent.fire").map((f) => f.attributes["colony.agent.name"]).sort());
    assert.deepEqual(fires, [["broken", "researcher"], ["summarizer"]]);

    const [first, second] = steps.map((step) => childrenOf(spans, step, "colony.agent.fire"));
    const brokenFire = first!.find((f) => f.attributes["colony.agent.name"] === "broken")!;
    assert.ok(failed(brokenFire));
    assert.equal(brokenFire.status.message, "broken on purpose");
    const researcherFire = first!.find((f) => f.attributes["colony.agent.name"] === "researcher")!;
    assert.ok(!failed(researcherFire));
    assert.equal(childrenOf(spans, researcherFire, "colony.agent")[0]?.attributes["colony.agent.name"], "helper");
    const chat = only(spans, "chat model");
    assert.ok(isChild(chat, second![0]!));
    assert.equal(chat.attributes["gen_ai.usage.input_tokens"], 12);
    assert.ok(spans.every((s) => s.spanContext().traceId === run.spanContext().traceId));
  });

  it("that ends in error is a failed span", T, async () => {
    const broken: Agent = { name: "broken", trigger: () => true, run: () => Promise.reject(new Error("always")) };
    const result = await env.colony.run(defineRun({ board: "traced-error", agents: [broken], deadlockAfter: 2, maxSteps: 5 }));
    assert.equal(result.stopReason, "error");
    const run = only(await traces.spans(), "colony.run");
    assert.ok(failed(run));
    assert.equal(run.attributes["error.type"], "error");
  });
});

for (const isolation of ["inline", "thread", "process"] as const) {
  describe(`a sub-agent (${isolation})`, () => {
    it("has a span for its life under its spawner's, and its child's is under the turn that spawned it", T, async () => {
      const { value, span: root } = await inSpan(async () => (await env.colony.spawn(ref("chain"), { levels: 1, isolation }, { isolation })).result);
      assert.deepEqual(value, { depth: 0, child: { depth: 1 } });
      const spans = await traces.spans();
      const agents = spans.filter((s) => s.name === "colony.agent");
      assert.equal(agents.length, 2);
      const parent = agents.find((s) => s.attributes["colony.agent.depth"] === 0)!;
      const child = agents.find((s) => s.attributes["colony.agent.depth"] === 1)!;
      assert.ok(isChild(parent, root));
      assert.equal(parent.attributes["colony.agent.isolation"], isolation);
      assert.equal(parent.attributes["colony.agent.name"], "chain");
      assert.equal(parent.attributes["colony.agent.state"], "succeeded");
      const [turn] = childrenOf(spans, parent, "colony.agent.turn");
      assert.equal(turn?.attributes["colony.agent.turn"], 1);
      assert.ok(isChild(child, turn!));
      assert.equal(child.attributes["colony.agent.parent_id"], parent.attributes["colony.agent.id"]);
    });

    it("has a span per turn, and a failure is an error on its last turn and on its life", T, async () => {
      await (await env.colony.spawn(ref("turner"), { maxTurns: 3, pauseMs: 1 }, { isolation })).result;
      let spans = await traces.spans();
      const agent = only(spans, "colony.agent");
      assert.deepEqual(childrenOf(spans, agent, "colony.agent.turn").map((t) => t.attributes["colony.agent.turn"]).sort(), [1, 2, 3]);
      assert.equal(agent.attributes["colony.agent.turns"], 3);

      await assert.rejects((await env.colony.spawn(ref("thrower"), { message: "thrown" }, { isolation })).result);
      spans = (await traces.spans()).filter((s) => s.attributes["colony.agent.name"] === "thrower");
      const thrower = only(spans, "colony.agent");
      assert.ok(failed(thrower) && failed(only(spans, "colony.agent.turn")));
      assert.equal(thrower.status.message, "thrown");
      assert.equal(thrower.attributes["error.type"], "error");
    });

    if (isolation !== "inline") {
      it("runs each turn under its turn's span, which a span made in its own host (by an SDK it registered) is a child of", T, async () => {
        const { value } = await inSpan(async () => (await env.colony.spawn({ module: TRACED_AGENTS, export: "tracedHere" }, undefined, { isolation })).result);
        const turn = only(await traces.spans(), "colony.agent.turn");
        assert.deepEqual(value, { traceId: turn.spanContext().traceId, parentSpanId: turn.spanContext().spanId });
      });

      it("loads no OpenTelemetry in its host when it registers no SDK there", T, async () => {
        assert.equal(await (await env.colony.spawn({ module: OTEL_PROBE, export: "otelLoaded" }, undefined, { isolation })).result, false);
        assert.ok(only(await traces.spans(), "colony.agent.turn"));
      });
    }

    it("has its model's steps as GenAI chat spans under its turns", T, async () => {
      const handle = await env.colony.spawn(isolation === "inline" ? writer : modelRef("writer"), "Note that it went well.", { isolation, board: `traced-${isolation}` });
      assert.equal(await handle.result, "wrote it");
      const spans = await traces.spans();
      const turns = childrenOf(spans, only(spans, "colony.agent"), "colony.agent.turn").sort((a, b) => Number(a.attributes["colony.agent.turn"]) - Number(b.attributes["colony.agent.turn"]));
      const chats = turns.map((turn) => childrenOf(spans, turn, "chat writer"));
      assert.deepEqual(chats.map((c) => c.length), [1, 1]);
      const [call, answer] = chats.map((c) => c[0]!);
      assert.deepEqual(call!.attributes, {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "script",
        "gen_ai.request.model": "writer",
        "gen_ai.response.id": call!.attributes["gen_ai.response.id"],
        "gen_ai.response.model": "writer",
        "gen_ai.response.finish_reasons": ["tool-calls"],
        "gen_ai.usage.input_tokens": 80,
        "gen_ai.usage.output_tokens": 10,
        "colony.model.retries": 0,
      });
      assert.deepEqual([answer!.attributes["gen_ai.usage.input_tokens"], answer!.attributes["gen_ai.usage.output_tokens"]], [100, 20]);
      assert.deepEqual(answer!.attributes["gen_ai.response.finish_reasons"], ["stop"]);
      // Its tools run in its own host: recorded there only if that host registered an SDK.
      if (isolation === "inline") {
        const [tool] = childrenOf(spans, turns[0]!, "execute_tool board.write");
        assert.equal(tool?.attributes["gen_ai.operation.name"], "execute_tool");
        assert.equal(tool?.attributes["gen_ai.tool.name"], "board.write");
        assert.match(String(tool?.attributes["gen_ai.tool.call.id"]), /^call-/);
      }
    });
  });
}

describe("a model call", () => {
  it("that fails is a failed chat span whose error.type is the HTTP status", T, async () => {
    const refused = defineModelAgent({ name: "refused", model: scriptedModel([{ error: { status: 400, message: "bad request" } }], { modelId: "strict" }) });
    await assert.rejects((await env.colony.spawn(refused, "hello")).result);
    const chat = only(await traces.spans(), "chat strict");
    assert.ok(failed(chat));
    assert.equal(chat.attributes["error.type"], "400");
    assert.equal(chat.attributes["gen_ai.provider.name"], "scripted");
  });

  it("and every other span come from the tracer colony, at the package's version", T, async () => {
    await (await env.colony.spawn(ref("echo"), 1)).result;
    const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    const { instrumentationScope } = only(await traces.spans(), "colony.agent");
    assert.deepEqual([instrumentationScope.name, instrumentationScope.version], ["colony", version]);
  });
});
