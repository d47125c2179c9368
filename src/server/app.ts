/**
 * The HTTP API as a Hono app built from a colony: routes per area, each checked by its zod
 * schemas, the OpenAPI document generated from them at /api/openapi.json, and the dashboard at
 * `/`. Every error is a JSON problem (see problem.ts).
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { ConfigError } from "../core/errors.ts";
import { DEFAULT_MAX_VALUE_BYTES, MAX_TAGS_BYTES, checkAuthor } from "../core/json.ts";
import { checkRunDefinition } from "../core/run-definition.ts";
import { bearer, loopbackOnly } from "./auth.ts";
import { BoardFeeds } from "./board-feed.ts";
import type { ServerContext } from "./context.ts";
import { DEFAULT_DASHBOARD_DIR, dashboardRoutes } from "./dashboard.ts";
import { ApiProblem, invalidRequest, problem, problemFor, problemResponse } from "./problem.ts";
import { agentRoutes } from "./routes/agents.ts";
import { approvalRoutes } from "./routes/approvals.ts";
import { boardRoutes } from "./routes/boards.ts";
import { nodeRoutes } from "./routes/nodes.ts";
import { runRoutes } from "./routes/runs.ts";
import { taskRoutes } from "./routes/tasks.ts";
import type { ServedColony, ServerAppOptions } from "./types.ts";

/** Room for a board value of the default size limit, its tags and the JSON around them. */
const DEFAULT_MAX_BODY_BYTES = DEFAULT_MAX_VALUE_BYTES + MAX_TAGS_BYTES + 16 * 1024;

function whole(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new ConfigError(`${name} is a whole number >= 1, got ${String(value)}`);
  return value;
}

function checkToken(token: string | undefined): void {
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
    throw new ConfigError("token must be printable ASCII without spaces (it travels in an Authorization header), and not empty");
  }
}

function checkOrigin(origin: string | undefined): void {
  if (origin === undefined) return;
  let parsed: URL | undefined;
  try {
    parsed = new URL(origin);
  } catch {
    parsed = undefined;
  }
  if (parsed?.origin !== origin) throw new ConfigError(`cors is one origin, as https://dash.example.com (scheme, host and port; no path or trailing /), got ${JSON.stringify(origin)}`);
}

/** The app, and what `close()` waits for: the runs it started. */
export function buildServerApp(colony: ServedColony, options: ServerAppOptions = {}): { app: OpenAPIHono; settled(): Promise<void> } {
  checkToken(options.token);
  checkOrigin(options.cors);
  const author = options.author ?? "api";
  checkAuthor(author);
  const definitions = options.definitions ?? {};
  for (const [name, definition] of Object.entries(definitions)) {
    try {
      checkRunDefinition(definition);
    } catch (error) {
      throw new ConfigError(`definitions.${name}: ${(error as Error).message}`, { cause: error });
    }
  }
  const ctx: ServerContext = {
    colony,
    definitions,
    author,
    heartbeatMs: whole("heartbeatMs", options.heartbeatMs, 15_000),
    pollMs: whole("pollMs", options.pollMs, 1000),
    closing: options.signal ?? new AbortController().signal,
    feeds: new BoardFeeds(),
    running: new Set(),
  };
  const maxBodyBytes = whole("maxBodyBytes", options.maxBodyBytes, DEFAULT_MAX_BODY_BYTES);

  const app = new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success) throw invalidRequest(result.error, result.target);
    },
  });
  app.onError((error) => {
    const body = problemFor(error);
    return problemResponse(body, body.status === 401 ? { "www-authenticate": "Bearer" } : {});
  });
  app.notFound((c) => problemResponse(problem(404, "NOT_FOUND", `no route ${c.req.method} ${c.req.path}; GET /api/openapi.json lists them`)));

  if (options.cors !== undefined) {
    app.use(
      "/api/*",
      cors({
        origin: options.cors,
        allowMethods: ["GET", "PUT", "POST", "DELETE"],
        allowHeaders: ["Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key", "Last-Event-ID"],
        exposeHeaders: ["ETag", "Location"],
        maxAge: 600,
      }),
    );
  }
  app.use("/api/*", options.token === undefined ? loopbackOnly(options.cors) : bearer(options.token));
  const limited = bodyLimit({
    maxSize: maxBodyBytes,
    onError: () => {
      throw new ApiProblem(413, "BODY_TOO_LARGE", `the request body is over ${maxBodyBytes} bytes`, { field: "body" });
    },
  });
  // Only where a body can come: looking for one makes @hono/node-server build the whole Fetch
  // Request it otherwise leaves unmade, a third of a small GET's time.
  app.use("/api/*", (c, next) => (c.req.method === "GET" || c.req.method === "HEAD" ? next() : limited(c, next)));

  boardRoutes(app, ctx);
  runRoutes(app, ctx);
  taskRoutes(app, ctx);
  agentRoutes(app, ctx);
  approvalRoutes(app, ctx);
  nodeRoutes(app, ctx);
  if (options.token !== undefined) app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  app.doc("/api/openapi.json", {
    openapi: "3.0.3",
    info: { title: "Colony", version: "1", description: "Boards, runs, task boards, agents, approvals and the swarm of a Colony, as `colony serve` serves them." },
    ...(options.token !== undefined && { security: [{ bearer: [] }] }),
  });
  const dashboardDir = options.dashboardDir ?? DEFAULT_DASHBOARD_DIR;
  if (dashboardDir !== false) dashboardRoutes(app, dashboardDir);

  return { app, settled: async () => void (await Promise.allSettled(ctx.running)) };
}
