/**
 * The sub-agent runtime: the one authority over a process's spawn trees. It starts hosts,
 * answers their requests (board, spawn, budget), keeps every agent's record in the backend's
 * registry (each lifecycle move compare-and-set on the generation), relays events to parents
 * under their delivery policy, and ends agents: done, failed, crashed, timed out, over budget or
 * terminated — with their descendants, breadth-first, after a grace period.
 */
import { APPROVALS_BOARD, requestApproval, settleApproval, waitForDecision } from "../../core/approvals.ts";
import type { Board } from "../../core/board.ts";
import type { TaskBoard } from "../../core/task-board.ts";
import type { SubmitRequest } from "../../core/tasks.ts";
import type { ModelStepRequest, ModelSteps } from "../../core/model-steps.ts";
import { ConfigError, NotFoundError, describeError, quote } from "../../core/errors.ts";
import { nameProblem, type TagsInput } from "../../core/json.ts";
import { Ledger, checkBoard, checkBudget, checkWrite, narrowPermissions } from "../../core/governance.ts";
import type { AgentStore } from "../../core/store.ts";
import { checkDuration, longTimeout } from "../../core/timers.ts";
import { injectContext, recordError, runInContext, startSpan, type OpenSpan } from "../../core/tracing.ts";
import {
  BudgetExceededError,
  DEFAULT_ENV,
  SubAgentError,
  TransitionError,
  canTransition,
  isFinal,
  type AgentRecord,
  type AgentRef,
  type AgentState,
  type DeliveryPolicy,
  type FailureReason,
  type InboxMessage,
  type Isolation,
  type Permissions,
  type SpawnOptions,
  type AnySubAgent,
  type SubAgent,
  type SubAgentEvent,
} from "../../core/subagent-types.ts";
import { HOST } from "../processes.ts";
import { resolveAgentRef } from "./module-ref.ts";
import { startDriver, type Driver } from "./drivers.ts";
import type { HostPool } from "./pool.ts";
import { SpawnedHandle } from "./handle.ts";
import { hostMessage, type HostMessage, type RequestOp, type RuntimeMessage, type StartMessage, type TurnGrant } from "./protocol.ts";
import { fromWireError, toWireError } from "./wire.ts";
import { timedId } from "../../core/ids.ts";

const DEFAULT_GRACE_MS = 2000;
const KILL_POLL_MS = 250;
/** This machine's name, as every record this process registers gives it (asked once: a system call). */
const ISOLATIONS: readonly Isolation[] = ["inline", "thread", "process"];
const POLICIES: readonly DeliveryPolicy[] = ["streaming", "immediate", "deferred", "on_demand"];

interface Outcome {
  ok: boolean;
  result?: unknown;
  reason?: FailureReason;
  error?: string;
}

interface Relay {
  observe(node: Node, event: SubAgentEvent): void;
  finished(node: Node, outcome: Outcome): void;
}

function newAgentId(): string {
  return timedId("agent");
}

/** An agent's name is its writes' author with `@id` after it, so it keeps well inside an author's bound. */
const MAX_NAME_BYTES = 256;

function agentName(agent: AgentRef | AnySubAgent, options: SpawnOptions): string {
  const name: unknown = options.name ?? (agent as SubAgent).name ?? (agent as AgentRef).export ?? "agent";
  const problem = typeof name === "string" ? nameProblem(name, MAX_NAME_BYTES, "an agent's name") : `an agent's name is a string, got ${typeof name}`;
  if (problem !== undefined) throw new ConfigError(`agent name ${quote(String(name))}: ${problem}`);
  return name as string;
}

/**
 * Who a sub-agent's board writes are by: its name, then its id after the last "@". A spawner
 * picks the name, but never the id, so no agent can write as another.
 */
export function authorOf(agent: { id: string; name: string }): string {
  return `${agent.name}@${agent.id}`;
}

/** A spawn's request of permissions, with its `env` option folded in. */
function requestedPermissions(options: SpawnOptions, who: string): Permissions | undefined {
  if (options.env === undefined) return options.permissions;
  if (options.permissions?.env !== undefined) throw new ConfigError(`${who}: give env once, as the spawn's env or as permissions.env`);
  return { ...options.permissions, env: options.env };
}

