/**
 * Retention for the agent registry: its default, its check, and which ended agents it removes.
 * Pure rules; each backend's `AgentStore.prune` applies them (memory and NATS to the records they
 * read, SQLite in its query and then here).
 */
import { z } from "zod";
import type { AgentRecord, AgentRetention } from "./records.ts";
import { checkLimits, limit, pastRetention } from "./retention.ts";
import { isFinal } from "./subagent-types.ts";

/** A week, or ten thousand ended agents: whichever is reached first (as `DEFAULT_RETENTION` for tasks). */
export const DEFAULT_AGENT_RETENTION: Readonly<AgentRetention> = Object.freeze({ maxAgeMs: 7 * 24 * 60 * 60 * 1000, maxEnded: 10_000 });

/** How many ended agents one prune removes, at most. */
export const AGENT_PRUNE_STEP = 256;

const agentRetentionSchema = z.strictObject(
  { maxAgeMs: limit("maxAgeMs").optional(), maxEnded: limit("maxEnded").optional() },
  { error: (issue) => (issue.code === "unrecognized_keys" ? `unknown field ${JSON.stringify(issue.keys[0])}; it takes maxAgeMs and maxEnded` : "must be an object { maxAgeMs?, maxEnded? }") },
);

/** A retention with what `partial` leaves out taken from the default; a `ConfigError` naming the field if it is wrong. */
export function checkAgentRetention(partial: unknown, where = "retention.agents"): AgentRetention {
  return checkLimits(agentRetentionSchema, DEFAULT_AGENT_RETENTION, partial, where);
}

/** When an ended agent ended, for ordering; its start for a record that ended without saying when. */
export function endedAt(record: Pick<AgentRecord, "endedAt" | "startedAt">): number {
  return record.endedAt ?? record.startedAt;
}

/**
 * Of `candidates`, ended agents retention may remove in the order they ended, the leading ones it
 * no longer keeps: ended before `now - maxAgeMs`, or past the newest `maxEnded` of the
 * `endedCount` that have ended.
 */
export function expiredAgents<T extends { endedAt: number }>(candidates: readonly T[], endedCount: number, retention: AgentRetention, now: number): T[] {
  return pastRetention(candidates, endedCount - retention.maxEnded, now - retention.maxAgeMs, (candidate) => candidate.endedAt);
}

/** What retention looks at in a record. */
export type AgentOutline = Pick<AgentRecord, "id" | "parentId" | "state" | "startedAt" | "endedAt">;

/**
 * What a prune of the whole registry `records` removes: up to `AGENT_PRUNE_STEP` ended agents that
 * retention no longer keeps, oldest ended first, and never one whose parent or a descendant is
 * live. `more` when it stopped at that bound.
 */
export function agentsPastRetention<T extends AgentOutline>(records: readonly T[], retention: AgentRetention, now: number): { remove: T[]; more: boolean } {
  const byId = new Map(records.map((r) => [r.id, r]));
  const live = new Set(records.filter((r) => !isFinal(r.state)).map((r) => r.id));
  // A live agent's ancestors stay, so that its tree still leads up to its root.
  const ancestors = new Set<string>();
  for (const id of live) {
    for (let up = byId.get(id)?.parentId; up !== undefined && !ancestors.has(up); up = byId.get(up)?.parentId) ancestors.add(up);
  }
  const ended = records.filter((r) => isFinal(r.state));
  const candidates = ended
    .filter((r) => !ancestors.has(r.id) && (r.parentId === undefined || !live.has(r.parentId)))
    .map((record) => ({ record, endedAt: endedAt(record) }))
    .sort((a, b) => a.endedAt - b.endedAt || a.record.id.localeCompare(b.record.id))
    .slice(0, AGENT_PRUNE_STEP);
  const expired = expiredAgents(candidates, ended.length, retention, now);
  return { remove: expired.map((e) => e.record), more: expired.length === AGENT_PRUNE_STEP };
}
