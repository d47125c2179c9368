/**
 * The HTTP API's routes through Hono's `app.request()`, on the memory and SQLite backends:
 * compare-and-set by If-Match / If-None-Match, the log, boards as they were, task submit,
 * idempotency, cancel and retry, the agent tree and terminate, approvals, runs started and
 * stopped, nodes and status, problems for bad input, and the OpenAPI document.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { createColony, createServerApp, defineSubAgent, memoryBackend, sqliteBackend, type Colony, type RunDefinition } from "../src/index.ts";
import { waitFor, tempDir } from "./fixtures/helpers.ts";
import { call } from "./fixtures/server.ts";

/** A run whose one agent asks for approval of a deploy, then writes what was decided. */
const approvalRun = (board: string): RunDefinition => ({
  board,
  agents: [
    {
      name: "deployer",
      run: async (ctx) => {
        const decision = await ctx.requestApproval({ tool: "deploy", args: { to: "prod" } });
        await ctx.board.write("decision", decision);
      },
    },
  ],
  goal: (view) => view.has("decision"),
  maxSteps: 3,
});

/** A sub-agent that spends, spawns the same below it down to `depth`, says so, and waits to be stopped. */
const spender = defineSubAgent<{ depth: number; tokens: number }, void>({
  name: "spender",
  async run(ctx) {
    ctx.usage.add({ tokens: ctx.input.tokens });
    if (ctx.input.depth > 0) {
      const child = await ctx.spawn(spender, { depth: ctx.input.depth - 1, tokens: ctx.input.tokens / 2 });
      for await (const event of child.events) if (event.type === "emit" && event.name === "ready") break;
    }
    ctx.emit("ready");
    await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
  },
});

const echo = defineSubAgent<unknown, unknown>({ name: "echo", run: (ctx) => ctx.input });

