/**
 * A task carries its submitter's trace context: the worker that claims it, on another colony of
 * the same store (another machine, for all the task knows), runs it under a span that is the
 * submitter's child, claim to complete or fail. On memory (one colony) and SQLite (two).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SpanStatusCode, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { createColony, InvalidTaskError, memoryBackend, type Colony, type SubAgent, type TaskBoard } from "../src/index.ts";
import { sqliteColony, tempDir } from "./fixtures/helpers.ts";
import { childrenOf, isChild, only, tracingPerFile } from "./fixtures/tracing.ts";

const T = { timeout: 30_000 };
const traces = tracingPerFile();
const SUBMITTER = new URL("./fixtures/submitter-agent.ts", import.meta.url);

const research: SubAgent<unknown, unknown> = { name: "research", run: (ctx) => ({ got: ctx.input }) };
const fails: SubAgent = { name: "fails", run: () => Promise.reject(new Error("no luck")) };

async function inSpan<T>(fn: () => Promise<T>): Promise<{ value: T; span: ReadableSpan }> {
  return trace.getTracer("test").startActiveSpan("submit", async (span) => {
    try {
      return { value: await fn(), span: span as unknown as ReadableSpan };
    } finally {
      span.end();
    }
  });
}

const taskSpan = (id: string, attempt = 1) => traces.ended((s) => s.name === "colony.task" && s.attributes["colony.task.id"] === id && s.attributes["colony.task.attempt"] === attempt);

const backends: Record<string, () => { submitter: Colony; worker: Colony; close(): Promise<void> }> = {
  memory: () => {
    const colony = createColony({ backend: memoryBackend() });
    return { submitter: colony, worker: colony, close: () => colony.close() };
  },
  sqlite: () => {
    const dir = tempDir("colony-tracing-tasks-");
    const submitter = sqliteColony(join(dir.path, "colony.db"));
    const worker = sqliteColony(join(dir.path, "colony.db"));
    return {
      submitter,
      worker,
      close: async () => {
        await Promise.all([submitter.close(), worker.close()]);
        dir.dispose();
      },
    };
  },
};

for (const [name, open] of Object.entries(backends)) {
  describe(`a task on ${name}`, () => {
    let stores: ReturnType<typeof open>;
    let tasks: TaskBoard;
    before(async () => {
      stores = open();
      tasks = await stores.submitter.tasks("traced");
      await stores.worker.worker({ tasks: "traced", agents: { research, fails }, id: "tracing-worker" });
    });
    after(() => stores.close());

    it("submitted in a span carries it, and is run under a span that is its child: its agent's span below", T, async () => {
      const { value: task, span: root } = await inSpan(() => tasks.submit({ kind: "research", input: 7 }));
      assert.match(task.trace?.traceparent ?? "", new RegExp(`^00-${root.spanContext().traceId}-${root.spanContext().spanId}-01$`));
      assert.deepEqual((await tasks.wait(task.id)).result, { got: 7 });
      const span = await taskSpan(task.id);
      assert.ok(isChild(span, root));
      assert.deepEqual(span.attributes, { "colony.task.id": task.id, "colony.task.kind": "research", "colony.task.attempt": 1, "colony.task.board": "traced", "colony.worker.id": "tracing-worker" });
      assert.equal(span.status.code, SpanStatusCode.UNSET);
      assert.equal(childrenOf(await traces.spans(), span, "colony.agent")[0]?.attributes["colony.agent.name"], `research:${task.id}`);
    });

    it("that fails is a failed span per attempt", T, async () => {
      const { value: task, span: root } = await inSpan(() => tasks.submit({ kind: "fails", maxAttempts: 2, backoff: { baseMs: 0 } }));
      assert.equal((await tasks.wait(task.id)).status, "dead");
      const attempts = await Promise.all([taskSpan(task.id, 1), taskSpan(task.id, 2)]);
      for (const span of attempts) {
        assert.ok(isChild(span, root));
        assert.equal(span.status.code, SpanStatusCode.ERROR);
        assert.match(span.status.message ?? "", /no luck/);
      }
    });

    it("submitted by a thread sub-agent carries the turn it was submitted in", T, async () => {
      const handle = await stores.submitter.spawn({ module: SUBMITTER, export: "submitter" }, { board: "traced", kind: "research", input: "deep" }, { isolation: "thread" });
      const { task, result } = (await handle.result) as { task: { id: string }; result: unknown };
      assert.deepEqual(result, { got: "deep" });
      const span = await taskSpan(task.id);
      const turn = only((await traces.spans()).filter((s) => s.attributes["colony.agent.id"] === handle.id), "colony.agent.turn");
      assert.ok(isChild(span, turn));
    });

    it("submitted outside any span has no trace context, and its span begins a trace", T, async () => {
      const task = await tasks.submit({ kind: "research", input: 1 });
      assert.equal(task.trace, undefined);
      await tasks.wait(task.id);
      assert.equal((await taskSpan(task.id)).parentSpanContext, undefined);
    });

    it("keeps a trace context given with it (from another system), and refuses one that is not one", T, async () => {
      const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
      const task = await tasks.submit({ kind: "research", input: 2, trace: { traceparent, tracestate: "vendor=1" } });
      assert.deepEqual(task.trace, { traceparent, tracestate: "vendor=1" });
      await tasks.wait(task.id);
      const span = await taskSpan(task.id);
      assert.equal(span.spanContext().traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
      assert.equal(span.parentSpanContext?.spanId, "00f067aa0ba902b7");
      assert.equal(span.spanContext().traceState?.get("vendor"), "1");
      await assert.rejects(tasks.submit({ kind: "research", trace: { traceparent: 5 } as never }), InvalidTaskError);
    });
  });
}
