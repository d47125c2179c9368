/**
 * The baseline: plain `node:sqlite` on its own file, same schema and pragmas as sqliteBackend,
 * running the same SQL text as SqliteBoardStore.write / .get with prepared statements and no
 * library around it. It still serialises the value (a caller storing JSON has to).
 */
import { DatabaseSync } from "node:sqlite";
import { migrate } from "../src/backends/sqlite/schema.ts";

// Copied verbatim from src/backends/sqlite/index.ts.
const SQL = {
  begin: "BEGIN IMMEDIATE",
  commit: "COMMIT",
  ensureBoard: "INSERT INTO boards (name, seq) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
  current: "SELECT version, deleted FROM entries WHERE board = ? AND key = ?",
  createdAt: "SELECT created_at FROM entries WHERE board = ? AND key = ?",
  bump: "UPDATE boards SET seq = seq + 1 WHERE name = ? RETURNING seq",
  upsert: `INSERT INTO entries (board, key, value, author, version, created_at, updated_at, tags, deleted)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)
       ON CONFLICT (board, key) DO UPDATE SET value = excluded.value, author = excluded.author,
         version = excluded.version, updated_at = excluded.updated_at, tags = excluded.tags, deleted = 0,
         created_at = CASE WHEN entries.deleted THEN excluded.created_at ELSE entries.created_at END`,
  append: "INSERT INTO log (board, seq, op, key, version, author, at, value, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
  get: "SELECT key, value, author, version, created_at, updated_at, tags FROM entries WHERE board = ? AND key = ? AND deleted = 0",
};

export class RawBoard {
  readonly db: DatabaseSync;
  readonly #board: string;
  readonly #s;

  constructor(path: string, board: string) {
    this.db = new DatabaseSync(path, { timeout: 5000 });
    this.db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
    migrate(this.db, path);
    const s = (sql: string) => this.db.prepare(sql);
    this.#s = {
      begin: s(SQL.begin),
      commit: s(SQL.commit),
      current: s(SQL.current),
      createdAt: s(SQL.createdAt),
      bump: s(SQL.bump),
      upsert: s(SQL.upsert),
      append: s(SQL.append),
      get: s(SQL.get),
    };
    s(SQL.ensureBoard).run(board);
    this.#board = board;
  }

  /** A compare-and-set write; returns the new version. Throws on a version mismatch. */
  write(key: string, value: unknown, author: string, expectedVersion: number): number {
    const s = this.#s;
    const board = this.#board;
    const json = JSON.stringify(value);
    const at = Date.now();
    s.begin.run();
    try {
      const row = s.current.get(board, key) as { version: number; deleted: number } | undefined;
      const live = row && !row.deleted ? row.version : 0;
      if (live !== expectedVersion) throw new Error(`version conflict on ${key}`);
      const version = (row?.version ?? 0) + 1;
      const { seq } = s.bump.get(board) as { seq: number };
      const tags = "[]";
      s.upsert.run(board, key, json, author, version, at, at, tags);
      s.append.run(board, seq, "write", key, version, author, at, json, tags);
      if (live > 0) s.createdAt.get(board, key);
      s.commit.run();
      return version;
    } catch (error) {
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
      throw error;
    }
  }

  /** The same row our get reads, with its value parsed. */
  get(key: string): unknown {
    const row = this.#s.get.get(this.#board, key) as { value: string } | undefined;
    return row && JSON.parse(row.value);
  }

  close(): void {
    this.db.close();
  }
}
