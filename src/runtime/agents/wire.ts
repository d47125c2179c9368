/**
 * What a thread or process host needs of the protocol before its agent's first turn, without
 * zod: loading zod and building the schemas cost a cold host about a third of its start. The
 * schemas in protocol.ts stay the specification; the checks here accept what they accept and
 * return what they return (test/subagents.pool.test.ts holds them to it). The runtime, which has
 * zod loaded anyway, checks what hosts send with the schemas themselves.
 */
import { ClosedError, CliAgentError, ConfigError, InvalidKeyError, InvalidValueError, ModelError, NotFoundError, VersionConflictError } from "../../core/errors.ts";
import { BudgetExceededError, PermissionError, SubAgentError, TransitionError } from "../../core/subagent-types.ts";
import type { RuntimeMessage, StartMessage, WireError } from "./protocol.ts";

/** A pooled host's workerData (thread) or argument (process): wait for the start message on the channel. */
export const POOLED = "--pooled";
/** What a pooled host sends once it has loaded the host code and waits for its start message. */
export const WARM = "colony:warm";
/** A process host's argument: NODE_COMPILE_CACHE in its environment was set by its launcher, not given to the agent. */
export const OWN_COMPILE_CACHE = "--own-compile-cache";
/**
 * A process host's file descriptor that reaches end-of-file when its parent is gone, however it
 * went (kill -9 included): its launcher holds the other end and never writes on it.
 */
export const LIFELINE_FD = 4;

export function toWireError(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const { code, ...rest } = error as unknown as Record<string, unknown>;
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(rest)) {
    if (value === null || ["string", "number", "boolean"].includes(typeof value)) fields[key] = value;
  }
  return { name: error.name, message: error.message, ...(typeof code === "string" && { code }), fields };
}

const TYPED: Record<string, new (...args: never[]) => Error> = {
  VERSION_CONFLICT: VersionConflictError,
  PERMISSION: PermissionError,
  BUDGET_EXCEEDED: BudgetExceededError,
  STALE_TRANSITION: TransitionError,
  CONFIG: ConfigError,
  INVALID_KEY: InvalidKeyError,
  INVALID_VALUE: InvalidValueError,
  VALUE_TOO_LARGE: InvalidValueError,
  NOT_FOUND: NotFoundError,
  MODEL: ModelError,
  CLI_AGENT: CliAgentError,
  CLOSED: ClosedError,
};

/** Rebuilds an error that crossed a boundary, as the same class where Colony knows the code. */
export function fromWireError(wire: WireError): Error {
  const Class = (wire.code && (TYPED[wire.code] ?? (wire.code.startsWith("SUBAGENT_") ? SubAgentError : undefined))) || Error;
  const error = Object.create(Class.prototype) as Error;
  Object.assign(error, wire.fields ?? {}, { message: wire.message, name: wire.name });
  if (wire.code) Object.assign(error, { code: wire.code });
  Object.defineProperty(error, "stack", { value: `${wire.name}: ${wire.message}\n    (raised in another agent's host)`, enumerable: false });
  return error;
}

type Fields = Record<string, unknown>;

const isObject = (v: unknown): v is Fields => typeof v === "object" && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === "string";
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const isNumber = (v: unknown): v is number => Number.isFinite(v);
const optional = (v: unknown, check: (v: unknown) => boolean) => v === undefined || check(v);
const isStrings = (v: unknown) => Array.isArray(v) && Array.from(v).every(isString);

/** Only the keys a schema names, those that are set, as zod returns them. */
function pick(from: Fields, keys: readonly string[]): Fields {
  const out: Fields = {};
  for (const key of keys) if (key in from) out[key] = from[key];
  return out;
}

function readWireError(v: unknown): WireError | undefined {
  if (!isObject(v) || !isString(v.name) || !isString(v.message) || !optional(v.code, isString) || !optional(v.fields, isObject)) return undefined;
  return pick(v, ["name", "message", "code", "fields"]) as WireError;
}

/** A message from the runtime as `runtimeMessage` parses it, or undefined where the schema refuses it. */
export function readRuntimeMessage(raw: unknown): RuntimeMessage | undefined {
  if (!isObject(raw)) return undefined;
  switch (raw.t) {
    case "res": {
      if (!isInt(raw.id) || typeof raw.ok !== "boolean") return undefined;
      const error = raw.error === undefined ? undefined : readWireError(raw.error);
      if (raw.error !== undefined && !error) return undefined;
      return { ...pick(raw, ["t", "id", "ok", "value"]), ...(error && { error }) } as RuntimeMessage;
    }
    case "inbox":
      return Array.isArray(raw.messages) ? ({ t: "inbox", messages: raw.messages } as RuntimeMessage) : undefined;
    case "stop":
      return isString(raw.reason) ? { t: "stop", reason: raw.reason } : undefined;
    case "child.event":
      return isString(raw.childId) ? (pick(raw, ["t", "childId", "event"]) as RuntimeMessage) : undefined;
    case "child.end": {
      if (!isString(raw.childId) || typeof raw.ok !== "boolean") return undefined;
      const error = raw.error === undefined ? undefined : readWireError(raw.error);
      if (raw.error !== undefined && !error) return undefined;
      return { ...pick(raw, ["t", "childId", "ok", "result"]), ...(error && { error }) } as RuntimeMessage;
    }
    default:
      return undefined;
  }
}

/** A start message as `startMessage` parses it; a `ConfigError` where the schema refuses it. */
export function readStart(raw: unknown): StartMessage {
  const refuse = (what: string) => new ConfigError(`a host got a malformed start message: ${what}`);
  if (!isObject(raw)) throw refuse("not an object");
  if (!isString(raw.id) || !isString(raw.name) || !optional(raw.parentId, isString) || !isInt(raw.depth) || !optional(raw.board, isString)) {
    throw refuse("id, name, parentId, depth or board");
  }
  const { agent, permissions, remaining } = raw;
  if (agent !== undefined && !(isObject(agent) && isString(agent.module) && optional(agent.export, isString))) throw refuse("agent");
  if (!isObject(permissions) || !["tools", "writePrefixes", "boards", "env"].every((k) => optional(permissions[k], isStrings))) throw refuse("permissions");
  if (!isObject(remaining) || !optional(remaining.tokens, isNumber) || !optional(remaining.costUsd, isNumber)) throw refuse("remaining");
  return {
    ...pick(raw, ["id", "name", "parentId", "depth", "input", "board"]),
    ...(agent !== undefined && { agent: pick(agent as Fields, ["module", "export"]) }),
    permissions: pick(permissions, ["tools", "writePrefixes", "boards", "env"]),
    remaining: pick(remaining, ["tokens", "costUsd"]),
  } as StartMessage;
}
