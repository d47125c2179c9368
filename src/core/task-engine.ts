/**
 * The task board's rules, run inside one backend transaction each: submit (with cycle checks and
 * routing), claim, lease heartbeats, complete and fail (generation-checked), retries with
 * exponential backoff, dead letters, cancel cascades, dependency propagation, and reaping lapsed
 * leases and silent workers. Every backend runs these same functions over its own `TaskTx`.
 */
import { pastRetention } from "./retention.ts";
import type { TaskTx, TaskView } from "./store.ts";
import {
  FINAL_STATUSES,
  InvalidTaskError,
  NoWorkerError,
  StaleTaskError,
  type ClaimRequest,
  type Retention,
  type Route,
  type SubmitRequest,
  type Task,
  type TaskEventType,
  type TaskStatus,
  type WorkerInfo,
} from "./tasks.ts";

export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_BACKOFF = { baseMs: 1000, maxMs: 60_000 };
/** A stopped or offline worker leaves the registry after this long. */
export const FORGET_AFTER_MS = 60 * 60 * 1000;

/** What the submitting process brings to a submit. */
export interface SubmitContext {
  /** Its local worker, which runs the task when no live worker has the capability. */
  localWorker?: string;
  /** How long a task reserved for the least loaded worker waits for it before anyone may take it. */
  reserveMs: number;
}

/** A submit request with an optional caller-chosen id, as `submitAll` takes them. */
export type SubmitItem = SubmitRequest & { id?: string };

function change(tx: TaskTx, task: Task, patch: Partial<Task>, event?: TaskEventType): Task {
  const next: Task = { ...task, ...patch, generation: task.generation + 1, updatedAt: tx.now };
  tx.put(next, event);
  return next;
}

export function isLive(worker: WorkerInfo, now: number): boolean {
  return (worker.status === "online" || worker.status === "draining") && worker.heartbeatAt + worker.ttlMs >= now;
}

/**
 * What a submit batch knows of the workers while it reserves its tasks: nothing else changes them
 * or their loads inside it, so they are read once per batch instead of once per task (a load is
 * a count over every task reserved for the worker, and a batch adds to it as it goes).
 */
const batches = new WeakMap<TaskTx, { workers: WorkerInfo[]; loads: Map<string, number> }>();

function workersOf(tx: TaskTx): WorkerInfo[] {
  return batches.get(tx)?.workers ?? tx.workers();
}

/** Live workers that accept new work for `capability`, least loaded first (by share of capacity, then count, then id). */
function candidates(tx: TaskTx, capability: string): { worker: WorkerInfo; load: number }[] {
  const live = workersOf(tx).filter((w) => w.status === "online" && isLive(w, tx.now) && !w.local && w.capabilities.includes(capability));
  // One candidate is the least loaded whatever its load.
  if (live.length < 2) return live.map((worker) => ({ worker, load: 0 }));
  const batch = batches.get(tx);
  const loads = live.map((worker) => {
    let load = batch?.loads.get(worker.id);
    if (load === undefined) {
      load = tx.load(worker.id);
      batch?.loads.set(worker.id, load);
    }
    return { worker, load };
  });
  return loads.sort(
    (a, b) => a.load / a.worker.concurrency - b.load / b.worker.concurrency || a.load - b.load || a.worker.id.localeCompare(b.worker.id),
  );
}

/** The worker if it is live, for a task reserved for it alone: the transaction rests on it (see `TaskTx.dependOnWorker`). */
function liveWorker(tx: TaskTx, id: string | undefined): WorkerInfo | undefined {
  if (id === undefined) return undefined;
  tx.dependOnWorker(id);
  const worker = workersOf(tx).find((w) => w.id === id);
  return worker && isLive(worker, tx.now) ? worker : undefined;
}

/** A reservation for `worker`, counted in the batch's loads if it keeps them. */
function reservedFor(tx: TaskTx, worker: string, until: number | undefined): Pick<Task, "assignee" | "assignedUntil"> {
  const loads = batches.get(tx)?.loads;
  const load = loads?.get(worker);
  if (load !== undefined) loads!.set(worker, load + 1);
  return { assignee: worker, assignedUntil: until };
}

