/**
 * Model-backed agents. `defineModelAgent` gives one definition that works wherever an agent
 * works: as a sub-agent (`ctx.spawn`, any isolation; a task worker's agent; a workflow's step)
 * Colony runs it turn by turn, one model step per turn, so its inbox is drained and its budget
 * checked between steps and `terminate` aborts the call in flight; as a loop agent its trigger
 * decides when it fires, and it sees the board through a rendered view and its skills.
 */
import { tool, type ModelMessage, type Tool, type ToolApprovalResponse, type ToolSet } from "ai";
import { z } from "zod";
import type { BoardView } from "../core/board.ts";
import { ConfigError } from "../core/errors.ts";
import { checkBudget } from "../core/governance.ts";
import type { AgentContext, AgentResult } from "../core/run-types.ts";
import {
  BudgetExceededError,
  type Budget,
  type DeliveryPolicy,
  type InboxMessage,
  type SubAgent,
  type SubAgentContext,
  type SubAgentHandle,
  type TurnResult,
} from "../core/subagent-types.ts";
import { describeCall, type ModelCallRecord } from "./call-record.ts";
import { runStep, type StepResult } from "./call.ts";
import { checkMcpServers, connectMcp, type McpConnection, type McpServer } from "./mcp.ts";
import { checkPrices, priceOf, type PriceTable } from "./prices.ts";
import { modelNameProblem, resolveModel, type ModelSpec, type ResolvedModel } from "./registry.ts";
import { builtInSkill, isSkill, skillTool, wireName, type AnySkill, type SkillBoard, type SkillContext } from "./skills.ts";

/** A model agent's input: a prompt, or a prompt with earlier messages; anything else is shown to the model as JSON. */
export type ModelInput = string | { prompt: string; messages?: ModelMessage[] } | unknown;

export interface ModelAgentOptions<R = string> {
  name: string;
  /** `"openai:gpt-4.1-mini"`, `"anthropic:…"`, `"ollama:…"`, `"local:…"`, or a model object. */
  model: ModelSpec;
  instructions?: string;
  /** AI SDK tools (`tool({ description, inputSchema, execute })`), by the name the model calls them. */
  tools?: Record<string, Tool | PlainTool>;
  /** MCP servers whose tools it gets, named `server.tool`: local (`{ command, args }`, stdio) or remote (`{ url }`). */
  mcp?: Record<string, McpServer>;
  /** Built-in skills by name (`"board.read"`, `"board.write"`, `"agents.spawn"`, …) and `defineSkill` skills. */
  skills?: (string | AnySkill)[];
  /**
   * Tools (by name, plain or skill) whose calls wait for a person's decision: always, or when the
   * predicate says so for the arguments. A skill's own `needsApproval` counts as well.
   */
  needsApproval?: Record<string, boolean | ((args: unknown) => boolean)>;
  /** A zod schema: the result is the model's final answer parsed against it. */
  output?: z.ZodType<R>;
  /** Model steps before it must have answered; default 20. */
  maxTurns?: number;
  temperature?: number;
  maxOutputTokens?: number;
  /** Per model call, each attempt; default 120 s. */
  timeoutMs?: number;
  /** Retries of a call that got 429, 5xx or no answer in time; default 2. */
  maxRetries?: number;
  /** Prices (USD per million tokens) beside the shipped table, by `provider:model`. */
  prices?: PriceTable;
  delivery?: DeliveryPolicy;
  budget?: Budget;
  /** The tools (by name) it may use and hand to its children; default all it has. */
  permissions?: { tools?: string[] };
  /** As a loop agent: when it fires (default once). */
  trigger?: (view: BoardView) => boolean;
  maxFires?: number;
  priority?: number;
  /** As a loop agent: what it is asked each time it fires; default a request to do its part, under the rendered board. */
  prompt?: string | ((view: BoardView) => string);
  /** As a loop agent: the key its answer is written to. */
  writes?: string;
}

export type ModelAgent<R = string> = SubAgent<ModelInput, R> & {
  readonly kind: "colony.model-agent";
  readonly options: Readonly<ModelAgentOptions<R>>;
  turn: (ctx: SubAgentContext<ModelInput>) => Promise<TurnResult<R>>;
  /** As a loop agent: one fire runs model steps until it answers. As a sub-agent (one shot): the same, without turns. */
  run: ((ctx: AgentContext) => Promise<AgentResult | void>) & ((ctx: SubAgentContext<ModelInput>) => Promise<R>);
  trigger?: (view: BoardView) => boolean;
  maxFires?: number;
  priority?: number;
};

