/**
 * The default backend: one SQLite file through `node:sqlite`, in WAL mode, safe for several
 * processes at once. Every write is one IMMEDIATE transaction (version check, entry upsert, log
 * append), so the write lock is taken before the version is read and no update is lost.
 */
import { resolve } from "node:path";
import { AGENT_PRUNE_STEP, endedAt, expiredAgents } from "../../core/agent-retention.ts";
import { nextVersion } from "../../core/cas.ts";
import { ConfigError } from "../../core/errors.ts";
import { NO_TAGS, type Tags } from "../../core/json.ts";
import type { RunInfo, StepRecord } from "../../core/records.ts";
import type { AgentRecord, AgentRetention, AgentState } from "../../core/records.ts";
import { isFinal } from "../../core/subagent-types.ts";
import type {
  AgentStore,
  Backend,
  BackendFactory,
  BoardStore,
  DeleteRequest,
  HistoryQuery,
  LeaseStore,
  Report,
  RunStore,
  StoredEntry,
  StoredRecord,
  TaskStore,
  WriteRequest,
} from "../../core/store.ts";
import { LocalBus } from "../local-bus.ts";
import { SqliteConnection } from "./connection.ts";
import { SqliteTaskStore } from "./tasks.ts";


export interface SqliteBackendOptions {
  /** The database file; default `.colony/colony.db` under the working directory. `:memory:` works too. */
  path?: string;
  /**
   * `normal` (default) survives any process crash, `kill -9` included: in WAL mode a committed
   * transaction is in the OS's hands before the write resolves. `full` also survives power loss,
   * at the price of an fsync per write.
   */
  synchronous?: "normal" | "full";
  /** How long a write waits for another process's write lock before failing; default 5000 ms. */
  busyTimeoutMs?: number;
  /** How often watchers look for writes by other processes; default 50 ms. */
  pollMs?: number;
}

export const DEFAULT_DB_PATH = ".colony/colony.db";

interface EntryRow {
  key: string;
  value: string;
  author: string;
  version: number;
  created_at: number;
  updated_at: number;
  tags: string;
}

interface LogRow {
  seq: number;
  op: string;
  key: string;
  version: number;
  author: string;
  at: number;
  value: string | null;
  tags: string;
}

/** Most entries have no tags; skip the parse for them. */
function parseTags(text: string): Tags {
  return text === "{}" ? NO_TAGS : (JSON.parse(text) as Tags);
}


function toStoredEntry(row: EntryRow): StoredEntry {
  return {
    key: row.key,
    json: row.value,
    author: row.author,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    tags: parseTags(row.tags),
  };
}

function toStoredRecord(row: LogRow): StoredRecord {
  return {
    seq: row.seq,
    op: row.op as StoredRecord["op"],
    key: row.key,
    version: row.version,
    author: row.author,
    at: row.at,
    json: row.value,
    tags: parseTags(row.tags),
  };
}

class SqliteBoardStore implements BoardStore {
  readonly #board: string;
  readonly #conn: SqliteConnection;

  constructor(board: string, conn: SqliteConnection) {
    this.#board = board;
    this.#conn = conn;
    conn.sql.ensureBoard.run(board);
  }

