/**
 * Runs: past and running ones from the store, and runs of the definitions the server was started
 * with, which it can also stop.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { RunInfo } from "../../core/records.ts";
import type { RunDefinition } from "../../core/run-types.ts";
import type { Api, ServerContext } from "../context.ts";
import { ApiProblem, problems } from "../problem.ts";
import { definitionSchema, json, limit, recordId, runInfoSchema, stepSchema } from "../schemas.ts";

const runParam = z.object({ id: recordId("id") });

export function runRoutes(app: Api, ctx: ServerContext): void {
  /** The runs this server started, by id, until they end; and every id it ever started. */
  const live = new Map<string, AbortController>();
  const started = new Set<string>();
  /** Starts a run; resolves with its record once it is recorded, or rejects if it fails before that. */
  const start = async (name: string, definition: RunDefinition): Promise<RunInfo> => {
    const controller = new AbortController();
    let recorded!: (run: RunInfo) => void;
    const onStart = new Promise<RunInfo>((resolve) => (recorded = resolve));
    const signal = definition.signal ? AbortSignal.any([definition.signal, controller.signal]) : controller.signal;
    const result = ctx.colony.run({ ...definition, signal }, { onStart: (run) => recorded(run) });
    // Followed from now on, whatever happens below: the server's closing stops it and waits for it.
    const tracked: { runId?: string; over: boolean } = { over: false };
    const stop = () => controller.abort();
    ctx.closing.addEventListener("abort", stop, { once: true });
    const ended = result.then(
      () => {},
      // A run that fails before it is recorded fails the request instead.
      (error: unknown) => void (tracked.runId !== undefined && console.error(`colony serve: run ${tracked.runId} of ${name} failed:`, error)),
    );
    ctx.running.add(ended);
    void ended.finally(() => {
      tracked.over = true;
      ctx.running.delete(ended);
      ctx.closing.removeEventListener("abort", stop);
      if (tracked.runId !== undefined) live.delete(tracked.runId);
    });

    // Rejects with the run's own error if it fails before it is recorded (its board cannot be opened, say).
    const run = await Promise.race([onStart, result.then(() => onStart)]);
    tracked.runId = run.runId;
    started.add(run.runId);
    if (!tracked.over) live.set(run.runId, controller);
    return run;
  };

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/definitions",
      summary: "The run definitions this server can start",
      responses: { 200: json(z.object({ definitions: z.array(definitionSchema) }), "By name") },
    }),
    (c) => c.json({ definitions: Object.entries(ctx.definitions).map(([name, d]) => ({ name, board: d.board, agents: d.agents.map((a) => a.name) })) }, 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/runs",
      summary: "Runs, newest first",
      request: { query: z.object({ limit: limit(10_000, "At most this many; default 50").optional() }) },
      responses: { 200: json(z.object({ runs: z.array(runInfoSchema) }), "Runs"), ...problems(400) },
    }),
    async (c) => c.json({ runs: await ctx.colony.runs.list({ limit: c.req.valid("query").limit ?? 50 }) }, 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/runs/{id}",
      summary: "One run and its steps",
      request: { params: runParam },
      responses: { 200: json(z.object({ run: runInfoSchema, steps: z.array(stepSchema) }), "The run"), ...problems(404) },
    }),
    async (c) => c.json(await ctx.colony.runs.get(c.req.valid("param").id), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/runs",
      summary: "Starts a run of a definition the server was started with",
      request: {
        body: { required: true, content: { "application/json": { schema: z.strictObject({ definition: z.string().openapi({ description: "Its name, as GET /api/definitions lists it" }) }) } } },
      },
      responses: { 202: json(runInfoSchema, "Started: its record as it began; GET /api/runs/{id} follows it"), ...problems(400, 404, 503) },
    }),
    async (c) => {
      const { definition: name } = c.req.valid("json");
      if (ctx.closing.aborted) throw new ApiProblem(503, "CLOSED", "the server is closing: it starts no more runs");
      const definition = Object.hasOwn(ctx.definitions, name) ? ctx.definitions[name] : undefined;
      if (!definition) {
        const known = Object.keys(ctx.definitions);
        throw new ApiProblem(404, "NOT_FOUND", `no definition ${JSON.stringify(name)}; this server can start ${known.length === 0 ? "none (start it with --run FILE)" : known.join(", ")}`, { field: "definition" });
      }
      const run = await start(name, definition);
      c.header("Location", `/api/runs/${encodeURIComponent(run.runId)}`);
      return c.json(run, 202);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/runs/{id}/stop",
      summary: "Stops a run this server started: it ends, recorded as aborted, before its next step",
      request: { params: runParam },
      responses: { 202: json(z.object({ runId: z.string(), stopping: z.literal(true) }), "Stopping"), ...problems(404, 409) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const controller = live.get(id);
      if (!controller) {
        const { run } = await ctx.colony.runs.get(id);
        const why = started.has(id) || run.status === "finished" ? `it has ended (${run.stopReason ?? run.status})` : "this server did not start it (stop it where it runs)";
        throw new ApiProblem(409, "NOT_STOPPABLE", `run ${id}: ${why}`);
      }
      controller.abort();
      return c.json({ runId: id, stopping: true as const }, 202);
    },
  );
}
