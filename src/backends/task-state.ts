/**
 * A task board held in memory: the memory backend's store, and the state that the NATS backend
 * folds from its log. Tasks are kept as JSON text, as the SQLite backend keeps them, so a caller
 * never shares an object with the store. A transaction stages its writes; they are applied only
 * if its work returns (and, on NATS, once the log took them), so a refused submit leaves nothing.
 */
import type { TaskStore, TaskTx, TaskView } from "../core/store.ts";
import { FINAL_STATUSES, HorizonError, type Task, type TaskEvent, type TaskEventType, type TaskFilter, type WorkerInfo } from "../core/tasks.ts";

/**
 * What one transaction changed: tasks and workers by id (null = removed), appended events, the
 * next id, and, when retention removed events, the new horizon.
 *
 * With `expect`, the write set is applied only if every task and worker it rests on is still at
 * the revision it read (0 = not there), and its events are numbered as they are applied: where
 * write sets are decided as they are folded (NATS), no two transactions on different tasks ever
 * wait for each other, and every client that folds the same log decides the same way.
 */
export interface TaskChanges {
  tasks: [string, string | null][];
  workers: [string, string | null][];
  events: string[];
  nextId: number;
  horizon?: number;
  expect?: { tasks: [string, number][]; workers: [string, number][] };
  /** Tasks it counts as writing without changing them (see `TaskTx.touch`). */
  touched?: string[];
  /** The id its writer knows it by, to learn whether it was applied. */
  id?: string;
}

/**
 * The folded state, with the indexes a transaction's lookups need: tasks by status, by
 * dependency, by parent and by idempotency key, so that a claim does not read every task the
 * board ever held. A task's dependencies, parent and key never change after it is submitted.
 */
export class TaskState {
  /** Each task as JSON, in submit order. */
  readonly tasks = new Map<string, string>();
  /** The same tasks parsed, for lookups only: never handed out (callers get their own copies). */
  readonly parsed = new Map<string, Task>();
  readonly order = new Map<string, number>();
  readonly byStatus = new Map<string, Set<string>>();
  readonly dependentsOf = new Map<string, Set<string>>();
  readonly childrenOf = new Map<string, Set<string>>();
  readonly byIdempotencyKey = new Map<string, string>();
  /** Ended tasks whose cascade is left for a later transaction (`Task.settling`). */
  readonly settling = new Set<string>();
  /** Ended tasks that are not `settling`, in the order they ended: what retention looks at. */
  readonly finished = new Set<string>();
  readonly workers = new Map<string, string>();
  /** The workers parsed, until one changes (see `workerList`). */
  #workerList: readonly WorkerInfo[] | undefined;
  /**
   * Each task's and worker's revision: the state's `version` when a write set last wrote (or
   * touched) it. What a write set's `expect` is checked against.
   */
  readonly revisions = new Map<string, number>();
  readonly workerRevisions = new Map<string, number>();
  /** How many write sets were applied, counting from the start of the board. */
  version = 0;
  /** The events kept: the one at index i has seq `horizon + i + 1`. */
  readonly events: string[] = [];
  /** When each kept event happened, by the same index. */
  readonly #eventTimes: number[] = [];
  /** The newest event removed under retention (0 = none). */
  horizon = 0;
  nextId = 1;
  /** Submit order: a counter, not the number of tasks held, since retention removes tasks. */
  #nextOrder = 0;
  /** Pending tasks in claim order (priority, highest first, then submit order), so that a claim looks at the head of the line, not at every pending task. */
  readonly #line: string[] = [];

  /**
   * Every worker, parsed once for all the transactions that read them (every claim, submit and
   * read that reaps does) until one changes; frozen, as every caller shares them.
   */
  workerList(): readonly WorkerInfo[] {
    this.#workerList ??= [...this.workers.values()].map((json) => Object.freeze(JSON.parse(json) as WorkerInfo));
    return this.#workerList;
  }