/** Where a task that has just become pending should go: the least loaded worker, the local fallback, or anyone. */
function reservation(tx: TaskTx, task: Task, reserveMs: number): Pick<Task, "assignee" | "assignedUntil"> {
  if (task.route.mode === "direct") {
    tx.dependOnWorker(task.route.worker);
    return reservedFor(tx, task.route.worker, undefined);
  }
  const best = candidates(tx, task.capability)[0];
  if (best) return reservedFor(tx, best.worker.id, tx.now + reserveMs);
  if (task.fallback !== undefined && liveWorker(tx, task.fallback)?.capabilities.includes(task.capability)) return { assignee: task.fallback, assignedUntil: undefined };
  return { assignee: undefined, assignedUntil: undefined };
}

/**
 * Submits a batch atomically: every task is stored or none. Dependencies may name tasks already
 * on the board or earlier or later items of the batch; an unknown one or a cycle refuses the
 * whole batch. An item whose idempotency key is already on the board gives back that task.
 */
export function submitAll(tx: TaskTx, items: SubmitItem[], context: SubmitContext): Task[] {
  const ids = new Map<SubmitItem, string>();
  const batch = new Map<string, SubmitItem>();
  const existing = new Map<SubmitItem, Task>();
  /** A later item with the key of an earlier one in the batch: it is that item's task. */
  const sameKey = new Map<SubmitItem, SubmitItem>();
  const byKey = new Map<string, SubmitItem>();
  // Generated ids step over the ids callers chose, on the board or in this batch.
  const chosen = new Set(items.flatMap((item) => (item.id === undefined ? [] : [item.id])));
  for (const item of items) {
    const key = item.idempotencyKey;
    const earlier = key === undefined ? undefined : tx.byIdempotencyKey(key);
    if (earlier) {
      existing.set(item, earlier);
      continue;
    }
    const first = key === undefined ? undefined : byKey.get(key);
    if (first) {
      sameKey.set(item, first);
      continue;
    }
    if (key !== undefined) byKey.set(key, item);
    const id = item.id ?? freshId(tx, chosen);
    if (batch.has(id) || tx.get(id)) throw new InvalidTaskError(`task id ${JSON.stringify(id)} is already taken; choose another or leave id out`);
    ids.set(item, id);
    batch.set(id, item);
  }
  for (const [id, item] of batch) {
    for (const dep of item.dependsOn ?? []) {
      if (!batch.has(dep) && !tx.get(dep)) throw new InvalidTaskError(`task ${id} depends on ${JSON.stringify(dep)}, which is not on the board or in this batch`);
    }
  }
  const order = topologicalOrder(batch);
  const created = new Map<string, Task>();
  batches.set(tx, { workers: tx.workers(), loads: new Map() });
  try {
    for (const id of order) created.set(id, createTask(tx, id, batch.get(id)!, context, chosen));
  } finally {
    batches.delete(tx);
  }
  return items.map((item) => existing.get(item) ?? created.get(ids.get(sameKey.get(item) ?? item)!)!);
}

/** A generated id that no task on the board and none of `chosen` has. */
function freshId(tx: TaskTx, chosen: ReadonlySet<string>): string {
  for (;;) {
    const id = tx.nextId();
    if (!chosen.has(id) && !tx.get(id)) return id;
  }
}

/**
 * Batch ids ordered so that dependencies come first; throws on a cycle, naming it. A depth-first
 * walk on a stack of its own, so that a chain of any length fits (recursion overflowed past a
 * few thousand).
 */
function topologicalOrder(batch: Map<string, SubmitItem>): string[] {
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const path: { id: string; deps: string[]; next: number }[] = [];
  const enter = (id: string): void => {
    state.set(id, "visiting");
    path.push({ id, deps: (batch.get(id)!.dependsOn ?? []).filter((dep) => batch.has(dep)), next: 0 });
  };
  for (const start of batch.keys()) {
    if (state.has(start)) continue;
    enter(start);
    while (path.length > 0) {
      const top = path[path.length - 1]!;
      if (top.next === top.deps.length) {
        state.set(top.id, "done");
        order.push(top.id);
        path.pop();
        continue;
      }
      const dep = top.deps[top.next++]!;
      const seen = state.get(dep);
      if (seen === "visiting") {
        const cycle = [...path.slice(path.findIndex((frame) => frame.id === dep)).map((frame) => frame.id), dep];
        throw new InvalidTaskError(`dependsOn forms a cycle: ${cycle.join(" → ")}`);
      }
      if (seen === undefined) enter(dep);
    }
  }
  return order;
}

