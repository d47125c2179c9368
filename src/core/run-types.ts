/**
 * The shapes of agents, run definitions and run records. Kept apart from the loop so that the
 * storage contract can name them without depending on the loop.
 */
import type { BoardHandle, BoardView, Entry } from "./board.ts";
import type { TagsInput } from "./json.ts";
import type { ModelCallRecord, Usage } from "./records.ts";
import type { AgentRef, Budget, SpawnOptions, SubAgent, SubAgentHandle } from "./subagent-types.ts";

/** What an agent may return: writes for the runtime to make on its behalf, and usage to count. */
export interface AgentResult {
  /** Entries to write, unconditionally, authored by the agent. */
  writes?: Record<string, unknown>;
  usage?: Usage;
}

/** The board as an agent sees it: writes are authored by the agent; reads and writes are recorded. */
export type AgentBoard = {
  readonly name: string;
  write<V>(key: string, value: V, options?: { tags?: TagsInput; expectedVersion?: number }): Promise<Entry<V>>;
  delete(key: string, options?: { expectedVersion?: number }): Promise<boolean>;
  get: BoardHandle["get"];
  view(): BoardView;
};

export interface AgentContext {
  board: AgentBoard;
  /** The step's snapshot (the same one every trigger of this step saw); reads are recorded. */
  view: BoardView;
  agent: string;
  runId: string;
  step: number;
  signal: AbortSignal;
  /** Counts usage against the agent's and the run's budgets; throws `BudgetExceededError`, counting nothing, past one. */
  usage: {
    add(usage: Usage, options?: { spent?: boolean }): void;
    /** What is left of the tightest token and dollar limits over the agent and the run; absent = no limit. */
    left(): { tokens?: number; costUsd?: number };
  };
  log(message: string): void;
  /** Starts a sub-agent on the run's board, under the agent's budget; it is terminated when the run ends. */
  spawn<R = unknown, I = unknown>(agent: AgentRef | SubAgent<I, R>, input?: I, options?: SpawnOptions): Promise<SubAgentHandle<R>>;
  /** Notes a model call on the step's record (model-backed agents do). */
  recordCall(call: ModelCallRecord): void;
  /** Pauses the agent (and its step) until a person approves or denies this tool call from any process. */
  requestApproval(request: { tool: string; args: unknown }): Promise<{ approved: boolean; reason?: string }>;
  /**
   * Awaited by an agent that works in turns within one fire (a model agent, before each model
   * step after its first); `colony run --step` pauses there.
   */
  beforeTurn(turn: number): Promise<void>;
}

export interface Agent {
  name: string;
  /** Fires the agent when true. Without one, the agent fires once (or `maxFires` times). */
  trigger?: (view: BoardView) => boolean;
  run: (ctx: AgentContext) => AgentResult | void | Promise<AgentResult | void>;
  maxFires?: number;
  /** Higher fires first (in sequential runs) or starts first (when concurrency is the bound). */
  priority?: number;
  /** Limits on this agent's usage (and its sub-agents') over the whole run. */
  budget?: Budget;
}

export interface RunDefinition {
  /** A label for listings; defaults to the board's name. */
  name?: string;
  board: string;
  /** Entries written (by author "seed") before the first step. */
  seed?: Record<string, unknown>;
  agents: Agent[];
  /** Stops the run with `goal` as soon as it holds. */
  goal?: (view: BoardView) => boolean;
  /** Default 100. */
  maxSteps?: number;
  /** Fire a step's agents at once (default) or one after another in priority, then list, order. */
  parallel?: boolean;
  /** How many agents of one step run at once; default 16. */
  concurrency?: number;
  /** Steps in a row in which agents fired but the board did not change; default 3. */
  deadlockAfter?: number;
  /** Limits over the whole run (its agents and their sub-agents); crossing one stops it with `budget`. */
  budget?: Budget;
  signal?: AbortSignal;
}
