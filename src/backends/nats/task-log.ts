/**
 * What a message on a task board's stream must hold to be folded in: a write set as Colony's
 * transactions publish them (see task-state.ts), whose tasks, workers and events have the shapes
 * the engine and `watch()` rely on. Anyone with access can publish on the subject; one message that
 * is not this must be skipped, not folded, or every client's fold throws from then on.
 */
import { z } from "zod";
import { TASK_STATUSES, type Task, type TaskEventType } from "../../core/tasks.ts";
import { TaskState, type TaskChanges } from "../task-state.ts";

const EVENT_TYPES = ["submitted", "unblocked", "claimed", "released", "retrying", "succeeded", "failed", "dead", "cancelled", "reassigned"] as const satisfies readonly TaskEventType[];
// A new event type must be added above, or its events would be skipped as foreign.
const everyEventType: Record<Exclude<TaskEventType, (typeof EVENT_TYPES)[number]>, never> = {};
void everyEventType;

const whole = z.number().int();
const time = z.number();

// z.object, not strictObject: a newer Colony may add fields, and the JSON text is kept as read.
export const taskSchema = z.object({
  id: z.string(),
  kind: z.string(),
  capability: z.string(),
  input: z.unknown().optional(),
  status: z.enum(TASK_STATUSES),
  generation: whole.min(0),
  dependsOn: z.array(z.string()),
  parentId: z.string().optional(),
  owner: z.string().optional(),
  leaseUntil: time.optional(),
  leaseMs: time.optional(),
  attempts: whole.min(0),
  maxAttempts: whole.min(1),
  priority: z.number(),
  result: z.unknown().optional(),
  error: z.string().optional(),
  reason: z.string().optional(),
  failures: z.array(z.object({ attempt: whole, worker: z.string().optional(), at: time, kind: z.enum(["error", "lease"]), error: z.string() })),
  route: z.discriminatedUnion("mode", [z.object({ mode: z.literal("any") }), z.object({ mode: z.literal("direct"), worker: z.string() }), z.object({ mode: z.literal("broadcast") })]),
  assignee: z.string().optional(),
  assignedUntil: time.optional(),
  fallback: z.string().optional(),
  runAfter: time.optional(),
  timeoutMs: time.optional(),
  backoff: z.object({ baseMs: time, maxMs: time }),
  idempotencyKey: z.string().optional(),
  trace: z.object({ traceparent: z.string(), tracestate: z.string().optional() }).optional(),
  settling: z.object({ cancel: z.string().optional() }).optional(),
  createdAt: time,
  updatedAt: time,
});

const workerSchema = z.object({
  id: z.string(),
  capabilities: z.array(z.string()),
  concurrency: whole.min(1),
  running: whole.min(0),
  status: z.enum(["online", "draining", "offline", "stopped"]),
  pid: whole,
  host: z.string(),
  local: z.boolean(),
  startedAt: time,
  heartbeatAt: time,
  ttlMs: time,
  push: z.object({ leaseMs: time }).optional(),
});

const eventSchema = z.object({ seq: whole, at: time, type: z.enum(EVENT_TYPES), task: taskSchema });
/** An event without its task, for one whose task is the text of a task of the same write set, checked already. */
const eventHeadSchema = z.object({ seq: whole, at: time, type: z.enum(EVENT_TYPES) });
const TASK_FIELD = ',"task":';

const changesSchema = z.object({
  tasks: z.array(z.tuple([z.string(), z.string().nullable()])),
  workers: z.array(z.tuple([z.string(), z.string().nullable()])),
  events: z.array(z.string()),
  nextId: whole.min(1),
  horizon: whole.min(0).optional(),
  expect: z.object({ tasks: z.array(z.tuple([z.string(), whole.min(0)])), workers: z.array(z.tuple([z.string(), whole.min(0)])) }).optional(),
  touched: z.array(z.string()).optional(),
  id: z.string().max(64).optional(),
});

/** A write set that was checked, with its tasks as the check read them (undefined where one is removed). */
export type ReadChanges = { ok: true; changes: TaskChanges; parsed: (Task | undefined)[] } | { ok: false; reason: string };

/** The write set in `data`, if it is one that can follow `state`; otherwise why not. */
export function readChanges(data: Uint8Array, state: TaskState): ReadChanges {
  const parsed = parseJson(Buffer.from(data).toString("utf8"));
  if (parsed === undefined) return { ok: false, reason: "not JSON" };
  return checkChanges(parsed, state);
}

