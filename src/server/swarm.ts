/**
 * The swarm as `colony nodes` and `colony status` show it: each worker's status, load and running
 * tasks (counted from the tasks it holds on the board now, not from its last heartbeat), the
 * coordinator, and queue depth per kind.
 */
import type { z } from "@hono/zod-openapi";
import { isLive } from "../core/task-engine.ts";
import { attemptOf, type Task, type WorkerInfo } from "../core/tasks.ts";
import { coordinatorRole } from "../runtime/tasks/node.ts";
import type { nodeSchema, nodeStatusSchema, statusSchema } from "./schemas.ts";
import type { ServedColony } from "./types.ts";

type NodeRow = z.infer<typeof nodeSchema>;
type NodeStatus = z.infer<typeof nodeStatusSchema>;

/** Busy by the tasks it holds now; offline once its heartbeats stopped, whatever it last said. */
function nodeStatus(worker: WorkerInfo, holding: number, now: number): NodeStatus {
  if ((worker.status === "online" || worker.status === "draining") && !isLive(worker, now)) return "offline";
  if (worker.status === "online" && holding >= worker.concurrency) return "busy";
  return worker.status;
}

export async function swarmNodes(colony: ServedColony, board: string): Promise<{ nodes: NodeRow[]; claimed: Task[]; coordinator: string | undefined }> {
  const tasks = await colony.tasks(board);
  const [workers, claimed, coordinator] = await Promise.all([tasks.workers(), tasks.list({ status: "claimed" }), colony.leader(coordinatorRole(board))]);
  const held = Map.groupBy(claimed.filter((t) => t.owner !== undefined), (t) => t.owner!);
  const now = Date.now();
  const nodes = workers.map((w): NodeRow => {
    const runningTasks = (held.get(w.id) ?? []).map((t) => t.id);
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

export async function swarmStatus(colony: ServedColony, board: string): Promise<z.infer<typeof statusSchema>> {
  const tasks = await colony.tasks(board);
  const { nodes, claimed, coordinator } = await swarmNodes(colony, board);
  const [pending, blocked] = await Promise.all([tasks.list({ status: "pending" }), tasks.list({ status: "blocked" })]);
  const queue: Record<string, { pending: number; blocked: number; running: number }> = {};
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
