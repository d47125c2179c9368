/**
 * Thin workers: on a swarm, a worker does not fold the task board's log itself. It asks the
 * board's coordinator, over the bus, to claim, complete, fail, heartbeat and release for it, and
 * hears from the coordinator when there is work (a wake per capability) and when a task it runs
 * was taken from it (a stale notice to that worker). Only the coordinator follows the log, so the
 * cost of a task does not grow with the number of workers: every worker folding every message was
 * what made four workers slower than one.
 *
 * Correctness does not rest on the coordinator being unique or alive. Every operation is the
 * board's own (compare-and-set per task, decided in the log), so two coordinators at once (one
 * deposed but not yet aware) only answer alike, and a worker that gets no answer (no coordinator
 * yet, one that died, an answer too large for the bus) does the operation on its own board, as a
 * worker of an embedded board does. An answer lost after the operation was done costs next to
 * nothing: a worker that gave up on an answer takes up the tasks the board says it holds and it
 * does not know of, and a completion the coordinator did is known as such by the generation it
 * led to. A coordinator alive but slower than the worker's patience may still claim for a worker
 * after it looked: such a claim lapses with its lease and the task is retried.
 */
import { z } from "zod";
import { BusRequestError, ColonyError, describeError } from "../../core/errors.ts";
import { toJson } from "../../core/json.ts";
import type { TaskBoard, WorkerRegistration } from "../../core/task-board.ts";
import { HorizonError, StaleTaskError, TASK_STATUSES, type ClaimRequest, type Task } from "../../core/tasks.ts";
import { taskSchema } from "../../backends/nats/task-log.ts";
import { BusMessageError, channel, subjectToken, type Bus } from "../bus.ts";

/**
 * A task as the operations that change a held task answer: what a worker goes on with, not its
 * input, result, failures or dependencies, whose size has no bound the bus would keep.
 */
export type TaskOutline = Pick<Task, "id" | "kind" | "status" | "generation" | "attempts" | "owner" | "leaseUntil">;

/** What a worker asks of its task board: a `TaskBoard` is one, and so is a `ServedBoard`. */
export interface WorkerBoard {
  claimMany(request: ClaimRequest & { max: number }, options?: { heard?: boolean }): Promise<Task[]>;
  completeAndClaim(id: string, result: unknown, options: { generation: number }, next?: ClaimRequest & { max: number }): Promise<{ task: TaskOutline; claimed: Task[] }>;
  fail(id: string, error: string, options: { generation: number; retryable?: boolean }): Promise<TaskOutline>;
  heartbeat(id: string, options: { generation: number }): Promise<TaskOutline>;
  release(id: string, options: { generation: number }): Promise<TaskOutline>;
  heartbeatWorker(worker: WorkerRegistration): Promise<unknown>;
  get(id: string): Promise<Task | undefined>;
}

// Loose where the board checks the fields itself (claims, registrations): one place says what is valid.
const claimShape = z.object({ worker: z.string(), capabilities: z.array(z.string()), leaseMs: z.number(), max: z.number() });
const held = { id: z.string(), generation: z.number() };

const opSchema = z.discriminatedUnion("op", [
  z.strictObject({ op: z.literal("claim"), request: claimShape, heard: z.boolean() }),
  z.strictObject({ op: z.literal("complete"), ...held, result: z.unknown(), next: claimShape.optional() }),
  z.strictObject({ op: z.literal("fail"), ...held, error: z.string(), retryable: z.boolean() }),
  z.strictObject({ op: z.literal("heartbeat"), ...held }),
  z.strictObject({ op: z.literal("release"), ...held }),
  z.strictObject({ op: z.literal("register"), worker: z.looseObject({ id: z.string() }) }),
  z.strictObject({ op: z.literal("get"), id: z.string() }),
]);
type Op = z.infer<typeof opSchema>;

const errorSchema = z.strictObject({
  code: z.string(),
  message: z.string(),
  /** For STALE_TASK: the task as it is, and the generation the caller held. */
  stale: z.strictObject({ id: z.string(), generation: z.number(), status: z.enum(TASK_STATUSES), owner: z.string().optional(), held: z.number() }).optional(),
});

export const taskOpChannel = channel("tasks.op", opSchema);
export const taskAnswerChannel = channel("tasks.answer", z.union([z.strictObject({ ok: z.literal(true), value: z.unknown() }), z.strictObject({ ok: z.literal(false), error: errorSchema })]));
/** There may be work for a capability: a task of it became pending. */
export const wakeChannel = channel("tasks.wake", z.strictObject({ capability: z.string() }));
/** A task a worker was running is not its own any more (cancelled, lapsed and taken by another). */
export const staleChannel = channel("tasks.stale", z.strictObject({ task: z.string(), generation: z.number().int(), status: z.enum(TASK_STATUSES) }));
type Answer = z.infer<typeof taskAnswerChannel.schema>;

