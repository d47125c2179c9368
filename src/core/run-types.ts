/**
 * The shapes of agents, run definitions and run records. Kept apart from the loop so that the
 * storage contract can name them without depending on the loop.
 */
import type { BoardHandle, BoardView, Entry } from "./board.ts";

export type StopReason = "goal" | "quiescence" | "deadlock" | "max_steps" | "aborted" | "error";

export interface Usage {
  tokens?: number;
  costUsd?: number;
}

/** What an agent may return: writes for the runtime to make on its behalf, and usage to count. */
export interface AgentResult {
  /** Entries to write, unconditionally, authored by the agent. */
  writes?: Record<string, unknown>;
  usage?: Usage;
}

/** The board as an agent sees it: writes are authored by the agent; reads and writes are recorded. */
export type AgentBoard = {
  readonly name: string;
  write<V>(key: string, value: V, options?: { tags?: string[]; expectedVersion?: number }): Promise<Entry<V>>;
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
  usage: { add(usage: Usage): void };
  log(message: string): void;
}

export interface Agent {
  name: string;
  /** Fires the agent when true. Without one, the agent fires once (or `maxFires` times). */
  trigger?: (view: BoardView) => boolean;
  run: (ctx: AgentContext) => AgentResult | void | Promise<AgentResult | void>;
  maxFires?: number;
  /** Higher fires first (in sequential runs) or starts first (when concurrency is the bound). */
  priority?: number;
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
  signal?: AbortSignal;
}

export interface FiredRecord {
  agent: string;
  /** Keys read through the context (view or board), in first-read order. */
  read: string[];
  /** Keys written or deleted through the context, in order. */
  written: string[];
  tokens: number;
  costUsd: number;
  ms: number;
  error?: string;
  /** Set when the error was a compare-and-set conflict; the agent may retry on a later step. */
  conflict?: boolean;
  logs?: string[];
}

export interface StepRecord {
  index: number;
  startedAt: number;
  /** The board's log position after the step. */
  seq: number;
  fired: FiredRecord[];
}

export interface RunInfo {
  runId: string;
  name: string;
  board: string;
  status: "running" | "finished";
  stopReason?: StopReason;
  /** Why the run stopped with `error`. */
  error?: string;
  startedAt: number;
  endedAt?: number;
  steps: number;
  totalTokens: number;
  totalCostUsd: number;
  durationMs?: number;
}

export interface RunResult {
  runId: string;
  board: string;
  stopReason: StopReason;
  error?: string;
  steps: StepRecord[];
  totalTokens: number;
  totalCostUsd: number;
  durationMs: number;
}
