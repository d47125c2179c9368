/**
 * The entry point of the library: a colony owns one backend connection, hands out boards and
 * runs the stigmergic loop over them.
 */
import { sqliteBackend } from "../backends/sqlite/index.ts";
import { Board } from "../core/board.ts";
import { ClosedError, ConfigError, NotFoundError } from "../core/errors.ts";
import { DEFAULT_MAX_VALUE_BYTES } from "../core/json.ts";
import { BOARD_NAME } from "../core/run-definition.ts";
import { executeRun, type RunHooks } from "../core/run.ts";
import type { RunInfo, RunResult, StepRecord } from "../core/run-records.ts";
import type { RunDefinition } from "../core/run-types.ts";
import type { Backend, BackendFactory } from "../core/store.ts";

export interface ColonyOptions {
  /** Where boards and runs live; default `sqliteBackend()` (`.colony/colony.db`). */
  backend?: BackendFactory;
  /** The largest value a write may hold, serialised; default 1 MiB. */
  maxValueBytes?: number;
}

export interface Colony {
  /** The backend's kind and location, for messages. */
  readonly backend: { kind: string; location: string };
  /** Opens (creating if needed) a board; the same name gives the same object. */
  board(name: string): Promise<Board>;
  /** Runs the stigmergic loop until a stop rule holds; the run and its steps are stored. */
  run(definition: RunDefinition, hooks?: RunHooks): Promise<RunResult>;
  readonly runs: {
    /** Past runs, newest first. */
    list(options?: { limit?: number }): Promise<RunInfo[]>;
    /** One run and its steps; throws `NotFoundError` for an unknown id. */
    get(runId: string): Promise<{ run: RunInfo; steps: StepRecord[] }>;
  };
  close(): Promise<void>;
}

/**
 * Creates a colony. Nothing is opened until first use, so this never fails on I/O.
 *
 * @example
 * const colony = createColony(); // SQLite at .colony/colony.db
 * const board = await colony.board("research");
 * await board.write("question", "why do ants form trails?", { author: "me" });
 * await colony.close();
 */
export function createColony(options: ColonyOptions = {}): Colony {
  const factory = options.backend ?? sqliteBackend();
  if (typeof factory?.open !== "function") throw new ConfigError("backend must come from sqliteBackend(), memoryBackend() or another backend factory");
  const maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
  if (!Number.isInteger(maxValueBytes) || maxValueBytes < 1) {
    throw new ConfigError(`maxValueBytes is a whole number of bytes >= 1, got ${String(options.maxValueBytes)}`);
  }
  let opening: Promise<Backend> | undefined;
  let closed = false;
  const boards = new Map<string, Promise<Board>>();

  const backend = (): Promise<Backend> => {
    if (closed) return Promise.reject(new ClosedError("colony"));
    opening ??= factory.open();
    return opening;
  };

  const board = (name: string): Promise<Board> => {
    if (typeof name !== "string" || !BOARD_NAME.test(name)) {
      return Promise.reject(new ConfigError(`board names are 1 to 64 letters, digits, '-' or '_', got ${JSON.stringify(name)}`));
    }
    let opened = boards.get(name);
    if (!opened) {
      opened = backend().then(async (b) => Board.open(name, await b.openBoard(name), { maxValueBytes }));
      boards.set(name, opened);
      opened.catch(() => boards.delete(name));
    }
    return opened;
  };

  return {
    backend: { kind: factory.kind, location: factory.location },
    board,
    async run(definition, hooks) {
      const target = await board(definition?.board);
      return executeRun(definition, target, (await backend()).runs, hooks);
    },
    runs: {
      async list(listOptions) {
        return (await backend()).runs.listRuns(listOptions);
      },
      async get(runId) {
        const found = await (await backend()).runs.getRun(runId);
        if (!found) throw new NotFoundError(`run ${JSON.stringify(runId)}`);
        return found;
      },
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const opened of boards.values()) (await opened.catch(() => undefined))?.close();
      if (opening) await (await opening).close();
    },
  };
}
