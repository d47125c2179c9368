/**
 * The SQLite schema and its migrations, keyed by `PRAGMA user_version`. A file written by a
 * newer Colony is refused rather than misread.
 */
import type { DatabaseSync } from "node:sqlite";
import { ConfigError } from "../../core/errors.ts";

export const SCHEMA_VERSION = 8;

const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE boards (
      name TEXT PRIMARY KEY,
      seq INTEGER NOT NULL
    ) STRICT;
    -- Deleted keys stay as tombstones so that a key's versions never repeat.
    CREATE TABLE entries (
      board TEXT NOT NULL,
      key TEXT NOT NULL,
      value TEXT NOT NULL,
      author TEXT NOT NULL,
      version INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      tags TEXT NOT NULL,
      deleted INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (board, key)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE log (
      board TEXT NOT NULL,
      seq INTEGER NOT NULL,
      op TEXT NOT NULL CHECK (op IN ('write', 'delete')),
      key TEXT NOT NULL,
      version INTEGER NOT NULL,
      author TEXT NOT NULL,
      at INTEGER NOT NULL,
      value TEXT,
      tags TEXT NOT NULL,
      PRIMARY KEY (board, seq)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX log_by_key ON log (board, key, seq);
    CREATE TABLE runs (
      run_id TEXT PRIMARY KEY,
      started_at INTEGER NOT NULL,
      data TEXT NOT NULL
    ) STRICT;
    CREATE TABLE steps (
      run_id TEXT NOT NULL,
      idx INTEGER NOT NULL,
      data TEXT NOT NULL,
      PRIMARY KEY (run_id, idx)
    ) STRICT, WITHOUT ROWID;
  `,
  // Sub-agents: the registry every process on the file can list and kill through, and the
  // reports that on_demand children leave for their parents.
  2: `
    CREATE TABLE agents (
      id TEXT PRIMARY KEY,
      parent_id TEXT,
      state TEXT NOT NULL,
      generation INTEGER NOT NULL,
      owner_pid INTEGER NOT NULL,
      kill_requested INTEGER,
      started_at INTEGER NOT NULL,
      data TEXT NOT NULL
    ) STRICT;
    CREATE INDEX agents_by_parent ON agents (parent_id);
    CREATE INDEX agents_by_owner ON agents (owner_pid) WHERE kill_requested IS NOT NULL;
    CREATE TABLE reports (
      agent_id TEXT PRIMARY KEY,
      data TEXT NOT NULL
    ) STRICT;
  `,
  // Task boards: tasks with the columns the queue and the reaper look up (the whole task is in
  // data), their dependency edges, the event log that watch() reads, and the worker registry.
  3: `
    CREATE TABLE task_boards (
      name TEXT PRIMARY KEY,
      next_id INTEGER NOT NULL,
      seq INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE tasks (
      n INTEGER PRIMARY KEY, -- submit order
      board TEXT NOT NULL,
      id TEXT NOT NULL,
      status TEXT NOT NULL,
      kind TEXT NOT NULL,
      capability TEXT NOT NULL,
      priority INTEGER NOT NULL,
      run_after INTEGER,
      assignee TEXT,
      assigned_until INTEGER,
      owner TEXT,
      lease_until INTEGER,
      parent_id TEXT,
      idempotency_key TEXT,
      data TEXT NOT NULL,
      UNIQUE (board, id)
    ) STRICT;
    -- In claim order; the trailing columns let a claim skip tasks it may not take without reading them.
    CREATE INDEX tasks_queue ON tasks (board, priority DESC, n, capability, assignee, assigned_until, run_after) WHERE status = 'pending';
    CREATE INDEX tasks_lease ON tasks (board, lease_until) WHERE status = 'claimed';
    CREATE INDEX tasks_owner ON tasks (board, owner) WHERE status = 'claimed';
    CREATE INDEX tasks_assignee ON tasks (board, assignee) WHERE status = 'pending' AND assignee IS NOT NULL;
    CREATE INDEX tasks_parent ON tasks (board, parent_id) WHERE parent_id IS NOT NULL;
    CREATE INDEX tasks_by_status ON tasks (board, status, n);
    CREATE UNIQUE INDEX tasks_idempotency ON tasks (board, idempotency_key) WHERE idempotency_key IS NOT NULL;
    CREATE TABLE task_deps (
      board TEXT NOT NULL,
      dep TEXT NOT NULL,
      task TEXT NOT NULL,
      PRIMARY KEY (board, dep, task)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE task_events (
      board TEXT NOT NULL,
      seq INTEGER NOT NULL,
      at INTEGER NOT NULL,
      type TEXT NOT NULL,
      data TEXT NOT NULL,
      PRIMARY KEY (board, seq)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE workers (
      board TEXT NOT NULL,
      id TEXT NOT NULL,
      data TEXT NOT NULL,
      PRIMARY KEY (board, id)
    ) STRICT, WITHOUT ROWID;
  `,
  // Leases for leader election. A freed lease keeps its row so that its revision never repeats;
  // revisions come from one counter, so no two writes of any lease share one.
  4: `
    CREATE TABLE leases (
      name TEXT PRIMARY KEY,
      holder TEXT,
      revision INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE lease_revision (
      only INTEGER PRIMARY KEY CHECK (only = 1),
      revision INTEGER NOT NULL
    ) STRICT;
    INSERT INTO lease_revision VALUES (1, 0);
  `,
  // Ended tasks whose cascade one transaction left for the next (Task.settling), found by index.
  5: `
    ALTER TABLE tasks ADD COLUMN settling INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX tasks_settling ON tasks (board, n) WHERE settling = 1;
  `,
  // Retention: ended tasks by when they ended (NULL until then, and while settling), the event
  // log's horizon, and dependency rows by the dependent, to remove a task's own.
  6: `
    ALTER TABLE tasks ADD COLUMN ended_at INTEGER;
    UPDATE tasks SET ended_at = json_extract(data, '$.updatedAt') WHERE status IN ('succeeded', 'failed', 'dead', 'cancelled') AND settling = 0;
    CREATE INDEX tasks_finished ON tasks (board, ended_at, n) WHERE ended_at IS NOT NULL;
    ALTER TABLE task_boards ADD COLUMN horizon INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX task_deps_by_task ON task_deps (board, task);
  `,
  // Retention for the agent registry: ended agents by when they ended (NULL while live), and the
  // live ones, whose parents and ancestors it keeps.
  7: `
    ALTER TABLE agents ADD COLUMN ended_at INTEGER;
    UPDATE agents SET ended_at = coalesce(json_extract(data, '$.endedAt'), started_at) WHERE state IN ('succeeded', 'failed', 'terminated');
    CREATE INDEX agents_ended ON agents (ended_at, id) WHERE ended_at IS NOT NULL;
    CREATE INDEX agents_live ON agents (parent_id) WHERE ended_at IS NULL;
  `,
  // Tags carry values: a list of names becomes an object of each name → true, in entries and log.
  8: `
    UPDATE entries SET tags = (SELECT json_group_object(value, json('true')) FROM json_each(entries.tags)) WHERE json_type(tags) = 'array';
    UPDATE log SET tags = (SELECT json_group_object(value, json('true')) FROM json_each(log.tags)) WHERE json_type(tags) = 'array';
  `,
};

/** Brings the file up to SCHEMA_VERSION in one transaction; safe when processes race to do it. */
export function migrate(db: DatabaseSync, path: string): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    const { user_version: current } = db.prepare("PRAGMA user_version").get() as { user_version: number };
    if (current > SCHEMA_VERSION) {
      throw new ConfigError(
        `${path} has schema version ${current}, newer than this Colony understands (${SCHEMA_VERSION}); upgrade Colony`,
      );
    }
    for (let version = current + 1; version <= SCHEMA_VERSION; version++) db.exec(MIGRATIONS[version]!);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    db.exec("COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}