const DEFAULT_MAX_TURNS = 20;
const DEFAULT_OUTPUT_ESTIMATE = 1024;
const SHOWN_ARGS = 120;
const SHOWN_VALUE = 2000;

/** A non-object output schema is asked for wrapped in `{ result }` (providers want an object) and unwrapped. */
function outputPlan(schema: z.ZodType | undefined): { ask: z.ZodType; unwrap: (value: unknown) => unknown } | undefined {
  if (!schema) return undefined;
  if (schema instanceof z.ZodObject) return { ask: schema, unwrap: (value) => value };
  return { ask: z.object({ result: schema }), unwrap: (value) => (value as { result: unknown }).result };
}

/** The prompt a structured input turns into. */
function promptOf(input: unknown): { prompt: string; messages: ModelMessage[] } {
  if (typeof input === "string") return { prompt: input, messages: [] };
  if (typeof input === "object" && input !== null && typeof (input as { prompt?: unknown }).prompt === "string") {
    const { prompt, messages } = input as { prompt: string; messages?: ModelMessage[] };
    return { prompt, messages: Array.isArray(messages) ? messages : [] };
  }
  return { prompt: `Input:\n${JSON.stringify(input, null, 2)}`, messages: [] };
}

function short(value: unknown, max = SHOWN_ARGS): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The board as the model reads it: one line per entry, values shortened. */
export function renderBoard(view: BoardView): string {
  const lines = [`Board "${view.board}" at position ${view.seq}, ${view.size} entr${view.size === 1 ? "y" : "ies"}:`];
  for (const entry of view.entries()) {
    const tags = Object.keys(entry.tags).length > 0 ? ` tags ${JSON.stringify(entry.tags)}` : "";
    lines.push(`- ${entry.key} (version ${entry.version}, by ${entry.author}${tags}): ${short(entry.value, SHOWN_VALUE)}`);
  }
  return lines.join("\n");
}

function inboxText(messages: InboxMessage[]): string | undefined {
  const lines: string[] = [];
  for (const message of messages) {
    switch (message.type) {
      case "signal":
        lines.push(`[message from ${message.from}]: ${short(message.message, SHOWN_VALUE)}`);
        break;
      case "subagent.completed":
        lines.push(`[helper ${message.name} (${message.childId}) finished]: ${short(message.result, SHOWN_VALUE * 4)}`);
        break;
      case "subagent.failed":
        lines.push(`[helper ${message.name} (${message.childId}) failed, ${message.reason}]: ${message.error}`);
        break;
      case "subagent.event":
        break;
    }
  }
  return lines.length > 0 ? lines.join("\n") : undefined;
}

/**
 * A tool as a plain function and the zod schema of its arguments, with no context (the form of
 * skills written for single-agent frameworks); it is given to the model as an AI SDK tool.
 */
export interface PlainTool {
  description?: string;
  input: z.ZodType;
  execute: (args: never) => unknown;
}

function asTool(given: Tool | PlainTool): Tool {
  if (!("input" in given) || !(given.input instanceof z.ZodType)) return given as Tool;
  const { description, input, execute } = given;
  return tool({ ...(description !== undefined && { description }), inputSchema: input as z.ZodType<unknown>, execute: async (args: unknown) => execute(args as never) }) as Tool;
}

/** The tools a call offers, the approval rule per tool, and each wire name's permission name. */
interface Tools {
  tools: ToolSet | undefined;
  approval: Record<string, "user-approval" | ((args: unknown) => "user-approval" | undefined)>;
  names: Map<string, string>;
}

/** What stays between the turns of one run of a model agent. */
interface Conversation {
  model: ResolvedModel;
  messages: ModelMessage[];
  steps: number;
  /** Children started through its skills, and whether their end has been told to the model. */
  children: Map<string, { handle: SubAgentHandle; told: boolean; settled: boolean }>;
  /** The model answered while helpers still ran: the next turn waits for one of them. */
  waiting: boolean;
  /** Its MCP servers' tools, open for this run of the agent. */
  mcp: McpConnection | undefined;
  /** The tool set of its calls, built at its first turn. */
  tools?: Tools;
  /** Characters of the first `counted` messages, for the estimate of a call: each message is measured once. */
  chars: number;
  counted: number;
}

