/**
 * The server as the public API has it. Hono and the routes load on first use, so that a program
 * that imports Colony and never serves does not load them.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Colony } from "../runtime/colony.ts";
import type { ColonyServer, ServeOptions, ServerAppOptions } from "./types.ts";

export { ListenError, UnsafeBindError } from "./errors.ts";
export type { ColonyServer, ServeOptions, ServerAppOptions } from "./types.ts";

/**
 * The HTTP API of a colony as a Hono app, to mount in a server of your own (`colony.serve()`
 * listens on its own). Its routes are under /api; the dashboard is at `/` unless `dashboardDir`
 * is false. `options.signal` ends its live streams and stops the runs it started.
 *
 * @example
 * const api = await createServerApp(colony, { token: process.env.COLONY_TOKEN, dashboardDir: false });
 * const res = await api.request("/api/boards");
 */
export async function createServerApp(colony: Colony, options: ServerAppOptions = {}): Promise<OpenAPIHono> {
  const { buildServerApp } = await import("./app.ts");
  return buildServerApp(colony, options).app;
}

/**
 * Serves a colony's HTTP API and dashboard until `close()`; the same as `colony.serve(options)`.
 *
 * @example
 * const server = await serve(colony, { port: 0 });
 * console.log(server.url);
 * await server.close();
 */
export function serve(colony: Colony, options: ServeOptions = {}): Promise<ColonyServer> {
  return colony.serve(options);
}