  async write(request: WriteRequest): Promise<{ record: StoredRecord; createdAt: number }> {
    const { sql } = this.#conn;
    const board = this.#board;
    const result = await this.#conn.transaction(() => {
      const row = sql.current.get(board, request.key) as { version: number; deleted: number } | undefined;
      const live = row && !row.deleted ? row.version : 0;
      const version = nextVersion(request.key, request.expectedVersion, live, row?.version ?? 0);
      const { seq } = sql.bump.get(board) as { seq: number };
      const tags = JSON.stringify(request.tags);
      sql.upsert.run(board, request.key, request.json, request.author, version, request.at, request.at, tags);
      sql.append.run(board, seq, "write", request.key, version, request.author, request.at, request.json, tags);
      const createdAt = live > 0 ? (sql.createdAt.get(board, request.key) as { created_at: number }).created_at : request.at;
      const record: StoredRecord = { seq, op: "write", key: request.key, version, author: request.author, at: request.at, json: request.json, tags: request.tags };
      return { record, createdAt };
    });
    this.#conn.notify();
    return result;
  }

  async delete(request: DeleteRequest): Promise<StoredRecord | undefined> {
    const { sql } = this.#conn;
    const board = this.#board;
    const record = await this.#conn.transaction(() => {
      const row = sql.current.get(board, request.key) as { version: number; deleted: number } | undefined;
      const live = row && !row.deleted ? row.version : 0;
      if (live === 0 && request.expectedVersion === undefined) return undefined;
      const version = nextVersion(request.key, request.expectedVersion, live, row?.version ?? 0);
      if (live === 0) return undefined;
      const { seq } = sql.bump.get(board) as { seq: number };
      sql.tombstone.run(version, request.author, request.at, board, request.key);
      sql.append.run(board, seq, "delete", request.key, version, request.author, request.at, null, "{}");
      const deleted: StoredRecord = { seq, op: "delete", key: request.key, version, author: request.author, at: request.at, json: null, tags: NO_TAGS };
      return deleted;
    });
    if (record) this.#conn.notify();
    return record;
  }

  async get(key: string): Promise<StoredEntry | undefined> {
    const row = this.#conn.sql.get.get(this.#board, key) as EntryRow | undefined;
    return row && toStoredEntry(row);
  }

  async load(): Promise<{ entries: StoredEntry[]; seq: number }> {
    const { sql } = this.#conn;
    return this.#conn.snapshot(() => {
      const rows = sql.live.all(this.#board) as unknown as EntryRow[];
      const { seq } = sql.head.get(this.#board) as { seq: number };
      return { entries: rows.map(toStoredEntry), seq };
    });
  }

  async history(query: HistoryQuery): Promise<StoredRecord[]> {
    const { sql } = this.#conn;
    const since = query.since ?? 0;
    const limit = query.limit ?? -1; // SQLite: a negative LIMIT means none
    const rows =
      query.key === undefined
        ? sql.history.all(this.#board, since, limit)
        : sql.keyHistory.all(this.#board, query.key, since, limit);
    return (rows as unknown as LogRow[]).map(toStoredRecord);
  }

  onChange(listener: () => void): () => void {
    return this.#conn.onChange(listener);
  }
}

class SqliteRunStore implements RunStore {
  readonly #conn: SqliteConnection;

  constructor(conn: SqliteConnection) {
    this.#conn = conn;
  }

  async createRun(run: RunInfo): Promise<void> {
    await this.#conn.transaction(() => this.#conn.sql.createRun.run(run.runId, run.startedAt, JSON.stringify(run)));
  }

  async appendStep(runId: string, step: StepRecord): Promise<void> {
    await this.#conn.transaction(() => this.#conn.sql.appendStep.run(runId, step.index, JSON.stringify(step)));
  }

  async finishRun(run: RunInfo): Promise<void> {
    await this.#conn.transaction(() => this.#conn.sql.updateRun.run(JSON.stringify(run), run.runId));
  }

  async listRuns(options: { limit?: number } = {}): Promise<RunInfo[]> {
    const rows = this.#conn.sql.listRuns.all(options.limit ?? -1) as unknown as { data: string }[];
    return rows.map((r) => JSON.parse(r.data) as RunInfo);
  }

  async getRun(runId: string): Promise<{ run: RunInfo; steps: StepRecord[] } | undefined> {
    const row = this.#conn.sql.getRun.get(runId) as { data: string } | undefined;
    if (!row) return undefined;
    const steps = this.#conn.sql.getSteps.all(runId) as unknown as { data: string }[];
    return { run: JSON.parse(row.data) as RunInfo, steps: steps.map((s) => JSON.parse(s.data) as StepRecord) };
  }
}

function toAgentRecord(row: { data: string; state: string; generation: number }): AgentRecord {
  return { ...(JSON.parse(row.data) as AgentRecord), state: row.state as AgentState, generation: row.generation };
}

/** The `ended_at` column: when an ended agent ended, NULL while it is live. */
function endedAtColumn(record: AgentRecord): number | null {
  return isFinal(record.state) ? endedAt(record) : null;
}

class SqliteAgentStore implements AgentStore {
  readonly #conn: SqliteConnection;

  constructor(conn: SqliteConnection) {
    this.#conn = conn;
  }

  async insert(record: AgentRecord): Promise<void> {
    const { sql } = this.#conn;
    await this.#conn.transaction(() =>
      sql.insertAgent.run(record.id, record.parentId ?? null, record.state, record.generation, record.ownerPid, record.startedAt, endedAtColumn(record), JSON.stringify(record)),
    );
  }

  async transition(id: string, generation: number, patch: Partial<AgentRecord> & { state: AgentState }): Promise<boolean> {
    const { sql } = this.#conn;
    return this.#conn.transaction(() => {
      const row = sql.getAgent.get(id) as { data: string; state: string; generation: number } | undefined;
      if (!row || row.generation !== generation) return false;
      const next = { ...toAgentRecord(row), ...patch, generation: generation + 1 };
      return sql.transitionAgent.run(patch.state, endedAtColumn(next), JSON.stringify(next), id, generation).changes === 1;
    });
  }

  async updateUsage(id: string, usage: AgentRecord["usage"]): Promise<void> {
    await this.#conn.transaction(() => this.#conn.sql.agentUsage.run(JSON.stringify(usage), id));
  }

  async get(id: string): Promise<AgentRecord | undefined> {
    const row = this.#conn.sql.getAgent.get(id) as { data: string; state: string; generation: number } | undefined;
    return row && toAgentRecord(row);
  }

  async list(filter: { parentId?: string; state?: AgentState } = {}): Promise<AgentRecord[]> {
    const rows = this.#conn.sql.listAgents.all(filter.parentId ?? null, filter.state ?? null) as unknown as {
      data: string;
      state: string;
      generation: number;
    }[];
    return rows.map(toAgentRecord);
  }

  async requestKill(id: string, cascade: boolean): Promise<boolean> {
    return this.#conn.transaction(() => this.#conn.sql.requestKill.run(cascade ? 2 : 1, id).changes === 1);
  }

  async takeKillRequests(ownerPid: number): Promise<{ id: string; cascade: boolean }[]> {
    // Polled often: read first, and take the write lock only when there is something to clear.
    const { sql } = this.#conn;
    const rows = sql.killRequests.all(ownerPid) as unknown as { id: string; kill_requested: number }[];
    if (rows.length > 0) await this.#conn.transaction(() => rows.forEach((row) => sql.clearKill.run(row.id)));
    return rows.map((r) => ({ id: r.id, cascade: r.kill_requested === 2 }));
  }

  async putReport(agentId: string, report: Report): Promise<void> {
    await this.#conn.transaction(() => this.#conn.sql.putReport.run(agentId, JSON.stringify(report)));
  }

  async getReport(agentId: string): Promise<Report | undefined> {
    const row = this.#conn.sql.getReport.get(agentId) as { data: string } | undefined;
    return row && (JSON.parse(row.data) as Report);
  }

  async prune(retention: AgentRetention, now: number): Promise<boolean> {
    const { sql } = this.#conn;
    const expired = () => {
      const { count } = sql.endedAgents.get() as { count: number };
      return expiredAgents(sql.removableAgents.all(AGENT_PRUNE_STEP) as unknown as { id: string; endedAt: number }[], count, retention, now);
    };
    // Run often: look first, and take the write lock only when there is something to remove.
    if (this.#conn.snapshot(() => expired().length === 0 && sql.orphanReport.get() === undefined)) return false;
    return this.#conn.transaction(() => {
      const removed = expired();
      for (const { id } of removed) sql.deleteAgent.run(id);
      // Their reports, and any that a removed agent's owner wrote after it went.
      sql.deleteOrphanReports.run();
      return removed.length === AGENT_PRUNE_STEP;
    });
  }
}

