/**
 * Skills: what a model agent can do besides answer. A plain AI SDK tool works unchanged; a
 * swarm-aware skill (`defineSkill`) also gets the agent's context: its board (writes authored by
 * the agent, held to its prefixes), spawning, its children, events and usage. The built-in
 * skills are named by string (`"board.read"`, `"agents.spawn"`, …).
 */
import type { Tool } from "ai";
import type { z } from "zod";
import type { Entry } from "../core/board.ts";
import { ConfigError } from "../core/errors.ts";
import type { Usage } from "../core/records.ts";
import type { AgentRef, SpawnOptions, SubAgent, SubAgentContext, SubAgentHandle } from "../core/subagent-types.ts";

/** The board as a skill sees it: the agent's own view of it (authored writes, checked prefixes). */
export interface SkillBoard {
  readonly name: string;
  write<V>(key: string, value: V, options?: { expectedVersion?: number }): Promise<Entry<V>>;
  get<V = unknown>(key: string): Promise<Entry<V> | undefined>;
  /** Keys on the board (a loop agent's snapshot); absent where the agent cannot list them. */
  keys?(prefix?: string): string[];
}

/** What a swarm-aware skill gets besides its arguments. */
export interface SkillContext {
  readonly agent: { readonly id: string; readonly name: string };
  readonly board: SkillBoard | undefined;
  /** Aborts when the agent is asked to stop. */
  readonly signal: AbortSignal;
  spawn<R = unknown, I = unknown>(agent: AgentRef | SubAgent<I, R>, input?: I, options?: SpawnOptions): Promise<SubAgentHandle<R>>;
  /** The children this agent spawned through its skills, live and ended. */
  readonly agents: {
    list(): { id: string; name: string; state: string }[];
    terminate(id: string): Promise<void>;
  };
  emit(name: string, data?: unknown): void;
  usage: { add(usage: Usage): void };
  /** The colony's task boards; absent for a loop agent (spawn a sub-agent to use them). */
  readonly tasks: SubAgentContext["tasks"] | undefined;
  /** The model agent itself: its model name, for skills that start helpers like it. */
  readonly model: { readonly spec: unknown };
}

export interface Skill<A = unknown, R = unknown> {
  readonly kind: "colony.skill";
  /** How permissions name it (`permissions.tools`); the model sees it with dots as underscores. */
  readonly name: string;
  readonly description: string;
  readonly input: z.ZodType<A>;
  /** Pause for a person's approval before it runs: always, or when this says so for the arguments. */
  readonly needsApproval?: boolean | ((args: A) => boolean);
  execute(args: A, ctx: SkillContext): R | Promise<R>;
}

/** Any skill, whatever its argument and result types: what a tool set carries. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnySkill = Skill<any, any>;

/**
 * @example
 * export const publish = defineSkill({
 *   name: "publish",
 *   description: "Publish the final report",
 *   input: z.object({ text: z.string() }),
 *   execute: async ({ text }, ctx) => (await ctx.board!.write("report", text)).version,
 * });
 */
export function defineSkill<A, R>(skill: Omit<Skill<A, R>, "kind">): Skill<A, R> {
  if (typeof skill.name !== "string" || !/^[A-Za-z][\w.-]{0,63}$/.test(skill.name)) {
    throw new ConfigError(`skill name ${JSON.stringify(skill.name)}: use letters, digits, dots, dashes and underscores, starting with a letter, at most 64`);
  }
  if (typeof skill.execute !== "function") throw new ConfigError(`skill ${skill.name}: execute(args, ctx) is a function`);
  if (typeof skill.description !== "string" || skill.description.length === 0) throw new ConfigError(`skill ${skill.name}: give it a description (the model reads it to decide when to use it)`);
  return { kind: "colony.skill", ...skill };
}

export function isSkill(value: unknown): value is AnySkill {
  return typeof value === "object" && value !== null && (value as AnySkill).kind === "colony.skill";
}

/** The name a model sees for a skill: providers accept letters, digits, `_` and `-`. */
export function wireName(name: string): string {
  return name.replaceAll(".", "_");
}

/** The built-in skills' names (built-in-skills.ts defines them; it loads where an agent has one). */
export const BUILT_IN_SKILL_NAMES = ["board.read", "board.write", "tasks.submit", "tasks.wait", "agents.spawn", "agents.list", "agents.terminate"] as const;

/** Checks a built-in skill's name; throws `ConfigError` listing the names there are. */
export function checkBuiltInSkill(name: string, who: string): void {
  if (!(BUILT_IN_SKILL_NAMES as readonly string[]).includes(name)) throw new ConfigError(`${who}: no built-in skill "${name}" (there are ${BUILT_IN_SKILL_NAMES.join(", ")})`);
}

/** Turns a skill into a tool (of the AI SDK's shape) bound to a context. */
export function skillTool(skill: AnySkill, ctx: () => SkillContext): Tool {
  return { description: skill.description, inputSchema: skill.input, execute: async (args: unknown) => skill.execute(args, ctx()) } as Tool;
}
