/**
 * One model step: a single `generateText` call that offers the agent's tools by their JSON
 * schemas and runs none of them (the agent runs its tool calls itself, in its own host), retried
 * on 429 and 5xx with backoff that honours `retry-after`, bounded by a per-call timeout, aborted
 * with the agent, and failed with a typed `ModelError`. Usage comes back as the provider reported it.
 * This is the only module of Colony that calls the SDK's `generateText`; the process that owns an
 * agent loads it (see serve.ts), a thread or process agent does not.
 */
import { APICallError, generateText, jsonSchema, Output, type ModelMessage, type Tool, type ToolSet } from "ai";
import { setTimeout as sleep } from "node:timers/promises";
import { ModelError } from "../core/errors.ts";
import type { ModelStepRequest, ModelStepResult, TokenUsage } from "../core/model-steps.ts";
import { withSpan, type Span, type SpanAttributes } from "../core/tracing.ts";
import type { ResolvedModel } from "./registry.ts";

export interface StepRequest extends Omit<ModelStepRequest, "model"> {
  model: ResolvedModel;
  signal: AbortSignal;
  /** Told before each wait between attempts. */
  onRetry?: (info: { attempt: number; waitMs: number; error: ModelError }) => void;
}

const RETRYABLE = (status: number | undefined): boolean => status === 408 || status === 409 || status === 429 || (status !== undefined && status >= 500);
const MAX_WAIT_MS = 60_000;

/** How long the provider asked us to wait, from `retry-after-ms` or `retry-after` (seconds or a date). */
export function retryAfterMs(headers: Record<string, string> | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const ms = Number(lower["retry-after-ms"]);
  if (lower["retry-after-ms"] !== undefined && Number.isFinite(ms) && ms >= 0) return Math.min(ms, MAX_WAIT_MS);
  const after = lower["retry-after"];
  if (after === undefined) return undefined;
  const seconds = Number(after);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, MAX_WAIT_MS);
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.min(Math.max(0, date - now), MAX_WAIT_MS);
}

