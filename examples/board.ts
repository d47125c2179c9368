/**
 * The board: compare-and-set writes, a snapshot view, tags, the log and a watch.
 *
 *   node examples/board.ts
 */
import { createColony, memoryBackend, VersionConflictError } from "../src/index.ts";

const colony = createColony({ backend: memoryBackend() }); // createColony() alone: SQLite at .colony/colony.db
const board = await colony.board("notes");

const first = await board.write("plan", { steps: 3 }, { author: "planner", tags: ["plan"] });
console.log(first.version); // 1
try {
  await board.write("plan", { steps: 4 }, { author: "rival", expectedVersion: 0 }); // create only
} catch (error) {
  if (error instanceof VersionConflictError) console.log(error.message);
}
await board.write("plan", { steps: 4 }, { author: "planner", tags: { plan: true, reviewed: false }, expectedVersion: first.version });

const view = board.view(); // a synchronous snapshot that never changes under you
console.log(view.read("plan")?.value, view.readByTag("reviewed", (v) => v === false).length);
for (const record of await board.history()) console.log(record.seq, record.op, record.key, `v${record.version}`, record.author);
for await (const record of board.watch({ since: 0 })) {
  // Every write, in order, live: also those of other processes on the same file or server.
  if (record.seq === view.seq) break;
}
await colony.close();