function createTask(tx: TaskTx, id: string, item: SubmitItem, context: SubmitContext, chosen: ReadonlySet<string>): Task {
  const route: Route = item.route ?? { mode: "any" };
  const capability = item.capability ?? item.kind;
  if (item.parentId !== undefined && !tx.get(item.parentId)) {
    throw new InvalidTaskError(`task ${id}: parent ${JSON.stringify(item.parentId)} is not on the board`);
  }
  // A cancel of the parent must reach the new subtask, an ending dependency must settle it, and
  // retention must not remove either meanwhile: whichever commits second sees the other.
  if (item.parentId !== undefined) tx.touch(item.parentId);
  for (const dep of item.dependsOn ?? []) tx.touch(dep);
  if (route.mode === "direct") {
    const worker = liveWorker(tx, route.worker);
    if (!worker || worker.status !== "online") {
      throw new NoWorkerError(`task ${id} is routed to worker ${JSON.stringify(route.worker)}, which is ${worker ? worker.status : "not live"}; see \`colony workers\``);
    }
    if (!worker.capabilities.includes(capability)) {
      throw new NoWorkerError(`task ${id} needs ${JSON.stringify(capability)}, which worker ${route.worker} does not offer (it offers ${worker.capabilities.join(", ")})`);
    }
  }
  const task: Task = {
    id,
    kind: item.kind,
    capability,
    input: item.input,
    status: "pending",
    generation: 1,
    dependsOn: [...new Set(item.dependsOn ?? [])],
    parentId: item.parentId,
    owner: undefined,
    leaseUntil: undefined,
    leaseMs: undefined,
    attempts: 0,
    maxAttempts: item.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    priority: item.priority ?? 0,
    result: undefined,
    error: undefined,
    reason: undefined,
    failures: [],
    route,
    assignee: undefined,
    assignedUntil: undefined,
    fallback: context.localWorker,
    runAfter: undefined,
    timeoutMs: item.timeoutMs,
    backoff: { ...DEFAULT_BACKOFF, ...item.backoff },
    idempotencyKey: item.idempotencyKey,
    ...(item.trace !== undefined && { trace: item.trace }),
    createdAt: tx.now,
    updatedAt: tx.now,
  };
  if (route.mode === "broadcast") return createBroadcast(tx, task, context, chosen);
  const blocker = dependencyState(tx, task);
  if (blocker.failed) {
    tx.put({ ...task, status: "failed", reason: blocker.failed }, "submitted");
    return tx.get(id)!;
  }
  if (blocker.waiting.length > 0) {
    tx.put({ ...task, status: "blocked", reason: waitingOn(blocker.waiting) }, "submitted");
    return tx.get(id)!;
  }
  tx.put({ ...task, ...reservation(tx, task, context.reserveMs) }, "submitted");
  push(tx, tx.get(id)!);
  return tx.get(id)!;
}

/** A broadcast task holds no work itself: it gets one direct copy per live worker and collects their ends. */
function createBroadcast(tx: TaskTx, group: Task, context: SubmitContext, chosen: ReadonlySet<string>): Task {
  const workers = candidates(tx, group.capability).map((c) => c.worker.id);
  if (workers.length === 0 && context.localWorker !== undefined) workers.push(context.localWorker);
  if (workers.length === 0) {
    throw new NoWorkerError(`task ${group.id} is a broadcast for ${JSON.stringify(group.capability)}, but no live worker offers it; start one with \`colony worker --capability ${group.capability}\``);
  }
  tx.put({ ...group, status: "blocked", reason: `collecting from ${workers.length} worker(s)` }, "submitted");
  for (const worker of workers) {
    const copy: SubmitItem = {
      kind: group.kind,
      input: group.input,
      dependsOn: group.dependsOn,
      parentId: group.id,
      priority: group.priority,
      maxAttempts: group.maxAttempts,
      timeoutMs: group.timeoutMs,
      capability: group.capability,
      route: { mode: "direct", worker },
      backoff: group.backoff,
      ...(group.trace !== undefined && { trace: group.trace }),
    };
    createTask(tx, freshId(tx, chosen), copy, { ...context, localWorker: undefined }, chosen);
  }
  return tx.get(group.id)!;
}

