/** The agent retention contract on sqliteBackend, each test on a file of its own; and a file from before the registry kept when agents ended. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { sqliteBackend } from "../src/index.ts";
import { agentRetentionContract } from "./contract/agent-retention.ts";
import { tempDir } from "./fixtures/helpers.ts";

agentRetentionContract("sqlite", () => {
  const dir = tempDir("colony-agent-retention-");
  return { factory: sqliteBackend({ path: join(dir.path, "colony.db"), pollMs: 10 }), cleanup: () => dir.dispose() };
});

test("a file from before agents' ends were indexed has them indexed on opening, so that retention finds them", async () => {
  const dir = tempDir("colony-agent-retention-");
  try {
    const path = join(dir.path, "colony.db");
    const backend = await sqliteBackend({ path }).open();
    await backend.close();
    // Back to schema 6: no ended_at column, as an older Colony left the file.
    const db = new DatabaseSync(path);
    db.exec("DROP INDEX agents_ended; DROP INDEX agents_live; ALTER TABLE agents DROP COLUMN ended_at; PRAGMA user_version = 6;");
    const data = (id: string, state: string, endedAt?: number) => JSON.stringify({ id, name: id, depth: 0, state, generation: 1, isolation: "inline", ownerPid: 1, startedAt: 10, endedAt, usage: { tokens: 0, costUsd: 0, turns: 0 } });
    const insert = db.prepare("INSERT INTO agents (id, parent_id, state, generation, owner_pid, started_at, data) VALUES (?, NULL, ?, 1, 1, 10, ?)");
    insert.run("old", "succeeded", data("old", "succeeded", 100));
    insert.run("new", "failed", data("new", "failed", 200));
    insert.run("live", "running", data("live", "running"));
    db.close();

    const reopened = await sqliteBackend({ path }).open();
    try {
      await reopened.agents.prune({ maxAgeMs: Infinity, maxEnded: 1 }, 1000);
      assert.deepEqual((await reopened.agents.list()).map((a) => a.id), ["live", "new"]);
    } finally {
      await reopened.close();
    }
  } finally {
    dir.dispose();
  }
});
