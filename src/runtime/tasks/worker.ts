/**
 * A worker: registers itself on a task board, claims tasks for its capabilities, runs each with
 * the agent for the task's kind as a sub-agent, heartbeats the leases while they run, and records
 * the outcome with the claim's generation. Draining finishes what it holds and claims nothing new.
 * A task with dependencies hands its agent `{ input, dependencies }` (see `#inputOf`).
 *
 * A task is not restarted here when its agent fails: the failure goes back to the board, whose
 * retries (backoff, `maxAttempts`, dead letters) hold across workers, so another worker may take
 * the next attempt.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { ChangeSignal } from "../../core/changes.ts";
import { ColonyError, ConfigError, InvalidValueError, StoreBusyError, TaskContentionError, describeError } from "../../core/errors.ts";
import type { Isolation } from "../../core/records.ts";
import type { AgentRef, AnySubAgent, SpawnOptions, SubAgentEvent, SubAgentHandle } from "../../core/subagent-types.ts";
import type { LeaseStore } from "../../core/store.ts";
import { MAX_TIMER_MS } from "../../core/timers.ts";
import type { TaskBoard, WorkerRegistration } from "../../core/task-board.ts";
import { isLive } from "../../core/task-engine.ts";
import { StaleTaskError, WorkerIdInUseError, attemptOf, type ClaimRequest, type Task, type WorkerInfo, type WorkerStatus } from "../../core/tasks.ts";
import { recordError, withSpan } from "../../core/tracing.ts";
import type { AgentPruner } from "../agents/pruner.ts";
import type { Bus } from "../bus.ts";
import { MIN_ELECTION_LEASE_MS } from "../election.ts";
import { HOST, processAlive } from "../processes.ts";
import { joinSwarm, type SwarmMembership } from "./node.ts";
import { ServedBoard, staleChannel, staleSubject, wakeChannel, wakeSubject, type WorkerBoard } from "./served.ts";

/** Where a worker runs a referenced agent unless told; `colony worker` shares it. See `WorkerOptions.isolation`. */
export const DEFAULT_WORKER_ISOLATION: Isolation = "inline";

/** Agents by task kind: objects run inline (or as given), references load in a thread or process. */
export type AgentsByKind = Record<string, AgentRef | AnySubAgent>;

export interface WorkerOptions {
  /**
   * Unique among live workers; default host-pid-random. A stable id lets a restarted worker take
   * its place (what the last process held is retried at once); `start` refuses one that another
   * live process heartbeats (`WorkerIdInUseError`), and waits out one whose process may be gone.
   */
  id?: string;
  /** What it claims; default every kind in `agents`. */
  capabilities?: string[];
  agents: AgentsByKind;
  /** Tasks it runs at once; default 1. */
  concurrency?: number;
  /** Lease per claim, renewed while the task runs; default 30000 ms. */
  leaseMs?: number;
  /** How often it renews leases and its registry entry; default a third of the lease, at most 5000 ms. */
  heartbeatMs?: number;
  /** How long without heartbeats before others count it offline; default the lease, and at least three heartbeats. */
  ttlMs?: number;
  /** How often an idle worker looks for work besides being woken by board changes; default 500 ms. */
  pollMs?: number;
  /**
   * How long an inline agent runs before `colony agents` lists it; default 200 ms. One that ends
   * sooner is listed once, as it ended: a short task costs the registry one write, not four.
   */
  registerAfterMs?: number;
  /**
   * How references in `agents` run; objects always run inline. Default `inline`, as for `colony
   * worker` and `spawn`: a thread or process per task loads the agent's module anew each time,
   * which is worth it only for an agent that must be stoppable, memory-capped or kept from the
   * environment.
   */
  isolation?: Isolation;
  /** Runs only what fell back to it from its own process. */
  local?: boolean;
  /** Hears its events from the start, the wait for its id and `online` included (`on` adds listeners later). */
  on?: (event: WorkerEvent) => void;
}

