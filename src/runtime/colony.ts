/**
 * The entry point of the library: a colony owns one backend connection, hands out boards and
 * runs the stigmergic loop over them.
 */
import { randomUUID } from "node:crypto";
import { userInfo } from "node:os";
import { sqliteBackend } from "../backends/sqlite/index.ts";
import { checkAgentRetention } from "../core/agent-retention.ts";
import { usageTree, type UsageNode } from "../core/agent-usage.ts";
import { APPROVALS_BOARD, listApprovals, requestApproval, settleApproval, waitForDecision, type ApprovalRecord, type ApprovalStatus } from "../core/approvals.ts";
import { Board } from "../core/board.ts";
import { TaskBoard, checkRetention } from "../core/task-board.ts";
import { DEFAULT_TASK_BOARD, type Retention } from "../core/tasks.ts";
import { ClosedError, ConfigError, NotFoundError } from "../core/errors.ts";
import { DEFAULT_MAX_VALUE_BYTES } from "../core/json.ts";
import { BOARD_NAME } from "../core/run-definition.ts";
import { executeRun, type Approver, type RunHooks, type Spawner } from "../core/run.ts";
import type { ModelSteps } from "../core/model-steps.ts";
import type { AgentRetention, RunInfo, RunResult, StepRecord } from "../core/records.ts";
import type { RunDefinition } from "../core/run-types.ts";
import type { Backend, BackendFactory, BoardNames, RejectedMessages, Report } from "../core/store.ts";
import type { AgentRecord, AgentRef, AgentState, SpawnOptions, SubAgent, SubAgentHandle } from "../core/subagent-types.ts";
import type { ColonyServer, ServeOptions } from "../server/types.ts";
import { isFinal } from "../core/subagent-types.ts";
import { AgentPruner } from "./agents/pruner.ts";
import { checkPoolSizes, HostPool } from "./agents/pool.ts";
import { AgentRuntime } from "./agents/runtime.ts";
import { startSupervisor, type Supervisor, type SupervisorSpec } from "./agents/supervisor.ts";
import { Bus } from "./bus.ts";
import { Election, type ElectionOptions } from "./election.ts";
import { HOST, processAlive } from "./processes.ts";
import { TaskWorker, type AgentsByKind, type WorkerOptions } from "./tasks/worker.ts";
import { createWorkflow, type Workflow, type WorkflowDefinition } from "./tasks/workflow.ts";

/**
 * How often, at most, a colony prunes the agent registry. On the embedded backends every process
 * does, as its agents end; on NATS the swarm coordinator does it for the whole swarm, so more
 * often, reading only what was written since its last prune (see NatsAgentStore.prune), and so
 * does, as its agents end, a process that runs no worker.
 */
const EMBEDDED_AGENT_PRUNE_MS = 1000;
const SWARM_AGENT_PRUNE_MS = 250;

export interface ColonyOptions {
  /** Where boards and runs live; default `sqliteBackend()` (`.colony/colony.db`). */
  backend?: BackendFactory;
  /** The largest value a write may hold, serialised; default 1 MiB. */
  maxValueBytes?: number;
  /** Awaited before every sub-agent turn (`colony run --step` pauses there). */
  beforeTurn?: (agent: { id: string; name: string; turn: number }) => Promise<void>;
  /**
   * Agents this process can run, by task kind. With them, a task submitted here whose capability
   * no live worker offers runs in this process (local fallback) instead of waiting.
   */
  agents?: AgentsByKind;
  /** Run such tasks here; default on for the embedded backends (memory, SQLite), off on NATS, where another machine's worker may come. */
  localFallback?: boolean;
  /** How long a task reserved for the least loaded worker waits for it before any worker may take it; default 2000 ms. */
  reserveMs?: number;
  /**
   * How much of their past task boards keep (`DEFAULT_RETENTION` for what is left out), and per
   * task board in `boards`; and in `agents`, how many ended agents the agent registry keeps
   * (`DEFAULT_AGENT_RETENTION`: a week, 10,000). Every process serving a board removes what its
   * own retention does not keep, as do every process running agents on the embedded backends and
   * the swarm coordinator on NATS for the registry, so give them all the same.
   *
   * @example
   * createColony({ retention: { maxAgeMs: 24 * 60 * 60 * 1000, boards: { audit: { maxFinished: 1_000_000 } }, agents: { maxEnded: 1000 } } });
   */
  retention?: Partial<Retention> & { boards?: Record<string, Partial<Retention>>; agents?: Partial<AgentRetention> };
  /**
   * Warm hosts kept ready for `thread` and `process` sub-agents, default none: a spawn into one
   * skips starting a thread or process and loading the host code. Each runs one agent and is then
   * disposed; the pool starts its replacement in the background. A spawn with another `env` than
   * `DEFAULT_ENV`, or with `resourceLimits`, starts a host cold as without a pool.
   *
   * @example
   * createColony({ pool: { thread: 4, process: 2 } });
   */
  pool?: { thread?: number; process?: number };
}

