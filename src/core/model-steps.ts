/**
 * A model step as it crosses from an agent's host to the runtime that owns it. A thread or
 * process model agent does not load the model SDK: it sends the conversation, its tools' JSON
 * schemas and its settings, the owning process calls the model (with its keys and its warm SDK)
 * and answers with what the model said; the agent runs the tool calls itself. Types only: the
 * runtime carries these, the model layer (src/models) fills them.
 */

/** One call's token counts, as providers report them. */
export interface TokenUsage {
  /** All input tokens, cached ones included. */
  input: number;
  output: number;
  /** Of `input`, read from the prompt cache. */
  cachedInput: number;
  /** Of `input`, written to the prompt cache. */
  cacheWrite: number;
  /** Of `output`, spent reasoning (billed as output). */
  reasoning: number;
}

/** A tool as the model is shown it: no code, a JSON Schema of its arguments. */
export interface ToolSpec {
  description?: string;
  inputSchema: Record<string, unknown>;
}

export interface ModelStepRequest {
  /** A model name (`"openai:gpt-4.1-mini"`), resolved where the step runs. */
  model: string;
  instructions?: string;
  /** The conversation so far (the AI SDK's `ModelMessage`s). */
  messages: unknown[];
  /** By the name the model calls them. */
  tools?: Record<string, ToolSpec>;
  /** A JSON Schema the final answer must fit (an object). */
  output?: Record<string, unknown>;
  temperature?: number;
  maxOutputTokens?: number;
  /** Per attempt. */
  timeoutMs?: number;
  maxRetries?: number;
}

export interface ModelStepResult {
  /** The model's own id (`provider:model`), for prices and records. */
  modelId: string;
  text: string;
  /** The answer parsed as JSON, when an output schema was given and no tool was called (not yet checked against it). */
  output?: unknown;
  finishReason: string;
  /** Calls to run; `error` says why one cannot (its arguments were not JSON, say). */
  toolCalls: { id: string; name: string; args: unknown; error?: string }[];
  /** The step's assistant message(s), to append to the conversation. */
  messages: unknown[];
  usage: TokenUsage;
  ms: number;
  retries: number;
}

/** The owning process's side: steps for its agents, each agent's resolved models kept until it ends. */
export interface ModelSteps {
  /** `unavailable` when this process does not know the model's provider: the agent calls it itself. */
  step(owner: string, request: ModelStepRequest, signal: AbortSignal, log: (line: string) => void): Promise<ModelStepResult | { unavailable: string }>;
  release(owner: string): void;
}
