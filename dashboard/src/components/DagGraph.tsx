/**
 * A directed graph laid out by dagre and drawn as SVG: task dependencies, agent spawn trees.
 * Nodes are buttons (focusable, Enter or Space selects). Past `maxNodes` it draws nothing and
 * says so: a layout of thousands of nodes would stall the page and show nothing readable.
 */
import type { TargetedKeyboardEvent } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type * as DagreModule from "@dagrejs/dagre";

type Dagre = typeof DagreModule;
let dagre: Promise<Dagre> | undefined;
/** dagre is loaded with the first graph shown: most visits never draw one. */
const loadDagre = () => (dagre ??= import("@dagrejs/dagre"));

export interface GraphNode {
  id: string;
  label: string;
  sub?: string;
  /** A CSS class for its colour: a task status or an agent state. */
  tone?: string;
  current?: boolean;
}

export interface GraphEdge {
  from: string;
  to: string;
}

interface Props {
  nodes: GraphNode[];
  edges: GraphEdge[];
  direction?: "LR" | "TB";
  onSelect?: (id: string) => void;
  testId: string;
  nodeTestId: (id: string) => string;
  label: string;
  maxNodes?: number;
}

const NODE_W = 168;
const NODE_H = 44;

interface Laid {
  width: number;
  height: number;
  nodes: (GraphNode & { x: number; y: number })[];
  edges: { key: string; d: string }[];
}

function lay({ Graph, layout }: Dagre, nodes: GraphNode[], edges: GraphEdge[], direction: "LR" | "TB"): Laid {
  const g = new Graph();
  g.setGraph({ rankdir: direction, nodesep: 18, ranksep: 42, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  const known = new Set<string>();
  for (const node of nodes) {
    g.setNode(node.id, { width: NODE_W, height: NODE_H });
    known.add(node.id);
  }
  for (const edge of edges) if (known.has(edge.from) && known.has(edge.to)) g.setEdge(edge.from, edge.to);
  layout(g);
  const laidNodes = nodes.map((node) => {
    const at = g.node(node.id) as { x: number; y: number };
    return { ...node, x: at.x, y: at.y };
  });
  const laidEdges = g.edges().map((e) => {
    const points = ((g.edge(e) as { points?: { x: number; y: number }[] }).points ?? []).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    const d = points.map((p, i) => `${i === 0 ? "M" : "L"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
    return { key: `${e.v}->${e.w}`, d };
  });
  const graph = g.graph() as { width?: number; height?: number };
  return { width: Math.max(graph.width ?? 0, NODE_W + 16), height: Math.max(graph.height ?? 0, NODE_H + 16), nodes: laidNodes, edges: laidEdges };
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function DagGraph({ nodes, edges, direction = "LR", onSelect, testId, nodeTestId, label, maxNodes = 400 }: Props) {
  const tooMany = nodes.length > maxNodes;
  const [laid, setLaid] = useState<Laid>();
  const [failed, setFailed] = useState<unknown>();
  useEffect(() => {
    if (tooMany) return;
    let current = true;
    loadDagre().then(
      (module) => {
        if (current) setLaid(lay(module, nodes, edges, direction));
      },
      (error: unknown) => {
        if (current) setFailed(error);
      },
    );
    return () => {
      current = false;
    };
  }, [nodes, edges, direction, tooMany]);

  // The node the graph is about, in view: a wide tree starts far from its left edge.
  const scroller = useRef<HTMLDivElement>(null);
  const centred = useRef(false);
  useLayoutEffect(() => {
    const box = scroller.current;
    const current = laid?.nodes.find((n) => n.current);
    if (!box || !current || centred.current) return;
    centred.current = true;
    box.scrollLeft = Math.max(0, current.x - box.clientWidth / 2);
    box.scrollTop = Math.max(0, current.y - box.clientHeight / 2);
  }, [laid]);

  if (tooMany || failed) {
    return (
      <p class="muted" data-testid={testId}>
        {tooMany ? `${nodes.length} nodes: too many to draw; the list shows them all.` : "The graph could not be drawn."}
      </p>
    );
  }
  if (!laid) {
    return (
      <p class="muted" data-testid={testId} data-state="loading">
        laying out…
      </p>
    );
  }
  const key = (id: string) => (event: TargetedKeyboardEvent<SVGGElement>) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      onSelect?.(id);
    }
  };
  const markerId = `arrow-${testId}`;
  return (
    <div class="graph-scroll" data-testid={testId} data-state="ready" ref={scroller}>
      <svg class="graph" width={laid.width} height={laid.height} viewBox={`0 0 ${laid.width} ${laid.height}`} role="group" aria-label={label}>
        <defs>
          <marker id={markerId} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="graph-arrow" />
          </marker>
        </defs>
        {laid.edges.map((e) => (
          <path key={e.key} d={e.d} class="graph-edge" marker-end={`url(#${markerId})`} />
        ))}
        {laid.nodes.map((n) => (
          <g
            key={n.id}
            class={`graph-node tone-${n.tone ?? "none"}${n.current ? " current" : ""}`}
            transform={`translate(${n.x - NODE_W / 2},${n.y - NODE_H / 2})`}
            data-testid={nodeTestId(n.id)}
            role="button"
            tabIndex={onSelect ? 0 : -1}
            aria-label={`${n.label}${n.sub ? `, ${n.sub}` : ""}`}
            onClick={() => onSelect?.(n.id)}
            onKeyDown={key(n.id)}
          >
            <rect width={NODE_W} height={NODE_H} rx="6" />
            <text x="8" y="18" class="graph-label">
              {clip(n.label, 24)}
            </text>
            {n.sub ? (
              <text x="8" y="35" class="graph-sub">
                {clip(n.sub, 28)}
              </text>
            ) : null}
            <title>{`${n.label}${n.sub ? `\n${n.sub}` : ""}`}</title>
          </g>
        ))}
      </svg>
    </div>
  );
}
