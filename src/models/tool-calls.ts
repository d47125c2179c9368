/**
 * Tools as Colony runs them. A model step offers the agent's tools by JSON Schema and runs none
 * (see call.ts); the agent runs the calls itself, in its own host (inline, thread or process):
 * each call's arguments are checked against the tool's own schema, a tool that needs approval
 * waits for a person first, the calls run at once, and the model is answered in one tool message,
 * errors and denials included, as the AI SDK would answer it. Nothing here loads the SDK.
 */
import type { ModelMessage, Tool, ToolResultPart } from "ai";
import { ConfigError } from "../core/errors.ts";
import type { ModelStepResult, ToolSpec } from "../core/model-steps.ts";
import { withSpan } from "../core/tracing.ts";

type Check = (value: unknown) => Promise<{ ok: true; value: unknown } | { ok: false; error: string }>;

/** A tool ready to offer and to run. */
export interface RunnableTool {
  /** How permissions and approvals name it (the model sees `wireName(name)`). */
  name: string;
  spec: ToolSpec;
  check: Check;
  execute: (args: unknown, options: { toolCallId: string; messages: ModelMessage[]; abortSignal: AbortSignal }) => unknown;
  toModelOutput?: Tool["toModelOutput"];
  /** Whether a call with these arguments waits for a person's decision. */
  needsApproval?: (args: unknown) => boolean;
}

interface StandardSchema {
  "~standard": {
    validate(value: unknown): { value?: unknown; issues?: readonly { message: string; path?: readonly unknown[] }[] } | Promise<{ value?: unknown; issues?: readonly { message: string; path?: readonly unknown[] }[] }>;
    jsonSchema?: { input(options: { target: string }): Record<string, unknown> };
  };
}

export function isStandardSchema(value: unknown): value is StandardSchema {
  return typeof value === "object" && value !== null && "~standard" in value;
}

function issuesText(issues: readonly { message: string; path?: readonly unknown[] }[]): string {
  return issues.map((issue) => (issue.path && issue.path.length > 0 ? `${issue.path.map((p) => (typeof p === "object" && p !== null && "key" in p ? String(p.key) : String(p))).join(".")}: ${issue.message}` : issue.message)).join("; ");
}

/**
 * A JSON Schema whose objects admit no properties beyond their own, as providers' strict modes
 * (OpenAI's structured outputs) require unless the schema says otherwise.
 */
export function closed(schema: Record<string, unknown>): Record<string, unknown> {
  const visit = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(visit);
    if (typeof node !== "object" || node === null) return node;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) out[key] = key === "properties" && typeof value === "object" && value !== null ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, visit(v)])) : visit(value);
    if (out.type === "object" && out.additionalProperties === undefined) out.additionalProperties = false;
    return out;
  };
  return visit(schema) as Record<string, unknown>;
}

const ANY_OBJECT = { type: "object", properties: {} };

/**
 * A schema's JSON Schema and its check: a Standard Schema (zod 4 and others that can say their
 * JSON Schema), an AI SDK schema (`jsonSchema(...)`, what MCP tools carry), or a lazy one.
 */
export async function schemaOf(given: unknown, who: string): Promise<{ json: Record<string, unknown>; check: Check }> {
  const schema = typeof given === "function" ? (given as () => unknown)() : given;
  if (schema === undefined || schema === null) return { json: ANY_OBJECT, check: async (value) => ({ ok: true, value }) };
  if (isStandardSchema(schema)) {
    const standard = schema["~standard"];
    if (!standard.jsonSchema) throw new ConfigError(`${who}: its schema cannot say its JSON Schema (use zod 4 or another Standard JSON Schema library)`);
    return {
      json: standard.jsonSchema.input({ target: "draft-07" }),
      async check(value) {
        const result = await standard.validate(value);
        return result.issues ? { ok: false, error: issuesText(result.issues) } : { ok: true, value: result.value };
      },
    };
  }
  if (typeof schema === "object" && "jsonSchema" in schema) {
    const { jsonSchema, validate } = schema as { jsonSchema: unknown; validate?: (value: unknown) => Promise<{ success: true; value: unknown } | { success: false; error: Error }> };
    return {
      json: (await jsonSchema) as Record<string, unknown>,
      async check(value) {
        if (!validate) return { ok: true, value };
        const result = await validate(value);
        return result.success ? { ok: true, value: result.value } : { ok: false, error: result.error.message };
      },
    };
  }
  throw new ConfigError(`${who}: its schema is neither a zod (Standard) schema nor an AI SDK jsonSchema(...)`);
}

