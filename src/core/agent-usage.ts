/**
 * What each agent of a spawn tree spent. A registry record's tokens and cost count the agent
 * and its descendants (a child's usage is charged to every ancestor's budget); its turns are its
 * own. The breakdown separates the two: `own` is what the agent spent itself, `total` its subtree.
 */
import { NotFoundError } from "./errors.ts";
import type { AgentRecord, AgentState } from "./records.ts";

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
}

/** The usage tree under `rootId`, from registry records (children in start order). */
export function usageTree(records: readonly AgentRecord[], rootId: string): UsageNode {
  const byParent = new Map<string, AgentRecord[]>();
  for (const record of [...records].sort((a, b) => a.startedAt - b.startedAt)) {
    if (record.parentId === undefined) continue;
    byParent.set(record.parentId, [...(byParent.get(record.parentId) ?? []), record]);
  }
  const root = records.find((r) => r.id === rootId);
  if (!root) throw new NotFoundError(`agent ${JSON.stringify(rootId)} in the registry`);
  const build = (record: AgentRecord): UsageNode => {
    const children = (byParent.get(record.id) ?? []).map(build);
    const below = children.reduce((sum, c) => ({ tokens: sum.tokens + c.total.tokens, costUsd: sum.costUsd + c.total.costUsd }), { tokens: 0, costUsd: 0 });
    const turnsBelow = children.reduce((sum, c) => sum + c.total.turns, 0);
    // A child's last usage may reach the registry a moment after its parent's total: never below 0.
    const own = {
      tokens: Math.max(0, record.usage.tokens - below.tokens),
      costUsd: Math.max(0, record.usage.costUsd - below.costUsd),
      turns: record.usage.turns,
    };
    return {
      id: record.id,
      name: record.name,
      state: record.state,
      own,
      total: { tokens: own.tokens + below.tokens, costUsd: own.costUsd + below.costUsd, turns: own.turns + turnsBelow },
      children,
    };
  };
  return build(root);
}
