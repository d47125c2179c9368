/**
 * A task board held in memory: the memory backend's store, and the state that the NATS backend
 * folds from its log. Tasks are kept as JSON text, as the SQLite backend keeps them, so a caller
 * never shares an object with the store. A transaction stages its writes; they are applied only
 * if its work returns (and, on NATS, once the log took them), so a refused submit leaves nothing.
 */
import type { TaskStore, TaskTx } from "../core/store.ts";
import type { Task, TaskEvent, TaskEventType, TaskFilter, WorkerInfo } from "../core/tasks.ts";

/** What one transaction changed: tasks and workers by id (a worker's null = removed), appended events, the next id. */
export interface TaskChanges {
  tasks: [string, string][];
  workers: [string, string | null][];
  events: string[];
  nextId: number;
}

export class TaskState {
  readonly tasks = new Map<string, string>();
  readonly workers = new Map<string, string>();
  readonly events: string[] = [];
  nextId = 1;

  apply(changes: TaskChanges): void {
    for (const [id, json] of changes.tasks) this.tasks.set(id, json);
    for (const [id, json] of changes.workers) {
      if (json === null) this.workers.delete(id);
      else this.workers.set(id, json);
    }
    this.events.push(...changes.events);
    this.nextId = changes.nextId;
  }

  eventsSince(since: number, limit = Infinity): TaskEvent[] {
    return this.events.slice(since, since + limit).map((json) => JSON.parse(json) as TaskEvent);
  }
}

type State = TaskState;

function byQueueOrder(a: { task: Task; index: number }, b: { task: Task; index: number }): number {
  return b.task.priority - a.task.priority || a.index - b.index;
}

export class StagedTaskTx implements TaskTx {
  readonly now = Date.now();
  readonly #state: State;
  readonly tasks = new Map<string, string>();
  /** null = deleted. */
  readonly workersWritten = new Map<string, string | null>();
  readonly events: string[] = [];
  nextIdValue: number;

  constructor(state: State) {
    this.#state = state;
    this.nextIdValue = state.nextId;
  }

  nextId(): string {
    return `t-${this.nextIdValue++}`;
  }

  get(id: string): Task | undefined {
    const json = this.tasks.get(id) ?? this.#state.tasks.get(id);
    return json === undefined ? undefined : (JSON.parse(json) as Task);
  }

  byIdempotencyKey(key: string): Task | undefined {
    return this.#all().find((t) => t.idempotencyKey === key);
  }

  put(task: Task, event?: TaskEventType): void {
    const json = JSON.stringify(task);
    this.tasks.set(task.id, json);
    if (event) this.events.push(`{"seq":${this.#state.events.length + this.events.length + 1},"at":${this.now},"type":"${event}","task":${json}}`);
  }

  dependents(id: string): Task[] {
    return this.#all().filter((t) => t.dependsOn.includes(id));
  }

  children(id: string): Task[] {
    return this.#all().filter((t) => t.parentId === id);
  }

  nextClaimable(worker: string, capabilities: readonly string[], assignedOnly: boolean): Task | undefined {
    const ready = this.#all()
      .map((task, index) => ({ task, index }))
      .filter(({ task: t }) => {
        if (t.status !== "pending" || (t.runAfter !== undefined && t.runAfter > this.now)) return false;
        if (!capabilities.includes(t.capability)) return false;
        if (assignedOnly) return t.assignee === worker;
        return t.assignee === undefined || t.assignee === worker || (t.assignedUntil !== undefined && t.assignedUntil < this.now);
      });
    return ready.sort(byQueueOrder)[0]?.task;
  }

  expiredLeases(): Task[] {
    return this.#all().filter((t) => t.status === "claimed" && t.leaseUntil! < this.now);
  }

  ownedBy(worker: string): Task[] {
    return this.#all().filter((t) => t.status === "claimed" && t.owner === worker);
  }

  assignedTo(worker: string): Task[] {
    return this.#all().filter((t) => t.status === "pending" && t.assignee === worker);
  }

  load(worker: string): number {
    return this.#all().filter(
      (t) => (t.status === "claimed" && t.owner === worker) || (t.status === "pending" && t.assignee === worker && (t.assignedUntil === undefined || t.assignedUntil >= this.now)),
    ).length;
  }

  list(filter: TaskFilter): Task[] {
    return this.#all().filter(
      (t) =>
        (filter.status === undefined || t.status === filter.status) &&
        (filter.kind === undefined || t.kind === filter.kind) &&
        (filter.parentId === undefined || t.parentId === filter.parentId),
    );
  }

  workers(): WorkerInfo[] {
    const merged = new Map<string, string | null>([...this.#state.workers, ...this.workersWritten]);
    return [...merged.values()].flatMap((json) => (json === null ? [] : [JSON.parse(json) as WorkerInfo]));
  }

  putWorker(worker: WorkerInfo): void {
    this.workersWritten.set(worker.id, JSON.stringify(worker));
  }

  deleteWorker(id: string): void {
    this.workersWritten.set(id, null);
  }

  #all(): Task[] {
    const merged = new Map([...this.#state.tasks, ...this.tasks]);
    return [...merged.values()].map((json) => JSON.parse(json) as Task);
  }

  /** What this transaction wrote; undefined if nothing. */
  changes(): TaskChanges | undefined {
    if (this.tasks.size === 0 && this.workersWritten.size === 0 && this.events.length === 0 && this.nextIdValue === this.#state.nextId) return undefined;
    return { tasks: [...this.tasks], workers: [...this.workersWritten], events: this.events, nextId: this.nextIdValue };
  }
}

/** The memory backend's task board. */
export class MemoryTaskStore implements TaskStore {
  readonly #state = new TaskState();
  readonly #listeners = new Set<() => void>();

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
    return this.#state.events.length;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
