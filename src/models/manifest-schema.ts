/**
 * The shape of a manifest, as zod schemas. Every object is strict: a misspelt key is an error
 * naming the keys there are, not a setting silently ignored. Triggers and goals are data
 * (`{ has, missing, tag }`) turned into functions here; a string is refused, never evaluated.
 */
import { z } from "zod";
import type { BoardView } from "../core/board.ts";

/** A strict object whose unknown keys are named with the keys it takes. */
function strict<S extends z.ZodRawShape>(what: string, shape: S) {
  const keys = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code === "unrecognized_keys") {
        const near = closest(issue.keys[0] ?? "", Object.keys(shape));
        return `unknown key in ${what}${near === undefined ? "" : `; did you mean ${near}?`} (it takes ${keys})`;
      }
      if (issue.code === "invalid_type") return `expected ${what}: a map of ${keys}; got ${gotten(issue.input)}`;
      return undefined;
    },
  });
}

/** The known key a misspelt one is most likely meant as: at most two edits away. */
function closest(key: string, known: string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(key.toLowerCase(), name.toLowerCase());
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** What a value is, for a message. */
export function gotten(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === "object") return "a map";
  return `${typeof value} ${String(value)}`;
}

const NAME = /^[A-Za-z][\w.-]{0,63}$/;
const name = (what: string) => z.string().regex(NAME, { error: `${what} is 1 to 64 letters, digits, '.', '-' or '_', starting with a letter` });
const text = z.string().min(1);
const whole = (min: number) => z.number().int().min(min);
const keyList = z.union([text, z.array(text).min(1)], { error: "expected a key or a list of keys" });

export const conditionSchema = strict("a condition", {
  /** Keys that must be on the board. */
  has: keyList.optional(),
  /** Keys that must not be. */
  missing: keyList.optional(),
  /** Tag name → value: for each, some entry must carry that tag with that value. */
  tag: z.record(text, z.union([z.string(), z.number(), z.boolean(), z.null()], { error: "expected a tag value: a string, number, boolean or null" })).optional(),
});

/** A condition as a trigger or goal takes it: a string is refused by name, as it is most likely code. */
function dataCondition(what: string) {
  return z
    .unknown()
    .superRefine((value, ctx) => {
      if (typeof value === "string") {
        ctx.addIssue({ code: "custom", message: `${what} is data, not code: { has: [keys], missing: [keys], tag: { name: value } }; the string ${JSON.stringify(value)} is not evaluated` });
      }
    })
    .pipe(conditionSchema.refine((condition) => Object.keys(condition).length > 0, { error: `${what} needs has, missing or tag` }));
}

export type Condition = z.infer<typeof conditionSchema>;

const listOf = (keys: string | string[] | undefined): string[] => (keys === undefined ? [] : typeof keys === "string" ? [keys] : keys);

/** The board test a condition stands for. */
export function conditionOf(condition: Condition): (view: BoardView) => boolean {
  const has = listOf(condition.has);
  const missing = listOf(condition.missing);
  const tags = Object.entries(condition.tag ?? {});
  return (view) =>
    has.every((key) => view.has(key)) &&
    missing.every((key) => !view.has(key)) &&
    tags.every(([tag, value]) => view.readByTag(tag, (found) => found === value).length > 0);
}

const budgetSchema = strict("a budget", {
  tokens: z.number().min(0).optional(),
  costUsd: z.number().min(0).optional(),
  steps: z.number().min(0).optional(),
  turns: z.number().min(0).optional(),
  wallMs: z.number().min(0).optional(),
  depth: z.number().min(0).optional(),
  children: z.number().min(0).optional(),
  errorRate: z.number().min(0).max(1).optional(),
});

const priceSchema = strict("a price", {
  input: z.number().min(0),
  output: z.number().min(0),
  cachedInput: z.number().min(0).optional(),
  cacheWrite: z.number().min(0).optional(),
});

export const pricesSchema = z.record(z.string().regex(/.:./, { error: 'a "provider:model" name' }), priceSchema);

const moduleRef = strict("a module reference", { module: text, export: text.optional() });

const common = {
  name: name("an agent's name"),
  delivery: z.enum(["streaming", "immediate", "deferred", "on_demand"]).optional(),
  budget: budgetSchema.optional(),
  permissions: strict("permissions", { tools: z.array(text) }).optional(),
};

