/**
 * A task's trace context on NATS: submitted in a span by one client, claimed by workers of two
 * others (one the board's coordinator, one a thin worker it serves), each task run under a span
 * that is the submitter's child.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { createColony, type SubAgent } from "../src/index.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";
import { isChild, tracingPerFile } from "./fixtures/tracing.ts";

const nats = natsServerPerFile();
const traces = tracingPerFile();
const research: SubAgent<number, number> = { name: "research", run: (ctx) => ctx.input * 2 };

it("tasks submitted in a span on one client are run under its children by workers on others", { timeout: 60_000 }, async (t) => {
  const prefix = `trace${Date.now().toString(36)}`;
  const colonies = [0, 1, 2].map(() => createColony({ backend: nats.backend(prefix) }));
  t.after(() => Promise.all(colonies.map((c) => c.close())));
  await colonies[1]!.worker({ agents: { research }, id: "w1" });
  await colonies[2]!.worker({ agents: { research }, id: "w2" });
  const tasks = await colonies[0]!.tasks();
  const { ids, root } = await trace.getTracer("test").startActiveSpan("submit", async (span) => {
    try {
      return { ids: (await tasks.submitAll([1, 2, 3, 4].map((input) => ({ kind: "research", input })))).map((t) => t.id), root: span as unknown as ReadableSpan };
    } finally {
      span.end();
    }
  });
  for (const id of ids) assert.equal((await tasks.wait(id)).status, "succeeded");
  for (const id of ids) {
    const span = await traces.ended((s) => s.name === "colony.task" && s.attributes["colony.task.id"] === id);
    assert.ok(isChild(span, root), id);
    assert.match(String(span.attributes["colony.worker.id"]), /^w[12]$/);
  }
});
