/**
 * Sub-agents: the shapes of a spawn, its lifecycle, its events and its definition. Pure data
 * and rules; the runtime (src/runtime/agents) carries them out.
 */
import type { Entry } from "./board.ts";
import { ColonyError } from "./errors.ts";
import type { TagsInput } from "./json.ts";
import type { SubmitRequest, Task } from "./tasks.ts";
import type { ModelStepRequest, ModelStepResult } from "./model-steps.ts";
import type { AgentState, DeliveryPolicy, FailureReason, Isolation, Usage } from "./records.ts";

export type { AgentRecord, AgentState, DeliveryPolicy, FailureReason, Isolation } from "./records.ts";

/** Which lifecycle moves are allowed; anything else is a `TransitionError`. */
const TRANSITIONS: Record<AgentState, readonly AgentState[]> = {
  created: ["running", "failed", "terminated"],
  running: ["waiting", "awaiting_approval", "succeeded", "failed", "terminated"],
  waiting: ["running", "succeeded", "failed", "terminated"],
  awaiting_approval: ["running", "failed", "terminated"],
  succeeded: [],
  failed: [],
  terminated: [],
};

export function canTransition(from: AgentState, to: AgentState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isFinal(state: AgentState): boolean {
  return TRANSITIONS[state].length === 0;
}

/** Limits over a spawn tree; every figure counts the node and all its descendants. */
export interface Budget {
  tokens?: number;
  costUsd?: number;
  /** Loop steps (for runs). */
  steps?: number;
  /** Agent turns. */
  turns?: number;
  /** Wall time from the node's start. */
  wallMs?: number;
  /** How many levels of spawns may hang below the node. */
  depth?: number;
  /** How many spawns may happen below the node, all levels together. */
  children?: number;
  /** Once at least 4 children have ended, the share of them that failed past which spawns are refused. */
  errorRate?: number;
}

export interface Permissions {
  /** Tools the agent may use; undefined = all its parent may use. */
  tools?: string[];
  /** Key prefixes the agent may write; undefined = all its parent may write. */
  writePrefixes?: string[];
  /**
   * Boards the agent and its descendants may be given; default its parent's. An agent spawned
   * with no parent agent may touch only its own board, unless its spawn names more.
   */
  boards?: string[];
  /**
   * Names of the environment variables a thread or process child gets (the values are this
   * process's); default its parent's. An agent spawned with no parent agent gets `DEFAULT_ENV`.
   */
  env?: string[];
}

/** Environment variables a thread or process child gets when nothing above it names others. */
export const DEFAULT_ENV: readonly string[] = ["PATH", "HOME", "LANG", "TZ", "TMPDIR", "NODE_ENV"];

/** A definition that a thread or process loads by itself: a module and the export to take. */
export interface AgentRef {
  /**
   * The module: `new URL("./agents.ts", import.meta.url)` (relative to the calling file), a path
   * (a relative one from the spawning process's current directory) or a package name.
   */
  module: string | URL;
  /** Default: the module's default export. */
  export?: string;
}

/** A message steered into an agent's inbox, or a child's outcome delivered there. */
export type InboxMessage =
  | { type: "signal"; from: string; message: unknown }
  | { type: "subagent.event"; childId: string; event: SubAgentEvent }
  | { type: "subagent.completed"; childId: string; name: string; result: unknown }
  | { type: "subagent.failed"; childId: string; name: string; reason: FailureReason; error: string };

/** What a handle's `events` yields. */
export type SubAgentEvent =
  | { type: "state"; state: AgentState; at: number }
  | { type: "emit"; name: string; data: unknown; at: number }
  | { type: "log"; message: string; at: number }
  | { type: "usage"; tokens: number; costUsd: number; at: number }
  | { type: "turn"; turn: number; at: number }
  /** A tool call of this agent, or of a descendant (`agentId`), waits for a person's decision. */
  | { type: "approval"; approvalId: string; agentId: string; path: string[]; tool: string; args: unknown; at: number }
  | { type: "subagent.completed"; result: unknown; at: number }
  | { type: "subagent.failed"; reason: FailureReason; error: string; at: number };

/** The board as a sub-agent sees it: writes are authored by the agent and checked against its prefixes. */
export interface SubAgentBoard {
  readonly name: string;
  write<V>(key: string, value: V, options?: { tags?: TagsInput; expectedVersion?: number }): Promise<Entry<V>>;
  delete(key: string, options?: { expectedVersion?: number }): Promise<boolean>;
  get<V = unknown>(key: string): Promise<Entry<V> | undefined>;
}

export interface SpawnOptions {
  isolation?: Isolation;
  delivery?: DeliveryPolicy;
  /** Ends the child with `subagent.failed` reason `timeout`. */
  timeoutMs?: number;
  budget?: Budget;
  permissions?: Permissions;
  name?: string;
  /** For `thread`: V8 heap limits of the worker. */
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number; stackSizeMb?: number };
  /**
   * For `thread` and `process`: the names of the environment variables it gets, no others; the
   * same as `permissions.env`, and like it only a narrowing of its parent's (default: its parent's;
   * at the top, PATH, HOME, LANG, TZ, TMPDIR and NODE_ENV).
   */
  env?: string[];
  /** The board the child reads and writes; default the parent's. It must be among its `permissions.boards`. */
  board?: string;
}

