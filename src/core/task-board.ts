/**
 * A named task board: the public face of the task DAG. It checks what callers pass (a bad request
 * is an `InvalidTaskError` naming the field, before anything is stored), runs each operation as
 * one backend transaction through the engine, and streams state changes.
 */
import { z } from "zod";
import { TaskEventRouter } from "./task-events.ts";
import { ClosedError } from "./errors.ts";
import { toJson, truncateUtf8 } from "./json.ts";
import type { TaskStore, TaskTx, TaskView } from "./store.ts";
import { checkLimits, limit } from "./retention.ts";
import { MAX_DURATION_MS } from "./timers.ts";
import * as engine from "./task-engine.ts";
import { injectContext } from "./tracing.ts";
import {
  DEFAULT_RETENTION,
  FINAL_STATUSES,
  HorizonError,
  InvalidTaskError,
  TASK_STATUSES,
  type ClaimRequest,
  type Retention,
  type SubmitRequest,
  type Task,
  type TaskEvent,
  type TaskFilter,
  type WorkerInfo,
} from "./tasks.ts";

export interface TaskBoardOptions {
  maxValueBytes: number;
  /** How long a task reserved for the least loaded worker waits for it before any worker may take it; default 2000 ms. */
  reserveMs?: number;
  /**
   * Starts (once) a worker in this process for `capability` and returns its id, or undefined if
   * this process cannot run it. Called at submit when no live worker offers the capability.
   */
  localFallback?: (capability: string, kind: string) => Promise<string | undefined>;
  /** How much of its past the board keeps; default `DEFAULT_RETENTION` (see `checkRetention`). */
  retention?: Retention;
}

/** How often, at most, one board object removes what its retention no longer keeps (more often while a backlog remains). */
const PRUNE_EVERY_MS = 1000;

/**
 * A failure message is kept to this many bytes of UTF-8: longer ones are cut, with a marker
 * saying how much, not refused, since a refusal would lose the record of a failed attempt.
 */
export const MAX_FAILURE_BYTES = 16 * 1024;

const ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const whole = (what: string, min: number) =>
  z.number({ message: `${what} must be a number` }).int({ message: `${what} must be a whole number` }).min(min, { message: `${what} must be at least ${min}` });
const name = (what: string) => z.string({ message: `${what} must be a string` }).min(1, { message: `${what} must not be empty` }).max(128, { message: `${what} is at most 128 characters` });
const id = (what: string) => z.string({ message: `${what} must be a task id (a string)` }).regex(ID, { message: `${what} is 1 to 128 letters, digits or . _ : -` });

const routeSchema = z.discriminatedUnion(
  "mode",
  [z.strictObject({ mode: z.literal("any") }), z.strictObject({ mode: z.literal("direct"), worker: name("route.worker") }), z.strictObject({ mode: z.literal("broadcast") })],
  { message: 'route is { mode: "any" }, { mode: "direct", worker } or { mode: "broadcast" }' },
);

const submitSchema = z.strictObject({
  id: id("id").optional(),
  kind: name("kind"),
  input: z.unknown().optional(),
  dependsOn: z.array(id("dependsOn[]"), { message: "dependsOn must be an array of task ids" }).optional(),
  parentId: id("parentId").optional(),
  priority: whole("priority", -1_000_000).max(1_000_000, { message: "priority is between -1000000 and 1000000" }).optional(),
  maxAttempts: whole("maxAttempts", 1).optional(),
  timeoutMs: whole("timeoutMs", 1).max(MAX_DURATION_MS, { message: `timeoutMs is at most ${MAX_DURATION_MS} ms (ten years)` }).optional(),
  idempotencyKey: name("idempotencyKey").optional(),
  capability: name("capability").optional(),
  route: routeSchema.optional(),
  backoff: z.strictObject({ baseMs: whole("backoff.baseMs", 0).optional(), maxMs: whole("backoff.maxMs", 0).optional() }).optional(),
  trace: z
    .strictObject(
      { traceparent: z.string().max(256, { message: "trace.traceparent is at most 256 characters" }), tracestate: z.string().max(512, { message: "trace.tracestate is at most 512 characters" }).optional() },
      { message: "trace is a W3C trace context: { traceparent, tracestate? }" },
    )
    .optional(),
});

const claimSchema = z.strictObject({
  worker: name("worker"),
  capabilities: z.array(name("capabilities[]"), { message: "capabilities must be an array of names" }).min(1, { message: "capabilities must list at least one" }),
  leaseMs: whole("leaseMs", 1),
});

