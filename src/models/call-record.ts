/**
 * One model call as events, logs and the CLI show it. Kept apart from the model code so that
 * what prints it (the CLI) does not load the AI SDK.
 */

/** One model call, as events and records show it. */
export interface ModelCallRecord {
  agent: string;
  model: string;
  turn: number;
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  /** USD; `null` when the model's price is unknown. */
  costUsd: number | null;
  ms: number;
  retries: number;
  finishReason: string;
  toolCalls: { name: string; args: string; error?: string }[];
}

/** One line for a run's log: model, tokens, cost, tool calls. */
export function describeCall(call: ModelCallRecord): string {
  const cost = call.costUsd === null ? "cost unknown" : `$${call.costUsd.toFixed(call.costUsd < 0.01 ? 5 : 3)}`;
  const tools = call.toolCalls.map((t) => `${t.name}(${t.args})${t.error ? ` ✗ ${t.error}` : ""}`).join(", ");
  return `${call.model} turn ${call.turn}: ${call.inputTokens} in / ${call.outputTokens} out, ${cost}, ${Math.round(call.ms)} ms${tools ? ` → ${tools}` : ""}`;
}