  /**
   * Applies the write set if what it expects holds (see `TaskChanges.expect`); false if it does
   * not, and nothing changed. `parsed` holds its tasks already read from their text, by position.
   */
  apply(changes: TaskChanges, parsed?: readonly (Task | undefined)[]): boolean {
    if (changes.expect && !this.#holds(changes, parsed)) return false;
    const version = ++this.version;
    for (const [i, [id, json]] of changes.tasks.entries()) {
      if (json === null) {
        this.#remove(id);
        this.revisions.delete(id);
      } else {
        this.#put(id, json, parsed?.[i]);
        this.revisions.set(id, version);
      }
    }
    for (const id of changes.touched ?? []) if (this.tasks.has(id)) this.revisions.set(id, version);
    if (changes.workers.length > 0) this.#workerList = undefined;
    for (const [id, json] of changes.workers) {
      if (json === null) {
        this.workers.delete(id);
        this.workerRevisions.delete(id);
      } else {
        this.workers.set(id, json);
        this.workerRevisions.set(id, version);
      }
    }
    for (const written of changes.events) {
      // Numbered where it lands in the log when the write set was decided there.
      const json = changes.expect ? renumbered(written, this.head + 1) : written;
      this.events.push(json);
      this.#eventTimes.push(eventTime(json));
    }
    if (changes.horizon !== undefined && changes.horizon > this.horizon) {
      const cut = Math.min(changes.horizon - this.horizon, this.events.length);
      this.events.splice(0, cut);
      this.#eventTimes.splice(0, cut);
      this.horizon = changes.horizon;
    }
    this.nextId = Math.max(this.nextId, changes.nextId);
    return true;
  }

  /** Whether every task and worker `changes` rests on is at the revision it read, and a task it creates takes no idempotency key that is taken. */
  #holds(changes: TaskChanges, parsed: readonly (Task | undefined)[] | undefined): boolean {
    const { tasks, workers } = changes.expect!;
    for (const [id, revision] of tasks) if ((this.revisions.get(id) ?? 0) !== revision) return false;
    for (const [id, revision] of workers) if ((this.workerRevisions.get(id) ?? 0) !== revision) return false;
    for (const [i, [id, json]] of changes.tasks.entries()) {
      if (json === null || this.tasks.has(id) || !json.includes('"idempotencyKey"')) continue;
      const key = (parsed?.[i] ?? (JSON.parse(json) as Task)).idempotencyKey;
      if (key !== undefined && this.byIdempotencyKey.has(key)) return false;
    }
    return true;
  }

  /**
   * The state as lines of JSON, for a snapshot that a client can start from instead of the log:
   * first the counters, then tasks in submit order, the order they ended in, workers, and the
   * events kept. `TaskState.restore` reads it back.
   */
  *snapshot(): Generator<string> {
    yield JSON.stringify({ nextId: this.nextId, horizon: this.horizon, version: this.version });
    for (const [id, json] of this.tasks) yield `["t",${this.revisions.get(id) ?? 0},${json}]`;
    yield JSON.stringify(["f", [...this.finished]]);
    for (const [id, json] of this.workers) yield `["w",${this.workerRevisions.get(id) ?? 0},${json}]`;
    for (const json of this.events) yield `["e",${json}]`;
  }

  /** Puts the ended tasks in the order `ids` gives (a snapshot's), those it leaves out after them. */
  orderFinished(ids: readonly string[]): void {
    const ended = new Set(this.finished);
    this.finished.clear();
    for (const id of ids) if (ended.delete(id)) this.finished.add(id);
    for (const id of ended) this.finished.add(id);
  }

  /** The submit order the next new task gets. */
  get nextOrder(): number {
    return this.#nextOrder;
  }

  /** The newest event's seq; 0 before the first. */
  get head(): number {
    return this.horizon + this.events.length;
  }

  eventTime(seq: number): number | undefined {
    return this.#eventTimes[seq - this.horizon - 1];
  }

  ids(status: string): Iterable<string> {
    return this.byStatus.get(status) ?? [];
  }

  /** Pending task ids in claim order. */
  inLine(): Iterable<string> {
    return this.#line;
  }

