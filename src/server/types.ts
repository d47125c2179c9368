/**
 * The server's options and what it needs of a colony. Nothing here loads Hono (the CLI and the
 * runtime import it at start), and nothing imports the runtime's colony module: `colony.serve()`
 * loads the server lazily, so nothing the server loads may lead back to it.
 */
import type { ApprovalRecord, ApprovalStatus } from "../core/approvals.ts";
import type { Board } from "../core/board.ts";
import type { AgentRecord, AgentState, RunInfo, RunResult, StepRecord } from "../core/records.ts";
import type { RunHooks } from "../core/run.ts";
import type { RunDefinition } from "../core/run-types.ts";
import type { BoardNames, RejectedMessages } from "../core/store.ts";
import type { TaskBoard } from "../core/task-board.ts";
import type { Bus } from "../runtime/bus.ts";

/** The part of a `Colony` the server uses; a `Colony` is one. */
export interface ServedColony {
  readonly backend: { kind: string; location: string };
  rejected(): Promise<RejectedMessages>;
  board(name: string): Promise<Board>;
  tasks(name?: string): Promise<TaskBoard>;
  listBoards(): Promise<BoardNames>;
  run(definition: RunDefinition, hooks?: RunHooks): Promise<RunResult>;
  readonly runs: {
    list(options?: { limit?: number }): Promise<RunInfo[]>;
    get(runId: string): Promise<{ run: RunInfo; steps: StepRecord[] }>;
  };
  readonly agents: {
    list(filter?: { parentId?: string; state?: AgentState }): Promise<AgentRecord[]>;
    terminate(id: string, options?: { cascade?: boolean }): Promise<void>;
  };
  readonly approvals: {
    list(filter?: { status?: ApprovalStatus }): Promise<ApprovalRecord[]>;
    approve(id: string, options?: { reason?: string }): Promise<ApprovalRecord>;
    deny(id: string, options?: { reason?: string }): Promise<ApprovalRecord>;
  };
  bus(): Promise<Bus>;
  leader(role: string): Promise<string | undefined>;
}

export interface ServerAppOptions {
  /**
   * Every /api request must carry `Authorization: Bearer <token>`. Without one, the API answers
   * only requests addressed to a loopback name, and writes only from its own origin (or `cors`).
   */
  token?: string;
  /** The one origin (`https://dash.example.com`) allowed to call the API from a browser; default none. */
  cors?: string;
  /** Run definitions (or manifests' runs) that `POST /api/runs { definition: name }` may start. */
  definitions?: Record<string, RunDefinition>;
  /** The dashboard's built files, served at `/`; default the package's `dist/dashboard/`; false for none. */
  dashboardDir?: string | false;
  /** The largest request body, in bytes; default room for a board value of the default 1 MiB limit, with its tags. */
  maxBodyBytes?: number;
  /** How often a live stream sends a comment, so that proxies keep it open; default 15000 ms. */
  heartbeatMs?: number;
  /** How often the agent and node streams read the registries, which have no log to follow; default 1000 ms. */
  pollMs?: number;
  /** Who board writes through the API are authored by; default "api". */
  author?: string;
  /** When it aborts, live streams end and the runs this server started are stopped. */
  signal?: AbortSignal;
}

export const DEFAULT_PORT = 7420;
export const DEFAULT_HOST = "127.0.0.1";

export interface ServeOptions extends Omit<ServerAppOptions, "signal"> {
  /** Default 7420 (`DEFAULT_PORT`); 0 picks a free one. */
  port?: number;
  /** Default 127.0.0.1. Any address that is not loopback needs a `token`. */
  host?: string;
}

export interface ColonyServer {
  /** Where it listens, as `http://127.0.0.1:7420`. */
  readonly url: string;
  readonly port: number;
  /** Ends live streams, stops the runs it started, stops listening and closes its connections. */
  close(): Promise<void>;
}
