/**
 * The server on a real socket: `colony.serve()` on port 0, fetch, a live stream dropped and
 * resumed over TCP; the bearer token (401 without it, whatever length a wrong one has); the
 * refusal to listen beyond loopback without a token; loopback-only names and same-origin writes
 * without one; and `colony serve` from the shell.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ConfigError, createColony, createServerApp, ListenError, memoryBackend, UnsafeBindError, type LogRecord } from "../src/index.ts";
import { CLI, runCli } from "./fixtures/cli.ts";
import { waitFor } from "./fixtures/helpers.ts";
import { EventReader, call } from "./fixtures/server.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

describe("colony.serve on a socket", () => {
  const colony = createColony({ backend: memoryBackend() });
  after(() => colony.close());

  test("listens on a free port; requests, a stream dropped and resumed by Last-Event-ID, and a clean close", async () => {
    const server = await colony.serve({ port: 0, dashboardDir: false, heartbeatMs: 20 });
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(server.port > 0);
      for (let i = 1; i <= 6; i++) assert.equal((await call(server.url, "PUT", `/api/boards/wire/entries/n%2F${i}`, { value: i })).status, 201);
      const entry = await call(server.url, "GET", "/api/boards/wire/entries/n%2F3");
      assert.deepEqual([entry.status, entry.body.key, entry.headers.get("etag")], [200, "n/3", '"1"']);

      const dropped = new AbortController();
      const first = new EventReader(await fetch(`${server.url}/api/boards/wire/events?after=0`, { signal: dropped.signal }));
      const [, ...read] = await first.take(3);
      assert.deepEqual(read.map((e) => e.id), ["1", "2"]);
      dropped.abort();

      const again = new EventReader(await fetch(`${server.url}/api/boards/wire/events`, { headers: { "last-event-id": "2" } }));
      const [ready, ...rest] = await again.take(5);
      assert.deepEqual(ready!.data, { board: "wire", after: 2 });
      assert.deepEqual(rest.map((e) => [e.id, (e.data as LogRecord).key]), [["3", "n/3"], ["4", "n/4"], ["5", "n/5"], ["6", "n/6"]]);
      // Closing with a stream open ends it, and the close does not wait for the client.
      await server.close();
      await assert.rejects(again.next(), /the stream ended|terminated|other side closed/);
    } finally {
      await server.close();
    }
    await assert.rejects(fetch(`${server.url}/api/boards`), /fetch failed/);
  });

  test("a port in use is a ListenError", async () => {
    const server = await colony.serve({ port: 0, dashboardDir: false });
    try {
      await assert.rejects(colony.serve({ port: server.port, dashboardDir: false }), (error: Error) => error instanceof ListenError && error instanceof ConfigError && /in use/.test(error.message));
    } finally {
      await server.close();
    }
  });

  test("beyond loopback without a token it refuses to start; with one it starts", async () => {
    await assert.rejects(colony.serve({ host: "0.0.0.0", port: 0 }), (error: Error) => error instanceof UnsafeBindError && error.code === "CONFIG" && /token/.test(error.message));
    await assert.rejects(colony.serve({ host: "::", port: 0 }), UnsafeBindError);
    const server = await colony.serve({ host: "0.0.0.0", port: 0, token: "s3cret-token", dashboardDir: false });
    await server.close();
  });

  test("with a token every /api request needs it, compared whatever the length of a wrong one; the dashboard page is public", async () => {
    const token = "correct-horse-battery-staple";
    const server = await colony.serve({ port: 0, token });
    try {
      const none = await call(server.url, "GET", "/api/boards");
      assert.deepEqual([none.status, none.body.code, none.headers.get("www-authenticate")], [401, "UNAUTHORIZED", "Bearer"]);
      for (const wrong of ["x", token.slice(0, -1), `${token}x`, "y".repeat(10_000), token.toUpperCase()]) {
        const response = await call(server.url, "GET", "/api/boards", undefined, { authorization: `Bearer ${wrong}` });
        assert.equal(response.status, 401, `token of ${wrong.length} characters`);
      }
      assert.equal((await call(server.url, "GET", "/api/boards", undefined, { authorization: `Basic ${token}` })).status, 401);
      assert.equal((await call(server.url, "GET", "/api/openapi.json")).status, 401);
      assert.equal((await call(server.url, "GET", "/api/boards", undefined, { authorization: `Bearer ${token}` })).status, 200);
      assert.equal((await call(server.url, "GET", "/api/boards", undefined, { authorization: `bearer ${token}` })).status, 200);
      const page = await fetch(`${server.url}/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get("content-type") ?? "", /text\/html/);
      await page.text();
    } finally {
      await server.close();
    }
  });

  test("without a token: loopback names only, and writes only from its own origin or the cors one", async () => {
    const app = await createServerApp(colony, { dashboardDir: false, cors: "http://dash.example" });
    const rebound = await app.request("http://evil.example/api/boards");
    assert.deepEqual([rebound.status, ((await rebound.json()) as { code: string }).code], [403, "FORBIDDEN_HOST"]);
    assert.equal((await app.request("http://[::1]/api/boards")).status, 200);
    const write = (origin: string) => app.request("http://127.0.0.1:7420/api/boards/o/entries/k", { method: "PUT", body: '{"value":1}', headers: { "content-type": "application/json", origin } });
    assert.equal((await write("http://evil.example")).status, 403);
    assert.equal((await write("http://127.0.0.1:7420")).status, 201);
    const cross = await write("http://dash.example");
    assert.equal(cross.status, 200);
    assert.equal(cross.headers.get("access-control-allow-origin"), "http://dash.example");
    const preflight = await app.request("http://127.0.0.1:7420/api/boards/o/entries/k", {
      method: "OPTIONS",
      headers: { origin: "http://dash.example", "access-control-request-method": "PUT", "access-control-request-headers": "if-match, content-type" },
    });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get("access-control-allow-headers") ?? "", /If-Match/i);
    const noCors = await createServerApp(colony, { dashboardDir: false });
    assert.equal((await noCors.request("/api/boards", { headers: { origin: "http://dash.example" } })).headers.get("access-control-allow-origin"), null);
  });

  test("bad options are ConfigErrors before anything is served", async () => {
    await assert.rejects(createServerApp(colony, { token: "has space" }), ConfigError);
    await assert.rejects(createServerApp(colony, { cors: "http://dash.example/path" }), ConfigError);
    await assert.rejects(createServerApp(colony, { pollMs: 0 }), ConfigError);
    await assert.rejects(colony.serve({ port: 70_000 }), ConfigError);
  });
});

describe("colony serve", () => {
  test("prints { url } as a JSON line, starts the --run definitions and manifests, serves until SIGTERM, and exits 0", async () => {
    const manifest = "test/fixtures/manifests/run.yaml";
    const child = spawn(process.execPath, [CLI, "serve", "--memory", "--port", "0", "--json", "--run", "examples/essay-run.ts", "--run", manifest], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const exited = once(child, "close");
    const lines = createInterface({ input: child.stdout });
    const [line] = (await once(lines, "line")) as [string];
    const { url } = JSON.parse(line) as { url: string };
    const status = await call(url, "GET", "/api/status");
    assert.deepEqual([status.status, (status.body.backend as { kind: string }).kind], [200, "memory"]);
    const definitions = await call(url, "GET", "/api/definitions");
    assert.deepEqual(definitions.body.definitions, [
      { name: "essay-run", board: "first-run", agents: ["researcher", "writer"] },
      // A manifest's run: is named after its file; its agent is a scripted model agent.
      { name: "run", board: "manifest-run", agents: ["writer"] },
    ]);
    for (const [definition, board] of [["essay-run", "first-run"], ["run", "manifest-run"]] as const) {
      const started = await call(url, "POST", "/api/runs", { definition });
      assert.equal(started.status, 202);
      const run = await waitFor(async () => {
        const { body } = await call(url, "GET", `/api/runs/${String(started.body.runId)}`);
        return (body.run as { status: string }).status === "finished" ? (body.run as { stopReason: string; board: string }) : undefined;
      }, 20_000, `${definition}'s end`);
      assert.deepEqual([run.stopReason, run.board], ["goal", board]);
    }
    child.kill("SIGTERM");
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, stderr);
  });

  test("refuses 0.0.0.0 without a token: one line, exit 2", async () => {
    const refused = await runCli(["serve", "--memory", "--host", "0.0.0.0", "--port", "0"], { env: { ...process.env, COLONY_TOKEN: "" } });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /not a loopback address.*token/);
    assert.doesNotMatch(refused.stderr, /\n\s+at /);
  });
});
