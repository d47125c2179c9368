/**
 * Task boards in the SQLite file. Each operation is one IMMEDIATE transaction, so the write lock
 * is held from the first read: two processes claiming at once are serialised, and exactly one
 * of them gets a given task.
 */
import type { StatementSync } from "node:sqlite";
import type { TaskStore, TaskTx, TaskView } from "../../core/store.ts";
import { FINAL_STATUSES, HorizonError, type Task, type TaskEvent, type TaskEventType, type TaskFilter, type WorkerInfo } from "../../core/tasks.ts";
import type { SqliteConnection } from "./connection.ts";

const COLUMNS = "data";

function prepare(conn: SqliteConnection) {
  const s = (sql: string): StatementSync => conn.db.prepare(sql);
  return {
    ensure: s("INSERT INTO task_boards (name, next_id, seq) VALUES (?, 1, 0) ON CONFLICT (name) DO NOTHING"),
    nextId: s("UPDATE task_boards SET next_id = next_id + 1 WHERE name = ? RETURNING next_id - 1 AS id"),
    bump: s("UPDATE task_boards SET seq = seq + 1 WHERE name = ? RETURNING seq"),
    head: s("SELECT seq, horizon FROM task_boards WHERE name = ?"),
    get: s(`SELECT ${COLUMNS} FROM tasks WHERE board = ? AND id = ?`),
    byKey: s(`SELECT ${COLUMNS} FROM tasks WHERE board = ? AND idempotency_key = ?`),
    upsert: s(
      `INSERT INTO tasks (board, id, status, kind, capability, priority, run_after, assignee, assigned_until, owner, lease_until, parent_id, idempotency_key, settling, ended_at, data)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (board, id) DO UPDATE SET status = excluded.status, priority = excluded.priority, run_after = excluded.run_after,
         assignee = excluded.assignee, assigned_until = excluded.assigned_until, owner = excluded.owner,
         lease_until = excluded.lease_until, settling = excluded.settling, ended_at = excluded.ended_at, data = excluded.data`,
    ),
    dep: s("INSERT OR IGNORE INTO task_deps (board, dep, task) VALUES (?, ?, ?)"),
    event: s("INSERT INTO task_events (board, seq, at, type, data) VALUES (?, ?, ?, ?, ?)"),
    dependents: s(`SELECT t.${COLUMNS} FROM task_deps d JOIN tasks t ON t.board = d.board AND t.id = d.task WHERE d.board = ? AND d.dep = ? ORDER BY t.n`),
    children: s(`SELECT ${COLUMNS} FROM tasks WHERE board = ? AND parent_id = ? ORDER BY n`),
    next: s(
      `SELECT ${COLUMNS} FROM tasks WHERE board = ?1 AND status = 'pending' AND (run_after IS NULL OR run_after <= ?2)
         AND capability IN (SELECT value FROM json_each(?3))
         AND (assignee IS NULL OR assignee = ?4 OR assigned_until < ?2)
       ORDER BY priority DESC, n LIMIT 1`,
    ),
    nextAssigned: s(
      `SELECT ${COLUMNS} FROM tasks INDEXED BY tasks_assignee WHERE board = ?1 AND status = 'pending' AND (run_after IS NULL OR run_after <= ?2)
         AND capability IN (SELECT value FROM json_each(?3)) AND assignee = ?4
       ORDER BY priority DESC, n LIMIT 1`,
    ),
    unsettled: s(`SELECT ${COLUMNS} FROM tasks WHERE board = ? AND settling = 1 ORDER BY n LIMIT ?`),
    expired: s(`SELECT ${COLUMNS} FROM tasks WHERE board = ? AND status = 'claimed' AND lease_until < ? ORDER BY n`),
    owned: s(`SELECT ${COLUMNS} FROM tasks WHERE board = ? AND status = 'claimed' AND owner = ? ORDER BY n`),
    assigned: s(`SELECT ${COLUMNS} FROM tasks WHERE board = ? AND status = 'pending' AND assignee = ? ORDER BY n`),
    // Two statements, so that a status filter can use its index: `(? IS NULL OR status = ?)` cannot.
    list: s(`SELECT ${COLUMNS} FROM tasks WHERE board = ?1 AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR parent_id = ?4) ORDER BY n`),
    listByStatus: s(`SELECT ${COLUMNS} FROM tasks WHERE board = ?1 AND status = ?2 AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR parent_id = ?4) ORDER BY n`),
    load: s(
      `SELECT (SELECT count(*) FROM tasks WHERE board = ?1 AND status = 'claimed' AND owner = ?2)
            + (SELECT count(*) FROM tasks INDEXED BY tasks_assignee WHERE board = ?1 AND status = 'pending' AND assignee = ?2 AND (assigned_until IS NULL OR assigned_until >= ?3)) AS load`,
    ),
    deleteWorker: s("DELETE FROM workers WHERE board = ? AND id = ?"),
    finishedCount: s("SELECT count(*) AS count FROM tasks WHERE board = ? AND ended_at IS NOT NULL"),
    // Ended tasks in the order they ended, passing over those that something unfinished still needs.
    removable: s(
      `SELECT t.${COLUMNS} FROM tasks t WHERE t.board = ?1 AND t.ended_at IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM task_deps d JOIN tasks x ON x.board = d.board AND x.id = d.task
                         WHERE d.board = ?1 AND d.dep = t.id AND x.status NOT IN ('succeeded', 'failed', 'dead', 'cancelled'))
         AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.board = ?1 AND c.parent_id = t.id AND c.status NOT IN ('succeeded', 'failed', 'dead', 'cancelled'))
         AND NOT EXISTS (SELECT 1 FROM tasks p WHERE p.board = ?1 AND p.id = t.parent_id AND p.status NOT IN ('succeeded', 'failed', 'dead', 'cancelled'))
       ORDER BY t.ended_at, t.n LIMIT ?2`,
    ),
    remove: s("DELETE FROM tasks WHERE board = ? AND id = ?"),
    // Two statements, so that each uses its index: an OR of the two would scan the board's rows.
    removeOwnDeps: s("DELETE FROM task_deps WHERE board = ? AND task = ?"),
    removeDependents: s("DELETE FROM task_deps WHERE board = ? AND dep = ?"),
    eventTime: s("SELECT at FROM task_events WHERE board = ? AND seq = ?"),
    trimEvents: s("DELETE FROM task_events WHERE board = ? AND seq <= ?"),
    setHorizon: s("UPDATE task_boards SET horizon = ?2 WHERE name = ?1 AND horizon < ?2"),
    events: s("SELECT seq, at, type, data FROM task_events WHERE board = ? AND seq > ? ORDER BY seq LIMIT ?"),
    workers: s("SELECT data FROM workers WHERE board = ? ORDER BY id"),
    putWorker: s("INSERT INTO workers (board, id, data) VALUES (?, ?, ?) ON CONFLICT (board, id) DO UPDATE SET data = excluded.data"),
  };
}

