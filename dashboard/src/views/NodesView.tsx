/**
 * The swarm: the coordinator and the queue per kind, and every worker with its capabilities,
 * load, running tasks and heartbeat age, with a drain button. Workers change by the nodes
 * stream; the status is read again (at most every 2 s) when they do, and every 5 s.
 */
import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { api, enc, withQuery } from "../api.ts";
import { Badge, ConfirmDialog, Empty, ErrorNote, type ConfirmRequest } from "../components/ui.tsx";
import { age } from "../format.ts";
import { useBatchedMap, useCoalesced, useInterval, useLiveList, useLoad, useNow } from "../hooks.ts";
import { updateParams, type Route } from "../route.ts";
import { parseData } from "../sse.ts";
import { toast } from "../toasts.ts";
import type { NodeInfo, SwarmStatus } from "../types.ts";
import { TaskLink } from "./TasksView.tsx";

function nodeFrom(data: unknown): NodeInfo | undefined {
  if (!data || typeof data !== "object") return undefined;
  const n = ("node" in data && data.node && typeof data.node === "object" ? data.node : data) as Partial<NodeInfo>;
  if (typeof n.id === "string" && typeof n.status === "string" && Array.isArray(n.capabilities)) return n as NodeInfo;
  return undefined;
}

const STATUS_TONE: Record<string, string> = { online: "succeeded", busy: "claimed", draining: "pending", offline: "failed", stopped: "cancelled" };

type Received = NodeInfo & { receivedAt: number };

