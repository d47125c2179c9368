/**
 * Two servers on one NATS swarm (two colonies, each with its own connection, on one private
 * nats-server) show the same swarm: a write through one's API is in the other's entries and its
 * live stream, and a task submitted through one is on the other's task board and its stream;
 * and random requests get no 5xx here either (NATS takes fewer keys than the embedded stores).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { OpenAPIHono } from "@hono/zod-openapi";
import fc from "fast-check";
import { createColony, createServerApp, type Colony, type LogRecord, type TaskEvent } from "../src/index.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";
import { EventReader, call, request, send } from "./fixtures/server.ts";

const nats = natsServerPerFile();

describe("two servers on one NATS swarm", () => {
  let colonies: Colony[];
  let one: OpenAPIHono;
  let other: OpenAPIHono;
  before(async () => {
    const prefix = `s${randomUUID().slice(0, 8)}`;
    colonies = [createColony({ backend: nats.backend(prefix) }), createColony({ backend: nats.backend(prefix) })];
    one = await createServerApp(colonies[0]!, { dashboardDir: false });
    other = await createServerApp(colonies[1]!, { dashboardDir: false });
  });
  after(async () => {
    await Promise.all(colonies.map((colony) => colony.close()));
  });

  test("a write through one is in the other's entries and live stream; a conflict is seen across them", async () => {
    const stream = new EventReader(await other.request("/api/boards/shared/events?after=0"));
    assert.deepEqual((await stream.next()).data, { board: "shared", after: 0 });

    const written = await call(one, "PUT", "/api/boards/shared/entries/findings%2Fants", { value: "trails", tags: { status: "pending_review" } });
    assert.equal(written.status, 201);
    const seen = await stream.next();
    assert.equal(seen.id, "1");
    assert.deepEqual([(seen.data as LogRecord).key, (seen.data as LogRecord).value, (seen.data as LogRecord).author], ["findings/ants", "trails", "api"]);

    const entries = await call(other, "GET", "/api/boards/shared/entries");
    assert.deepEqual((entries.body.entries as { key: string; value: unknown; tags: unknown }[]).map((e) => [e.key, e.value, e.tags]), [["findings/ants", "trails", { status: "pending_review" }]]);
    const boards = await call(other, "GET", "/api/boards");
    assert.deepEqual((boards.body.boards as { name: string }[]).map((b) => b.name), ["shared"]);

    // A compare-and-set through the other on the version it read, then a stale one through the first.
    assert.equal((await call(other, "PUT", "/api/boards/shared/entries/findings%2Fants", { value: "approved" }, { "if-match": '"1"' })).status, 200);
    const stale = await call(one, "PUT", "/api/boards/shared/entries/findings%2Fants", { value: "lost" }, { "if-match": '"1"' });
    assert.equal(stale.status, 412);
    assert.equal((stale.body.current as { value: unknown }).value, "approved");
    const second = await stream.next();
    assert.deepEqual([second.id, (second.data as LogRecord).value], ["2", "approved"]);
    await stream.close();

    // Resumed from the last record read, through the first server this time.
    await call(other, "PUT", "/api/boards/shared/entries/report", { value: "done" });
    const resumed = new EventReader(await one.request("/api/boards/shared/events", { headers: { "last-event-id": "2" } }));
    const [ready, third] = await resumed.take(2);
    assert.deepEqual(ready!.data, { board: "shared", after: 2 });
    assert.deepEqual([third!.id, (third!.data as LogRecord).key], ["3", "report"]);
    await resumed.close();
  });

  test("a task submitted through one is on the other's board and in its live stream", async () => {
    const stream = new EventReader(await other.request("/api/tasks/events?board=swarm"));
    const ready = await stream.next();
    assert.equal(ready.event, "ready");
    const submitted = await call(one, "POST", "/api/tasks?board=swarm", { kind: "research", input: { q: "ants" } }, { "idempotency-key": "once" });
    assert.equal(submitted.status, 201);
    const event = await stream.next();
    assert.deepEqual([event.event, (event.data as TaskEvent).type, (event.data as TaskEvent).task.id], ["task", "submitted", submitted.body.id]);
    const again = await call(other, "POST", "/api/tasks?board=swarm", { kind: "research", input: { q: "ants" } }, { "idempotency-key": "once" });
    assert.equal(again.body.id, submitted.body.id);
    const listed = await call(other, "GET", "/api/tasks?board=swarm");
    assert.deepEqual((listed.body.tasks as { id: string }[]).map((t) => t.id), [submitted.body.id]);
    const cancelled = await call(other, "POST", `/api/tasks/${String(submitted.body.id)}/cancel?board=swarm`);
    assert.equal(cancelled.body.status, "cancelled");
    const status = await call(one, "GET", "/api/status?board=swarm");
    assert.deepEqual([(status.body.backend as { kind: string }).kind, status.body.coordinator], ["nats", null]);
    await stream.close();
  });

  test("any request is answered 2xx or 4xx, never 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const response = await send(one, r);
        assert.ok(response.status < 500, `${r.method} ${r.path}${r.query} → ${response.status}`);
      }),
      { numRuns: 150 },
    );
  });
});