export type WorkerEvent =
  | { type: "online"; worker: string; capabilities: string[]; concurrency: number; at: number }
  /** Before it registers: its id is live in the registry from another process, which may be gone. */
  | { type: "waiting"; reason: string; until: number; at: number }
  | { type: "claimed"; task: string; kind: string; attempt: number; at: number }
  | { type: "succeeded"; task: string; kind: string; ms: number; at: number }
  | { type: "failed"; task: string; kind: string; error: string; status: Task["status"]; at: number }
  | { type: "stale"; task: string; kind: string; error: string; at: number }
  /** What a running task's agent emits, logs or spends, as it happens. */
  | { type: "progress"; task: string; kind: string; event: SubAgentEvent; at: number }
  /** It became the task board's coordinator, or stopped being it. */
  | { type: "coordinator"; leading: boolean; term: number; reason?: string; at: number }
  /** A message on the bus was dropped: too large, not JSON, or not of its channel's schema. */
  | { type: "rejected"; subject: string; reason: string; error: string; at: number }
  | { type: "error"; error: string; at: number }
  | { type: "draining"; running: number; at: number }
  | { type: "stopped"; at: number };

/** Spawns a task's agent; an inline one is listed in the registry only once it has run `registerAfterMs` (or has ended). */
export type Spawn = (agent: AgentRef | AnySubAgent, input: unknown, options: SpawnOptions, registerAfterMs?: number) => Promise<SubAgentHandle>;

interface Running {
  task: Task;
  handle: SubAgentHandle | undefined;
  /** Set when the board said the claim is gone: the outcome must not be recorded. */
  stale: boolean;
  /** Set once its outcome is being recorded: heartbeats after that may find the claim ended. */
  recorded?: boolean;
  /** Fails the task with an error its inline agent threw where nothing awaited it; set while it runs. */
  crash?: (error: unknown) => void;
  crashed?: boolean;
}

/** The queue group thin workers hear wakes in (see `TaskWorker.#syncWakes`). */
const WAKE_QUEUE = "workers";
/** How many started claims a worker remembers (see `#start`): far more than it could hear of twice, late. */
const STARTED_KEPT = 4096;

/** The task whose inline agent code runs now: set around each spawn, inherited by all that code starts. */
const agentScope = new AsyncLocalStorage<Running>();

/** An inline agent threw where nothing awaited it: in a timer, a callback, a promise nobody awaited. */
export class AgentUncaughtError extends ColonyError {
  constructor(origin: string, cause: unknown) {
    super("AGENT_UNCAUGHT", `its agent raised an ${origin} outside its run: ${describeError(cause)}`, { cause });
  }
}

/** A task of a kind the worker does not offer reached it through a capability it does offer. */
export class UnofferedKindError extends ConfigError {
  constructor(task: Pick<Task, "id" | "kind" | "capability">, worker: string, offers: string[]) {
    super(
      `task ${task.id} of kind ${JSON.stringify(task.kind)} came by capability ${JSON.stringify(task.capability)}, but worker ${worker} runs only the agents of what it offers (${offers.join(", ")}); submit it with capability ${JSON.stringify(task.kind)}`,
    );
  }
}

/**
 * For a process that hosts workers (`colony worker`): an error that nothing awaited, raised by an
 * inline agent's code, fails that agent's task and the worker goes on. One that no running task
 * raised (module-level code of the agents, a task that already ended) goes to `report` as an
 * error event; the process goes on too, as dying would strand every lease its workers hold.
 * Node runs these handlers in the async context of the code that threw (for a rejection, of the
 * code that made or rejected the promise), which is how the task is found. Returns the uninstall.
 */
export function containUncaughtErrors(report: (event: Extract<WorkerEvent, { type: "error" }>) => void): () => void {
  const contain = (origin: string) => (error: unknown) => {
    const run = agentScope.getStore();
    if (run?.crash && !run.crashed && !run.recorded && !run.stale) return run.crash(new AgentUncaughtError(origin, error));
    const where = run ? `from the agent of task ${run.task.id}, which no longer runs here` : "outside any task";
    report({ type: "error", error: `${origin} ${where}: ${describeError(error)}`, at: Date.now() });
  };
  const exception = contain("uncaught exception");
  const rejection = contain("unhandled rejection");
  process.on("uncaughtException", exception);
  process.on("unhandledRejection", rejection);
  return () => {
    process.off("uncaughtException", exception);
    process.off("unhandledRejection", rejection);
  };
}

