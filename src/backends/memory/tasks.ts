/**
 * The in-memory task board. Tasks are kept as JSON text, as the durable backends keep them, so a
 * caller never shares an object with the store. A transaction stages its writes and applies them
 * only if its work returns, so a refused submit leaves nothing behind.
 */
import type { TaskStore, TaskTx } from "../../core/store.ts";
import type { Task, TaskEvent, TaskEventType, TaskFilter, WorkerInfo } from "../../core/tasks.ts";

interface State {
  tasks: Map<string, string>;
  workers: Map<string, string>;
  events: string[];
  nextId: number;
}

function byQueueOrder(a: { task: Task; index: number }, b: { task: Task; index: number }): number {
  return b.task.priority - a.task.priority || a.index - b.index;
}

class MemoryTaskTx implements TaskTx {
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
}

export class MemoryTaskStore implements TaskStore {
  readonly #state: State = { tasks: new Map(), workers: new Map(), events: [], nextId: 1 };
  readonly #listeners = new Set<() => void>();

  async transact<T>(work: (tx: TaskTx) => T): Promise<T> {
    const tx = new MemoryTaskTx(this.#state);
    const result = work(tx);
    for (const [id, json] of tx.tasks) this.#state.tasks.set(id, json);
    for (const [id, json] of tx.workersWritten) {
      if (json === null) this.#state.workers.delete(id);
      else this.#state.workers.set(id, json);
    }
    this.#state.events.push(...tx.events);
    this.#state.nextId = tx.nextIdValue;
    if (tx.events.length > 0) for (const listener of this.#listeners) listener();
    return result;
  }

  async events(since: number, limit = Infinity): Promise<TaskEvent[]> {
    return this.#state.events.slice(since, since + limit).map((json) => JSON.parse(json) as TaskEvent);
  }

  async head(): Promise<number> {
    return this.#state.events.length;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
