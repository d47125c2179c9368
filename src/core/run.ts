/**
 * The stigmergic loop. Each step takes one snapshot of the board, asks every agent's trigger
 * about that same snapshot, fires the agents that said yes and records who read and wrote what.
 * The loop itself calls no model: it only reads the board and runs triggers.
 *
 * Stop rules, checked in this order at the top of each step, on a fresh view: `aborted` (the
 * signal fired), `goal` (the goal holds), then what the previous step decided — `error` when every
 * agent that fired failed (a compare-and-set conflict is not a failure) for `deadlockAfter` steps
 * in a row, `deadlock` when agents fired but the board did not change for `deadlockAfter` steps in
 * a row — then `max_steps`, then `quiescence` (no trigger fired). So a step that reaches the goal
 * ends the run with `goal` even if an agent in it failed, and the goal is asked once per step.
 */
import type { Board, BoardView, Entry } from "./board.ts";
import { ConfigError, VersionConflictError, describeError } from "./errors.ts";
import type { TagsInput } from "./json.ts";
import type { FiredRecord, ModelCallRecord, RunInfo, RunResult, StepRecord, StopReason, Usage } from "./records.ts";
import type { Agent, AgentBoard, AgentContext, RunDefinition } from "./run-types.ts";
import { Ledger, checkBudget } from "./governance.ts";
import { BudgetExceededError, isFinal, type AgentRef, type SpawnOptions, type SubAgent, type SubAgentHandle } from "./subagent-types.ts";
import { checkRunDefinition } from "./run-definition.ts";
import type { RunStore } from "./store.ts";
import { timedId } from "./ids.ts";
import { recordError, withSpan, type Span } from "./tracing.ts";

export interface RunHooks {
  /** Called once the run is recorded, before its seed is written or anything fires: its id and record. */
  onStart?: (run: RunInfo) => void;
  /** Called after each step is recorded, for live progress. */
  onStep?: (step: StepRecord, run: RunInfo) => void;
  /** Awaited before each step fires its agents (stepping through a run). */
  beforeStep?: (index: number, view: BoardView) => void | Promise<void>;
  /** Awaited before each turn after the first of an agent that works in turns within a fire (a model agent's steps). */
  beforeTurn?: (agent: { id: string; name: string; turn: number }) => Promise<void>;
}

/** Starts sub-agents for the loop's agents; the runtime provides it, so core needs no driver. */
export type Spawner = (
  agent: AgentRef | SubAgent,
  input: unknown,
  options: SpawnOptions,
  scope: { ledger: Ledger; board: string },
) => Promise<SubAgentHandle<unknown>>;

/** Waits for a person's decision on a loop agent's tool call; the runtime provides it (see `requestApproval`). */
export type Approver = (request: { runId: string; run: string; agent: string; tool: string; args: unknown; signal: AbortSignal }) => Promise<{ approved: boolean; reason?: string }>;

const SEED_AUTHOR = "seed";

export function newRunId(): string {
  return timedId("run", 6);
}

export function executeRun(definition: RunDefinition, board: Board, runs: RunStore, hooks: RunHooks = {}, spawner?: Spawner, approver?: Approver): Promise<RunResult> {
  return withSpan("colony.run", { "colony.board": board.name }, (span) => loop(span, definition, board, runs, hooks, spawner, approver));
}

