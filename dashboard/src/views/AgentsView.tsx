/**
 * The sub-agent registry as a live spawn tree: one virtual list of rows indented by depth, each
 * with its state, isolation, delivery policy and what it spent (itself, and with its subtree),
 * and a terminate button. The selected agent's subtree is drawn as a graph beside it.
 */
import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import type { TargetedKeyboardEvent } from "preact";
import { api, enc } from "../api.ts";
import { DagGraph, type GraphEdge, type GraphNode } from "../components/DagGraph.tsx";
import { Badge, ConfirmDialog, Empty, ErrorNote, type ConfirmRequest } from "../components/ui.tsx";
import { VirtualList } from "../components/VirtualList.tsx";
import { age, cost, duration, time, tokens } from "../format.ts";
import { useBatchedMap, useCoalesced, useLiveList, useLoad, useNow } from "../hooks.ts";
import { updateParams, type Route } from "../route.ts";
import { parseData } from "../sse.ts";
import { toast } from "../toasts.ts";
import { AGENT_STATES, LIVE_AGENT_STATES, type AgentRecord, type UsageFigures, type UsageNode } from "../types.ts";

const ROW_HEIGHT = 40;

function agentFrom(data: unknown): AgentRecord | undefined {
  if (!data || typeof data !== "object") return undefined;
  const candidate = "agent" in data && data.agent && typeof data.agent === "object" ? data.agent : "record" in data && data.record && typeof data.record === "object" ? data.record : data;
  const a = candidate as Partial<AgentRecord>;
  if (typeof a.id === "string" && typeof a.name === "string" && typeof a.state === "string" && typeof a.generation === "number") return candidate as AgentRecord;
  return undefined;
}

interface Usage {
  own: UsageFigures;
  total: UsageFigures;
}

interface Tree {
  roots: string[];
  children: Map<string, string[]>;
  usage: Map<string, Usage>;
  /** Agents below each, itself excluded. */
  size: Map<string, number>;
}

/**
 * Parents and children from the records; an agent whose parent is not listed (ended and
 * pruned) is a root. A record's tokens and cost count its subtree, so its own are what its
 * children's do not explain; turns are its own, so the subtree's are summed.
 */
function buildTree(all: Map<string, AgentRecord>): Tree {
  const children = new Map<string, string[]>();
  const roots: string[] = [];
  const ordered = [...all.values()].sort((a, b) => a.startedAt - b.startedAt || (a.id < b.id ? -1 : 1));
  for (const a of ordered) {
    if (a.parentId !== undefined && a.parentId !== null && all.has(a.parentId)) {
      const list = children.get(a.parentId);
      if (list) list.push(a.id);
      else children.set(a.parentId, [a.id]);
    } else roots.push(a.id);
  }
  const usage = new Map<string, Usage>();
  const size = new Map<string, number>();
  // Post-order without recursion: trees may be deep.
  const stack: { id: string; done: boolean }[] = roots.map((id) => ({ id, done: false })).reverse();
  while (stack.length > 0) {
    const top = stack.pop()!;
    const kids = children.get(top.id) ?? [];
    if (!top.done) {
      stack.push({ id: top.id, done: true });
      for (const k of kids) stack.push({ id: k, done: false });
      continue;
    }
    const record = all.get(top.id)!;
    let childTokens = 0;
    let childCost = 0;
    let turnsBelow = 0;
    let below = 0;
    for (const k of kids) {
      const u = usage.get(k);
      const kid = all.get(k);
      if (!u || !kid) continue;
      childTokens += kid.usage?.tokens ?? 0;
      childCost += kid.usage?.costUsd ?? 0;
      turnsBelow += u.total.turns;
      below += 1 + (size.get(k) ?? 0);
    }
    const own = {
      tokens: Math.max(0, (record.usage?.tokens ?? 0) - childTokens),
      costUsd: Math.max(0, (record.usage?.costUsd ?? 0) - childCost),
      turns: record.usage?.turns ?? 0,
    };
    usage.set(top.id, { own, total: { tokens: own.tokens + childTokens, costUsd: own.costUsd + childCost, turns: own.turns + turnsBelow } });
    size.set(top.id, below);
  }
  return { roots, children, usage, size };
}

interface Row {
  record: AgentRecord;
  depth: number;
  hasChildren: boolean;
  expanded: boolean;
  /** Shown only because a descendant matches the filter. */
  context: boolean;
}

