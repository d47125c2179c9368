/**
 * The sub-agent registry (from every process on the store): the list, one agent's tree with
 * what each agent spent, terminate, and the registry live. The registry keeps no log, so the live
 * stream reads it every `pollMs` and sends what changed.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { usageTree, type UsageNode } from "../../core/agent-usage.ts";
import type { AgentRecord } from "../../core/records.ts";
import type { Api, ServerContext } from "../context.ts";
import { problems } from "../problem.ts";
import { agentSchema, agentStateSchema, agentTreeSchema, json, recordId, type AgentTreeNode } from "../schemas.ts";
import { eventStream, pause } from "../sse.ts";

const agentParam = z.object({ id: recordId("id") });

export function agentRoutes(app: Api, ctx: ServerContext): void {
  app.openapi(
    createRoute({
      method: "get",
      path: "/api/agents",
      summary: "The registry, filtered",
      request: { query: z.object({ state: agentStateSchema.optional(), parentId: z.string().optional().openapi({ description: "Only the children of this agent" }) }) },
      responses: { 200: json(z.object({ agents: z.array(agentSchema) }), "Agents"), ...problems(400) },
    }),
    async (c) => c.json({ agents: await ctx.colony.agents.list(c.req.valid("query")) }, 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/agents/events",
      summary: "The registry live (Server-Sent Events)",
      description:
        "`agents` { agents } first, the whole registry; then `agent` (an AgentRecord) for each agent that appeared or changed, and `removed` { id } for one that retention removed. The registry has no log, so events carry no id: a client that reconnects gets `agents` again.",
      responses: { 200: { description: "text/event-stream" } },
    }),
    (c) =>
      eventStream(c, ctx, async (send, signal) => {
        let known: Map<string, string> | undefined;
        do {
          const agents = await ctx.colony.agents.list();
          const now = new Map(agents.map((a) => [a.id, JSON.stringify(a)]));
          if (!known) {
            await send({ event: "agents", data: { agents } });
          } else {
            for (const agent of agents) if (known.get(agent.id) !== now.get(agent.id)) await send({ event: "agent", data: agent });
            for (const id of known.keys()) if (!now.has(id)) await send({ event: "removed", data: { id } });
          }
          known = now;
        } while (await pause(ctx.pollMs, signal));
      }),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/agents/{id}/tree",
      summary: "The tree under an agent: what each spent itself (own) and with its descendants (total), and its registry record",
      request: { params: agentParam },
      responses: { 200: json(z.object({ tree: agentTreeSchema }), "The tree"), ...problems(404) },
    }),
    async (c) => {
      // One read of the registry for both, so that the usage and the records agree (colony.agents.usage reads it so too).
      const records = await ctx.colony.agents.list();
      const byId = new Map<string, AgentRecord>(records.map((r) => [r.id, r]));
      const withRecords = (node: UsageNode): AgentTreeNode => ({ ...node, record: byId.get(node.id), children: node.children.map(withRecords) });
      return c.json({ tree: withRecords(usageTree(records, c.req.valid("param").id)) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/agents/{id}/terminate",
      summary: "Terminates a live agent, with its descendants unless cascade is false; an agent of another process is asked through the store",
      request: {
        params: agentParam,
        body: { required: false, content: { "application/json": { schema: z.strictObject({ cascade: z.boolean().optional().openapi({ description: "Default true" }) }) } } },
      },
      responses: { 202: json(z.object({ id: z.string(), cascade: z.boolean() }), "Asked: its owner ends it within a second"), ...problems(400, 404) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { cascade = true } = c.req.valid("json");
      await ctx.colony.agents.terminate(id, { cascade });
      return c.json({ id, cascade }, 202);
    },
  );
}
