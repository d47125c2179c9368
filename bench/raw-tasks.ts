/**
 * The task board's baseline: plain `node:sqlite` on its own file, same schema (migration 3) and
 * pragmas as sqliteBackend, running the statements SqliteTaskStore runs for submit, claim and
 * complete, in the same order, one BEGIN IMMEDIATE transaction per operation, with prepared
 * statements and no library around it. The order was read off the store with every statement
 * traced, for a board with no registered workers (as `bench/tasks.ts` uses it):
 *
 * - submit: next id, id-taken check (twice), workers (routing), task upsert, seq bump, event,
 *   re-read.
 * - claim: workers and lapsed leases (the reaper), workers (is the claimer local?), the queue
 *   head, then upsert, seq bump, event; an empty queue stops after the queue head.
 * - complete: get, upsert, seq bump, event, dependents.
 *
 * What it leaves out is the engine: no validation, no routing or retry rules, no copies of the
 * task handed back. It parses a row only where it needs a field of it (the claimed task, the
 * task being completed) and stringifies each new version of a task once, for both its `data`
 * column and its event, as the store does.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { migrate } from "../src/backends/sqlite/schema.ts";

// Copied verbatim from src/backends/sqlite/tasks.ts (COLUMNS = "data").
const SQL = {
  begin: "BEGIN IMMEDIATE",
  commit: "COMMIT",
  ensure: "INSERT INTO task_boards (name, next_id, seq) VALUES (?, 1, 0) ON CONFLICT (name) DO NOTHING",
  nextId: "UPDATE task_boards SET next_id = next_id + 1 WHERE name = ? RETURNING next_id - 1 AS id",
  bump: "UPDATE task_boards SET seq = seq + 1 WHERE name = ? RETURNING seq",
  get: "SELECT data FROM tasks WHERE board = ? AND id = ?",
  upsert: `INSERT INTO tasks (board, id, status, kind, capability, priority, run_after, assignee, assigned_until, owner, lease_until, parent_id, idempotency_key, data)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (board, id) DO UPDATE SET status = excluded.status, priority = excluded.priority, run_after = excluded.run_after,
         assignee = excluded.assignee, assigned_until = excluded.assigned_until, owner = excluded.owner,
         lease_until = excluded.lease_until, data = excluded.data`,
  event: "INSERT INTO task_events (board, seq, at, type, data) VALUES (?, ?, ?, ?, ?)",
  dependents: "SELECT t.data FROM task_deps d JOIN tasks t ON t.board = d.board AND t.id = d.task WHERE d.board = ? AND d.dep = ? ORDER BY t.n",
  next: `SELECT data FROM tasks WHERE board = ?1 AND status = 'pending' AND (run_after IS NULL OR run_after <= ?2)
         AND capability IN (SELECT value FROM json_each(?3))
         AND (assignee IS NULL OR assignee = ?4 OR assigned_until < ?2)
       ORDER BY priority DESC, n LIMIT 1`,
  expired: "SELECT data FROM tasks WHERE board = ? AND status = 'claimed' AND lease_until < ? ORDER BY n",
  workers: "SELECT data FROM workers WHERE board = ? ORDER BY id",
};

/** What the baseline stores in `data`: the same fields as a Task, so the rows are the same size. */
export interface RawTask {
  id: string;
  kind: string;
  capability: string;
  input: unknown;
  status: string;
  generation: number;
  dependsOn: string[];
  attempts: number;
  maxAttempts: number;
  priority: number;
  failures: unknown[];
  route: { mode: "any" };
  backoff: { baseMs: number; maxMs: number };
  createdAt: number;
  updatedAt: number;
  owner?: string;
  leaseMs?: number;
  leaseUntil?: number;
  result?: unknown;
}

export class RawTasks {
  readonly db: DatabaseSync;
  readonly #board: string;
  readonly #s: Record<keyof typeof SQL, StatementSync>;

  constructor(path: string, board: string) {
    this.db = new DatabaseSync(path, { timeout: 5000 });
    this.db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
    migrate(this.db, path);
    this.#s = Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, this.db.prepare(sql)])) as Record<keyof typeof SQL, StatementSync>;
    this.#s.ensure.run(board);
    this.#board = board;
  }

  submit(kind: string, input: unknown): string {
    const s = this.#s;
    const board = this.#board;
    return this.#transaction(() => {
      const id = `t-${(s.nextId.get(board) as { id: number }).id}`;
      // Twice, as the engine does: once picking a fresh id, once checking it is not taken.
      if (s.get.get(board, id) || s.get.get(board, id)) throw new Error(`task id ${id} is already taken`);
      s.workers.all(board);
      const now = Date.now();
      const task: RawTask = {
        id,
        kind,
        capability: kind,
        input,
        status: "pending",
        generation: 1,
        dependsOn: [],
        attempts: 0,
        maxAttempts: 3,
        priority: 0,
        failures: [],
        route: { mode: "any" },
        backoff: { baseMs: 1000, maxMs: 60_000 },
        createdAt: now,
        updatedAt: now,
      };
      this.#put(task, "submitted", now);
      s.get.get(board, id);
      return id;
    });
  }

  /** The first pending task for these capabilities, claimed; undefined if none. */
  claim(worker: string, capabilities: string[], leaseMs: number): RawTask | undefined {
    const s = this.#s;
    const board = this.#board;
    return this.#transaction(() => {
      const now = Date.now();
      s.workers.all(board);
      s.expired.all(board, now);
      s.workers.all(board);
      const row = s.next.get(board, now, JSON.stringify(capabilities), worker) as { data: string } | undefined;
      if (!row) return undefined;
      const task = JSON.parse(row.data) as RawTask;
      const claimed: RawTask = { ...task, status: "claimed", generation: task.generation + 1, owner: worker, leaseMs, leaseUntil: now + leaseMs, updatedAt: now };
      this.#put(claimed, "claimed", now);
      return claimed;
    });
  }

  complete(id: string, result: unknown, generation: number): void {
    const s = this.#s;
    const board = this.#board;
    this.#transaction(() => {
      const now = Date.now();
      const row = s.get.get(board, id) as { data: string } | undefined;
      const task = row && (JSON.parse(row.data) as RawTask);
      if (!task || task.status !== "claimed" || task.generation !== generation || task.leaseUntil! < now) throw new Error(`task ${id}: stale claim`);
      this.#put({ ...task, status: "succeeded", generation: generation + 1, result, leaseUntil: undefined, updatedAt: now }, "succeeded", now);
      s.dependents.all(board, id);
    });
  }

  close(): void {
    this.db.close();
  }

  #put(task: RawTask, event: string, now: number): void {
    const s = this.#s;
    const data = JSON.stringify(task);
    s.upsert.run(this.#board, task.id, task.status, task.kind, task.capability, task.priority, null, null, null, task.owner ?? null, task.leaseUntil ?? null, null, null, data);
    const { seq } = s.bump.get(this.#board) as { seq: number };
    s.event.run(this.#board, seq, now, event, data);
  }

  #transaction<T>(work: () => T): T {
    this.#s.begin.run();
    try {
      const result = work();
      this.#s.commit.run();
      return result;
    } catch (error) {
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
      throw error;
    }
  }
}
