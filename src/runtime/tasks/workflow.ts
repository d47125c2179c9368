/**
 * decompose → parallel → synthesize on the task board. A workflow run is a root task held by the
 * running process; its subtasks hang below it, so cancelling the root cancels them all. Workers
 * with the capability take subtasks (least loaded first); kinds no live worker offers run here,
 * on a local worker with the workflow's own agents, as many at once as `concurrency` allows.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { ConfigError, InvalidInputError, describeError } from "../../core/errors.ts";
import { checkBudget } from "../../core/governance.ts";
import type { AgentRef, AnySubAgent, Budget, SubAgent } from "../../core/subagent-types.ts";
import { BudgetExceededError } from "../../core/subagent-types.ts";
import type { TaskBoard } from "../../core/task-board.ts";
import { FINAL_STATUSES, type Task, type TaskStatus } from "../../core/tasks.ts";
import { longTimeout } from "../../core/timers.ts";
import type { AgentsByKind, Spawn, TaskWorker, WorkerOptions } from "./worker.ts";

/** One piece of work a decomposition asks for; `dependsOn` names other subtasks' ids. */
export interface Subtask {
  id: string;
  kind: string;
  input?: unknown;
  dependsOn?: string[];
  priority?: number;
  capability?: string;
  maxAttempts?: number;
  timeoutMs?: number;
}

/** What `synthesize` receives once every subtask has ended. */
export interface Synthesis<I = unknown> {
  input: I;
  /** Results of the subtasks that succeeded, by subtask id. */
  results: Record<string, unknown>;
  /** The ones that did not, by subtask id. */
  failures: Record<string, { status: TaskStatus; reason: string }>;
}

type Step<In, Out> = ((input: In) => Out | Promise<Out>) | SubAgent<In, Out> | AgentRef;

export interface WorkflowDefinition<I = unknown, R = unknown> {
  name: string;
  /**
   * The input's schema (zod): `run` checks the input against it before anything runs, and bad
   * input is an `InvalidInputError` naming the field; decompose gets what it parsed.
   */
  input?: z.ZodType<I>;
  decompose: Step<I, Subtask[]>;
  /** Agents for the subtasks' kinds, run here when no live worker offers the kind. */
  execute: AgentsByKind;
  synthesize: Step<Synthesis<I>, R>;
  /** Subtasks run here at once; default 4. */
  concurrency?: number;
  /** `wallMs` bounds the whole run (then it is cancelled); the rest bounds each agent run here. */
  budget?: Budget;
  /** The task board; default "default". */
  tasks?: string;
  /** Attempts per subtask; default 3. */
  maxAttempts?: number;
}

export interface WorkflowProgress {
  total: number;
  counts: Record<TaskStatus, number>;
  /** The change that moved the count, if any. */
  last?: { id: string; status: TaskStatus; owner: string | undefined };
}

export interface WorkflowResult<R = unknown> {
  runId: string;
  result: R;
  /** Every subtask as it ended. */
  tasks: Task[];
  failures: Synthesis["failures"];
  ms: number;
}

export interface Workflow<I = unknown, R = unknown> {
  readonly name: string;
  run(input: I, options?: { signal?: AbortSignal; onProgress?: (progress: WorkflowProgress) => void }): Promise<WorkflowResult<R>>;
}

export interface WorkflowDeps {
  tasks: (name?: string) => Promise<TaskBoard>;
  spawn: Spawn;
  startWorker: (options: WorkerOptions & { tasks?: string }) => Promise<TaskWorker>;
}

const SUBTASK_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
/**
 * What `decompose` must return, checked on every run: give it to a model-backed decomposer as its
 * `output` so that the model is asked for exactly this shape.
 */