export function NodesView({ route }: { route: Route }) {
  const board = route.params.get("board") || "default";
  // A worker record has no generation: the newest read wins.
  const nodes = useBatchedMap<Received>(
    (n) => n.id,
    () => true,
  );
  const { replaceAll, upsert } = nodes;
  const stamp = (list: NodeInfo[]): Received[] => {
    const at = Date.now();
    return list.map((n) => ({ ...n, receivedAt: at }));
  };
  const load = useCallback(
    async (signal: AbortSignal) => {
      const answer = await api<{ nodes: NodeInfo[] }>(withQuery("/api/nodes", { board }), { signal });
      replaceAll(stamp(answer.nodes ?? []));
    },
    [board, replaceAll],
  );
  useEffect(() => replaceAll([]), [board, replaceAll]);

  const status = useLoad(`status\u0000${board}`, (signal) => api<SwarmStatus>(withQuery("/api/status", { board }), { signal }));
  const reloadStatus = useCoalesced(status.reload, 2000);
  // The stream sends every node whenever one changed (`nodes` { board, nodes }).
  const { loaded, error: loadError } = useLiveList(board, withQuery("/api/nodes/events", { board }), load, (message) => {
    const data = parseData(message);
    reloadStatus();
    if (data && typeof data === "object" && Array.isArray((data as { nodes?: unknown }).nodes)) {
      replaceAll(stamp((data as { nodes: NodeInfo[] }).nodes));
      return "snapshot";
    }
    if (message.event === "ready") return "ready";
    if (message.event === "error") return "handled";
    const node = nodeFrom(data);
    if (!node) return "reload";
    upsert(stamp([node])[0]!);
    return "handled";
  });
  // Queue depths change with the task board, which this view does not follow: read them now and then.
  useInterval(reloadStatus, 5000);

  const now = useNow(1000);
  const list = useMemo(() => [...nodes.map.values()].sort((a, b) => Number(b.coordinator ?? false) - Number(a.coordinator ?? false) || (a.id < b.id ? -1 : 1)), [nodes.map]);
  const [confirm, setConfirm] = useState<ConfirmRequest>();
  const drain = (node: Received) =>
    setConfirm({
      title: `Drain ${node.id}?`,
      body: <p>The worker finishes the tasks it holds, claims nothing new and stops.</p>,
      confirmLabel: "Drain",
      danger: true,
      action: async () => {
        // The answer is the worker's own account (its running tasks by id); the stream brings the node.
        await api<unknown>(`/api/nodes/${enc(node.id)}/drain`, { method: "POST" });
        upsert({ ...node, status: "draining", receivedAt: Date.now() });
        toast(`${node.id} is draining`);
      },
    });

  // By the server's clock where it says (heartbeatAgeMs), so that this machine's clock does not matter.
  const heartbeatAge = (n: Received) => (n.heartbeatAgeMs !== undefined ? n.heartbeatAgeMs + (now - n.receivedAt) : n.heartbeatAt !== undefined ? now - n.heartbeatAt : undefined);

  return (
    <section class="view view-nodes" data-testid="view-nodes" aria-label="Nodes">
      <form class="toolbar" onSubmit={(e) => e.preventDefault()}>
        <label class="field inline">
          <span>Task board</span>
          <input
            data-testid="nodes-board"
            value={board}
            size={12}
            onChange={(e) => updateParams({ board: e.currentTarget.value.trim() === "default" ? "" : e.currentTarget.value.trim() })}
          />
        </label>
      </form>
      <StatusPanel status={status.data} error={status.error} />
      <h2>Workers</h2>
      <ErrorNote error={loadError} testId="nodes-error" />
      {loaded && list.length === 0 ? (
        <Empty testId="nodes-empty">No workers. Start one with colony worker --agents FILE.</Empty>
      ) : (
        <div class="table-scroll">
          <table class="table" data-testid="nodes-table">
            <thead>
              <tr>
                <th>worker</th>
                <th>status</th>
                <th>capabilities</th>
                <th>load</th>
                <th>running</th>
                <th>host</th>
                <th class="num">heartbeat</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.map((n) => {
                const beat = heartbeatAge(n);
                const load = n.load ?? (n.concurrency ? n.running / n.concurrency : undefined);
                return (
                  <tr key={n.id} data-testid={`node-row-${n.id}`} data-status={n.status}>
                    <td class="mono">
                      {n.id}{" "}
                      {n.coordinator ? (
                        <Badge tone="running" testId={`node-coordinator-${n.id}`}>
                          coordinator
                        </Badge>
                      ) : null}
                    </td>
                    <td>
                      <Badge tone={STATUS_TONE[n.status] ?? "none"} testId={`node-status-${n.id}`}>
                        {n.status}
                      </Badge>
                    </td>
                    <td>
                      {n.capabilities.map((c) => (
                        <span key={c} class="tag">
                          {c}
                        </span>
                      ))}
                    </td>
                    <td>
                      <span class="meter" title={load !== undefined ? `${Math.round(load * 100)}%` : ""}>
                        <span class="meter-fill" style={{ width: `${Math.min(100, Math.round((load ?? 0) * 100))}%` }} />
                      </span>{" "}
                      <span class="small" data-testid={`node-load-${n.id}`}>
                        {n.running}
                        {n.concurrency !== undefined ? `/${n.concurrency}` : ""}
                      </span>
                    </td>
                    <td class="small">
                      {(n.runningTasks ?? []).length === 0
                        ? "–"
                        : (n.runningTasks ?? []).slice(0, 8).map((t) => (
                            <span key={t} class="running-task">
                              <TaskLink id={t} board={board} />
                            </span>
                          ))}
                      {(n.runningTasks ?? []).length > 8 ? <span class="muted"> +{(n.runningTasks ?? []).length - 8}</span> : null}
                    </td>
                    <td class="small mono">{n.host ? `${n.host}${n.pid ? `:${n.pid}` : ""}` : "–"}</td>
                    <td class="num small" data-testid={`node-heartbeat-${n.id}`}>
                      {beat !== undefined ? `${age(beat)} ago` : "–"}
                    </td>
                    <td>
                      <button
                        type="button"
                        class="btn btn-small"
                        data-testid={`node-drain-${n.id}`}
                        disabled={n.status === "draining" || n.status === "offline" || n.status === "stopped"}
                        onClick={() => drain(n)}
                      >
                        Drain
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <ConfirmDialog request={confirm} onDone={() => setConfirm(undefined)} />
    </section>
  );
}

function StatusPanel({ status, error }: { status: SwarmStatus | undefined; error: unknown }) {
  const kinds = Object.keys(status?.queue ?? {}).sort();
  return (
    <div class="status-panel" data-testid="status-panel">
      <ErrorNote error={error} testId="status-error" />
      <div class="row gap wrap">
        <div class="stat">
          <span class="stat-label">coordinator</span>
          <span class="stat-value mono" data-testid="status-coordinator">
            {status ? status.coordinator ?? "none" : "…"}
          </span>
        </div>
        {status?.workers
          ? Object.entries(status.workers)
              .filter(([, n]) => n > 0)
              .map(([s, n]) => (
                <div class="stat" key={s}>
                  <span class="stat-label">{s}</span>
                  <span class="stat-value">{n}</span>
                </div>
              ))
          : null}
        {status?.backend?.kind ? (
          <div class="stat">
            <span class="stat-label">store</span>
            <span class="stat-value small">
              {status.backend.kind} {status.backend.location ?? ""}
            </span>
          </div>
        ) : null}
      </div>
      <h2>Queue</h2>
      {status && kinds.length === 0 ? (
        <p class="muted" data-testid="queue-table">
          empty
        </p>
      ) : (
        <table class="table narrow-table" data-testid="queue-table">
          <thead>
            <tr>
              <th>kind</th>
              <th class="num">pending</th>
              <th class="num">blocked</th>
              <th class="num">running</th>
            </tr>
          </thead>
          <tbody>
            {kinds.map((k) => {
              const q = status!.queue[k]!;
              return (
                <tr key={k} data-testid={`queue-row-${k}`}>
                  <td>{k}</td>
                  <td class="num">{q.pending}</td>
                  <td class="num">{q.blocked}</td>
                  <td class="num">{q.running}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}
