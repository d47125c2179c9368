/**
 * Supervisors, after Erlang/OTP: a supervisor starts its children in order, watches their ends and
 * restarts them by strategy and restart type; past its restart intensity it terminates every child
 * and fails upward (escalation). It spawns through the colony's agent runtime, so its children are
 * ordinary sub-agents in the registry; the supervisor itself keeps no record there.
 *
 * Every decision happens on one queue, one child end at a time, so a restart in progress (with
 * its terminations and spawns) is never interleaved with the handling of another end.
 */
import { ChangeSignal } from "../../core/changes.ts";
import { ColonyError, ConfigError, describeError } from "../../core/errors.ts";
import { timedId } from "../../core/ids.ts";
import {
  SubAgentError,
  type AgentRef,
  type AnySubAgent,
  type FailureReason,
  type SpawnOptions,
  type SubAgent,
  type SubAgentHandle,
} from "../../core/subagent-types.ts";

/**
 * Which children restart when one must: `one_for_one` only that child; `one_for_all` all of them
 * (the others are terminated first); `rest_for_one` that child and every child after it in spec order.
 */
export type SupervisorStrategy = "one_for_one" | "one_for_all" | "rest_for_one";

/**
 * When a child's end calls for a restart: `permanent` always (even after a normal end);
 * `transient` only after an abnormal end (error, crash, timeout, budget — not a normal end, not a
 * termination); `temporary` never.
 */
export type RestartType = "permanent" | "transient" | "temporary";

export interface SupervisorChildSpec {
  /** Inline children may be the agent object; thread and process children are `{ module, export? }`. */
  agent: AgentRef | AnySubAgent;
  /** The input of every incarnation (each gets its own copy). */
  input?: unknown;
  restart: RestartType;
  options?: SpawnOptions;
  /** Names the child in `children()` and events; default `options.name`, then the agent's name or export. Also the spawned agent's name unless `options.name` says otherwise. */
  id?: string;
}

export interface SupervisorSpec {
  strategy: SupervisorStrategy;
  /** More restarts than this within `withinMs` escalates; default 5. */
  maxRestarts?: number;
  /** The window of the intensity limit, in ms; default 60000. */
  withinMs?: number;
  /** How long a child the supervisor terminates may take to finish cleanly before it is killed; default 2000. */
  graceMs?: number;
  /** For messages; default the supervisor's id. */
  name?: string;
  children: SupervisorChildSpec[];
}

export type SupervisorEventType = "started" | "restarted" | "child.ended" | "escalated" | "stopped";

/**
 * Why an event happened. `child.ended`: `normal` (a result), `shutdown` (terminated by the
 * supervisor) or the child's failure reason. `restarted`: the end that caused the restart (see
 * `trigger`). `escalated`: `intensity` (too many restarts) or `refused` (a restart could not spawn).
 * `stopped`: `stop` (asked to) or `normal` (every child ended with nothing to restart).
 */
export type SupervisorEventReason = "start" | "normal" | "shutdown" | FailureReason | "intensity" | "refused" | "stop";

export interface SupervisorEvent {
  type: SupervisorEventType;
  /** The child's spec id; for `escalated` the child whose end was one too many; undefined for `stopped`. */
  child: string | undefined;
  /** The agent id: of the new incarnation for `started`/`restarted`, of the one that ended for `child.ended`. */
  agentId?: string;
  reason: SupervisorEventReason;
  /** For `restarted`: the child whose end caused the restart. */
  trigger?: string;
  /** A human-readable account (the child's error, the limit that was passed). */
  detail?: string;
  at: number;
}

export interface Supervisor {
  readonly id: string;
  readonly name: string;
  /** The latest incarnation of each child that was started, by child id, in spec order (ended ones included). */
  children(): ReadonlyMap<string, SubAgentHandle>;
  /**
   * Resolves once every child has ended with nothing left to restart, or after `stop()`; rejects
   * with `SupervisorEscalationError` past the intensity limit, after all children were terminated.
   */
  readonly result: Promise<void>;
  /** Every event since the start (the last 1000 at most), then those to come; ends with `stopped` or `escalated`. */
  readonly events: AsyncIterable<SupervisorEvent>;
  /** Terminates every child (last first) and resolves `result`; does nothing more once the supervisor has ended. */
  stop(): Promise<void>;
}

/** The supervisor passed its restart intensity (or could not restart a child) and gave up; its children were terminated. */
export class SupervisorEscalationError extends ColonyError {
  readonly supervisorId: string;
  /** The child whose end the supervisor could not absorb. */
  readonly child: string;
  readonly reason: "intensity" | "refused";

