/**
 * The shapes the API sends and takes, as zod schemas: they type the routes, check requests, and
 * are what /api/openapi.json is generated from. They describe the records of src/core as they
 * travel in JSON (an undefined field is absent).
 */
import { z } from "@hono/zod-openapi";
import type { Tags } from "../core/json.ts";
import { BOARD_NAME } from "../core/run-definition.ts";
import { TASK_STATUSES } from "../core/tasks.ts";

/** A route's JSON response, for its documentation and its handler's type. */
export const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });

/** A log position or count in a query string or header: digits only, as a number. */
export const position = (description: string) =>
  z
    .string()
    .regex(/^\d{1,15}$/, { message: "must be a whole number >= 0" })
    .transform(Number)
    .openapi({ type: "integer", minimum: 0, description });

/** A page size: 1 to `max`. */
export const limit = (max: number, description: string) =>
  z
    .string()
    .regex(/^\d{1,15}$/, { message: "must be a whole number" })
    .transform(Number)
    .refine((n) => n >= 1 && n <= max, { message: `must be from 1 to ${max}` })
    .openapi({ type: "integer", minimum: 1, maximum: max, description });

export const boardName = z.string().regex(BOARD_NAME, { message: "board names are 1 to 64 letters, digits, '-' or '_'" });

/**
 * A run's or an agent's id as Colony makes them (`run-mwrbdf3e-669ef5`): checked here because a
 * store may not take any other as a key (NATS refuses spaces, dots and wildcards).
 */
export const recordId = (name: string) =>
  z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/, { message: "is an id as Colony makes them: letters, digits, - and _" })
    .openapi({ param: { name, in: "path" }, example: "run-mwrbdf3e-669ef5" });

/** `?board=`: a task board, default "default". */
export const taskBoardQuery = z.object({ board: boardName.optional().openapi({ description: 'The task board; default "default"' }) });

// Typed as the board's own (read-only) tags; documented as the object they are in JSON.
const tags = z
  .custom<Tags>()
  .openapi({ type: "object", additionalProperties: true, description: "Name → JSON value", example: { status: "pending_review", confidence: 0.85 } });

export const entrySchema = z
  .object({
    key: z.string(),
    value: z.unknown(),
    author: z.string(),
    version: z.number().int(),
    createdAt: z.number().openapi({ description: "Milliseconds since the epoch" }),
    updatedAt: z.number(),
    tags,
  })
  .openapi("Entry");

export const logRecordSchema = z
  .object({
    seq: z.number().int(),
    op: z.enum(["write", "delete"]),
    key: z.string(),
    version: z.number().int(),
    author: z.string(),
    at: z.number(),
    value: z.unknown().openapi({ description: "The value written; null for a delete" }),
    tags,
  })
  .openapi("LogRecord");

export const boardSummarySchema = z.object({ name: z.string(), entries: z.number().int(), seq: z.number().int() }).openapi("BoardSummary");

const routeSchema = z.discriminatedUnion("mode", [
  z.object({ mode: z.literal("any") }),
  z.object({ mode: z.literal("direct"), worker: z.string() }),
  z.object({ mode: z.literal("broadcast") }),
]);

export const taskSchema = z
  .object({
    id: z.string(),
    kind: z.string(),
    capability: z.string(),
    input: z.unknown(),
    status: z.enum(TASK_STATUSES),
    generation: z.number().int(),
    dependsOn: z.array(z.string()),
    parentId: z.string().optional(),
    owner: z.string().optional(),
    leaseUntil: z.number().optional(),
    leaseMs: z.number().optional(),
    attempts: z.number().int(),
    maxAttempts: z.number().int(),
    priority: z.number(),
    result: z.unknown(),
    error: z.string().optional(),
    reason: z.string().optional(),
    failures: z.array(
      z.object({ attempt: z.number().int(), worker: z.string().optional(), at: z.number(), kind: z.enum(["error", "lease"]), error: z.string() }),
    ),
    route: routeSchema,
    assignee: z.string().optional(),
    assignedUntil: z.number().optional(),
    fallback: z.string().optional(),
    runAfter: z.number().optional(),
    timeoutMs: z.number().optional(),
    backoff: z.object({ baseMs: z.number(), maxMs: z.number() }),
    idempotencyKey: z.string().optional(),
    createdAt: z.number(),
    updatedAt: z.number(),
  })
  .openapi("Task");

export const taskEventSchema = z
  .object({
    seq: z.number().int(),
    at: z.number(),
    type: z.enum(["submitted", "unblocked", "claimed", "released", "retrying", "succeeded", "failed", "dead", "cancelled", "reassigned"]),
    task: taskSchema,
  })
  .openapi("TaskEvent");

/** What `POST /api/tasks` takes. The task board checks the finer rules (id syntax, ranges) and says which field is wrong. */
export const submitSchema = z
  .strictObject({
    id: z.string().optional().openapi({ description: "Default: one the board picks" }),
    kind: z.string(),
    input: z.unknown().optional(),
    dependsOn: z.array(z.string()).optional(),
    parentId: z.string().optional(),
    priority: z.number().int().optional(),
    maxAttempts: z.number().int().optional(),
    timeoutMs: z.number().int().optional(),
    idempotencyKey: z.string().optional().openapi({ description: "Or the Idempotency-Key header: a second submit with it returns the first task" }),
    capability: z.string().optional(),
    route: routeSchema.optional(),
    backoff: z.strictObject({ baseMs: z.number().int().optional(), maxMs: z.number().int().optional() }).optional(),
  })
  .openapi("SubmitRequest");

const usage = z.object({ tokens: z.number(), costUsd: z.number(), turns: z.number() });

