/**
 * The task board as a live kanban: a column per status, each a virtual list, filtered by kind,
 * capability and id; a task's detail (input, result, failures, events, its dependency graph)
 * beside it. Changes come from the board's event stream; the list is loaded again whenever an
 * event does not say which task it changed, and after the stream broke.
 */
import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import type { TargetedKeyboardEvent } from "preact";
import { api, enc, errorMessage, withQuery } from "../api.ts";
import { DagGraph, type GraphEdge, type GraphNode } from "../components/DagGraph.tsx";
import { Badge, ConfirmDialog, ErrorNote, Json, type ConfirmRequest } from "../components/ui.tsx";
import { VirtualList } from "../components/VirtualList.tsx";
import { age, duration, time } from "../format.ts";
import { useBatchedMap, useLiveList, useLoad, useNow } from "../hooks.ts";
import { formatHash, navigate, updateParams, type Route } from "../route.ts";
import { parseData } from "../sse.ts";
import { toast } from "../toasts.ts";
import { FINAL_STATUSES, KANBAN_ORDER, TASK_STATUSES, attemptOf, type Task, type TaskEvent, type TaskStatus } from "../types.ts";

/** How many tasks the board view asks for: the kanban stays quick well past this. */
const TASK_LIMIT = 10_000;
const CARD_HEIGHT = 96;

const isStatus = (value: unknown): value is TaskStatus => (TASK_STATUSES as readonly unknown[]).includes(value);

/** The task an event carries: a TaskEvent's, or the event itself when it is a task. */
export function taskFrom(data: unknown): Task | undefined {
  if (!data || typeof data !== "object") return undefined;
  const candidate = "task" in data && data.task && typeof data.task === "object" ? data.task : data;
  const t = candidate as Partial<Task>;
  if (typeof t.id === "string" && isStatus(t.status) && typeof t.kind === "string" && typeof t.generation === "number") return candidate as Task;
  return undefined;
}

const cancellable = (t: Task) => !FINAL_STATUSES.has(t.status);
/** The server retries a dead or failed task, as a new task with the same settings. */
const retryable = (t: Task) => t.status === "failed" || t.status === "dead";

function byClaimOrder(a: Task, b: Task): number {
  return b.priority - a.priority || a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1);
}
function byNewest(a: Task, b: Task): number {
  return b.updatedAt - a.updatedAt || (a.id < b.id ? -1 : 1);
}

interface TaskActions {
  cancel: (task: Task) => void;
  retry: (task: Task) => void;
}

