/**
 * Model-backed agents. `defineModelAgent` gives one definition that works wherever an agent
 * works: as a sub-agent (`ctx.spawn`, any isolation; a task worker's agent; a workflow's step)
 * Colony runs it turn by turn, one model step per turn, so its inbox is drained and its budget
 * checked between steps and `terminate` aborts the call in flight; as a loop agent its trigger
 * decides when it fires, and it sees the board through a rendered view and its skills.
 */
import type { ModelMessage, Tool } from "ai";
import type { z } from "zod";
import type { BoardView } from "../core/board.ts";
import { ConfigError, ModelError } from "../core/errors.ts";
import type { ModelStepRequest, ModelStepResult, ToolSpec } from "../core/model-steps.ts";
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
import { checkMcpServers, connectMcp, type McpConnection, type McpServer } from "./mcp.ts";
import { checkPrices, costOf, priceOf, type PriceTable } from "./prices.ts";
import { modelNameProblem, resolveModel, type ModelSpec, type ResolvedModel } from "./registry.ts";
import { checkBuiltInSkill, isSkill, skillTool, wireName, type AnySkill, type SkillBoard, type SkillContext } from "./skills.ts";
import { closed, isStandardSchema, runnableTool, runToolCalls, schemaOf, type RunnableTool, type ToolOutcome } from "./tool-calls.ts";

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

/** What the final answer is asked to fit (an object: providers want one) and how it is checked and unwrapped. */
interface OutputPlan {
  json: Record<string, unknown>;
  take(value: unknown): Promise<{ ok: true; value: unknown } | { ok: false; error: string }>;
}

/** A non-object output schema is asked for wrapped in `{ result }` and unwrapped. */
async function outputPlan(schema: z.ZodType | undefined, who: string): Promise<OutputPlan | undefined> {
  if (!schema) return undefined;
  const { json, check } = await schemaOf(schema, `${who}: its output`);
  if (json.type === "object") return { json: closed(json), take: check };
  const { $schema, ...inner } = json;
  return {
    json: closed({ ...($schema !== undefined && { $schema }), type: "object", properties: { result: inner }, required: ["result"] }),
    take: (value) => check(typeof value === "object" && value !== null ? (value as { result?: unknown }).result : undefined),
  };
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
  if (!("input" in given) || !isStandardSchema(given.input)) return given as Tool;
  const { description, input, execute } = given;
  return { ...(description !== undefined && { description }), inputSchema: input, execute: async (args: unknown) => execute(args as never) } as Tool;
}

/** The tools a call offers (by the name the model calls them) and their schemas as the model sees them. */
interface Tools {
  byWire: Map<string, RunnableTool>;
  specs: Record<string, ToolSpec> | undefined;
}

/** What stays between the turns of one run of a model agent. */
interface Conversation {
  /** The model, resolved where this agent calls it itself (inline, or a provider its owner does not know). */
  model: ResolvedModel | undefined;
  /** The owning process's model steps (thread and process agents), until it says it cannot. */
  remote: SubAgentContext["models"];
  output: OutputPlan | undefined;
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
  const skills = options.skills ?? [];
  for (const skill of skills) {
    if (typeof skill === "string") checkBuiltInSkill(skill, who);
    else if (!isSkill(skill)) throw new ConfigError(`${who}: skills are built-in names or defineSkill(...) skills`);
  }
  if (skills.includes("agents.spawn") && typeof options.model !== "string") {
    // A helper loads by reference, in any isolation, and finds its model by name there.
    throw new ConfigError(`${who}: agents.spawn starts helpers that find the model by name; name it ("openai:…", or a prefix of registerModelProvider) rather than give a model object`);
  }
  const names = [...Object.keys(options.tools ?? {}), ...skills.map((s) => (typeof s === "string" ? s : s.name))];
  const duplicate = names.find((name, i) => names.indexOf(name) !== i || names.findIndex((other) => wireName(other) === wireName(name)) !== i);
  if (duplicate !== undefined) throw new ConfigError(`${who}: two tools are named ${JSON.stringify(duplicate)}`);
  const unknownRule = Object.keys(options.needsApproval ?? {}).find((name) => !names.includes(name));
  if (unknownRule !== undefined) throw new ConfigError(`${who}: needsApproval names "${unknownRule}", which is none of its tools (${names.join(", ") || "it has none"})`);
  const mcpServers = checkMcpServers(options.mcp, who);
  const conversations = new WeakMap<object, Conversation>();