// JSON drops an undefined owner or lease: each is there again, as undefined.
const outlineSchema = taskSchema
  .pick({ id: true, kind: true, status: true, generation: true, attempts: true, owner: true, leaseUntil: true })
  .transform((t): TaskOutline => ({ ...t, owner: t.owner, leaseUntil: t.leaseUntil }));
const answers = {
  claim: z.array(taskSchema),
  complete: z.object({ task: outlineSchema, claimed: z.array(taskSchema) }),
  fail: outlineSchema,
  heartbeat: outlineSchema,
  release: outlineSchema,
  register: z.unknown(),
  get: taskSchema.nullable(),
} satisfies Record<Op["op"], z.ZodType>;

/** The coordinator serves one queue group, so that two of them at once (a handover) never both do one request. */
const SERVERS = "coordinator";
/** The most wakes per capability sent for what became pending together: more than a swarm's workers would take at once. */
const MAX_WAKES = 64;
/** Room for an answer's envelope around the tasks it carries. */
const ENVELOPE_BYTES = 1024;
/** An answer that does not fit the bus: the operation was not done (claims handed back), so the asker does it itself. */
const TOO_LARGE = "ANSWER_TOO_LARGE";

export function opsSubject(board: string): string {
  return `tasks.${subjectToken(board)}.ops`;
}

export function wakeSubject(board: string, capability: string): string {
  return `tasks.${subjectToken(board)}.wake.${subjectToken(capability)}`;
}

export function staleSubject(board: string, worker: string): string {
  return `tasks.${subjectToken(board)}.stale.${subjectToken(worker)}`;
}

export interface ServeHooks {
  error: (error: string) => void;
  /**
   * A task changed (it became pending, or was claimed), told as the coordinator reads it: its own
   * worker hears of a pending task at once, not through a wake that goes out to the bus and back,
   * and of one claimed for it at submit (see `WorkerInfo.push`).
   */
  heard?: (task: Task) => void;
}

/**
 * Serves the board's operations to thin workers and announces its changes to them (wakes, stale
 * notices), until the returned stop is called. The coordinator runs this while it leads. Stopping
 * refuses new requests at once (the askers hear that nobody serves, and do the operation on their
 * own boards) and resolves once every request already taken is answered: a coordinator that
 * shuts down must not leave a worker waiting out its timeout for an answer that never comes.
 */
export function serveBoard(board: TaskBoard, bus: Bus, hooks: ServeHooks): () => Promise<void> {
  const stopped = new AbortController();
  const taken = new Set<Promise<Answer>>();
  const offOps = bus.serve(
    taskOpChannel,
    taskAnswerChannel,
    opsSubject(board.name),
    (op) => {
      const answered = answer(board, bus.maxBytes, op);
      taken.add(answered);
      void answered.finally(() => taken.delete(answered));
      return answered;
    },
    { queue: SERVERS },
  );
  void announce(board, bus, stopped.signal, hooks);
  return async () => {
    stopped.abort();
    // Taken: what the server sent before it heard of the unsubscribe. Then answered.
    await offOps();
    await Promise.allSettled([...taken]);
  };
}

async function answer(board: TaskBoard, maxBytes: number, op: Op): Promise<Answer> {
  try {
    switch (op.op) {
      case "claim":
        return await fitClaims(board, maxBytes, await board.claimMany(op.request, { heard: op.heard }), undefined);
      case "complete": {
        const { task, claimed } = await board.completeAndClaim(op.id, op.result, { generation: op.generation }, op.next);
        return await fitClaims(board, maxBytes, claimed, outline(task));
      }
      case "fail":
        return { ok: true, value: outline(await board.fail(op.id, op.error, { generation: op.generation, retryable: op.retryable })) };
      case "heartbeat":
        return { ok: true, value: outline(await board.heartbeat(op.id, { generation: op.generation })) };
      case "release":
        return { ok: true, value: outline(await board.release(op.id, { generation: op.generation })) };
      case "register":
        await board.heartbeatWorker(op.worker as unknown as WorkerRegistration);
        return { ok: true, value: null };
      case "get": {
        const task = (await board.get(op.id)) ?? null;
        if (task && bytesOf(task) + ENVELOPE_BYTES > maxBytes) return tooLarge(`task ${op.id} is over the bus limit of ${maxBytes} bytes`);
        return { ok: true, value: task };
      }
    }
  } catch (error) {
    return { ok: false, error: toWire(error) };
  }
}

/**
 * The claimed tasks that fit one answer; the rest go back to the board at once, to be claimed
 * again. If none fits, the asker is told to claim on its own board (the first in line is too
 * large to pass through the bus, and would otherwise be handed back forever).
 */