async function loop(
  span: Span | undefined,
  definition: RunDefinition,
  board: Board,
  runs: RunStore,
  hooks: RunHooks,
  spawner: Spawner | undefined,
  approver: Approver | undefined,
): Promise<RunResult> {
  const def = checkRunDefinition(definition);
  const ledger = new Ledger(`run ${def.name ?? def.board}`, def.budget);
  const agentLedgers = new Map(def.agents.map((a) => [a, new Ledger(a.name, checkBudget(a.budget, `agent ${a.name}`), ledger, ledger.level)]));
  const spawned: SubAgentHandle<unknown>[] = [];
  const started = performance.now();
  const info: RunInfo = {
    runId: newRunId(),
    name: def.name ?? def.board,
    board: board.name,
    status: "running",
    startedAt: Date.now(),
    steps: 0,
    totalTokens: 0,
    totalCostUsd: 0,
  };
  span?.setAttributes({ "colony.run.id": info.runId, "colony.run.name": info.name });
  const steps: StepRecord[] = [];
  const finish = async (stopReason: StopReason, error?: string): Promise<RunResult> => {
    // Sub-agents belong to the run: none outlives it.
    await Promise.all(spawned.filter((h) => !isFinal(h.state)).map((h) => h.terminate({ graceMs: 500 }).catch(() => {})));
    info.totalTokens = ledger.used.tokens;
    info.totalCostUsd = ledger.used.costUsd;
    info.status = "finished";
    info.stopReason = stopReason;
    if (error !== undefined) info.error = error;
    info.endedAt = Date.now();
    info.durationMs = Math.round(performance.now() - started);
    span?.setAttributes({ "colony.run.stop_reason": stopReason, "colony.run.steps": info.steps, "colony.run.tokens": info.totalTokens });
    if (stopReason === "error") recordError(span, error, stopReason);
    await runs.finishRun(info);
    return {
      runId: info.runId,
      board: board.name,
      stopReason,
      ...(error !== undefined && { error }),
      steps,
      totalTokens: info.totalTokens,
      totalCostUsd: info.totalCostUsd,
      durationMs: info.durationMs,
    };
  };

  await runs.createRun(info);
  hooks.onStart?.({ ...info });
  const controller = new AbortController();
  const signal = def.signal ? AbortSignal.any([def.signal, controller.signal]) : controller.signal;
  try {
    for (const [key, value] of Object.entries(def.seed ?? {})) await board.write(key, value, { author: SEED_AUTHOR });

    const fires = new Map<Agent, number>();
    let unchanged = 0;
    let failing = 0;
    let decided: { reason: StopReason; error?: string } | undefined;
    for (let index = 1; ; index++) {
      if (signal.aborted) return await finish("aborted");
      const seqBefore = await board.refresh();
      const view = board.view();
      if (def.goal?.(view)) return await finish("goal");
      if (decided) return await finish(decided.reason, decided.error);
      if (index > def.maxSteps) return await finish("max_steps");
      try {
        ledger.countStep();
      } catch (error) {
        if (error instanceof BudgetExceededError) return await finish("budget", error.message);
        throw error;
      }
      await hooks.beforeStep?.(index, view);
      if (signal.aborted) return await finish("aborted"); // while it paused there (colony run --step)

      const startedAt = Date.now();
      const fired: FiredRecord[] = [];
      const eligible: Agent[] = [];
      for (const agent of def.agents) {
        if ((fires.get(agent) ?? 0) >= (agent.maxFires ?? (agent.trigger ? Infinity : 1))) continue;
        try {
          if (agent.trigger === undefined || agent.trigger(view)) eligible.push(agent);
        } catch (error) {
          fired.push(failedTrigger(agent, error));
        }
      }
      if (eligible.length === 0 && fired.length === 0) return await finish("quiescence");

      eligible.sort((a, b) => (b.priority ?? 0) - (a.priority ?? 0));
      for (const agent of eligible) fires.set(agent, (fires.get(agent) ?? 0) + 1);
      const fire = (agent: Agent, span: Span | undefined) =>
        fireAgent(agent, view, board, {
          span,
          runId: info.runId,
          step: index,
          signal,
          ledger: agentLedgers.get(agent)!,
          spawn: (async (child: AgentRef | SubAgent, input: unknown, options: SpawnOptions = {}) => {
            if (!spawner) throw new ConfigError("this run has no sub-agent runtime; run it through colony.run to spawn");
            const handle = await spawner(child, input, options, { ledger: agentLedgers.get(agent)!, board: board.name });
            spawned.push(handle);
            return handle;
          }) as AgentContext["spawn"],
          requestApproval: ({ tool, args }) => {
            if (!approver) throw new ConfigError("this run cannot wait for approvals; run it through colony.run");
            return approver({ runId: info.runId, run: info.name, agent: agent.name, tool, args, signal });
          },
          beforeTurn: async (turn) => hooks.beforeTurn?.({ id: `${info.runId}/${agent.name}`, name: agent.name, turn }),
        });
      const limit = def.parallel ? def.concurrency : 1;
      const traced = (agent: Agent) => withSpan("colony.agent.fire", { "colony.run.id": info.runId, "colony.step.index": index, "colony.agent.name": agent.name }, (span) => fire(agent, span));
      fired.push(...(await withSpan("colony.step", { "colony.run.id": info.runId, "colony.step.index": index }, () => mapBounded(eligible, limit, traced))));

      const seqAfter = await board.refresh();
      const step: StepRecord = { index, startedAt, seq: seqAfter, fired };
      steps.push(step);
      info.steps = index;
      info.totalTokens = ledger.used.tokens;
      info.totalCostUsd = ledger.used.costUsd;
      await runs.appendStep(info.runId, step);
      hooks.onStep?.(step, info);

      // A limit refused anywhere under the run (an agent's, a sub-agent's) stops it.
      const exceeded = ledger.exceeded ?? [...agentLedgers.values()].find((l) => l.exceeded)?.exceeded;
      const failures = fired.filter((f) => f.error !== undefined && !f.conflict);
      failing = failures.length === fired.length ? failing + 1 : 0;
      unchanged = seqAfter === seqBefore ? unchanged + 1 : 0;
      if (exceeded) {
        decided = { reason: "budget", error: exceeded.message };
      } else if (failing >= def.deadlockAfter) {
        const errors = failures.map((f) => `${f.agent}: ${f.error}`).join("; ");
        decided = { reason: "error", error: `every agent that fired failed for ${failing} steps in a row (${errors})` };
      } else if (unchanged >= def.deadlockAfter) {
        decided = { reason: "deadlock" };
      }
    }
  } catch (error) {
    // Only the loop's own machinery (the store, a goal that throws) lands here; agents' errors are recorded.
    return await finish("error", describeError(error));
  } finally {
    controller.abort();
  }
}