export interface Colony {
  /** The backend's kind and location, for messages. */
  readonly backend: { kind: string; location: string };
  /**
   * Messages found in the logs of the boards and task boards this colony opened that Colony did
   * not write, and so skipped: how many, and why for the newest few. Only NATS can hold such
   * (anyone with access can publish on its subjects); zero on the embedded backends.
   */
  rejected(): Promise<RejectedMessages>;
  /** Opens (creating if needed) a board; the same name gives the same object. */
  board(name: string): Promise<Board>;
  /**
   * Opens (creating if needed) a task board, default "default"; the same name gives the same object.
   *
   * @example
   * const tasks = await colony.tasks();
   * const task = await tasks.submit({ kind: "research", input: { q: "ants" }, maxAttempts: 5 });
   * const done = await tasks.wait(task.id);
   */
  tasks(name?: string): Promise<TaskBoard>;
  /**
   * The names of the boards and task boards the backend holds, each sorted: every process's on
   * SQLite and NATS, this process's on memory. A board appears once opened, before its first write.
   */
  listBoards(): Promise<BoardNames>;
  /**
   * Starts a worker in this process on a task board (default "default"); `colony worker` is this
   * in a process of its own. Stopped (its tasks handed back) when the colony closes.
   *
   * @example
   * const worker = await colony.worker({ agents: { research }, concurrency: 4 });
   * process.on("SIGTERM", () => void worker.drain());
   */
  worker(options: WorkerOptions & { tasks?: string }): Promise<TaskWorker>;
  /**
   * A decompose → parallel → synthesize workflow on the task board. A bad definition is a
   * `ConfigError` here, before anything runs.
   *
   * @example
   * const compare = colony.workflow({
   *   name: "compare",
   *   decompose: (q: string) => [{ id: "a", kind: "research", input: q }, { id: "b", kind: "research", input: q }],
   *   execute: { research },
   *   synthesize: ({ results }) => Object.values(results).join("\n"),
   * });
   * const { result } = await compare.run("why do ants form trails?", { onProgress: (p) => console.log(p.counts) });
   */
  workflow<I, R>(definition: WorkflowDefinition<I, R>): Workflow<I, R>;
  /** Runs the stigmergic loop until a stop rule holds; the run and its steps are stored. */
  run(definition: RunDefinition, hooks?: RunHooks): Promise<RunResult>;
  readonly runs: {
    /** Past runs, newest first. */
    list(options?: { limit?: number }): Promise<RunInfo[]>;
    /** One run and its steps; throws `NotFoundError` for an unknown id. */
    get(runId: string): Promise<{ run: RunInfo; steps: StepRecord[] }>;
  };
  /** Starts a sub-agent with no parent agent; see `ctx.spawn` for spawning from inside one. */
  spawn<R = unknown, I = unknown>(agent: AgentRef | SubAgent<I, R>, input?: I, options?: SpawnOptions): Promise<SubAgentHandle<R>>;
  readonly agents: {
    /** The registry, from every process on the backend. */
    list(filter?: { parentId?: string; state?: AgentState }): Promise<AgentRecord[]>;
    /**
     * Terminates an agent, with its descendants unless `cascade` is false. An agent of another
     * process is asked through the backend; its owner carries it out within a second.
     */
    terminate(id: string, options?: { cascade?: boolean; graceMs?: number }): Promise<void>;
    /** What each agent of the tree under `rootId` spent itself (`own`) and with its descendants (`total`). */
    usage(rootId: string): Promise<UsageNode>;
  };
  /**
   * Tool calls waiting for a person (from every process on the backend), and their decisions. A
   * request whose waiting process is gone is marked abandoned when listed.
   */
  readonly approvals: {
    list(filter?: { status?: ApprovalStatus }): Promise<ApprovalRecord[]>;
    /** `ApprovalDecidedError` if it was decided already; `NotFoundError` if there is no such request. */
    approve(id: string, options?: { by?: string; reason?: string }): Promise<ApprovalRecord>;
    deny(id: string, options?: { by?: string; reason?: string }): Promise<ApprovalRecord>;
  };
  /** What `on_demand` children left; undefined until the child has ended. */
  readonly reports: { get(agentId: string): Promise<Report | undefined> };
  /**
   * Starts a supervisor, after Erlang/OTP: spawns its children in spec order (top-level agents, in
   * the registry) and restarts them when they end, by `strategy` (`one_for_one`, `one_for_all`,
   * `rest_for_one`) and each child's `restart` (`permanent`, `transient`, `temporary`). More than
   * `maxRestarts` (5) restarts within `withinMs` (60000) terminates every child and rejects
   * `result` with `SupervisorEscalationError`. A bad spec is a `ConfigError` before anything starts.
   *
   * @example
   * const sup = await colony.supervise({
   *   strategy: "one_for_one",
   *   children: [
   *     { agent: watcher, restart: "permanent" },
   *     { agent: { module: "./agents/indexer.ts" }, input: { dir: "docs" }, restart: "transient", options: { isolation: "process" } },
   *   ],
   * });
   * for await (const event of sup.events) console.log(event.type, event.child, event.reason);
   * await sup.stop();
   */
  supervise(spec: SupervisorSpec): Promise<Supervisor>;
  /**
   * The bus: schema-checked JSON messages on subjects, queue groups, request/reply. It spans this
   * process on the embedded backends and the whole swarm on NATS. Workers publish their tasks'
   * progress on it (`progressChannel`) and answer `nodeRequestChannel` requests.
   *
   * @example
   * const bus = await colony.bus();
   * bus.subscribe(progressChannel, progressSubject("default"), (p) => console.log(p.task, p.event.type));
   */
  bus(): Promise<Bus>;
  /**
   * Campaigns for `role` (1–64 letters, digits, '-', '_') until stopped or the colony closes; at
   * most one candidate of the swarm leads it at a time. Guard a leader's actions with
   * `whileLeader` or, where it matters, `await election.confirm()`.
   *
   * @example
   * const election = await colony.elect("scheduler", { leaseMs: 5000 });
   * await election.elected();
   * setInterval(() => void election.whileLeader(() => scheduleDueJobs()).catch(() => {}), 1000);
   */
  elect(role: string, options?: ElectionOptions): Promise<Election>;
  /** Who holds `role`'s lease now (a leader that died shows until another takes over), or undefined. */
  leader(role: string): Promise<string | undefined>;
  /** The warm hosts ready now (see `pool`): thread ids of the threads, pids of the processes. */
  pool(): { thread: number[]; process: number[] };
  /**
   * Serves the HTTP API (under /api, described at /api/openapi.json) and the dashboard (at `/`)
   * until the server or the colony closes. Loopback only unless a `token` is given; Hono loads
   * now, not before.
   *
   * @example
   * const server = await colony.serve({ port: 0, definitions: { essay } });
   * console.log(server.url); // http://127.0.0.1:41873
   * await server.close();
   */
  serve(options?: ServeOptions): Promise<ColonyServer>;
  close(): Promise<void>;
}

