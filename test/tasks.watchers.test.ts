/**
 * Many watchers of one task board: each event is read from the store once for all of them
 * (TaskEventRouter), not once per watcher, and no watcher sees another's copy.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryTaskStore } from "../src/backends/task-state.ts";
import { TaskBoard } from "../src/core/task-board.ts";
import type { TaskEvent } from "../src/core/tasks.ts";

/** A memory store that counts the events it hands out. */
class CountingStore extends MemoryTaskStore {
  read = 0;

  override async events(since: number, limit?: number): Promise<TaskEvent[]> {
    const events = await super.events(since, limit);
    this.read += events.length;
    return events;
  }
}

function board(): { tasks: TaskBoard; store: CountingStore } {
  const store = new CountingStore();
  return { tasks: new TaskBoard("watchers", store, { maxValueBytes: 1 << 20 }), store };
}

async function runAll(tasks: TaskBoard): Promise<void> {
  for (;;) {
    const batch = await tasks.claimMany({ worker: "w", capabilities: ["k"], leaseMs: 60_000, max: 100 });
    if (batch.length === 0) return;
    for (const task of batch) await tasks.complete(task.id, task.input, { generation: task.generation });
  }
}

describe("watchers of one task board", () => {
  it("a thousand waits read each event from the store about once, not once per wait", { timeout: 60_000 }, async () => {
    const { tasks, store } = board();
    try {
      const submitted = await tasks.submitAll(Array.from({ length: 1000 }, (_, i) => ({ kind: "k", input: i })));
      const waits = submitted.map((task) => tasks.wait(task.id));
      // Let every wait start watching before anything ends.
      await new Promise((resolve) => setImmediate(resolve));
      const before = store.read;
      await runAll(tasks);
      const ended = await Promise.all(waits);
      assert.deepEqual(
        ended.map((t) => [t.id, t.status, t.result]),
        submitted.map((t, i) => [t.id, "succeeded", i]),
      );
      // 2,000 events (a claim and an end per task). Read once per wait, that would be two million.
      const read = store.read - before;
      assert.ok(read <= 3 * 2000, `the waits read ${read} events from the store for 2,000 events`);
    } finally {
      tasks.close();
    }
  });

  it("each watcher gets an event object of its own", async () => {
    const { tasks } = board();
    try {
      const since = await tasks.head();
      const one = tasks.watch({ since })[Symbol.asyncIterator]();
      const two = tasks.watch({ since })[Symbol.asyncIterator]();
      const waitForTwo = tasks.wait((await tasks.submit({ id: "t", kind: "k", input: { n: 1 } })).id);
      const first = (await one.next()).value as TaskEvent;
      (first.task.input as { n: number }).n = 99;
      first.task.status = "dead";
      const second = (await two.next()).value as TaskEvent;
      assert.deepEqual([second.task.status, second.task.input], ["pending", { n: 1 }]);
      await runAll(tasks);
      const ended = await waitForTwo;
      assert.deepEqual([ended.status, ended.input], ["succeeded", { n: 1 }]);
      await one.return(undefined);
      await two.return(undefined);
    } finally {
      tasks.close();
    }
  });

  it("close ends every watch and wait", async () => {
    const { tasks } = board();
    await tasks.submit({ id: "t", kind: "k" });
    const waiting = tasks.wait("t");
    const watching = (async () => {
      const seen: TaskEvent[] = [];
      for await (const event of tasks.watch()) seen.push(event);
      return seen;
    })();
    await new Promise((resolve) => setImmediate(resolve));
    tasks.close();
    assert.deepEqual(await watching, []);
    await assert.rejects(waiting, { name: "ClosedError" });
  });
});