function dependencyState(tx: TaskTx, task: Task): { waiting: string[]; failed?: string } {
  const waiting: string[] = [];
  for (const id of task.dependsOn) {
    const dep = tx.get(id)!;
    if (dep.status === "succeeded") continue;
    if (FINAL_STATUSES.has(dep.status)) return { waiting, failed: `dependency ${id} ${dep.status === "cancelled" ? "was cancelled" : `is ${dep.status}`}${dep.error ? `: ${dep.error}` : ""}` };
    waiting.push(id);
  }
  return { waiting };
}

function waitingOn(ids: string[]): string {
  return `waiting on ${ids.join(", ")}`;
}

/**
 * Gives up to `max` tasks first in line to `request.worker`, in line order. Only one claimer gets a
 * task. A worker that takes pushes (`WorkerInfo.push`) is given no more than its free slots as the
 * board counts them: a push it has not heard of yet holds one.
 */
export function claim(tx: TaskTx, request: ClaimRequest, reserveMs: number, max = 1): Task[] {
  reap(tx, reserveMs);
  const self = tx.workers().find((w) => w.id === request.worker);
  if (self?.push) {
    // Rests on its record, which a push to it writes: the two are made one after the other.
    tx.dependOnWorker(self.id);
    max = Math.min(max, self.concurrency - tx.ownedBy(self.id).length);
  }
  const claimed: Task[] = [];
  for (let task = claimed.length < max ? nextFor(tx, request) : undefined; task; task = claimed.length < max ? nextFor(tx, request) : undefined) {
    claimed.push(claimFor(tx, task, request.worker, request.leaseMs));
  }
  return claimed;
}

function claimFor(tx: TaskTx, task: Task, worker: string, leaseMs: number): Task {
  const patch = { status: "claimed", owner: worker, leaseMs, leaseUntil: tx.now + leaseMs, assignee: undefined, assignedUntil: undefined, runAfter: undefined, reason: undefined } as const;
  return change(tx, task, patch, "claimed");
}

/**
 * A task that has just become pending and is reserved for a worker that takes pushes, online with
 * a free slot: that worker's next task in line (this one, unless one it may take comes first) is
 * claimed for it here, in the same transaction, and the worker starts it as it hears of it. A
 * dispatch then costs no claim of the worker's own: on NATS one stored write set fewer between
 * the submit and the result.
 */
function push(tx: TaskTx, task: Task): void {
  if (task.status !== "pending" || task.assignee === undefined || (task.runAfter ?? 0) > tx.now) return;
  const worker = workersOf(tx).find((w) => w.id === task.assignee);
  if (!worker?.push || worker.local || worker.status !== "online" || !isLive(worker, tx.now)) return;
  if (tx.ownedBy(worker.id).length >= worker.concurrency) return;
  const next = tx.nextClaimable(worker.id, worker.capabilities, false);
  if (!next) return;
  // Written as it is, so that two pushes to it, or a push and its own claim (which rests on it),
  // are made one after the other and never give it more than its slots.
  tx.putWorker(worker);
  claimFor(tx, next, worker.id, worker.push.leaseMs);
}

/** The task, if `generation` still holds its claim and the lease has not lapsed; else `StaleTaskError`. */
function held(tx: TaskTx, id: string, generation: number, worker?: string): Task {
  const task = tx.get(id);
  if (!task) throw new InvalidTaskError(`no task ${JSON.stringify(id)} on this board`);
  if (task.status !== "claimed" || task.generation !== generation || task.leaseUntil! < tx.now) {
    throw new StaleTaskError(task, generation, worker);
  }
  return task;
}

/** Extends a held lease by `leaseMs` (default the claim's) from now. Not a state change: no event. */
export function heartbeat(tx: TaskTx, id: string, generation: number, leaseMs?: number): Task {
  const task = held(tx, id, generation);
  const next: Task = { ...task, leaseUntil: tx.now + (leaseMs ?? task.leaseMs!), updatedAt: tx.now };
  tx.put(next);
  return next;
}