/** What a worker of a swarm is given: the bus, the leases of the election, and with `served`, the bus its board's operations go over. */
export interface WorkerSwarm {
  bus: Bus;
  leases: LeaseStore;
  agents?: AgentPruner;
  /** The bus (sized to the transport's limit) on which the coordinator serves the board to thin workers. */
  served?: Bus;
}

export class TaskWorker {
  readonly id: string;
  readonly capabilities: string[];
  readonly concurrency: number;
  /** Resolves once the worker has stopped (drained or stopped). */
  readonly closed: Promise<void>;
  readonly #tasks: TaskBoard;
  /** What it claims, records and heartbeats through: the board, or its coordinator when served (see served.ts). */
  readonly #ops: WorkerBoard;
  readonly #spawn: Spawn;
  readonly #options: Required<Omit<WorkerOptions, "id" | "capabilities" | "agents" | "concurrency" | "on">> & { agents: AgentsByKind };
  readonly #running = new Map<string, Running>();
  /** Slots promised to claims on their way (the claim loop's, and those made with a completion). */
  #claiming = 0;
  /** The claims it has started (`id@generation`), the newest STARTED_KEPT: see `#start`. */
  readonly #started = new Set<string>();
  readonly #changes = new ChangeSignal();
  readonly #listeners = new Set<(event: WorkerEvent) => void>();
  readonly #stop = new AbortController();
  #status: WorkerStatus = "online";
  #heartbeat: NodeJS.Timeout | undefined;
  #loop: Promise<void> = Promise.resolve();
  #resolveClosed!: () => void;
  readonly #swarm: WorkerSwarm | undefined;
  #membership: SwarmMembership | undefined;