/** An AI SDK tool (or anything of its shape) as Colony runs it. */
export async function runnableTool(name: string, given: Tool, who: string): Promise<RunnableTool> {
  if (typeof given.execute !== "function") throw new ConfigError(`${who}: tool ${name} has no execute function (Colony runs its agents' tools)`);
  const { json, check } = await schemaOf(given.inputSchema, `${who}: tool ${name}`);
  const description = typeof given.description === "function" ? (given.description as (options: { context: undefined }) => string)({ context: undefined }) : given.description;
  const execute = given.execute as RunnableTool["execute"];
  return {
    name,
    spec: { ...(description !== undefined && { description }), inputSchema: closed(json) },
    check,
    execute: (args, options) => execute(args, { ...options, context: undefined } as never),
    ...(given.toModelOutput && { toModelOutput: given.toModelOutput }),
  };
}

/** What a tool call came to. */
export type ToolOutcome = { ok: true; result: unknown } | { ok: false; error: string } | { ok: false; denied: string | undefined };

export interface ToolCallContext {
  /** The conversation the model was sent (what a tool's `execute` is told). */
  messages: ModelMessage[];
  signal: AbortSignal;
  /** Asks a person; resolves with their decision. */
  ask(tool: string, args: unknown): Promise<{ approved: boolean; reason?: string }>;
  /** Checks the agent may use the tool now; throws if not. */
  use(name: string): void;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function finalValue(value: unknown): Promise<unknown> {
  if (typeof value === "object" && value !== null && Symbol.asyncIterator in value) {
    let last: unknown;
    for await (const part of value as AsyncIterable<unknown>) last = part;
    return last;
  }
  return value;
}

/**
 * Runs a step's tool calls: approvals first, one at a time and in order (a person answers them),
 * then every approved call at once. Returns the tool message that answers the model and each
 * call's outcome, by call id.
 */
export async function runToolCalls(calls: ModelStepResult["toolCalls"], tools: ReadonlyMap<string, RunnableTool>, ctx: ToolCallContext): Promise<{ message: ModelMessage; outcomes: Map<string, ToolOutcome> }> {
  const outcomes = new Map<string, ToolOutcome>();
  const approved: { id: string; tool: RunnableTool; args: unknown }[] = [];
  for (const call of calls) {
    const tool = tools.get(call.name);
    if (call.error !== undefined) outcomes.set(call.id, { ok: false, error: call.error });
    else if (!tool) outcomes.set(call.id, { ok: false, error: `there is no tool named ${call.name} (there are ${[...tools.keys()].join(", ") || "none"})` });
    else {
      const checked = await tool.check(call.args);
      if (!checked.ok) outcomes.set(call.id, { ok: false, error: `invalid arguments for ${call.name}: ${checked.error}` });
      else if (tool.needsApproval?.(checked.value)) {
        const decision = await ctx.ask(tool.name, checked.value);
        if (decision.approved) approved.push({ id: call.id, tool, args: checked.value });
        else outcomes.set(call.id, { ok: false, denied: decision.reason });
      } else approved.push({ id: call.id, tool, args: checked.value });
    }
  }
  await Promise.all(
    approved.map(async ({ id, tool, args }) => {
      try {
        const attributes = { "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool.name, "gen_ai.tool.call.id": id, "gen_ai.tool.type": "function" };
        const result = await withSpan(`execute_tool ${tool.name}`, attributes, async () => {
          ctx.use(tool.name);
          return finalValue(await tool.execute(args, { toolCallId: id, messages: ctx.messages, abortSignal: ctx.signal }));
        });
        outcomes.set(id, { ok: true, result });
      } catch (error) {
        ctx.signal.throwIfAborted();
        outcomes.set(id, { ok: false, error: message(error) });
      }
    }),
  );
  const content: ToolResultPart[] = [];
  for (const call of calls) {
    const outcome = outcomes.get(call.id)!;
    const tool = tools.get(call.name);
    content.push({ type: "tool-result", toolCallId: call.id, toolName: call.name, output: await modelOutput(outcome, tool, call) });
  }
  return { message: { role: "tool", content }, outcomes };
}

async function modelOutput(outcome: ToolOutcome, tool: RunnableTool | undefined, call: ModelStepResult["toolCalls"][number]): Promise<ToolResultPart["output"]> {
  if ("denied" in outcome) return { type: "execution-denied", ...(outcome.denied !== undefined && { reason: outcome.denied }) };
  if (!outcome.ok) return { type: "error-text", value: outcome.error };
  if (tool?.toModelOutput) return (await tool.toModelOutput({ toolCallId: call.id, input: call.args, output: outcome.result } as never)) as ToolResultPart["output"];
  if (typeof outcome.result === "string") return { type: "text", value: outcome.result };
  return { type: "json", value: (outcome.result === undefined ? null : outcome.result) as never };
}
