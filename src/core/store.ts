/**
 * The storage contract every backend keeps. Core code talks to these interfaces only; no driver
 * type (a database handle, a transaction, a JetStream client) appears here.
 *
 * Values cross this boundary as JSON text, so a backend never holds a reference to a caller's
 * object and every reader gets its own copy.
 */
import type { RunInfo, StepRecord } from "./records.ts";
import type { AgentRecord, AgentRetention, AgentState } from "./records.ts";
import type { Tags } from "./json.ts";
import type { Task, TaskEvent, TaskEventType, TaskFilter, WorkerInfo } from "./tasks.ts";

/** An entry as stored: the value is JSON text. */
export interface StoredEntry {
  key: string;
  json: string;
  author: string;
  version: number;
  createdAt: number;
  updatedAt: number;
  tags: Tags;
}

/** A log record as stored; `json` is null for a delete. */
export interface StoredRecord {
  seq: number;
  op: "write" | "delete";
  key: string;
  version: number;
  author: string;
  at: number;
  json: string | null;
  tags: Tags;
}

export interface WriteRequest {
  key: string;
  json: string;
  author: string;
  tags: Tags;
  /** undefined = unconditional, 0 = create only, n = only if the current version is n. */
  expectedVersion?: number;
  at: number;
}

export interface DeleteRequest {
  key: string;
  author: string;
  expectedVersion?: number;
  at: number;
}

export interface HistoryQuery {
  key?: string;
  /** Records with `seq` greater than this; 0 = from the start. */
  since?: number;
  limit?: number;
}

/**
 * Messages a store found in its log but skipped, because Colony did not write them: how many
 * (each counted once per process), and why, for the newest few.
 */
export interface RejectedMessages {
  count: number;
  last: string[];
}

/**
 * One board's storage. Each successful `write` and `delete` appends exactly one record to the
 * board's log in the same atomic step as the entry change; `seq` is gap-free per board.
 *
 * (On a networked store, a message Colony did not write leaves a gap: see `rejected`.)
 *
 * Versions never repeat for a key: a delete takes the next version (a tombstone) and a write
 * after it the one after that. A key that does not exist has version 0 for compare-and-set.
 */
export interface BoardStore {
  /** Throws `VersionConflictError` (and writes nothing) when `expectedVersion` does not match. */
  write(request: WriteRequest): Promise<{ record: StoredRecord; createdAt: number }>;
  /** Resolves undefined, writing nothing, when the key does not exist and no version was expected. */
  delete(request: DeleteRequest): Promise<StoredRecord | undefined>;
  get(key: string): Promise<StoredEntry | undefined>;
  /** Every live entry and the log position they reflect, read as one consistent snapshot. */
  load(): Promise<{ entries: StoredEntry[]; seq: number }>;
  /** Log records in `seq` order. */
  history(query: HistoryQuery): Promise<StoredRecord[]>;
  /**
   * Calls `listener` whenever records may have been appended, by this process or (where the
   * backend can see them) by another one. A spurious call is allowed; a missed one is not.
   */
  onChange(listener: () => void): () => void;
  /**
   * A networked store (NATS) reads a log that programs other than Colony can publish to; what
   * does not hold a record as Colony writes it is skipped, as if never written (its `seq` is a
   * gap), and counted here. The embedded stores (memory, SQLite) are written only through
   * Colony's own code, so they have nothing to count and omit this.
   */
  rejected?(): RejectedMessages;
}

/** Where runs and their steps are kept, so they can be inspected after the process exits. */
export interface RunStore {
  createRun(run: RunInfo): Promise<void>;
  appendStep(runId: string, step: StepRecord): Promise<void>;
  finishRun(run: RunInfo): Promise<void>;
  listRuns(options?: { limit?: number }): Promise<RunInfo[]>;
  getRun(runId: string): Promise<{ run: RunInfo; steps: StepRecord[] } | undefined>;
}

/** What a finished `on_demand` child left for its parent. */
export type Report = { status: "succeeded"; result: unknown } | { status: "failed"; reason: string; error: string };

/**
 * The registry of sub-agents, shared by every process on the backend, and the report store.
 * A lifecycle move is compare-and-set on the record's generation.
 */
export interface AgentStore {
  insert(record: AgentRecord): Promise<void>;
  /** Applies `patch` and bumps the generation only if the record is still at `generation`. */
  transition(id: string, generation: number, patch: Partial<AgentRecord> & { state: AgentState }): Promise<boolean>;
  /** Usage figures change often and do not move the lifecycle, so they skip the generation. */
  updateUsage(id: string, usage: AgentRecord["usage"]): Promise<void>;
  get(id: string): Promise<AgentRecord | undefined>;
  list(filter?: { parentId?: string; state?: AgentState }): Promise<AgentRecord[]>;
  /** Asks the owning process to terminate the agent; false if no such agent is live. */
  requestKill(id: string, cascade: boolean): Promise<boolean>;
  /** Kill requests for live agents owned by `ownerPid`, taken (cleared) as they are read. */
  takeKillRequests(ownerPid: number): Promise<{ id: string; cascade: boolean }[]>;
  putReport(agentId: string, report: Report): Promise<void>;
  getReport(agentId: string): Promise<Report | undefined>;
  /**
   * Removes what `retention` no longer keeps, measured against `now`: up to `AGENT_PRUNE_STEP`
   * ended agents, oldest ended first, never a live one nor one whose parent or a descendant is live
   * (see `agentsPastRetention`), each with its report and kill request; and any report or kill
   * request left by an agent no longer in the registry. True if it stopped at its bound with more
   * to remove. Safe to run in several processes at once.
   */
  prune(retention: AgentRetention, now: number): Promise<boolean>;
}