  /**
   * With `swarm`, it also serves the bus and campaigns for coordinator, which sweeps the board and
   * prunes the agent registry with `swarm.agents` (see node.ts); with `swarm.served`, it is a thin
   * worker, whose board operations the coordinator does (see served.ts).
   */
  constructor(tasks: TaskBoard, spawn: Spawn, options: WorkerOptions, swarm?: WorkerSwarm) {
    const agents = options.agents;
    if (typeof agents !== "object" || agents === null || Object.keys(agents).length === 0) {
      throw new ConfigError("a worker needs agents: an object of task kind → agent (or { module, export })");
    }
    this.id = options.id ?? `${HOST}-${process.pid}-${randomUUID().slice(0, 6)}`;
    this.capabilities = options.capabilities ?? Object.keys(agents);
    if (this.capabilities.length === 0) throw new ConfigError("a worker needs at least one capability");
    const unknown = this.capabilities.filter((c) => !(c in agents));
    if (unknown.length > 0) {
      throw new ConfigError(`capability ${unknown.map((c) => JSON.stringify(c)).join(", ")} has no agent; the agents offer ${Object.keys(agents).join(", ")}`);
    }
    this.concurrency = positive("concurrency", options.concurrency ?? 1);
    const leaseMs = duration("leaseMs", options.leaseMs ?? 30_000);
    const heartbeatMs = duration("heartbeatMs", options.heartbeatMs ?? Math.max(1, Math.min(5000, Math.floor(leaseMs / 3))));
    this.#options = {
      agents,
      leaseMs,
      heartbeatMs,
      // Not less than a lease: a worker merely slowed down (a busy store, a long GC) is not taken for dead sooner than its leases would lapse.
      ttlMs: duration("ttlMs", options.ttlMs ?? Math.max(leaseMs, heartbeatMs * 3)),
      pollMs: duration("pollMs", options.pollMs ?? 500),
      registerAfterMs: duration("registerAfterMs", options.registerAfterMs ?? 200),
      isolation: options.isolation ?? DEFAULT_WORKER_ISOLATION,
      local: options.local ?? false,
    };
    this.#tasks = tasks;
    this.#spawn = spawn;
    this.#swarm = swarm;
    if (options.on) this.#listeners.add(options.on);
    this.#ops =
      swarm?.served && !this.#options.local
        ? new ServedBoard(tasks, swarm.served, {
            leading: () => this.#membership?.leading ?? false,
            // Past half a heartbeat's interval, the worker does the operation on its own board: an
            // answer lost with its coordinator (killed after it was asked) must not cost the lease
            // it renews, which has two more heartbeats to go.
            timeoutMs: Math.max(100, Math.floor(heartbeatMs / 2)),
            holding: () => this.#running.keys(),
          })
        : tasks;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /** Registers, then claims until drained or stopped. */
  async start(): Promise<this> {
    await this.#takeId();
    await this.#register();
    this.#emit({ type: "online", worker: this.id, capabilities: this.capabilities, concurrency: this.concurrency, at: Date.now() });
    this.#heartbeat = setInterval(() => void this.#beat(), this.#options.heartbeatMs);
    if (this.#swarm && !this.#options.local) {
      this.#membership = joinSwarm(this, this.#tasks, this.#swarm.bus, this.#swarm.leases, {
        // The coordinator is taken over as soon as a dead worker would be declared offline.
        leaseMs: Math.max(MIN_ELECTION_LEASE_MS, this.#options.ttlMs),
        agents: this.#swarm.agents,
        ...(this.#served && { serve: this.#served, heard: (task: Task) => this.#heard(task) }),
        election: (event) => {
          // While it leads, it hears the board's changes, takes pushes (see #registration) and no wakes.
          if (this.#served && (event.type === "elected" || event.type === "deposed")) {
            void this.#register().catch(() => {});
            this.#syncWakes();
          }
          if (event.type === "error") this.#emit({ type: "error", error: `coordinator election: ${event.error}`, at: event.at });
          else if (event.type !== "stopped") this.#emit({ type: "coordinator", leading: event.type === "elected", term: event.term, ...(event.type === "deposed" && { reason: event.reason }), at: event.at });
        },
        rejected: (r) => this.#emit({ type: "rejected", subject: r.subject, reason: r.reason, error: r.error, at: r.at }),
      });
    }
    this.#loop = this.#claimLoop();
    void this.#wakeOnChanges();
    return this;
  }

  get running(): number {
    return this.#running.size;
  }