  constructor(supervisorId: string, name: string, child: string, reason: "intensity" | "refused", detail: string, options?: { cause?: unknown }) {
    super("SUPERVISOR_ESCALATED", `supervisor ${name} escalated: ${detail}`, options);
    this.supervisorId = supervisorId;
    this.child = child;
    this.reason = reason;
  }
}

/** How the supervisor starts a child: the colony's runtime, as a top-level spawn. */
export type SupervisorSpawner = (agent: AgentRef | AnySubAgent, input: unknown, options: SpawnOptions) => Promise<SubAgentHandle>;

const STRATEGIES: readonly SupervisorStrategy[] = ["one_for_one", "one_for_all", "rest_for_one"];
const RESTARTS: readonly RestartType[] = ["permanent", "transient", "temporary"];
const DEFAULT_MAX_RESTARTS = 5;
const DEFAULT_WITHIN_MS = 60_000;
const DEFAULT_GRACE_MS = 2000;
const MAX_KEPT_EVENTS = 1000;

interface Slot {
  readonly id: string;
  readonly index: number;
  readonly spec: SupervisorChildSpec;
  handle: SubAgentHandle | undefined;
  /** The current incarnation has not ended (as far as the supervisor has handled). */
  running: boolean;
  /** A temporary child that ended: it is never started again. */
  removed: boolean;
}

type Outcome = { ok: true } | { ok: false; error: unknown };

const show = (value: unknown): string => (typeof value === "string" ? JSON.stringify(value) : String(value));

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Checks a spec before anything starts; returns the children with their ids. */
function validate(spec: SupervisorSpec): { id: string; spec: SupervisorChildSpec }[] {
  if (!isRecord(spec)) throw new ConfigError("supervise takes { strategy, children, maxRestarts?, withinMs?, graceMs?, name? }");
  if (!STRATEGIES.includes(spec.strategy)) {
    throw new ConfigError(`strategy is one_for_one, one_for_all or rest_for_one, got ${show(spec.strategy)}`);
  }
  if (spec.maxRestarts !== undefined && (!Number.isInteger(spec.maxRestarts) || spec.maxRestarts < 0)) {
    throw new ConfigError(`maxRestarts is a whole number >= 0, got ${show(spec.maxRestarts)}`);
  }
  for (const field of ["withinMs", "graceMs"] as const) {
    const value = spec[field];
    const min = field === "withinMs" ? "> 0" : ">= 0";
    if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (field === "withinMs" && value === 0))) {
      throw new ConfigError(`${field} is a number of milliseconds ${min}, got ${show(value)}`);
    }
  }
  if (spec.name !== undefined && (typeof spec.name !== "string" || spec.name === "")) throw new ConfigError(`name is a non-empty string, got ${show(spec.name)}`);
  if (!Array.isArray(spec.children)) throw new ConfigError(`children is an array of { agent, restart, input?, options?, id? }, got ${show(spec.children)}`);
  if (spec.children.length === 0) throw new ConfigError("a supervisor needs at least one child; children is empty");

  const seen = new Map<string, number>();
  return spec.children.map((child, index) => {
    const at = `children[${index}]`;
    if (!isRecord(child as unknown)) throw new ConfigError(`${at} is { agent, restart, input?, options?, id? }, got ${show(child)}`);
    if (child.id !== undefined && (typeof child.id !== "string" || child.id === "")) throw new ConfigError(`${at}: id is a non-empty string, got ${show(child.id)}`);
    const agent = child.agent as unknown;
    const byRef = isRecord(agent) && "module" in agent;
    if (byRef ? typeof agent.module !== "string" && !(agent.module instanceof URL) : !isRecord(agent) || (typeof agent.run !== "function" && typeof agent.turn !== "function")) {
      throw new ConfigError(`${at}: agent is an agent object ({ name, run } or { name, turn }) or a reference { module, export? }`);
    }
    if (child.options !== undefined && !isRecord(child.options)) throw new ConfigError(`${at}: options are spawn options (an object), got ${show(child.options)}`);
    const ref = child.agent as Partial<AgentRef & SubAgent>;
    const id = child.id ?? (child.options as SpawnOptions | undefined)?.name ?? ref.name ?? ref.export ?? (ref.module === undefined ? undefined : String(ref.module)) ?? `child-${index}`;
    const label = `${at} (${JSON.stringify(id)})`;
    if (!RESTARTS.includes(child.restart)) {
      throw new ConfigError(`${label}: restart is permanent, transient or temporary, got ${show(child.restart)}`);
    }
    const isolation = child.options?.isolation ?? "inline";
    if (isolation !== "inline" && !byRef) {
      throw new ConfigError(`${label}: a ${String(isolation)} child loads its code itself: pass { module, export } instead of the agent object`);
    }
    const before = seen.get(id);
    if (before !== undefined) {
      throw new ConfigError(`children[${before}] and children[${index}] both have the id ${JSON.stringify(id)}; give each child a distinct id`);
    }
    seen.set(id, index);
    return { id, spec: child };
  });
}

