/**
 * A cascade down a long chain is settled one bounded transaction at a time; a process killed
 * with SIGKILL part way through leaves the rest marked on the board, and whoever comes next
 * finishes it: every link fails exactly once, none is lost.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { CASCADE_STEP } from "../src/core/task-engine.ts";
import { createColony, sqliteBackend } from "../src/index.ts";
import { KEEP_ALL, tempDir, waitFor } from "./fixtures/helpers.ts";

const CHILD = fileURLToPath(new URL("./fixtures/cascade-child.ts", import.meta.url));
const N = 40_000;
const dir = tempDir("colony-cascade-");
after(() => dir.dispose());

test("a process killed mid-cascade leaves the rest marked; the next reader finishes it, each link failed once", { timeout: 120_000 }, async () => {
  const path = join(dir.path, "colony.db");
  const colony = createColony({ backend: sqliteBackend({ path }), retention: KEEP_ALL });
  try {
    const tasks = await colony.tasks();
    await tasks.submitAll(Array.from({ length: N }, (_, i) => ({ id: `t${i}`, kind: i === 0 ? "head" : "link", ...(i > 0 && { dependsOn: [`t${i - 1}`] }) })));

    const child = spawn(process.execPath, [CHILD, path], { stdio: ["ignore", "ignore", "pipe"] });
    const exited = once(child, "exit");
    // Read straight from the file, so that looking does not settle anything itself.
    const raw = new DatabaseSync(path, { readOnly: true });
    const failedEvents = () => (raw.prepare("SELECT count(*) AS n FROM task_events WHERE type = 'failed'").get() as { n: number }).n;
    await waitFor(() => failedEvents() > 2 * CASCADE_STEP, 60_000, "the cascade to be under way");
    child.kill("SIGKILL");
    const [, signal] = await exited;
    const marked = (raw.prepare("SELECT count(*) AS n FROM tasks WHERE settling = 1").get() as { n: number }).n;
    const failedAtKill = failedEvents();
    raw.close();
    assert.equal(signal, "SIGKILL");
    assert.ok(failedAtKill < N, `killed mid-cascade (${failedAtKill} of ${N} failed)`);
    assert.ok(marked > 0, "what was left is marked on the board");

    // The next reader finishes it.
    const tail = await tasks.get(`t${N - 1}`);
    assert.equal(tail?.status, "failed");
    const failures = new Map<string, number>();
    const head = await tasks.head();
    for await (const event of tasks.watch({ since: 0 })) {
      if (event.type === "failed") failures.set(event.task.id, (failures.get(event.task.id) ?? 0) + 1);
      if (event.seq === head) break;
    }
    assert.equal(failures.size, N, "every task failed");
    assert.ok([...failures.values()].every((n) => n === 1), "each exactly once");
    assert.deepEqual(await tasks.list({ status: "blocked" }), []);
  } finally {
    await colony.close();
  }
});