  /** The ids of the tasks it runs now. */
  get runningTasks(): string[] {
    return [...this.#running.keys()];
  }

  get status(): WorkerStatus {
    return this.#status;
  }

  /** Listens to what the worker does; returns the unsubscribe. */
  on(listener: (event: WorkerEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Claims nothing more, finishes and records what it holds, then leaves the registry as `stopped`. */
  async drain(): Promise<void> {
    if (this.#status === "online") {
      this.#status = "draining";
      this.#syncWakes();
      this.#emit({ type: "draining", running: this.#running.size, at: Date.now() });
      this.#changes.bump();
      await this.#register().catch(() => {});
    }
    await this.#loop;
    await this.#finish();
  }

  /**
   * Stops at once: running agents are terminated and their tasks handed back to the board
   * (pending again, no attempt used up), not left to lapse.
   */
  async stop(): Promise<void> {
    if (this.#status === "stopped") return this.closed;
    this.#status = "draining";
    this.#stop.abort();
    this.#changes.close();
    await this.#loop;
    for (const run of this.#running.values()) {
      run.stale = true;
      await run.handle?.terminate({ graceMs: 500 }).catch(() => {});
      await this.#ops.release(run.task.id, { generation: run.task.generation }).catch(() => {});
    }
    this.#running.clear();
    await this.#finish();
  }

  async #finish(): Promise<void> {
    if (this.#status === "stopped") return;
    while (this.#running.size > 0) await this.#changes.waitPast(this.#changes.version);
    clearInterval(this.#heartbeat);
    await this.#membership?.leave().catch(() => {});
    this.#status = "stopped";
    this.#stop.abort();
    await this.#register().catch(() => {});
    this.#emit({ type: "stopped", at: Date.now() });
    this.#resolveClosed();
  }

  #registration(): WorkerRegistration {
    return {
      id: this.id,
      capabilities: this.capabilities,
      concurrency: this.concurrency,
      running: this.#running.size,
      status: this.#status,
      pid: process.pid,
      host: HOST,
      local: this.#options.local,
      ttlMs: this.#options.ttlMs,
      // Tasks are claimed for it at submit only while it hears of them: a worker that follows the
      // board, or a thin one while it is the coordinator (told by `ServeHooks.heard`).
      ...((!this.#served || this.#membership?.leading) && { push: { leaseMs: this.#options.leaseMs } }),
    };
  }

  /**
   * Makes sure no other live process is this worker: two processes under one id would each take
   * the other for a restart of itself and retry what it holds at every heartbeat. A record of
   * another process that is live (heartbeat within its ttl) is taken over at once if that process
   * is known dead (on this host, no such pid); otherwise it is watched until its heartbeat moves
   * on (`WorkerIdInUseError`) or it lapses (the process is gone: its place is taken).
   */
  async #takeId(): Promise<void> {
    let first: WorkerInfo | undefined;
    for (;;) {
      const known = (await this.#tasks.workers()).find((w) => w.id === this.id);
      const now = Date.now();
      if (!known || !isLive(known, now) || (known.pid === process.pid && known.host === HOST)) return;
      if (known.host === HOST && !processAlive(known.pid)) return;
      const until = known.heartbeatAt + known.ttlMs;
      if (first && known.heartbeatAt !== first.heartbeatAt) throw new WorkerIdInUseError(this.id, known);
      if (!first) {
        first = known;
        this.#emit({ type: "waiting", reason: `worker id ${this.id} is online as pid ${known.pid} on ${known.host}; waiting to see whether that process still heartbeats`, until, at: now });
      }
      await delay(Math.max(1, Math.min(until - now + 1, Math.max(50, Math.floor(known.ttlMs / 10)))));
    }
  }

  async #register(): Promise<void> {
    await this.#ops.heartbeatWorker(this.#registration());
  }

  /** One heartbeat round at a time: a slow store must not pile rounds up, each adding writes. */
  #beating = false;

  async #beat(): Promise<void> {
    if (this.#beating) return;
    this.#beating = true;
    try {
      await this.#beatOnce();
    } finally {
      this.#beating = false;
    }
  }

  /** The registry entry and every lease at once: one slow answer (a coordinator that died) must not hold up the rest. */
  async #beatOnce(): Promise<void> {
    await Promise.all([
      this.#register().catch((error: unknown) => this.#emit({ type: "error", error: `registry heartbeat: ${describeError(error)}`, at: Date.now() })),
      ...[...this.#running.values()].map((run) => this.#renew(run)),
    ]);
  }

  async #renew(run: Running): Promise<void> {
    if (run.stale) return;
    try {
      run.task = { ...run.task, ...(await this.#ops.heartbeat(run.task.id, { generation: run.task.generation })) };
    } catch (error) {
      if (!(error instanceof StaleTaskError)) {
        this.#emit({ type: "error", error: `lease heartbeat of ${run.task.id}: ${describeError(error)}`, at: Date.now() });
        return;
      }
      // Recorded while this heartbeat was on its way: finished, not stale.
      if (!this.#running.has(run.task.id) || run.recorded) return;
      // Cancelled, or the lease lapsed while we were slow: someone else may run it now.
      run.stale = true;
      this.#emit({ type: "stale", task: run.task.id, kind: run.task.kind, error: error.message, at: Date.now() });
      await run.handle?.terminate({ graceMs: 1000 }).catch(() => {});
    }
  }

  async #claimLoop(): Promise<void> {
    const stopped = this.#stop.signal;
    // Woken by a change, it may look at what this process has heard of the board (it is woken
    // again by the next); on the poll, and at the start, it asks the board itself.
    let heard = false;
    while (this.#status === "online" && !stopped.aborted) {
      const seen = this.#changes.version;
      const free = this.#free();
      if (free === 0) {
        await this.#changes.waitPast(seen, stopped);
        continue;
      }
      let tasks: Task[] = [];
      this.#claiming += free;
      try {
        tasks = await this.#ops.claimMany({ ...this.#claimRequest(), max: free }, { heard });
      } catch (error) {
        this.#emit({ type: "error", error: `claim: ${describeError(error)}`, at: Date.now() });
      } finally {
        this.#claiming -= free;
      }
      if (tasks.length > 0) {
        await this.#start(tasks);
        continue;
      }
      await this.#changes.waitPast(seen, stopped, this.#options.pollMs);
      heard = this.#changes.version !== seen;
    }
  }

  /** Slots neither running a task nor promised to a claim on its way. */
  #free(): number {
    return Math.max(0, this.concurrency - this.#running.size - this.#claiming);
  }

  #claimRequest(): ClaimRequest {
    return { worker: this.id, capabilities: this.capabilities, leaseMs: this.#options.leaseMs };
  }

  /**
   * Runs what was claimed; what came after a drain or stop began is handed back untouched. A
   * claim heard of twice (its claim's answer and its event, for one pushed; taken up after a lost
   * answer, see ServedBoard, and then answered after all) runs once.
   */
  async #start(tasks: Task[]): Promise<void> {
    for (const task of tasks) {
      const claim = `${task.id}@${task.generation}`;
      if (this.#running.has(task.id) || this.#started.has(claim)) continue;
      this.#started.add(claim);
      if (this.#started.size > STARTED_KEPT) this.#started.delete(this.#started.values().next().value!);
      if (this.#status === "online" && !this.#stop.signal.aborted) this.#run(task);
      else await this.#ops.release(task.id, { generation: task.generation }).catch(() => {});
    }
  }

  /**
   * Wakes the claim loop when the board changes (a submit, a retry, a lapse), not only on the
   * poll, and stops at once an agent whose task was cancelled or taken back. A thin worker hears
   * both from its coordinator (see served.ts); with no coordinator it goes by the poll and by its
   * heartbeats, which find a task taken back.
   */
  async #wakeOnChanges(): Promise<void> {
    const served = this.#served;
    if (served) {
      const off = served.subscribe(staleChannel, staleSubject(this.#tasks.name, this.id), (notice) => this.#moved(notice.task, notice.generation, notice.status, undefined));
      this.#syncWakes();
      this.#stop.signal.addEventListener(
        "abort",
        () => {
          off();
          this.#syncWakes();
        },
        { once: true },
      );
      return;
    }
    try {
      for await (const event of this.#tasks.watch({ signal: this.#stop.signal })) this.#heard(event.task);
    } catch {
      // The board closed under us; the poll still runs until the worker stops.
    }
  }

  /** A task changed: one pending may be work for it, one claimed for it at submit (pushed) it starts. */
  #heard(task: Task): void {
    if (task.status === "pending" && this.capabilities.includes(task.capability)) this.#changes.bump();
    else if (task.status === "claimed" && task.owner === this.id && !this.#running.has(task.id)) void this.#start([task]);
    this.#moved(task.id, task.generation, task.status, task.owner);
  }

  /** The bus a thin worker's board is served on; undefined for a worker that follows the board itself. */
  get #served(): Bus | undefined {
    return this.#ops === this.#tasks ? undefined : this.#swarm?.served;
  }

  /** What a thin worker hears wakes on while it has a free slot: each wake goes to one of the workers listening. */
  #wakes: (() => void)[] | undefined;

  /**
   * A thin worker listens for wakes in one queue group per capability with the other workers, so
   * that the coordinator's wake for a task reaches one worker, not every worker of the swarm. It
   * listens while it has a free slot: one that gets a wake with none stops listening and sends the
   * wake on to the group (after its unsubscribe, on the same connection: to another worker, if any
   * listens), and listens again once a slot is free. So a worker that is only ever full between
   * wakes (one task at a time, submitted one after another) never stops listening.
   */
  #syncWakes(): void {
    const served = this.#served;
    if (!served) return;
    // The coordinator's own worker hears of pending tasks from the board (`ServeHooks.heard`):
    // wakes are for the others.
    const listen = this.#status === "online" && !this.#stop.signal.aborted && this.#running.size < this.concurrency && !this.#membership?.leading;
    if (listen && !this.#wakes) {
      const board = this.#tasks.name;
      this.#wakes = this.capabilities.map((capability) => {
        const subject = wakeSubject(board, capability);
        return served.subscribe(
          wakeChannel,
          subject,
          (wake) => {
            if (this.#running.size < this.concurrency) return this.#changes.bump();
            this.#stopWakes();
            served.publish(wakeChannel, subject, wake);
          },
          { queue: WAKE_QUEUE },
        );
      });
    } else if (!listen) {
      this.#stopWakes();
    }
  }

  #stopWakes(): void {
    for (const off of this.#wakes ?? []) off();
    this.#wakes = undefined;
  }

  /** A task it runs moved past its claim (cancelled, or owned by another): its agent is stopped, its outcome not recorded. */
  #moved(id: string, generation: number, status: Task["status"], owner: string | undefined): void {
    const run = this.#running.get(id);
    if (!run || run.stale || run.recorded || generation <= run.task.generation) return;
    if (status !== "cancelled" && owner === this.id) return;
    run.stale = true;
    this.#emit({ type: "stale", task: run.task.id, kind: run.task.kind, error: `task ${run.task.id} is ${status} now`, at: Date.now() });
    void run.handle?.terminate({ graceMs: 1000 }).catch(() => {});
  }

  #run(task: Task): void {
    const run: Running = { task, handle: undefined, stale: false };
    this.#running.set(task.id, run);
    this.#emit({ type: "claimed", task: task.id, kind: task.kind, attempt: attemptOf(task), at: Date.now() });
    const started = Date.now();
    const attributes = { "colony.task.id": task.id, "colony.task.kind": task.kind, "colony.task.attempt": attemptOf(task), "colony.task.board": this.#tasks.name, "colony.worker.id": this.id };
    // Claim to complete or fail, a child of the submitter's span when the task carries one, else a trace of its own.
    void withSpan(
      "colony.task",
      attributes,
      async (span) => {
        const outcome = await this.#execute(run).then(
          (result) => ({ ok: true as const, result }),
          (error: unknown) => ({ ok: false as const, error }),
        );
        if (!outcome.ok) recordError(span, outcome.error);
        await this.#record(run, outcome, started);
        if (run.stale) span?.setAttribute("colony.task.stale", true);
      },
      { parent: task.trace ?? "none", kind: "consumer" },
    ).finally(() => {
      this.#running.delete(task.id);
      this.#syncWakes();
      this.#changes.bump();
    });
  }

  /** Records how the agent ended, unless the claim is gone; a result the board refuses fails the task for good. */
  async #record(run: Running, outcome: { ok: true; result: unknown } | { ok: false; error: unknown }, started: number): Promise<void> {
    const { task } = run;
    if (run.stale) return;
    run.recorded = true;
    const options = () => ({ generation: run.task.generation });
    try {
      if (outcome.ok) {
        const { result } = outcome;
        try {
          // Its slot is free once this is recorded: the same transaction claims what fills it
          // (and any other free slot), so a busy worker moves on in one round trip.
          const free = this.#status === "online" && !this.#stop.signal.aborted ? this.#free() + 1 : 0;
          this.#claiming += free;
          let claimed: Task[];
          try {
            ({ claimed } = await whileBusy(() => this.#ops.completeAndClaim(task.id, result, options(), { ...this.#claimRequest(), max: free })));
          } finally {
            this.#claiming -= free;
          }
          this.#emit({ type: "succeeded", task: task.id, kind: task.kind, ms: Date.now() - started, at: Date.now() });
          // This task's slot is still counted until it leaves #running (see #run), so it goes first.
          this.#running.delete(task.id);
          await this.#start(claimed);
          return;
        } catch (error) {
          if (!(error instanceof InvalidValueError)) throw error;
          outcome = { ok: false, error: new ConfigError(`its result cannot be stored: ${error.message}`) };
        }
      }
      const { error } = outcome;
      const message = describeError(error);
      const ended = await whileBusy(() => this.#ops.fail(task.id, message, { ...options(), retryable: !(error instanceof ConfigError) }));
      this.#emit({ type: "failed", task: task.id, kind: task.kind, error: message, status: ended.status, at: Date.now() });
    } catch (error) {
      if (error instanceof StaleTaskError) this.#emit({ type: "stale", task: task.id, kind: task.kind, error: error.message, at: Date.now() });
      else this.#emit({ type: "error", error: `recording ${task.id}: ${describeError(error)}`, at: Date.now() });
    }
  }

  async #execute(run: Running): Promise<unknown> {
    const { task } = run;
    // Claims go by capability, agents by kind: without this, a submit of any kind under a capability
    // this worker offers would start any agent its module exports.
    if (!this.capabilities.includes(task.kind)) throw new UnofferedKindError(task, this.id, this.capabilities);
    const agent = this.#options.agents[task.kind];
    if (!agent) throw new ConfigError(`worker ${this.id} has no agent for kind ${JSON.stringify(task.kind)}`);
    const isolation = "module" in agent ? this.#options.isolation : "inline";
    const input = await this.#inputOf(task);
    const { promise: crashed, reject } = Promise.withResolvers<never>();
    crashed.catch(() => {}); // only raced below
    run.crash = (error) => {
      run.crashed = true;
      reject(error);
      void run.handle?.terminate({ graceMs: 1000 }).catch(() => {});
    };
    // Whatever the agent's code starts inline (timers, promises) inherits this context, so that an
    // error it throws where nothing awaits it can be pinned on this task (see `containUncaughtErrors`).
    const options: SpawnOptions = { isolation, name: `${task.kind}:${task.id}`, ...(task.timeoutMs !== undefined && { timeoutMs: task.timeoutMs }) };
    run.handle = await agentScope.run(run, () => this.#spawn(agent, input, options, this.#options.registerAfterMs));
    if (run.crashed) void run.handle.terminate({ graceMs: 1000 }).catch(() => {});
    void this.#forwardProgress(task, run.handle).catch(() => {});
    return Promise.race([run.handle.result, crashed]);
  }

  async #forwardProgress(task: Task, handle: SubAgentHandle): Promise<void> {
    for await (const event of handle.events) {
      if (event.type === "emit" || event.type === "log" || event.type === "usage") {
        this.#emit({ type: "progress", task: task.id, kind: task.kind, event, at: event.at });
        this.#membership?.progress(task.id, task.kind, event);
      }
    }
  }

  /**
   * What the agent gets: the task's input, or, for a task with dependencies, `{ input,
   * dependencies }` with each dependency's result by id (a workflow's sibling subtasks by their
   * own short ids).
   */
  async #inputOf(task: Task): Promise<unknown> {
    if (task.dependsOn.length === 0) return task.input;
    const dependencies: Record<string, unknown> = {};
    const prefix = task.parentId === undefined ? undefined : `${task.parentId}.`;
    for (const id of task.dependsOn) {
      const dep = await this.#ops.get(id);
      dependencies[prefix && id.startsWith(prefix) ? id.slice(prefix.length) : id] = dep?.result;
    }
    return { input: task.input, dependencies };
  }

  #emit(event: WorkerEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}

/**
 * Retries an outcome's recording while the store is busy (another process holds SQLite's write
 * lock past the busy timeout; others keep winning the race for a NATS task), so that a finished
 * task is not left to wait out its lease.
 */
async function whileBusy<T>(record: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await record();
    } catch (error) {
      if (!(error instanceof StoreBusyError || error instanceof TaskContentionError) || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
    }
  }
}

function positive(name: string, value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 1) throw new ConfigError(`worker: ${name} is a whole number >= 1, got ${String(value)}`);
  return value as number;
}

/** A period the worker runs a timer on: one timer holds it, so past MAX_TIMER_MS it is refused. */
function duration(name: string, value: unknown): number {
  const ms = positive(name, value);
  if (ms > MAX_TIMER_MS) throw new ConfigError(`worker: ${name} is at most ${MAX_TIMER_MS} ms (about 24.8 days), got ${ms}`);
  return ms;
}