  /** The tools the model gets: only what the agent may use, each with its approval rule. */
  async function toolSet(conversation: Conversation, allowed: (name: string) => boolean, skillCtx: () => SkillContext): Promise<Tools> {
    const byWire = new Map<string, RunnableTool>();
    const add = async (name: string, base: Tool, skillRule?: boolean | ((args: unknown) => boolean)): Promise<void> => {
      if (!allowed(name)) return;
      const runnable = await runnableTool(name, base, who);
      const given = options.needsApproval?.[name] ?? skillRule;
      if (given === true) runnable.needsApproval = () => true;
      else if (typeof given === "function") runnable.needsApproval = (args) => given(args);
      byWire.set(wireName(name), runnable);
    };
    for (const [name, base] of Object.entries(options.tools ?? {})) await add(name, asTool(base));
    for (const [name, base] of conversation.mcp?.tools ?? []) await add(name, base);
    // The built-in ones load here, where an agent has one (they bring zod).
    const builtIn = skills.some((skill) => typeof skill === "string") ? (await import("./built-in-skills.ts")).BUILT_IN_SKILLS : {};
    for (const given of skills) {
      const skill = typeof given === "string" ? builtIn[given]! : given;
      await add(skill.name, skillTool(skill, skillCtx), skill.needsApproval);
    }
    return { byWire, specs: byWire.size > 0 ? Object.fromEntries([...byWire].map(([wire, tool]) => [wire, tool.spec])) : undefined };
  }

  /** Refuses a call whose estimated tokens would not fit what is left of the budget. */
  function reserve(left: { tokens?: number; costUsd?: number }, conversation: Conversation): void {
    if (left.tokens === undefined) return;
    for (let i = conversation.counted; i < conversation.messages.length; i++) conversation.chars += JSON.stringify(conversation.messages[i]).length;
    conversation.counted = conversation.messages.length;
    const estimate = Math.ceil(((options.instructions?.length ?? 0) + conversation.chars) / 4) + (options.maxOutputTokens ?? DEFAULT_OUTPUT_ESTIMATE);
    if (estimate > left.tokens) throw new BudgetExceededError("tokens", left.tokens, estimate, `${options.name}'s remaining budget (a call is estimated at ${estimate} tokens)`);
  }

  /** One model step: made by the owning process where it can (thread and process agents), else here. */
  async function step(conversation: Conversation, signal: AbortSignal, tools: Tools, log: (text: string) => void): Promise<ModelStepResult> {
    const request: Omit<ModelStepRequest, "model"> = {
      ...(options.instructions !== undefined && { instructions: options.instructions }),
      messages: conversation.messages,
      ...(tools.specs && { tools: tools.specs }),
      ...(conversation.output && { output: conversation.output.json }),
      ...(options.temperature !== undefined && { temperature: options.temperature }),
      ...(options.maxOutputTokens !== undefined && { maxOutputTokens: options.maxOutputTokens }),
      ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
      ...(options.maxRetries !== undefined && { maxRetries: options.maxRetries }),
    };
    if (conversation.remote && typeof options.model === "string") {
      const answer = await conversation.remote.step({ ...request, model: options.model });
      if (!("unavailable" in answer)) return answer;
      conversation.remote = undefined;
      log(`${options.model} is called by this agent itself: the process that owns it cannot (${answer.unavailable})`);
    }
    const { runStep, retryLine } = await import("./call.ts");
    conversation.model ??= await resolveModel(options.model);
    return runStep({ ...request, model: conversation.model, signal, onRetry: (info) => log(retryLine(info)) });
  }

  function record(conversation: Conversation, result: ModelStepResult, costUsd: number | undefined, outcomes: ReadonlyMap<string, ToolOutcome>): ModelCallRecord {
    return {
      agent: options.name,
      model: result.modelId,
      turn: conversation.steps,
      inputTokens: result.usage.input,
      outputTokens: result.usage.output,
      cachedTokens: result.usage.cachedInput,
      reasoningTokens: result.usage.reasoning,
      costUsd: costUsd ?? null,
      ms: Math.round(result.ms * 100) / 100,
      retries: result.retries,
      finishReason: result.finishReason,
      toolCalls: result.toolCalls.map((call) => {
        const outcome = outcomes.get(call.id);
        const error = outcome && !outcome.ok ? ("denied" in outcome ? `denied${outcome.denied === undefined ? "" : `: ${outcome.denied}`}` : outcome.error) : undefined;
        return { name: call.name, args: short(call.args), ...(error !== undefined && { error }) };
      }),
    };
  }

  async function open(input: unknown, signal: AbortSignal, left: { costUsd?: number }, remote: SubAgentContext["models"]): Promise<Conversation> {
    // Called by the owning process, a named model is resolved there; here only a model object or where nobody else can.
    const model = remote && typeof options.model === "string" ? undefined : await resolveModel(options.model);
    const id = model?.id ?? (options.model as string);
    if (left.costUsd !== undefined && priceOf(id, prices) === undefined) {
      throw new ConfigError(`${who}: a budget in dollars holds over it, but the price of ${id} is unknown; give it in prices: { "${id}": { input, output } } (USD per million tokens)`);
    }
    signal.throwIfAborted();
    const { prompt, messages } = promptOf(input);
    const output = await outputPlan(options.output, who);
    const mcp = Object.keys(mcpServers).length > 0 ? await connectMcp(mcpServers, who) : undefined;
    const clash = [...(mcp?.tools.keys() ?? [])].find((name) => names.some((own) => wireName(own) === wireName(name)));
    if (clash !== undefined) {
      await mcp!.close();
      throw new ConfigError(`${who}: its MCP tool ${clash} has the name of one of its own tools`);
    }
    return { model, remote, output, messages: [...messages, { role: "user", content: prompt }], steps: 0, children: new Map(), waiting: false, mcp, chars: 0, counted: 0 };
  }