interface Node {
  id: string;
  name: string;
  parent: Node | undefined;
  depth: number;
  isolation: Isolation;
  delivery: DeliveryPolicy;
  ledger: Ledger;
  permissions: Permissions;
  board: string | undefined;
  record: AgentRecord;
  children: Set<Node>;
  /** Final messages held for the next turn boundary (deferred delivery). */
  deferred: InboxMessage[];
  driver: Driver | undefined;
  /** Where this node's events and end go: the parent's host, or a top-level handle. */
  relay: Relay;
  /** Set once the agent is being stopped, so the end it reaches is reported as this. */
  stopping: { reason: FailureReason; detail: string } | undefined;
  keepChildren: boolean;
  /** Cancels each timer set for this node (timeout, wall-time budget). */
  timers: (() => void)[];
  ended: Promise<void>;
  markEnded(): void;
  /** How many host messages failed the schema check. */
  rejected: number;
  spawnOptions: SpawnOptions;
  /** Streamed inbox copies held until the host is ready (its definition may set another policy). */
  held: InboxMessage[] | undefined;
  /** The lifecycle move under way, if any; the next one waits for it. */
  moving: Promise<void>;
  /** Resolves once the host's "ready" is handled; its turns wait for that. */
  ready: Promise<void>;
  markReady(): void;
  /** Set when the agent's own declarations break its limits: its first turn is refused with it. */
  refusal: Error | undefined;
  /** Its one registry write, for one that ended before it was due there (see `#moveNow`). */
  written?: Promise<void>;
  /** Whether its record is in the registry yet (see `SpawnScope.registerAfterMs`). */
  registered: boolean;
  /** Aborts once the agent is being stopped or has ended: what it waits for on its behalf gives up. */
  halt: AbortController;
  /** Its span, from its spawn to its end, while a tracer provider is registered (see tracing.ts). */
  span: OpenSpan | undefined;
  /** Its current turn's span: what the runtime does for it meanwhile (its model steps, its tasks, its children) is under it. */
  turnSpan: OpenSpan | undefined;
}

export interface RuntimeDeps {
  agents: AgentStore;
  board(name: string): Promise<Board>;
  /** A task board, for agents that submit tasks and wait for them. */
  tasks(name: string): Promise<TaskBoard>;
  /** Called before each turn of each agent; resolve to let it run (used for stepping). */
  beforeTurn?: (agent: { id: string; name: string; turn: number }) => Promise<void>;
  /** Called as each agent ends, once its registry writes are done: for retention (see AgentPruner). */
  ended?: () => void;
  /** Warm thread and process hosts that spawns may take (see pool.ts). */
  pool?: HostPool;
  /** Model steps for thread and process model agents, made here (see src/models/serve.ts). */
  models?: ModelSteps;
}

export interface SpawnScope {
  parent?: Node;
  ledger?: Ledger;
  board?: string;
  /**
   * For an inline agent: keep its record out of the registry until it has run this long, and if
   * it ends sooner, write it once, as it ended. A worker's short tasks then cost the registry one
   * write each instead of four (created, running, its turn, its end), and a longer one is listed
   * while it runs from this long after its start.
   */
  registerAfterMs?: number;
}

export class AgentRuntime {
  readonly #deps: RuntimeDeps;
  readonly #nodes = new Map<string, Node>();
  #poll: NodeJS.Timeout | undefined;
  #closed = false;
  /** Registry writes of agents that ended before they were due there, on their way (see `#moveNow`). */
  readonly #writing = new Set<Promise<void>>();

  constructor(deps: RuntimeDeps) {
    this.#deps = deps;
  }

  /** Spawns a top-level agent (no parent agent); `scope` ties it to a run's ledger and board. */
  async spawn<R, I = unknown>(agent: AgentRef | SubAgent<I, R>, input?: I, options: SpawnOptions = {}, scope: SpawnScope = {}): Promise<SpawnedHandle<R>> {
    const id = newAgentId();
    const handle = new SpawnedHandle<R>(
      { id, parentId: scope.parent?.id, name: agentName(agent, options) },
      { terminate: (target, graceMs) => this.terminate(target, { graceMs }), signal: (target, message) => this.signal(target, undefined, message) },
    );
    await this.#create(agent, input, options, scope, {
      observe: (_, event) => handle.feed(event),
      finished: (node, outcome) => handle.end(outcome.ok ? { ok: true, result: outcome.result as R } : { ok: false, error: this.#failure(node, outcome) }),
    }, id);
    return handle;
  }

  /** Terminates an agent (and, by default, its descendants) that this process owns. */
  async terminate(id: string, options: { cascade?: boolean; graceMs?: number } = {}): Promise<void> {
    const node = this.#nodes.get(id);
    if (!node) throw new NotFoundError(`agent ${JSON.stringify(id)} in this process`);
    await this.#stop(node, "terminated", "terminated by request", options.graceMs ?? DEFAULT_GRACE_MS, options.cascade ?? true);
  }

