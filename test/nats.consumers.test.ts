/**
 * The consumers Colony leaves on a NATS server: one shared change feed per stream and connection,
 * however many waits and watchers come and go, and none once they have all gone.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { natsNames } from "../src/backends/nats/names.ts";
import { createColony, natsBackend, type Colony, type LogRecord, type TaskEvent } from "../src/index.ts";
import { startNatsServer } from "../src/testing/nats-server.ts";
import { LINGER_MS } from "../src/core/task-events.ts";
import { waitFor } from "./fixtures/helpers.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

const nats = natsServerPerFile();
let nc: NatsConnection | undefined;
let manager: JetStreamManager;
after(async () => {
  await nc?.close();
});
/** A connection of the test's own, to look at the server. */
async function inspect(): Promise<JetStreamManager> {
  if (!nc) {
    nc = await connect({ servers: nats.server.url });
    manager = await jetstreamManager(nc);
  }
  return manager;
}

async function consumersOn(manager: JetStreamManager, stream: string): Promise<number> {
  let count = 0;
  for await (const _ of manager.consumers.list(stream)) count++;
  return count;
}

/** The count once deletions on their way have landed: what stays on the server. */
async function settled(manager: JetStreamManager, stream: string, expected: number, ms = 5000): Promise<number> {
  await waitFor(async () => (await consumersOn(manager, stream)) <= expected, ms, `at most ${expected} consumer(s) on ${stream}`).catch(() => {});
  return consumersOn(manager, stream);
}

/** Long enough for a task board's reader to stop once its last watcher left (it lingers LINGER_MS for the next). */
const LINGERED_MS = LINGER_MS + 10_000;

function pair(prefix = `c${randomUUID().slice(0, 8)}`): { prefix: string; waiter: Colony; worker: Colony } {
  const waiter = createColony({ backend: nats.backend(prefix) });
  const worker = createColony({ backend: nats.backend(prefix) });
  return { prefix, waiter, worker };
}

test("1,000 waits on tasks completed by another client leave no more consumers than 1, and none after close", { timeout: 120_000 }, async (t) => {
  const { prefix, waiter, worker } = pair();
  const { stream } = natsNames(prefix).tasks("q");
  const jsm = await inspect();
  try {
    const tasks = await waiter.tasks("q");
    const remote = await worker.tasks("q");
    let blocked = 0;
    let duringWait = 0;
    const counts: number[] = [];
    for (let i = 1; i <= 1000; i++) {
      const task = await tasks.submit({ kind: "k", input: i });
      const claimed = (await remote.claim({ worker: "w", capabilities: ["k"], leaseMs: 60_000 }))!;
      assert.equal(claimed.id, task.id);
      let settledWait = false;
      const waited = tasks.wait(task.id).finally(() => (settledWait = true));
      // Every tenth wait is made to block until the other client completes the task.
      if (i % 10 === 1) {
        await sleep(20);
        assert.equal(settledWait, false, "the wait returned before the task was completed");
        // Its feed's consumer is made as the wait starts listening, which a loaded machine may take a while to get to.
        if (i === 1) duringWait = await waitFor(async () => (await consumersOn(jsm, stream)) || undefined, 10_000, "the blocked wait's consumer").catch(() => 0);
        blocked++;
      }
      await remote.complete(claimed.id, i, { generation: claimed.generation });
      assert.equal((await waited).status, "succeeded");
      if (i === 1 || i === 1000) counts.push(await settled(jsm, stream, 1));
    }
    const idle = await settled(jsm, stream, 0, LINGERED_MS);
    t.diagnostic(`consumers on the task stream: ${duringWait} during the first wait, ${counts[0]} after 1 wait, ${counts[1]} after 1,000 (${blocked} of them blocked), ${idle} once idle`);
    assert.equal(duringWait, 1, "a blocked wait listens through one consumer");
    assert.ok(counts[1]! <= counts[0]! && counts[0]! <= 1, `after 1,000 waits ${counts[1]} consumers, after 1 wait ${counts[0]}`);
    assert.equal(idle, 0, "consumers once nobody has waited for a while");

    // A wait still open when the colony closes leaves nothing behind either.
    const last = await tasks.submit({ kind: "k" });
    const pending = tasks.wait(last.id).catch(() => undefined);
    await waitFor(async () => (await consumersOn(jsm, stream)) === 1, 5000, "the open wait's consumer");
    await waiter.close();
    await pending;
    assert.equal(await consumersOn(jsm, stream), 0, "consumers left after the colony closed");
  } finally {
    await waiter.close();
    await worker.close();
  }
});