  /** The answer of a step that made no tool calls, checked against the output schema. */
  async function answer(conversation: Conversation, result: ModelStepResult): Promise<R> {
    if (!conversation.output) return result.text as R;
    const taken = await conversation.output.take(result.output);
    if (taken.ok) return taken.value as R;
    const at = result.modelId.indexOf(":");
    throw new ModelError({ provider: result.modelId.slice(0, at), model: result.modelId.slice(at + 1), failure: "output", retries: result.retries, retryable: false, detail: `the answer does not fit the output schema: ${taken.error}` });
  }

  /**
   * After a step: its usage charged, its tool calls run (approvals asked first), its messages and
   * the tools' answers added to the conversation. Returns the call's record and whether it called tools.
   */
  async function afterStep(
    conversation: Conversation,
    result: ModelStepResult,
    tools: Tools,
    ctx: { signal: AbortSignal; usage: { add(usage: { tokens: number; costUsd: number }, options: { spent: true }): void }; requestApproval: SubAgentContext["requestApproval"]; use(name: string): void },
  ): Promise<{ call: ModelCallRecord; calledTools: boolean }> {
    // The call was made: what it cost counts even where it crosses a budget (which then stops the agent).
    const costUsd = costOf(result.usage, priceOf(result.modelId, prices));
    ctx.usage.add({ tokens: result.usage.input + result.usage.output, costUsd: costUsd ?? 0 }, { spent: true });
    const sent = conversation.messages.slice();
    conversation.messages.push(...(result.messages as ModelMessage[]));
    if (result.toolCalls.length === 0) return { call: record(conversation, result, costUsd, new Map()), calledTools: false };
    const { message, outcomes } = await runToolCalls(result.toolCalls, tools.byWire, {
      messages: sent,
      signal: ctx.signal,
      ask: (tool, args) => ctx.requestApproval({ tool, args }),
      use: ctx.use,
    });
    conversation.messages.push(message);
    return { call: record(conversation, result, costUsd, outcomes), calledTools: true };
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
      model: { spec: typeof options.model === "string" ? options.model : conversation.model!.id },
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
      conversation = await open(ctx.input, ctx.signal, ctx.usage.left(), ctx.models);
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
    current.tools ??= await toolSet(
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
    );
    const result = await step(current, ctx.signal, current.tools, (line) => ctx.log(line));
    const { call, calledTools } = await afterStep(current, result, current.tools, {
      signal: ctx.signal,
      usage: ctx.usage,
      requestApproval: ctx.requestApproval,
      use: (name) => ctx.useTool(name),
    });
    ctx.emit("model.call", call);
    if (calledTools) return { action: "continue" };
    if (untold(current).length > 0) {
      current.waiting = true;
      return { action: "continue" };
    }
    return { action: "done", result: await answer(current, result) };
  }

  async function fire(ctx: AgentContext): Promise<AgentResult | void> {
    const prompt = typeof options.prompt === "function" ? options.prompt(ctx.view) : options.prompt ?? "Do your part of the work on the board, then answer with your contribution.";
    const conversation = await open(`${prompt}\n\n${renderBoard(ctx.view)}`, ctx.signal, ctx.usage.left(), undefined);
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
    try {
      const tools = await toolSet(conversation, (name) => allowed === undefined || allowed.includes(name), skillCtx);
      await fireSteps(ctx, conversation, tools);
    } finally {
      await conversation.mcp?.close();
    }
  }

  async function fireSteps(ctx: AgentContext, conversation: Conversation, tools: Tools): Promise<void> {
    for (;;) {
      if (conversation.steps >= maxTurns) throw new ConfigError(`${who} did not answer within maxTurns (${maxTurns}) model steps`);
      if (conversation.steps > 0) await ctx.beforeTurn(conversation.steps + 1);
      ctx.signal.throwIfAborted();
      await absorb(conversation, []);
      reserve(ctx.usage.left(), conversation);
      conversation.steps++;
      const result = await step(conversation, ctx.signal, tools, (line) => ctx.log(line));
      const { call, calledTools } = await afterStep(conversation, result, tools, { signal: ctx.signal, usage: ctx.usage, requestApproval: ctx.requestApproval, use: () => {} });
      ctx.log(describeCall(call));
      ctx.recordCall(call);
      if (calledTools) continue;
      const pending = untold(conversation);
      if (pending.length > 0) {
        await settleOne(pending, ctx.signal);
        continue;
      }
      const value = await answer(conversation, result);
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
