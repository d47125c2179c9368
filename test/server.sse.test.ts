/**
 * The live streams: a client that drops the connection mid-stream and reconnects with
 * Last-Event-ID gets exactly the events after the last it read, in order, none lost or repeated;
 * a position the log does not hold is told with a `horizon` event; the source's watch ends when the
 * client goes; and the registry streams (agents, nodes) send what changed.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { createColony, createServerApp, defineSubAgent, memoryBackend, type Board, type Colony, type LogRecord, type WatchOptions } from "../src/index.ts";
import { waitFor } from "./fixtures/helpers.ts";
import { EventReader, call, type SseEvent } from "./fixtures/server.ts";

const seqs = (events: SseEvent[]) => events.map((e) => Number(e.id));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("live streams", () => {
  const colony = createColony({ backend: memoryBackend(), retention: { boards: { trimmed: { maxEvents: 3 } } } });
  /** Board watches open now, through the app: to see that a client going ends its watch. */
  const watching = new Set<AsyncGenerator<LogRecord>>();
  const spied: Colony = {
    ...colony,
    async board(name: string): Promise<Board> {
      const board = await colony.board(name);
      return new Proxy(board, {
        get(target, property) {
          if (property !== "watch") {
            // Bound to the board itself, whose private fields a proxy does not have.
            const value = Reflect.get(target, property, target) as unknown;
            return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
          }
          return async function* (options?: WatchOptions) {
            const records = target.watch(options);
            watching.add(records);
            try {
              yield* records;
            } finally {
              watching.delete(records);
            }
          };
        },
      });
    },
  };
  const appOf = (colonyOf: Colony) => createServerApp(colonyOf, { dashboardDir: false, heartbeatMs: 10, pollMs: 10 });
  after(() => colony.close());

  test("the streams of one board share one watch, each from its own position, none missing or repeating a record", async () => {
    const app = await appOf(spied);
    const board = await colony.board("shared");
    for (let i = 1; i <= 6; i++) await board.write(`k${i}`, i, { author: "t" });
    const readers = await Promise.all(["0", "4", "6"].map(async (after) => new EventReader(await app.request(`/api/boards/shared/events?after=${after}`))));
    for (const reader of readers) assert.equal((await reader.next()).event, "ready");
    const early = [await readers[0]!.take(6), await readers[1]!.take(2)];
    assert.equal(watching.size, 1, "one watch for three streams");
    for (let i = 7; i <= 12; i++) await board.write(`k${i}`, i, { author: "t" });
    assert.deepEqual(seqs([...early[0]!, ...(await readers[0]!.take(6))]), range(1, 12));
    assert.deepEqual(seqs([...early[1]!, ...(await readers[1]!.take(6))]), range(5, 12));
    assert.deepEqual(seqs(await readers[2]!.take(6)), range(7, 12));
    for (const reader of readers) await reader.close();
    await waitFor(() => watching.size === 0, 10_000, "the shared watch to end with its last client");
  });

  test("a board stream resumes from Last-Event-ID with exactly the records after it", async () => {
    const app = await appOf(spied);
    const board = await colony.board("resume");
    for (let i = 1; i <= 10; i++) await board.write(`k${i}`, i, { author: "t" });

    const first = new EventReader(await app.request("/api/boards/resume/events?after=0"));
    const [ready, ...records] = await first.take(5);
    assert.deepEqual([ready!.event, ready!.data], ["ready", { board: "resume", after: 0 }]);
    assert.deepEqual(seqs(records), [1, 2, 3, 4]);
    assert.deepEqual((records[0]!.data as LogRecord).value, 1);
    await first.close();
    await waitFor(() => watching.size === 0, 10_000, "the watch to end with its client");

    // Last-Event-ID wins over ?after, as a browser's reconnect sends both.
    const second = new EventReader(await app.request("/api/boards/resume/events?after=0", { headers: { "last-event-id": "4" } }));
    assert.deepEqual((await second.next()).data, { board: "resume", after: 4 });
    const rest = await second.take(6);
    assert.deepEqual(seqs(rest), range(5, 10));
    assert.ok(rest.every((e) => e.event === "record"));
    await board.write("live", "new", { author: "t" });
    const live = await second.next();
    assert.deepEqual([live.id, (live.data as LogRecord).key], ["11", "live"]);
    assert.ok(second.comments >= 0);
    await second.close();
    await waitFor(() => watching.size === 0, 10_000, "the watch to end with its client");
  });

  test("heartbeat comments keep a quiet stream open", async () => {
    const app = await appOf(colony);
    const reader = new EventReader(await app.request("/api/boards/quiet/events"));
    assert.equal((await reader.next()).event, "ready");
    const marker = (async () => {
      await waitFor(() => reader.comments >= 2, 10_000, "two heartbeats");
      await (await colony.board("quiet")).write("k", 1, { author: "t" });
    })();
    assert.equal((await reader.next()).event, "record");
    await marker;
    await reader.close();
  });

  test("a position past the board's log is a horizon: the stream goes on from where the log is", async () => {
    const app = await appOf(colony);
    const board = await colony.board("short");
    await board.write("a", 1, { author: "t" });
    const reader = new EventReader(await app.request("/api/boards/short/events", { headers: { "last-event-id": "50" } }));
    const [ready, gone] = await reader.take(2);
    assert.deepEqual(ready!.data, { board: "short", after: 50 });
    assert.equal(gone!.event, "horizon");
    assert.deepEqual([(gone!.data as { requested: number }).requested, (gone!.data as { from: number }).from], [50, 1]);
    await board.write("b", 2, { author: "t" });
    assert.equal((await reader.next()).id, "2");
    await reader.close();
  });

  test("a task stream resumes from Last-Event-ID; events under retention are a horizon", async () => {
    const app = await appOf(colony);
    const tasks = await colony.tasks("resumed");
    for (let i = 0; i < 6; i++) await tasks.submit({ kind: "k", input: i });
    const first = new EventReader(await app.request("/api/tasks/events?board=resumed&after=0"));
    const [, ...events] = await first.take(4);
    assert.deepEqual(seqs(events), [1, 2, 3]);
    await first.close();
    const second = new EventReader(await app.request("/api/tasks/events?board=resumed", { headers: { "last-event-id": "3" } }));
    const [ready, ...rest] = await second.take(4);
    assert.deepEqual(ready!.data, { board: "resumed", after: 3 });
    assert.deepEqual(seqs(rest), [4, 5, 6]);
    assert.deepEqual((rest[0]!.data as { type: string; task: { input: number } }).task.input, 3);
    await tasks.submit({ kind: "k", input: 6 });
    const live = await second.next();
    assert.deepEqual([live.event, live.id, (live.data as { type: string }).type], ["task", "7", "submitted"]);
    await second.close();

    const trimmed = await colony.tasks("trimmed");
    for (let i = 0; i < 8; i++) await trimmed.submit({ kind: "k", input: i });
    await trimmed.sweep(); // keeps the newest 3 of 8 events
    const behind = new EventReader(await app.request("/api/tasks/events?board=trimmed", { headers: { "last-event-id": "1" } }));
    const [ready2, horizon, ...kept] = await behind.take(5);
    assert.deepEqual(ready2!.data, { board: "trimmed", after: 1 });
    assert.equal(horizon!.event, "horizon");
    assert.deepEqual([(horizon!.data as { requested: number }).requested, (horizon!.data as { from: number }).from], [1, 5]);
    assert.deepEqual(seqs(kept), [6, 7, 8]);
    await behind.close();
  });

  test("a bad Last-Event-ID is a 400 problem before any streaming", async () => {
    const app = await appOf(colony);
    const response = await call(app, "GET", "/api/boards/x/events", undefined, { "last-event-id": "seven" });
    assert.deepEqual([response.status, response.body.field], [400, "last-event-id"]);
  });

  test("the agents stream sends the registry, then each agent that changes", async () => {
    const app = await appOf(colony);
    const reader = new EventReader(await app.request("/api/agents/events"));
    const snapshot = await reader.next();
    assert.equal(snapshot.event, "agents");
    const waiter = defineSubAgent<void, string>({
      name: "waiter",
      run: (ctx) => new Promise((resolve) => ctx.signal.addEventListener("abort", () => resolve("stopped"), { once: true })),
    });
    const handle = await colony.spawn(waiter, undefined, { name: "streamed" });
    const states: string[] = [];
    for (let event = await reader.next(); ; event = await reader.next()) {
      const agent = event.data as { id: string; state: string };
      if (event.event === "agent" && agent.id === handle.id) states.push(agent.state);
      if (states.at(-1) === "running") break;
    }
    await handle.terminate();
    for (let event = await reader.next(); ; event = await reader.next()) {
      const agent = event.data as { id: string; state: string };
      if (event.event === "agent" && agent.id === handle.id && agent.state === "terminated") break;
    }
    await reader.close();
  });

  test("the nodes stream sends the nodes, then again when one changes", async () => {
    const app = await appOf(colony);
    const reader = new EventReader(await app.request("/api/nodes/events?board=noded"));
    assert.deepEqual((await reader.next()).data, { board: "noded", nodes: [] });
    const echo = defineSubAgent<unknown, unknown>({ name: "echo", run: (ctx) => ctx.input });
    const worker = await colony.worker({ tasks: "noded", agents: { echo }, capabilities: ["echo"], id: "streamed-worker" });
    const seen = await reader.next();
    assert.equal(seen.event, "nodes");
    assert.deepEqual((seen.data as { nodes: { id: string; status: string }[] }).nodes.map((n) => [n.id, n.status]), [["streamed-worker", "online"]]);
    await worker.stop();
    for (let event = await reader.next(); ; event = await reader.next()) {
      if ((event.data as { nodes: { status: string }[] }).nodes[0]?.status === "stopped") break;
    }
    await reader.close();
  });

  test("a server closing ends its streams", async () => {
    const closing = new AbortController();
    const app = await createServerApp(colony, { dashboardDir: false, signal: closing.signal });
    const reader = new EventReader(await app.request("/api/tasks/events?board=closing"));
    assert.equal((await reader.next()).event, "ready");
    closing.abort();
    await assert.rejects(reader.next(), /the stream ended/);
  });
});
