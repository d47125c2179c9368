/**
 * One reader of a task board's events per `TaskBoard`, routing each event to the watchers that
 * want it. Every `watch()` and `wait()` used to read and parse every event of the board itself, and
 * every event woke every one of them: a thousand waits on a thousand tasks cost a million parses
 * and wake-ups. Here each event is read once and handed only to the watchers of its task (or of
 * every task), so waiting on n tasks costs what the n tasks' events do.
 *
 * A watcher starting behind the router (from an older `since`) reads the store itself until it has
 * caught up, then attaches; one whose consumer falls far behind is detached and reads for itself
 * again, so a slow consumer costs its own reads, never unbounded memory here. While anyone
 * watches, the router also notices leases that lapse (and has them reaped), once for all watchers.
 */
import { ChangeSignal } from "./changes.ts";
import { ClosedError } from "./errors.ts";
import type { TaskStore } from "./store.ts";
import type { TaskEvent } from "./tasks.ts";

/** Events read from the store at a time. */
const PAGE = 500;
/** Events held for one attached watcher before it is left to read the store for itself. */
const MAX_QUEUED = 2 * PAGE;
/**
 * How long the reader runs on after its last watcher left: one `wait()` after another (a client
 * that submits and waits, task by task) then attaches to a reader at the head, instead of each
 * starting one that first finds the head and the leases (two reads of the store). On NATS its
 * change listener keeps the store's feed (one consumer) and its folded state for as long: a
 * reader started anew made a consumer and caught up with the log, about 2 ms a wait.
 */
export const LINGER_MS = 5_000;

interface Route {
  readonly taskId: string | undefined;
  /** Events after this seq are for it. */
  since: number;
  readonly queue: TaskEvent[];
  readonly signal: ChangeSignal;
  /** It fell too far behind: it reads for itself from its cursor. */
  overflowed: boolean;
  failure: unknown;
}

export class TaskEventRouter {
  readonly #store: TaskStore;
  readonly #name: string;
  /** Reaps what is due and answers when each claimed task's lease ends. */
  readonly #reap: () => Promise<Map<string, number>>;
  readonly #byTask = new Map<string, Set<Route>>();
  readonly #all = new Set<Route>();
  /** The seq of the last event routed, while the pump runs (once it has found the head). */
  #cursor: number | undefined;
  /** Watchers reading for themselves until they catch up: the pump keeps running for them. */
  #joining = 0;
  #pump: Promise<void> | undefined;
  /** Why the last pump failed to find the head, if it did: for the watchers waiting for it. */
  #failure: unknown;
  /** Bumped by the store's changes, when the pump has found the head or has ended, and when the last watcher leaves. */
  readonly #changes = new ChangeSignal();
  /** Until when the pump runs on with nobody watching (see LINGER_MS). */
  #lingerUntil = 0;
  #closed = false;

  constructor(store: TaskStore, name: string, reap: () => Promise<Map<string, number>>) {
    this.#store = store;
    this.#name = name;
    this.#reap = reap;
  }

  /** Every event after `since` (of `taskId` only, if given), in order, none lost or repeated. */
  async *watch(since: number, taskId: string | undefined, signal: AbortSignal | undefined): AsyncGenerator<TaskEvent> {
    const route: Route = { taskId, since, queue: [], signal: new ChangeSignal(), overflowed: false, failure: undefined };
    let cursor = since;
    let attached = false;
    const wake = () => route.signal.bump();
    signal?.addEventListener("abort", wake, { once: true });
    this.#joining++;
    try {
      while (!this.#closed && !signal?.aborted) {
        if (!attached) {
          const seen = this.#changes.version;
          this.#start();
          const routed = this.#cursor;
          if (routed !== undefined && cursor >= routed) {
            // Caught up: from here on the pump, which runs as long as anyone is attached, brings
            // every event after `cursor` (none between: this runs in one go with the check).
            route.since = cursor;
            this.#attach(route);
            this.#joining--;
            attached = true;
            continue;
          }
          if (routed === undefined) {
            if (this.#failure !== undefined) throw this.#failure;
            // The pump is finding the head: wait for it (a change bumps `#changes` too).
            await this.#changes.waitPast(seen, signal);
            continue;
          }
          const events = await this.#store.events(cursor, PAGE);
          for (const event of events) {
            cursor = event.seq;
            if (taskId === undefined || event.task.id === taskId) yield event;
            if (this.#closed || signal?.aborted) return;
          }
          continue;
        }
        const seen = route.signal.version;
        const event = route.queue.shift();
        if (event) {
          cursor = event.seq;
          yield event;
          continue;
        }
        if (route.failure !== undefined) throw route.failure;
        if (route.overflowed) {
          this.#joining++;
          this.#detach(route);
          attached = false;
          route.overflowed = false;
          continue;
        }
        await route.signal.waitPast(seen);
      }
    } finally {
      signal?.removeEventListener("abort", wake);
      if (attached) this.#detach(route);
      else this.#leftJoining();
    }
  }

  /** Ends every watch; later ones end at once. */
  close(): void {
    this.#closed = true;
    this.#changes.close();
    for (const route of this.#routes()) route.signal.close();
  }

  #start(): void {
    // Watchers that came while it stopped, woken here, start another; after a failure they have
    // already met it (the pump's own end woke them first, while it was still the pump).
    if (this.#pump) return;
    this.#pump = this.#run().finally(() => {
      this.#pump = undefined;
      this.#changes.bump();
    });
  }

  /** Whether anyone is attached or on the way to attaching. */
  get #watched(): boolean {
    return this.#joining > 0 || this.#all.size > 0 || this.#byTask.size > 0;
  }

