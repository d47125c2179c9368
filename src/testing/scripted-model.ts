/**
 * A scripted language model for tests: each call takes the next scripted reply (text, tool calls,
 * a structured answer or an HTTP failure), after an optional latency that the call's abort signal
 * cuts short. Built on the AI SDK's own mock model, so it goes through the real `generateText`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { APICallError } from "@ai-sdk/provider";
import type { LanguageModelV4CallOptions, LanguageModelV4GenerateResult } from "@ai-sdk/provider";
import { MockLanguageModelV4 } from "ai/test";

export type ScriptedReply =
  | { text: string; usage?: { input: number; output: number; cached?: number; reasoning?: number } }
  | { toolCalls: { name: string; args: unknown }[]; text?: string; usage?: { input: number; output: number } }
  /** A structured answer, sent as its JSON text. */
  | { object: unknown; usage?: { input: number; output: number } }
  | { error: { status: number; headers?: Record<string, string>; message?: string } };

export interface ScriptedModelOptions {
  /** Default `scripted`. */
  provider?: string;
  /** Default `model`. */
  modelId?: string;
  /** Each call answers after this long (aborted with the call); default 0. */
  latencyMs?: number;
  /** Once the script is used up; default: the last reply again. */
  fallback?: ScriptedReply | ((call: number, options: LanguageModelV4CallOptions) => ScriptedReply);
}

export interface ScriptedModel extends MockLanguageModelV4 {
  /** How many calls it has answered (failures included). */
  readonly calls: number;
}

function answer(reply: ScriptedReply, call: number, prompt: unknown): LanguageModelV4GenerateResult {
  if ("error" in reply) {
    throw new APICallError({
      message: reply.error.message ?? `scripted failure ${reply.error.status}`,
      url: "scripted://model",
      requestBodyValues: prompt,
      statusCode: reply.error.status,
      ...(reply.error.headers && { responseHeaders: reply.error.headers }),
      isRetryable: reply.error.status === 429 || reply.error.status >= 500,
    });
  }
  const text = "object" in reply ? JSON.stringify(reply.object) : reply.text;
  const toolCalls = "toolCalls" in reply ? reply.toolCalls : [];
  const content: LanguageModelV4GenerateResult["content"] = [];
  if (text) content.push({ type: "text", text });
  toolCalls.forEach((tc, i) => content.push({ type: "tool-call", toolCallId: `call-${call}-${i}`, toolName: tc.name, input: JSON.stringify(tc.args) }));
  const usage: { input: number; output: number; cached?: number; reasoning?: number } = reply.usage ?? {
    input: Math.max(1, Math.ceil(JSON.stringify(prompt).length / 4)),
    output: Math.max(1, Math.ceil(JSON.stringify(content).length / 4)),
  };
  const cached = usage.cached ?? 0;
  const reasoning = usage.reasoning ?? 0;
  return {
    content,
    finishReason: { unified: toolCalls.length > 0 ? "tool-calls" : "stop", raw: undefined },
    usage: {
      inputTokens: { total: usage.input, noCache: usage.input - cached, cacheRead: cached, cacheWrite: undefined },
      outputTokens: { total: usage.output, text: usage.output - reasoning, reasoning },
    },
    warnings: [],
  };
}

/**
 * @example
 * const model = scriptedModel([
 *   { toolCalls: [{ name: "board_read", args: { key: "draft" } }] },
 *   { text: "The draft needs a conclusion." },
 * ]);
 * const critic = defineModelAgent({ name: "critic", model, skills: ["board.read"] });
 */
export function scriptedModel(script: readonly ScriptedReply[], options: ScriptedModelOptions = {}): ScriptedModel {
  let calls = 0;
  const model = new MockLanguageModelV4({
    provider: options.provider ?? "scripted",
    modelId: options.modelId ?? "model",
    doGenerate: async (callOptions) => {
      const call = calls++;
      if (options.latencyMs) await sleep(options.latencyMs, undefined, { signal: callOptions.abortSignal });
      const fallback = options.fallback ?? script[script.length - 1];
      const reply = script[call] ?? (typeof fallback === "function" ? fallback(call, callOptions) : fallback);
      if (!reply) throw new Error("scriptedModel: the script is empty");
      return answer(reply, call, callOptions.prompt);
    },
  });
  Object.defineProperty(model, "calls", { get: () => calls });
  return model as ScriptedModel;
}
