/**
 * Where an agent's code runs. The same host drives an agent inline, in a worker thread or in a
 * child process; only the channel to the runtime differs. The host builds the agent's context,
 * drives its turns, and asks the runtime for everything that touches shared state (the board,
 * spawning, budgets), so the runtime stays the single authority over the spawn tree.
 */
import { ClosedError, ConfigError } from "../../core/errors.ts";
import { checkTool } from "../../core/governance.ts";
import type { Usage } from "../../core/records.ts";
import { DEFAULT_TASK_BOARD } from "../../core/tasks.ts";
import { contextOf, runInContext } from "../../core/tracing.ts";
import {
  BudgetExceededError,
  type AgentRef,
  type InboxMessage,
  type SpawnOptions,
  type SubAgent,
  type SubAgentBoard,
  type SubAgentContext,
  type SubAgentEvent,
  type TurnResult,
} from "../../core/subagent-types.ts";
import { SpawnedHandle } from "./handle.ts";
import { resolveAgentRef } from "./module-ref.ts";
import type { HostMessage, RequestOp, RuntimeMessage, StartMessage, TurnGrant } from "./protocol.ts";
import { fromWireError, readRuntimeMessage, toWireError } from "./wire.ts";

/** A host's line to the runtime. */
export interface Channel {
  send(message: HostMessage): void;
  /** Messages from the runtime; `trusted` skips the schema check (inline, same process). */
  listen(listener: (message: unknown) => void): void;
  readonly trusted: boolean;
}

/** Loads an agent definition from a module, by export name (default export by default). */
export async function loadAgent(ref: AgentRef): Promise<SubAgent> {
  const { module: specifier } = resolveAgentRef(ref);
  const module = (await import(specifier)) as Record<string, unknown>;
  const name = ref.export ?? "default";
  const agent = module[name] as SubAgent | undefined;
  if (typeof agent !== "object" || agent === null || (typeof agent.run !== "function" && typeof agent.turn !== "function")) {
    throw new ConfigError(`${specifier}: export "${name}" is not an agent (an object with a run or turn function)`);
  }
  return agent;
}