  #leftJoining(): void {
    this.#joining--;
    this.#leftLast();
  }

  /** The last one gone: the pump runs on a while for the next (see LINGER_MS), then stops, and with it this board's change listener. */
  #leftLast(): void {
    if (this.#watched) return;
    this.#lingerUntil = Date.now() + LINGER_MS;
    this.#changes.bump();
  }

  #attach(route: Route): void {
    if (route.taskId === undefined) this.#all.add(route);
    else {
      let routes = this.#byTask.get(route.taskId);
      if (!routes) this.#byTask.set(route.taskId, (routes = new Set()));
      routes.add(route);
    }
  }

  #detach(route: Route): void {
    if (route.taskId === undefined) this.#all.delete(route);
    else {
      const routes = this.#byTask.get(route.taskId);
      routes?.delete(route);
      if (routes?.size === 0) this.#byTask.delete(route.taskId);
    }
    this.#leftLast();
  }

  *#routes(): Generator<Route> {
    yield* this.#all;
    for (const routes of this.#byTask.values()) yield* routes;
  }

  /** Reads the events as they come and hands each to the watchers that want it, while there are any. */
  async #run(): Promise<void> {
    this.#failure = undefined;
    const stop = this.#store.onChange(() => this.#changes.bump());
    try {
      // From the head, and the leases to watch for as of then: a watcher starts from the head or
      // reads up to it itself before it attaches.
      let leases = await this.#reap();
      this.#cursor = await this.#store.head();
      this.#changes.bump();
      while (!this.#closed && (this.#watched || Date.now() < this.#lingerUntil)) {
        const seen = this.#changes.version;
        const events = await this.#store.events(this.#cursor, PAGE);
        for (const event of events) {
          this.#cursor = event.seq;
          if (event.task.status === "claimed") leases.set(event.task.id, event.task.leaseUntil!);
          else leases.delete(event.task.id);
          this.#route(event);
        }
        if (events.length > 0) continue;
        const lapsed = await waitOrLapse(this.#changes, seen, leases, this.#watched ? Infinity : this.#lingerUntil);
        if (lapsed && !this.#closed && this.#watched) leases = await this.#reap();
      }
    } catch (error) {
      // A store that fails (closed, or the events went under retention while this fell behind)
      // fails those attached; those reading for themselves meet it, or not, on their own.
      const failure = this.#closed ? new ClosedError(`task board "${this.#name}"`) : error;
      // Watchers waiting for the head meet only a failure to find it.
      if (this.#cursor === undefined) this.#failure = failure;
      for (const route of this.#routes()) {
        route.failure = failure;
        route.signal.bump();
      }
      this.#all.clear();
      this.#byTask.clear();
    } finally {
      // At once, in the same go as the last check: no watcher attaches to a pump that has ended.
      this.#cursor = undefined;
      stop();
      this.#changes.bump();
    }
  }

  #route(event: TaskEvent): void {
    const routes = [...this.#all, ...(this.#byTask.get(event.task.id) ?? [])].filter((r) => event.seq > r.since);
    for (const [i, route] of routes.entries()) {
      if (route.overflowed) continue;
      if (route.queue.length >= MAX_QUEUED) {
        route.overflowed = true;
        route.queue.length = 0;
      } else {
        // Each gets an object of its own: the last the one read, the others copies.
        route.queue.push(i === routes.length - 1 ? event : (JSON.parse(JSON.stringify(event)) as TaskEvent));
      }
      route.signal.bump();
    }
  }
}

/**
 * Waits for a change, until the first of `leases` ends, or until `until` (a time); true if a
 * lease ended first (so the caller should reap), false on a change, a close or `until`.
 */
async function waitOrLapse(changes: ChangeSignal, seen: number, leases: ReadonlyMap<string, number>, until: number): Promise<boolean> {
  let due = Infinity;
  for (const end of leases.values()) due = Math.min(due, end);
  if (due === Infinity && until === Infinity) {
    await changes.waitPast(seen);
    return false;
  }
  let timer: NodeJS.Timeout | undefined;
  // A lease has lapsed once `now` is past `leaseUntil`. Capped, as a timer cannot wait past 2^31 ms
  // (and a check every minute is nothing). While nobody watches (`until` is set), it does not hold
  // the process open.
  const lapses = due <= until;
  const delay = Math.min(Math.max(0, Math.min(due, until) - Date.now()) + 1, 60_000);
  const over = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(lapses), delay)));
  if (until !== Infinity) timer!.unref();
  try {
    return await Promise.race([changes.waitPast(seen).then(() => false), over]);
  } finally {
    clearTimeout(timer);
  }
}
