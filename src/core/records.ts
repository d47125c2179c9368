/**
 * The records backends store: what a run leaves behind (its record and its steps'), and the
 * registry rows of sub-agents. Plain data, so this module depends on nothing.
 */
export interface Usage {
  tokens?: number;
  costUsd?: number;
}

/** How a sub-agent's results reach its parent (see `SpawnOptions.delivery`). */
export type DeliveryPolicy = "streaming" | "immediate" | "deferred" | "on_demand";

export type StopReason = "goal" | "quiescence" | "deadlock" | "max_steps" | "budget" | "aborted" | "error";

/** One model call, as events and records show it. */
export interface ModelCallRecord {
  agent: string;
  model: string;
  turn: number;
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  /** USD; `null` when the model's price is unknown. */
  costUsd: number | null;
  ms: number;
  retries: number;
  finishReason: string;
  toolCalls: { name: string; args: string; error?: string }[];
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
  /** Set when the agent was refused for crossing a budget; the run stops with `budget`. */
  overBudget?: boolean;
  logs?: string[];
  /** The model calls the agent made in this fire (model-backed agents). */
  calls?: ModelCallRecord[];
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

export type Isolation = "inline" | "thread" | "process";
/** `awaiting_approval`: paused until a person approves or denies a tool call (`colony approvals`). */
export type AgentState = "created" | "running" | "waiting" | "awaiting_approval" | "succeeded" | "failed" | "terminated";
export type FailureReason = "error" | "crash" | "timeout" | "terminated" | "budget";


/** A row of the agents registry, as `colony.agents.list()` and `colony agents` show it. */
export interface AgentRecord {
  id: string;
  name: string;
  parentId: string | undefined;
  depth: number;
  state: AgentState;
  generation: number;
  isolation: Isolation;
  /** How its results reach its parent; absent on records written before it was kept. */
  delivery?: DeliveryPolicy;
  pid: number | undefined;
  /** The process that owns (started) the agent, and its machine: pids repeat across machines. */
  ownerPid: number;
  /** Absent on records written before it was kept, which were all of one machine. */
  ownerHost?: string;
  startedAt: number;
  endedAt: number | undefined;
  usage: { tokens: number; costUsd: number; turns: number };
  reason: FailureReason | undefined;
  error: string | undefined;
}

/**
 * How much of its past the agent registry keeps. Ended agents (succeeded, failed, terminated) go
 * once they ended longer ago than `maxAgeMs`, or when more than `maxEnded` have ended (the oldest
 * first), each with its report. An ended agent whose parent or a descendant is still live stays
 * until they end, so that a live agent's tree shows whole.
 */
export interface AgentRetention {
  maxAgeMs: number;
  maxEnded: number;
}
