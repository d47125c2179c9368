/**
 * Runs: past and running ones from the store, and runs of the definitions the server was started
 * with, which it can also stop.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { ColonyError } from "../../core/errors.ts";
import type { RunInfo, RunResult } from "../../core/records.ts";
import type { RunDefinition } from "../../core/run-types.ts";
import type { Api, ServerContext } from "../context.ts";
import { ApiProblem, problems } from "../problem.ts";
import { definitionSchema, json, limit, recordId, runInfoSchema, stepSchema } from "../schemas.ts";

const runParam = z.object({ id: recordId("id") });

/** How many of the newest runs are searched for the one a start just recorded. */
const NEWEST_RUNS = 100;

export function runRoutes(app: Api, ctx: ServerContext): void {
  /** The runs this server started, by id, until they end; and every id it ever started. */
  const live = new Map<string, AbortController>();
  const started = new Set<string>();
  /** Starts take turns, so that each finds its own run's record (see `start`). */
  let turn: Promise<unknown> = Promise.resolve();

  /**
   * Starts a run and finds its record. The loop makes the run's id and records it before its
   * first step, but tells it to no hook before then, so the record is looked up once the first
   * step is about to begin: the newest this server did not start before, of this definition,
   * begun since the start was asked for. (A run that ends before its first step, its goal already
   * holding, is known by its result.)
   */
  const start = async (name: string, definition: RunDefinition): Promise<RunInfo> => {
    const controller = new AbortController();
    const asked = Date.now();
    let stepping!: () => void;
    const firstStep = new Promise<undefined>((resolve) => (stepping = () => resolve(undefined)));
    const signal = definition.signal ? AbortSignal.any([definition.signal, controller.signal]) : controller.signal;
    const result = ctx.colony.run({ ...definition, signal }, { beforeStep: () => stepping() });
    // Followed from now on, whatever happens below: the server's closing stops it and waits for it.
    const tracked: { runId?: string; over: boolean } = { over: false };
    const stop = () => controller.abort();
    ctx.closing.addEventListener("abort", stop, { once: true });
    const ended = result.then(
      () => {},
      // A run that fails before its first step fails the request instead.
      (error: unknown) => void (tracked.runId !== undefined && console.error(`colony serve: run ${tracked.runId} of ${name} failed:`, error)),
    );
    ctx.running.add(ended);
    void ended.finally(() => {
      tracked.over = true;
      ctx.running.delete(ended);
      ctx.closing.removeEventListener("abort", stop);
      if (tracked.runId !== undefined) live.delete(tracked.runId);
    });

    const outcome = await Promise.race<RunResult | undefined>([firstStep, result]);
    const runs = await ctx.colony.runs.list({ limit: NEWEST_RUNS });
    const run = outcome
      ? runs.find((r) => r.runId === outcome.runId)
      : runs.find((r) => !started.has(r.runId) && r.board === definition.board && r.name === (definition.name ?? definition.board) && r.startedAt >= asked);
    if (!run) throw new ColonyError("RUN_LOST", `the run of ${name} just started is not among the newest ${NEWEST_RUNS} runs (more were started at once); GET /api/runs shows it`);
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
      responses: { 202: json(runInfoSchema, "Started (or, if its goal already held, ended)"), ...problems(400, 404, 503) },
    }),
    async (c) => {
      const { definition: name } = c.req.valid("json");
      if (ctx.closing.aborted) throw new ApiProblem(503, "CLOSED", "the server is closing: it starts no more runs");
      const definition = Object.hasOwn(ctx.definitions, name) ? ctx.definitions[name] : undefined;
      if (!definition) {
        const known = Object.keys(ctx.definitions);
        throw new ApiProblem(404, "NOT_FOUND", `no definition ${JSON.stringify(name)}; this server can start ${known.length === 0 ? "none (start it with --run FILE)" : known.join(", ")}`, { field: "definition" });
      }
      const starting = turn.then(() => start(name, definition));
      turn = starting.catch(() => {});
      const run = await starting;
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