export function complete(tx: TaskTx, id: string, result: unknown, generation: number, reserveMs: number): Task {
  const task = held(tx, id, generation);
  const done = change(tx, task, { status: "succeeded", result, leaseUntil: undefined, reason: undefined }, "succeeded");
  settled(tx, done, reserveMs);
  return done;
}

export function fail(tx: TaskTx, id: string, error: string, generation: number, retryable: boolean, reserveMs: number): Task {
  const task = held(tx, id, generation);
  return failAttempt(tx, task, "error", error, retryable, reserveMs);
}

function failAttempt(tx: TaskTx, task: Task, kind: "error" | "lease", error: string, retryable: boolean, reserveMs: number): Task {
  const attempts = task.attempts + 1;
  const failures = [...task.failures, { attempt: attempts, worker: task.owner, at: tx.now, kind, error }];
  const base = { attempts, failures, error, leaseUntil: undefined, owner: undefined };
  let next: Task;
  if (!retryable) {
    next = change(tx, task, { ...base, status: "failed", reason: `not retryable: ${error}` }, "failed");
  } else if (attempts >= task.maxAttempts) {
    next = change(tx, task, { ...base, status: "dead", reason: `gave up after ${attempts} attempt(s); last: ${error}` }, "dead");
  } else {
    const delay = Math.min(task.backoff.maxMs, task.backoff.baseMs * 2 ** (attempts - 1));
    // A lapsed lease ended at leaseUntil, however late someone noticed: its backoff runs from then.
    const from = kind === "lease" ? Math.min(tx.now, task.leaseUntil ?? tx.now) : tx.now;
    const pending: Task = { ...task, ...base, status: "pending", runAfter: from + delay, reason: `retry ${attempts + 1} of ${task.maxAttempts} after ${delay} ms` };
    return change(tx, task, { ...pending, ...reservation(tx, pending, reserveMs) }, kind === "lease" ? "released" : "retrying");
  }
  settled(tx, next, reserveMs);
  return next;
}

/** Hands a claimed task back unrun: pending again at once, no attempt used up. */
export function release(tx: TaskTx, id: string, generation: number, reserveMs: number): Task {
  const task = held(tx, id, generation);
  const pending: Task = { ...task, status: "pending", owner: undefined, leaseUntil: undefined, leaseMs: undefined, reason: `handed back by ${task.owner ?? "?"}` };
  return change(tx, task, { ...pending, ...reservation(tx, pending, reserveMs) }, "released");
}

/** Cancels the task and every subtask below it (by `parentId`); ended ones stay as they are. */
export function cancel(tx: TaskTx, id: string, reserveMs: number): Task {
  const root = tx.get(id);
  if (!root) throw new InvalidTaskError(`no task ${JSON.stringify(id)} on this board`);
  // Its subtasks are cancelled as it settles (see `settled`), a bounded number per transaction.
  if (!FINAL_STATUSES.has(root.status)) settled(tx, cancelled(tx, root, "cancelled"), reserveMs);
  else settled(tx, [{ task: root, cancel: `parent ${id} was cancelled` }], reserveMs);
  return tx.get(id)!;
}

function cancelled(tx: TaskTx, task: Task, reason: string): Task {
  return change(tx, task, { status: "cancelled", reason, leaseUntil: undefined, assignee: undefined, assignedUntil: undefined }, "cancelled");
}

/** Why a cancelled task's subtasks are cancelled: the cancel that reached it, as its own reason says. */
function cancelReason(task: Task): string {
  return task.reason?.startsWith("parent ") ? task.reason : `parent ${task.id} was cancelled`;
}

/** How many tasks one transaction's cascade may change before it leaves the rest to the next (see `Task.settling`). */
export const CASCADE_STEP = 256;

/** What a transaction's cascades have left to spend, and whether they marked anything to go on with. */
const cascades = new WeakMap<TaskTx, { left: number; leftOver: boolean }>();

function cascadeOf(tx: TaskTx): { left: number; leftOver: boolean } {
  let cascade = cascades.get(tx);
  if (!cascade) cascades.set(tx, (cascade = { left: CASCADE_STEP, leftOver: false }));
  return cascade;
}

/** Whether this transaction left a cascade marked for the next one. */
export function leftOver(tx: TaskTx): boolean {
  return cascades.get(tx)?.leftOver ?? false;
}