async function fitClaims(board: TaskBoard, maxBytes: number, claimed: Task[], task: TaskOutline | undefined): Promise<Answer> {
  let size = ENVELOPE_BYTES + (task ? bytesOf(task) : 0);
  let fits = 0;
  for (const claim of claimed) {
    const bytes = bytesOf(claim);
    if (size + bytes > maxBytes) break;
    size += bytes;
    fits++;
  }
  for (const back of claimed.slice(fits)) await board.release(back.id, { generation: back.generation }).catch(() => {});
  if (!task && fits === 0 && claimed.length > 0) return tooLarge(`task ${claimed[0]!.id} is over the bus limit of ${maxBytes} bytes`);
  const kept = claimed.slice(0, fits);
  return { ok: true, value: task ? { task, claimed: kept } : kept };
}

function tooLarge(message: string): Answer {
  return { ok: false, error: { code: TOO_LARGE, message } };
}

function bytesOf(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), "utf8");
}

function outline(task: Task): TaskOutline {
  const { id, kind, status, generation, attempts, owner, leaseUntil } = task;
  return { id, kind, status, generation, attempts, owner, leaseUntil };
}

function toWire(error: unknown): z.infer<typeof errorSchema> {
  if (error instanceof StaleTaskError) {
    return { code: error.code, message: error.message, stale: { id: error.taskId, generation: error.actualGeneration, status: error.status, held: error.generation, ...(error.owner !== undefined && { owner: error.owner }) } };
  }
  if (error instanceof ColonyError) return { code: error.code, message: error.message };
  return { code: "INTERNAL", message: describeError(error) };
}

function fromWire(error: z.infer<typeof errorSchema>): Error {
  if (error.stale) return new StaleTaskError({ ...error.stale, owner: error.stale.owner }, error.stale.held);
  return new ColonyError(error.code, error.message);
}

/**
 * Follows the board's changes and tells the workers what concerns them: a wake on the capability
 * of each task that became pending, and a stale notice to the worker that held a task when the
 * task moved on without it (cancelled; its lease lapsed and it was retried or taken by another).
 */
async function announce(board: TaskBoard, bus: Bus, signal: AbortSignal, hooks: ServeHooks): Promise<void> {
  while (!signal.aborted) {
    try {
      const since = await board.head();
      const owners = new Map<string, string>();
      for (const task of await board.list({ status: "claimed" })) if (task.owner !== undefined) owners.set(task.id, task.owner);
      // A wake per task that became pending, sent once the events that came together (a batch
      // submitted, a cascade) are read. Each reaches one worker with a free slot (workers listen
      // in a queue group while they have one), which claims as many as it has free; a task left
      // over is claimed by the next wake's worker, or with a completion. None for a task claimed
      // by then: one pushed to a worker is submitted pending and claimed in the same write set.
      const waking = new Map<string, string>();
      const wake = () => {
        const counts = new Map<string, number>();
        for (const capability of waking.values()) counts.set(capability, (counts.get(capability) ?? 0) + 1);
        for (const [capability, count] of counts) for (let i = 0; i < Math.min(count, MAX_WAKES); i++) bus.publish(wakeChannel, wakeSubject(board.name, capability), { capability });
        waking.clear();
      };
      for await (const { task } of board.watch({ since, signal })) {
        hooks.heard?.(task);
        if (task.status === "pending") {
          if (waking.size === 0) setImmediate(wake);
          waking.set(task.id, task.capability);
        } else {
          waking.delete(task.id);
        }
        const before = owners.get(task.id);
        if (task.status === "claimed" && task.owner !== undefined) owners.set(task.id, task.owner);
        else owners.delete(task.id);
        // Its holder recorded the result itself: nothing to tell.
        if (before !== undefined && task.status !== "succeeded" && (task.status !== "claimed" || task.owner !== before)) {
          bus.publish(staleChannel, staleSubject(board.name, before), { task: task.id, generation: task.generation, status: task.status });
        }
      }
      return;
    } catch (error) {
      // Fell behind past the board's retention: start again from now (workers poll meanwhile).
      if (error instanceof HorizonError) continue;
      if (!signal.aborted) hooks.error(`announcing task board changes: ${describeError(error)}`);
      return;
    }
  }
}

export interface ServedBoardOptions {
  /** Whether this process leads the board now: its own board answers at once. */
  leading: () => boolean;
  /** How long an operation waits for the coordinator before doing it on its own board. */
  timeoutMs: number;
  /** The tasks the worker runs now (see `#adopt`). */
  holding: () => Iterable<string>;
}

/**
 * A worker's view of a board served by its coordinator (see `serveBoard`): each operation is a
 * request on the bus, done on `local` instead when this process leads, when nobody answers in
 * time, or when the request or answer is too large for the bus.
 */