class SqliteLeaseStore implements LeaseStore {
  readonly #conn: SqliteConnection;

  constructor(conn: SqliteConnection) {
    this.#conn = conn;
  }

  async get(name: string): Promise<{ holder?: string; revision: number }> {
    const row = this.#conn.sql.getLease.get(name) as { holder: string | null; revision: number } | undefined;
    return row ? { ...(row.holder !== null && { holder: row.holder }), revision: row.revision } : { revision: 0 };
  }

  async put(name: string, holder: string, revision: number): Promise<number | undefined> {
    return this.#swap(name, holder, revision);
  }

  async release(name: string, revision: number): Promise<boolean> {
    return (await this.#swap(name, null, revision)) !== undefined;
  }

  #swap(name: string, holder: string | null, revision: number): Promise<number | undefined> {
    const { sql } = this.#conn;
    return this.#conn.transaction(() => {
      const row = sql.getLease.get(name) as { revision: number } | undefined;
      if ((row?.revision ?? 0) !== revision) return undefined;
      const next = (sql.nextLeaseRevision.get() as { revision: number }).revision;
      sql.putLease.run(name, holder, next);
      return next;
    });
  }
}

/**
 * The colonies of one process on one file share a bus; other processes have buses of their own
 * (what must cross processes goes through the file).
 */
