/**
 * One model step: a single `generateText` call (the SDK's default stop is one step: the model
 * answers, the tools it called run, their results come back as messages), retried on 429 and
 * 5xx with backoff that honours `retry-after`, bounded by a per-call timeout, aborted with the
 * agent, and failed with a typed `ModelError`. Usage comes back as the provider reported it.
 */
import { APICallError, generateText, Output, type ModelMessage, type ToolApprovalConfiguration, type ToolSet } from "ai";
import { setTimeout as sleep } from "node:timers/promises";
import type { z } from "zod";
import { ModelError } from "../core/errors.ts";
import { costOf, priceOf, type PriceTable, type TokenUsage } from "./prices.ts";
import type { ResolvedModel } from "./registry.ts";

export interface StepRequest {
  model: ResolvedModel;
  instructions?: string;
  messages: ModelMessage[];
  tools?: ToolSet;
  toolApproval?: ToolApprovalConfiguration<ToolSet, never>;
  output?: z.ZodType;
  temperature?: number;
  maxOutputTokens?: number;
  signal: AbortSignal;
  /** Per attempt; default 120 s. */
  timeoutMs?: number;
  /** Default 2. */
  maxRetries?: number;
  prices?: PriceTable;
  /** Told before each wait between attempts. */
  onRetry?: (info: { attempt: number; waitMs: number; error: ModelError }) => void;
}

/** A tool call the model made in the step, and what became of it. */
export interface StepToolCall {
  id: string;
  name: string;
  args: unknown;
  /** The tool's result or error, when it ran in the step. */
  outcome?: { ok: true; result: unknown } | { ok: false; error: string };
}

/** A tool call that waits for a person's decision before it runs. */
export interface StepApproval {
  approvalId: string;
  toolCallId: string;
  name: string;
  args: unknown;
}

export interface StepResult {
  text: string;
  /** The parsed structured output, when `output` was given and the step ended without tool calls. */
  output?: unknown;
  finishReason: string;
  toolCalls: StepToolCall[];
  approvals: StepApproval[];
  /** The step's assistant and tool messages, to append to the conversation. */
  messages: ModelMessage[];
  usage: TokenUsage;
  /** USD; `undefined` when the model's price is unknown. */
  costUsd: number | undefined;
  ms: number;
  retries: number;
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

/** Runs one model step; throws `ModelError` when it fails past its retries, the signal's reason when aborted. */
export async function runStep(request: StepRequest): Promise<StepResult> {
  const maxRetries = request.maxRetries ?? 2;
  const timeoutMs = request.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  for (let attempt = 0; ; attempt++) {
    const started = performance.now();
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([request.signal, timeout]);
    try {
      const result = await generateText({
        model: request.model.model,
        ...(request.instructions !== undefined && { instructions: request.instructions }),
        messages: request.messages,
        ...(request.tools && { tools: request.tools }),
        ...(request.toolApproval && { toolApproval: request.toolApproval }),
        ...(request.output && { output: Output.object({ schema: request.output }) }),
        ...(request.temperature !== undefined && { temperature: request.temperature }),
        ...(request.maxOutputTokens !== undefined && { maxOutputTokens: request.maxOutputTokens }),
        abortSignal: signal,
        maxRetries: 0,
      });
      return describe(result, request, performance.now() - started, attempt);
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

function describe(result: Awaited<ReturnType<typeof generateText>>, request: StepRequest, ms: number, retries: number): StepResult {
  const usage = tokenUsage(result.usage);
  const outcomes = new Map<string, StepToolCall["outcome"]>();
  const approvals: StepApproval[] = [];
  for (const part of result.content) {
    if (part.type === "tool-result") outcomes.set(part.toolCallId, { ok: true, result: part.output });
    else if (part.type === "tool-error") outcomes.set(part.toolCallId, { ok: false, error: part.error instanceof Error ? part.error.message : String(part.error) });
    else if (part.type === "tool-approval-request") {
      approvals.push({ approvalId: part.approvalId, toolCallId: part.toolCall.toolCallId, name: part.toolCall.toolName, args: part.toolCall.input });
    }
  }
  const toolCalls = result.toolCalls.map((call) => {
    const outcome = outcomes.get(call.toolCallId);
    return { id: call.toolCallId, name: call.toolName, args: call.input, ...(outcome && { outcome }) };
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
    text: result.text,
    ...(output !== undefined && { output }),
    finishReason: result.finishReason,
    toolCalls,
    approvals,
    messages: result.responseMessages,
    usage,
    costUsd: costOf(usage, priceOf(request.model.id, request.prices)),
    ms,
    retries,
  };
}
