/**
 * The messages between the runtime (which owns every agent's record, budget and children) and a
 * host (where an agent's code runs: inline, in a worker thread or in a child process). Everything
 * that crosses a thread or process boundary is checked against these schemas; a message that
 * does not fit is counted and dropped, never acted on. Hosts check what they receive with the
 * zod-free equivalents in wire.ts, which also carries errors across.
 */
import { z } from "zod";
import type { InboxMessage } from "../../core/subagent-types.ts";
import type { TraceCarrier } from "../../core/tracing.ts";

export const wireError = z.object({
  name: z.string(),
  message: z.string(),
  code: z.string().optional(),
  /** The error's own fields (a conflict's key and versions, say), so it can be rebuilt typed. */
  fields: z.record(z.string(), z.unknown()).optional(),
});
export type WireError = z.infer<typeof wireError>;

export const REQUEST_OPS = [
  "board.write",
  "board.delete",
  "board.get",
  "spawn",
  "child.terminate",
  "child.signal",
  "report.get",
  "turn",
  "approval",
  "tasks.submit",
  "tasks.wait",
  "model.step",
] as const;
export type RequestOp = (typeof REQUEST_OPS)[number];

/**
 * The runtime's answer to a "turn" request: what reached the inbox, and the turn's span (when it
 * is traced), for the host to run the turn under. A tuple: an inline host gets its copy element by
 * element, where an object would be cloned whole, at some microseconds a turn.
 */
export type TurnGrant = [inbox: InboxMessage[], trace?: TraceCarrier];

/** Host → runtime. */
export const hostMessage = z.discriminatedUnion("t", [
  z.object({ t: z.literal("req"), id: z.number().int(), op: z.enum(REQUEST_OPS), args: z.array(z.unknown()) }),
  z.object({ t: z.literal("emit"), name: z.string(), data: z.unknown() }),
  z.object({ t: z.literal("log"), message: z.string() }),
  /** `spent`: already spent (a model call made), so counted even past a limit. */
  z.object({ t: z.literal("usage"), tokens: z.number().min(0), costUsd: z.number().min(0), spent: z.boolean().optional() }),
  /** Sent once the agent's module is loaded: what its definition declares about itself. */
  z.object({
    t: z.literal("ready"),
    declared: z.object({
      delivery: z.enum(["streaming", "immediate", "deferred", "on_demand"]).optional(),
      budget: z.record(z.string(), z.unknown()).optional(),
      tools: z.array(z.string()).optional(),
    }),
  }),
  z.object({ t: z.literal("done"), result: z.unknown() }),
  z.object({ t: z.literal("fail"), error: wireError }),
]);
export type HostMessage = z.infer<typeof hostMessage>;

/** Runtime → host. */
export const runtimeMessage = z.discriminatedUnion("t", [
  z.object({ t: z.literal("res"), id: z.number().int(), ok: z.boolean(), value: z.unknown().optional(), error: wireError.optional() }),
  z.object({ t: z.literal("inbox"), messages: z.array(z.unknown()) }),
  z.object({ t: z.literal("stop"), reason: z.string() }),
  z.object({ t: z.literal("child.event"), childId: z.string(), event: z.unknown() }),
  z.object({ t: z.literal("child.end"), childId: z.string(), ok: z.boolean(), result: z.unknown(), error: wireError.optional() }),
]);
export type RuntimeMessage = z.infer<typeof runtimeMessage>;

/** What a host needs to start an agent. */
export const startMessage = z.object({
  id: z.string(),
  name: z.string(),
  parentId: z.string().optional(),
  depth: z.number().int(),
  input: z.unknown(),
  agent: z.object({ module: z.string(), export: z.string().optional() }).optional(),
  board: z.string().optional(),
  permissions: z.object({
    tools: z.array(z.string()).optional(),
    writePrefixes: z.array(z.string()).optional(),
    boards: z.array(z.string()).optional(),
    env: z.array(z.string()).optional(),
  }),
  remaining: z.object({ tokens: z.number().optional(), costUsd: z.number().optional() }),
});
export type StartMessage = z.infer<typeof startMessage>;