  /** Where a pending task of `priority` submitted `order`th stands, or would stand, in the line. */
  #place(priority: number, order: number): number {
    let low = 0;
    let high = this.#line.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const other = this.parsed.get(this.#line[mid]!)!;
      const ahead = other.priority > priority || (other.priority === priority && this.order.get(other.id)! < order);
      if (ahead) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  eventsSince(since: number, limit = Infinity): TaskEvent[] {
    if (since < this.horizon) throw new HorizonError(since, this.horizon);
    const from = since - this.horizon;
    return this.events.slice(from, from + limit).map((json) => JSON.parse(json) as TaskEvent);
  }

  /** Whether retention may remove the ended task `task`: nothing unfinished still needs it. */
  removable(task: Task): boolean {
    const unfinished = (id: string): boolean => {
      const other = this.parsed.get(id);
      return other !== undefined && !FINAL_STATUSES.has(other.status);
    };
    for (const id of this.dependentsOf.get(task.id) ?? []) if (unfinished(id)) return false;
    for (const id of this.childrenOf.get(task.id) ?? []) if (unfinished(id)) return false;
    return task.parentId === undefined || !unfinished(task.parentId);
  }

  #remove(id: string): void {
    const task = this.parsed.get(id);
    if (!task) return;
    this.byStatus.get(task.status)?.delete(id);
    if (task.status === "pending") this.#line.splice(this.#place(task.priority, this.order.get(id)!), 1);
    for (const dep of task.dependsOn) this.dependentsOf.get(dep)?.delete(id);
    if (task.parentId !== undefined) this.childrenOf.get(task.parentId)?.delete(id);
    // Its own dependents and subtasks (all ended) keep naming it; their lookups find it gone.
    this.dependentsOf.delete(id);
    this.childrenOf.delete(id);
    if (task.idempotencyKey !== undefined && this.byIdempotencyKey.get(task.idempotencyKey) === id) this.byIdempotencyKey.delete(task.idempotencyKey);
    this.settling.delete(id);
    this.finished.delete(id);
    this.tasks.delete(id);
    this.parsed.delete(id);
    this.order.delete(id);
  }

  #put(id: string, json: string, parsed?: Task): void {
    const task = parsed ?? (JSON.parse(json) as Task);
    const before = this.parsed.get(id);
    if (before) {
      this.byStatus.get(before.status)?.delete(id);
      if (before.status === "pending") this.#line.splice(this.#place(before.priority, this.order.get(id)!), 1);
    } else {
      this.order.set(id, this.#nextOrder++);
      for (const dep of task.dependsOn) addTo(this.dependentsOf, dep, id);
      if (task.parentId !== undefined) addTo(this.childrenOf, task.parentId, id);
      if (task.idempotencyKey !== undefined) this.byIdempotencyKey.set(task.idempotencyKey, id);
    }
    addTo(this.byStatus, task.status, id);
    if (task.settling) this.settling.add(id);
    else this.settling.delete(id);
    if (FINAL_STATUSES.has(task.status) && !task.settling) {
      if (!this.finished.has(id)) this.finished.add(id);
    } else {
      this.finished.delete(id);
    }
    this.tasks.set(id, json);
    // Placed before it is parsed in: `#place` reads the others, never itself.
    if (task.status === "pending") this.#line.splice(this.#place(task.priority, this.order.get(id)!), 0, id);
    this.parsed.set(id, task);
  }
}

