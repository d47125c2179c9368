/**
 * With no OpenTelemetry SDK registered, tracing costs nothing and changes nothing: runs, sub-agents
 * in every isolation, model and tool calls and tasks work as before, tasks carry no trace
 * context, Colony registers nothing of OpenTelemetry's, and a thread or process host does not
 * even load the API.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { trace } from "@opentelemetry/api";
import { defineModelAgent, defineRun, type SubAgent } from "../src/index.ts";
import { tracing } from "../src/core/tracing.ts";
import { scriptedModel } from "../src/testing/index.ts";
import { colonyPerFile } from "./fixtures/helpers.ts";
import { writer } from "./fixtures/model-agents.ts";
import { ref } from "./fixtures/subagents.ts";

const T = { timeout: 30_000 };
const env = colonyPerFile("colony-tracing-noop-");
const PROBE = new URL("./fixtures/otel-probe.ts", import.meta.url);

describe("with no OpenTelemetry SDK registered", () => {
  it("runs, spawns, calls models and tools and runs tasks as ever, and records no span", T, async () => {
    const spansSeen: string[] = [];
    const summarizer = defineModelAgent({ name: "summarizer", model: scriptedModel([{ text: "short" }]), writes: "summary" });
    const run = await env.colony.run(defineRun({ board: "untraced", agents: [summarizer], goal: (v) => v.has("summary") }));
    assert.equal(run.stopReason, "goal");

    assert.equal(await (await env.colony.spawn(writer, "Note it.", { board: "untraced" })).result, "wrote it");
    for (const isolation of ["thread", "process"] as const) {
      const turner = await env.colony.spawn(ref("turner"), { maxTurns: 2, pauseMs: 1 }, { isolation });
      assert.deepEqual(((await turner.result) as { turns: number[] }).turns, [1, 2]);
    }

    const probe: SubAgent<unknown, string> = {
      name: "probe",
      run: () => {
        // The active span where an agent runs is the API's invalid one: nothing is recorded or propagated.
        spansSeen.push(trace.getActiveSpan()?.spanContext().traceId ?? "none");
        return "ok";
      },
    };
    await env.colony.worker({ agents: { probe } });
    const tasks = await env.colony.tasks();
    const task = await tasks.submit({ kind: "probe" });
    assert.equal(task.trace, undefined);
    assert.equal((await tasks.wait(task.id)).result, "ok");
    assert.deepEqual(spansSeen, ["none"]);

    assert.equal(tracing(), false);
    assert.equal((globalThis as Record<symbol, unknown>)[Symbol.for("opentelemetry.js.api.1")], undefined, "Colony registers nothing of OpenTelemetry's");
  });

  for (const isolation of ["thread", "process"] as const) {
    it(`loads no OpenTelemetry in a ${isolation} host`, T, async () => {
      assert.equal(await (await env.colony.spawn({ module: PROBE, export: "otelLoaded" }, undefined, { isolation })).result, false);
    });
  }
});