function failureReason(error: unknown): FailureReason {
  return error instanceof SubAgentError ? error.reason : "error";
}

class RunningSupervisor implements Supervisor {
  readonly id: string;
  readonly name: string;
  readonly result: Promise<void>;
  readonly #spawn: SupervisorSpawner;
  readonly #strategy: SupervisorStrategy;
  readonly #maxRestarts: number;
  readonly #withinMs: number;
  readonly #graceMs: number;
  readonly #slots: Slot[];
  /** When each restart within the window happened. */
  #restarts: number[] = [];
  #queue: Promise<void> = Promise.resolve();
  /** `stopping` once stop or escalation began: ends are recorded, nothing restarts. */
  #state: "running" | "stopping" | "ended" = "running";
  readonly #events: SupervisorEvent[] = [];
  #dropped = 0;
  readonly #changes = new ChangeSignal();
  #resolve!: () => void;
  #reject!: (error: Error) => void;

  constructor(spec: SupervisorSpec, children: { id: string; spec: SupervisorChildSpec }[], spawn: SupervisorSpawner) {
    this.id = timedId("sup");
    this.name = spec.name ?? this.id;
    this.#spawn = spawn;
    this.#strategy = spec.strategy;
    this.#maxRestarts = spec.maxRestarts ?? DEFAULT_MAX_RESTARTS;
    this.#withinMs = spec.withinMs ?? DEFAULT_WITHIN_MS;
    this.#graceMs = spec.graceMs ?? DEFAULT_GRACE_MS;
    this.#slots = children.map(({ id, spec: child }, index) => ({ id, index, spec: child, handle: undefined, running: false, removed: false }));
    this.result = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Escalation is reported through `result`; one nobody awaits must not crash the process.
    this.result.catch(() => {});
  }

  children(): ReadonlyMap<string, SubAgentHandle> {
    const map = new Map<string, SubAgentHandle>();
    for (const slot of this.#slots) if (slot.handle) map.set(slot.id, slot.handle);
    return map;
  }

  get events(): AsyncIterable<SupervisorEvent> {
    return { [Symbol.asyncIterator]: () => this.#replay() };
  }

  async *#replay(): AsyncGenerator<SupervisorEvent> {
    let next = 0;
    for (;;) {
      const seen = this.#changes.version;
      next = Math.max(next, this.#dropped);
      while (next < this.#dropped + this.#events.length) yield this.#events[next++ - this.#dropped]!;
      if (this.#changes.closed) return;
      await this.#changes.waitPast(seen);
    }
  }

  stop(): Promise<void> {
    if (this.#state !== "running") return this.result.catch(() => {});
    this.#state = "stopping";
    return this.#enqueue(async () => {
      await this.#terminateAll();
      this.#finish({ type: "stopped", child: undefined, reason: "stop", at: Date.now() });
    });
  }

  /** Starts the children in spec order; if one cannot start, terminates those that did and throws. */
  start(): Promise<void> {
    return this.#enqueue(async () => {
      for (const slot of this.#slots) {
        try {
          await this.#launch(slot, "started", "start");
        } catch (error) {
          this.#state = "stopping";
          await this.#terminateAll();
          this.#state = "ended";
          this.#changes.close();
          this.#reject(error instanceof Error ? error : new Error(String(error)));
          throw error;
        }
      }
    });
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => {});
    return run;
  }