function flatten(tree: Tree, all: Map<string, AgentRecord>, collapsed: Set<string>, matches: ((a: AgentRecord) => boolean) | undefined): Row[] {
  // With a filter: the matching agents and their ancestors, so the tree keeps its shape.
  let keep: Set<string> | undefined;
  if (matches) {
    keep = new Set();
    for (const a of all.values()) {
      if (!matches(a)) continue;
      let id: string | undefined = a.id;
      while (id !== undefined && !keep.has(id)) {
        keep.add(id);
        const parent: string | undefined = all.get(id)?.parentId;
        id = parent !== undefined && all.has(parent) ? parent : undefined;
      }
    }
  }
  const rows: Row[] = [];
  const stack: { id: string; depth: number }[] = [...tree.roots].reverse().map((id) => ({ id, depth: 0 }));
  while (stack.length > 0) {
    const { id, depth } = stack.pop()!;
    if (keep && !keep.has(id)) continue;
    const record = all.get(id);
    if (!record) continue;
    const kids = (tree.children.get(id) ?? []).filter((k) => !keep || keep.has(k));
    const expanded = !collapsed.has(id);
    rows.push({ record, depth, hasChildren: kids.length > 0, expanded, context: matches !== undefined && !matches(record) });
    if (expanded) for (let i = kids.length - 1; i >= 0; i--) stack.push({ id: kids[i]!, depth: depth + 1 });
  }
  return rows;
}

/** The tree the server sends for `/api/agents/:id/tree`, if it is one: `{ tree }`, `{ root }` or the node. */
function usageNodeFrom(data: unknown): UsageNode | undefined {
  if (!data || typeof data !== "object") return undefined;
  const d = data as Record<string, unknown>;
  const candidate = (d.tree ?? d.root ?? d.node ?? data) as Partial<UsageNode>;
  if (typeof candidate.id !== "string" || !Array.isArray(candidate.children) || !candidate.total || !candidate.own) return undefined;
  return candidate as UsageNode;
}