  /** Steers a message into an agent's inbox. */
  async signal(id: string, from: string | undefined, message: unknown): Promise<void> {
    const node = this.#nodes.get(id);
    if (!node) throw new NotFoundError(`agent ${JSON.stringify(id)} in this process`);
    if (isFinal(node.record.state)) throw new SubAgentError(id, node.name, node.record.reason ?? "terminated", `it has ended (${node.record.state})`);
    node.driver?.send({ t: "inbox", messages: [{ type: "signal", from: from ?? "colony", message }] });
  }

  owns(id: string): boolean {
    return this.#nodes.has(id);
  }

  /** Terminates every live agent of this process and stops watching for kill requests. */
  async close(graceMs = 500): Promise<void> {
    this.#closed = true;
    clearInterval(this.#poll);
    const roots = [...this.#nodes.values()].filter((n) => !isFinal(n.record.state) && (!n.parent || isFinal(n.parent.record.state)));
    await Promise.all(roots.map((n) => this.#stop(n, "terminated", "the colony closed", graceMs, true)));
    await Promise.all(this.#writing);
  }

  async #create(
    agent: AgentRef | AnySubAgent,
    input: unknown,
    options: SpawnOptions,
    scope: SpawnScope,
    relay: Relay,
    id = newAgentId(),
  ): Promise<Node> {
    if (this.#closed) throw new ConfigError("the colony is closed; it spawns nothing more");
    const byRef = typeof agent === "object" && agent !== null && "module" in agent;
    const definition = byRef ? undefined : (agent as AnySubAgent);
    if (!byRef && (typeof definition !== "object" || definition === null || (typeof definition.run !== "function" && typeof definition.turn !== "function"))) {
      throw new ConfigError("spawn takes an agent ({ name, run } or { name, turn }) or a reference { module, export? }");
    }
    const ref = byRef ? resolveAgentRef(agent as AgentRef) : undefined;
    const isolation = options.isolation ?? "inline";
    if (!ISOLATIONS.includes(isolation)) throw new ConfigError(`isolation is inline, thread or process, got ${JSON.stringify(isolation)}`);
    if (isolation !== "inline" && !byRef) {
      throw new ConfigError(`a ${isolation} child loads its code itself: pass { module, export } instead of the agent object`);
    }
    // A referenced agent's own declarations (delivery, budget, tools) arrive with its host's
    // "ready", before its first turn: its module is loaded only where it runs, never here.
    const declared = definition;
    const delivery = options.delivery ?? declared?.delivery ?? "streaming";
    if (!POLICIES.includes(delivery)) throw new ConfigError(`delivery is streaming, immediate, deferred or on_demand, got ${JSON.stringify(delivery)}`);
    if (options.timeoutMs !== undefined) checkDuration(options.timeoutMs, "timeoutMs", { positive: true });
    const name = agentName(agent, options);
    const budget = { ...checkBudget(declared?.budget, name), ...checkBudget(options.budget, name) };
    const board = options.board ?? scope.parent?.board ?? scope.board;
    if (board !== undefined && typeof board !== "string") throw new ConfigError(`${name}: board is a board's name, got ${typeof board}`);
    const permissions = narrowPermissions(scope.parent?.permissions ?? {}, requestedPermissions(options, name), name);
    if (!scope.parent) {
      // At the top of a tree: the environment a child gets by default, and only its own board.
      permissions.env ??= [...DEFAULT_ENV];
      permissions.boards ??= board === undefined ? [] : [board];
    }
    if (board !== undefined) checkBoard(permissions, board, name);
    if (declared?.tools) narrowPermissions(permissions, { tools: declared.tools }, name);
    const parentLedger = scope.parent?.ledger ?? scope.ledger;
    // Refused here, before anything starts, when a limit of any ancestor would be crossed.
    const ledger = parentLedger ? parentLedger.spawn(name, budget) : new Ledger(name, budget);
    const depth = scope.parent ? scope.parent.depth + 1 : 0;

    let markEnded!: () => void;
    let markReady!: () => void;
    const node: Node = {
      id,
      name,
      parent: scope.parent,
      depth,
      isolation,
      delivery,
      ledger,
      permissions,
      board,
      children: new Set(),
      deferred: [],
      driver: undefined,
      stopping: undefined,
      keepChildren: false,
      timers: [],
      ended: new Promise<void>((resolve) => (markEnded = resolve)),
      markEnded: () => markEnded(),
      rejected: 0,
      spawnOptions: options,
      held: byRef && options.delivery === undefined ? [] : undefined,
      moving: Promise.resolve(),
      ready: new Promise<void>((resolve) => (markReady = resolve)),
      markReady: () => markReady(),
      refusal: undefined,
      registered: false,
      halt: new AbortController(),
      span: startSpan(
        "colony.agent",
        { "colony.agent.id": id, "colony.agent.name": name, "colony.agent.isolation": isolation, "colony.agent.depth": depth, ...(scope.parent && { "colony.agent.parent_id": scope.parent.id }) },
        { parent: scope.parent?.turnSpan?.context ?? scope.parent?.span?.context },
      ),
      turnSpan: undefined,
      relay,
      record: {
        id,
        name,
        parentId: scope.parent?.id,
        depth,
        state: "created",
        generation: 0,
        isolation,
        delivery,
        pid: undefined,
        ownerPid: process.pid,
        ownerHost: HOST,
        startedAt: Date.now(),
        endedAt: undefined,
        usage: { tokens: 0, costUsd: 0, turns: 0 },
        reason: undefined,
        error: undefined,
      },
    };
    const lazy = scope.registerAfterMs !== undefined && isolation === "inline";
    if (!lazy) await this.#register(node);
    else {
      const timer = setTimeout(() => void this.#register(node).catch(() => {}), scope.registerAfterMs).unref();
      node.timers.push(() => clearTimeout(timer));
    }
    this.#nodes.set(id, node);
    scope.parent?.children.add(node);
    this.#watchKills();
    // A parent stopped (or ended) while this child's record was on its way has already stopped the
    // children it had: this one must not start under it.
    const parent = scope.parent;
    if (parent && (parent.stopping !== undefined || isFinal(parent.record.state)) && !parent.keepChildren) {
      await this.#end(node, { ok: false, reason: "terminated", error: `its parent ${parent.name} was stopped as it spawned this` });
      return node;
    }

    const start: StartMessage = {
      id,
      name,
      ...(scope.parent && { parentId: scope.parent.id }),
      depth,
      input,
      ...(ref && { agent: ref }),
      ...(board !== undefined && { board }),
      permissions,
      remaining: ledger.remaining(),
    };
    try {
      node.driver = startDriver(
        isolation,
        start,
        definition,
        {
          message: (raw) => void this.#onMessage(node, raw),
          exit: (detail) => void this.#end(node, { ok: false, reason: "crash", error: detail }),
        },
        { resourceLimits: options.resourceLimits, env: permissions.env ?? DEFAULT_ENV, pool: this.#deps.pool },
      );
    } catch (error) {
      await this.#end(node, { ok: false, reason: "crash", error: `could not start: ${describeError(error)}` });
      return node;
    }
    await this.#move(node, "running", { pid: node.driver.pid });
    if (options.timeoutMs !== undefined) {
      node.timers.push(longTimeout(() => void this.#stop(node, "timeout", `no result within ${options.timeoutMs} ms`, DEFAULT_GRACE_MS / 4, true), options.timeoutMs));
    }
    this.#armWallBudget(node);
    return node;
  }

  /** Stops the node once the earliest wall-time budget over it runs out. */
  #armWallBudget(node: Node): void {
    const deadline = node.ledger.wallDeadline();
    if (deadline === undefined) return;
    node.timers.push(longTimeout(() => void this.#stop(node, "budget", "its wall-time budget ran out", DEFAULT_GRACE_MS / 4, true), deadline - Date.now()));
  }

  async #onMessage(node: Node, raw: unknown): Promise<void> {
    let message: HostMessage;
    if (node.isolation === "inline") message = raw as HostMessage;
    else {
      const parsed = hostMessage.safeParse(raw);
      if (!parsed.success) {
        // Never acted on; counted and shown in the agent's events so that it can be found.
        node.rejected++;
        const issue = parsed.error.issues[0];
        this.#event(node, { type: "log", message: `dropped malformed message #${node.rejected} from its host: ${issue?.path.join(".") || "message"}: ${issue?.message}`, at: Date.now() });
        return;
      }
      message = parsed.data;
    }
    if (isFinal(node.record.state)) {
      if (message.t === "req") node.driver?.send({ t: "res", id: message.id, ok: false, error: toWireError(new SubAgentError(node.id, node.name, node.record.reason ?? "terminated", "it has ended")) });
      return;
    }
    try {
      switch (message.t) {
        case "req":
          await this.#answer(node, message.id, message.op, message.args);
          return;
        case "ready":
          this.#adopt(node, message.declared);
          node.markReady();
          this.#release(node);
          return;
        case "emit":
          this.#event(node, { type: "emit", name: message.name, data: message.data, at: Date.now() });
          return;
        case "log":
          this.#event(node, { type: "log", message: message.message, at: Date.now() });
          return;
        case "usage": {
          let refusal: unknown;
          try {
            node.ledger.charge({ tokens: message.tokens, costUsd: message.costUsd }, { spent: message.spent === true });
          } catch (error) {
            if (message.spent !== true) {
              await this.#stop(node, "budget", describeError(error), DEFAULT_GRACE_MS / 4, true);
              return;
            }
            refusal = error;
          }
          // Descendants' usage counts for every ancestor, in the registry too.
          for (let up: Node | undefined = node; up; up = up.parent) {
            up.record.usage = { ...up.record.usage, tokens: up.ledger.used.tokens, costUsd: up.ledger.used.costUsd };
            if (up.registered) await this.#deps.agents.updateUsage(up.id, up.record.usage);
          }
          this.#event(node, { type: "usage", tokens: message.tokens, costUsd: message.costUsd, at: Date.now() });
          if (refusal) await this.#stop(node, "budget", describeError(refusal), DEFAULT_GRACE_MS / 4, true);
          return;
        }
        case "done":
          await this.#end(node, { ok: true, result: message.result });
          return;
        case "fail": {
          const overBudget = message.error.code === "BUDGET_EXCEEDED";
          if (overBudget) node.ledger.recordRefusal(fromWireError(message.error) as BudgetExceededError);
          await this.#end(node, { ok: false, reason: overBudget ? "budget" : "error", error: message.error.message });
          return;
        }
      }
    } catch (error) {
      await this.#end(node, { ok: false, reason: "error", error: `the runtime could not handle a message: ${describeError(error)}` });
    }
  }

  /** Sends the streamed inbox copies held until the child's policy was known. */
  #release(node: Node): void {
    const held = node.held;
    node.held = undefined;
    if (held && held.length > 0 && node.delivery === "streaming") node.parent?.driver?.send({ t: "inbox", messages: held });
  }

  /** Takes on what the agent's definition declares, where the spawn's options left it open. */
  #adopt(node: Node, declared: { delivery?: DeliveryPolicy; budget?: Record<string, unknown>; tools?: string[] }): void {
    try {
      if (declared.delivery !== undefined && node.spawnOptions.delivery === undefined) node.delivery = declared.delivery;
      if (declared.tools !== undefined) narrowPermissions(node.permissions, { tools: declared.tools }, node.name);
      if (declared.budget !== undefined) {
        const before = node.ledger.wallDeadline();
        node.ledger.adopt(checkBudget(declared.budget, node.name));
        if (node.ledger.wallDeadline() !== before) this.#armWallBudget(node);
      }
    } catch (error) {
      node.refusal = error as Error;
    }
  }

  async #answer(node: Node, requestId: number, op: RequestOp, args: unknown[]): Promise<void> {
    const reply = (message: RuntimeMessage) => node.driver?.send(message);
    try {
      const value = await runInContext(node.turnSpan?.context, () => this.#serve(node, op, args));
      reply({ t: "res", id: requestId, ok: true, value });
    } catch (error) {
      reply({ t: "res", id: requestId, ok: false, error: toWireError(error) });
      if (error instanceof BudgetExceededError && op === "turn") await this.#stop(node, "budget", error.message, DEFAULT_GRACE_MS / 4, true);
    }
  }

  async #serve(node: Node, op: RequestOp, args: unknown[]): Promise<unknown> {
    switch (op) {
      case "board.write": {
        const [key, value, options] = args as [string, unknown, { tags?: TagsInput; expectedVersion?: number }];
        checkWrite(node.permissions, key, node.name);
        return (await this.#board(node)).write(key, value, { ...options, author: authorOf(node) });
      }
      case "board.delete": {
        const [key, options] = args as [string, { expectedVersion?: number }];
        checkWrite(node.permissions, key, node.name);
        return (await this.#board(node)).delete(key, { ...options, author: authorOf(node) });
      }
      case "board.get":
        return (await this.#board(node)).get(args[0] as string);
      case "spawn": {
        const [ref, input, options, definition] = args as [AgentRef | undefined, unknown, SpawnOptions, AnySubAgent | undefined];
        const parent = node;
        const child = await this.#create(ref ?? definition!, input, options ?? {}, { parent }, {
          observe: (node, event) => this.#relay(parent, node, event),
          finished: (node, outcome) => this.#deliver(parent, node, outcome),
        });
        return { id: child.id, name: child.name };
      }
      case "child.terminate": {
        const [id, graceMs] = args as [string, number | undefined];
        const child = this.#descendant(node, id);
        await this.#stop(child, "terminated", `terminated by ${node.name}`, graceMs ?? DEFAULT_GRACE_MS, true);
        return null;
      }
      case "child.signal": {
        const [id, message] = args as [string, unknown];
        await this.signal(this.#descendant(node, id).id, node.id, message);
        return null;
      }
      case "report.get": {
        const id = args[0] as string;
        const record = await this.#deps.agents.get(id);
        if (!record || record.parentId !== node.id) throw new NotFoundError(`a report of ${JSON.stringify(id)} for ${node.name} (only its own children's)`);
        return (await this.#deps.agents.getReport(id)) ?? null;
      }
      case "turn": {
        node.turnSpan?.span.end();
        node.turnSpan = undefined;
        await node.ready;
        if (node.refusal) throw node.refusal;
        const turn = args[0] as number;
        if (turn > 1) await this.#move(node, "waiting");
        node.ledger.countTurn();
        node.record.usage = { ...node.record.usage, turns: node.record.usage.turns + 1 };
        // In the registry at once: a one-shot agent makes no other move before it ends.
        if (node.registered) await this.#deps.agents.updateUsage(node.id, node.record.usage);
        await this.#deps.beforeTurn?.({ id: node.id, name: node.name, turn });
        if (node.record.state === "waiting") await this.#move(node, "running");
        this.#event(node, { type: "turn", turn, at: Date.now() });
        node.turnSpan = node.span && startSpan("colony.agent.turn", { "colony.agent.id": node.id, "colony.agent.name": node.name, "colony.agent.turn": turn }, { parent: node.span.context });
        const trace = node.turnSpan && injectContext(node.turnSpan.context);
        const grant: TurnGrant = [node.deferred.splice(0)];
        if (trace) grant.push(trace);
        return grant;
      }
      case "approval":
        return this.#awaitApproval(node, args[0] as string, args[1]);
      case "tasks.submit":
        return (await this.#deps.tasks(args[0] as string)).submit(args[1] as SubmitRequest);
      case "tasks.wait":
        return (await this.#deps.tasks(args[0] as string)).wait(args[1] as string, { signal: node.halt.signal });
      case "model.step":
        if (!this.#deps.models) return { unavailable: "the process that owns it makes no model calls" };
        return this.#deps.models.step(node.id, args[0] as ModelStepRequest, node.halt.signal, (line) => this.#event(node, { type: "log", message: line, at: Date.now() }));
    }
  }

  /**
   * Records a pending approval, pauses the agent in `awaiting_approval` and waits for a decision
   * made by any process; the request shows on the agent and on every ancestor up to the top of
   * its tree. If the agent is stopped first, the request is marked abandoned.
   */
  async #awaitApproval(node: Node, tool: string, args: unknown): Promise<{ approved: boolean; reason?: string }> {
    const approvals = await this.#deps.board(APPROVALS_BOARD);
    const path: string[] = [];
    let root = node;
    for (let up: Node | undefined = node; up; up = up.parent) {
      path.unshift(up.name);
      root = up;
    }
    const record = await requestApproval(approvals, { tool, args, agentId: node.id, agentName: node.name, path, rootId: root.id, owner: { pid: process.pid, host: HOST } });
    await this.#move(node, "awaiting_approval");
    const event: SubAgentEvent = { type: "approval", approvalId: record.id, agentId: node.id, path, tool, args, at: Date.now() };
    for (let up: Node | undefined = node; up; up = up.parent) this.#event(up, event);
    let decided;
    try {
      decided = await waitForDecision(approvals, record.id, node.halt.signal);
    } catch (error) {
      if (node.halt.signal.aborted) {
        await settleApproval(approvals, record.id, "abandoned", "colony", `its agent stopped: ${node.stopping?.detail ?? "it ended"}`).catch(() => {});
      }
      throw error;
    }
    await this.#move(node, "running");
    return { approved: decided.status === "approved", ...(decided.reason !== undefined && { reason: decided.reason }) };
  }

  #board(node: Node): Promise<Board> {
    if (node.board === undefined) throw new ConfigError(`${node.name} has no board: spawn it with { board } or from an agent that has one`);
    return this.#deps.board(node.board);
  }

  #descendant(node: Node, id: string): Node {
    const target = this.#nodes.get(id);
    for (let up = target?.parent; up; up = up.parent) if (up === node) return target!;
    throw new NotFoundError(`agent ${JSON.stringify(id)} among the descendants of ${node.name}`);
  }

  #event(node: Node, event: SubAgentEvent): void {
    node.relay.observe(node, event);
  }

  /**
   * A child's event reaches its parent's handle, and its inbox when the policy streams. Until the
   * child's host is ready its policy may still come from its definition, so its inbox copies wait.
   */
  #relay(parent: Node, child: Node, event: SubAgentEvent): void {
    parent.driver?.send({ t: "child.event", childId: child.id, event });
    if (child.delivery !== "streaming" || event.type === "subagent.completed" || event.type === "subagent.failed") return;
    const message: InboxMessage = { type: "subagent.event", childId: child.id, event };
    if (child.held) child.held.push(message);
    else parent.driver?.send({ t: "inbox", messages: [message] });
  }

  /** A child's end reaches its parent's handle at once, and its inbox as the policy says. */
  #deliver(parent: Node, child: Node, outcome: Outcome): void {
    const error = outcome.ok ? undefined : toWireError(this.#failure(child, outcome));
    parent.driver?.send({ t: "child.end", childId: child.id, ok: outcome.ok, result: outcome.result, ...(error && { error }) });
    const message: InboxMessage = outcome.ok
      ? { type: "subagent.completed", childId: child.id, name: child.name, result: outcome.result }
      : { type: "subagent.failed", childId: child.id, name: child.name, reason: outcome.reason!, error: outcome.error! };
    switch (child.delivery) {
      case "streaming":
      case "immediate":
        parent.driver?.send({ t: "inbox", messages: [message] });
        break;
      case "deferred":
        parent.deferred.push(message);
        break;
      case "on_demand":
        break;
    }
  }

  #failure(node: Node, outcome: Outcome): SubAgentError {
    return new SubAgentError(node.id, node.name, outcome.reason ?? "error", outcome.error ?? "no result");
  }

  /**
   * Records a lifecycle move, compare-and-set on the generation. Moves of one node run one at a
   * time, each checked against the state the previous one left (a host's "ready" can race its
   * timeout, say).
   */
  #move(node: Node, state: AgentState, patch: Partial<AgentRecord> = {}): Promise<void> {
    return this.#inTurn(node, () => this.#moveNow(node, state, patch));
  }

  /** Runs `step` after the node's registry writes before it (moves, its registration), one at a time. */
  async #inTurn(node: Node, step: () => Promise<void>): Promise<void> {
    const previous = node.moving;
    let release!: () => void;
    node.moving = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      await step();
    } finally {
      release();
    }
  }

  /** Puts the node's record, as it stands now, in the registry (at once, or when it is due). */
  #register(node: Node): Promise<void> {
    return this.#inTurn(node, async () => {
      if (node.registered || isFinal(node.record.state)) return;
      await this.#deps.agents.insert({ ...node.record });
      node.registered = true;
    });
  }

