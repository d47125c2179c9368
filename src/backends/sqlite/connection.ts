/**
 * One connection to a Colony SQLite file: the prepared statements of boards, runs and agents,
 * IMMEDIATE transactions, and change notification across processes (by polling data_version).
 */
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, statSync, unlinkSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { setImmediate as yieldTurn, setTimeout as sleep } from "node:timers/promises";
import { ColonyError, StoreBusyError, StoreOpenError } from "../../core/errors.ts";
import { migrate } from "./schema.ts";

export interface ConnectionOptions {
  synchronous: "normal" | "full";
  busyTimeoutMs: number;
  pollMs: number;
}

/** A transaction waiting for the write lock (see `SqliteConnection.transaction`). */
interface Waiting {
  work: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** When it gives up waiting: its busy timeout from when it began to wait. */
  deadline: number;
}

/** How many waiting transactions commit together, at most. */
const GROUP_MAX = 64;



/** Prepared statements, shared by every board of one connection. */
function prepare(db: DatabaseSync) {
  const s = (sql: string): StatementSync => db.prepare(sql);
  return {
    begin: s("BEGIN IMMEDIATE"),
    noWait: s("PRAGMA busy_timeout = 0"),
    beginRead: s("BEGIN"),
    commit: s("COMMIT"),
    rollback: s("ROLLBACK"),
    savepoint: s("SAVEPOINT grouped"),
    release: s("RELEASE grouped"),
    rollbackTo: s("ROLLBACK TO grouped"),
    ensureBoard: s("INSERT INTO boards (name, seq) VALUES (?, 0) ON CONFLICT (name) DO NOTHING"),
    current: s("SELECT version, deleted FROM entries WHERE board = ? AND key = ?"),
    createdAt: s("SELECT created_at FROM entries WHERE board = ? AND key = ?"),
    bump: s("UPDATE boards SET seq = seq + 1 WHERE name = ? RETURNING seq"),
    upsert: s(
      `INSERT INTO entries (board, key, value, author, version, created_at, updated_at, tags, deleted)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)
       ON CONFLICT (board, key) DO UPDATE SET value = excluded.value, author = excluded.author,
         version = excluded.version, updated_at = excluded.updated_at, tags = excluded.tags, deleted = 0,
         created_at = CASE WHEN entries.deleted THEN excluded.created_at ELSE entries.created_at END`,
    ),
    tombstone: s("UPDATE entries SET deleted = 1, version = ?, author = ?, updated_at = ? WHERE board = ? AND key = ?"),
    append: s("INSERT INTO log (board, seq, op, key, version, author, at, value, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
    get: s("SELECT key, value, author, version, created_at, updated_at, tags FROM entries WHERE board = ? AND key = ? AND deleted = 0"),
    live: s("SELECT key, value, author, version, created_at, updated_at, tags FROM entries WHERE board = ? AND deleted = 0"),
    head: s("SELECT seq FROM boards WHERE name = ?"),
    history: s("SELECT seq, op, key, version, author, at, value, tags FROM log WHERE board = ? AND seq > ? ORDER BY seq LIMIT ?"),
    keyHistory: s(
      "SELECT seq, op, key, version, author, at, value, tags FROM log WHERE board = ? AND key = ? AND seq > ? ORDER BY seq LIMIT ?",
    ),
    dataVersion: s("PRAGMA data_version"),
    createRun: s("INSERT INTO runs (run_id, started_at, data) VALUES (?, ?, ?)"),
    updateRun: s("UPDATE runs SET data = ? WHERE run_id = ?"),
    appendStep: s("INSERT INTO steps (run_id, idx, data) VALUES (?, ?, ?)"),
    listRuns: s("SELECT data FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?"),
    getRun: s("SELECT data FROM runs WHERE run_id = ?"),
    getSteps: s("SELECT data FROM steps WHERE run_id = ? ORDER BY idx"),
    insertAgent: s("INSERT INTO agents (id, parent_id, state, generation, owner_pid, started_at, ended_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
    transitionAgent: s("UPDATE agents SET state = ?, generation = generation + 1, ended_at = ?, data = ? WHERE id = ? AND generation = ?"),
    agentUsage: s("UPDATE agents SET data = json_set(data, '$.usage', json(?)) WHERE id = ?"),
    getAgent: s("SELECT data, state, generation FROM agents WHERE id = ?"),
    listAgents: s(
      `SELECT data, state, generation FROM agents WHERE (?1 IS NULL OR parent_id = ?1) AND (?2 IS NULL OR state = ?2) ORDER BY started_at, id`,
    ),
    requestKill: s(
      "UPDATE agents SET kill_requested = ? WHERE id = ? AND state NOT IN ('succeeded', 'failed', 'terminated')",
    ),
    killRequests: s("SELECT id, kill_requested FROM agents WHERE owner_pid = ? AND kill_requested IS NOT NULL"),
    clearKill: s("UPDATE agents SET kill_requested = NULL WHERE id = ?"),
    endedAgents: s("SELECT count(*) AS count FROM agents WHERE ended_at IS NOT NULL"),
    // Ended agents in the order they ended, less those whose parent is live and the ancestors of a
    // live one (see agentsPastRetention).
    removableAgents: s(
      `WITH RECURSIVE live (id, parent_id) AS (SELECT id, parent_id FROM agents WHERE ended_at IS NULL),
         held (id) AS (
           SELECT parent_id FROM live WHERE parent_id IS NOT NULL
           UNION SELECT agents.parent_id FROM agents JOIN held ON agents.id = held.id WHERE agents.parent_id IS NOT NULL
         )
       SELECT id, ended_at AS endedAt FROM agents
       WHERE ended_at IS NOT NULL AND id NOT IN held AND (parent_id IS NULL OR parent_id NOT IN (SELECT id FROM live))
       ORDER BY ended_at, id LIMIT ?`,
    ),
    deleteAgent: s("DELETE FROM agents WHERE id = ?"),
    orphanReport: s("SELECT 1 FROM reports WHERE agent_id NOT IN (SELECT id FROM agents) LIMIT 1"),
    deleteOrphanReports: s("DELETE FROM reports WHERE agent_id NOT IN (SELECT id FROM agents)"),
    putReport: s("INSERT INTO reports (agent_id, data) VALUES (?, ?) ON CONFLICT (agent_id) DO UPDATE SET data = excluded.data"),
    getReport: s("SELECT data FROM reports WHERE agent_id = ?"),
    getLease: s("SELECT holder, revision FROM leases WHERE name = ?"),
    nextLeaseRevision: s("UPDATE lease_revision SET revision = revision + 1 RETURNING revision"),
    putLease: s("INSERT INTO leases (name, holder, revision) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, revision = excluded.revision"),
  };
}

type Statements = ReturnType<typeof prepare>;

export class SqliteConnection {
  readonly path: string;
  readonly db: DatabaseSync;
  readonly sql: Statements;
  readonly #listeners = new Set<() => void>();
  #timer: NodeJS.Timeout | undefined;
  #dataVersion = 0;
  readonly #pollMs: number;
  readonly #busyTimeoutMs: number;
  readonly #wait: StatementSync;
  /** Transactions waiting for the write lock, oldest first, and whether a drain of them runs. */
  readonly #waiting: Waiting[] = [];
  #draining = false;

  constructor(path: string, options: ConnectionOptions) {
    this.path = path;
    this.#pollMs = options.pollMs;
    this.#busyTimeoutMs = options.busyTimeoutMs;
    this.db = open(path, options);
    this.sql = prepare(this.db);
    this.#wait = this.db.prepare(`PRAGMA busy_timeout = ${options.busyTimeoutMs}`);
  }

  /**
   * Runs `work` in one IMMEDIATE transaction: the write lock is held from the first read. While
   * another process holds the lock, this waits for it without blocking the event loop (SQLite's
   * own busy handler sleeps the whole process, up to 100 ms a time): the process goes on with its
   * other work, and tries again soon, until `busyTimeoutMs`. Once it has the lock, `work` and the
   * commit run at once, so no other transaction of this connection can come between.
   *
   * Those that had to wait keep their order, and once the lock is taken they all run under it,
   * each in a savepoint of its own, and commit together (at most GROUP_MAX): when several
   * processes share the file, a process then takes the lock once for what it queued meanwhile
   * rather than once per transaction. One that throws is undone alone, to its savepoint.
   */
  async transaction<T>(work: () => T): Promise<T> {
    if (this.#waiting.length === 0 && this.#begin()) return this.#run(work);
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push({ work, resolve: resolve as (value: unknown) => void, reject, deadline: Date.now() + this.#busyTimeoutMs });
      if (!this.#draining) void this.#drain();
    });
  }

  /** Takes the lock for the waiting transactions, again and again until none waits. */
  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      for (let attempt = 0; this.#waiting.length > 0; ) {
        if (!this.#begin()) {
          // Those that waited past the busy timeout give up; the others wait on.
          const now = Date.now();
          while (this.#waiting.length > 0 && this.#waiting[0]!.deadline < now) this.#waiting.shift()!.reject(new StoreBusyError(this.path, undefined));
          // First a turn of the event loop, then a millisecond or a few: short, since a transaction
          // holds the lock for well under one, and with jitter, so that waiters do not march in step.
          await (attempt === 0 ? yieldTurn() : sleep(Math.random() * Math.min(attempt, 5) + 0.5));
          attempt++;
          continue;
        }
        attempt = 0;
        this.#runGroup(this.#waiting.splice(0, GROUP_MAX));
      }
    } catch (error) {
      // Taking the lock failed otherwise than by another holding it (the file itself): every
      // transaction still waiting hears it, as each would have on its own.
      for (const { reject } of this.#waiting.splice(0)) reject(error);
    } finally {
      this.#draining = false;
    }
  }

  /** Runs `group` under the lock just taken, each transaction in a savepoint, and commits them together. */
  #runGroup(group: Waiting[]): void {
    if (group.length === 1) {
      const [only] = group;
      try {
        only!.resolve(this.#run(only!.work));
      } catch (error) {
        only!.reject(error);
      }
      return;
    }
    let outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[];
    try {
      outcomes = group.map(({ work }) => {
        this.sql.savepoint.run();
        try {
          const value = work();
          this.sql.release.run();
          return { ok: true as const, value };
        } catch (error) {
          this.sql.rollbackTo.run();
          this.sql.release.run();
          return { ok: false as const, error };
        }
      });
      this.sql.commit.run();
    } catch (error) {
      // The savepoints or the commit themselves failed (the file, not a transaction): none holds.
      if (this.db.isTransaction) this.sql.rollback.run();
      for (const { reject } of group) reject(error);
      return;
    }
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.ok) group[i]!.resolve(outcome.value);
      else group[i]!.reject(outcome.error);
    }
  }

  /** BEGIN IMMEDIATE if the write lock is free now; false if another connection holds it. */
  #begin(): boolean {
    this.sql.noWait.run();
    try {
      this.sql.begin.run();
      return true;
    } catch (error) {
      if (isBusy(error)) return false;
      throw error;
    } finally {
      this.#wait.run();
    }
  }

  #run<T>(work: () => T): T {
    try {
      const result = work();
      this.sql.commit.run();
      return result;
    } catch (error) {
      if (this.db.isTransaction) this.sql.rollback.run();
      throw error;
    }
  }

  /** Runs `work` in one read transaction, so that several reads see one snapshot. */
  snapshot<T>(work: () => T): T {
    this.sql.beginRead.run();
    try {
      return work();
    } finally {
      this.sql.commit.run();
    }
  }

  /** Tells listeners that something was written here; other processes' writes are polled for. */
  notify(): void {
    for (const listener of this.#listeners) listener();
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    if (this.#timer === undefined) {
      this.#dataVersion = this.#readDataVersion();
      this.#timer = setInterval(() => this.#poll(), this.#pollMs);
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stopPolling();
    };
  }

  close(): void {
    this.#stopPolling();
    this.#listeners.clear();
    if (this.db.isOpen) this.db.close();
  }

  #poll(): void {
    const version = this.#readDataVersion();
    if (version !== this.#dataVersion) {
      this.#dataVersion = version;
      this.notify();
    }
  }

  #readDataVersion(): number {
    return (this.sql.dataVersion.get() as { data_version: number }).data_version;
  }

  #stopPolling(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