export function AgentsView({ route }: { route: Route }) {
  const params = route.params;
  const stateFilter = params.get("state") ?? "";
  const query = params.get("q") ?? "";
  const selected = params.get("agent");

  const agents = useBatchedMap<AgentRecord>(
    (a) => a.id,
    (current, next) => next.generation >= current.generation,
  );
  const { replaceAll, upsert, remove } = agents;
  const load = useCallback(
    async (signal: AbortSignal) => {
      const answer = await api<{ agents: AgentRecord[] }>("/api/agents", { signal });
      replaceAll(answer.agents ?? []);
    },
    [replaceAll],
  );
  // The registry has no log: the stream starts with the whole of it (`agents`), then each change.
  const { loaded, error: loadError } = useLiveList("agents", "/api/agents/events", load, (message) => {
    const data = parseData(message);
    if (message.event === "agents" && data && typeof data === "object" && Array.isArray((data as { agents?: unknown }).agents)) {
      replaceAll((data as { agents: AgentRecord[] }).agents);
      return "snapshot";
    }
    if (message.event === "removed" && data && typeof (data as { id?: unknown }).id === "string") {
      remove((data as { id: string }).id);
      return "handled";
    }
    if (message.event === "ready") return "ready";
    if (message.event === "error") return "handled";
    const record = agentFrom(data);
    if (!record) return "reload";
    upsert(record);
    return "handled";
  });

  const all = agents.map;
  const tree = useMemo(() => buildTree(all), [all]);
  const [collapsed, setCollapsed] = useState<Set<string>>(() => new Set());
  const toggle = useCallback((id: string, open?: boolean) => {
    setCollapsed((previous) => {
      const next = new Set(previous);
      const isOpen = !next.has(id);
      if (open ?? !isOpen) next.delete(id);
      else next.add(id);
      return next;
    });
  }, []);
  const matches = useMemo(() => {
    if (!stateFilter && !query) return undefined;
    const needle = query.toLowerCase();
    return (a: AgentRecord) =>
      (stateFilter === "" || (stateFilter === "live" ? LIVE_AGENT_STATES.has(a.state) : a.state === stateFilter)) &&
      (needle === "" || a.name.toLowerCase().includes(needle) || a.id.toLowerCase().includes(needle));
  }, [stateFilter, query]);
  const rows = useMemo(() => flatten(tree, all, collapsed, matches), [tree, all, collapsed, matches]);
  const counts = useMemo(() => {
    const c: Record<string, number> = {};
    for (const a of all.values()) c[a.state] = (c[a.state] ?? 0) + 1;
    return c;
  }, [all]);

  const [confirm, setConfirm] = useState<ConfirmRequest>();
  const terminate = useCallback(
    (record: AgentRecord) => {
      const below = tree.size.get(record.id) ?? 0;
      setConfirm({
        title: `Terminate ${record.name}?`,
        body: (
          <p>
            <span class="mono">{record.id}</span> stops after a grace period{below > 0 ? `; it has ${below} descendant${below === 1 ? "" : "s"}` : ""}.
          </p>
        ),
        confirmLabel: "Terminate",
        danger: true,
        option: { label: "Terminate its descendants too", initial: true },
        action: async (cascade) => {
          const answer = await api<unknown>(`/api/agents/${enc(record.id)}/terminate`, { method: "POST", body: { cascade } });
          const changed = agentFrom(answer);
          if (changed) upsert(changed);
          toast(`Terminating ${record.name}`);
        },
      });
    },
    [tree, upsert],
  );

  const now = useNow(5000);
  const select = (id: string) => updateParams({ agent: id }, { push: true });

  return (
    <section class="view view-agents" data-testid="view-agents" aria-label="Agents">
      <form class="toolbar" onSubmit={(e) => e.preventDefault()}>
        <label class="field inline">
          <span>State</span>
          <select data-testid="agents-filter-state" value={stateFilter} onChange={(e) => updateParams({ state: e.currentTarget.value })}>
            <option value="">all</option>
            <option value="live">live</option>
            {AGENT_STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label class="field inline">
          <span>Name or id</span>
          <input type="search" data-testid="agents-search" value={query} onInput={(e) => updateParams({ q: e.currentTarget.value })} />
        </label>
        <button type="button" class="btn btn-small" data-testid="agents-expand-all" onClick={() => setCollapsed(new Set())}>
          Expand all
        </button>
        <button type="button" class="btn btn-small" data-testid="agents-collapse-all" onClick={() => setCollapsed(new Set(tree.children.keys()))}>
          Collapse all
        </button>
        <span class="muted" data-testid="agents-summary" data-count={all.size}>
          {loaded
            ? `${all.size.toLocaleString()} agents: ${Object.entries(counts)
                .map(([s, n]) => `${n} ${s}`)
                .join(", ")}`
            : "loading…"}
        </span>
      </form>
      <ErrorNote error={loadError} testId="agents-error" />
      <div class="with-panel">
        <div class="tree-wrap">
          <div class="agent-row agent-head" aria-hidden="true">
            <span>agent</span>
            <span>state</span>
            <span>isolation</span>
            <span>delivery</span>
            <span class="num">own tokens</span>
            <span class="num">own cost</span>
            <span class="num">subtree tokens</span>
            <span class="num">subtree cost</span>
            <span class="num">turns</span>
            <span class="num">age</span>
            <span />
          </div>
          <VirtualList
            items={rows}
            rowHeight={ROW_HEIGHT}
            keyOf={(r) => r.record.id}
            label="Agents by spawn tree"
            testId="agents-tree"
            empty={loaded ? <Empty testId="agents-empty">No agents in the registry.</Empty> : null}
            renderRow={(row) => (
              <AgentRow row={row} usage={tree.usage.get(row.record.id)} selected={row.record.id === selected} now={now} onSelect={select} onToggle={toggle} onTerminate={terminate} />
            )}
          />
        </div>
        {selected ? (
          <AgentDetail key={selected} id={selected} all={all} tree={tree} onSelect={select} onTerminate={terminate} onClose={() => updateParams({ agent: null }, { push: true })} />
        ) : null}
      </div>
      <ConfirmDialog request={confirm} onDone={() => setConfirm(undefined)} />
    </section>
  );
}

function AgentRow({
  row,
  usage,
  selected,
  now,
  onSelect,
  onToggle,
  onTerminate,
}: {
  row: Row;
  usage: Usage | undefined;
  selected: boolean;
  now: number;
  onSelect: (id: string) => void;
  onToggle: (id: string, open?: boolean) => void;
  onTerminate: (record: AgentRecord) => void;
}) {
  const { record, depth } = row;
  const live = LIVE_AGENT_STATES.has(record.state);
  const onKeyDown = (event: TargetedKeyboardEvent<HTMLDivElement>) => {
    if (event.target !== event.currentTarget) return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      onSelect(record.id);
    } else if (event.key === "ArrowRight" && row.hasChildren && !row.expanded) {
      event.preventDefault();
      onToggle(record.id, true);
    } else if (event.key === "ArrowLeft" && row.hasChildren && row.expanded) {
      event.preventDefault();
      onToggle(record.id, false);
    }
  };
  const ended = record.endedAt ?? now;
  return (
    <div
      class={`agent-row${selected ? " selected" : ""}${row.context ? " context" : ""}`}
      data-testid={`agent-node-${record.id}`}
      data-state={record.state}
      data-depth={depth}
      data-row-focus
      tabIndex={0}
      aria-level={depth + 1}
      aria-expanded={row.hasChildren ? row.expanded : undefined}
      aria-label={`${record.name}, ${record.state}`}
      aria-current={selected ? "true" : undefined}
      onClick={() => onSelect(record.id)}
      onKeyDown={onKeyDown}
    >
      <span class="agent-name" style={{ paddingLeft: `${Math.min(depth, 24) * 16}px` }}>
        {row.hasChildren ? (
          <button
            type="button"
            class="twisty"
            data-testid={`agent-toggle-${record.id}`}
            aria-label={row.expanded ? `Collapse ${record.name}` : `Expand ${record.name}`}
            aria-expanded={row.expanded}
            onClick={(e) => {
              e.stopPropagation();
              onToggle(record.id);
            }}
          >
            {row.expanded ? "▾" : "▸"}
          </button>
        ) : (
          <span class="twisty-space" />
        )}
        <span class="ellipsis" title={`${record.name} (${record.id})`}>
          {record.name} <span class="muted small mono">{record.id}</span>
        </span>
      </span>
      <span>
        <Badge tone={record.state} testId={`agent-state-${record.id}`}>
          {record.state}
        </Badge>
      </span>
      <span>{record.isolation}</span>
      <span>{record.delivery ?? "–"}</span>
      <span class="num">{tokens(usage?.own.tokens)}</span>
      <span class="num">{cost(usage?.own.costUsd)}</span>
      <span class="num" data-testid={`agent-subtree-tokens-${record.id}`}>
        {tokens(usage?.total.tokens)}
      </span>
      <span class="num">{cost(usage?.total.costUsd)}</span>
      <span class="num">{usage?.total.turns ?? 0}</span>
      <span class="num" title={time(record.startedAt)}>
        {age(ended - record.startedAt)}
      </span>
      <span>
        {live ? (
          <button
            type="button"
            class="btn btn-small btn-danger-quiet"
            data-testid={`agent-terminate-${record.id}`}
            aria-label={`Terminate ${record.name}`}
            onClick={(e) => {
              e.stopPropagation();
              onTerminate(record);
            }}
          >
            Terminate
          </button>
        ) : null}
      </span>
    </div>
  );
}