  async #moveNow(node: Node, state: AgentState, patch: Partial<AgentRecord>): Promise<void> {
    const from = node.record.state;
    if (!canTransition(from, state)) throw new TransitionError(node.id, `cannot move from ${from} to ${state}`);
    // Its delivery policy as it stands: its definition may have set it since the record was made.
    const next = { ...patch, state, usage: node.record.usage, delivery: node.delivery };
    if (node.registered) {
      if (!(await this.#deps.agents.transition(node.id, node.record.generation, next))) {
        throw new TransitionError(node.id, `its record moved past generation ${node.record.generation} (another writer changed it)`);
      }
    } else if (isFinal(state)) {
      // It ended before it was due in the registry: its one write, as it ended. Not awaited: the
      // result goes to whoever waits for it at once (a task worker records it), not one registry
      // round trip later; closing the runtime waits for the write. A failed write is left out of
      // the registry, as an awaited one was (its end was reported all the same).
      const write = this.#deps.agents.insert({ ...node.record, ...next, generation: node.record.generation + 1 }).catch(() => {});
      this.#writing.add(write);
      void write.finally(() => this.#writing.delete(write));
      node.written = write;
      node.registered = true;
    }
    // Not `next.usage`: a turn may have counted itself while the registry write was on its way,
    // and the usage it wrote after this one is the newer.
    Object.assign(node.record, patch, { state, generation: node.record.generation + 1, delivery: node.delivery });
    this.#event(node, { type: "state", state, at: Date.now() });
  }

  /**
   * Asks a node and its descendants to stop (breadth-first), waits up to `graceMs` for each to end
   * by itself, then forces the rest. The end is reported with `reason` whatever the agent does.
   */
  async #stop(node: Node, reason: FailureReason, detail: string, graceMs: number, cascade: boolean): Promise<void> {
    const order: Node[] = [];
    const queue = [node];
    while (queue.length > 0) {
      const next = queue.shift()!;
      if (isFinal(next.record.state)) continue;
      order.push(next);
      if (cascade) queue.push(...next.children);
    }
    if (!cascade) node.keepChildren = true;
    for (const target of order) {
      target.stopping ??= target === node ? { reason, detail } : { reason: "terminated", detail: `its ancestor ${node.name} was stopped` };
      target.halt.abort(new Error(target.stopping.detail));
      target.driver?.send({ t: "stop", reason: target.stopping.reason });
    }
    await Promise.all(
      order.map(async (target) => {
        const graceOver = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
        await Promise.race([target.ended, graceOver]);
        if (!isFinal(target.record.state)) {
          target.driver?.kill();
          await this.#end(target, { ok: false, reason: target.stopping!.reason, error: target.stopping!.detail });
        }
      }),
    );
  }