export const subtasksSchema = z.array(
  z.looseObject({
    id: z.string().regex(SUBTASK_ID, { message: "id is 1 to 64 letters, digits or . _ : -" }),
    kind: z.string().min(1, { message: "kind must not be empty" }),
    input: z.unknown().optional(),
    dependsOn: z.array(z.string()).optional(),
  }),
  { message: "decompose must return an array of { id, kind, input?, dependsOn? }" },
);

const isFunction = (step: unknown): step is (input: unknown) => unknown => typeof step === "function";
const isAgent = (step: unknown): step is AnySubAgent | AgentRef =>
  typeof step === "object" && step !== null && ("module" in step || "run" in step || "turn" in step);

export function checkWorkflow(definition: WorkflowDefinition): void {
  if (typeof definition !== "object" || definition === null) throw new ConfigError("a workflow is an object { name, decompose, execute, synthesize }");
  if (typeof definition.name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(definition.name)) {
    throw new ConfigError(`workflow name is 1 to 64 letters, digits, '-' or '_', got ${JSON.stringify(definition.name)}`);
  }
  for (const step of ["decompose", "synthesize"] as const) {
    if (!isFunction(definition[step]) && !isAgent(definition[step])) {
      throw new ConfigError(`workflow ${definition.name}: ${step} is a function, an agent ({ name, run }) or a reference ({ module, export })`);
    }
  }
  if (typeof definition.execute !== "object" || definition.execute === null || Object.keys(definition.execute).length === 0) {
    throw new ConfigError(`workflow ${definition.name}: execute is an object of subtask kind → agent`);
  }
  checkBudget(definition.budget, `workflow ${definition.name}`);
  if (definition.input !== undefined && !(definition.input instanceof z.ZodType)) {
    throw new ConfigError(`workflow ${definition.name}: input is a zod schema (z.object({ … })) of what run() takes`);
  }
}

/** The input as its schema parses it; else the first issue, as one line naming the field. */
function parseInput<I>(name: string, schema: z.ZodType<I>, input: unknown): I {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
  throw new InvalidInputError(`workflow ${name}`, path, issue.message);
}

/** Runs a step: a function directly, an agent as a sub-agent of its own. */
async function perform<In, Out>(step: Step<In, Out>, input: In, spawn: Spawn, name: string, budget: Budget | undefined): Promise<Out> {
  if (isFunction(step)) return (await step(input)) as Out;
  const handle = await spawn(step, input, { name, isolation: "module" in step ? "thread" : "inline", ...(budget && { budget }) });
  return (await handle.result) as Out;
}