/** Its own process (a process agent's) and the one that owns it, whichever are known. */
function processLine(record: AgentRecord): string {
  const owner = record.ownerHost ? `owner ${record.ownerHost}:${record.ownerPid ?? "?"}` : record.ownerPid ? `owner pid ${record.ownerPid}` : undefined;
  return [record.pid ? `pid ${record.pid}` : undefined, owner].filter(Boolean).join(" · ") || "–";
}

/** The most agents the spawn graph draws: the nearest ones, breadth first. */
const GRAPH_LIMIT = 150;

interface Drawn {
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** Agents of the subtree left out. */
  cut: number;
}

/** The subtree breadth first, up to GRAPH_LIMIT agents, from `childrenOf` and `describe`. */
function subtreeGraph<T>(root: T, idOf: (n: T) => string, childrenOf: (n: T) => T[], describe: (n: T) => Omit<GraphNode, "id" | "current">): Drawn {
  const rootId = idOf(root);
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const queue: T[] = [root];
  let cut = 0;
  while (queue.length > 0) {
    const n = queue.shift()!;
    if (nodes.length >= GRAPH_LIMIT) {
      cut++;
      continue;
    }
    const id = idOf(n);
    nodes.push({ id, ...describe(n), current: id === rootId });
    for (const c of childrenOf(n)) {
      if (nodes.length + queue.length < GRAPH_LIMIT) edges.push({ from: id, to: idOf(c) });
      queue.push(c);
    }
  }
  return { nodes, edges, cut };
}

function localSubtree(rootId: string, all: Map<string, AgentRecord>, tree: Tree): Drawn {
  return subtreeGraph(
    rootId,
    (id) => id,
    (id) => (tree.children.get(id) ?? []).filter((k) => all.has(k)),
    (id) => {
      const record = all.get(id);
      const state = record?.state ?? "none";
      return { label: record?.name ?? id, sub: `${state} · ${tokens(tree.usage.get(id)?.total.tokens)} tok`, tone: state };
    },
  );
}