/** Goes on with cascades left marked `settling` (by this process or one that died), as far as one step goes. */
export function continueCascades(tx: TaskTx, reserveMs: number): void {
  const left = cascadeOf(tx).left;
  if (left <= 0) return;
  const backlog = tx.unsettled(left).map((task) => {
    const cleared: Task = { ...task, settling: undefined };
    tx.put(cleared);
    return { task: cleared, ...(task.settling?.cancel !== undefined && { cancel: task.settling.cancel }) };
  });
  settled(tx, backlog, reserveMs);
}

/** An ended task to settle; `cancel` when a cancel reached it (ended already) and must go on to its subtasks. */
interface Settling {
  task: Task;
  cancel?: string;
}

/**
 * After tasks end: their dependents move on (or fail with them), a cancelled task's subtasks are
 * cancelled, and a broadcast parent may collect. What ends in turn is settled from a work list,
 * not by recursion, so that a chain of any length fits; and at most `CASCADE_STEP` tasks change
 * per transaction: a task whose cascade is cut short is marked `settling` (with the rest of the
 * work list) for the next transaction, so that no one write set grows with the chain (a NATS
 * message has a size limit) and a crash in between loses nothing. Settling a task again changes
 * only what it had not reached: every step looks at the task's current state first.
 */
function settled(tx: TaskTx, ended: Task | Settling[], reserveMs: number): void {
  const cascade = cascadeOf(tx);
  const work: Settling[] = Array.isArray(ended) ? [...ended] : [{ task: ended }];
  const spend = (): boolean => cascade.left-- > 0;
  for (let item = work.pop(); item; item = work.pop()) {
    if (!settleOne(tx, item, work, spend, reserveMs)) {
      // Out of this step's bound: it and the rest go on in the next transaction.
      for (const rest of [item, ...work]) tx.put({ ...tx.get(rest.task.id)!, settling: rest.cancel === undefined ? {} : { cancel: rest.cancel } });
      cascade.leftOver = true;
      return;
    }
  }
}

/** Settles one ended task, pushing what ends because of it; false if the step's bound ran out first. */
function settleOne(tx: TaskTx, { task, cancel }: Settling, work: Settling[], spend: () => boolean, reserveMs: number): boolean {
  for (const dependent of tx.dependents(task.id)) {
    if (dependent.status !== "blocked") continue;
    const step = dependentStep(tx, dependent, reserveMs);
    // Only a write spends the step's bound: settling a task again passes over what it already
    // did, so each step gets further than the one before.
    if (!step) continue;
    if (!spend()) return false;
    const ended = step();
    if (ended) work.push({ task: ended });
  }
  const passOn = cancel ?? (task.status === "cancelled" ? cancelReason(task) : undefined);
  if (passOn !== undefined) {
    for (const child of tx.children(task.id)) {
      if (!FINAL_STATUSES.has(child.status)) {
        if (!spend()) return false;
        work.push({ task: cancelled(tx, child, passOn) });
      } else if (child.status !== "cancelled") {
        // An ended subtask stays as it is, but the cancel reaches the subtasks below it. (A
        // cancelled one passes on its own cancel as it settles.)
        work.push({ task: child, cancel: passOn });
      }
    }
  }
  const parent = task.parentId === undefined ? undefined : tx.get(task.parentId);
  if (parent?.route.mode === "broadcast" && parent.status === "blocked") {
    const group = collect(tx, parent);
    if (group) work.push({ task: group });
    // Copies that end at the same time race on their group, so that the last one collects it.
    else tx.touch(parent.id);
  }
  return true;
}

/**
 * What a blocked task's dependency having ended does to it, as a write to make (returning the
 * task if that ends it), or undefined when nothing changes.
 */