/** `parsed` as a write set, if it is one that can follow `state`; otherwise why not. */
export function checkChanges(parsed: unknown, state: TaskState): ReadChanges {
  const envelope = changesSchema.safeParse(parsed);
  if (!envelope.success) return refused("not a write set", envelope.error);
  const changes = envelope.data;
  // Ids come from nextId: a fold that moved it back would hand out ids already taken. (A write
  // set decided as it is folded may have read an older nextId; the fold keeps the larger.)
  if (!changes.expect && changes.nextId < state.nextId) return { ok: false, reason: `nextId ${changes.nextId} is behind the board's ${state.nextId}` };
  const checked = new Set<string>();
  const read: (Task | undefined)[] = [];
  for (const [id, json] of changes.tasks) {
    if (json === null) {
      read.push(undefined);
      continue;
    }
    const task = taskSchema.safeParse(parseJson(json));
    if (!task.success) return refused(`task ${JSON.stringify(id)}`, task.error);
    if (task.data.id !== id) return { ok: false, reason: `task ${JSON.stringify(id)} holds task ${JSON.stringify(task.data.id)}` };
    checked.add(json);
    // What the schema read, for the folded state's lookups (a newer Colony's extra fields are in the kept text).
    read.push(task.data as Task);
  }
  for (const [id, json] of changes.workers) {
    if (json === null) continue;
    const worker = workerSchema.safeParse(parseJson(json));
    if (!worker.success) return refused(`worker ${JSON.stringify(id)}`, worker.error);
    if (worker.data.id !== id) return { ok: false, reason: `worker ${JSON.stringify(id)} holds worker ${JSON.stringify(worker.data.id)}` };
  }
  for (const [i, json] of changes.events.entries()) {
    // An event carries the task as it was written in the same write set (see StagedTaskTx.put):
    // that text was checked above, and checking it again would double the cost of a fold.
    const cut = json.indexOf(TASK_FIELD);
    const known = cut > 0 && json.endsWith("}") && checked.has(json.slice(cut + TASK_FIELD.length, -1));
    const event = known ? eventHeadSchema.safeParse(parseJson(`${json.slice(0, cut)}}`)) : eventSchema.safeParse(parseJson(json));
    if (!event.success) return refused(`event ${i}`, event.error);
    // Events are read back by position: a seq out of line would shift every later one. (Those of
    // a write set decided as it is folded are numbered as it is applied.)
    const seq = state.head + i + 1;
    if (!changes.expect && event.data.seq !== seq) return { ok: false, reason: `event ${i} has seq ${event.data.seq}, not ${seq}` };
  }
  if (changes.horizon !== undefined && changes.horizon > state.head + changes.events.length) {
    return { ok: false, reason: `horizon ${changes.horizon} is past the board's last event ${state.head + changes.events.length}` };
  }
  return { ok: true, changes, parsed: read };
}

const snapshotHeadSchema = z.object({ nextId: whole.min(1), horizon: whole.min(0), version: whole.min(0).optional() });

/**
 * The state a snapshot's lines (see `TaskState.snapshot`) hold, checked as a write set is: what
 * was not written by Colony (or was cut short) is refused with the reason, never half loaded.
 */
export function restoreState(lines: readonly string[]): { ok: true; state: TaskState } | { ok: false; reason: string } {
  const head = snapshotHeadSchema.safeParse(parseJson(lines[0] ?? ""));
  if (!head.success) return refused("snapshot header", head.error);
  const changes: TaskChanges = { tasks: [], workers: [], events: [], nextId: head.data.nextId };
  const revisions: number[] = [];
  const workerRevisions: number[] = [];
  let finished: string[] = [];
  for (const [i, line] of lines.entries()) {
    if (i === 0) continue;
    const tag = line.slice(0, 5);
    // A task or worker line holds its revision before its text (a snapshot from before revisions: 0).
    const revision = /^\d+,/.exec(line.slice(5));
    const json = line.slice(5 + (revision?.[0].length ?? 0), -1);
    if (tag === '["t",') {
      changes.tasks.push([idOf(json), json]);
      revisions.push(revision ? Number.parseInt(revision[0], 10) : 0);
    } else if (tag === '["w",') {
      changes.workers.push([idOf(json), json]);
      workerRevisions.push(revision ? Number.parseInt(revision[0], 10) : 0);
    } else if (tag === '["e",') changes.events.push(json);
    else if (tag === '["f",') {
      const ids = z.array(z.string()).safeParse(parseJson(json));
      if (!ids.success) return refused(`snapshot line ${i}`, ids.error);
      finished = ids.data;
    } else return { ok: false, reason: `snapshot line ${i} is not a task, worker, event or ending order` };
  }
  const state = new TaskState();
  state.horizon = head.data.horizon;
  const checked = checkChanges(changes, state);
  if (!checked.ok) return checked;
  state.apply(checked.changes, checked.parsed);
  state.orderFinished(finished);
  // As they were where the snapshot was taken, so that write sets after it are decided alike by
  // a client that starts from it and by one that folded the log.
  state.version = head.data.version ?? 0;
  for (const [i, [id]] of changes.tasks.entries()) state.revisions.set(id, revisions[i]!);
  for (const [i, [id]] of changes.workers.entries()) state.workerRevisions.set(id, workerRevisions[i]!);
  return { ok: true, state };
}

/**
 * A task's or worker's id, read from the opening `{"id":…` that Colony writes them with rather than
 * by parsing the whole text twice (the check that follows parses it); any other text is parsed.
 */
function idOf(json: string): string {
  const opening = /^\{"id":("(?:[^"\\]|\\.)*")/.exec(json);
  const id = parseJson(opening ? opening[1]! : json);
  const found = opening ? id : (id as { id?: unknown } | undefined)?.id;
  return typeof found === "string" ? found : "";
}

/** Not JSON reads as undefined, which no schema here accepts. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function refused(what: string, error: z.ZodError): { ok: false; reason: string } {
  const issue = error.issues[0];
  const where = issue?.path.length ? ` at ${issue.path.join(".")}` : "";
  return { ok: false, reason: `${what}${where}: ${issue?.message ?? "invalid"}` };
}