/** One child, as a parent holds it. */
export interface SubAgentHandle<R = unknown> {
  readonly id: string;
  readonly parentId: string | undefined;
  readonly name: string;
  readonly state: AgentState;
  /** The child's result, or a `SubAgentError` saying why it has none. */
  readonly result: Promise<R>;
  /** Every event of the child, from its creation to its end. */
  readonly events: AsyncIterable<SubAgentEvent>;
  /** Steers a message into the child's inbox. */
  signal(message: unknown): Promise<void>;
  terminate(options?: { graceMs?: number }): Promise<void>;
}

export interface SubAgentContext<I = unknown> {
  readonly id: string;
  readonly name: string;
  readonly parentId: string | undefined;
  readonly depth: number;
  readonly input: I;
  /** Aborts when the agent is asked to stop (terminate, timeout, budget); finish quickly then. */
  readonly signal: AbortSignal;
  readonly board: SubAgentBoard | undefined;
  readonly permissions: Permissions;
  /** Messages that reached this agent: steer signals and children's deliveries. */
  readonly inbox: InboxMessage[];
  /** Takes everything out of the inbox. */
  drain(): InboxMessage[];
  /** Which turn this is, from 1 (always 1 for `run`). */
  readonly turn: number;
  spawn<R = unknown, I = unknown>(agent: AgentRef | SubAgent<I, R>, input?: I, options?: SpawnOptions): Promise<SubAgentHandle<R>>;
  emit(name: string, data?: unknown): void;
  usage: {
    /**
     * Counts usage against the agent's budget and every ancestor's; throws `BudgetExceededError`
     * past one, counting nothing, or, for usage already `spent` (a model call that was made),
     * counting it all the same.
     */
    add(usage: Usage, options?: { spent?: boolean }): void;
    /** What is left of the tightest token and dollar limits over the agent, as this agent knows it; absent = no limit. */
    left(): { tokens?: number; costUsd?: number };
  };
  log(message: string): void;
  /** Results of `on_demand` children, kept in the backend. */
  reports: { get(childId: string): Promise<unknown> };
  /** Throws `PermissionError` unless the agent may use this tool. */
  useTool(tool: string): void;
  /**
   * Pauses the agent (`awaiting_approval`, recorded in the backend) until a person approves or
   * denies this tool call from any process (`colony approve <id>`); resolves with the decision.
   */
  requestApproval(request: { tool: string; args: unknown }): Promise<{ approved: boolean; reason?: string }>;
  /** The colony's task boards (default "default"): submit work for workers, wait for its end. */
  tasks: {
    submit<T = unknown>(request: SubmitRequest<T> & { id?: string }, options?: { board?: string }): Promise<Task<T>>;
    /** Resolves once the task is final (succeeded, dead or cancelled); gives up when the agent is stopped. */
    wait(id: string, options?: { board?: string }): Promise<Task>;
  };
  /**
   * In a thread or process: the process that owns the agent calls models for it, so the agent's
   * host loads no model SDK and holds no provider key (model agents use it; see src/models/serve.ts).
   * `unavailable` when that process does not know the model's provider. Absent inline.
   */
  readonly models?: { step(request: ModelStepRequest): Promise<ModelStepResult | { unavailable: string }> };
}

/** Any sub-agent, whatever its input and result types: what the runtime carries around. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnySubAgent = SubAgent<any, any>;

export type TurnResult<R = unknown> = { action: "continue" } | { action: "done"; result?: R };

/** An agent that runs as a sub-agent: one shot (`run`) or turn by turn (`turn`). */
export interface SubAgent<I = unknown, R = unknown> {
  name: string;
  run?: (ctx: SubAgentContext<I>) => R | Promise<R>;
  turn?: (ctx: SubAgentContext<I>) => TurnResult<R> | Promise<TurnResult<R>>;
  delivery?: DeliveryPolicy;
  budget?: Budget;
  tools?: string[];
}

/** The child ended without a result. */
export class SubAgentError extends ColonyError {
  readonly agentId: string;
  readonly reason: FailureReason;

  constructor(agentId: string, name: string, reason: FailureReason, detail: string, options?: { cause?: unknown }) {
    super(`SUBAGENT_${reason.toUpperCase()}`, `sub-agent ${name} (${agentId}) ${reason === "error" ? "failed" : reason}: ${detail}`, options);
    this.agentId = agentId;
    this.reason = reason;
  }
}

/** A lifecycle move from a state or generation that is no longer current. */
export class TransitionError extends ColonyError {
  readonly agentId: string;

  constructor(agentId: string, detail: string) {
    super("STALE_TRANSITION", `agent ${agentId}: ${detail}`);
    this.agentId = agentId;
  }
}

/** A limit would be crossed; the spawn or usage was refused and nothing was counted. */
export class BudgetExceededError extends ColonyError {
  readonly limit: keyof Budget;
  readonly limitValue: number;
  readonly wouldBe: number;

  constructor(limit: keyof Budget, limitValue: number, wouldBe: number, holder: string) {
    super("BUDGET_EXCEEDED", `budget of ${holder}: ${limit} would reach ${wouldBe}, over its limit of ${limitValue}`);
    this.limit = limit;
    this.limitValue = limitValue;
    this.wouldBe = wouldBe;
  }
}

/** An agent tried what its permissions do not allow; nothing was done. */
export class PermissionError extends ColonyError {
  constructor(message: string) {
    super("PERMISSION", message);
  }
}