function dependentStep(tx: TaskTx, dependent: Task, reserveMs: number): (() => Task | undefined) | undefined {
  const state = dependencyState(tx, dependent);
  if (state.failed) {
    const reason = state.failed;
    return () => change(tx, dependent, { status: "failed", reason }, "failed");
  }
  if (state.waiting.length === 0 && dependent.route.mode === "direct" && !liveWorker(tx, dependent.route.worker)) {
    // As when its worker goes offline while it is pending: nobody else may run it, so it must not wait forever.
    const reason = `worker ${dependent.route.worker} it was routed to is not live`;
    return () => change(tx, dependent, { status: "failed", reason }, "failed");
  }
  // A broadcast task is collected from its copies, not unblocked by its dependencies.
  if (dependent.route.mode === "broadcast") return undefined;
  if (state.waiting.length === 0) {
    return () => {
      const pending: Task = { ...dependent, status: "pending", reason: undefined };
      push(tx, change(tx, dependent, { ...pending, ...reservation(tx, pending, reserveMs) }, "unblocked"));
      return undefined;
    };
  }
  const reason = waitingOn(state.waiting);
  if (dependent.reason === reason) return undefined;
  // Not a change of state: no new generation, no event.
  return () => (tx.put({ ...dependent, reason, updatedAt: tx.now }), undefined);
}

/** Ends a broadcast task once every copy has ended (succeeded if all did, failed otherwise) and returns it. */
function collect(tx: TaskTx, group: Task): Task | undefined {
  const copies = tx.children(group.id);
  if (copies.some((c) => !FINAL_STATUSES.has(c.status))) return undefined;
  const results: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const copy of copies) {
    const worker = copy.route.mode === "direct" ? copy.route.worker : copy.id;
    if (copy.status === "succeeded") results[worker] = copy.result;
    else errors[worker] = copy.reason ?? copy.error ?? copy.status;
  }
  const failed = Object.keys(errors).length;
  const status: TaskStatus = failed === 0 ? "succeeded" : "failed";
  const reason = failed === 0 ? undefined : `${failed} of ${copies.length} worker(s) did not succeed`;
  return change(tx, group, { status, result: { results, errors }, reason, error: reason }, status);
}

/**
 * Marks workers whose heartbeats stopped as offline, returns their tasks and every lapsed lease
 * to the queue (or to `dead` past `maxAttempts`), and frees tasks reserved for gone workers.
 */
export function reap(tx: TaskTx, reserveMs: number): void {
  for (const worker of tx.workers()) {
    if (forgotten(worker, tx.now)) {
      tx.deleteWorker(worker.id);
      continue;
    }
    if (!silent(worker, tx.now)) continue;
    tx.putWorker({ ...worker, status: "offline", running: 0 });
    for (const task of tx.ownedBy(worker.id)) {
      failAttempt(tx, task, "lease", `worker ${worker.id} went offline (no heartbeat for ${tx.now - worker.heartbeatAt} ms)`, true, reserveMs);
    }
    releaseReservations(tx, worker.id, "went offline", reserveMs);
  }
  for (const task of tx.expiredLeases()) {
    failAttempt(tx, task, "lease", `lease held by ${task.owner ?? "?"} lapsed`, true, reserveMs);
  }
  // A cascade a crashed process left half done is finished by whoever comes next.
  continueCascades(tx, reserveMs);
}

/**
 * Drops from the registry every worker that no longer serves (stopped, offline, or silent past its
 * ttl, which is first marked offline as `reap` does); their ids, oldest heartbeat first. Live ones
 * (online or draining, heartbeating) stay.
 */
export function forgetGone(tx: TaskTx, reserveMs: number): string[] {
  reap(tx, reserveMs);
  const gone = tx.workers().filter((w) => !isLive(w, tx.now)).sort((a, b) => a.heartbeatAt - b.heartbeatAt);
  for (const worker of gone) tx.deleteWorker(worker.id);
  return gone.map((w) => w.id);
}

/** A worker gone long enough to drop from the registry. */
function forgotten(worker: WorkerInfo, now: number): boolean {
  return worker.status !== "online" && worker.status !== "draining" && worker.heartbeatAt + FORGET_AFTER_MS < now;
}

/** A worker that counts as serving but whose heartbeats stopped: it is to be marked offline. */
function silent(worker: WorkerInfo, now: number): boolean {
  return (worker.status === "online" || worker.status === "draining") && !isLive(worker, now);
}

/** Whether `reap` would change anything: a read that finds nothing to reap need not write. */
export function needsReap(view: TaskView): boolean {
  return view.workers().some((w) => forgotten(w, view.now) || silent(w, view.now)) || view.expiredLeases().length > 0 || view.unsettled(1).length > 0;
}