test("100 concurrent watchers (50 on a task board, 50 on a board) share one consumer per stream, and each sees every event", { timeout: 60_000 }, async () => {
  const { prefix, waiter, worker } = pair();
  const names = natsNames(prefix);
  const taskStream = names.tasks("q").stream;
  const boardStream = `KV_${names.board("b").bucket}`;
  const stop = new AbortController();
  const jsm = await inspect();
  try {
    const [tasks, board] = [await waiter.tasks("q"), await waiter.board("b")];
    const [remoteTasks, remoteBoard] = [await worker.tasks("q"), await worker.board("b")];
    const taskSeen = Array.from({ length: 50 }, () => [] as TaskEvent[]);
    const boardSeen = Array.from({ length: 50 }, () => [] as LogRecord[]);
    const since = await tasks.head();
    const boardSince = await board.refresh();
    const watching = [
      ...taskSeen.map(async (seen) => {
        for await (const event of tasks.watch({ since, signal: stop.signal })) seen.push(event);
      }),
      ...boardSeen.map(async (seen) => {
        for await (const record of board.watch({ since: boardSince, signal: stop.signal })) seen.push(record);
      }),
    ].map((watch) => watch.catch((error: unknown) => (stop.signal.aborted ? undefined : Promise.reject(error))));

    await waitFor(async () => (await consumersOn(jsm, taskStream)) >= 1 && (await consumersOn(jsm, boardStream)) >= 1, 5000, "the feeds to start");
    for (let i = 0; i < 20; i++) {
      await remoteTasks.submit({ kind: "k", input: i });
      await remoteBoard.write(`key${i % 5}`, i, { author: "writer" });
    }
    await waitFor(() => taskSeen.every((seen) => seen.length === 20) && boardSeen.every((seen) => seen.length === 20), 20_000, "every watcher to see every event");
    assert.equal(await consumersOn(jsm, taskStream), 1, "consumers on the task stream");
    assert.equal(await consumersOn(jsm, boardStream), 1, "consumers on the board's stream");
    for (const seen of taskSeen) assert.deepEqual(seen.map((e) => e.seq), taskSeen[0]!.map((e) => e.seq));
    for (const seen of boardSeen) assert.deepEqual(seen.map((r) => r.seq), boardSeen[0]!.map((r) => r.seq));

    stop.abort();
    await Promise.all(watching);
    assert.equal(await settled(jsm, taskStream, 0, LINGERED_MS), 0, "task stream consumers after the watchers left");
    assert.equal(await settled(jsm, boardStream, 0), 0, "board stream consumers after the watchers left");
  } finally {
    stop.abort();
    await waiter.close();
    await worker.close();
  }
});

test("a watcher added while the shared feed runs hears the next change, and the feed outlives a server restart", { timeout: 60_000 }, async () => {
  let server = await startNatsServer();
  const { port, storeDir } = server;
  const prefix = `r${randomUUID().slice(0, 8)}`;
  const open = () => createColony({ backend: natsBackend({ servers: server.url, prefix }) });
  const [waiter, worker] = [open(), open()];
  try {
    const tasks = await waiter.tasks("q");
    const remote = await worker.tasks("q");
    const first = await tasks.submit({ kind: "k" });
    const second = await tasks.submit({ kind: "k" });
    const firstDone = tasks.wait(first.id);
    await sleep(200);
    // Joins the feed the first wait started.
    const secondDone = tasks.wait(second.id);
    await sleep(50);
    const claimed = await remote.claimMany({ worker: "w", capabilities: ["k"], leaseMs: 60_000, max: 2 });
    const byId = new Map(claimed.map((task) => [task.id, task]));
    await remote.complete(second.id, "second", { generation: byId.get(second.id)!.generation });
    assert.equal((await secondDone).result, "second");

    // The feed's consumer dies with the server; the first wait must still hear its task complete,
    // long before its lease (a minute) would wake it.
    await server.stop({ keepStore: true });
    await sleep(500);
    server = await startNatsServer({ port, storeDir });
    const restarted = Date.now();
    await remote.complete(first.id, "first", { generation: byId.get(first.id)!.generation });
    assert.equal((await firstDone).result, "first");
    assert.ok(Date.now() - restarted < 20_000, `the wait heard the completion ${Date.now() - restarted} ms after the restart`);
  } finally {
    await waiter.close();
    await worker.close();
    await server.stop();
  }
});
