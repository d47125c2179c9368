/**
 * What every command shares: turning flags into a colony, parsing numbers, and the errors that
 * mean "the user asked for something wrong" (exit code 2, one line, no stack).
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { memoryBackend } from "../backends/memory/index.ts";
import { natsBackend } from "../backends/nats/index.ts";
import { DEFAULT_DB_PATH, sqliteBackend } from "../backends/sqlite/index.ts";
import { ColonyError, ConfigError } from "../core/errors.ts";
import type { BackendFactory } from "../core/store.ts";
import { createColony, type Colony, type ColonyOptions } from "../runtime/colony.ts";

export interface StoreFlags {
  db?: string;
  memory?: boolean;
  nats?: string;
  natsToken?: string;
  natsUser?: string;
  natsPass?: string;
  natsCreds?: string;
  natsPrefix?: string;
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

/** Adds the flags that choose where boards and runs live. NATS flags fall back to COLONY_NATS_* variables. */
export function storeOptions(command: Command): Command {
  return command
    .option("--db <path>", "the SQLite file (default .colony/colony.db)")
    .option("--memory", "use an in-memory store that is gone when the command ends")
    .option("--nats <urls>", "use NATS JetStream at these comma-separated URLs (env COLONY_NATS_URL)")
    .option("--nats-token <token>", "NATS auth token (env COLONY_NATS_TOKEN)")
    .option("--nats-user <user>", "NATS user (env COLONY_NATS_USER)")
    .option("--nats-pass <pass>", "NATS password (env COLONY_NATS_PASS)")
    .option("--nats-creds <file>", "NATS .creds file (env COLONY_NATS_CREDS)")
    .option("--nats-prefix <prefix>", "the swarm's name on the server (env COLONY_NATS_PREFIX; default colony)");
}

/** The flag, or else its COLONY_NATS_* variable: the CLI turns the environment into options, core never reads it. */
function natsSetting(flag: string | undefined, variable: string): string | undefined {
  return flag ?? (process.env[variable] || undefined);
}

function backendOf(flags: StoreFlags): BackendFactory {
  const nats = natsSetting(flags.nats, "COLONY_NATS_URL");
  const chosen = [flags.memory ? "--memory" : undefined, flags.db !== undefined ? "--db" : undefined, nats !== undefined ? "--nats" : undefined].filter(Boolean);
  if (chosen.length > 1) throw new UsageError(`${chosen.join(" and ")} exclude each other: keep one`);
  if (flags.memory) return memoryBackend();
  if (nats === undefined) return sqliteBackend({ path: flags.db });
  try {
    return natsBackend({
      servers: nats.split(",").map((s) => s.trim()).filter(Boolean),
      token: natsSetting(flags.natsToken, "COLONY_NATS_TOKEN"),
      user: natsSetting(flags.natsUser, "COLONY_NATS_USER"),
      pass: natsSetting(flags.natsPass, "COLONY_NATS_PASS"),
      credsFile: natsSetting(flags.natsCreds, "COLONY_NATS_CREDS"),
      prefix: natsSetting(flags.natsPrefix, "COLONY_NATS_PREFIX"),
    });
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message.replace(/^natsBackend: /, "--nats: "), { cause: error });
    throw error;
  }
}

/** The store flags again, as arguments for a child `colony` process that must share the store. */
export function storeArgs(flags: StoreFlags, location: string): string[] {
  const nats = natsSetting(flags.nats, "COLONY_NATS_URL");
  if (nats === undefined) return ["--db", flags.db ?? location];
  const args = ["--nats", nats];
  const prefix = natsSetting(flags.natsPrefix, "COLONY_NATS_PREFIX");
  if (prefix !== undefined) args.push("--nats-prefix", prefix);
  // Credentials travel by environment (COLONY_NATS_*), not on a command line others can read.
  return args;
}

/** NATS credentials given as flags, as the variables a child process reads them from. */
export function natsCredentialsEnv(flags: StoreFlags): Record<string, string> {
  const env: Record<string, string> = {};
  if (flags.natsToken !== undefined) env.COLONY_NATS_TOKEN = flags.natsToken;
  if (flags.natsUser !== undefined) env.COLONY_NATS_USER = flags.natsUser;
  if (flags.natsPass !== undefined) env.COLONY_NATS_PASS = flags.natsPass;
  if (flags.natsCreds !== undefined) env.COLONY_NATS_CREDS = flags.natsCreds;
  return env;
}

export function openColony(flags: StoreFlags, options: Omit<ColonyOptions, "backend"> = {}): Colony {
  return createColony({ ...options, backend: backendOf(flags) });
}

/**
 * `withColony` for a command that reads (or changes what exists): on SQLite, a file that is not
 * there is not created but named, as a `UsageError` (exit 2), so that `colony board` in the
 * wrong directory says where it looked instead of showing an empty colony it just made.
 */
export async function withExistingColony<T>(flags: StoreFlags, work: (colony: Colony) => Promise<T>): Promise<T> {
  if (!flags.memory && natsSetting(flags.nats, "COLONY_NATS_URL") === undefined) {
    const path = resolve(flags.db ?? DEFAULT_DB_PATH);
    if (!existsSync(path)) {
      throw new UsageError(`no colony at ${path}: nothing has run here yet; pass --db FILE for another, or start one with colony run or colony demo`);
    }
  }
  return withColony(flags, work);
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

/** Colony's version, from its package.json (two levels up from src/cli and from dist/cli alike). */
export const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

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
  const self = import.meta.url.endsWith(".ts") ? "npx colony" : "colony";
  // Store flags belong to each command, so they go after it.
  const store = flags.nats !== undefined ? ` --nats ${flags.nats}${flags.natsPrefix === undefined ? "" : ` --nats-prefix ${flags.natsPrefix}`}` : flags.db === undefined ? "" : ` --db ${flags.db}`;
  return `${self} ${command}${store}`;
}