const workerSchema = z.strictObject({
  id: name("id"),
  capabilities: z.array(name("capabilities[]"), { message: "capabilities must be an array of names" }),
  concurrency: whole("concurrency", 1),
  running: whole("running", 0),
  status: z.enum(["online", "draining", "offline", "stopped"], { message: "status is online, draining, offline or stopped" }),
  pid: whole("pid", 0),
  host: z.string({ message: "host must be a string" }),
  local: z.boolean({ message: "local must be true or false" }),
  ttlMs: whole("ttlMs", 1),
  push: z.strictObject({ leaseMs: whole("push.leaseMs", 1) }, { message: "push must be { leaseMs }" }).optional(),
});

const filterSchema = z.strictObject({
  status: z.enum(TASK_STATUSES, { message: `status is one of ${TASK_STATUSES.join(", ")}` }).optional(),
  kind: name("kind").optional(),
  parentId: id("parentId").optional(),
});

const retentionSchema = z.strictObject({
  maxAgeMs: limit("maxAgeMs").optional(),
  maxFinished: limit("maxFinished").optional(),
  maxEvents: limit("maxEvents").optional(),
});

/** A retention with what `partial` leaves out taken from the default; a `ConfigError` naming the field if it is wrong. */
export function checkRetention(partial: Partial<Retention> | undefined, where = "retention"): Retention {
  return checkLimits(retentionSchema, DEFAULT_RETENTION, partial, where);
}

function check<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const at = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
  throw new InvalidTaskError(`${what}: ${at}${issue.message}`);
}

// Built once: a zod schema costs far more to build than to check with, and these are on every claim and record.
const generationSchema = whole("generation", 1);
const leaseSchema = whole("leaseMs", 1);
const maxSchemas = { 0: whole("max", 0), 1: whole("max", 1) } as const;

function generationOf(options: { generation?: unknown } | undefined, what: string): number {
  return check(generationSchema, options?.generation, `${what} needs { generation } from the claim`);
}

/** How many workers' last empty claim a board remembers (see `claimMany`). */
const MAX_IDLE_REMEMBERED = 1024;

/** A claim request's fields and its `max` (at least `least`), checked. */
function checkClaim(request: ClaimRequest & { max: number }, least: 0 | 1): { claim: ClaimRequest; max: number } {
  const { max, ...claim } = request ?? ({} as ClaimRequest & { max: number });
  return { claim: check(claimSchema, claim, "claim"), max: check(maxSchemas[least], max, "claim") };
}

/** A copy of what a change returns, shaped as reads shape it (no undefined fields). */
function handOut<T>(result: T): T {
  return result === undefined ? result : (JSON.parse(JSON.stringify(result)) as T);
}

/** When each claimed task's lease ends. */
function leasesOf(view: TaskView): Map<string, number> {
  return new Map(view.list({ status: "claimed" }).map((t) => [t.id, t.leaseUntil!]));
}

export type WorkerRegistration = Omit<WorkerInfo, "heartbeatAt" | "startedAt">;

export class TaskBoard {
  readonly name: string;
  readonly #store: TaskStore;
  readonly #options: TaskBoardOptions;
  readonly #reserveMs: number;
  readonly #events: TaskEventRouter;
  /** Workers whose last claim here found nothing (see `claimMany`). */
  readonly #idle = new Set<string>();
  readonly #retention: Retention;
  /** When this board object last removed what its retention no longer keeps, and the removal running now. */
  #prunedAt = 0;
  #pruning: Promise<void> | undefined;
  #closed = false;

  constructor(name: string, store: TaskStore, options: TaskBoardOptions) {
    this.name = name;
    this.#store = store;
    this.#options = options;
    this.#reserveMs = options.reserveMs ?? 2000;
    this.#retention = options.retention ?? DEFAULT_RETENTION;
    this.#events = new TaskEventRouter(store, name, () => this.#reapLeases());
  }

  /** The largest input or result it stores, in bytes of JSON. */
  get maxValueBytes(): number {
    return this.#options.maxValueBytes;
  }

  /** Submits one task; see `submitAll`. */
  async submit<I = unknown>(request: SubmitRequest<I> & { id?: string }): Promise<Task<I>> {
    const [task] = await this.submitAll([request]);
    return task as Task<I>;
  }