export function TasksView({ route }: { route: Route }) {
  const params = route.params;
  const board = params.get("board") || "default";
  const kind = params.get("kind") ?? "";
  const capability = params.get("capability") ?? "";
  const query = params.get("q") ?? "";
  const selected = params.get("task");

  const tasks = useBatchedMap<Task>(
    (t) => t.id,
    (current, next) => next.generation >= current.generation,
  );
  const { replaceAll, upsert } = tasks;
  const [total, setTotal] = useState<number>();
  const taskBoards = useLoad("task-boards", (signal) => api<{ boards: { name: string }[] }>("/api/task-boards", { signal }));

  const load = useCallback(
    async (signal: AbortSignal) => {
      const answer = await api<{ tasks: Task[]; total?: number }>(withQuery("/api/tasks", { board, limit: TASK_LIMIT }), { signal });
      replaceAll(answer.tasks ?? []);
      setTotal(answer.total);
    },
    [board, replaceAll],
  );
  useEffect(() => {
    replaceAll([]);
    setTotal(undefined);
  }, [board, replaceAll]);
  const live = useLiveList(board, withQuery("/api/tasks/events", { board }), load, (message) => {
    if (message.event === "ready") return "ready";
    if (message.event === "horizon") return "reload";
    if (message.event === "error") return "handled";
    const task = taskFrom(parseData(message));
    if (!task) return "reload";
    upsert(task);
    return "handled";
  });
  const { loaded, error: loadError, reload } = live;

  const all = tasks.map;
  const kinds = useMemo(() => [...new Set([...all.values()].map((t) => t.kind))].sort(), [all]);
  const capabilities = useMemo(() => [...new Set([...all.values()].map((t) => t.capability))].sort(), [all]);
  const columns = useMemo(() => {
    const groups = Object.fromEntries(TASK_STATUSES.map((s) => [s, [] as Task[]])) as Record<TaskStatus, Task[]>;
    const needle = query.toLowerCase();
    for (const t of all.values()) {
      if (kind && t.kind !== kind) continue;
      if (capability && t.capability !== capability) continue;
      if (needle && !t.id.toLowerCase().includes(needle)) continue;
      groups[t.status]?.push(t);
    }
    for (const status of TASK_STATUSES) groups[status].sort(status === "pending" || status === "blocked" ? byClaimOrder : byNewest);
    return groups;
  }, [all, kind, capability, query]);
  const shown = KANBAN_ORDER.reduce((n, s) => n + columns[s].length, 0);

  const [confirm, setConfirm] = useState<ConfirmRequest>();
  const act = useCallback(
    async (task: Task, action: "cancel" | "retry") => {
      const answer = await api<unknown>(withQuery(`/api/tasks/${enc(task.id)}/${action}`, { board }), { method: "POST" });
      const changed = taskFrom(answer);
      if (changed) upsert(changed);
      else reload();
      toast(action === "cancel" ? `Cancelled ${task.id}` : `Retrying ${task.id} as ${changed?.id ?? "a new task"}`);
    },
    [board, upsert, reload],
  );
  const actions: TaskActions = useMemo(
    () => ({
      cancel: (task) =>
        setConfirm({
          title: `Cancel ${task.id}?`,
          body: <p>The task and its subtasks are cancelled; tasks that depend on it fail.</p>,
          confirmLabel: "Cancel task",
          danger: true,
          action: () => act(task, "cancel"),
        }),
      retry: (task) => {
        act(task, "retry").catch((error: unknown) => toast(`Retry ${task.id}: ${errorMessage(error)}`, "error"));
      },
    }),
    [act],
  );

  const open = (id: string) => updateParams({ task: id }, { push: true });

  return (
    <section class="view view-tasks" data-testid="view-tasks" aria-label="Tasks">
      <form class="toolbar" onSubmit={(e) => e.preventDefault()}>
        <label class="field inline">
          <span>Task board</span>
          <input
            data-testid="tasks-board"
            value={board}
            size={12}
            list="task-boards"
            onChange={(e) => updateParams({ board: e.currentTarget.value.trim() === "default" ? "" : e.currentTarget.value.trim(), task: null })}
          />
          <datalist id="task-boards">
            {(taskBoards.data?.boards ?? []).map((b) => (
              <option key={b.name} value={b.name} />
            ))}
          </datalist>
        </label>
        <label class="field inline">
          <span>Kind</span>
          <select data-testid="tasks-filter-kind" value={kind} onChange={(e) => updateParams({ kind: e.currentTarget.value })}>
            <option value="">all</option>
            {withCurrent(kinds, kind).map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </label>
        <label class="field inline">
          <span>Capability</span>
          <select data-testid="tasks-filter-capability" value={capability} onChange={(e) => updateParams({ capability: e.currentTarget.value })}>
            <option value="">all</option>
            {withCurrent(capabilities, capability).map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </label>
        <label class="field inline">
          <span>Id</span>
          <input type="search" data-testid="tasks-search" value={query} placeholder="filter by id" onInput={(e) => updateParams({ q: e.currentTarget.value })} />
        </label>
        <span class="muted" data-testid="tasks-count" data-count={shown}>
          {loaded
            ? `${shown.toLocaleString()} of ${all.size.toLocaleString()} tasks${total !== undefined && total > all.size ? ` (the newest of ${total.toLocaleString()})` : ""}`
            : "loading…"}
        </span>
      </form>
      <ErrorNote error={loadError} testId="tasks-error" />
      <div class="with-panel">
        <div class="kanban" data-testid="tasks-kanban">
          {KANBAN_ORDER.map((status) => (
            <Column key={status} status={status} tasks={columns[status]} selected={selected} onOpen={open} actions={actions} />
          ))}
        </div>
        {selected ? (
          <TaskDetail
            key={`${board}/${selected}`}
            id={selected}
            board={board}
            all={all}
            actions={actions}
            onSelect={(id) => updateParams({ task: id }, { push: true })}
            onClose={() => updateParams({ task: null }, { push: true })}
          />
        ) : null}
      </div>
      <ConfirmDialog request={confirm} onDone={() => setConfirm(undefined)} />
    </section>
  );
}

/** The options, with the chosen one kept even when no task has it now. */
function withCurrent(options: string[], current: string): string[] {
  return current && !options.includes(current) ? [...options, current].sort() : options;
}

function Column({ status, tasks, selected, onOpen, actions }: { status: TaskStatus; tasks: Task[]; selected: string | null; onOpen: (id: string) => void; actions: TaskActions }) {
  const now = useNow(5000);
  return (
    <div class={`column column-${status}`} data-testid={`task-column-${status}`}>
      <h2 class="column-head">
        <Badge tone={status}>{status}</Badge>
        <span class="count" data-testid={`task-column-count-${status}`}>
          {tasks.length.toLocaleString()}
        </span>
      </h2>
      <VirtualList
        items={tasks}
        rowHeight={CARD_HEIGHT}
        keyOf={(t) => t.id}
        label={`${status} tasks`}
        testId={`task-list-${status}`}
        empty={<span class="muted">none</span>}
        renderRow={(t) => <TaskCard task={t} selected={t.id === selected} onOpen={onOpen} actions={actions} now={now} />}
      />
    </div>
  );
}

function TaskCard({ task, selected, onOpen, actions, now }: { task: Task; selected: boolean; onOpen: (id: string) => void; actions: TaskActions; now: number }) {
  const onKeyDown = (event: TargetedKeyboardEvent<HTMLDivElement>) => {
    if (event.target !== event.currentTarget) return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      onOpen(task.id);
    }
  };
  const stop = (fn: () => void) => (event: Event) => {
    event.stopPropagation();
    fn();
  };
  // The error of an attempt that a later one made good is in the detail, not on the card.
  const failed = task.status === "failed" || task.status === "dead";
  const note = task.status === "claimed" ? (task.owner ? `on ${task.owner}` : "claimed") : (task.reason ?? (failed ? task.error : undefined) ?? "");
  return (
    <div
      class={`card status-${task.status}${selected ? " selected" : ""}`}
      data-testid={`task-card-${task.id}`}
      data-status={task.status}
      data-row-focus
      tabIndex={0}
      aria-label={`Task ${task.id}, ${task.kind}, ${task.status}`}
      aria-current={selected ? "true" : undefined}
      onClick={() => onOpen(task.id)}
      onKeyDown={onKeyDown}
    >
      <div class="card-line">
        <span class="card-id" title={task.id}>
          {task.id}
        </span>
        <span class="card-kind">{task.kind}</span>
      </div>
      <div class="card-line muted small">
        <span title="priority">p{task.priority}</span>
        <span title="attempt, of the most allowed">
          {attemptOf(task)}/{task.maxAttempts}
        </span>
        {task.capability !== task.kind ? <span title="capability">@{task.capability}</span> : null}
        {task.dependsOn.length > 0 ? <span title="dependencies">⇠{task.dependsOn.length}</span> : null}
        <span class="grow" />
        <span title={new Date(task.updatedAt).toISOString()}>{age(now - task.updatedAt)}</span>
      </div>
      <div class="card-line small">
        <span class="card-note" title={note}>
          {note}
        </span>
        {cancellable(task) ? (
          <button type="button" class="btn btn-small" data-testid={`task-cancel-${task.id}`} aria-label={`Cancel task ${task.id}`} onClick={stop(() => actions.cancel(task))}>
            Cancel
          </button>
        ) : null}
        {retryable(task) ? (
          <button type="button" class="btn btn-small" data-testid={`task-retry-${task.id}`} aria-label={`Retry task ${task.id}`} onClick={stop(() => actions.retry(task))}>
            Retry
          </button>
        ) : null}
      </div>
    </div>
  );
}

/** The tasks each task is a dependency of. */
function dependentsOf(all: Map<string, Task>): Map<string, string[]> {
  const index = new Map<string, string[]>();
  for (const t of all.values()) {
    for (const dep of t.dependsOn) {
      const list = index.get(dep);
      if (list) list.push(t.id);
      else index.set(dep, [t.id]);
    }
  }
  return index;
}

const GRAPH_SIDE_LIMIT = 60;

/** The task, what it depends on (transitively) and what depends on it, each side bounded. */
function dependencyGraph(root: Task, all: Map<string, Task>, dependents: Map<string, string[]>): { nodes: GraphNode[]; edges: GraphEdge[]; cut: boolean } {
  const nodes = new Map<string, GraphNode>();
  const edges: GraphEdge[] = [];
  let cut = false;
  const node = (id: string): GraphNode => {
    const t = all.get(id);
    return { id, label: id, sub: t ? `${t.kind} · ${t.status}` : "not loaded", tone: t?.status ?? "none", current: id === root.id };
  };
  nodes.set(root.id, node(root.id));
  const walk = (start: Task, next: (t: Task) => string[], edge: (from: string, to: string) => GraphEdge) => {
    const queue = [start.id];
    let added = 0;
    while (queue.length > 0) {
      const id = queue.shift()!;
      const t = id === root.id ? root : all.get(id);
      if (!t) continue;
      for (const other of next(t)) {
        edges.push(edge(id, other));
        if (nodes.has(other)) continue;
        if (added >= GRAPH_SIDE_LIMIT) {
          cut = true;
          edges.pop();
          continue;
        }
        nodes.set(other, node(other));
        added++;
        queue.push(other);
      }
    }
  };
  walk(root, (t) => t.dependsOn, (from, to) => ({ from: to, to: from }));
  walk(root, (t) => dependents.get(t.id) ?? [], (from, to) => ({ from, to }));
  const seen = new Set<string>();
  const unique = edges.filter((e) => {
    const key = `${e.from}->${e.to}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { nodes: [...nodes.values()], edges: unique, cut };
}

function TaskDetail({
  id,
  board,
  all,
  actions,
  onSelect,
  onClose,
}: {
  id: string;
  board: string;
  all: Map<string, Task>;
  actions: TaskActions;
  onSelect: (id: string) => void;
  onClose: () => void;
}) {
  const live = all.get(id);
  const { data, error, reload } = useLoad(`${board}\u0000${id}`, (signal) =>
    api<{ task: Task; events?: TaskEvent[] }>(withQuery(`/api/tasks/${enc(id)}`, { board }), { signal }),
  );
  const liveGeneration = live?.generation;
  const loadedGeneration = data?.task?.generation;
  useEffect(() => {
    if (liveGeneration !== undefined && loadedGeneration !== undefined && liveGeneration > loadedGeneration) reload();
  }, [liveGeneration, loadedGeneration, reload]);
  const task = live && (!data?.task || live.generation > data.task.generation) ? live : data?.task;
  const dependents = useMemo(() => dependentsOf(all), [all]);
  const graph = useMemo(() => (task ? dependencyGraph(task, all, dependents) : undefined), [task, all, dependents]);
  const subtasks = useMemo(() => [...all.values()].filter((t) => t.parentId === id).map((t) => t.id), [all, id]);

  return (
    <aside class="panel" data-testid="task-detail" aria-label={`Task ${id}`}>
      <div class="panel-head">
        <h2 class="panel-title" title={id}>
          {id}
        </h2>
        <button type="button" class="btn btn-quiet" onClick={onClose} data-testid="task-detail-close" aria-label="Close the task's detail">
          ×
        </button>
      </div>
      <ErrorNote error={task ? undefined : error} testId="task-detail-error" />
      {!task ? (
        error ? null : <p class="muted">loading…</p>
      ) : (
        <>
          <div class="row gap">
            <Badge tone={task.status} testId="task-detail-status">
              {task.status}
            </Badge>
            <span class="grow" />
            {cancellable(task) ? (
              <button type="button" class="btn" data-testid="task-detail-cancel" onClick={() => actions.cancel(task)}>
                Cancel
              </button>
            ) : null}
            {retryable(task) ? (
              <button type="button" class="btn" data-testid="task-detail-retry" onClick={() => actions.retry(task)}>
                Retry
              </button>
            ) : null}
          </div>
          <dl class="facts" data-testid="task-facts">
            <dt>kind</dt>
            <dd>{task.kind}</dd>
            <dt>capability</dt>
            <dd>{task.capability}</dd>
            <dt>priority</dt>
            <dd>{task.priority}</dd>
            <dt>attempts</dt>
            <dd data-testid="task-attempts">
              {attemptOf(task)} of {task.maxAttempts}
            </dd>
            <dt>owner</dt>
            <dd data-testid="task-owner">{task.owner ?? "–"}</dd>
            {task.leaseUntil ? (
              <>
                <dt>lease until</dt>
                <dd>{time(task.leaseUntil)}</dd>
              </>
            ) : null}
            {task.assignee ? (
              <>
                <dt>reserved for</dt>
                <dd>{task.assignee}</dd>
              </>
            ) : null}
            {task.route ? (
              <>
                <dt>route</dt>
                <dd>
                  {task.route.mode}
                  {task.route.worker ? ` → ${task.route.worker}` : ""}
                </dd>
              </>
            ) : null}
            {task.runAfter && task.runAfter > Date.now() ? (
              <>
                <dt>retry after</dt>
                <dd>{time(task.runAfter)}</dd>
              </>
            ) : null}
            {task.timeoutMs ? (
              <>
                <dt>timeout</dt>
                <dd>{duration(task.timeoutMs)}</dd>
              </>
            ) : null}
            {task.parentId ? (
              <>
                <dt>parent</dt>
                <dd>
                  <TaskLink id={task.parentId} board={board} />
                </dd>
              </>
            ) : null}
            <dt>created</dt>
            <dd>{time(task.createdAt)}</dd>
            <dt>updated</dt>
            <dd>{time(task.updatedAt)}</dd>
          </dl>
          {task.reason ? (
            <p class="note" data-testid="task-reason">
              {task.reason}
            </p>
          ) : null}
          {task.error ? (
            <p class="error-note" data-testid="task-error">
              {task.error}
            </p>
          ) : null}
          <h3>Input</h3>
          <Json value={task.input} testId="task-input" label="Input" />
          <h3>Result</h3>
          {task.result === undefined ? <p class="muted">none yet</p> : <Json value={task.result} testId="task-result" label="Result" />}
          <h3>Failures</h3>
          {task.failures.length === 0 ? (
            <p class="muted" data-testid="task-failures">
              none
            </p>
          ) : (
            <table class="table" data-testid="task-failures">
              <thead>
                <tr>
                  <th>attempt</th>
                  <th>kind</th>
                  <th>worker</th>
                  <th>at</th>
                  <th>error</th>
                </tr>
              </thead>
              <tbody>
                {task.failures.map((f, i) => (
                  <tr key={i} data-testid={`task-failure-${f.attempt}`}>
                    <td>{f.attempt}</td>
                    <td>{f.kind}</td>
                    <td>{f.worker ?? "–"}</td>
                    <td>{time(f.at)}</td>
                    <td class="pre">{f.error}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h3>Dependencies</h3>
          {graph && graph.nodes.length > 1 ? (
            <>
              <DagGraph
                nodes={graph.nodes}
                edges={graph.edges}
                direction="LR"
                onSelect={onSelect}
                testId="task-graph"
                nodeTestId={(n) => `task-graph-node-${n}`}
                label={`Dependencies of ${task.id}`}
              />
              {graph.cut ? <p class="muted small">Only the nearest {GRAPH_SIDE_LIMIT} on each side are drawn.</p> : null}
            </>
          ) : (
            <p class="muted" data-testid="task-graph" data-state="empty">
              no dependencies and no dependents
            </p>
          )}
          {subtasks.length > 0 ? (
            <>
              <h3>Subtasks</h3>
              <ul class="links" data-testid="task-subtasks">
                {subtasks.slice(0, 200).map((s) => (
                  <li key={s}>
                    <TaskLink id={s} board={board} />
                  </li>
                ))}
              </ul>
            </>
          ) : null}
          <h3>Events</h3>
          {data?.events && data.events.length > 0 ? (
            <ol class="events" data-testid="task-events">
              {data.events.map((e) => (
                <li key={e.seq}>
                  <span class="mono">#{e.seq}</span> <Badge tone={e.task?.status ?? "none"}>{e.type}</Badge> <span class="muted">{time(e.at)}</span>
                  {e.task?.owner ? <span class="muted"> · {e.task.owner}</span> : null}
                </li>
              ))}
            </ol>
          ) : (
            <p class="muted" data-testid="task-events">
              {data ? "none kept" : "loading…"}
            </p>
          )}
        </>
      )}
    </aside>
  );
}

export function TaskLink({ id, board }: { id: string; board?: string }) {
  const hash = formatHash(["tasks"], { task: id, board: board && board !== "default" ? board : undefined });
  return (
    <a
      href={hash}
      class="mono"
      onClick={(e) => {
        e.preventDefault();
        // Within the task view, keep its filters.
        if (window.location.hash.startsWith("#/tasks")) updateParams({ task: id }, { push: true });
        else navigate(hash);
      }}
    >
      {id}
    </a>
  );
}
