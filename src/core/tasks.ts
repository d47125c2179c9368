/**
 * The task board's shapes and errors: durable tasks in a DAG, claimed under leases by workers that
 * register themselves with capabilities. Pure data; the rules are in task-engine.ts.
 */
import { ColonyError } from "./errors.ts";
import type { TraceCarrier } from "./tracing.ts";

/** The task board a colony's callers get when they name none. */
export const DEFAULT_TASK_BOARD = "default";

export const TASK_STATUSES = ["pending", "blocked", "claimed", "succeeded", "failed", "dead", "cancelled"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** A task in one of these never changes again. */
export const FINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(["succeeded", "failed", "dead", "cancelled"]);

/**
 * Who may run a task. `any`: one worker with the capability, the least loaded first. `direct`:
 * the named worker only. `broadcast`: one copy per live worker with the capability; the task
 * itself collects their results.
 */
export type Route = { mode: "any" } | { mode: "direct"; worker: string } | { mode: "broadcast" };

/** One attempt that did not succeed. */
export interface TaskFailure {
  attempt: number;
  worker: string | undefined;
  at: number;
  /** `error`: the worker reported it; `lease`: the lease lapsed (the worker died or hung). */
  kind: "error" | "lease";
  error: string;
}

export interface Task<I = unknown, R = unknown> {
  id: string;
  kind: string;
  /** What a worker must offer to claim it; default the kind. */
  capability: string;
  input: I;
  status: TaskStatus;
  /** Grows by one on every change of status, owner or lease holder; `complete` and `fail` must carry it. */
  generation: number;
  dependsOn: string[];
  parentId: string | undefined;
  /** The worker holding the claim. */
  owner: string | undefined;
  leaseUntil: number | undefined;
  /** The lease length the claim asked for; heartbeats extend by this unless told otherwise. */
  leaseMs: number | undefined;
  /** Attempts used up: failed ones and lapsed leases. */
  attempts: number;
  maxAttempts: number;
  priority: number;
  result: R | undefined;
  /** The newest failure's message. */
  error: string | undefined;
  /** Why the task ended other than by success, or why it waits ("waiting on t-3"). */
  reason: string | undefined;
  failures: TaskFailure[];
  route: Route;
  /** The worker a pending task is reserved for (least loaded, direct, or the local fallback). */
  assignee: string | undefined;
  /** Until when only the assignee may claim it; undefined with an assignee = for good. */
  assignedUntil: number | undefined;
  /** The submitting process's local worker, which runs the task when no live worker offers its capability. */
  fallback: string | undefined;
  /** A retry is not claimed before this (exponential backoff). */
  runAfter: number | undefined;
  /** How long one attempt may run; the worker aborts it past this. */
  timeoutMs: number | undefined;
  backoff: { baseMs: number; maxMs: number };
  idempotencyKey: string | undefined;
  /** The submitter's span, if one was recording: the worker's span for the task is its child. */
  trace?: TraceCarrier;
  createdAt: number;
  updatedAt: number;
  /**
   * Set on an ended task whose cascade (its dependents, its subtasks if it was cancelled, its
   * broadcast parent) one transaction could not finish within its bound: the next operation on
   * the board goes on with it. `cancel`: a cancel that reached this ended task and must still
   * reach its subtasks, with the reason they will get. Absent otherwise.
   */
  settling?: { cancel?: string };
}

export interface SubmitRequest<I = unknown> {
  kind: string;
  input?: I;
  dependsOn?: string[];
  parentId?: string;
  /** Higher runs first; default 0. */
  priority?: number;
  /** Default 3. */
  maxAttempts?: number;
  timeoutMs?: number;
  /** A second submit with the same key returns the first task. */
  idempotencyKey?: string;
  /** Default the kind. */
  capability?: string;
  /** Default `{ mode: "any" }`. */
  route?: Route;
  /** Retry delay: baseMs × 2^(attempt − 1), at most maxMs; default 1000 and 60000. */
  backoff?: { baseMs?: number; maxMs?: number };
  /** The W3C trace context the task's span is to be a child of; default the active span's, if one records. */
  trace?: TraceCarrier;
}

export interface ClaimRequest {
  worker: string;
  capabilities: string[];
  leaseMs: number;
}

export interface TaskFilter {
  status?: TaskStatus;
  kind?: string;
  parentId?: string;
}

/** A state change of a task, as `watch()` yields it; `seq` is gap-free per task board. */
export interface TaskEvent<I = unknown, R = unknown> {
  seq: number;
  at: number;
  type: TaskEventType;
  task: Task<I, R>;
}

export type TaskEventType =
  | "submitted"
  | "unblocked"
  | "claimed"
  | "released"
  | "retrying"
  | "succeeded"
  | "failed"
  | "dead"
  | "cancelled"
  | "reassigned";

export type WorkerStatus = "online" | "draining" | "offline" | "stopped";

/** A worker as the registry holds it. */
export interface WorkerInfo {
  id: string;
  capabilities: string[];
  concurrency: number;
  /** Tasks it is running now. */
  running: number;
  status: WorkerStatus;
  pid: number;
  host: string;
  /** Runs in a submitting process, for tasks no live worker could take. */
  local: boolean;
  startedAt: number;
  heartbeatAt: number;
  /** Missing heartbeats for this long marks it offline. */
  ttlMs: number;
  /**
   * Set by a worker that follows the board's events itself: a task reserved for it while it has a
   * free slot is claimed for it in the transaction that made the task pending (a submit, a
   * dependency ending), with this lease, and the worker starts it as it hears of it, with no claim
   * of its own. Absent for a thin worker, which hears of the board through its coordinator.
   */
  push?: { leaseMs: number };
}

/**
 * The one numbering of attempts that everything shows (workers' logs, `colony tasks`, `status`):
 * the attempt running or the last one made, from 1. A claimed or succeeded task is on attempt
 * `attempts + 1` (`attempts` counts those used up); a pending, failed or dead one has made
 * `attempts`, 0 before its first claim.
 */
export function attemptOf(task: Pick<Task, "status" | "attempts">): number {
  return task.status === "claimed" || task.status === "succeeded" ? task.attempts + 1 : task.attempts;
}

/** `complete`, `fail` or `heartbeat` with a generation that is no longer the task's; nothing was recorded. */
export class StaleTaskError extends ColonyError {
  readonly taskId: string;
  readonly generation: number;
  readonly actualGeneration: number;
  readonly status: TaskStatus;
  /** Who holds it now, if it is claimed. */
  readonly owner: string | undefined;

  constructor(task: Pick<Task, "id" | "generation" | "status" | "owner">, generation: number, worker?: string) {
    const holder = task.status === "claimed" ? `, claimed by ${task.owner ?? "?"}` : "";
    super(
      "STALE_TASK",
      `task ${task.id} is at generation ${task.generation} (${task.status}${holder}), not ${generation}${worker ? ` as ${worker} thinks` : ""}: its lease lapsed or it was cancelled; nothing was recorded`,
    );
    this.taskId = task.id;
    this.generation = generation;
    this.actualGeneration = task.generation;
    this.status = task.status;
    this.owner = task.owner;
  }
}

/**
 * A worker started under an id that another live process heartbeats: two processes under one id
 * would each take the other for a restart of itself. Nothing was registered.
 */
export class WorkerIdInUseError extends ColonyError {
  readonly workerId: string;
  /** The process that holds it. */
  readonly pid: number;
  readonly host: string;

  constructor(id: string, holder: Pick<WorkerInfo, "pid" | "host">) {
    super("WORKER_ID_IN_USE", `worker id ${id} is in use by pid ${holder.pid} on ${holder.host}, which still heartbeats; give this worker another id (--id), or stop that one first`);
    this.workerId = id;
    this.pid = holder.pid;
    this.host = holder.host;
  }
}

/** A submit the board refuses: an unknown dependency, a cycle, a bad field. Nothing was stored. */
export class InvalidTaskError extends ColonyError {
  constructor(message: string) {
    super("INVALID_TASK", message);
  }
}

/**
 * How much of a task board's past is kept. Finished tasks go once they ended longer ago than
 * `maxAgeMs`, or when more than `maxFinished` have ended (the oldest first); a finished task that
 * an unfinished one still depends on, or whose parent or subtasks are unfinished, stays until
 * they end. The event log keeps at most `maxEvents` events and none older than `maxAgeMs`;
 * `watch({ since })` from before what it keeps throws `HorizonError`.
 */
export interface Retention {
  maxAgeMs: number;
  maxFinished: number;
  maxEvents: number;
}

/** A week, ten thousand finished tasks, twenty thousand events: whichever is reached first. */
export const DEFAULT_RETENTION: Readonly<Retention> = Object.freeze({ maxAgeMs: 7 * 24 * 60 * 60 * 1000, maxFinished: 10_000, maxEvents: 20_000 });

/** Events asked for from before the task board's horizon: they were removed under its retention. */
export class HorizonError extends ColonyError {
  /** The oldest event still kept is `horizon + 1`. */
  readonly horizon: number;
  readonly since: number;

  constructor(since: number, horizon: number) {
    super(
      "HORIZON",
      `the task board keeps events after seq ${horizon} only (older ones went under its retention), so it cannot replay from seq ${since}; watch from seq ${horizon} or later, or from head(), and read the tasks themselves with list()`,
    );
    this.horizon = horizon;
    this.since = since;
  }
}

/** A route no live worker can serve, with no local fallback to run it. */
export class NoWorkerError extends ColonyError {
  constructor(message: string) {
    super("NO_WORKER", message);
  }
}
