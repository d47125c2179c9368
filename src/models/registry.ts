/**
 * Models named by string: `"openai:gpt-4.1-mini"`, `"anthropic:claude-sonnet-4-5"`,
 * `"ollama:llama3.2"`, `"local:<model>"` (any OpenAI-compatible server at
 * `COLONY_MODEL_BASE_URL`). Keys come from the usual environment variables; a missing key or an
 * unknown provider is a `ConfigError` naming what to set, raised before any call. Providers load
 * on first use, so an agent host that runs no model loads none of them.
 */
import type { LanguageModel } from "ai";
import { ConfigError } from "../core/errors.ts";

/** A model as an agent names it: `provider:model`, or a model object (a scripted one, a custom provider's). */
export type ModelSpec = string | Exclude<LanguageModel, string>;

type Env = Record<string, string | undefined>;
type Resolve = (model: string, env: Env) => Promise<Exclude<LanguageModel, string>>;

interface ProviderEntry {
  /** Environment variables the provider needs, with what each is for. */
  needs: readonly { name: string; what: string }[];
  resolve: Resolve;
}

function required(env: Env, name: string): string {
  return env[name]!;
}

const BUILT_IN: Record<string, ProviderEntry> = {
  openai: {
    needs: [{ name: "OPENAI_API_KEY", what: "your OpenAI API key" }],
    async resolve(model, env) {
      const { createOpenAI } = await import("@ai-sdk/openai");
      return createOpenAI({ apiKey: required(env, "OPENAI_API_KEY"), ...(env.OPENAI_BASE_URL && { baseURL: env.OPENAI_BASE_URL }) })(model);
    },
  },
  anthropic: {
    needs: [{ name: "ANTHROPIC_API_KEY", what: "your Anthropic API key" }],
    async resolve(model, env) {
      const { createAnthropic } = await import("@ai-sdk/anthropic");
      return createAnthropic({ apiKey: required(env, "ANTHROPIC_API_KEY"), ...(env.ANTHROPIC_BASE_URL && { baseURL: env.ANTHROPIC_BASE_URL }) })(model);
    },
  },
  ollama: {
    needs: [],
    async resolve(model, env) {
      const { createOpenAICompatible } = await import("@ai-sdk/openai-compatible");
      return createOpenAICompatible({ name: "ollama", baseURL: env.OLLAMA_BASE_URL ?? "http://127.0.0.1:11434/v1", supportsStructuredOutputs: true })(model);
    },
  },
  local: {
    needs: [{ name: "COLONY_MODEL_BASE_URL", what: "the base URL of your OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1" }],
    async resolve(model, env) {
      const { createOpenAICompatible } = await import("@ai-sdk/openai-compatible");
      return createOpenAICompatible({
        name: "local",
        baseURL: required(env, "COLONY_MODEL_BASE_URL"),
        // Ollama, vLLM, llama.cpp's server and LM Studio take a JSON schema in response_format.
        supportsStructuredOutputs: true,
        ...(env.COLONY_MODEL_API_KEY && { apiKey: env.COLONY_MODEL_API_KEY }),
      })(model);
    },
  },
};

const custom = new Map<string, (model: string) => Exclude<LanguageModel, string> | Promise<Exclude<LanguageModel, string>>>();

/**
 * Adds a provider prefix of your own (a proxy, a scripted model for tests). Registered in a module,
 * it is known wherever that module is loaded: a thread or process agent registers it in its own module.
 *
 * @example registerModelProvider("scripted", (name) => scriptedModel(scripts[name]));
 */
export function registerModelProvider(name: string, resolve: (model: string) => Exclude<LanguageModel, string> | Promise<Exclude<LanguageModel, string>>): void {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new ConfigError(`provider name ${JSON.stringify(name)}: use lowercase letters, digits and dashes`);
  if (BUILT_IN[name]) throw new ConfigError(`provider "${name}" is built in; pick another name`);
  custom.set(name, resolve);
}

const SHAPE = 'name it as provider:model, e.g. "openai:gpt-4.1-mini", "anthropic:claude-sonnet-4-5", "ollama:llama3.2" or "local:<model>"';

/**
 * What is wrong with a model name's shape or provider, or undefined: checked where an agent is
 * defined (keys are looked up where it runs, with `checkModelName`).
 */
export function modelNameProblem(name: unknown): string | undefined {
  if (typeof name !== "string") return SHAPE;
  const at = name.indexOf(":");
  if (at <= 0 || at === name.length - 1) return SHAPE;
  const provider = name.slice(0, at);
  if (custom.has(provider) || BUILT_IN[provider]) return undefined;
  const known = [...Object.keys(BUILT_IN), ...custom.keys()].join(", ");
  return `unknown provider "${provider}" (known: ${known}; add one with registerModelProvider)`;
}

/**
 * Checks that a model name can be resolved here (its shape, a known provider, the provider's
 * variables set) without loading the provider or calling anything; throws `ConfigError` naming
 * what to set.
 */
export function checkModelName(name: string, env: Env = process.env): { provider: string; model: string } {
  const problem = modelNameProblem(name);
  if (problem !== undefined) throw new ConfigError(`model ${JSON.stringify(name)}: ${problem}`);
  const at = name.indexOf(":");
  const parsed = { provider: name.slice(0, at), model: name.slice(at + 1) };
  for (const { name: variable, what } of BUILT_IN[parsed.provider]?.needs ?? []) {
    if (!env[variable]) throw new ConfigError(`model "${name}": set ${variable} to ${what}`);
  }
  return parsed;
}

/** A resolved model and the `provider:model` id its usage and price are kept under. */
export interface ResolvedModel {
  model: Exclude<LanguageModel, string>;
  id: string;
  provider: string;
  name: string;
}

/** Resolves a model name (or passes a model object through) for calls. */
export async function resolveModel(spec: ModelSpec, env: Env = process.env): Promise<ResolvedModel> {
  if (typeof spec !== "string") {
    if (typeof spec !== "object" || spec === null || typeof spec.modelId !== "string") {
      throw new ConfigError(`model: give a name like "openai:gpt-4.1-mini" or a language model object, got ${typeof spec}`);
    }
    const provider = spec.provider.split(".")[0] ?? spec.provider;
    return { model: spec, id: `${provider}:${spec.modelId}`, provider, name: spec.modelId };
  }
  const { provider, model } = checkModelName(spec, env);
  const resolved = custom.has(provider) ? await custom.get(provider)!(model) : await BUILT_IN[provider]!.resolve(model, env);
  return { model: resolved, id: spec, provider, name: model };
}
