/**
 * What a model call costs: a price table per model, in US dollars per million tokens, and the
 * cost of one call's usage. A model the table does not know costs `undefined` (unknown), never 0:
 * a budget in dollars cannot hold over a model whose price nobody gave.
 */
import { ConfigError } from "../core/errors.ts";
import type { TokenUsage } from "../core/model-steps.ts";

export type { TokenUsage };

export interface ModelPrice {
  /** Input tokens read fresh (not from a prompt cache). */
  input: number;
  output: number;
  /** Input tokens read from the provider's prompt cache; default `input`. */
  cachedInput?: number;
  /** Input tokens written to the prompt cache (Anthropic); default `input`. */
  cacheWrite?: number;
}

/** A price list: keys are `provider:model`; a key ending in `*` covers every model it begins. */
export type PriceTable = Record<string, ModelPrice>;

/**
 * List prices of common models (USD per million tokens) as the providers publish them. Dated
 * model ids (`claude-sonnet-4-20250514`) take the price of the longest key they begin with.
 * Models served from this machine (`ollama:`, `local:`) cost nothing. Override or extend it with
 * `prices` on an agent or in a manifest.
 */
export const DEFAULT_PRICES: PriceTable = {
  "openai:gpt-5": { input: 1.25, output: 10, cachedInput: 0.125 },
  "openai:gpt-5-mini": { input: 0.25, output: 2, cachedInput: 0.025 },
  "openai:gpt-5-nano": { input: 0.05, output: 0.4, cachedInput: 0.005 },
  "openai:gpt-4.1": { input: 2, output: 8, cachedInput: 0.5 },
  "openai:gpt-4.1-mini": { input: 0.4, output: 1.6, cachedInput: 0.1 },
  "openai:gpt-4.1-nano": { input: 0.1, output: 0.4, cachedInput: 0.025 },
  "openai:gpt-4o": { input: 2.5, output: 10, cachedInput: 1.25 },
  "openai:gpt-4o-mini": { input: 0.15, output: 0.6, cachedInput: 0.075 },
  "openai:o3": { input: 2, output: 8, cachedInput: 0.5 },
  "openai:o4-mini": { input: 1.1, output: 4.4, cachedInput: 0.275 },
  "anthropic:claude-opus-4": { input: 15, output: 75, cachedInput: 1.5, cacheWrite: 18.75 },
  "anthropic:claude-opus-4-5": { input: 5, output: 25, cachedInput: 0.5, cacheWrite: 6.25 },
  "anthropic:claude-sonnet-4": { input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75 },
  "anthropic:claude-haiku-4-5": { input: 1, output: 5, cachedInput: 0.1, cacheWrite: 1.25 },
  "anthropic:claude-3-7-sonnet": { input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75 },
  "anthropic:claude-3-5-haiku": { input: 0.8, output: 4, cachedInput: 0.08, cacheWrite: 1 },
  "ollama:*": { input: 0, output: 0 },
  "local:*": { input: 0, output: 0 },
};

/** Checks a caller's price table; throws `ConfigError` naming the bad entry. */
export function checkPrices(prices: unknown, where: string): PriceTable {
  if (prices === undefined) return {};
  if (typeof prices !== "object" || prices === null || Array.isArray(prices)) throw new ConfigError(`${where}: prices maps "provider:model" to { input, output } in USD per million tokens`);
  for (const [model, price] of Object.entries(prices)) {
    if (!model.includes(":")) throw new ConfigError(`${where}: prices key ${JSON.stringify(model)} names a provider and a model, like "openai:gpt-4.1-mini"`);
    if (typeof price !== "object" || price === null) throw new ConfigError(`${where}: prices[${JSON.stringify(model)}] is { input, output } in USD per million tokens`);
    for (const [field, value] of Object.entries(price)) {
      if (!["input", "output", "cachedInput", "cacheWrite"].includes(field)) throw new ConfigError(`${where}: prices[${JSON.stringify(model)}] has no field "${field}" (input, output, cachedInput, cacheWrite)`);
      if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw new ConfigError(`${where}: prices[${JSON.stringify(model)}].${field} is a number >= 0, got ${String(value)}`);
    }
    const { input, output } = price as Partial<ModelPrice>;
    if (input === undefined || output === undefined) throw new ConfigError(`${where}: prices[${JSON.stringify(model)}] needs both input and output`);
  }
  return prices as PriceTable;
}

/** The price of `provider:model`: an exact key, else the longest key it begins with (a `*` key's stem). */
export function priceOf(modelId: string, overrides: PriceTable = {}): ModelPrice | undefined {
  for (const table of [overrides, DEFAULT_PRICES]) {
    if (table[modelId]) return table[modelId];
    let best: { length: number; price: ModelPrice } | undefined;
    for (const [key, price] of Object.entries(table)) {
      const stem = key.endsWith("*") ? key.slice(0, -1) : `${key}-`;
      if (modelId.startsWith(stem) && (best === undefined || stem.length > best.length)) best = { length: stem.length, price };
    }
    if (best) return best.price;
  }
  return undefined;
}

/** The call's cost in USD, or `undefined` when the model's price is unknown. */
export function costOf(usage: TokenUsage, price: ModelPrice | undefined): number | undefined {
  if (price === undefined) return undefined;
  const fresh = Math.max(0, usage.input - usage.cachedInput - usage.cacheWrite);
  const micro =
    fresh * price.input +
    usage.cachedInput * (price.cachedInput ?? price.input) +
    usage.cacheWrite * (price.cacheWrite ?? price.input) +
    usage.output * price.output;
  return micro / 1_000_000;
}