  #emit(event: SupervisorEvent): void {
    this.#events.push(event);
    if (this.#events.length > MAX_KEPT_EVENTS) {
      this.#events.shift();
      this.#dropped++;
    }
    this.#changes.bump();
  }

  /** Emits the last event, settles `result` and closes the event stream. */
  #finish(event: SupervisorEvent, error?: Error): void {
    this.#state = "ended";
    this.#emit(event);
    this.#changes.close();
    if (error) this.#reject(error);
    else this.#resolve();
  }

  async #launch(slot: Slot, type: "started" | "restarted", reason: SupervisorEventReason, trigger?: string): Promise<void> {
    const options: SpawnOptions = { ...slot.spec.options, name: slot.spec.options?.name ?? slot.id };
    const handle = await this.#spawn(slot.spec.agent, slot.spec.input, options);
    slot.handle = handle;
    slot.running = true;
    this.#emit({ type, child: slot.id, agentId: handle.id, reason, ...(trigger !== undefined && { trigger }), at: Date.now() });
    void handle.result.then(
      (): Outcome => ({ ok: true }),
      (error: unknown): Outcome => ({ ok: false, error }),
    ).then((outcome) =>
      this.#enqueue(() => this.#ended(slot, handle, outcome)).catch((error: unknown) =>
        this.#escalate(slot, "refused", `could not handle the end of ${slot.id}: ${describeError(error)}`, error),
      ),
    );
  }

  /** One child's end, as it comes off the queue. */
  async #ended(slot: Slot, handle: SubAgentHandle, outcome: Outcome): Promise<void> {
    // An incarnation the supervisor already replaced or terminated: its end was handled then.
    if (this.#state === "ended" || slot.handle !== handle || !slot.running) return;
    slot.running = false;
    const reason: SupervisorEventReason = outcome.ok ? "normal" : failureReason(outcome.error);
    this.#emit({
      type: "child.ended",
      child: slot.id,
      agentId: handle.id,
      reason,
      ...(!outcome.ok && { detail: describeError(outcome.error) }),
      at: Date.now(),
    });
    if (this.#state !== "running") return;

    const restart = slot.spec.restart === "permanent" || (slot.spec.restart === "transient" && reason !== "normal" && reason !== "terminated");
    if (!restart) {
      if (slot.spec.restart === "temporary") slot.removed = true;
      if (!this.#slots.some((s) => s.running)) this.#finish({ type: "stopped", child: undefined, reason: "normal", at: Date.now() });
      return;
    }

    const now = Date.now();
    this.#restarts = this.#restarts.filter((at) => now - at < this.#withinMs);
    this.#restarts.push(now);
    if (this.#restarts.length > this.#maxRestarts) {
      await this.#escalate(
        slot,
        "intensity",
        `${this.#restarts.length} restarts within ${this.#withinMs} ms (at most ${this.#maxRestarts}); the last after ${slot.id} ended (${reason})`,
      );
      return;
    }

    const affected =
      this.#strategy === "one_for_one" ? [slot] : this.#strategy === "one_for_all" ? this.#slots : this.#slots.slice(slot.index);
    // As OTP does: the others are terminated last first; temporary ones among them are dropped.
    for (const other of [...affected].reverse()) if (other.running) await this.#shutdown(other);
    for (const target of affected) {
      if (target.removed) continue;
      if (this.#state !== "running") return;
      try {
        await this.#launch(target, "restarted", reason, slot.id);
      } catch (error) {
        await this.#escalate(target, "refused", `could not restart ${target.id}: ${describeError(error)}`, error);
        return;
      }
    }
  }

  /** Terminates one running child and records its end (`shutdown` unless it ended otherwise first). */
  async #shutdown(slot: Slot): Promise<void> {
    const handle = slot.handle!;
    slot.running = false;
    try {
      await handle.terminate({ graceMs: this.#graceMs });
    } catch {
      // It is gone already; its result says how it ended.
    }
    const outcome: Outcome = await handle.result.then(
      () => ({ ok: true }),
      (error: unknown) => ({ ok: false, error }),
    );
    if (slot.spec.restart === "temporary") slot.removed = true;
    const reason: SupervisorEventReason = outcome.ok ? "normal" : failureReason(outcome.error) === "terminated" ? "shutdown" : failureReason(outcome.error);
    this.#emit({ type: "child.ended", child: slot.id, agentId: handle.id, reason, at: Date.now() });
  }

  async #terminateAll(): Promise<void> {
    for (const slot of [...this.#slots].reverse()) if (slot.running) await this.#shutdown(slot);
  }

  async #escalate(slot: Slot, reason: "intensity" | "refused", detail: string, cause?: unknown): Promise<void> {
    if (this.#state === "ended") return;
    this.#state = "stopping";
    await this.#terminateAll();
    const error = new SupervisorEscalationError(this.id, this.name, slot.id, reason, detail, cause === undefined ? undefined : { cause });
    this.#finish({ type: "escalated", child: slot.id, reason, detail, at: Date.now() }, error);
  }
}

/**
 * Validates a spec (a `ConfigError` before anything starts), starts the children in spec order
 * and returns the running supervisor. A child that cannot start terminates those started before it
 * and rejects with the spawn's error.
 */
export async function startSupervisor(spec: SupervisorSpec, spawn: SupervisorSpawner): Promise<Supervisor> {
  const children = validate(spec);
  const supervisor = new RunningSupervisor(spec, children, spawn);
  await supervisor.start();
  return supervisor;
}
