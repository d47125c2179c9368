/**
 * What a worker's tasks cost the agent registry: a short inline agent is written once, as it
 * ended, and a longer one is listed while it runs (once it has run a moment) and then moved to
 * its end. Every task's agent is in the registry in the end. Counted on a backend whose agent
 * store tallies its writes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createColony, memoryBackend, type BackendFactory, type SubAgentContext } from "../src/index.ts";
import { waitFor } from "./fixtures/helpers.ts";

/** The memory backend, its agent store's writes counted by method. */
function countingBackend(): { factory: BackendFactory; writes: Map<string, number> } {
  const writes = new Map<string, number>();
  const inner = memoryBackend();
  const factory: BackendFactory = {
    ...inner,
    async open() {
      const backend = await inner.open();
      const store = backend.agents;
      const counted = new Set(["insert", "transition", "updateUsage"]);
      const agents = new Proxy(store, {
        get(target, name) {
          const value = Reflect.get(target, name, target) as unknown;
          if (typeof value !== "function") return value;
          return (...args: unknown[]) => {
            if (typeof name === "string" && counted.has(name)) writes.set(name, (writes.get(name) ?? 0) + 1);
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
      return { ...backend, agents };
    },
  };
  return { factory, writes };
}

describe("a worker's agents in the registry", () => {
  it("each short task's agent is written once, as it ended, and is listed", { timeout: 30_000 }, async () => {
    const { factory, writes } = countingBackend();
    const colony = createColony({ backend: factory });
    try {
      const worker = await colony.worker({ agents: { noop: { name: "noop", run: (ctx: SubAgentContext<number>) => ctx.input } }, concurrency: 4, registerAfterMs: 60_000 });
      const tasks = await colony.tasks();
      const submitted = await tasks.submitAll(Array.from({ length: 20 }, (_, i) => ({ kind: "noop", input: i })));
      for (const task of submitted) assert.equal((await tasks.wait(task.id)).status, "succeeded");
      await worker.stop();
      assert.deepEqual(Object.fromEntries(writes), { insert: 20 });
      const listed = await colony.agents.list();
      assert.equal(listed.length, 20);
      assert.ok(listed.every((a) => a.state === "succeeded" && a.usage.turns === 1 && a.endedAt !== undefined));
      assert.deepEqual(listed.map((a) => a.name).sort(), submitted.map((t) => `noop:${t.id}`).sort());
    } finally {
      await colony.close();
    }
  });

  it("a task that runs a while is listed as running meanwhile, then moved to its end", { timeout: 30_000 }, async () => {
    const { factory, writes } = countingBackend();
    const colony = createColony({ backend: factory });
    const { promise: release, resolve } = Promise.withResolvers<void>();
    try {
      const worker = await colony.worker({ agents: { slow: { name: "slow", run: async () => (await release, "done") } }, registerAfterMs: 1 });
      const tasks = await colony.tasks();
      const task = await tasks.submit({ kind: "slow" });
      const running = await waitFor(async () => (await colony.agents.list()).find((a) => a.state === "running"), 10_000, "the agent to be listed as running");
      assert.equal(running.name, `slow:${task.id}`);
      resolve();
      assert.equal((await tasks.wait(task.id)).status, "succeeded");
      await worker.stop();
      const [ended] = await colony.agents.list();
      assert.equal(ended?.state, "succeeded");
      assert.deepEqual(Object.fromEntries(writes), { insert: 1, transition: 1 });
    } finally {
      resolve();
      await colony.close();
    }
  });
});