function serverSubtree(root: UsageNode): Drawn {
  return subtreeGraph(
    root,
    (n) => n.id,
    (n) => n.children ?? [],
    (n) => ({ label: n.name, sub: `${n.state} · ${tokens(n.total?.tokens)} tok`, tone: n.state }),
  );
}

function AgentDetail({
  id,
  all,
  tree,
  onSelect,
  onTerminate,
  onClose,
}: {
  id: string;
  all: Map<string, AgentRecord>;
  tree: Tree;
  onSelect: (id: string) => void;
  onTerminate: (record: AgentRecord) => void;
  onClose: () => void;
}) {
  const record = all.get(id);
  const { data, reload } = useLoad(id, (signal) => api<unknown>(`/api/agents/${enc(id)}/tree`, { signal }));
  // The server's tree, loaded again (at most every 2 s) as the registry changes.
  const refresh = useCoalesced(reload, 2000);
  useEffect(() => refresh(), [all, refresh]);
  const server = usageNodeFrom(data);
  const graph = useMemo(() => (server ? serverSubtree(server) : localSubtree(id, all, tree)), [server, id, all, tree]);
  const usage = server ? { own: server.own, total: server.total } : tree.usage.get(id);

  return (
    <aside class="panel" data-testid="agent-detail" aria-label={`Agent ${record?.name ?? id}`}>
      <div class="panel-head">
        <h2 class="panel-title">{record?.name ?? id}</h2>
        <button type="button" class="btn btn-quiet" onClick={onClose} data-testid="agent-detail-close" aria-label="Close the agent's detail">
          ×
        </button>
      </div>
      {!record ? (
        <p class="muted">This agent is not in the registry (any more).</p>
      ) : (
        <>
          <div class="row gap">
            <Badge tone={record.state}>{record.state}</Badge>
            {record.reason ? <Badge tone="failed">{record.reason}</Badge> : null}
            <span class="grow" />
            {LIVE_AGENT_STATES.has(record.state) ? (
              <button type="button" class="btn btn-danger-quiet" data-testid="agent-detail-terminate" onClick={() => onTerminate(record)}>
                Terminate
              </button>
            ) : null}
          </div>
          <dl class="facts">
            <dt>id</dt>
            <dd class="mono">{record.id}</dd>
            <dt>parent</dt>
            <dd>
              {record.parentId ? (
                <button type="button" class="linklike mono" onClick={() => onSelect(record.parentId!)}>
                  {all.get(record.parentId)?.name ?? record.parentId}
                </button>
              ) : (
                "–"
              )}
            </dd>
            <dt>depth</dt>
            <dd>{record.depth}</dd>
            <dt>isolation</dt>
            <dd>{record.isolation}</dd>
            <dt>delivery</dt>
            <dd>{record.delivery ?? "–"}</dd>
            <dt>process</dt>
            <dd>{processLine(record)}</dd>
            <dt>started</dt>
            <dd>{time(record.startedAt)}</dd>
            <dt>ended</dt>
            <dd>{record.endedAt ? `${time(record.endedAt)} (${duration(record.endedAt - record.startedAt)})` : "–"}</dd>
            <dt>descendants</dt>
            <dd>{tree.size.get(id) ?? 0}</dd>
          </dl>
          {record.error ? <p class="error-note">{record.error}</p> : null}
          <table class="table" data-testid="agent-usage">
            <thead>
              <tr>
                <th />
                <th class="num">tokens</th>
                <th class="num">cost</th>
                <th class="num">turns</th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <th>own</th>
                <td class="num">{tokens(usage?.own.tokens)}</td>
                <td class="num">{cost(usage?.own.costUsd)}</td>
                <td class="num">{usage?.own.turns ?? 0}</td>
              </tr>
              <tr>
                <th>with subtree</th>
                <td class="num">{tokens(usage?.total.tokens)}</td>
                <td class="num">{cost(usage?.total.costUsd)}</td>
                <td class="num">{usage?.total.turns ?? 0}</td>
              </tr>
            </tbody>
          </table>
        </>
      )}
      <h3>Spawn tree</h3>
      <DagGraph nodes={graph.nodes} edges={graph.edges} direction="TB" onSelect={onSelect} testId="agent-graph" nodeTestId={(n) => `agent-graph-node-${n}`} label="Spawn tree" />
      {graph.cut > 0 ? (
        <p class="muted small" data-testid="agent-graph-cut">
          The nearest {graph.nodes.length} agents are drawn; {graph.cut} more are in the list.
        </p>
      ) : null}
    </aside>
  );
}
