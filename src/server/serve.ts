/**
 * Listening: the app on a Node HTTP server, loopback unless a token is given, until `close()`.
 */
import type { Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createAdaptorServer } from "@hono/node-server";
import { ConfigError } from "../core/errors.ts";
import { buildServerApp } from "./app.ts";
import { checkBind } from "./auth.ts";
import { ListenError } from "./errors.ts";
import { DEFAULT_HOST, DEFAULT_PORT, type ColonyServer, type ServedColony, type ServeOptions } from "./types.ts";

/**
 * Serves a colony's HTTP API and dashboard. Refuses (`UnsafeBindError`) to listen beyond loopback
 * without a token, and says why it cannot listen (`ListenError`), before anything is served.
 *
 * @example
 * const server = await serve(colony, { port: 0 });
 * console.log(server.url); // http://127.0.0.1:38451
 * await server.close();
 */
export async function serve(colony: ServedColony, options: ServeOptions = {}): Promise<ColonyServer> {
  const { port = DEFAULT_PORT, host = DEFAULT_HOST, ...appOptions } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new ConfigError(`port is a whole number from 0 to 65535 (0 picks a free one), got ${String(port)}`);
  checkBind(host, appOptions.token);
  const closing = new AbortController();
  const { app, settled } = buildServerApp(colony, { ...appOptions, signal: closing.signal });
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  // Requests in flight, so that closing waits for them and then ends every connection: one kept
  // alive, one whose response was still being written, or one a client left mid-stream.
  let inFlight = 0;
  let allDone: (() => void) | undefined;
  server.on("request", (_request, response: ServerResponse) => {
    inFlight++;
    response.once("close", () => {
      if (--inFlight === 0) allDone?.();
    });
  });
  await new Promise<void>((resolve, reject) => {
    const refused = (error: NodeJS.ErrnoException) => reject(new ListenError(host, port, error));
    server.once("error", refused);
    server.listen(port, host, () => {
      server.off("error", refused);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
  let closed: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    close: () =>
      (closed ??= (async () => {
        // Streams end and started runs stop; requests in flight finish; then no connection stays.
        closing.abort();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await settled();
        if (inFlight > 0) await new Promise<void>((resolve) => (allDone = resolve));
        server.closeAllConnections();
        await stopped;
      })()),
  };
}