type Statements = ReturnType<typeof prepare>;

function rows(statement: StatementSync, ...params: (string | number | null)[]): Task[] {
  return (statement.all(...params) as unknown as { data: string }[]).map((r) => JSON.parse(r.data) as Task);
}

function row(statement: StatementSync, ...params: (string | number | null)[]): Task | undefined {
  const found = statement.get(...params) as { data: string } | undefined;
  return found && (JSON.parse(found.data) as Task);
}

class SqliteTaskTx implements TaskTx {
  readonly now = Date.now();
  /** Events this transaction appended. */
  appended = 0;
  readonly #board: string;
  readonly #sql: Statements;

  constructor(board: string, sql: Statements) {
    this.#board = board;
    this.#sql = sql;
  }

  nextId(): string {
    return `t-${(this.#sql.nextId.get(this.#board) as { id: number }).id}`;
  }

  get(id: string): Task | undefined {
    return row(this.#sql.get, this.#board, id);
  }

  byIdempotencyKey(key: string): Task | undefined {
    return row(this.#sql.byKey, this.#board, key);
  }

  put(task: Task, event?: TaskEventType): void {
    const sql = this.#sql;
    const data = JSON.stringify(task);
    sql.upsert.run(
      this.#board,
      task.id,
      task.status,
      task.kind,
      task.capability,
      task.priority,
      task.runAfter ?? null,
      task.assignee ?? null,
      task.assignedUntil ?? null,
      task.owner ?? null,
      task.leaseUntil ?? null,
      task.parentId ?? null,
      task.idempotencyKey ?? null,
      task.settling ? 1 : 0,
      FINAL_STATUSES.has(task.status) && !task.settling ? task.updatedAt : null,
      data,
    );
    for (const dep of task.dependsOn) sql.dep.run(this.#board, dep, task.id);
    if (event) {
      this.appended++;
      const { seq } = sql.bump.get(this.#board) as { seq: number };
      sql.event.run(this.#board, seq, this.now, event, data);
    }
  }

  dependents(id: string): Task[] {
    return rows(this.#sql.dependents, this.#board, id);
  }

  children(id: string): Task[] {
    return rows(this.#sql.children, this.#board, id);
  }

  nextClaimable(worker: string, capabilities: readonly string[], assignedOnly: boolean): Task | undefined {
    const statement = assignedOnly ? this.#sql.nextAssigned : this.#sql.next;
    return row(statement, this.#board, this.now, JSON.stringify(capabilities), worker);
  }

  expiredLeases(): Task[] {
    return rows(this.#sql.expired, this.#board, this.now);
  }

  unsettled(limit: number): Task[] {
    return rows(this.#sql.unsettled, this.#board, limit);
  }

  ownedBy(worker: string): Task[] {
    return rows(this.#sql.owned, this.#board, worker);
  }

  assignedTo(worker: string): Task[] {
    return rows(this.#sql.assigned, this.#board, worker);
  }

  load(worker: string): number {
    return (this.#sql.load.get(this.#board, worker, this.now) as { load: number }).load;
  }

  list(filter: TaskFilter): Task[] {
    if (filter.status === undefined) return rows(this.#sql.list, this.#board, null, filter.kind ?? null, filter.parentId ?? null);
    return rows(this.#sql.listByStatus, this.#board, filter.status, filter.kind ?? null, filter.parentId ?? null);
  }

  workers(): WorkerInfo[] {
    return (this.#sql.workers.all(this.#board) as unknown as { data: string }[]).map((r) => JSON.parse(r.data) as WorkerInfo);
  }

  putWorker(worker: WorkerInfo): void {
    this.#sql.putWorker.run(this.#board, worker.id, JSON.stringify(worker));
  }

  deleteWorker(id: string): void {
    this.#sql.deleteWorker.run(this.#board, id);
  }

  finishedCount(): number {
    return (this.#sql.finishedCount.get(this.#board) as { count: number }).count;
  }

  removable(limit: number): Task[] {
    return rows(this.#sql.removable, this.#board, limit);
  }

  remove(id: string): void {
    this.#sql.remove.run(this.#board, id);
    this.#sql.removeOwnDeps.run(this.#board, id);
    this.#sql.removeDependents.run(this.#board, id);
  }

  head(): number {
    return (this.#sql.head.get(this.#board) as { seq: number }).seq;
  }

  horizon(): number {
    return (this.#sql.head.get(this.#board) as { horizon: number }).horizon;
  }

  eventTime(seq: number): number | undefined {
    return (this.#sql.eventTime.get(this.#board, seq) as { at: number } | undefined)?.at;
  }

  trimEvents(seq: number): void {
    this.#sql.trimEvents.run(this.#board, seq);
    this.#sql.setHorizon.run(this.#board, seq);
  }

  // A transaction holds the database's write lock from its first read: nothing can change under it.
  touch(): void {}

  dependOnWorker(): void {}
}

export class SqliteTaskStore implements TaskStore {
  readonly #board: string;
  readonly #conn: SqliteConnection;
  readonly #sql: Statements;

  constructor(board: string, conn: SqliteConnection) {
    this.#board = board;
    this.#conn = conn;
    this.#sql = prepare(conn);
    this.#sql.ensure.run(board);
  }

  /** The look in a read transaction (one WAL snapshot, no write lock); the work, if needed, in an IMMEDIATE one. */
  async readOrTransact<T>(look: (view: TaskView) => { value: T } | undefined, work: (tx: TaskTx) => T): Promise<T> {
    const answer = this.#conn.snapshot(() => look(new SqliteTaskTx(this.#board, this.#sql)));
    return answer ? answer.value : this.transact(work);
  }

  async transact<T>(work: (tx: TaskTx) => T): Promise<T> {
    const tx = new SqliteTaskTx(this.#board, this.#sql);
    const result = await this.#conn.transaction(() => work(tx));
    if (tx.appended > 0) this.#conn.notify();
    return result;
  }

  async events(since: number, limit = -1): Promise<TaskEvent[]> {
    // The horizon and the events from one snapshot, so that a trim in between cannot hide a gap.
    const found = this.#conn.snapshot(() => {
      const { horizon } = this.#sql.head.get(this.#board) as { horizon: number };
      if (since < horizon) throw new HorizonError(since, horizon);
      return this.#sql.events.all(this.#board, since, limit) as unknown as { seq: number; at: number; type: TaskEventType; data: string }[];
    });
    return found.map((r) => ({ seq: r.seq, at: r.at, type: r.type, task: JSON.parse(r.data) as Task }));
  }

  async head(): Promise<number> {
    return (this.#sql.head.get(this.#board) as { seq: number }).seq;
  }

  onChange(listener: () => void): () => void {
    return this.#conn.onChange(listener);
  }
}