function failedTrigger(agent: Agent, error: unknown): FiredRecord {
  return { agent: agent.name, read: [], written: [], tokens: 0, costUsd: 0, ms: 0, error: `trigger threw: ${describeError(error)}` };
}

interface FireScope {
  /** The fire's span, if traced: an agent's error is recorded on it (a compare-and-set conflict is not one). */
  span: Span | undefined;
  runId: string;
  step: number;
  signal: AbortSignal;
  ledger: Ledger;
  spawn: AgentContext["spawn"];
  requestApproval: AgentContext["requestApproval"];
  beforeTurn: AgentContext["beforeTurn"];
}

async function fireAgent(agent: Agent, view: BoardView, board: Board, scope: FireScope): Promise<FiredRecord> {
  const read = new Set<string>();
  const written: string[] = [];
  const logs: string[] = [];
  const calls: ModelCallRecord[] = [];
  const usage = { tokens: 0, costUsd: 0 };
  const author = agent.name;
  const agentBoard: AgentBoard = {
    name: board.name,
    async write<V>(key: string, value: V, options: { tags?: TagsInput; expectedVersion?: number } = {}): Promise<Entry<V>> {
      const entry = await board.write(key, value, { ...options, author });
      written.push(key);
      return entry;
    },
    async delete(key: string, options: { expectedVersion?: number } = {}): Promise<boolean> {
      const deleted = await board.delete(key, { ...options, author });
      if (deleted) written.push(key);
      return deleted;
    },
    async get<V>(key: string): Promise<Entry<V> | undefined> {
      read.add(key);
      return board.get<V>(key);
    },
    view: () => recordingView(board.view(), read),
  };
  const ctx: AgentContext = {
    board: agentBoard,
    view: recordingView(view, read),
    agent: agent.name,
    runId: scope.runId,
    step: scope.step,
    signal: scope.signal,
    usage: { add: (u, options) => addUsage(scope.ledger, usage, u, options), left: () => scope.ledger.remaining() },
    log: (message) => void logs.push(String(message)),
    recordCall: (call) => void calls.push(call),
    spawn: scope.spawn,
    requestApproval: scope.requestApproval,
    beforeTurn: scope.beforeTurn,
  };
  const started = performance.now();
  let error: unknown;
  try {
    const result = await agent.run(ctx);
    if (result?.usage) addUsage(scope.ledger, usage, result.usage);
    for (const [key, value] of Object.entries(result?.writes ?? {})) await agentBoard.write(key, value);
  } catch (caught) {
    error = caught;
  }
  const record: FiredRecord = {
    agent: agent.name,
    read: [...read],
    written,
    tokens: usage.tokens,
    costUsd: usage.costUsd,
    ms: Math.round((performance.now() - started) * 100) / 100,
  };
  if (error !== undefined) {
    record.error = describeError(error);
    if (error instanceof VersionConflictError) record.conflict = true;
    else recordError(scope.span, error);
    if (error instanceof BudgetExceededError) record.overBudget = true;
  }
  if (logs.length > 0) record.logs = logs;
  if (calls.length > 0) record.calls = calls;
  return record;
}

/** Charges the agent's ledger (refused whole past a limit), then counts it on the step record. */
function addUsage(ledger: Ledger, total: { tokens: number; costUsd: number }, usage: Usage, options: { spent?: boolean } = {}): void {
  let refusal: unknown;
  try {
    ledger.charge(usage, options);
  } catch (error) {
    if (!options.spent) throw error;
    refusal = error;
  }
  total.tokens += usage.tokens ?? 0;
  total.costUsd += usage.costUsd ?? 0;
  if (refusal) throw refusal;
}

/** A view that notes every key an agent looks at, for the step record. */
function recordingView(view: BoardView, read: Set<string>): BoardView {
  const note = (entries: Entry[]) => {
    for (const e of entries) read.add(e.key);
    return entries;
  };
  return {
    board: view.board,
    seq: view.seq,
    size: view.size,
    read: <V>(key: string) => (read.add(key), view.read<V>(key)),
    has: (key) => (read.add(key), view.has(key)),
    keys: (prefix) => view.keys(prefix),
    readByTag: (tag, predicate) => note(view.readByTag(tag, predicate)),
    readByAuthor: (author) => note(view.readByAuthor(author)),
    entries: () => note(view.entries()),
  };
}

/** Runs `fn` over `items`, at most `limit` at once, keeping the items' order in the results. */
async function mapBounded<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