/** JSON Schema, kept as data here and converted where the agent is built. */
const jsonSchema = z.record(z.string(), z.unknown(), { error: "expected a JSON Schema (a map such as { type: object, properties: { … } })" });

export const modelAgentSchema = strict("a model agent", {
  ...common,
  model: text,
  instructions: z.string().optional(),
  skills: z.array(text).optional(),
  output: jsonSchema.optional(),
  maxTurns: whole(1).optional(),
  temperature: z.number().optional(),
  maxOutputTokens: whole(1).optional(),
  timeoutMs: whole(1).optional(),
  maxRetries: whole(0).optional(),
  prices: pricesSchema.optional(),
  trigger: dataCondition("a trigger").optional(),
  prompt: z.string().optional(),
  writes: text.optional(),
  maxFires: whole(1).optional(),
  priority: z.number().optional(),
});

export const cliAgentSchema = strict("a CLI agent", {
  ...common,
  cli: strict("cli", {
    command: text,
    args: z.array(z.string()).optional(),
    input: z.enum(["stdin", "arg", "file"]).optional(),
    output: z.enum(["text", "json", "jsonl"]).optional(),
    cwd: text.optional(),
    env: z.array(text).optional(),
    setEnv: z.record(text, z.string()).optional(),
    timeoutMs: whole(1).optional(),
    graceMs: whole(0).optional(),
    maxOutputBytes: whole(1).optional(),
  }),
});

export const codeAgentSchema = strict("a code agent", { name: name("an agent's name"), module: text, export: text.optional() });

/** Which kind an agent entry is, by the key that makes it one. */
export const AGENT_KINDS = { model: modelAgentSchema, cli: cliAgentSchema, module: codeAgentSchema } as const;

export const runSchema = strict("run", {
  name: text.optional(),
  board: text,
  seed: z.record(z.string(), z.unknown()).optional(),
  agents: z.array(text).min(1),
  goal: dataCondition("a goal").optional(),
  maxSteps: whole(1).optional(),
  parallel: z.boolean().optional(),
  concurrency: whole(1).optional(),
  deadlockAfter: whole(1).optional(),
  budget: budgetSchema.optional(),
});

export const workerSchema = strict("worker", { kinds: z.record(text, text) });

export const workflowSchema = strict("workflow", {
  name: text,
  input: jsonSchema.optional(),
  decompose: text,
  execute: z.record(text, text),
  synthesize: text,
  concurrency: whole(1).optional(),
  budget: budgetSchema.optional(),
  tasks: text.optional(),
  maxAttempts: whole(1).optional(),
});

export const manifestSchema = strict("a manifest", {
  modules: z.array(text).optional(),
  prices: pricesSchema.optional(),
  skills: z.record(text, moduleRef).optional(),
  agents: z.array(z.record(z.string(), z.unknown(), { error: "expected an agent: a map with a name and one of model, cli or module" })).min(1),
  run: runSchema.optional(),
  worker: workerSchema.optional(),
  workflow: workflowSchema.optional(),
});

const EXPECTED: Record<string, string> = { string: "a string", number: "a number", int: "a whole number", boolean: "true or false", array: "a list", object: "a map", record: "a map" };

/** A zod issue as a manifest error says it (the path is said separately). */
export function issueText(issue: z.core.$ZodIssue, input: unknown): string {
  switch (issue.code) {
    case "invalid_type":
      return issue.message.startsWith("Invalid input") ? `expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${gotten(input)}` : issue.message;
    case "too_small":
      if (!issue.message.startsWith("Too small")) return issue.message;
      return issue.origin === "array" ? `must list at least ${String(issue.minimum)}` : issue.origin === "string" ? "must not be empty" : `must be at least ${String(issue.minimum)}`;
    case "too_big":
      return issue.message.startsWith("Too big") ? `must be at most ${String(issue.maximum)}` : issue.message;
    case "invalid_value":
      return issue.message.startsWith("Invalid option") ? `is one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${gotten(input)}` : issue.message;
    case "invalid_key": {
      const inner = issue.issues[0];
      if (inner?.code === "invalid_format") return `expected the key to be ${inner.message}`;
      return inner?.code === "too_small" ? "a key must not be empty" : "this key is not allowed here";
    }
    default:
      return issue.message;
  }
}