/** Whether `claim` could give `request.worker` a task, as `view` stands and with nothing to reap. */
export function claimable(view: TaskView, request: ClaimRequest): boolean {
  return nextFor(view, request) !== undefined;
}

function nextFor(view: TaskView, request: ClaimRequest): Task | undefined {
  // A local worker only runs what fell back to it, never other processes' work.
  const local = view.workers().find((w) => w.id === request.worker)?.local ?? false;
  return view.nextClaimable(request.worker, request.capabilities, local);
}

/** Pending tasks reserved for a worker that will not claim them: direct ones fail, the others go to the next in line. */
function releaseReservations(tx: TaskTx, worker: string, why: string, reserveMs: number): void {
  for (const task of tx.assignedTo(worker)) {
    if (task.route.mode === "direct") {
      settled(tx, change(tx, task, { status: "failed", reason: `worker ${worker} it was routed to ${why}`, assignee: undefined }, "failed"), reserveMs);
    } else {
      const free: Task = { ...task, assignee: undefined, assignedUntil: undefined };
      change(tx, task, { ...free, ...reservation(tx, free, reserveMs) }, "reassigned");
    }
  }
}

/**
 * Registers a worker, or renews its heartbeat (bringing it back online if it had been marked
 * offline). A worker that is draining or stopped claims nothing more: what was reserved for it
 * is released. One that comes back as another process (a worker restarted under a stable id
 * before the board marked the last one offline) has what the last one held retried at once, as
 * the reaper would once it went silent: that work died with it, and a worker that takes pushes
 * would otherwise count those tasks against its free slots until their leases lapsed.
 */
export function heartbeatWorker(tx: TaskTx, worker: Omit<WorkerInfo, "heartbeatAt" | "startedAt"> & { startedAt?: number }, reserveMs: number): WorkerInfo {
  const known = tx.workers().find((w) => w.id === worker.id);
  const restarted = known !== undefined && (known.pid !== worker.pid || known.host !== worker.host);
  if (restarted) {
    for (const task of tx.ownedBy(worker.id)) {
      failAttempt(tx, task, "lease", `worker ${worker.id} restarted (pid ${known.pid} on ${known.host}, now pid ${worker.pid} on ${worker.host})`, true, reserveMs);
    }
  }
  const startedAt = restarted ? (worker.startedAt ?? tx.now) : (known?.startedAt ?? worker.startedAt ?? tx.now);
  const next: WorkerInfo = { ...worker, startedAt, heartbeatAt: tx.now };
  tx.putWorker(next);
  if (next.status === "draining" || next.status === "stopped") releaseReservations(tx, next.id, `is ${next.status}`, reserveMs);
  return next;
}

/** How many finished tasks one transaction removes under retention, at most. */
export const PRUNE_STEP = 256;
/** How many events one transaction removes under retention, at most. */
export const TRIM_STEP = 4096;

/**
 * Removes what `retention` no longer keeps, a bounded amount per transaction: finished tasks
 * (oldest ended first, never one an unfinished task still needs) and the oldest events. True
 * if it stopped at its bound with more to remove.
 */
export function prune(tx: TaskTx, retention: Retention): boolean {
  const cutoff = tx.now - retention.maxAgeMs;
  const candidates = tx.removable(PRUNE_STEP);
  const gone = pastRetention(candidates, tx.finishedCount() - retention.maxFinished, cutoff, (task) => task.updatedAt);
  for (const task of gone) tx.remove(task.id);
  const removed = gone.length;
  const horizon = tx.horizon();
  const target = Math.max(horizon, tx.head() - retention.maxEvents, lastEventBefore(tx, cutoff));
  const upTo = Math.min(target, horizon + TRIM_STEP);
  if (upTo > horizon) tx.trimEvents(upTo);
  return (removed === PRUNE_STEP && candidates.length === PRUNE_STEP) || upTo < target;
}

/** The newest kept event that happened before `at` (by binary search: events are logged in time order), or the horizon. */
function lastEventBefore(view: TaskView, at: number): number {
  let low = view.horizon();
  let high = view.head();
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if ((view.eventTime(mid) ?? Infinity) < at) low = mid;
    else high = mid - 1;
  }
  return low;
}
