/**
 * The swarm as `colony nodes`, `colony status` and the HTTP API show it: each worker's status,
 * load and running tasks (counted from the tasks it holds on the board now, not from its last
 * heartbeat), the coordinator, and queue depth per kind.
 */
import type { RejectedMessages } from "../../core/store.ts";
import type { TaskBoard } from "../../core/task-board.ts";
import { isLive } from "../../core/task-engine.ts";
import { attemptOf, type Task, type WorkerInfo } from "../../core/tasks.ts";
import { coordinatorRole } from "./node.ts";

export type NodeStatus = "online" | "busy" | "draining" | "offline" | "stopped";

export interface NodeRow {
  id: string;
  status: NodeStatus;
  capabilities: string[];
  load: number;
  running: number;
  concurrency: number;
  runningTasks: string[];
  host: string;
  pid: number;
  heartbeatAt: number;
  heartbeatAgeMs: number;
  coordinator: boolean;
}

export interface SwarmStatus {
  backend: { kind: string; location: string };
  tasks: string;
  coordinator: string | null;
  queue: Record<string, { pending: number; blocked: number; running: number }>;
  running: { id: string; kind: string; owner: string | undefined; attempt: number; forMs: number }[];
  workers: Record<NodeStatus, number>;
  rejected?: RejectedMessages;
}

/** What the swarm's views need of a colony. */
export interface SwarmSource {
  readonly backend: { kind: string; location: string };
  tasks(name?: string): Promise<TaskBoard>;
  leader(role: string): Promise<string | undefined>;
  rejected(): Promise<RejectedMessages>;
}

/**
 * The ids of the tasks each worker holds, from the board's claimed tasks: the one count of a
 * worker's load that `workers`, `nodes` and `status` share (a registry record's own count is as
 * of its last heartbeat).
 */
export function heldBy(claimed: readonly Task[]): Map<string, string[]> {
  const held = new Map<string, string[]>();
  for (const task of claimed) if (task.owner !== undefined) held.set(task.owner, [...(held.get(task.owner) ?? []), task.id]);
  return held;
}

/** Busy by the tasks it holds on the board now; offline once its heartbeats stopped, whatever it last said. */
function nodeStatus(worker: WorkerInfo, holding: number, now: number): NodeStatus {
  if ((worker.status === "online" || worker.status === "draining") && !isLive(worker, now)) return "offline";
  if (worker.status === "online" && holding >= worker.concurrency) return "busy";
  return worker.status;
}

export async function swarmNodes(colony: SwarmSource, board: string): Promise<{ nodes: NodeRow[]; claimed: Task[]; coordinator: string | undefined }> {
  const tasks = await colony.tasks(board);
  const [workers, claimed, coordinator] = await Promise.all([tasks.workers(), tasks.list({ status: "claimed" }), colony.leader(coordinatorRole(board))]);
  const held = heldBy(claimed);
  const now = Date.now();
  const nodes = workers.map((w): NodeRow => {
    const runningTasks = held.get(w.id) ?? [];
    return {
      id: w.id,
      status: nodeStatus(w, runningTasks.length, now),
      capabilities: w.capabilities,
      load: Math.round((runningTasks.length / w.concurrency) * 100) / 100,
      running: runningTasks.length,
      concurrency: w.concurrency,
      runningTasks,
      host: w.host,
      pid: w.pid,
      heartbeatAt: w.heartbeatAt,
      heartbeatAgeMs: Math.max(0, now - w.heartbeatAt),
      coordinator: coordinator === w.id,
    };
  });
  return { nodes, claimed, coordinator };
}

export async function swarmStatus(colony: SwarmSource, board: string): Promise<SwarmStatus> {
  const tasks = await colony.tasks(board);
  const { nodes, claimed, coordinator } = await swarmNodes(colony, board);
  const [pending, blocked] = await Promise.all([tasks.list({ status: "pending" }), tasks.list({ status: "blocked" })]);
  const queue: SwarmStatus["queue"] = {};
  const slot = (kind: string) => (queue[kind] ??= { pending: 0, blocked: 0, running: 0 });
  for (const t of pending) slot(t.kind).pending++;
  for (const t of blocked) slot(t.kind).blocked++;
  for (const t of claimed) slot(t.kind).running++;
  const workers: Record<NodeStatus, number> = { online: 0, busy: 0, draining: 0, offline: 0, stopped: 0 };
  for (const n of nodes) workers[n.status]++;
  const now = Date.now();
  const running = claimed.map((t) => ({ id: t.id, kind: t.kind, owner: t.owner, attempt: attemptOf(t), forMs: now - t.updatedAt }));
  // Read after the task board was folded: what its log held that Colony did not write.
  const rejected = await colony.rejected();
  return { backend: colony.backend, tasks: board, coordinator: coordinator ?? null, queue, running, workers, ...(rejected.count > 0 && { rejected }) };
}
