/**
 * Tool calls waiting for a person, from every process on the store, and their decisions. The
 * requests are entries of the board "colony-approvals", so `/api/boards/colony-approvals/events`
 * follows them live.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Api, ServerContext } from "../context.ts";
import { problems } from "../problem.ts";
import { approvalSchema, json } from "../schemas.ts";


export function approvalRoutes(app: Api, ctx: ServerContext): void {
  app.openapi(
    createRoute({
      method: "get",
      path: "/api/approvals",
      summary: "Approval requests, oldest first",
      request: { query: z.object({ status: z.enum(["pending", "approved", "denied", "abandoned"]).optional().openapi({ description: "Default: all" }) }) },
      responses: { 200: json(z.object({ approvals: z.array(approvalSchema) }), "Requests"), ...problems(400) },
    }),
    async (c) => c.json({ approvals: await ctx.colony.approvals.list(c.req.valid("query")) }, 200),
  );

  for (const decision of ["approve", "deny"] as const) {
    app.openapi(
      createRoute({
        method: "post",
        path: `/api/approvals/{id}/${decision}`,
        summary: decision === "approve" ? "Lets the tool call run; the agent resumes wherever it runs" : "Refuses the tool call; the agent's model is told, with the reason",
        request: {
          params: z.object({ id: z.string().openapi({ param: { name: "id", in: "path" } }) }),
          body: { required: false, content: { "application/json": { schema: z.strictObject({ reason: z.string().max(4096).optional().openapi({ description: "Why; the agent's model sees it" }) }) } } },
        },
        responses: { 200: json(approvalSchema, "The decided request"), ...problems(400, 404, 409) },
      }),
      async (c) => {
        const { id } = c.req.valid("param");
        const { reason } = c.req.valid("json");
        const options = reason === undefined ? {} : { reason };
        return c.json(decision === "approve" ? await ctx.colony.approvals.approve(id, options) : await ctx.colony.approvals.deny(id, options), 200);
      },
    );
  }
}
