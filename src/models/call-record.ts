/**
 * One model call as events, logs and the CLI show it. Kept apart from the model code so that
 * what prints it (the CLI) does not load the AI SDK.
 */
import type { ModelCallRecord } from "../core/records.ts";

export type { ModelCallRecord };

/** One line for a run's log: model, tokens, cost, tool calls. */
export function describeCall(call: ModelCallRecord): string {
  const cost = call.costUsd === null ? "cost unknown" : `$${call.costUsd.toFixed(call.costUsd < 0.01 ? 5 : 3)}`;
  const tools = call.toolCalls.map((t) => `${t.name}(${t.args})${t.error ? ` ✗ ${t.error}` : ""}`).join(", ");
  return `${call.model} turn ${call.turn}: ${call.inputTokens} in / ${call.outputTokens} out, ${cost}, ${Math.round(call.ms)} ms${tools ? ` → ${tools}` : ""}`;
}

