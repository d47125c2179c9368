/**
 * What every command shares: turning flags into a colony, parsing numbers, and the errors that
 * mean "the user asked for something wrong" (exit code 2, one line, no stack).
 */
import { InvalidArgumentError, type Command } from "commander";
import { memoryBackend } from "../backends/memory/index.ts";
import { sqliteBackend } from "../backends/sqlite/index.ts";
import { ColonyError } from "../core/errors.ts";
import { createColony, type Colony, type ColonyOptions } from "../runtime/colony.ts";

export interface StoreFlags {
  db?: string;
  memory?: boolean;
}

export interface OutputFlags {
  json?: boolean;
}

/** A request the CLI cannot carry out as asked: a missing file, a bad flag, a bad definition. */
export class UsageError extends ColonyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("USAGE", message, options);
  }
}

/** Adds the flags that choose where boards and runs live. */
export function storeOptions(command: Command): Command {
  return command
    .option("--db <path>", "the SQLite file (default .colony/colony.db)")
    .option("--memory", "use an in-memory store that is gone when the command ends");
}

export function openColony(flags: StoreFlags, options: Omit<ColonyOptions, "backend"> = {}): Colony {
  if (flags.memory && flags.db !== undefined) throw new UsageError("--memory and --db exclude each other: keep one");
  return createColony({ ...options, backend: flags.memory ? memoryBackend() : sqliteBackend({ path: flags.db }) });
}

/** Runs `work` with a colony opened from the flags, closing it however `work` ends. */
export async function withColony<T>(
  flags: StoreFlags,
  work: (colony: Colony) => Promise<T>,
  options: Omit<ColonyOptions, "backend"> = {},
): Promise<T> {
  const colony = openColony(flags, options);
  try {
    return await work(colony);
  } finally {
    await colony.close();
  }
}

export function wholeNumber(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected a whole number >= ${min}`);
    }
    return n;
  };
}

/** A flag's JSON value; bad JSON is a `UsageError` naming the flag. */
export function parseJson(flag: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new UsageError(`${flag} is not JSON: ${(error as Error).message}`);
  }
}

export function printJson(data: unknown): void {
  process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
}

/** How the user should run `command` again, for hints: from a checkout or an installed package. */
export function selfCommand(command: string, flags: StoreFlags = {}): string {
  const self = import.meta.url.endsWith(".ts") ? "npm run colony --" : "colony";
  // Store flags belong to each command, so they go after it.
  return `${self} ${command}${flags.db === undefined ? "" : ` --db ${flags.db}`}`;
}
