/**
 * The dashboard at `/`: the built files (`dist/dashboard/`, which the package ships), with
 * `index.html` for any other page path so that the dashboard's own routes load it; or, before it
 * is built, a page saying how to build it. The pages are public; their calls to /api are not.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { serveStatic } from "@hono/node-server/serve-static";
import type { MiddlewareHandler } from "hono";
import type { Api } from "./context.ts";

/** Where the package keeps the built dashboard: two levels up from src/server and from dist/server alike. */
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL("../../dist/dashboard/", import.meta.url));

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Colony</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>Colony</h1>
<p>The dashboard is not built. In a Colony checkout, run <code>npm run build:dashboard</code> (it writes
<code>dist/dashboard/</code>), then open this page again.</p>
<p>The API is here all the same: <a href="api/openapi.json"><code>/api/openapi.json</code></a> describes it.</p>
</body></html>
`;

/** Serves `dir` at `/` on GET and HEAD, leaving /api paths alone. */
export function dashboardRoutes(app: Api, dir: string): void {
  const built = () => existsSync(join(dir, "index.html"));
  const isApi = (path: string) => path === "/api" || path.startsWith("/api/");
  // Made once the folder exists (serveStatic complains of a missing root when made).
  let files: MiddlewareHandler | undefined;
  let index: MiddlewareHandler | undefined;
  app.get("*", async (c, next) => {
    if (isApi(c.req.path)) return next();
    if (!built()) return c.html(NOT_BUILT, 200);
    files ??= serveStatic({ root: dir });
    index ??= serveStatic({ root: dir, path: "index.html" });
    return (await files(c, async () => {})) ?? (await index(c, next));
  });
}
