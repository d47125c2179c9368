/** What every group of routes shares: the colony, the settled options, and the server's own state. */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { RunDefinition } from "../core/run-types.ts";
import type { BoardFeeds } from "./board-feed.ts";
import type { ServedColony } from "./types.ts";

export type Api = OpenAPIHono;

export interface ServerContext {
  readonly colony: ServedColony;
  readonly definitions: Readonly<Record<string, RunDefinition>>;
  readonly author: string;
  readonly heartbeatMs: number;
  readonly pollMs: number;
  /** Aborts when the server closes: live streams end, started runs stop. */
  readonly closing: AbortSignal;
  /** The shared watches of the boards live streams follow. */
  readonly feeds: BoardFeeds;
  /** The runs this server started that have not ended, for `close()` to wait for. */
  readonly running: Set<Promise<unknown>>;
}