const buses = new Map<string, LocalBus>();
function busOf(path: string): LocalBus {
  const key = path === ":memory:" ? `:memory:${buses.size}` : resolve(path);
  let bus = buses.get(key);
  if (!bus) buses.set(key, (bus = new LocalBus()));
  return bus;
}

/**
 * The embedded default: a SQLite file that several processes may share.
 *
 * @example
 * const colony = createColony({ backend: sqliteBackend({ path: "data/colony.db" }) });
 */
export function sqliteBackend(options: SqliteBackendOptions = {}): BackendFactory {
  const path = options.path ?? DEFAULT_DB_PATH;
  if (typeof path !== "string" || path.length === 0) throw new ConfigError("sqliteBackend: path is a non-empty file path");
  const synchronous = options.synchronous ?? "normal";
  if (synchronous !== "normal" && synchronous !== "full") {
    throw new ConfigError(`sqliteBackend: synchronous is "normal" or "full", got ${JSON.stringify(synchronous)}`);
  }
  const busyTimeoutMs = positiveInteger("busyTimeoutMs", options.busyTimeoutMs ?? 5000);
  const pollMs = positiveInteger("pollMs", options.pollMs ?? 50);
  return {
    kind: "sqlite",
    embedded: true,
    location: path,
    async open(): Promise<Backend> {
      const conn = new SqliteConnection(path, { synchronous, busyTimeoutMs, pollMs });
      return {
        runs: new SqliteRunStore(conn),
        agents: new SqliteAgentStore(conn),
        leases: new SqliteLeaseStore(conn),
        bus: busOf(path),
        async openBoard(name: string): Promise<BoardStore> {
          return new SqliteBoardStore(name, conn);
        },
        async openTasks(name: string): Promise<TaskStore> {
          return new SqliteTaskStore(name, conn);
        },
        async listBoards() {
          const names = (sql: string) => conn.db.prepare(sql).all().map((row) => String(row.name));
          return { boards: names("SELECT name FROM boards ORDER BY name"), tasks: names("SELECT name FROM task_boards ORDER BY name") };
        },
        async close(): Promise<void> {
          conn.close();
        },
      };
    },
  };
}

function positiveInteger(name: string, value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 1) {
    throw new ConfigError(`sqliteBackend: ${name} is a whole number of milliseconds >= 1, got ${String(value)}`);
  }
  return value as number;
}