/** The model steps of this process's thread and process agents; the model SDK loads at the first one. */
function lazyModelSteps(): ModelSteps {
  let steps: Promise<ModelSteps> | undefined;
  return {
    step: async (...args) => (await (steps ??= import("../models/serve.ts").then((m) => m.modelServer()))).step(...args),
    release: (owner) => void steps?.then((s) => s.release(owner)),
  };
}

/** Who decides an approval when the caller does not say: the user of this process, on this machine. */
function decider(): string {
  let user = process.env.USER ?? process.env.LOGNAME;
  try {
    user ??= userInfo().username;
  } catch {
    user ??= `pid ${process.pid}`;
  }
  return `${user}@${HOST}`;
}

/**
 * Creates a colony. Nothing is opened until first use, so this never fails on I/O.
 *
 * @example
 * const colony = createColony(); // SQLite at .colony/colony.db
 * const board = await colony.board("research");
 * await board.write("question", "why do ants form trails?", { author: "me" });
 * await colony.close();
 */
export function createColony(options: ColonyOptions = {}): Colony {
  const factory = options.backend ?? sqliteBackend();
  if (typeof factory?.open !== "function") throw new ConfigError("backend must come from sqliteBackend(), memoryBackend() or another backend factory");
  const maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
  if (!Number.isInteger(maxValueBytes) || maxValueBytes < 1) {
    throw new ConfigError(`maxValueBytes is a whole number of bytes >= 1, got ${String(options.maxValueBytes)}`);
  }
  if (options.reserveMs !== undefined && (!Number.isInteger(options.reserveMs) || options.reserveMs < 0)) {
    throw new ConfigError(`reserveMs is a whole number of milliseconds >= 0, got ${String(options.reserveMs)}`);
  }
  const { boards: retentionByBoard = {}, agents: agentRetentionGiven, ...retentionDefault } = options.retention ?? {};
  const retentionOf = new Map<string, Retention>([["", checkRetention(retentionDefault)]]);
  for (const [name, partial] of Object.entries(retentionByBoard)) {
    if (!BOARD_NAME.test(name)) throw new ConfigError(`retention.boards: task board names are 1 to 64 letters, digits, '-' or '_', got ${JSON.stringify(name)}`);
    retentionOf.set(name, checkRetention({ ...retentionDefault, ...partial }, `retention.boards.${name}`));
  }
  const agentRetention = checkAgentRetention(agentRetentionGiven);
  const poolSizes = options.pool === undefined ? undefined : checkPoolSizes(options.pool);
  let opening: Promise<Backend> | undefined;
  let closed = false;
  const boards = new Map<string, Promise<Board>>();
  const taskBoards = new Map<string, Promise<TaskBoard>>();
  const workers = new Set<TaskWorker>();
  const localWorkers = new Map<string, Promise<TaskWorker>>();
  const localFallback = options.localFallback ?? factory.embedded;

  let pruner: AgentPruner | undefined;
  const agentPruner = (b: Backend): AgentPruner =>
    (pruner ??= new AgentPruner(b.agents, agentRetention, factory.embedded ? EMBEDDED_AGENT_PRUNE_MS : SWARM_AGENT_PRUNE_MS));

  // Started now, so that hosts are warm by the first spawn; it opens nothing of the backend.
  const hostPool = poolSizes && poolSizes.thread + poolSizes.process > 0 ? new HostPool(poolSizes) : undefined;
  let runtime: Promise<AgentRuntime> | undefined;
  const supervisors = new Set<Supervisor>();
  const agentRuntime = (): Promise<AgentRuntime> => {
    runtime ??= backend().then((b) => {
      // On NATS the task board's coordinator prunes for the swarm, and a process that runs a
      // worker leaves it to that. One that runs none prunes as its agents end, as an embedded one
      // does: beside a coordinator that is redundant, never wrong, and without it a swarm of such
      // processes (agents, no workers) would keep every agent that ever ran.
      const ended = () => {
        if (factory.embedded || workers.size === 0) agentPruner(b).maybePrune();
      };
      return new AgentRuntime({ agents: b.agents, board, tasks, beforeTurn: options.beforeTurn, ended, pool: hostPool, models: lazyModelSteps() });
    });
    return runtime;
  };

  const backend = (): Promise<Backend> => {
    if (closed) return Promise.reject(new ClosedError("colony"));
    opening ??= factory.open();
    return opening;
  };

  const board = (name: string): Promise<Board> => {
    if (typeof name !== "string" || !BOARD_NAME.test(name)) {
      return Promise.reject(new ConfigError(`board names are 1 to 64 letters, digits, '-' or '_', got ${JSON.stringify(name)}`));
    }
    let opened = boards.get(name);
    if (!opened) {
      opened = backend().then(async (b) => Board.open(name, await b.openBoard(name), { maxValueBytes }));
      boards.set(name, opened);
      opened.catch(() => boards.delete(name));
    }
    return opened;
  };

  const tasks = (name = DEFAULT_TASK_BOARD): Promise<TaskBoard> => {
    if (typeof name !== "string" || !BOARD_NAME.test(name)) {
      return Promise.reject(new ConfigError(`task board names are 1 to 64 letters, digits, '-' or '_', got ${JSON.stringify(name)}`));
    }
    let opened = taskBoards.get(name);
    if (!opened) {
      const fallback = options.agents && localFallback ? () => localWorker(name) : undefined;
      opened = backend().then(async (b) => new TaskBoard(name, await b.openTasks(name), { maxValueBytes, localFallback: fallback, reserveMs: options.reserveMs, retention: retentionOf.get(name) ?? retentionOf.get("")! }));
      taskBoards.set(name, opened);
      opened.catch(() => taskBoards.delete(name));
    }
    return opened;
  };

  const spawn = async (agent: AgentRef | SubAgent, input: unknown, spawnOptions: SpawnOptions, registerAfterMs?: number) =>
    (await agentRuntime()).spawn(agent, input, spawnOptions, { registerAfterMs });

  let opened: Promise<Bus> | undefined;
  const bus = (): Promise<Bus> => {
    opened ??= backend().then((b) => new Bus(b.bus));
    return opened;
  };
  const elections = new Set<Election>();
  const servers = new Set<ColonyServer>();

  // On a swarm, workers are thin: the coordinator folds the task board and serves it to them over
  // this bus, which carries tasks and results and so takes what the transport does (see served.ts).
  let servedBus: Bus | undefined;
  const startWorker = async (workerOptions: WorkerOptions & { tasks?: string }): Promise<TaskWorker> => {
    const connected = await backend();
    const served = factory.embedded ? undefined : (servedBus ??= new Bus(connected.bus, { maxBytes: connected.bus.maxPayload }));
    const worker = new TaskWorker(await tasks(workerOptions.tasks), spawn, workerOptions, { bus: await bus(), leases: connected.leases, agents: agentPruner(connected), ...(served && { served }) });
    workers.add(worker);
    void worker.closed.then(() => workers.delete(worker));
    try {
      return await worker.start();
    } catch (error) {
      workers.delete(worker); // refused before it registered: nothing to drain
      throw error;
    }
  };

  /** The worker that runs this process's fallen-back tasks on one task board, started on first need. */
  const localWorker = async (name: string): Promise<string> => {
    let started = localWorkers.get(name);
    if (!started) {
      started = startWorker({ tasks: name, agents: options.agents!, local: true, concurrency: 4, isolation: "inline", id: `local-${process.pid}-${randomUUID().slice(0, 6)}` });
      localWorkers.set(name, started);
      started.catch(() => localWorkers.delete(name));
    }
    return (await started).id;
  };

  const colony: Colony = {
    backend: { kind: factory.kind, location: factory.location },
    async rejected() {
      const none = { count: 0, last: [] };
      return opening ? ((await backend()).rejected?.() ?? none) : none;
    },
    worker: startWorker,
    workflow: (definition) => createWorkflow(definition, { tasks, spawn, startWorker }),
    board,
    tasks,
    async listBoards() {
      return (await backend()).listBoards();
    },
    async run(definition, hooks) {
      const target = await board(definition?.board);
      const spawner = async (...[agent, input, spawnOptions, scope]: Parameters<Spawner>) =>
        (await agentRuntime()).spawn(agent, input, spawnOptions, scope);
      const approver: Approver = async ({ runId, run, agent, tool, args, signal }) => {
        const approvals = await board(APPROVALS_BOARD);
        const record = await requestApproval(approvals, { tool, args, agentId: `${runId}/${agent}`, agentName: agent, path: [run, agent], rootId: runId, owner: { pid: process.pid, host: HOST } });
        try {
          const decided = await waitForDecision(approvals, record.id, signal);
          return { approved: decided.status === "approved", ...(decided.reason !== undefined && { reason: decided.reason }) };
        } catch (error) {
          if (signal.aborted) await settleApproval(approvals, record.id, "abandoned", "colony", "its run stopped").catch(() => {});
          throw error;
        }
      };
      // The colony's stepper pauses a loop agent's turns within a fire as it does a sub-agent's.
      const runHooks: RunHooks = { ...(options.beforeTurn && { beforeTurn: options.beforeTurn }), ...hooks };
      return executeRun(definition, target, (await backend()).runs, runHooks, spawner, approver);
    },
    runs: {
      async list(listOptions) {
        return (await backend()).runs.listRuns(listOptions);
      },
      async get(runId) {
        const found = await (await backend()).runs.getRun(runId);
        if (!found) throw new NotFoundError(`run ${JSON.stringify(runId)}`);
        return found;
      },
    },
    async spawn(agent, input, options) {
      return (await agentRuntime()).spawn(agent, input, options);
    },
    agents: {
      async list(filter) {
        const store = (await backend()).agents;
        const records = await store.list(filter);
        // An agent whose owning process is gone (killed, crashed) can never end by itself: record
        // that, so the registry does not show it running forever. Only this machine's pids can be
        // checked: an agent of another machine is left to its own machine's colonies.
        for (const record of records) {
          if (isFinal(record.state) || (record.ownerHost !== undefined && record.ownerHost !== HOST)) continue;
          if (record.ownerPid === process.pid || processAlive(record.ownerPid)) continue;
          const patch = { state: "failed" as const, reason: "crash" as const, error: `its owner process ${record.ownerPid} is gone`, endedAt: Date.now() };
          if (await store.transition(record.id, record.generation, patch)) Object.assign(record, patch, { generation: record.generation + 1 });
        }
        return filter?.state === undefined ? records : records.filter((r) => r.state === filter.state);
      },
      async terminate(id, terminateOptions = {}) {
        const local = await agentRuntime();
        if (local.owns(id)) return local.terminate(id, terminateOptions);
        const asked = await (await backend()).agents.requestKill(id, terminateOptions.cascade ?? true);
        if (!asked) throw new NotFoundError(`live agent ${JSON.stringify(id)}`);
      },
      async usage(rootId) {
        return usageTree(await colony.agents.list(), rootId);
      },
    },
    approvals: {
      async list(filter = {}) {
        const approvals = await board(APPROVALS_BOARD);
        const records = await listApprovals(approvals);
        for (const [i, record] of records.entries()) {
          const { pid, host } = record.owner;
          if (record.status !== "pending" || host !== HOST || pid === process.pid || processAlive(pid)) continue;
          records[i] = await settleApproval(approvals, record.id, "abandoned", "colony", `its process ${pid} is gone (it crashed or was killed while waiting)`).catch(() => record);
        }
        return filter.status === undefined ? records : records.filter((r) => r.status === filter.status);
      },
      async approve(id, decision = {}) {
        return settleApproval(await board(APPROVALS_BOARD), id, "approved", decision.by ?? decider(), decision.reason);
      },
      async deny(id, decision = {}) {
        return settleApproval(await board(APPROVALS_BOARD), id, "denied", decision.by ?? decider(), decision.reason);
      },
    },
    reports: {
      async get(agentId) {
        return (await backend()).agents.getReport(agentId);
      },
    },
    async supervise(spec) {
      const supervisor = await startSupervisor(spec, async (agent, input, spawnOptions) => (await agentRuntime()).spawn(agent, input, spawnOptions));
      supervisors.add(supervisor);
      supervisor.result.then(
        () => supervisors.delete(supervisor),
        () => supervisors.delete(supervisor),
      );
      return supervisor;
    },
    bus,
    async elect(role, electionOptions) {
      const election = new Election((await backend()).leases, role, electionOptions);
      elections.add(election);
      void election.elected().catch(() => elections.delete(election));
      return election.start();
    },
    async leader(role) {
      return (await (await backend()).leases.get(role)).holder;
    },
    pool: () => hostPool?.status() ?? { thread: [], process: [] },
    async serve(serveOptions) {
      const { serve } = await import("../server/serve.ts");
      const server = await serve(colony, serveOptions);
      servers.add(server);
      return server;
    },
    async close() {
      if (closed) return;
      await Promise.all([...servers].map((s) => s.close()));
      await Promise.all([...elections].map((e) => e.stop()));
      // Supervisors first, so that none takes its children's ends for failures to restart.
      await Promise.all([...supervisors].map((s) => s.stop()));
      await Promise.all([...workers].map((w) => w.stop()));
      if (runtime) await (await runtime).close();
      await hostPool?.close();
      await pruner?.stop();
      closed = true;
      for (const opened of boards.values()) (await opened.catch(() => undefined))?.close();
      for (const opened of taskBoards.values()) (await opened.catch(() => undefined))?.close();
      // A backend that never opened (bad credentials, say) has nothing to close.
      if (opening) await (await opening.catch(() => undefined))?.close();
    },
  };
  return colony;
}
