/**
 * A task board: a batch with a dependency, a claim under a lease, a result recorded once, and the
 * board's events.
 *
 *   node examples/tasks.ts
 */
import { createColony, memoryBackend } from "../src/index.ts";

const colony = createColony({ backend: memoryBackend() }); // on SQLite or NATS, ids stay taken: use idempotencyKey to submit again
const tasks = await colony.tasks(); // the board "default"
await tasks.submitAll([
  { id: "fetch", kind: "research", input: { q: "ants" }, maxAttempts: 5, priority: 2 },
  { id: "summary", kind: "write", dependsOn: ["fetch"] }, // blocked until fetch succeeds
]);
const task = await tasks.claim({ worker: "w1", capabilities: ["research"], leaseMs: 10_000 });
if (task) await tasks.complete(task.id, { found: 3 }, { generation: task.generation });
const head = await tasks.head();
for await (const event of tasks.watch({ since: 0 })) {
  console.log(event.seq, event.type, event.task.id, event.task.status);
  if (event.seq === head) break;
}
await colony.close();
