/**
 * Property: whatever method, path, headers and body a client sends, the API answers 2xx (where
 * the request is valid) or 4xx with a problem body, never 5xx; with a token, nothing but the exact
 * token gets past 401.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { OpenAPIHono } from "@hono/zod-openapi";
import fc from "fast-check";
import { createColony, createServerApp, memoryBackend, sqliteBackend, type Colony } from "../src/index.ts";
import { tempDir } from "./fixtures/helpers.ts";
import { request, send } from "./fixtures/server.ts";

for (const kind of ["memory", "sqlite"] as const) {
  describe(`any request, on ${kind}`, () => {
    const dir = tempDir(`colony-server-property-${kind}-`);
    let colony: Colony;
    let open: OpenAPIHono;
    let guarded: OpenAPIHono;
    before(async () => {
      colony = createColony({ backend: kind === "memory" ? memoryBackend() : sqliteBackend({ path: join(dir.path, "colony.db") }) });
      open = await createServerApp(colony, { dashboardDir: false });
      guarded = await createServerApp(colony, { dashboardDir: false, token: "the-token" });
      await (await colony.board("board")).write("findings/a", 1, { author: "seed" });
      await (await colony.tasks()).submit({ id: "t-1", kind: "k" });
    });
    after(async () => {
      await colony.close();
      dir.dispose();
    });

    test("is answered 2xx or 4xx, never 5xx, and every error is a problem", async () => {
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          const response = await send(open, r);
          assert.ok(response.status < 500, `${r.method} ${r.path}${r.query} → ${response.status}`);
          if (response.status >= 400 && r.method !== "HEAD") assert.equal(response.headers.get("content-type"), "application/problem+json", `${r.method} ${r.path}${r.query}`);
        }),
        { numRuns: 400 },
      );
    });

    test("with a token, only the exact token gets past 401", async () => {
      const token = fc.option(fc.string({ maxLength: 40 }).filter((t) => /^[\x21-\x7e]*$/.test(t)), { nil: undefined });
      await fc.assert(
        fc.asyncProperty(request, token, async (r, given) => {
          const response = await send(guarded, { ...r, headers: { ...r.headers, ...(given !== undefined && { authorization: `Bearer ${given}` }) } });
          assert.ok(response.status < 500);
          // A path such as /api/.. is / once the URL is resolved: not the API's.
          const api = new URL(r.path, "http://127.0.0.1").pathname.startsWith("/api");
          if (api && given !== "the-token") assert.equal(response.status, 401, `${r.method} ${r.path} with ${JSON.stringify(given)}`);
        }),
        { numRuns: 200 },
      );
    });
  });
}