function isBusy(error: unknown): boolean {
  const code = (error as { errcode?: number }).errcode;
  return code === 5 || code === 6; // SQLITE_BUSY, SQLITE_LOCKED
}

/**
 * Opens (creating if need be) and migrates the file; whatever is wrong with it is one `StoreOpenError`.
 * SQLite answers BUSY at once, without its busy handler, to a connection that opens the file while
 * another is switching it to WAL or recovering its WAL index; so a busy open is tried again, a few
 * milliseconds later, until `busyTimeoutMs` has passed.
 */
function open(path: string, options: ConnectionOptions): DatabaseSync {
  if (path !== ":memory:") makeParents(path);
  const deadline = Date.now() + options.busyTimeoutMs;
  for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path, { timeout: options.busyTimeoutMs });
      db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${options.synchronous.toUpperCase()};`);
      migrate(db, path);
      return db;
    } catch (error) {
      if (db?.isOpen) db.close();
      if (error instanceof ColonyError) throw error; // a newer schema: migrate says so itself
      if (!isBusy(error)) throw new StoreOpenError(path, problemOf(path, error), error);
      if (Date.now() >= deadline) throw new StoreBusyError(path, error);
      Atomics.wait(PAUSE, 0, 0, pause); // opening is synchronous, so the pause is too
    }
  }
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/**
 * Creates the file's missing directories one at a time. Not `mkdirSync(…, { recursive: true })`:
 * where a directory exists but refuses new entries (ENOENT under /proc), Node's retries it forever.
 */
function makeParents(path: string): void {
  const missing: string[] = [];
  for (let dir = dirname(resolve(path)); !existsSync(dir) && dir !== dirname(dir); dir = dirname(dir)) missing.unshift(dir);
  for (const dir of missing) {
    try {
      mkdirSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") continue; // another process was quicker
      throw new StoreOpenError(path, `cannot create its directory ${dir}: ${errnoText(error)}`, error);
    }
  }
}

/** What SQLite's complaint means for this file, in words that say what to do. */
function problemOf(path: string, error: unknown): string {
  const sqlite = (error as { errcode?: number; errstr?: string }).errstr ?? String(error);
  switch (((error as { errcode?: number }).errcode ?? 0) & 0xff) {
    case 8: // SQLITE_READONLY
      return `is read-only; Colony writes to it and to ${basename(path)}-wal and -shm beside it, so make both the file and its directory writable`;
    case 11: // SQLITE_CORRUPT
      return `is damaged (truncated or malformed: ${sqlite}); restore it from a copy or move it away to start afresh`;
    case 26: // SQLITE_NOTADB
      return "is not a SQLite database; give the path of a Colony database, or of one to create";
    case 14: // SQLITE_CANTOPEN
      return whyCannotOpen(path) ?? `SQLite cannot open it (${sqlite})`;
    default:
      return `SQLite cannot use it (${sqlite})`;
  }
}

/**
 * SQLite says only "unable to open": the file system says why. A probe that creates the file
 * removes it again; it runs only after SQLite failed.
 */
function whyCannotOpen(path: string): string | undefined {
  let exists: boolean;
  try {
    if (statSync(path).isDirectory()) return `is a directory; give a file path, such as ${join(path, "colony.db")}`;
    exists = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") return errnoText(error);
    exists = false;
  }
  try {
    closeSync(openSync(path, exists ? "r+" : "wx"));
    if (!exists) unlinkSync(path);
  } catch (error) {
    return `cannot be ${exists ? "opened for writing" : "created"}: ${errnoText(error)}`;
  }
  try {
    accessSync(dirname(resolve(path)), constants.W_OK);
  } catch (error) {
    return `its directory is not writable (${errnoText(error)}); Colony creates ${basename(path)}-wal and -shm beside the file`;
  }
  return undefined;
}

function errnoText(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  const reasons: Record<string, string> = {
    EACCES: "permission denied",
    EPERM: "not permitted",
    EROFS: "a read-only file system",
    ENOTDIR: "a part of the path is a file, not a directory",
    ENOENT: "the file system refuses new entries there",
    ENOSPC: "no space left on the device",
    EISDIR: "it is a directory",
  };
  return code === undefined ? message : `${reasons[code] ?? message} (${code})`;
}