/** When an event happened, read from the opening `{"seq":…,"at":…` Colony writes events with, or else parsed. */
function eventTime(json: string): number {
  const opening = /^\{"seq":\d+,"at":(\d+(?:\.\d+)?),/.exec(json);
  return opening ? Number(opening[1]) : (JSON.parse(json) as TaskEvent).at;
}

/** An event's text with `seq` as its number: Colony writes events opening with their seq (see `StagedTaskTx.put`). */
function renumbered(json: string, seq: number): string {
  const opening = /^\{"seq":\d+/.exec(json);
  if (opening) return `{"seq":${seq}${json.slice(opening[0].length)}`;
  return JSON.stringify({ ...(JSON.parse(json) as TaskEvent), seq });
}

function addTo(index: Map<string, Set<string>>, key: string, id: string): void {
  let ids = index.get(key);
  if (!ids) index.set(key, (ids = new Set()));
  ids.add(id);
}

type State = TaskState;

export class StagedTaskTx implements TaskTx {
  readonly now = Date.now();
  readonly #state: State;
  /** null = removed. */
  readonly tasks = new Map<string, string | null>();
  /** null = deleted. */
  readonly workersWritten = new Map<string, string | null>();
  readonly events: string[] = [];
  nextIdValue: number;
  /**
   * What this transaction wrote, parsed, in the order first written, and indexed as the folded
   * state is: a lookup reads only the staged tasks that may match, so a transaction that writes
   * n tasks (a cascade down a long chain) does not read all n on each of its n lookups.
   */
  readonly #staged = new Map<string, { task: Task; order: number }>();
  readonly #stagedByStatus = new Map<string, Set<string>>();
  readonly #stagedDependents = new Map<string, Set<string>>();
  readonly #stagedChildren = new Map<string, Set<string>>();
  readonly #stagedByKey = new Map<string, Set<string>>();
  readonly #stagedSettling = new Set<string>();
  #horizon: number | undefined;
  /** What it counts as writing without changing (`touch`), and the workers it rests on. */
  readonly #touched = new Set<string>();
  readonly #workersRead = new Set<string>();
  /** Tasks this transaction created, for their submit order. */
  #created = 0;
  /** Whether it wrote anything (since its holder last set this false: see `NatsTaskStore`'s group commits). */
  wrote = false;

  constructor(state: State) {
    this.#state = state;
    this.nextIdValue = state.nextId;
  }

  nextId(): string {
    this.wrote = true;
    return `t-${this.nextIdValue++}`;
  }

  get(id: string): Task | undefined {
    const json = this.tasks.has(id) ? this.tasks.get(id) : this.#state.tasks.get(id);
    return json === undefined || json === null ? undefined : (JSON.parse(json) as Task);
  }

  byIdempotencyKey(key: string): Task | undefined {
    return this.#find(maybe(this.#state.byIdempotencyKey.get(key)), this.#stagedByKey.get(key), (t) => t.idempotencyKey === key)[0];
  }

  put(task: Task, event?: TaskEventType): void {
    this.wrote = true;
    const json = JSON.stringify(task);
    this.tasks.set(task.id, json);
    const staged = JSON.parse(json) as Task;
    const order = this.#staged.get(task.id)?.order ?? this.#state.order.get(task.id) ?? this.#state.nextOrder + this.#created++;
    this.#staged.set(task.id, { task: staged, order });
    // Memberships only grow here; each lookup's predicate checks the staged task itself.
    addTo(this.#stagedByStatus, staged.status, task.id);
    for (const dep of staged.dependsOn) addTo(this.#stagedDependents, dep, task.id);
    if (staged.parentId !== undefined) addTo(this.#stagedChildren, staged.parentId, task.id);
    if (staged.idempotencyKey !== undefined) addTo(this.#stagedByKey, staged.idempotencyKey, task.id);
    if (staged.settling) this.#stagedSettling.add(task.id);
    if (event) this.events.push(`{"seq":${this.#state.head + this.events.length + 1},"at":${this.now},"type":"${event}","task":${json}}`);
  }

  remove(id: string): void {
    this.wrote = true;
    this.tasks.set(id, null);
    this.#staged.delete(id);
  }

  trimEvents(seq: number): void {
    this.wrote = true;
    this.#horizon = Math.min(seq, this.head());
  }

  head(): number {
    return this.#state.head + this.events.length;
  }

  horizon(): number {
    return this.#horizon ?? this.#state.horizon;
  }

  eventTime(seq: number): number | undefined {
    if (seq <= this.horizon()) return undefined;
    return seq > this.#state.head ? (seq <= this.head() ? this.now : undefined) : this.#state.eventTime(seq);
  }

  finishedCount(): number {
    return this.#state.finished.size;
  }

  removable(limit: number): Task[] {
    const found: Task[] = [];
    for (const id of this.#state.finished) {
      if (found.length >= limit) break;
      // What this transaction changed is looked at again by the next one.
      if (this.tasks.has(id)) continue;
      const task = this.#state.parsed.get(id)!;
      if (this.#state.removable(task)) found.push(this.get(id)!);
    }
    return found;
  }

  dependents(id: string): Task[] {
    return this.#find(this.#state.dependentsOf.get(id) ?? [], this.#stagedDependents.get(id), (t) => t.dependsOn.includes(id));
  }

  children(id: string): Task[] {
    return this.#find(this.#state.childrenOf.get(id) ?? [], this.#stagedChildren.get(id), (t) => t.parentId === id);
  }

  nextClaimable(worker: string, capabilities: readonly string[], assignedOnly: boolean): Task | undefined {
    const fits = (t: Task): boolean => {
      if (t.status !== "pending" || (t.runAfter !== undefined && t.runAfter > this.now)) return false;
      if (!capabilities.includes(t.capability)) return false;
      if (assignedOnly) return t.assignee === worker;
      return t.assignee === undefined || t.assignee === worker || (t.assignedUntil !== undefined && t.assignedUntil < this.now);
    };
    let best: Task | undefined;
    let bestOrder = Infinity;
    // The folded state's line is in claim order: the first that fits is its best.
    for (const id of this.#state.inLine()) {
      if (this.tasks.has(id)) continue;
      const task = this.#state.parsed.get(id)!;
      if (!fits(task)) continue;
      best = task;
      bestOrder = this.#state.order.get(id)!;
      break;
    }
    // What this transaction made pending (few) is weighed against it.
    for (const id of this.#stagedByStatus.get("pending") ?? []) {
      const staged = this.#staged.get(id);
      if (!staged) continue;
      const { task, order } = staged;
      if (fits(task) && (!best || task.priority > best.priority || (task.priority === best.priority && order < bestOrder))) {
        best = task;
        bestOrder = order;
      }
    }
    return best && this.get(best.id);
  }

  expiredLeases(): Task[] {
    return this.#find(this.#state.ids("claimed"), this.#stagedByStatus.get("claimed"), (t) => t.status === "claimed" && t.leaseUntil! < this.now);
  }

  ownedBy(worker: string): Task[] {
    return this.#find(this.#state.ids("claimed"), this.#stagedByStatus.get("claimed"), (t) => t.status === "claimed" && t.owner === worker);
  }

  assignedTo(worker: string): Task[] {
    return this.#find(this.#state.ids("pending"), this.#stagedByStatus.get("pending"), (t) => t.status === "pending" && t.assignee === worker);
  }

  load(worker: string): number {
    let count = 0;
    for (const _ of this.#matching(this.#state.ids("claimed"), this.#stagedByStatus.get("claimed"), (t) => t.status === "claimed" && t.owner === worker)) count++;
    const reserved = (t: Task) => t.status === "pending" && t.assignee === worker && (t.assignedUntil === undefined || t.assignedUntil >= this.now);
    for (const _ of this.#matching(this.#state.ids("pending"), this.#stagedByStatus.get("pending"), reserved)) count++;
    return count;
  }

  list(filter: TaskFilter): Task[] {
    const [ids, staged] =
      filter.status !== undefined
        ? [this.#state.ids(filter.status), this.#stagedByStatus.get(filter.status)]
        : filter.parentId !== undefined
          ? [this.#state.childrenOf.get(filter.parentId) ?? [], this.#stagedChildren.get(filter.parentId)]
          : [this.#state.tasks.keys(), this.#staged.keys()];
    return this.#find(
      ids,
      staged,
      (t) =>
        (filter.status === undefined || t.status === filter.status) &&
        (filter.kind === undefined || t.kind === filter.kind) &&
        (filter.parentId === undefined || t.parentId === filter.parentId),
    );
  }

  unsettled(limit: number): Task[] {
    return this.#find(this.#state.settling, this.#stagedSettling, (t) => t.settling !== undefined).slice(0, limit);
  }

  workers(): WorkerInfo[] {
    if (this.workersWritten.size === 0) return [...this.#state.workerList()];
    const merged = new Map<string, string | null>([...this.#state.workers, ...this.workersWritten]);
    return [...merged.values()].flatMap((json) => (json === null ? [] : [JSON.parse(json) as WorkerInfo]));
  }

  putWorker(worker: WorkerInfo): void {
    this.wrote = true;
    this.workersWritten.set(worker.id, JSON.stringify(worker));
  }

  deleteWorker(id: string): void {
    this.wrote = true;
    this.workersWritten.set(id, null);
  }

  touch(id: string): void {
    if (!this.#state.tasks.has(id)) return;
    this.wrote = true;
    this.#touched.add(id);
  }

  dependOnWorker(id: string): void {
    this.#workersRead.add(id);
  }

  /** Copies of the tasks that match, in submit order. */
  #find(ids: Iterable<string>, staged: Iterable<string> | undefined, matches: (task: Task) => boolean): Task[] {
    return [...this.#matching(ids, staged, matches)].sort((a, b) => a[1] - b[1]).map(([task]) => this.get(task.id)!);
  }

  /**
   * The tasks that match, with their submit order: those of `ids` (from an index of the folded
   * state) that this transaction did not write, then those of `staged` (from the same index of
   * what it wrote). What is yielded is looked at, not handed out.
   */
  *#matching(ids: Iterable<string>, staged: Iterable<string> | undefined, matches: (task: Task) => boolean): Generator<[Task, number]> {
    for (const id of ids) {
      if (this.tasks.has(id)) continue;
      const task = this.#state.parsed.get(id)!;
      if (matches(task)) yield [task, this.#state.order.get(id)!];
    }
    for (const id of staged ?? []) {
      const staged = this.#staged.get(id);
      if (staged && matches(staged.task)) yield [staged.task, staged.order];
    }
  }

  /** What this transaction wrote; undefined if nothing. */
  changes(): TaskChanges | undefined {
    const horizon = this.#horizon !== undefined && this.#horizon > this.#state.horizon ? this.#horizon : undefined;
    const touched = [...this.#touched].filter((id) => !this.tasks.has(id));
    if (this.tasks.size === 0 && this.workersWritten.size === 0 && this.events.length === 0 && touched.length === 0 && this.nextIdValue === this.#state.nextId && horizon === undefined) return undefined;
    const revision = (id: string) => [id, this.#state.revisions.get(id) ?? 0] as [string, number];
    const workerRevision = (id: string) => [id, this.#state.workerRevisions.get(id) ?? 0] as [string, number];
    const expect = {
      tasks: [...this.tasks.keys(), ...touched].map(revision),
      workers: [...new Set([...this.workersWritten.keys(), ...this.#workersRead])].map(workerRevision),
    };
    return {
      tasks: [...this.tasks],
      workers: [...this.workersWritten],
      events: this.events,
      nextId: this.nextIdValue,
      ...(horizon !== undefined && { horizon }),
      expect,
      ...(touched.length > 0 && { touched }),
    };
  }
}

/** For stores whose transaction that writes nothing costs no more than a read: the look, or else the work, in one transaction. */
export function lookOrWork<T>(look: (view: TaskView) => { value: T } | undefined, work: (tx: TaskTx) => T): (tx: TaskTx) => T {
  return (tx) => (look(tx) ?? { value: work(tx) }).value;
}

function maybe(id: string | undefined): string[] {
  return id === undefined ? [] : [id];
}

/** The memory backend's task board. */
export class MemoryTaskStore implements TaskStore {
  readonly #state = new TaskState();
  readonly #listeners = new Set<() => void>();

  readOrTransact<T>(look: (view: TaskView) => { value: T } | undefined, work: (tx: TaskTx) => T): Promise<T> {
    return this.transact(lookOrWork(look, work));
  }

  async transact<T>(work: (tx: TaskTx) => T): Promise<T> {
    const tx = new StagedTaskTx(this.#state);
    const result = work(tx);
    const changes = tx.changes();
    if (changes) this.#state.apply(changes);
    if (changes && changes.events.length > 0) for (const listener of this.#listeners) listener();
    return result;
  }

  async events(since: number, limit = Infinity): Promise<TaskEvent[]> {
    return this.#state.eventsSince(since, limit);
  }

  async head(): Promise<number> {
    return this.#state.head;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