/**
 * Defines an agent backed by a language model.
 *
 * @example
 * export const critic = defineModelAgent({
 *   name: "critic",
 *   model: "openai:gpt-4.1-mini",
 *   instructions: "You review drafts. Be specific.",
 *   skills: ["board.read", "board.write"],
 *   trigger: (view) => view.has("draft") && !view.has("review"),
 *   writes: "review",
 * });
 */
export function defineModelAgent<R = string>(options: ModelAgentOptions<R>): ModelAgent<R> {
  const who = `model agent ${JSON.stringify(options.name)}`;
  if (typeof options.name !== "string" || options.name.length === 0) throw new ConfigError("defineModelAgent: give it a name");
  const problem = typeof options.model === "string" ? modelNameProblem(options.model) : undefined;
  if (problem !== undefined) throw new ConfigError(`${who}: model ${JSON.stringify(options.model)}: ${problem}`);
  if (typeof options.model !== "string" && (typeof options.model !== "object" || options.model === null)) throw new ConfigError(`${who}: model is a name like "openai:gpt-4.1-mini" or a language model object`);
  const maxTurns = options.maxTurns ?? DEFAULT_MAX_TURNS;
  if (!Number.isInteger(maxTurns) || maxTurns < 1) throw new ConfigError(`${who}: maxTurns is a whole number >= 1, got ${String(options.maxTurns)}`);
  const prices = checkPrices(options.prices, who);
  const budget = checkBudget(options.budget, who);
  const skills = (options.skills ?? []).map((skill) => (typeof skill === "string" ? builtInSkill(skill, who) : skill));
  for (const skill of skills) if (!isSkill(skill)) throw new ConfigError(`${who}: skills are built-in names or defineSkill(...) skills`);
  const names = [...Object.keys(options.tools ?? {}), ...skills.map((s) => s.name)];
  const duplicate = names.find((name, i) => names.indexOf(name) !== i || names.findIndex((other) => wireName(other) === wireName(name)) !== i);
  if (duplicate !== undefined) throw new ConfigError(`${who}: two tools are named ${JSON.stringify(duplicate)}`);
  const unknownRule = Object.keys(options.needsApproval ?? {}).find((name) => !names.includes(name));
  if (unknownRule !== undefined) throw new ConfigError(`${who}: needsApproval names "${unknownRule}", which is none of its tools (${names.join(", ") || "it has none"})`);
  const output = outputPlan(options.output);
  const mcpServers = checkMcpServers(options.mcp, who);
  const conversations = new WeakMap<object, Conversation>();

  /** The tool set the model gets: only what the agent may use; each call checked and told as an event. */
  function toolSet(conversation: Conversation, allowed: (name: string) => boolean, skillCtx: () => SkillContext, useTool: (name: string) => void): Tools {
    const tools: ToolSet = {};
    const names = new Map<string, string>();
    const approval: Record<string, "user-approval" | ((args: unknown) => "user-approval" | undefined)> = {};
    const add = (name: string, base: Tool): void => {
      if (!allowed(name)) return;
      names.set(wireName(name), name);
      const execute = base.execute;
      tools[wireName(name)] = {
        ...base,
        ...(execute && {
          execute: (args: unknown, callOptions: Parameters<NonNullable<Tool["execute"]>>[1]) => {
            useTool(name);
            return execute(args, callOptions);
          },
        }),
      } as Tool;
    };
    const rule = (name: string, given: boolean | ((args: unknown) => boolean) | undefined): void => {
      if (given === true) approval[wireName(name)] = "user-approval";
      else if (typeof given === "function") approval[wireName(name)] = (args) => (given(args) ? "user-approval" : undefined);
    };
    for (const [name, base] of Object.entries(options.tools ?? {})) add(name, asTool(base));
    for (const [name, base] of conversation.mcp?.tools ?? []) add(name, base);
    for (const skill of skills) {
      add(skill.name, skillTool(skill, skillCtx));
      rule(skill.name, skill.needsApproval);
    }
    for (const [name, given] of Object.entries(options.needsApproval ?? {})) if (names.has(wireName(name))) rule(name, given);
    return { tools: Object.keys(tools).length > 0 ? tools : undefined, approval, names };
  }

  /** Refuses a call whose estimated tokens would not fit what is left of the budget. */
  function reserve(left: { tokens?: number; costUsd?: number }, conversation: Conversation): void {
    if (left.tokens === undefined) return;
    for (let i = conversation.counted; i < conversation.messages.length; i++) conversation.chars += JSON.stringify(conversation.messages[i]).length;
    conversation.counted = conversation.messages.length;
    const estimate = Math.ceil(((options.instructions?.length ?? 0) + conversation.chars) / 4) + (options.maxOutputTokens ?? DEFAULT_OUTPUT_ESTIMATE);
    if (estimate > left.tokens) throw new BudgetExceededError("tokens", left.tokens, estimate, `${options.name}'s remaining budget (a call is estimated at ${estimate} tokens)`);
  }

  async function step(conversation: Conversation, signal: AbortSignal, tools: Tools, onRetry: (text: string) => void): Promise<StepResult> {
    return runStep({
      model: conversation.model,
      ...(options.instructions !== undefined && { instructions: options.instructions }),
      messages: conversation.messages,
      ...(tools.tools && { tools: tools.tools }),
      ...(Object.keys(tools.approval).length > 0 && { toolApproval: tools.approval as never }),
      ...(output && { output: output.ask }),
      ...(options.temperature !== undefined && { temperature: options.temperature }),
      ...(options.maxOutputTokens !== undefined && { maxOutputTokens: options.maxOutputTokens }),
      ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
      ...(options.maxRetries !== undefined && { maxRetries: options.maxRetries }),
      prices,
      signal,
      onRetry: ({ attempt, waitMs, error }) => onRetry(`retry ${attempt} in ${Math.round(waitMs)} ms: ${error.message}`),
    });
  }

  function record(conversation: Conversation, result: StepResult): ModelCallRecord {
    return {
      agent: options.name,
      model: conversation.model.id,
      turn: conversation.steps,
      inputTokens: result.usage.input,
      outputTokens: result.usage.output,
      cachedTokens: result.usage.cachedInput,
      reasoningTokens: result.usage.reasoning,
      costUsd: result.costUsd ?? null,
      ms: Math.round(result.ms * 100) / 100,
      retries: result.retries,
      finishReason: result.finishReason,
      toolCalls: result.toolCalls.map((call) => ({
        name: call.name,
        args: short(call.args),
        ...(call.outcome && !call.outcome.ok && { error: call.outcome.error }),
      })),
    };
  }

  async function open(input: unknown, signal: AbortSignal, left: { costUsd?: number }): Promise<Conversation> {
    const model = await resolveModel(options.model);
    if (left.costUsd !== undefined && priceOf(model.id, prices) === undefined) {
      throw new ConfigError(`${who}: a budget in dollars holds over it, but the price of ${model.id} is unknown; give it in prices: { "${model.id}": { input, output } } (USD per million tokens)`);
    }
    signal.throwIfAborted();
    const { prompt, messages } = promptOf(input);
    const mcp = Object.keys(mcpServers).length > 0 ? await connectMcp(mcpServers, who) : undefined;
    const clash = [...(mcp?.tools.keys() ?? [])].find((name) => names.some((own) => wireName(own) === wireName(name)));
    if (clash !== undefined) {
      await mcp!.close();
      throw new ConfigError(`${who}: its MCP tool ${clash} has the name of one of its own tools`);
    }
    return { model, messages: [...messages, { role: "user", content: prompt }], steps: 0, children: new Map(), waiting: false, mcp, chars: 0, counted: 0 };
  }

  /** The answer of a step that made no tool calls. */
  function answer(result: StepResult): R {
    if (output) return output.unwrap(result.output) as R;
    return result.text as R;
  }

  function children(conversation: Conversation): SkillContext["agents"] {
    return {
      list: () => [...conversation.children.values()].map(({ handle }) => ({ id: handle.id, name: handle.name, state: handle.state })),
      async terminate(id) {
        const child = conversation.children.get(id);
        if (!child) throw new ConfigError(`no helper ${JSON.stringify(id)} of ${options.name} (it has ${[...conversation.children.keys()].join(", ") || "none"})`);
        await child.handle.terminate();
      },
    };
  }

  function track(conversation: Conversation, handle: SubAgentHandle): void {
    const child = { handle, told: false, settled: false };
    conversation.children.set(handle.id, child);
    void handle.result.then(
      () => (child.settled = true),
      () => (child.settled = true),
    );
  }

  /** Tells the model what reached the inbox, and how helpers it has not heard from ended. */
  async function absorb(conversation: Conversation, inbox: InboxMessage[]): Promise<void> {
    const heard = [...inbox];
    for (const message of inbox) {
      if (message.type === "subagent.completed" || message.type === "subagent.failed") {
        const child = conversation.children.get(message.childId);
        if (child) child.told = true;
      }
    }
    for (const [id, child] of conversation.children) {
      if (child.told || !child.settled) continue;
      child.told = true;
      try {
        heard.push({ type: "subagent.completed", childId: id, name: child.handle.name, result: await child.handle.result });
      } catch (error) {
        heard.push({ type: "subagent.failed", childId: id, name: child.handle.name, reason: (error as { reason?: "error" }).reason ?? "error", error: (error as Error).message });
      }
    }
    const text = inboxText(heard);
    if (text !== undefined) conversation.messages.push({ role: "user", content: text });
  }

  /** What the agent's skills get: its own parts, spawning that keeps track of the helpers it starts, and its model. */
  function skillContext(conversation: Conversation, own: Omit<SkillContext, "agents" | "model">): () => SkillContext {
    const context: SkillContext = {
      ...own,
      spawn: async (agent, input, spawnOptions) => {
        const handle = await own.spawn(agent, input, spawnOptions);
        track(conversation, handle as SubAgentHandle);
        return handle;
      },
      agents: children(conversation),
      model: { spec: typeof options.model === "string" ? options.model : conversation.model.id },
    };
    return () => context;
  }

  function untold(conversation: Conversation): SubAgentHandle[] {
    return [...conversation.children.values()].filter((c) => !c.told).map((c) => c.handle);
  }

  /** One turn; the agent's MCP servers are closed once it answers or fails. */
  async function turn(ctx: SubAgentContext<ModelInput>): Promise<TurnResult<R>> {
    try {
      const outcome = await turnOnce(ctx);
      if (outcome.action === "done") await conversations.get(ctx)?.mcp?.close();
      return outcome;
    } catch (error) {
      await conversations.get(ctx)?.mcp?.close();
      throw error;
    }
  }

  async function turnOnce(ctx: SubAgentContext<ModelInput>): Promise<TurnResult<R>> {
    let conversation = conversations.get(ctx);
    if (!conversation) {
      conversation = await open(ctx.input, ctx.signal, ctx.usage.left());
      conversations.set(ctx, conversation);
    }
    const current = conversation;
    if (current.waiting) {
      // It answered while helpers ran: hear from one of them (or a message) before asking again.
      const pending = untold(current);
      if (pending.length > 0 && ctx.inbox.length === 0) await settleOne(pending, ctx.signal);
      current.waiting = false;
    }
    await absorb(current, ctx.drain());
    if (current.steps >= maxTurns) throw new ConfigError(`${who} did not answer within maxTurns (${maxTurns}) model steps`);
    reserve(ctx.usage.left(), current);
    current.steps++;
    // Built once per run of the agent: its permissions and context do not change between turns.
    current.tools ??= toolSet(
      current,
      (name) => ctx.permissions.tools === undefined || ctx.permissions.tools.includes(name),
      skillContext(current, {
        agent: { id: ctx.id, name: ctx.name },
        board: ctx.board,
        signal: ctx.signal,
        spawn: ctx.spawn,
        emit: (name, data) => ctx.emit(name, data),
        usage: ctx.usage,
        tasks: ctx.tasks,
      }),
      (name) => ctx.useTool(name),
    );
    const tools = current.tools;
    const result = await step(current, ctx.signal, tools, (line) => ctx.log(line));
    const call = record(current, result);
    ctx.emit("model.call", call);
    ctx.usage.add({ tokens: result.usage.input + result.usage.output, costUsd: result.costUsd ?? 0 });
    current.messages.push(...result.messages);
    if (result.approvals.length > 0) {
      current.messages.push({ role: "tool", content: await decide(result, tools, ctx.requestApproval) });
      return { action: "continue" };
    }
    if (result.toolCalls.length > 0) return { action: "continue" };
    if (untold(current).length > 0) {
      current.waiting = true;
      return { action: "continue" };
    }
    return { action: "done", result: answer(result) };
  }

  async function fire(ctx: AgentContext): Promise<AgentResult | void> {
    const prompt = typeof options.prompt === "function" ? options.prompt(ctx.view) : options.prompt ?? "Do your part of the work on the board, then answer with your contribution.";
    const conversation = await open(`${prompt}\n\n${renderBoard(ctx.view)}`, ctx.signal, ctx.usage.left());
    const board: SkillBoard = {
      name: ctx.board.name,
      write: (key, value, writeOptions) => ctx.board.write(key, value, writeOptions),
      get: (key) => ctx.board.get(key),
      keys: (prefix) => ctx.board.view().keys(prefix),
    };
    const skillCtx = skillContext(conversation, {
      agent: { id: `${ctx.runId}/${ctx.agent}`, name: ctx.agent },
      board,
      signal: ctx.signal,
      spawn: ctx.spawn,
      emit: (name, data) => ctx.log(`${name} ${short(data)}`),
      usage: ctx.usage,
      tasks: undefined,
    });
    const allowed = options.permissions?.tools;
    const tools = toolSet(conversation, (name) => allowed === undefined || allowed.includes(name), skillCtx, () => {});
    try {
      await fireSteps(ctx, conversation, tools);
    } finally {
      await conversation.mcp?.close();
    }
  }

  async function fireSteps(ctx: AgentContext, conversation: Conversation, tools: Tools): Promise<void> {
    for (;;) {
      if (conversation.steps >= maxTurns) throw new ConfigError(`${who} did not answer within maxTurns (${maxTurns}) model steps`);
      ctx.signal.throwIfAborted();
      await absorb(conversation, []);
      reserve(ctx.usage.left(), conversation);
      conversation.steps++;
      const result = await step(conversation, ctx.signal, tools, (line) => ctx.log(line));
      const call = record(conversation, result);
      ctx.log(describeCall(call));
      ctx.recordCall(call);
      ctx.usage.add({ tokens: result.usage.input + result.usage.output, costUsd: result.costUsd ?? 0 });
      conversation.messages.push(...result.messages);
      if (result.approvals.length > 0) {
        conversation.messages.push({ role: "tool", content: await decide(result, tools, ctx.requestApproval) });
        continue;
      }
      if (result.toolCalls.length > 0) continue;
      const pending = untold(conversation);
      if (pending.length > 0) {
        await settleOne(pending, ctx.signal);
        continue;
      }
      const value = answer(result);
      if (options.writes !== undefined) await ctx.board.write(options.writes, value);
      return;
    }
  }

  async function run(ctx: AgentContext | SubAgentContext<ModelInput>): Promise<unknown> {
    if ("view" in ctx) return fire(ctx);
    for (;;) {
      const outcome = await turn(ctx);
      if (outcome.action === "done") return outcome.result;
    }
  }

  return {
    kind: "colony.model-agent",
    name: options.name,
    options,
    turn,
    run: run as ModelAgent<R>["run"],
    ...(options.delivery !== undefined && { delivery: options.delivery }),
    ...(Object.keys(budget).length > 0 && { budget }),
    ...(options.permissions?.tools !== undefined && { tools: [...options.permissions.tools] }),
    ...(options.trigger !== undefined && { trigger: options.trigger }),
    ...(options.maxFires !== undefined && { maxFires: options.maxFires }),
    ...(options.priority !== undefined && { priority: options.priority }),
  };
}

/**
 * Asks a person about each tool call of the step that needs approval (the agent is paused,
 * durably, meanwhile); the next step runs the approved calls and tells the model of the denied ones.
 */
async function decide(result: StepResult, tools: Tools, ask: SubAgentContext["requestApproval"]): Promise<ToolApprovalResponse[]> {
  const responses: ToolApprovalResponse[] = [];
  for (const request of result.approvals) {
    const decision = await ask({ tool: tools.names.get(request.name) ?? request.name, args: request.args });
    responses.push({ type: "tool-approval-response", approvalId: request.approvalId, approved: decision.approved, ...(decision.reason !== undefined && { reason: decision.reason }) });
  }
  return responses;
}

/** Waits until one of the helpers has ended, or the agent is stopped. */
function settleOne(handles: SubAgentHandle[], signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    const done = (): void => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    };
    for (const handle of handles) handle.result.then(done, done);
  });
}
