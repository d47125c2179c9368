/**
 * The swarm: workers (nodes) with their status, load and running tasks, the status at a glance,
 * draining a node over the bus, and the nodes live. The worker registry keeps no log, so the live
 * stream reads it every `pollMs` and sends the nodes when they changed.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { BusRequestError } from "../../core/errors.ts";
import { DEFAULT_TASK_BOARD } from "../../core/tasks.ts";
import { nodeInfoChannel, nodeRequestChannel, nodeSubject } from "../../runtime/tasks/node.ts";
import type { Api, ServerContext } from "../context.ts";
import { ApiProblem, problems } from "../problem.ts";
import { json, nodeInfoSchema, nodeSchema, statusSchema, taskBoardQuery } from "../schemas.ts";
import { eventStream, pause } from "../sse.ts";
import { swarmNodes, swarmStatus } from "../../runtime/tasks/swarm.ts";


/** How long a drain waits for the node's answer. */
const DRAIN_TIMEOUT_MS = 3000;

export function nodeRoutes(app: Api, ctx: ServerContext): void {
  const boardOf = (board: string | undefined) => board ?? DEFAULT_TASK_BOARD;

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/nodes",
      summary: "The workers serving a task board: status (online, busy, draining, offline, stopped), load, running tasks, heartbeat",
      request: { query: taskBoardQuery },
      responses: { 200: json(z.object({ board: z.string(), nodes: z.array(nodeSchema) }), "Nodes"), ...problems(400) },
    }),
    async (c) => {
      const board = boardOf(c.req.valid("query").board);
      return c.json({ board, nodes: (await swarmNodes(ctx.colony, board)).nodes }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/nodes/events",
      summary: "The nodes live (Server-Sent Events)",
      description: "`nodes` { board, nodes } first and then whenever a node changed (heartbeats included). The registry has no log, so events carry no id.",
      request: { query: taskBoardQuery },
      responses: { 200: { description: "text/event-stream" }, ...problems(400) },
    }),
    async (c) => {
      const board = boardOf(c.req.valid("query").board);
      // Opened first, so that a store that cannot open it answers with a problem, not an error event.
      await ctx.colony.tasks(board);
      return eventStream(c, ctx, async (send, signal) => {
        let last: string | undefined;
        do {
          const { nodes } = await swarmNodes(ctx.colony, board);
          // Compared without the ages, which change on every read.
          const seen = JSON.stringify(nodes.map(({ heartbeatAgeMs: _age, ...node }) => node));
          if (seen !== last) await send({ event: "nodes", data: { board, nodes } });
          last = seen;
        } while (await pause(ctx.pollMs, signal));
      });
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/status",
      summary: "The swarm at a glance: backend, coordinator, queue depth per kind, running tasks, workers by status",
      request: { query: taskBoardQuery },
      responses: { 200: json(statusSchema, "Status"), ...problems(400) },
    }),
    async (c) => c.json(await swarmStatus(ctx.colony, boardOf(c.req.valid("query").board)), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/nodes/{id}/drain",
      summary: "Asks a worker over the bus to finish what it holds, claim nothing new and stop",
      request: { params: z.object({ id: z.string().min(1).openapi({ param: { name: "id", in: "path" } }) }) },
      responses: { 202: json(nodeInfoSchema, "The worker's answer"), ...problems(404, 504) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const bus = await ctx.colony.bus();
      try {
        return c.json(await bus.request(nodeRequestChannel, nodeInfoChannel, nodeSubject(id), { op: "drain" }, DRAIN_TIMEOUT_MS), 202);
      } catch (error) {
        if (!(error instanceof BusRequestError)) throw error;
        const where = ctx.colony.backend.kind === "nats" ? "" : ` (the ${ctx.colony.backend.kind} bus does not leave this process: a worker of another process is drained by SIGTERM)`;
        throw new ApiProblem(error.code === "BUS_TIMEOUT" ? 504 : 404, error.code, `worker ${JSON.stringify(id)} did not answer: ${error.message}${where}`, { field: "id" });
      }
    },
  );
}