  async #end(node: Node, outcome: Outcome): Promise<void> {
    if (isFinal(node.record.state) || node.record.endedAt !== undefined) return;
    node.record.endedAt = Date.now();
    node.halt.abort(new Error("it ended"));
    this.#deps.models?.release(node.id);
    // An agent asked to stop ends as what it was asked for, even if it returns a result meanwhile.
    const final: Outcome = node.stopping ? { ok: false, reason: node.stopping.reason, error: node.stopping.detail } : outcome;
    for (const cancel of node.timers) cancel();
    const state: AgentState = final.ok ? "succeeded" : final.reason === "terminated" ? "terminated" : "failed";
    node.ledger.ended(!final.ok);
    this.#endSpans(node, final, state);
    try {
      await this.#move(node, state, {
        endedAt: node.record.endedAt,
        ...(final.reason && { reason: final.reason }),
        ...(final.error && { error: final.error }),
      });
    } finally {
      this.#release(node);
      node.driver?.dispose();
      if (node.delivery === "on_demand" && node.parent) {
        await node.written;
        await this.#deps.agents.putReport(
          node.id,
          final.ok ? { status: "succeeded", result: final.result } : { status: "failed", reason: final.reason!, error: final.error! },
        );
      }
      this.#event(
        node,
        final.ok
          ? { type: "subagent.completed", result: final.result, at: Date.now() }
          : { type: "subagent.failed", reason: final.reason!, error: final.error!, at: Date.now() },
      );
      node.relay.finished(node, final);
      node.markEnded();
      // A long-lived process spawns without end: an ended agent is forgotten here (its record
      // stays in the registry until retention removes it, its handle keeps its outcome).
      this.#nodes.delete(node.id);
      node.parent?.children.delete(node);
      this.#deps.ended?.();
      if (!node.keepChildren) {
        const live = [...node.children].filter((c) => !isFinal(c.record.state));
        await Promise.all(live.map((c) => this.#stop(c, "terminated", `its parent ${node.name} ended`, DEFAULT_GRACE_MS / 4, true)));
      }
    }
  }

  /** Ends the agent's turn and life spans as it ended: a failure (not a termination) is an error on both. */
  #endSpans(node: Node, final: Outcome, state: AgentState): void {
    node.span?.span.setAttributes({
      "colony.agent.state": state,
      ...(final.reason && { "colony.agent.reason": final.reason }),
      "colony.agent.turns": node.record.usage.turns,
      "colony.agent.tokens": node.ledger.used.tokens,
      "colony.agent.cost_usd": node.ledger.used.costUsd,
    });
    for (const open of [node.turnSpan, node.span]) {
      if (!open) continue;
      if (!final.ok && final.reason !== "terminated") recordError(open.span, final.error ?? "no result", final.reason);
      open.span.end();
    }
    node.turnSpan = undefined;
  }

  /** Carries out kills asked for by other processes on the same backend (`colony agents kill`). */
  #watchKills(): void {
    if (this.#poll !== undefined) return;
    let polling = false;
    this.#poll = setInterval(() => {
      // One poll at a time: a store riding out an outage may take seconds to answer one.
      if (polling) return;
      polling = true;
      void (async () => {
        for (const { id, cascade } of await this.#deps.agents.takeKillRequests(process.pid)) {
          const node = this.#nodes.get(id);
          if (node) await this.#stop(node, "terminated", "killed on request", DEFAULT_GRACE_MS, cascade);
        }
      })()
        .catch(() => {})
        .finally(() => (polling = false));
    }, KILL_POLL_MS);
    this.#poll.unref();
  }
}