/**
 * Named leases for leader election: a holder and a revision that grows on every write of any
 * lease, so that a revision is never seen twice. Expiry is the caller's business (measured on its
 * own clock from when it saw a revision), so no two machines' clocks are ever compared.
 */
export interface LeaseStore {
  /** The lease's holder (undefined when free) and its revision (0 = never held). */
  get(name: string): Promise<{ holder?: string; revision: number }>;
  /** Sets the holder if the lease is still at `revision`; the new revision, or undefined if it moved. */
  put(name: string, holder: string, revision: number): Promise<number | undefined>;
  /** Frees the lease if it is still at `revision`; false if it moved. */
  release(name: string, revision: number): Promise<boolean>;
}

/** A message handler on the bus: the message's own subject, and `reply` when the sender asked for an answer. */
export type BusHandler = (payload: Uint8Array, subject: string, reply?: (payload: Uint8Array) => void) => void;

/**
 * Publish/subscribe between the processes of one swarm: raw bytes on subjects (dot-separated
 * tokens; `*` matches one token, `>` the rest). Delivery is at most once: what must not be lost
 * goes through a board or a task board instead. Validation lives above it, in the runtime.
 */
export interface BusTransport {
  /** The largest payload the transport carries, in bytes. */
  readonly maxPayload: number;
  publish(subject: string, payload: Uint8Array): void;
  /**
   * With `queue`, each message goes to one subscriber of the group instead of to all. Returns the
   * unsubscribe, which resolves once the messages already on their way to this subscriber when it
   * was called have been handed to `handler` (a server may still send some until it has heard).
   */
  subscribe(subject: string, handler: BusHandler, options?: { queue?: string }): () => Promise<void>;
  /** The first reply; rejects with BusTimeoutError after timeoutMs, or at once if nobody listens. */
  request(subject: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
}

/** What a backend holds, by name. */
export interface BoardNames {
  boards: string[];
  tasks: string[];
}

/** An open backend. */
export interface Backend {
  openBoard(name: string): Promise<BoardStore>;
  /** Opens (creating if needed) a task board; names follow the board-name rule. */
  openTasks(name: string): Promise<TaskStore>;
  readonly runs: RunStore;
  readonly agents: AgentStore;
  readonly leases: LeaseStore;
  /** Spans this process on the embedded backends, the whole swarm on NATS. */
  readonly bus: BusTransport;
  /**
   * The names of the boards and of the task boards this backend holds (those opened so far, by
   * any process sharing it), each sorted; an opened board may be empty.
   */
  listBoards(): Promise<BoardNames>;
  /** The sum of `rejected()` over every board and task board this backend opened; omitted where no store has it. */
  rejected?(): RejectedMessages;
  close(): Promise<void>;
}

/**
 * What `createColony({ backend })` takes: a description of a backend that is opened on first
 * use, so that creating a colony has no side effect and bad options fail before any I/O.
 */
export interface BackendFactory {
  readonly kind: string;
  /** Where the data lives, for messages ("sqlite .colony/colony.db"). */
  readonly location: string;
  /** One machine's store (memory, SQLite), as opposed to a swarm's; decides defaults such as local fallback. */
  readonly embedded: boolean;
  open(): Promise<Backend>;
}

/** One task board's state as one consistent snapshot: what reads need, and nothing that writes. */
export interface TaskView {
  /** The snapshot's clock, read once at its start. */
  readonly now: number;
  get(id: string): Task | undefined;
  byIdempotencyKey(key: string): Task | undefined;
  /** Tasks whose `dependsOn` names `id`. */
  dependents(id: string): Task[];
  /** Tasks whose `parentId` is `id`. */
  children(id: string): Task[];
  /**
   * The pending task first in line for `worker`: `runAfter` passed, capability offered, and not
   * reserved for another worker (no assignee, the worker itself, or `assignedUntil` passed);
   * highest priority, then oldest. With `assignedOnly`, only tasks reserved for `worker`.
   */
  nextClaimable(worker: string, capabilities: readonly string[], assignedOnly: boolean): Task | undefined;
  /** Claimed tasks whose lease ended before `now`. */
  expiredLeases(): Task[];
  /** Claimed tasks held by `worker`. */
  ownedBy(worker: string): Task[];
  /** Pending tasks reserved for `worker`. */
  assignedTo(worker: string): Task[];
  /** How many tasks `worker` holds, plus those reserved for it whose reservation has not passed. */
  load(worker: string): number;
  list(filter: TaskFilter): Task[];
  workers(): WorkerInfo[];
  /** Up to `limit` ended tasks marked `settling` (a cascade left for the next transaction), oldest first. */
  unsettled(limit: number): Task[];
  /** How many tasks have ended (and are not `settling`). */
  finishedCount(): number;
  /**
   * Up to `limit` ended tasks that retention may remove, in the order they ended: not `settling`,
   * and with no unfinished dependent, subtask or parent still on the board.
   */
  removable(limit: number): Task[];
  /** The newest event's `seq`; 0 before the first. */
  head(): number;
  /** The newest event removed under retention; events after it are kept. 0 = none removed. */
  horizon(): number;
  /** When event `seq` happened, if it is kept. */
  eventTime(seq: number): number | undefined;
}

/**
 * One task board's state as seen inside a transaction. Reads see every write made earlier in the
 * same transaction; all of it commits at once or not at all.
 *
 * What a backend must guarantee is compare-and-set per task and per worker, not a lock over the
 * board: a transaction commits only if no task or worker it wrote, removed, `touch`ed or
 * `dependOnWorker`ed was changed by another transaction since it read it. Its other reads
 * (`nextClaimable`, `list`, loads) are of one consistent snapshot, and a transaction that loses a
 * race on what it wrote runs again on the newer state. So transactions on different tasks never
 * wait for each other; the engine marks every read that a decision rests on. A backend whose
 * transactions are serialisable over the whole board (memory, SQLite) has nothing more to do.
 */
export interface TaskTx extends TaskView {
  /** A fresh task id, unique on this board. */
  nextId(): string;
  /** Stores a new or changed task; with `event`, appends it to the board's event log. */
  put(task: Task, event?: TaskEventType): void;
  putWorker(worker: WorkerInfo): void;
  deleteWorker(id: string): void;
  /** Removes an ended task under retention (see `removable`). No event: nothing about it changed. */
  remove(id: string): void;
  /** Removes every event up to and including `seq`, which becomes the horizon. */
  trimEvents(seq: number): void;
  /**
   * Counts as a write of task `id` without changing it: this transaction commits only if `id` is
   * as it read it, and any other transaction that read it before this one commits must run
   * again. For a decision that rests on a task it does not change (a new task's dependency or
   * parent, which must see it settle; a broadcast's collection, which its copies race to make).
   */
  touch(id: string): void;
  /**
   * This transaction commits only if worker `id` is as it read it (its status, heartbeat): for a
   * task reserved for that worker alone, which must not be left for one that stopped meanwhile.
   */
  dependOnWorker(id: string): void;
}

/**
 * One task board's storage. Every state change goes through `transact`, which the backend runs
 * atomically with respect to every other process on it; the rules themselves live in
 * core/task-engine.ts, so all backends apply the same ones.
 */
export interface TaskStore {
  /** Runs `work` in one transaction. `work` is synchronous and touches nothing outside `tx`. */
  transact<T>(work: (tx: TaskTx) => T): Promise<T>;
  /**
   * Answers from a read when it can, and writes only when it must: runs `look` on one consistent
   * snapshot, and if it answers (`{ value }`) that is the result; if it answers undefined, runs
   * `work` in a transaction instead. On SQLite the look is a read transaction, which neither takes
   * nor waits for the write lock, so reads and idle workers polling for work do not hold up the
   * ones recording results. Where a transaction that writes nothing costs no more than a read
   * (memory, NATS), both may run in one transaction.
   *
   * With `heard`, the look may run on what this process has heard of so far while it listens
   * (`onChange`) instead of asking the store (NATS does): for a caller that is woken by every
   * change and looks again then, such as a worker polling for work. With `heardWill`, only the
   * look may, and its answer from what was heard stands if `heardWill` accepts it; otherwise the
   * store is asked as usual (for a caller that follows the changes from where its answer left
   * off, such as `wait`, as long as what it heard holds what it looks for).
   */
  readOrTransact<T>(look: (view: TaskView) => { value: T } | undefined, work: (tx: TaskTx) => T, options?: { heard?: boolean; heardWill?: (value: T) => boolean }): Promise<T>;
  /**
   * Events with `seq` greater than `since`, in order; `HorizonError` if `since` is below the
   * horizon. While this process listens (`onChange`), it may answer with what it has heard of so
   * far rather than ask the store (NATS does): a caller woken by `onChange` finds what woke it.
   */
  events(since: number, limit?: number): Promise<TaskEvent[]>;
  /** The newest event's `seq`; 0 before the first. */
  head(): Promise<number>;
  /** As `BoardStore.onChange`: called when events may have been appended; never missed. */
  onChange(listener: () => void): () => void;
  /** As `BoardStore.rejected`: log messages that were not Colony's write sets, skipped (NATS only). */
  rejected?(): RejectedMessages;
}