export async function runHost(channel: Channel, start: StartMessage, definition?: SubAgent): Promise<void> {
  let nextRequest = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const handles = new Map<string, SpawnedHandle>();
  // A child's first events (its move to running) arrive before the spawn's answer, so before its
  // handle exists: they wait here and are replayed once the handle does.
  const early = new Map<string, RuntimeMessage[]>();
  const inbox: InboxMessage[] = [];
  const controller = new AbortController();
  const remaining = { ...start.remaining };
  let rejected = 0;

  const request = (op: RequestOp, ...args: unknown[]): Promise<unknown> => {
    if (controller.signal.aborted && op !== "child.terminate") {
      return Promise.reject(new ConfigError(`agent ${start.name} has been stopped (${String(controller.signal.reason)}); it can no longer ${op}`));
    }
    const id = nextRequest++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      channel.send({ t: "req", id, op, args });
    });
  };

  channel.listen((raw) => {
    const message = channel.trusted ? (raw as RuntimeMessage) : readRuntimeMessage(raw);
    if (!message) {
      rejected++;
      return;
    }
    switch (message.t) {
      case "res": {
        const waiter = pending.get(message.id);
        pending.delete(message.id);
        if (message.ok) waiter?.resolve(message.value);
        else waiter?.reject(fromWireError(message.error ?? { name: "Error", message: "the runtime refused the request" }));
        break;
      }
      case "inbox":
        inbox.push(...(message.messages as InboxMessage[]));
        break;
      case "stop":
        controller.abort(message.reason);
        break;
      case "child.event":
      case "child.end": {
        const handle = handles.get(message.childId);
        if (handle) toHandle(handle, message);
        else early.set(message.childId, [...(early.get(message.childId) ?? []), message]);
        break;
      }
    }
  });

  function toHandle(handle: SpawnedHandle, message: RuntimeMessage): void {
    if (message.t === "child.event") handle.feed(message.event as SubAgentEvent);
    else if (message.t === "child.end") {
      if (message.ok) handle.end({ ok: true, result: message.result });
      else handle.end({ ok: false, error: fromWireError(message.error ?? { name: "Error", message: "ended" }) });
    }
  }

  const board: SubAgentBoard | undefined =
    start.board === undefined
      ? undefined
      : {
          name: start.board,
          write: (key, value, options) => request("board.write", key, value, options ?? {}) as never,
          delete: (key, options) => request("board.delete", key, options ?? {}) as Promise<boolean>,
          get: (key) => request("board.get", key) as never,
        };

  let turn = 0;
  const ctx: SubAgentContext = {
    id: start.id,
    name: start.name,
    parentId: start.parentId,
    depth: start.depth,
    input: start.input,
    signal: controller.signal,
    board,
    permissions: start.permissions,
    inbox,
    drain: () => inbox.splice(0, inbox.length),
    get turn() {
      return turn;
    },
    async spawn<R, I>(agent: AgentRef | SubAgent<I, R>, input?: I, options: SpawnOptions = {}) {
      const byRef = typeof agent === "object" && agent !== null && "module" in agent;
      if (!byRef && !channel.trusted) {
        throw new ConfigError(`${start.name} runs in a thread or process: it spawns children as { module, export }, not as objects`);
      }
      // Resolved here, where the caller is: a URL does not cross to the parent, and a relative path is this process's.
      const info = (await request("spawn", byRef ? resolveAgentRef(agent) : undefined, input, options, byRef ? undefined : agent)) as { id: string; name: string };
      const handle = new SpawnedHandle<R>({ id: info.id, parentId: start.id, name: info.name }, {
        terminate: async (id, graceMs) => void (await request("child.terminate", id, graceMs)),
        signal: async (id, message) => void (await request("child.signal", id, message)),
      });
      handles.set(info.id, handle as SpawnedHandle);
      for (const message of early.get(info.id) ?? []) toHandle(handle as SpawnedHandle, message);
      early.delete(info.id);
      return handle;
    },
    emit: (name, data) => channel.send({ t: "emit", name: String(name), data }),
    usage: {
      add(usage: Usage, options: { spent?: boolean } = {}) {
        const tokens = usage.tokens ?? 0;
        const costUsd = usage.costUsd ?? 0;
        if (!Number.isFinite(tokens) || tokens < 0 || !Number.isFinite(costUsd) || costUsd < 0) {
          throw new ConfigError(`usage is counted in non-negative numbers, got ${JSON.stringify(usage)}`);
        }
        let refusal: BudgetExceededError | undefined;
        for (const [metric, amount] of [["tokens", tokens], ["costUsd", costUsd]] as const) {
          const left = remaining[metric];
          if (left !== undefined && amount > left) refusal ??= new BudgetExceededError(metric, left, amount, `${start.name}'s remaining budget`);
        }
        if (refusal && !options.spent) throw refusal;
        if (remaining.tokens !== undefined) remaining.tokens = Math.max(0, remaining.tokens - tokens);
        if (remaining.costUsd !== undefined) remaining.costUsd = Math.max(0, remaining.costUsd - costUsd);
        // Spent past the limit: counted by the runtime, which then stops the agent for its budget.
        channel.send({ t: "usage", tokens, costUsd, ...(options.spent && { spent: true }) });
        if (refusal) throw refusal;
      },
      left: () => ({ ...remaining }),
    },
    log: (message) => channel.send({ t: "log", message: String(message) }),
    reports: { get: (childId) => request("report.get", childId) },
    useTool: (tool) => checkTool(start.permissions, tool, start.name),
    requestApproval: ({ tool, args }) => request("approval", tool, args) as Promise<{ approved: boolean; reason?: string }>,
    tasks: {
      submit: (task, options) => request("tasks.submit", options?.board ?? DEFAULT_TASK_BOARD, task) as never,
      wait: (id, options) => request("tasks.wait", options?.board ?? DEFAULT_TASK_BOARD, id) as never,
    },
    ...(!channel.trusted && { models: { step: (stepRequest) => request("model.step", stepRequest) as never } }),
  };

  /** Asks for the next turn, takes in what reached the inbox meanwhile, and runs `body` under the turn's span if it has one. */
  const inTurn = async <T>(body: () => T | Promise<T>): Promise<T> => {
    const [messages, trace] = (await request("turn", turn)) as TurnGrant;
    inbox.push(...messages);
    return runInContext(trace && contextOf(trace), body);
  };

  try {
    const agent = definition ?? (await loadAgent(start.agent!));
    channel.send({
      t: "ready",
      declared: {
        ...(agent.delivery !== undefined && { delivery: agent.delivery }),
        ...(agent.budget !== undefined && { budget: { ...agent.budget } }),
        ...(agent.tools !== undefined && { tools: [...agent.tools] }),
      },
    });
    let result: unknown;
    if (agent.turn) {
      for (;;) {
        turn++;
        const outcome = (await inTurn(() => agent.turn!(ctx))) as TurnResult | undefined;
        if (outcome?.action === "done") {
          result = outcome.result;
          break;
        }
        if (outcome?.action !== "continue") {
          throw new ConfigError(`${agent.name}: turn() returns { action: "continue" } or { action: "done", result }, got ${JSON.stringify(outcome)}`);
        }
      }
    } else {
      turn = 1;
      result = await inTurn(() => agent.run!(ctx));
    }
    channel.send({ t: "done", result });
  } catch (error) {
    channel.send({ t: "fail", error: toWireError(error) });
  }
  // What it asked and left unawaited when it ended (a spawn racing its own stop) is answered no more.
  for (const waiter of pending.values()) waiter.reject(new ClosedError(`agent ${start.name}: it has ended`));
  pending.clear();
  if (rejected > 0) channel.send({ t: "log", message: `host dropped ${rejected} malformed message(s) from the runtime` });
}