export function createWorkflow<I, R>(definition: WorkflowDefinition<I, R>, deps: WorkflowDeps): Workflow<I, R> {
  checkWorkflow(definition as WorkflowDefinition);
  const { wallMs, ...agentBudget } = definition.budget ?? {};
  const perAgent = Object.keys(agentBudget).length > 0 ? agentBudget : undefined;
  return {
    name: definition.name,
    async run(input, options = {}) {
      const started = Date.now();
      const runId = `${definition.name}-${randomUUID().slice(0, 8)}`;
      const tasks = await deps.tasks(definition.tasks);
      const stop = new AbortController();
      const wall = new AbortController();
      const abort = AbortSignal.any([stop.signal, wall.signal, ...(options.signal ? [options.signal] : [])]);

      if (definition.input) input = parseInput(definition.name, definition.input, input);
      const subtasks = await perform(definition.decompose, input, deps.spawn, `${definition.name}.decompose`, perAgent);
      const parsed = subtasksSchema.safeParse(subtasks);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new ConfigError(`workflow ${definition.name}: decompose returned a bad plan at ${issue.path.join(".") || "the top"}: ${issue.message}`);
      }
      // The root task is this run: claimed by this process alone (no one else offers its capability).
      const capability = `workflow:${runId}`;
      await tasks.submit({ id: runId, kind: `workflow.${definition.name}`, capability, input, maxAttempts: 1 });
      const root = (await tasks.claim({ worker: runId, capabilities: [capability], leaseMs: 30_000 }))!;
      const keepAlive = setInterval(() => void tasks.heartbeat(root.id, { generation: root.generation }).catch(() => {}), 10_000);
      const local = await deps.startWorker({
        tasks: definition.tasks,
        agents: definition.execute,
        concurrency: definition.concurrency ?? 4,
        local: true,
        isolation: "thread",
        id: `local-${runId}`,
      });
      // Counted from the start; a long timer, as AbortSignal.timeout fires at once past 2^31 ms.
      const cancelWall = wallMs ? longTimeout(() => wall.abort(), wallMs - (Date.now() - started), { unref: true }) : undefined;
      try {
        const since = await tasks.head();
        const items = (subtasks as Subtask[]).map((s) => ({
          id: `${runId}.${s.id}`,
          kind: s.kind,
          input: s.input,
          dependsOn: (s.dependsOn ?? []).map((d) => `${runId}.${d}`),
          parentId: runId,
          priority: s.priority,
          capability: s.capability,
          maxAttempts: s.maxAttempts ?? definition.maxAttempts,
          timeoutMs: s.timeoutMs,
        }));
        const submitted = await tasks.submitAll(items, { fallbackWorker: local.id });
        const ended = await waitForAll(tasks, submitted, since, abort, options.onProgress);
        if (abort.aborted) {
          await tasks.cancel(runId);
          if (wallMs && wall.signal.aborted && !stop.signal.aborted && !options.signal?.aborted) throw new BudgetExceededError("wallMs", wallMs, Date.now() - started, `workflow ${definition.name}`);
          abort.throwIfAborted();
        }
        const results: Record<string, unknown> = {};
        const failures: Synthesis["failures"] = {};
        for (const task of ended) {
          const id = task.id.slice(runId.length + 1);
          if (task.status === "succeeded") results[id] = task.result;
          else failures[id] = { status: task.status, reason: task.reason ?? task.error ?? task.status };
        }
        let result: R;
        try {
          result = await perform(definition.synthesize, { input, results, failures }, deps.spawn, `${definition.name}.synthesize`, perAgent);
        } catch (error) {
          await tasks.fail(root.id, `synthesize: ${describeError(error)}`, { generation: root.generation, retryable: false }).catch(() => {});
          throw error;
        }
        await tasks.complete(root.id, result ?? null, { generation: root.generation });
        return { runId, result, tasks: ended, failures, ms: Date.now() - started };
      } catch (error) {
        await tasks.cancel(runId).catch(() => {});
        throw error;
      } finally {
        clearInterval(keepAlive);
        cancelWall?.();
        stop.abort();
        // Nothing runs here any more unless the run was cut short; then its agents must stop too.
        await local.stop();
      }
    },
  };
}

/** Follows the board until every subtask has ended (or `abort` fires), reporting progress on each change. */
async function waitForAll(
  tasks: TaskBoard,
  submitted: Task[],
  since: number,
  abort: AbortSignal,
  onProgress: ((progress: WorkflowProgress) => void) | undefined,
): Promise<Task[]> {
  const latest = new Map(submitted.map((t) => [t.id, t]));
  const report = (last?: Task) => {
    if (!onProgress) return;
    const counts = Object.fromEntries(["pending", "blocked", "claimed", "succeeded", "failed", "dead", "cancelled"].map((s) => [s, 0])) as Record<TaskStatus, number>;
    for (const task of latest.values()) counts[task.status]++;
    onProgress({ total: latest.size, counts, ...(last && { last: { id: last.id, status: last.status, owner: last.owner } }) });
  };
  const done = () => [...latest.values()].every((t) => FINAL_STATUSES.has(t.status));
  report();
  if (done()) return [...latest.values()];
  for await (const event of tasks.watch({ since, signal: abort })) {
    if (!latest.has(event.task.id)) continue;
    latest.set(event.task.id, event.task);
    report(event.task);
    if (done()) break;
  }
  return [...latest.values()];
}