export const runInfoSchema = z
  .object({
    runId: z.string(),
    name: z.string(),
    board: z.string(),
    status: z.enum(["running", "finished"]),
    stopReason: z.enum(["goal", "quiescence", "deadlock", "max_steps", "budget", "aborted", "error"]).optional(),
    error: z.string().optional(),
    startedAt: z.number(),
    endedAt: z.number().optional(),
    steps: z.number().int(),
    totalTokens: z.number(),
    totalCostUsd: z.number(),
    durationMs: z.number().optional(),
  })
  .openapi("RunInfo");

export const stepSchema = z
  .object({
    index: z.number().int(),
    startedAt: z.number(),
    seq: z.number().int().openapi({ description: "The board's log position after the step" }),
    fired: z.array(
      z.looseObject({
        agent: z.string(),
        read: z.array(z.string()),
        written: z.array(z.string()),
        tokens: z.number(),
        costUsd: z.number(),
        ms: z.number(),
        error: z.string().optional(),
        conflict: z.boolean().optional(),
        overBudget: z.boolean().optional(),
        logs: z.array(z.string()).optional(),
        calls: z.array(z.looseObject({ model: z.string(), turn: z.number() })).optional(),
      }),
    ),
  })
  .openapi("StepRecord");

export const definitionSchema = z.object({ name: z.string(), board: z.string(), agents: z.array(z.string()) }).openapi("RunDefinitionSummary");

const AGENT_STATES = ["created", "running", "waiting", "awaiting_approval", "succeeded", "failed", "terminated"] as const;
export const agentStateSchema = z.enum(AGENT_STATES);

export const agentSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    parentId: z.string().optional(),
    depth: z.number().int(),
    state: agentStateSchema,
    generation: z.number().int(),
    isolation: z.enum(["inline", "thread", "process"]),
    delivery: z.enum(["streaming", "immediate", "deferred", "on_demand"]).optional(),
    pid: z.number().int().optional(),
    ownerPid: z.number().int(),
    ownerHost: z.string().optional(),
    startedAt: z.number(),
    endedAt: z.number().optional(),
    usage: z.object({ tokens: z.number(), costUsd: z.number(), turns: z.number() }).openapi({ description: "Tokens and cost count the agent and its descendants; turns are its own" }),
    reason: z.enum(["error", "crash", "timeout", "terminated", "budget"]).optional(),
    error: z.string().optional(),
  })
  .openapi("AgentRecord");

export interface AgentTreeNode {
  id: string;
  name: string;
  state: z.infer<typeof agentStateSchema>;
  own: z.infer<typeof usage>;
  total: z.infer<typeof usage>;
  record?: z.infer<typeof agentSchema>;
  children: AgentTreeNode[];
}

export const agentTreeSchema: z.ZodType<AgentTreeNode> = z
  .object({
    id: z.string(),
    name: z.string(),
    state: agentStateSchema,
    own: usage.openapi({ description: "What the agent spent itself" }),
    total: usage.openapi({ description: "What it and its descendants spent" }),
    record: agentSchema.optional().openapi({ description: "Its registry record (absent if it left the registry meanwhile)" }),
    get children() {
      return z.array(agentTreeSchema);
    },
  })
  .openapi("AgentTreeNode");

export const approvalSchema = z
  .object({
    id: z.string(),
    status: z.enum(["pending", "approved", "denied", "abandoned"]),
    tool: z.string(),
    args: z.unknown(),
    agentId: z.string(),
    agentName: z.string(),
    path: z.array(z.string()),
    rootId: z.string(),
    requestedAt: z.number(),
    owner: z.object({ pid: z.number().int(), host: z.string() }),
    decidedAt: z.number().optional(),
    decidedBy: z.string().optional(),
    reason: z.string().optional(),
  })
  .openapi("ApprovalRecord");

export const nodeStatusSchema = z.enum(["online", "busy", "draining", "offline", "stopped"]);

export const nodeSchema = z
  .object({
    id: z.string(),
    status: nodeStatusSchema,
    capabilities: z.array(z.string()),
    load: z.number().openapi({ description: "Running tasks / concurrency" }),
    running: z.number().int(),
    concurrency: z.number().int(),
    runningTasks: z.array(z.string()),
    host: z.string(),
    pid: z.number().int(),
    heartbeatAt: z.number(),
    heartbeatAgeMs: z.number().openapi({ description: "Milliseconds since its last heartbeat, by the server's clock" }),
    coordinator: z.boolean(),
  })
  .openapi("Node");

/** A node's own answer to a drain request. */
export const nodeInfoSchema = z
  .object({
    id: z.string(),
    host: z.string(),
    pid: z.number().int(),
    status: nodeStatusSchema,
    capabilities: z.array(z.string()),
    concurrency: z.number().int(),
    running: z.array(z.string()),
    coordinator: z.boolean(),
  })
  .openapi("NodeInfo");

const counts = z.object({ pending: z.number().int(), blocked: z.number().int(), running: z.number().int() });

export const statusSchema = z
  .object({
    backend: z.object({ kind: z.string(), location: z.string() }),
    tasks: z.string().openapi({ description: "The task board" }),
    coordinator: z.string().nullable(),
    queue: z.record(z.string(), counts).openapi({ description: "By task kind" }),
    running: z.array(z.object({ id: z.string(), kind: z.string(), owner: z.string().optional(), attempt: z.number().int(), forMs: z.number() })),
    workers: z.record(nodeStatusSchema, z.number().int()),
    rejected: z.object({ count: z.number().int(), last: z.array(z.string()) }).optional().openapi({ description: "Messages on the store's logs that Colony did not write, skipped (NATS only)" }),
  })
  .openapi("Status");