for (const kind of ["memory", "sqlite"] as const) {
  describe(`the HTTP API on ${kind}`, () => {
    const dir = tempDir(`colony-server-${kind}-`);
    let colony: Colony;
    let app: OpenAPIHono;
    before(async () => {
      colony = createColony({ backend: kind === "memory" ? memoryBackend() : sqliteBackend({ path: join(dir.path, "colony.db") }) });
      app = await createServerApp(colony, { dashboardDir: false, definitions: { approval: approvalRun("approval-run"), stoppable: approvalRun("stoppable-run") } });
    });
    after(async () => {
      await colony.close();
      dir.dispose();
    });

    test("compare-and-set: If-Match writes only at its version, and a conflict is 412 with the entry as it is", async () => {
      const created = await call(app, "PUT", "/api/boards/cas/entries/plan", { value: { steps: 3 }, tags: { status: "draft" } });
      assert.equal(created.status, 201);
      assert.equal(created.headers.get("etag"), '"1"');
      assert.deepEqual([created.body.version, created.body.value, created.body.author, created.body.tags], [1, { steps: 3 }, "api", { status: "draft" }]);

      const updated = await call(app, "PUT", "/api/boards/cas/entries/plan", { value: { steps: 4 } }, { "if-match": '"1"' });
      assert.equal(updated.status, 200);
      assert.equal(updated.body.version, 2);

      const stale = await call(app, "PUT", "/api/boards/cas/entries/plan", { value: { steps: 5 } }, { "if-match": "1" });
      assert.equal(stale.status, 412);
      assert.equal(stale.body.code, "VERSION_CONFLICT");
      assert.equal(stale.body.field, "if-match");
      assert.deepEqual((stale.body.current as { version: number; value: unknown }).value, { steps: 4 });
      assert.equal((stale.body.current as { version: number }).version, 2);

      const unconditional = await call(app, "PUT", "/api/boards/cas/entries/plan", { value: "over" });
      assert.equal(unconditional.status, 200);
      assert.equal(unconditional.body.version, 3);
      const history = await call(app, "GET", "/api/boards/cas/history?key=plan");
      assert.deepEqual((history.body.records as { value: unknown }[]).map((r) => r.value), [{ steps: 3 }, { steps: 4 }, "over"]);

      const anyVersion = await call(app, "PUT", "/api/boards/cas/entries/plan", { value: "any" }, { "if-match": "*" });
      assert.equal(anyVersion.status, 200);
      const missing = await call(app, "PUT", "/api/boards/cas/entries/nothing", { value: 1 }, { "if-match": "*" });
      assert.equal(missing.status, 412);
      assert.equal(missing.body.current, null);
    });

    test("If-None-Match: * creates only: a second create is 412 with the current entry", async () => {
      const first = await call(app, "PUT", "/api/boards/create/entries/findings%2Fants", { value: "trails" }, { "if-none-match": "*" });
      assert.equal(first.status, 201);
      assert.equal(first.body.key, "findings/ants");
      const again = await call(app, "PUT", "/api/boards/create/entries/findings%2Fants", { value: "other" }, { "if-none-match": "*" });
      assert.equal(again.status, 412);
      assert.equal(again.body.field, "if-none-match");
      assert.equal((again.body.current as { value: unknown }).value, "trails");
      const both = await call(app, "PUT", "/api/boards/create/entries/x", { value: 1 }, { "if-none-match": "*", "if-match": "1" });
      assert.equal(both.status, 400);
      const read = await call(app, "GET", "/api/boards/create/entries/findings%2Fants");
      assert.deepEqual([read.status, read.body.value, read.headers.get("etag")], [200, "trails", '"1"']);
    });

    test("delete honours If-Match, takes the next version, and a key that is gone is 404", async () => {
      await call(app, "PUT", "/api/boards/del/entries/k", { value: 1 });
      const wrong = await call(app, "DELETE", "/api/boards/del/entries/k", undefined, { "if-match": "7" });
      assert.equal(wrong.status, 412);
      assert.equal((wrong.body.current as { version: number }).version, 1);
      const deleted = await call(app, "DELETE", "/api/boards/del/entries/k", undefined, { "if-match": "1" });
      assert.deepEqual([deleted.status, deleted.body], [200, { key: "k", deleted: true }]);
      assert.equal((await call(app, "DELETE", "/api/boards/del/entries/k")).status, 404);
      assert.equal((await call(app, "GET", "/api/boards/del/entries/k")).status, 404);
      const recreated = await call(app, "PUT", "/api/boards/del/entries/k", { value: 2 });
      assert.deepEqual([recreated.status, recreated.body.version], [201, 3]);
      const log = await call(app, "GET", "/api/boards/del/history");
      assert.deepEqual((log.body.records as { op: string; version: number }[]).map((r) => `${r.op}@${r.version}`), ["write@1", "delete@2", "write@3"]);
    });

    test("history pages with after and next; entries by prefix; ?at= gives the board as it was", async () => {
      for (let i = 1; i <= 5; i++) await call(app, "PUT", `/api/boards/past/entries/n%2F${i}`, { value: i });
      await call(app, "PUT", "/api/boards/past/entries/n%2F1", { value: 10 });
      await call(app, "PUT", "/api/boards/past/entries/other", { value: 0 });

      const first = await call(app, "GET", "/api/boards/past/history?limit=3");
      assert.deepEqual((first.body.records as { seq: number }[]).map((r) => r.seq), [1, 2, 3]);
      assert.equal(first.body.next, 3);
      const rest = await call(app, "GET", `/api/boards/past/history?after=${String(first.body.next)}&limit=10`);
      assert.deepEqual((rest.body.records as { seq: number }[]).map((r) => r.seq), [4, 5, 6, 7]);
      assert.equal(rest.body.next, null);

      const now = await call(app, "GET", "/api/boards/past/entries?prefix=n%2F");
      assert.equal(now.body.seq, 7);
      assert.deepEqual((now.body.entries as { key: string; value: unknown }[]).map((e) => [e.key, e.value]), [["n/1", 10], ["n/2", 2], ["n/3", 3], ["n/4", 4], ["n/5", 5]]);
      const then = await call(app, "GET", "/api/boards/past/entries?at=2");
      assert.equal(then.body.seq, 2);
      assert.deepEqual((then.body.entries as { key: string; value: unknown }[]).map((e) => [e.key, e.value]), [["n/1", 1], ["n/2", 2]]);
      assert.deepEqual((await call(app, "GET", "/api/boards/past/entries?at=0")).body.entries, []);
      const future = await call(app, "GET", "/api/boards/past/entries?at=99");
      assert.deepEqual([future.status, future.body.field], [400, "at"]);

      const boards = await call(app, "GET", "/api/boards");
      assert.deepEqual((boards.body.boards as { name: string }[]).find((b) => b.name === "past"), { name: "past", entries: 6, seq: 7 });
    });

    test("the board and task board lists name what the backend holds, not only what the API touched", async () => {
      await (await colony.board("written_elsewhere")).write("k", 1, { author: "another" });
      await colony.board("opened-empty");
      await (await colony.tasks("jobs-b")).submit({ kind: "x", input: null });
      const boards = (await call(app, "GET", "/api/boards")).body.boards as { name: string; entries: number; seq: number }[];
      assert.deepEqual(boards.find((b) => b.name === "written_elsewhere"), { name: "written_elsewhere", entries: 1, seq: 1 });
      assert.equal(boards.find((b) => b.name === "opened-empty"), undefined, "a board with no writes is left out");
      assert.deepEqual(boards.map((b) => b.name), boards.map((b) => b.name).sort());
      const taskBoards = (await call(app, "GET", "/api/task-boards")).body.boards as { name: string; seq: number }[];
      assert.deepEqual(taskBoards.find((b) => b.name === "jobs-b"), { name: "jobs-b", seq: 1 });
    });

    test("bad input is a 4xx problem naming the field", async () => {
      const badName = await call(app, "GET", "/api/boards/no%20spaces/entries");
      assert.deepEqual([badName.status, badName.body.code, badName.body.field], [400, "INVALID_REQUEST", "name"]);
      assert.equal(badName.headers.get("content-type"), "application/problem+json");
      assert.deepEqual(Object.keys(badName.body).sort(), ["code", "detail", "field", "status", "title", "type"]);

      const badKey = await call(app, "PUT", "/api/boards/bad/entries/a%01b", { value: 1 });
      assert.deepEqual([badKey.status, badKey.body.code, badKey.body.field], [400, "INVALID_KEY", "key"]);
      const noValue = await call(app, "PUT", "/api/boards/bad/entries/k", { tags: ["x"] });
      assert.deepEqual([noValue.status, noValue.body.field], [400, "value"]);
      const unknownField = await call(app, "PUT", "/api/boards/bad/entries/k", { value: 1, author: "me" });
      assert.equal(unknownField.status, 400);
      const badTags = await call(app, "PUT", "/api/boards/bad/entries/k", { value: 1, tags: "status" });
      assert.deepEqual([badTags.status, badTags.body.field], [400, "tags"]);
      const badIfMatch = await call(app, "PUT", "/api/boards/bad/entries/k", { value: 1 }, { "if-match": "v1" });
      assert.deepEqual([badIfMatch.status, badIfMatch.body.field], [400, "if-match"]);
      const badLimit = await call(app, "GET", "/api/boards/bad/history?limit=0");
      assert.deepEqual([badLimit.status, badLimit.body.field], [400, "limit"]);

      const notJson = await app.request("/api/boards/bad/entries/k", { method: "PUT", body: "{nope", headers: { "content-type": "application/json" } });
      assert.equal(notJson.status, 400);
      assert.equal(((await notJson.json()) as { field: string }).field, "body");
      const noType = await app.request("/api/boards/bad/entries/k", { method: "PUT", body: JSON.stringify({ value: 1 }) });
      assert.equal(noType.status, 415);
      assert.equal(((await noType.json()) as { code: string }).code, "UNSUPPORTED_MEDIA_TYPE");
      const negativeZero = await app.request("/api/boards/bad/entries/k", { method: "PUT", body: '{"value":-0}', headers: { "content-type": "application/json" } });
      assert.deepEqual([negativeZero.status, ((await negativeZero.json()) as { code: string }).code], [400, "INVALID_VALUE"]);

      const route = await call(app, "GET", "/api/nothing-here");
      assert.deepEqual([route.status, route.body.code], [404, "NOT_FOUND"]);
      assert.deepEqual((await call(app, "GET", "/api/runs/no-such-run")).status, 404);
    });

    test("a body over the limit is 413", async () => {
      const small = await createServerApp(colony, { dashboardDir: false, maxBodyBytes: 1024 });
      const big = await call(small, "PUT", "/api/boards/big/entries/k", { value: "x".repeat(2048) });
      assert.deepEqual([big.status, big.body.code], [413, "BODY_TOO_LARGE"]);
      assert.equal((await call(small, "PUT", "/api/boards/big/entries/k", { value: "x" })).status, 201);
    });

    test("tasks: submit with an idempotency key (header or body), list, one with its events, cancel", async () => {
      const board = `api-${kind}`;
      const first = await call(app, "POST", `/api/tasks?board=${board}`, { kind: "research", input: { q: "ants" } }, { "idempotency-key": "ants-1" });
      assert.equal(first.status, 201);
      assert.equal(first.headers.get("location"), `/api/tasks/${String(first.body.id)}?board=${board}`);
      const again = await call(app, "POST", `/api/tasks?board=${board}`, { kind: "research", input: { q: "ants" }, idempotencyKey: "ants-1" });
      assert.deepEqual([again.status, again.body.id], [201, first.body.id]);
      const clash = await call(app, "POST", `/api/tasks?board=${board}`, { kind: "research", idempotencyKey: "a" }, { "idempotency-key": "b" });
      assert.deepEqual([clash.status, clash.body.field], [400, "idempotencyKey"]);
      const invalid = await call(app, "POST", `/api/tasks?board=${board}`, { kind: "research", dependsOn: ["nowhere"] });
      assert.deepEqual([invalid.status, invalid.body.code], [400, "INVALID_TASK"]);

      await call(app, "POST", `/api/tasks?board=${board}`, { kind: "write", capability: "pen", priority: 2 });
      const all = await call(app, "GET", `/api/tasks?board=${board}`);
      assert.deepEqual([all.body.board, all.body.total], [board, 2]);
      const byCapability = await call(app, "GET", `/api/tasks?board=${board}&capability=pen`);
      assert.deepEqual((byCapability.body.tasks as { kind: string }[]).map((t) => t.kind), ["write"]);
      const newest = await call(app, "GET", `/api/tasks?board=${board}&limit=1`);
      assert.deepEqual([newest.body.total, (newest.body.tasks as { kind: string }[]).map((t) => t.kind)], [2, ["write"]]);
      assert.equal((await call(app, "GET", `/api/tasks?board=${board}&status=nonsense`)).status, 400);

      const cancelled = await call(app, "POST", `/api/tasks/${String(first.body.id)}/cancel?board=${board}`);
      assert.deepEqual([cancelled.status, cancelled.body.status], [200, "cancelled"]);
      const one = await call(app, "GET", `/api/tasks/${String(first.body.id)}?board=${board}`);
      assert.equal((one.body.task as { status: string }).status, "cancelled");
      assert.deepEqual((one.body.events as { type: string }[]).map((e) => e.type), ["submitted", "cancelled"]);
      assert.equal((await call(app, "GET", `/api/tasks/nope?board=${board}`)).status, 404);
      assert.equal((await call(app, "POST", `/api/tasks/nope/cancel?board=${board}`)).status, 404);
    });

    test("a task list is never older than the board: a claim, and a lease that runs out, show at once", async () => {
      const board = `fresh-${kind}`;
      const tasks = await colony.tasks(board);
      await tasks.submitAll([{ kind: "long", input: 1 }, { kind: "short", input: 2 }]);
      const statuses = async () => ((await call(app, "GET", `/api/tasks?board=${board}`)).body.tasks as { status: string }[]).map((t) => t.status);
      assert.deepEqual(await statuses(), ["pending", "pending"]);
      assert.deepEqual(await statuses(), ["pending", "pending"]);
      assert.ok(await tasks.claim({ worker: "w", capabilities: ["long"], leaseMs: 600_000 }));
      assert.deepEqual(await statuses(), ["claimed", "pending"]);
      assert.ok(await tasks.claim({ worker: "w", capabilities: ["short"], leaseMs: 1 }));
      // The lease is over by the time the list is read again or soon after; the read that finds it so reaps it.
      await waitFor(async () => ((await statuses())[1] === "pending" ? true : undefined), 20_000, "the expired lease reaped");
      const now = await tasks.list();
      assert.deepEqual(now.map((t) => [t.status, t.attempts]), [["claimed", 0], ["pending", 1]]);
    });

    test("retry submits a dead or failed task again as a new task, once per key (by default once); anything else is 409", async () => {
      const board = `retry-${kind}`;
      const tasks = await colony.tasks(board);
      const submitted = await call(app, "POST", `/api/tasks?board=${board}`, { kind: "flaky", input: { n: 1 }, priority: 5, maxAttempts: 2 });
      const notYet = await call(app, "POST", `/api/tasks/${String(submitted.body.id)}/retry?board=${board}`);
      assert.deepEqual([notYet.status, notYet.body.code], [409, "NOT_RETRYABLE"]);
      const claimed = await tasks.claim({ worker: "w", capabilities: ["flaky"], leaseMs: 60_000 });
      assert.ok(claimed);
      await tasks.fail(claimed.id, "boom", { generation: claimed.generation, retryable: false });

      const retried = await call(app, "POST", `/api/tasks/${claimed.id}/retry?board=${board}`, undefined, { "idempotency-key": "retry-once" });
      assert.equal(retried.status, 201);
      assert.notEqual(retried.body.id, claimed.id);
      assert.deepEqual([retried.body.status, retried.body.kind, retried.body.input, retried.body.priority, retried.body.maxAttempts], ["pending", "flaky", { n: 1 }, 5, 2]);
      const twice = await call(app, "POST", `/api/tasks/${claimed.id}/retry?board=${board}`, undefined, { "idempotency-key": "retry-once" });
      assert.equal(twice.body.id, retried.body.id);
      // Without a key, a task is retried once however often it is asked; a new key retries it again.
      const [a, b] = await Promise.all([1, 2].map(() => call(app, "POST", `/api/tasks/${claimed.id}/retry?board=${board}`)));
      assert.equal(a!.body.id, b!.body.id);
      assert.notEqual(a!.body.id, retried.body.id);
      const again = await call(app, "POST", `/api/tasks/${claimed.id}/retry?board=${board}`, undefined, { "idempotency-key": "retry-twice" });
      assert.ok(![retried.body.id, a!.body.id].includes(again.body.id));
      assert.equal((await tasks.list({ kind: "flaky" })).length, 4);
      assert.equal((await call(app, "POST", `/api/tasks/nope/retry?board=${board}`)).status, 404);
    });

    test("agents: the tree with own and total usage and each record; terminate cascades", async () => {
      const root = await colony.spawn(spender, { depth: 1, tokens: 100 }, { name: "root" });
      const rootEnded = root.result.catch((error: unknown) => error);
      for await (const event of root.events) if (event.type === "emit" && event.name === "ready") break;
      // Usage reaches the registry as it is reported; the tree is read once it has.
      const tree = await waitFor(async () => {
        const { body } = await call(app, "GET", `/api/agents/${root.id}/tree`);
        const node = body.tree as { total: { tokens: number }; children: unknown[] };
        return node.total.tokens === 150 && node.children.length === 1 ? node : undefined;
      }, 20_000, "the tree's usage");
      const typed = tree as unknown as { id: string; own: { tokens: number }; record: { state: string; isolation: string; name: string }; children: { own: { tokens: number }; total: { tokens: number }; record: { parentId: string } }[] };
      assert.equal(typed.id, root.id);
      assert.equal(typed.own.tokens, 100);
      assert.deepEqual([typed.record.state, typed.record.isolation, typed.record.name], ["running", "inline", "root"]);
      assert.deepEqual([typed.children[0]!.own.tokens, typed.children[0]!.total.tokens, typed.children[0]!.record.parentId], [50, 50, root.id]);

      const listed = await call(app, "GET", `/api/agents?parentId=${root.id}`);
      assert.equal((listed.body.agents as unknown[]).length, 1);
      const terminated = await call(app, "POST", `/api/agents/${root.id}/terminate`, { cascade: true });
      assert.deepEqual([terminated.status, terminated.body], [202, { id: root.id, cascade: true }]);
      await rootEnded;
      await waitFor(async () => {
        const { body } = await call(app, "GET", "/api/agents?state=terminated");
        return (body.agents as { id: string; parentId?: string }[]).filter((a) => a.id === root.id || a.parentId === root.id).length === 2;
      }, 20_000, "both agents terminated");
      assert.equal((await call(app, "POST", "/api/agents/no-such-agent/terminate")).status, 404);
      assert.equal((await call(app, "GET", "/api/agents/no-such-agent/tree")).status, 404);
      assert.equal((await call(app, "GET", "/api/agents?state=bored")).status, 400);
    });

    test("runs: start a definition, approve its agent's request, see it end; unknown definitions are 404", async () => {
      const definitions = await call(app, "GET", "/api/definitions");
      assert.deepEqual((definitions.body.definitions as { name: string }[]).map((d) => d.name), ["approval", "stoppable"]);
      const unknown = await call(app, "POST", "/api/runs", { definition: "nope" });
      assert.deepEqual([unknown.status, unknown.body.field], [404, "definition"]);

      const started = await call(app, "POST", "/api/runs", { definition: "approval" });
      assert.equal(started.status, 202);
      const runId = String(started.body.runId);
      assert.deepEqual([started.body.board, started.body.status], ["approval-run", "running"]);
      const pending = await waitFor(async () => {
        const { body } = await call(app, "GET", "/api/approvals?status=pending");
        return (body.approvals as { id: string; rootId: string }[]).find((a) => a.rootId === runId);
      }, 20_000, "the run's approval request");
      const approved = await call(app, "POST", `/api/approvals/${pending.id}/approve`, { reason: "looks fine" });
      assert.deepEqual([approved.status, approved.body.status, approved.body.reason], [200, "approved", "looks fine"]);
      const twice = await call(app, "POST", `/api/approvals/${pending.id}/deny`);
      assert.deepEqual([twice.status, twice.body.code], [409, "APPROVAL_DECIDED"]);
      assert.equal((await call(app, "POST", "/api/approvals/nope/approve")).status, 404);

      const finished = await waitFor(async () => {
        const { body } = await call(app, "GET", `/api/runs/${runId}`);
        return (body.run as { status: string }).status === "finished" ? body : undefined;
      }, 20_000, "the run's end");
      assert.equal((finished.run as { stopReason: string }).stopReason, "goal");
      assert.equal((finished.steps as unknown[]).length, 1);
      const entries = await call(app, "GET", "/api/boards/approval-run/entries");
      assert.deepEqual((entries.body.entries as { key: string; value: unknown }[]).map((e) => [e.key, e.value]), [["decision", { approved: true, reason: "looks fine" }]]);
      const runs = await call(app, "GET", "/api/runs?limit=5");
      assert.ok((runs.body.runs as { runId: string }[]).some((r) => r.runId === runId));
      const stopEnded = await call(app, "POST", `/api/runs/${runId}/stop`);
      assert.deepEqual([stopEnded.status, stopEnded.body.code], [409, "NOT_STOPPABLE"]);
    });

    test("runs: stop ends a run this server started, recorded as aborted", async () => {
      const started = await call(app, "POST", "/api/runs", { definition: "stoppable" });
      const runId = String(started.body.runId);
      await waitFor(async () => ((await call(app, "GET", "/api/approvals?status=pending")).body.approvals as { rootId: string }[]).some((a) => a.rootId === runId), 20_000, "the run waiting");
      const stopping = await call(app, "POST", `/api/runs/${runId}/stop`);
      assert.deepEqual([stopping.status, stopping.body], [202, { runId, stopping: true }]);
      const run = await waitFor(async () => {
        const { body } = await call(app, "GET", `/api/runs/${runId}`);
        return (body.run as { status: string }).status === "finished" ? (body.run as { stopReason: string }) : undefined;
      }, 20_000, "the run's end");
      assert.equal(run.stopReason, "aborted");
      const abandoned = await call(app, "GET", "/api/approvals?status=abandoned");
      assert.ok((abandoned.body.approvals as { rootId: string }[]).some((a) => a.rootId === runId));
      assert.equal((await call(app, "POST", "/api/runs/no-such-run/stop")).status, 404);
    });

    test("nodes and status show a worker; drain asks it over the bus", async () => {
      const board = `swarm-${kind}`;
      const worker = await colony.worker({ tasks: board, agents: { echo }, capabilities: ["echo"], id: `w-${kind}`, concurrency: 2 });
      await call(app, "POST", `/api/tasks?board=${board}`, { kind: "queued", input: 1 });
      const nodes = await call(app, "GET", `/api/nodes?board=${board}`);
      const node = (nodes.body.nodes as { id: string; status: string; capabilities: string[]; concurrency: number; heartbeatAgeMs: number; coordinator: boolean }[])[0]!;
      assert.deepEqual([node.id, node.status, node.capabilities, node.concurrency], [`w-${kind}`, "online", ["echo"], 2]);
      assert.ok(node.heartbeatAgeMs >= 0);
      const status = await call(app, "GET", `/api/status?board=${board}`);
      assert.deepEqual(status.body.backend, colony.backend);
      assert.deepEqual([status.body.tasks, (status.body.workers as { online: number }).online], [board, 1]);
      assert.deepEqual((status.body.queue as Record<string, unknown>).queued, { pending: 1, blocked: 0, running: 0 });

      const drained = await call(app, "POST", `/api/nodes/w-${kind}/drain`);
      assert.deepEqual([drained.status, drained.body.id, drained.body.status], [202, `w-${kind}`, "draining"]);
      await worker.closed;
      const after = await call(app, "GET", `/api/nodes?board=${board}`);
      assert.equal((after.body.nodes as { status: string }[])[0]!.status, "stopped");
      const nobody = await call(app, "POST", "/api/nodes/nobody/drain");
      assert.deepEqual([nobody.status, nobody.body.code], [404, "BUS_NO_RESPONDERS"]);
    });

    test("the OpenAPI document is JSON with every route", async () => {
      const response = await app.request("/api/openapi.json");
      assert.equal(response.status, 200);
      const doc = (await response.json()) as { openapi: string; paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } };
      assert.match(doc.openapi, /^3\./);
      const routes = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
      for (const route of [
        "GET /api/boards",
        "GET /api/boards/{name}/entries",
        "GET /api/boards/{name}/history",
        "PUT /api/boards/{name}/entries/{key}",
        "DELETE /api/boards/{name}/entries/{key}",
        "GET /api/boards/{name}/events",
        "GET /api/runs",
        "GET /api/runs/{id}",
        "POST /api/runs",
        "POST /api/runs/{id}/stop",
        "GET /api/task-boards",
        "GET /api/tasks",
        "GET /api/tasks/{id}",
        "POST /api/tasks",
        "POST /api/tasks/{id}/cancel",
        "POST /api/tasks/{id}/retry",
        "GET /api/tasks/events",
        "GET /api/agents",
        "GET /api/agents/{id}/tree",
        "POST /api/agents/{id}/terminate",
        "GET /api/agents/events",
        "GET /api/approvals",
        "POST /api/approvals/{id}/approve",
        "POST /api/approvals/{id}/deny",
        "GET /api/nodes",
        "GET /api/nodes/events",
        "GET /api/status",
        "POST /api/nodes/{id}/drain",
      ]) {
        assert.ok(routes.includes(route), `${route} is documented`);
      }
      for (const schema of ["Problem", "Entry", "LogRecord", "Task", "TaskEvent", "RunInfo", "AgentRecord", "AgentTreeNode", "ApprovalRecord", "Node", "Status"]) {
        assert.ok(schema in doc.components.schemas, `${schema} is a component`);
      }
    });
  });
}

describe("the dashboard at /", () => {
  const dir = tempDir("colony-dashboard-");
  const colony = createColony({ backend: memoryBackend() });
  after(async () => {
    await colony.close();
    dir.dispose();
  });

  test("before it is built, a page says how to build it; once built, its files are served", async () => {
    const built = join(dir.path, "dashboard");
    const app = await createServerApp(colony, { dashboardDir: built });
    const before = await app.request("/");
    assert.equal(before.status, 200);
    assert.match(await before.text(), /npm run build:dashboard/);

    mkdirSync(join(built, "assets"), { recursive: true });
    writeFileSync(join(built, "index.html"), "<!doctype html><title>dash</title>");
    writeFileSync(join(built, "assets", "app.js"), "console.log(1)");
    assert.equal(await (await app.request("/")).text(), "<!doctype html><title>dash</title>");
    const script = await app.request("/assets/app.js");
    assert.deepEqual([script.status, script.headers.get("content-type")?.startsWith("text/javascript")], [200, true]);
    assert.equal(await (await app.request("/runs/some-run")).text(), "<!doctype html><title>dash</title>");
    const api = await app.request("/api/not-a-route");
    assert.equal(api.status, 404);
    assert.equal(api.headers.get("content-type"), "application/problem+json");
  });
});
