/**
 * The records the HTTP API sends, as the dashboard reads them. They mirror src/core (board.ts,
 * tasks.ts, records.ts, agent-usage.ts, approvals.ts) rather than import it: the browser build
 * must not pull Node modules in. Fields the dashboard can live without are optional, so that a
 * server a little older or newer still renders.
 */
export type Tags = Record<string, unknown>;

export interface Entry {
  key: string;
  value: unknown;
  author: string;
  version: number;
  createdAt: number;
  updatedAt: number;
  tags: Tags;
}

export interface LogRecord {
  seq: number;
  op: "write" | "delete";
  key: string;
  version: number;
  author: string;
  at: number;
  value: unknown;
  tags: Tags;
}

export interface BoardSummary {
  name: string;
  entries: number;
  seq: number;
}

export const TASK_STATUSES = ["pending", "blocked", "claimed", "succeeded", "failed", "dead", "cancelled"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
/** The kanban's order: what waits, what runs, how it ended. */
export const KANBAN_ORDER: readonly TaskStatus[] = ["blocked", "pending", "claimed", "succeeded", "failed", "dead", "cancelled"];
export const FINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(["succeeded", "failed", "dead", "cancelled"]);

export interface TaskFailure {
  attempt: number;
  worker?: string;
  at: number;
  kind: "error" | "lease";
  error: string;
}

export interface Task {
  id: string;
  kind: string;
  capability: string;
  input: unknown;
  status: TaskStatus;
  generation: number;
  dependsOn: string[];
  parentId?: string;
  owner?: string;
  leaseUntil?: number;
  attempts: number;
  maxAttempts: number;
  priority: number;
  result?: unknown;
  error?: string;
  reason?: string;
  failures: TaskFailure[];
  route?: { mode: string; worker?: string };
  assignee?: string;
  runAfter?: number;
  timeoutMs?: number;
  idempotencyKey?: string;
  createdAt: number;
  updatedAt: number;
}

/**
 * The attempt a task is on, as src/core/tasks.ts `attemptOf` numbers it for every surface: a
 * claimed or succeeded task is on `attempts + 1` (`attempts` counts those used up); a pending,
 * failed or dead one has made `attempts`.
 */
export function attemptOf(task: Pick<Task, "status" | "attempts">): number {
  return task.status === "claimed" || task.status === "succeeded" ? task.attempts + 1 : task.attempts;
}

export interface TaskEvent {
  seq: number;
  at: number;
  type: string;
  task: Task;
}

export type AgentState = "created" | "running" | "waiting" | "awaiting_approval" | "succeeded" | "failed" | "terminated";
export const AGENT_STATES: readonly AgentState[] = ["created", "running", "waiting", "awaiting_approval", "succeeded", "failed", "terminated"];
export const LIVE_AGENT_STATES: ReadonlySet<string> = new Set(["created", "running", "waiting", "awaiting_approval"]);

export interface AgentRecord {
  id: string;
  name: string;
  parentId?: string;
  depth: number;
  state: AgentState;
  generation: number;
  isolation: string;
  /** Not in the registry record of src/core/records.ts today; shown when the server adds it. */
  delivery?: string;
  pid?: number;
  ownerPid?: number;
  ownerHost?: string;
  startedAt: number;
  endedAt?: number;
  /** Tokens and cost count the agent and its descendants; turns are its own. */
  usage: { tokens: number; costUsd: number; turns: number };
  reason?: string;
  error?: string;
}

export interface UsageFigures {
  tokens: number;
  costUsd: number;
  turns: number;
}

export interface UsageNode {
  id: string;
  name: string;
  state: AgentState;
  own: UsageFigures;
  total: UsageFigures;
  children: UsageNode[];
  record?: AgentRecord;
}

export interface ModelCallRecord {
  model: string;
  turn: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number | null;
  ms: number;
  retries: number;
  finishReason: string;
  toolCalls?: { name: string; args: string; error?: string }[];
}

export interface FiredRecord {
  agent: string;
  read: string[];
  written: string[];
  tokens: number;
  costUsd: number;
  ms: number;
  error?: string;
  conflict?: boolean;
  overBudget?: boolean;
  logs?: string[];
  calls?: ModelCallRecord[];
}

export interface StepRecord {
  index: number;
  startedAt: number;
  seq: number;
  fired: FiredRecord[];
}

export interface RunInfo {
  runId: string;
  name: string;
  board: string;
  status: "running" | "finished";
  stopReason?: string;
  error?: string;
  startedAt: number;
  endedAt?: number;
  steps: number;
  totalTokens: number;
  totalCostUsd: number;
  durationMs?: number;
}

export type ApprovalStatus = "pending" | "approved" | "denied" | "abandoned";

export interface ApprovalRecord {
  id: string;
  status: ApprovalStatus;
  tool: string;
  args: unknown;
  agentId: string;
  agentName: string;
  path: string[];
  rootId: string;
  requestedAt: number;
  decidedAt?: number;
  decidedBy?: string;
  reason?: string;
}

/** A worker as `colony nodes` shows it (src/cli/commands/swarm.ts, NodeRow). */
export interface NodeInfo {
  id: string;
  status: string;
  capabilities: string[];
  load?: number;
  running: number;
  concurrency?: number;
  runningTasks?: string[];
  host?: string;
  pid?: number;
  heartbeatAt?: number;
  /** Milliseconds since the last heartbeat, when the server computes it. */
  heartbeatAgeMs?: number;
  coordinator?: boolean;
}

/** `colony status --json`. */
export interface SwarmStatus {
  tasks?: string;
  coordinator: string | null;
  queue: Record<string, { pending: number; blocked: number; running: number }>;
  running?: { id: string; kind: string; owner?: string; attempt: number; forMs: number }[];
  workers?: Record<string, number>;
  backend?: { kind?: string; location?: string };
}
