/**
 * The SQLite schema and its migrations, keyed by `PRAGMA user_version`. A file written by a
 * newer Colony is refused rather than misread.
 */
import type { DatabaseSync } from "node:sqlite";
import { ConfigError } from "../../core/errors.ts";

export const SCHEMA_VERSION = 2;

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
