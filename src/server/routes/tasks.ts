/**
 * Task boards: tasks (filtered), one task with its events, submit (idempotent by key), cancel,
 * retry of a dead or failed task, and the board's events live. `?board=` names the task board,
 * default "default".
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { TaskBoard } from "../../core/task-board.ts";
import { DEFAULT_TASK_BOARD, HorizonError, TASK_STATUSES, type Task, type TaskEvent } from "../../core/tasks.ts";
import { BodyCache } from "../body-cache.ts";
import type { Api, ServerContext } from "../context.ts";
import { ApiProblem, problems } from "../problem.ts";
import { json, limit, position, submitSchema, taskBoardQuery, taskEventSchema, taskSchema } from "../schemas.ts";
import { eventStream, horizon } from "../sse.ts";

const taskParam = z.object({ id: z.string().openapi({ param: { name: "id", in: "path" } }) });
const idempotencyHeader = z.object({
  "idempotency-key": z.string().min(1).max(128).optional().openapi({ description: "A second request with the same key returns the task the first one made" }),
});

/** How many serialised task lists the server keeps. */
const BODIES_KEPT = 16;

/** The events of one task that the board still keeps, read from the board's whole retained log. */
async function eventsOf(board: TaskBoard, id: string): Promise<TaskEvent[]> {
  const head = await board.head();
  const events: TaskEvent[] = [];
  let since = 0;
  while (since < head) {
    try {
      for await (const event of board.watch({ since })) {
        since = event.seq;
        if (event.task.id === id) events.push(event);
        if (since >= head) break;
      }
      return events;
    } catch (error) {
      // Older events went under retention: what is kept starts after the horizon.
      if (!(error instanceof HorizonError)) throw error;
      since = error.horizon;
    }
  }
  return events;
}