export class ServedBoard implements WorkerBoard {
  readonly #local: TaskBoard;
  readonly #bus: Bus;
  readonly #options: ServedBoardOptions;

  constructor(local: TaskBoard, bus: Bus, options: ServedBoardOptions) {
    this.#local = local;
    this.#bus = bus;
    this.#options = options;
  }

  claimMany(request: ClaimRequest & { max: number }, options: { heard?: boolean } = {}): Promise<Task[]> {
    return this.#ask({ op: "claim", request, heard: options.heard === true }, async (timedOut) => {
      const claimed = await this.#local.claimMany(request, options);
      return timedOut ? this.#adopt(request, claimed) : claimed;
    });
  }

  completeAndClaim(id: string, result: unknown, options: { generation: number }, next?: ClaimRequest & { max: number }): Promise<{ task: TaskOutline; claimed: Task[] }> {
    // Checked here, as the board checks it: a result it cannot store fails the task, whoever was asked.
    toJson(`task ${id} result`, result ?? null, this.#local.maxValueBytes);
    return this.#ask({ op: "complete", id, generation: options.generation, result: result ?? null, ...(next && { next }) }, async (timedOut) => {
      let done: { task: TaskOutline; claimed: Task[] };
      try {
        done = await this.#local.completeAndClaim(id, result, options, next);
      } catch (error) {
        // From the generation it held, only its holder's completion leads to `succeeded` at the
        // next one: the coordinator asked did it, and was gone before it answered.
        const ours = timedOut && error instanceof StaleTaskError && error.status === "succeeded" && error.actualGeneration === options.generation + 1;
        const task = ours ? await this.#local.get(id) : undefined;
        if (!task) throw error;
        done = { task: outline(task), claimed: [] };
      }
      return timedOut && next ? { ...done, claimed: await this.#adopt(next, done.claimed) } : done;
    });
  }

  /**
   * After a claim whose answer did not come in time: the tasks the board says this worker holds
   * that it does not know of (claimed for it by a coordinator that was gone before it answered)
   * are taken up as if just claimed, even past its free slots: handing one back could pull it
   * from under an answer still on its way, and a task taken up twice runs once (the worker skips
   * what it runs already).
   */
  async #adopt(request: ClaimRequest, claimed: Task[]): Promise<Task[]> {
    const known = new Set([...this.#options.holding(), ...claimed.map((t) => t.id)]);
    const orphans = (await this.#local.list({ status: "claimed" })).filter((t) => t.owner === request.worker && !known.has(t.id));
    return [...claimed, ...orphans];
  }

  fail(id: string, error: string, options: { generation: number; retryable?: boolean }): Promise<TaskOutline> {
    return this.#ask({ op: "fail", id, generation: options.generation, error, retryable: options.retryable ?? true }, () => this.#local.fail(id, error, options));
  }

  heartbeat(id: string, options: { generation: number }): Promise<TaskOutline> {
    return this.#ask({ op: "heartbeat", id, generation: options.generation }, () => this.#local.heartbeat(id, options));
  }

  release(id: string, options: { generation: number }): Promise<TaskOutline> {
    return this.#ask({ op: "release", id, generation: options.generation }, () => this.#local.release(id, options));
  }

  heartbeatWorker(worker: WorkerRegistration): Promise<unknown> {
    return this.#ask({ op: "register", worker }, () => this.#local.heartbeatWorker(worker));
  }

  async get(id: string): Promise<Task | undefined> {
    return (await this.#ask({ op: "get", id }, () => this.#local.get(id).then((t) => t ?? null))) ?? undefined;
  }

  /** Asks the coordinator; `locally` does it on this process's board instead, told whether an answer was given up on. */
  async #ask<O extends Op, T>(op: O, locally: (timedOut: boolean) => Promise<T>): Promise<T> {
    if (this.#options.leading()) return locally(false);
    let answer: Answer;
    try {
      answer = await this.#bus.request(taskOpChannel, taskAnswerChannel, opsSubject(this.#local.name), op, this.#options.timeoutMs);
    } catch (error) {
      // Nobody serves the board now, or this does not fit the bus: the board itself will do.
      if (error instanceof BusRequestError || error instanceof BusMessageError) return locally(error.code === "BUS_TIMEOUT");
      throw error;
    }
    if (!answer.ok) {
      // Too large for the bus, or a coordinator shutting down: the board itself will do.
      if (answer.error.code === TOO_LARGE || answer.error.code === "CLOSED") return locally(false);
      throw fromWire(answer.error);
    }
    const value = answers[op.op].safeParse(answer.value);
    if (!value.success) throw new BusMessageError(`the coordinator's answer to ${op.op} on task board ${this.#local.name} does not fit its schema: ${z.prettifyError(value.error)}`);
    return value.data as T;
  }
}