function toModelError(error: unknown, request: StepRequest, timedOut: boolean, retries: number): ModelError {
  const { provider, name } = request.model;
  const base = { provider, model: name, retries };
  if (timedOut) return new ModelError({ ...base, failure: "timeout", retryable: true, detail: `no answer within ${request.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms` }, { cause: error });
  if (APICallError.isInstance(error)) {
    const status = error.statusCode;
    const failure = status === undefined ? "network" : "http";
    return new ModelError({ ...base, failure, ...(status !== undefined && { status }), retryable: error.isRetryable || RETRYABLE(status), detail: error.message }, { cause: error });
  }
  // An answer that did not fit the output schema says why in its cause (the schema's issues).
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message.slice(0, 500)}` : "";
  const message = error instanceof Error ? `${error.message}${cause}` : String(error);
  return new ModelError({ ...base, failure: "output", retryable: false, detail: message }, { cause: error });
}

const DEFAULT_TIMEOUT_MS = 120_000;

function tokenUsage(usage: { inputTokens: number | undefined; outputTokens: number | undefined; inputTokenDetails?: { cacheReadTokens?: number | undefined; cacheWriteTokens?: number | undefined }; outputTokenDetails?: { reasoningTokens?: number | undefined } }): TokenUsage {
  return {
    input: usage.inputTokens ?? 0,
    output: usage.outputTokens ?? 0,
    cachedInput: usage.inputTokenDetails?.cacheReadTokens ?? 0,
    cacheWrite: usage.inputTokenDetails?.cacheWriteTokens ?? 0,
    reasoning: usage.outputTokenDetails?.reasoningTokens ?? 0,
  };
}

/**
 * Runs one model step; throws `ModelError` when it fails past its retries, the signal's reason when
 * aborted. Its span, over every attempt, is a `chat` span of the GenAI semantic conventions.
 */
export function runStep(request: StepRequest): Promise<ModelStepResult> {
  const { provider, name } = request.model;
  const attributes: SpanAttributes = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": provider,
    "gen_ai.request.model": name,
    ...(request.temperature !== undefined && { "gen_ai.request.temperature": request.temperature }),
    ...(request.maxOutputTokens !== undefined && { "gen_ai.request.max_tokens": request.maxOutputTokens }),
    ...(request.output && { "gen_ai.output.type": "json" }),
  };
  return withSpan(`chat ${name}`, attributes, (span) => attempts(request, span), { kind: "client" });
}

async function attempts(request: StepRequest, span: Span | undefined): Promise<ModelStepResult> {
  const maxRetries = request.maxRetries ?? 2;
  const timeoutMs = request.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const tools = toolSet(request.tools);
  for (let attempt = 0; ; attempt++) {
    const started = performance.now();
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([request.signal, timeout]);
    try {
      const result = await generateText({
        model: request.model.model,
        ...(request.instructions !== undefined && { instructions: request.instructions }),
        messages: request.messages as ModelMessage[],
        ...(tools && { tools }),
        ...(request.output && { output: Output.object({ schema: jsonSchema(request.output) }) }),
        ...(request.temperature !== undefined && { temperature: request.temperature }),
        ...(request.maxOutputTokens !== undefined && { maxOutputTokens: request.maxOutputTokens }),
        abortSignal: signal,
        maxRetries: 0,
      });
      const step = describe(result, request, performance.now() - started, attempt);
      span?.setAttributes({
        "gen_ai.response.id": result.response.id,
        "gen_ai.response.model": result.response.modelId,
        "gen_ai.response.finish_reasons": [step.finishReason],
        "gen_ai.usage.input_tokens": step.usage.input,
        "gen_ai.usage.output_tokens": step.usage.output,
        "colony.model.retries": attempt,
      });
      return step;
    } catch (error) {
      if (request.signal.aborted) throw request.signal.reason;
      const failure = toModelError(error, request, timeout.aborted, attempt);
      if (!failure.retryable || attempt >= maxRetries || failure.failure === "output") throw failure;
      const asked = APICallError.isInstance(error) ? retryAfterMs(error.responseHeaders) : undefined;
      const waitMs = asked ?? Math.min(MAX_WAIT_MS, 500 * 2 ** attempt * (0.75 + Math.random() / 2));
      request.onRetry?.({ attempt: attempt + 1, waitMs, error: failure });
      // Stopped while waiting: the agent's own reason, as for a stop during a call.
      await sleep(waitMs, undefined, { signal: request.signal }).catch(() => Promise.reject(request.signal.reason));
    }
  }
}

/** The tools as the SDK offers them: description and schema, no `execute` (so the step runs none). */
/** How a retry is told in an agent's log. */
export function retryLine(info: { attempt: number; waitMs: number; error: ModelError }): string {
  return `retry ${info.attempt} in ${Math.round(info.waitMs)} ms: ${info.error.message}`;
}

function toolSet(specs: ModelStepRequest["tools"]): ToolSet | undefined {
  if (!specs || Object.keys(specs).length === 0) return undefined;
  const tools: ToolSet = {};
  for (const [name, spec] of Object.entries(specs)) {
    tools[name] = { ...(spec.description !== undefined && { description: spec.description }), inputSchema: jsonSchema(spec.inputSchema) } as Tool;
  }
  return tools;
}

function describe(result: Awaited<ReturnType<typeof generateText>>, request: StepRequest, ms: number, retries: number): ModelStepResult {
  const errors = new Map<string, string>();
  for (const part of result.content) {
    if (part.type === "tool-error") errors.set(part.toolCallId, part.error instanceof Error ? part.error.message : String(part.error));
  }
  const toolCalls = result.toolCalls.map((call) => {
    const error = errors.get(call.toolCallId);
    return { id: call.toolCallId, name: call.toolName, args: call.input, ...(error !== undefined && { error }) };
  });
  let output: unknown;
  if (request.output && toolCalls.length === 0) {
    try {
      output = result.output;
    } catch (error) {
      throw toModelError(error, request, false, retries);
    }
  }
  return {
    modelId: request.model.id,
    text: result.text,
    ...(output !== undefined && { output }),
    finishReason: result.finishReason,
    toolCalls,
    // The agent answers the calls in a tool message of its own.
    messages: result.responseMessages.filter((message) => message.role !== "tool"),
    usage: tokenUsage(result.usage),
    ms,
    retries,
  };
}