export function taskRoutes(app: Api, ctx: ServerContext): void {
  const bodies = new BodyCache(BODIES_KEPT);
  const open = (board: string | undefined) => ctx.colony.tasks(board ?? DEFAULT_TASK_BOARD);
  const mustGet = async (board: TaskBoard, id: string): Promise<Task> => {
    const task = await board.get(id);
    if (!task) throw new ApiProblem(404, "NOT_FOUND", `task board "${board.name}" has no task ${JSON.stringify(id)}`, { field: "id" });
    return task;
  };
  const located = (board: TaskBoard, task: Task) => `/api/tasks/${encodeURIComponent(task.id)}?board=${board.name}`;

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/task-boards",
      summary: "The backend's task boards, by name, with their event log positions",
      responses: { 200: json(z.object({ boards: z.array(z.object({ name: z.string(), seq: z.number().int() }).openapi("TaskBoardSummary")) }), "Task boards by name") },
    }),
    async (c) => {
      const { tasks: names } = await ctx.colony.listBoards();
      return c.json({ boards: await Promise.all(names.map(async (name) => ({ name, seq: await (await open(name)).head() }))) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/tasks",
      summary: "Tasks in submit order, filtered; the newest `limit`",
      request: {
        query: taskBoardQuery.extend({
          status: z.enum(TASK_STATUSES).optional(),
          kind: z.string().optional(),
          capability: z.string().optional(),
          parentId: z.string().optional().openapi({ description: "Only the subtasks of this task" }),
          limit: limit(100_000, "At most this many, the newest; default 1000").optional(),
        }),
      },
      responses: { 200: json(z.object({ board: z.string(), total: z.number().int().openapi({ description: "How many matched, before the limit" }), tasks: z.array(taskSchema) }), "Tasks"), ...problems(400) },
    }),
    async (c) => {
      const { board: name, status, kind, capability, parentId, limit: most = 1000 } = c.req.valid("query");
      const board = await open(name);
      const { seq, tasks } = await board.snapshot({ status, kind, parentId });
      // The same JSON c.json would send, made once per log position: the list is a function of it.
      const body = bodies.get([board.name, status, kind, parentId, capability, most, seq], () => {
        const matched = tasks.filter((t) => capability === undefined || t.capability === capability);
        return { board: board.name, total: matched.length, tasks: matched.slice(-most) };
      });
      return c.body(body, 200, { "content-type": "application/json" }) as never;
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/tasks",
      summary: "Submits a task",
      request: { query: taskBoardQuery, headers: idempotencyHeader, body: { required: true, content: { "application/json": { schema: submitSchema } } } },
      responses: { 201: json(taskSchema, "The task (with an idempotency key already used: the task that key made)"), ...problems(400, 409) },
    }),
    async (c) => {
      const board = await open(c.req.valid("query").board);
      const request = c.req.valid("json");
      const header = c.req.valid("header")["idempotency-key"];
      if (header !== undefined && request.idempotencyKey !== undefined && header !== request.idempotencyKey) {
        throw new ApiProblem(400, "INVALID_REQUEST", "the Idempotency-Key header and the body's idempotencyKey differ; give one", { field: "idempotencyKey" });
      }
      const task = await board.submit({ ...request, idempotencyKey: header ?? request.idempotencyKey });
      c.header("Location", located(board, task));
      return c.json(task, 201);
    },
  );

  // Before /api/tasks/{id}, which would take "events" for an id.
  app.openapi(
    createRoute({
      method: "get",
      path: "/api/tasks/events",
      summary: "The task board's changes live (Server-Sent Events)",
      description:
        "`ready` { board, after } first; then `task` (a TaskEvent, `id:` its seq) for every change after `after`: the Last-Event-ID header, else ?after, else now. `horizon` { requested, from, detail } when events went under the board's retention before they were sent (asked for too late, or read too slowly): reload the tasks; the stream goes on after `from`.",
      request: {
        query: taskBoardQuery.extend({ after: position("Follow from after this event seq (Last-Event-ID wins)").optional() }),
        headers: z.object({ "last-event-id": position("The last event's seq the client saw").optional() }),
      },
      responses: { 200: { description: "text/event-stream" }, ...problems(400) },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const requested = c.req.valid("header")["last-event-id"] ?? query.after;
      const board = await open(query.board);
      const head = await board.head();
      return eventStream(c, ctx, async (send, signal) => {
        let since = requested ?? head;
        await send({ event: "ready", data: { board: board.name, after: since } });
        if (since > head) {
          await send(horizon(since, head, `task board "${board.name}" has ${head} events, fewer than ${since}: it is not the log that position came from`));
          since = head;
        }
        for (;;) {
          try {
            for await (const event of board.watch({ since, signal })) {
              await send({ event: "task", id: event.seq, data: event });
              since = event.seq;
            }
            return;
          } catch (error) {
            if (!(error instanceof HorizonError)) throw error;
            await send(horizon(since, error.horizon, error.message));
            since = error.horizon;
          }
        }
      });
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/tasks/{id}",
      summary: "One task, with the events of it that the board still keeps",
      request: { params: taskParam, query: taskBoardQuery },
      responses: { 200: json(z.object({ task: taskSchema, events: z.array(taskEventSchema) }), "The task"), ...problems(400, 404) },
    }),
    async (c) => {
      const board = await open(c.req.valid("query").board);
      const task = await mustGet(board, c.req.valid("param").id);
      return c.json({ task, events: await eventsOf(board, task.id) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/tasks/{id}/cancel",
      summary: "Cancels a task and its subtasks; tasks that depend on them fail",
      request: { params: taskParam, query: taskBoardQuery },
      responses: { 200: json(taskSchema, "The task as it is now"), ...problems(400, 404) },
    }),
    async (c) => {
      const board = await open(c.req.valid("query").board);
      const task = await mustGet(board, c.req.valid("param").id);
      return c.json(await board.cancel(task.id), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/tasks/{id}/retry",
      summary: "Submits a dead or failed task again, as a new task with the same kind, input, dependencies and settings; once per task unless an Idempotency-Key says otherwise",
      request: { params: taskParam, query: taskBoardQuery, headers: idempotencyHeader },
      responses: { 201: json(taskSchema, "The new task"), ...problems(400, 404, 409) },
    }),
    async (c) => {
      const board = await open(c.req.valid("query").board);
      const task = await mustGet(board, c.req.valid("param").id);
      if (task.status !== "dead" && task.status !== "failed") {
        throw new ApiProblem(409, "NOT_RETRYABLE", `task ${task.id} is ${task.status}; only a dead or failed task is retried`);
      }
      const retry = await board.submit({
        kind: task.kind,
        input: task.input,
        capability: task.capability,
        dependsOn: task.dependsOn,
        parentId: task.parentId,
        priority: task.priority,
        maxAttempts: task.maxAttempts,
        timeoutMs: task.timeoutMs,
        route: task.route,
        backoff: task.backoff,
        // Retried once, however often asked (a double click, a client's resend), unless the caller keys each retry itself.
        idempotencyKey: c.req.valid("header")["idempotency-key"] ?? `retry:${task.id}`,
      });
      c.header("Location", located(board, retry));
      return c.json(retry, 201);
    },
  );
}
