/**
 * On SQLite, reads and claims that find nothing never take the write lock: while another
 * connection holds it (a long transaction, another process recording results), they still
 * answer; only what writes waits for the lock (and, past the busy timeout, says so).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, test } from "node:test";
import { StoreBusyError, createColony, sqliteBackend, type Colony, type TaskBoard } from "../src/index.ts";
import { tempDir } from "./fixtures/helpers.ts";

const dir = tempDir("colony-locks-");
const path = join(dir.path, "colony.db");
let colony: Colony;
let tasks: TaskBoard;

before(async () => {
  colony = createColony({ backend: sqliteBackend({ path, busyTimeoutMs: 200 }) });
  tasks = await colony.tasks();
  await tasks.submit({ id: "waiting", kind: "busy" });
  await tasks.heartbeatWorker({ id: "w", capabilities: ["idle"], concurrency: 1, running: 0, status: "online", pid: process.pid, host: "h", local: false, ttlMs: 60_000 });
});

after(async () => {
  await colony.close();
  dir.dispose();
});

/** Runs `fn` while another connection to the file holds the write lock. */
async function whileLocked<T>(fn: () => Promise<T>): Promise<T> {
  const other = new DatabaseSync(path);
  other.exec("BEGIN IMMEDIATE");
  try {
    return await fn();
  } finally {
    other.exec("ROLLBACK");
    other.close();
  }
}

test("get, list, workers and an idle worker's claim that finds nothing answer while another connection holds the write lock", async () => {
  // An idle worker polls: its first empty claim makes it one.
  assert.equal(await tasks.claim({ worker: "w", capabilities: ["idle"], leaseMs: 1000 }), undefined);
  await whileLocked(async () => {
    assert.equal((await tasks.get("waiting"))?.status, "pending");
    assert.deepEqual((await tasks.list()).map((t) => t.id), ["waiting"]);
    assert.deepEqual((await tasks.workers()).map((w) => w.id), ["w"]);
    assert.equal(await tasks.claim({ worker: "w", capabilities: ["idle"], leaseMs: 1000 }), undefined);
  });
});

test("a claim that finds a task does write, so it waits for the lock and says when it could not get it", async () => {
  await whileLocked(async () => {
    await assert.rejects(tasks.claim({ worker: "w", capabilities: ["busy"], leaseMs: 1000 }), StoreBusyError);
  });
  assert.equal((await tasks.claim({ worker: "w", capabilities: ["busy"], leaseMs: 1000 }))?.id, "waiting");
});
