/**
 * Traces: an OpenTelemetry SDK registered as any Node program registers one, a run whose agent
 * spawns a sub-agent and submits a task to a worker, and the spans they made, as a tree.
 *
 *   node examples/traces.ts
 */
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { createColony, defineRun, defineSubAgent, memoryBackend } from "../src/index.ts";

const exporter = new InMemorySpanExporter(); // an OTLPTraceExporter, or your vendor's, to see them elsewhere
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable()); // spans nest across awaits
trace.setGlobalTracerProvider(provider);

const colony = createColony({ backend: memoryBackend() });
await colony.worker({ agents: { measure: defineSubAgent<string, number>({ name: "measure", run: (ctx) => ctx.input.length }) } });
const tasks = await colony.tasks();
const helper = defineSubAgent<string, string>({ name: "helper", run: (ctx) => `${ctx.input} follow pheromone trails` });
await colony.run(
  defineRun({
    board: "traced",
    agents: [
      {
        name: "lead",
        run: async (ctx) => {
          const text = await (await ctx.spawn(helper, "ants")).result;
          const task = await tasks.submit({ kind: "measure", input: text }); // carries this fire's span
          await ctx.board.write("length", (await tasks.wait(task.id)).result);
        },
      },
    ],
    goal: (view) => view.has("length"),
  }),
);
await colony.close();
await provider.forceFlush();

const spans = exporter.getFinishedSpans();
const show = (parent: string | undefined, depth: number): void => {
  for (const span of spans.filter((s) => s.parentSpanContext?.spanId === parent)) {
    const { "colony.agent.name": agent, "colony.task.kind": kind } = span.attributes;
    console.log(`${"  ".repeat(depth)}${span.name}${agent ?? kind ? ` ${String(agent ?? kind)}` : ""}`);
    show(span.spanContext().spanId, depth + 1);
  }
};
show(undefined, 0);