  /**
   * Submits tasks atomically: all are stored or none. `dependsOn` may name tasks on the board or
   * other items' `id`s; an unknown id or a cycle refuses the batch with `InvalidTaskError`.
   * `fallbackWorker` names a local worker of this process to run what no live worker offers.
   *
   * @example
   * const [fetch, summary] = await tasks.submitAll([
   *   { id: "fetch", kind: "research", input: { q: "ants" } },
   *   { kind: "write", dependsOn: ["fetch"], priority: 5 },
   * ]);
   */
  async submitAll(requests: (SubmitRequest & { id?: string })[], options: { fallbackWorker?: string } = {}): Promise<Task[]> {
    this.#checkOpen();
    if (!Array.isArray(requests)) throw new InvalidTaskError("submitAll takes an array of submit requests");
    const submitter = injectContext();
    const items = requests.map((r, i) => {
      const item = check(submitSchema, r, requests.length === 1 ? "submit" : `submit item ${i}`);
      toJson(`task ${item.kind} input`, item.input ?? null, this.#options.maxValueBytes);
      return item.trace === undefined && submitter !== undefined ? { ...item, trace: submitter } : item;
    });
    const localWorker = options.fallbackWorker ?? (await this.#localWorker(items));
    return this.#change((tx) => engine.submitAll(tx, items, { localWorker, reserveMs: this.#reserveMs }));
  }

  /** The first task in line for this worker, claimed under a lease of `leaseMs`; undefined if none. */
  async claim(request: ClaimRequest): Promise<Task | undefined> {
    return (await this.claimMany({ ...request, max: 1 }))[0];
  }

  /**
   * Up to `max` tasks first in line for this worker (a worker's free slots), each under its own
   * lease of `leaseMs`, in one transaction; none if none is due. With `heard` (a worker woken by a
   * change, which it will be again on the next), "none" may come from what this process has heard
   * of the board so far, without asking the store.
   */
  async claimMany(request: ClaimRequest & { max: number }, options: { heard?: boolean } = {}): Promise<Task[]> {
    this.#checkOpen();
    const { claim, max } = checkClaim(request, 1);
    const work = (tx: TaskTx) => ({ value: engine.claim(tx, claim, this.#reserveMs, max), more: engine.leftOver(tx) });
    // A worker whose last claim found nothing looks first, from a read: an idle worker's polls
    // then take no write lock. One that just found work claims straight away, in one transaction.
    const { value, more } =
      this.#idle.has(claim.worker) || options.heard === true
        ? await this.#store.readOrTransact((view) => (engine.needsReap(view) || engine.claimable(view, claim) ? undefined : { value: { value: [], more: false } }), work, {
            heard: options.heard === true,
          })
        : await this.#store.transact(work);
    this.#idle.delete(claim.worker);
    if (value.length === 0) {
      this.#idle.add(claim.worker);
      // Bounded: a long-lived process may claim under many worker ids (a workflow's local workers).
      if (this.#idle.size > MAX_IDLE_REMEMBERED) this.#idle.delete(this.#idle.values().next().value!);
    }
    if (more) await this.#finishCascades();
    this.#maybePrune();
    return handOut(value);
  }

  /** Extends the lease of a claimed task; `StaleTaskError` if the claim is no longer yours. */
  async heartbeat(id: string, options: { generation: number; leaseMs?: number }): Promise<Task> {
    this.#checkOpen();
    const generation = generationOf(options, "heartbeat");
    const leaseMs = options.leaseMs === undefined ? undefined : check(leaseSchema, options.leaseMs, "heartbeat");
    return this.#change((tx) => engine.heartbeat(tx, id, generation, leaseMs));
  }

  /** Records the result, once: a stale generation throws `StaleTaskError` and records nothing. */
  async complete(id: string, result: unknown, options: { generation: number }): Promise<Task> {
    return (await this.completeAndClaim(id, result, options)).task;
  }

  /**
   * Records the result as `complete` does and, with `next`, claims up to `next.max` tasks as
   * `claimMany` does, in the same transaction: a busy worker moves to its next task in one
   * round trip instead of two. A stale generation claims nothing either.
   */
  async completeAndClaim(id: string, result: unknown, options: { generation: number }, next?: ClaimRequest & { max: number }): Promise<{ task: Task; claimed: Task[] }> {
    this.#checkOpen();
    const generation = generationOf(options, "complete");
    toJson(`task ${id} result`, result ?? null, this.#options.maxValueBytes);
    const then = next && checkClaim(next, 0);
    return this.#change((tx) => {
      const task = engine.complete(tx, id, result, generation, this.#reserveMs);
      return { task, claimed: then && then.max > 0 ? engine.claim(tx, then.claim, this.#reserveMs, then.max) : [] };
    });
  }

  /**
   * Records a failed attempt. Retryable (the default) goes back to `pending` after an exponential
   * backoff, or to `dead` past `maxAttempts`; not retryable ends `failed` at once. A message over
   * `MAX_FAILURE_BYTES` is stored cut, ending "… (N bytes cut)".
   */
  async fail(id: string, error: string | Error, options: { generation: number; retryable?: boolean }): Promise<Task> {
    this.#checkOpen();
    const generation = generationOf(options, "fail");
    const text = error instanceof Error ? error.message || error.name : String(error);
    const message = truncateUtf8(String(text), MAX_FAILURE_BYTES);
    return this.#change((tx) => engine.fail(tx, id, message, generation, options.retryable ?? true, this.#reserveMs));
  }

  /** Hands a claimed task back without running it (a worker shutting down): pending again, no attempt used up. */
  async release(id: string, options: { generation: number }): Promise<Task> {
    this.#checkOpen();
    const generation = generationOf(options, "release");
    return this.#change((tx) => engine.release(tx, id, generation, this.#reserveMs));
  }

  /** Cancels the task and its subtasks; their dependents fail, saying why. */
  async cancel(id: string): Promise<Task> {
    this.#checkOpen();
    return this.#change((tx) => engine.cancel(tx, id, this.#reserveMs));
  }

  async get(id: string): Promise<Task | undefined> {
    return this.#read((tx) => tx.get(id));
  }

  /** Tasks in submit order, filtered. */
  async list(filter: TaskFilter = {}): Promise<Task[]> {
    const checked = check(filterSchema, filter, "list");
    return this.#read((tx) => tx.list(checked));
  }

  /** `list`, with the event log position the tasks are as of, from one read. */
  async snapshot(filter: TaskFilter = {}): Promise<{ seq: number; tasks: Task[] }> {
    const checked = check(filterSchema, filter, "snapshot");
    return this.#read((tx) => ({ seq: tx.head(), tasks: tx.list(checked) }));
  }

  /** The registry of workers serving this board, silent ones marked offline. */
  async workers(): Promise<WorkerInfo[]> {
    // Copies: a store may share the ones its transactions read.
    return this.#read((tx) => structuredClone(tx.workers()));
  }

  /**
   * Forgets now the workers that no longer serve (stopped, offline, silent), which the board
   * otherwise forgets an hour after their last heartbeat; their ids.
   */
  async forgetGoneWorkers(): Promise<string[]> {
    this.#checkOpen();
    return this.#transact((tx) => engine.forgetGone(tx, this.#reserveMs));
  }

  /** Registers a worker or renews its heartbeat; workers call this every few seconds. */
  async heartbeatWorker(worker: WorkerRegistration): Promise<WorkerInfo> {
    this.#checkOpen();
    const checked = check(workerSchema, worker, "heartbeatWorker");
    return this.#transact((tx) => engine.heartbeatWorker(tx, checked, this.#reserveMs));
  }

  /** The newest event's `seq`: pass it to `watch({ since })` to miss nothing from here on. */
  async head(): Promise<number> {
    this.#checkOpen();
    return this.#store.head();
  }

  /** Resolves with the task once it has ended (succeeded, failed, dead or cancelled). */
  async wait(id: string, options: { signal?: AbortSignal } = {}): Promise<Task> {
    for (;;) {
      // The task and the head it is as of, in one read. What this process has heard will do if it
      // holds the task: the events after it follow.
      const { since, now } = await this.#read((view) => ({ since: view.head(), now: view.get(id) }), (read) => read.now !== undefined);
      if (!now) throw new InvalidTaskError(`no task ${JSON.stringify(id)} on this board`);
      if (FINAL_STATUSES.has(now.status)) return now;
      try {
        for await (const event of this.watch({ since, signal: options.signal, taskId: id })) {
          if (FINAL_STATUSES.has(event.task.status)) return event.task;
        }
      } catch (error) {
        // The events went under retention before this caught up with them: look at the task again.
        if (error instanceof HorizonError) continue;
        throw error;
      }
      options.signal?.throwIfAborted();
      throw new ClosedError(`task board "${this.name}"`);
    }
  }

  /**
   * Every state change after `since` (0 = from the first), in order, none lost or repeated; by
   * default from now on. Lapsed leases are noticed (and reaped) while someone watches. From
   * before the events the board keeps (see `Retention`), or falling that far behind, it throws
   * `HorizonError`.
   */
  async *watch(options: { since?: number; signal?: AbortSignal; taskId?: string } = {}): AsyncGenerator<TaskEvent> {
    this.#checkOpen();
    // One reader of the events for every watcher of this board object (see TaskEventRouter).
    yield* this.#events.watch(options.since ?? (await this.#store.head()), options.taskId, options.signal);
  }

  /**
   * Reaps now: lapsed leases go back to the queue, silent workers are marked offline. Every
   * transaction does this too; a swarm's coordinator also does it on a timer, so that the board
   * tells the truth while nobody claims.
   */
  async sweep(): Promise<void> {
    this.#checkOpen();
    await this.#reapLeases();
    await this.#pruning;
    while (await this.#store.transact((tx) => engine.prune(tx, this.#retention)));
    this.#prunedAt = Date.now();
  }

  close(): void {
    this.#closed = true;
    this.#events.close();
  }

  /**
   * Runs a change; what it returns is handed out as a copy, shaped as reads shape it. A cascade
   * it started that went past one transaction's bound is finished before it returns, one bounded
   * transaction at a time.
   */
  async #change<T>(work: (tx: TaskTx) => T): Promise<T> {
    return handOut(await this.#transact(work));
  }

  /** A transaction, then as many more as it takes to finish the cascades it left (see `Task.settling`). */
  async #transact<T>(work: (tx: TaskTx) => T): Promise<T> {
    const { result, more } = await this.#store.transact((tx) => ({ result: work(tx), more: engine.leftOver(tx) }));
    if (more) await this.#finishCascades();
    this.#maybePrune();
    return result;
  }

  /**
   * Every so often, behind the operation that noticed it is time, removes what retention no
   * longer keeps: in bounded transactions, one after another while a backlog remains. A failure
   * (a closed store, a lost race) is left for the next time.
   */
  #maybePrune(): void {
    if (this.#pruning || this.#closed || Date.now() - this.#prunedAt < PRUNE_EVERY_MS) return;
    this.#prunedAt = Date.now();
    this.#pruning = (async () => {
      try {
        while (!this.#closed && (await this.#store.transact((tx) => engine.prune(tx, this.#retention))));
      } catch {
        // Left for the next time.
      } finally {
        this.#prunedAt = Date.now();
        this.#pruning = undefined;
      }
    })();
  }

  async #finishCascades(): Promise<void> {
    for (let more = true; more; ) {
      more = await this.#store.transact((tx) => {
        engine.continueCascades(tx, this.#reserveMs);
        return engine.leftOver(tx);
      });
    }
  }

  /** Reaps lapsed leases; returns when each lease still held ends. */
  #reapLeases(): Promise<Map<string, number>> {
    return this.#read(leasesOf);
  }

  /**
   * Reads after reaping, so that a lease that lapsed shows as such; from a plain read (no write,
   * no write lock) when there is nothing to reap. A read that `heardWill` accepts may come from
   * what this process has heard of the board (see `TaskStore.readOrTransact`'s `heardWill`).
   */
  async #read<T>(work: (view: TaskView) => T, heardWill?: (value: T) => boolean): Promise<T> {
    this.#checkOpen();
    const { value, more } = await this.#store.readOrTransact(
      (view) => (engine.needsReap(view) ? undefined : { value: { value: work(view), more: false } }),
      (tx) => {
        engine.reap(tx, this.#reserveMs);
        return { value: work(tx), more: engine.leftOver(tx) };
      },
      heardWill && { heardWill: (read) => heardWill(read.value) },
    );
    if (!more) {
      this.#maybePrune();
      return value;
    }
    // Reaping started a cascade longer than one step: finish it, then read what it left.
    await this.#finishCascades();
    return this.#read(work, heardWill);
  }

  /** A local worker for the batch's capabilities that no live worker offers, if this process can run them. */
  async #localWorker(items: SubmitRequest[]): Promise<string | undefined> {
    const fallback = this.#options.localFallback;
    if (!fallback) return undefined;
    const wanted = items.filter((i) => i.route?.mode !== "direct");
    if (wanted.length === 0) return undefined;
    const offered = await this.#read((tx) => {
      const live = tx.workers().filter((w) => !w.local && w.status === "online" && engine.isLive(w, tx.now));
      return new Set(live.flatMap((w) => w.capabilities));
    });
    const missing = wanted.find((i) => !offered.has(i.capability ?? i.kind));
    return missing ? fallback(missing.capability ?? missing.kind, missing.kind) : undefined;
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError(`task board "${this.name}"`);
  }
}
