/**
 * One error class per condition. Callers branch on `instanceof` or `code`, never on messages.
 */
export class ColonyError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A compare-and-set write or delete found another version than it expected; nothing was written. */
export class VersionConflictError extends ColonyError {
  readonly key: string;
  readonly expectedVersion: number;
  /** The key's current version; 0 when the key does not exist (never written, or deleted). */
  readonly actualVersion: number;

  constructor(key: string, expectedVersion: number, actualVersion: number) {
    super(
      "VERSION_CONFLICT",
      `version conflict on "${key}": expected version ${expectedVersion}, found ${actualVersion}`,
    );
    this.key = key;
    this.expectedVersion = expectedVersion;
    this.actualVersion = actualVersion;
  }
}

/**
 * A short, printable quote of caller text for a message: a refused 10 MB name must not make a
 * 10 MB message. JSON escapes show control characters and lone surrogates.
 */
export function quote(text: string, maxChars = 64): string {
  if (text.length <= maxChars) return JSON.stringify(text);
  return `${JSON.stringify(text.slice(0, maxChars))}… (${text.length} characters)`;
}

/** A key that is empty, too long, not well-formed UTF-8 or holds control characters. */
export class InvalidKeyError extends ColonyError {
  readonly key: string;

  constructor(key: string, reason: string) {
    super("INVALID_KEY", `invalid key ${quote(key)}: ${reason}`);
    this.key = key;
  }
}

/** A value that is not plain JSON, or is larger than the configured limit. */
export class InvalidValueError extends ColonyError {
  readonly key: string;
  /** Where in the value the problem is, as a path like `value.items[2]`. */
  readonly path: string;

  constructor(key: string, path: string, reason: string, code = "INVALID_VALUE") {
    super(code, `invalid value for "${key}" at ${path}: ${reason}`);
    this.key = key;
    this.path = path;
  }
}

/** SQLite: the write lock stayed taken by another process past the busy timeout. Nothing was written. */
export class StoreBusyError extends ColonyError {
  constructor(path: string, cause: unknown) {
    super("STORE_BUSY", `the database ${path} stayed locked by another writer; try again or raise busyTimeoutMs`, { cause });
  }
}

/**
 * NATS: a task board transaction lost the race for the tasks it rests on this many times in a
 * row (others kept changing them). Nothing was written.
 */
export class TaskContentionError extends ColonyError {
  constructor(stream: string, attempts: number) {
    super("TASK_CONTENTION", `the tasks a transaction on ${stream} rests on were changed by others under ${attempts} attempts in a row; try again`);
  }
}

/** NATS: a stream read that the server stopped serving part way (no message came for a pull in time). */
export class StreamReadError extends ColonyError {
  constructor(message: string) {
    super("STREAM_READ", message);
  }
}

/** The caller's configuration or definition is wrong; thrown before any side effect. */
export class ConfigError extends ColonyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("CONFIG", message, options);
  }
}

/**
 * A write or delete whose author is missing, empty, too long, not well-formed UTF-8 or holds
 * control characters. A `ConfigError` (code `CONFIG`): the caller names the author.
 */
export class InvalidAuthorError extends ConfigError {
  /** What was passed as the author. */
  readonly author: unknown;

  constructor(author: unknown, reason: string) {
    super(typeof author === "string" && author.length > 0 ? `invalid author ${quote(author)}: ${reason}` : reason);
    this.author = author;
  }
}

/** An operation on a colony or board that has been closed. */
export class ClosedError extends ColonyError {
  constructor(what: string) {
    super("CLOSED", `${what} is closed`);
  }
}

/**
 * An input that its schema refuses (a workflow's `input`): one line naming the field and what it
 * should be. Nothing ran.
 */
export class InvalidInputError extends ColonyError {
  /** Where in the input, as a path like `topics[1]`; empty for the whole input. */
  readonly path: string;

  constructor(what: string, path: string, reason: string) {
    super("INVALID_INPUT", `${what}: input${path === "" ? "" : ` at ${path}`}: ${reason}`);
    this.path = path;
  }
}

/**
 * The database file cannot be opened or created as given: a directory, not a database, damaged,
 * read-only, or in a place that cannot hold it. The user's to fix, so a `ConfigError`.
 */
export class StoreOpenError extends ConfigError {
  readonly path: string;

  constructor(path: string, problem: string, cause?: unknown) {
    super(`database ${path}: ${problem}`, { cause });
    this.path = path;
  }
}

/** A record that should exist does not (an unknown run id, say). */
export class NotFoundError extends ColonyError {
  constructor(what: string) {
    super("NOT_FOUND", `${what} not found`);
  }
}

/** A bus request that nobody answered: no responder listens on the subject, or none replied in time. */
export class BusRequestError extends ColonyError {
  readonly subject: string;

  constructor(subject: string, reason: "no_responders" | "timeout", timeoutMs: number) {
    super(
      reason === "timeout" ? "BUS_TIMEOUT" : "BUS_NO_RESPONDERS",
      reason === "timeout" ? `no reply on ${subject} within ${timeoutMs} ms` : `nobody listens on ${subject}`,
    );
    this.subject = subject;
  }
}

/** Turns anything thrown into a one-line message, for step records and the CLI. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** Why a model call failed: an HTTP answer, no answer within the call's timeout, or no connection. */
export type ModelFailure = "http" | "timeout" | "network" | "output";

/**
 * A language model call failed, after the retries it was due (429 and 5xx are retried, honouring
 * `retry-after`). `status` is the provider's HTTP status when there was one.
 */
export class ModelError extends ColonyError {
  readonly provider: string;
  readonly model: string;
  readonly failure: ModelFailure;
  readonly status: number | undefined;
  /** How many times the call was retried before this failure was final. */
  readonly retries: number;
  /** Whether the provider said a later call might succeed (a 429 or 5xx past its retries). */
  readonly retryable: boolean;

  constructor(
    details: { provider: string; model: string; failure: ModelFailure; status?: number; retries: number; retryable: boolean; detail: string },
    options?: { cause?: unknown },
  ) {
    const status = details.status === undefined ? "" : ` (HTTP ${details.status})`;
    const retried = details.retries > 0 ? `, after ${details.retries} retr${details.retries === 1 ? "y" : "ies"}` : "";
    super("MODEL", `model ${details.provider}:${details.model} failed${status}${retried}: ${details.detail}`, options);
    this.provider = details.provider;
    this.model = details.model;
    this.failure = details.failure;
    this.status = details.status;
    this.retries = details.retries;
    this.retryable = details.retryable;
  }
}

/** Why a command-line agent (`defineCliAgent`) gave no result. */
export type CliAgentFailure = "exit" | "timeout" | "spawn" | "output" | "aborted";

/**
 * The command did not give a result: it exited non-zero or was killed by a signal (`exit`), ran
 * past `timeoutMs` (`timeout`), could not be started (`spawn`), printed what cannot be read or
 * too much (`output`), or was stopped because the agent was (`aborted`).
 */
export class CliAgentError extends ColonyError {
  readonly command: string;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly reason: CliAgentFailure;
  /** The last ~2 KB of what the command wrote to stderr. */
  readonly stderrTail: string;

  constructor(
    message: string,
    fields: { command: string; exitCode: number | null; signal: string | null; reason: CliAgentFailure; stderrTail: string },
    options?: { cause?: unknown },
  ) {
    super("CLI_AGENT", message, options);
    this.command = fields.command;
    this.exitCode = fields.exitCode;
    this.signal = fields.signal;
    this.reason = fields.reason;
    this.stderrTail = fields.stderrTail;
  }
}
