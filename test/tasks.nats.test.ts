/** The task board contract against natsBackend (an event-sourced stream per task board), on a private nats-server. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createColony } from "../src/index.ts";
import { taskBoardContract } from "./contract/tasks.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

const nats = natsServerPerFile();

taskBoardContract("nats", async (options = {}) => {
  const colony = createColony({ backend: nats.backend(), ...options });
  return { colony, cleanup: () => colony.close() };
});

test("a client opening a task board with a long log folds it (in batches) to the same state as the writer's", { timeout: 60_000 }, async () => {
  const prefix = `long${Date.now().toString(36)}`;
  const writer = createColony({ backend: nats.backend(prefix) });
  const reader = createColony({ backend: nats.backend(prefix) });
  try {
    const tasks = await writer.tasks("long");
    for (let batch = 0; batch < 30; batch++) await tasks.submitAll(Array.from({ length: 10 }, (_, i) => ({ kind: "k", input: batch * 10 + i })));
    for (let i = 0; i < 40; i++) {
      const claimed = (await tasks.claim({ worker: "w", capabilities: ["k"], leaseMs: 60_000 }))!;
      await tasks.complete(claimed.id, i, { generation: claimed.generation });
    }
    const opened = await reader.tasks("long");
    assert.deepEqual(await opened.list(), await tasks.list());
    assert.equal(await opened.head(), await tasks.head());
    assert.equal((await opened.list({ status: "succeeded" })).length, 40);
  } finally {
    await writer.close();
    await reader.close();
  }
});
