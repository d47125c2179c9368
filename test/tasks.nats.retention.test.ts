/**
 * A NATS task board's log stays bounded: clients write snapshots of the folded state (bounded by
 * retention) and purge the log behind them, and a client opening the board, or one that fell
 * behind past a purge, starts from the newest snapshot. On a private nats-server.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { natsNames } from "../src/backends/nats/names.ts";
import { createColony, natsBackend, type Colony, type TaskBoard } from "../src/index.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

const nats = natsServerPerFile();
const T = { timeout: 120_000 };
const SMALL = { maxFinished: 40, maxEvents: 80 };

const colonyOn = (prefix: string) => createColony({ backend: natsBackend({ servers: nats.server.url, prefix }), retention: SMALL });

/** Runs `n` tasks through submit, claim and complete, one at a time (three log messages each). */
async function runThrough(tasks: TaskBoard, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await tasks.submit({ kind: "k", input: i });
    const claimed = (await tasks.claim({ worker: "w", capabilities: ["k"], leaseMs: 60_000 }))!;
    await tasks.complete(claimed.id, i * i, { generation: claimed.generation });
  }
}

async function streamState(stream: string): Promise<{ messages: number; first: number; last: number }> {
  const nc = await connect({ servers: nats.server.url });
  try {
    const { state } = await (await jetstreamManager(nc)).streams.info(stream);
    return { messages: state.messages, first: state.first_seq, last: state.last_seq };
  } finally {
    await nc.close();
  }
}

async function closing<T>(colonies: Colony[], work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } finally {
    for (const colony of colonies) await colony.close();
  }
}

test("a long-lived board's log is purged behind snapshots; a fresh client opens from the newest and sees the same board", T, async () => {
  const prefix = `r${randomUUID().slice(0, 8)}`;
  const { stream, snapshots } = natsNames(prefix).tasks("default");
  const writer = colonyOn(prefix);
  const fresh = colonyOn(prefix);
  await closing([writer, fresh], async () => {
    const tasks = await writer.tasks();
    await runThrough(tasks, 1500);
    await tasks.sweep();
    const log = await streamState(stream);
    // 4,500 or so messages were written; what is kept is about two snapshot intervals' worth.
    assert.ok(log.last >= 4500, `the log saw ${log.last} messages`);
    assert.ok(log.messages <= 2500, `the log keeps ${log.messages} messages after purges, not all ${log.last}`);
    assert.ok(log.first > 1, "the log was purged from the front");
    const snaps = await streamState(snapshots.stream);
    assert.ok(snaps.messages >= 2 && snaps.messages <= 10, `the snapshot stream keeps the newest snapshot only, ${snaps.messages} messages`);

    const opened = await fresh.tasks();
    assert.deepEqual(await opened.list(), await tasks.list());
    assert.equal(await opened.head(), await tasks.head());
    assert.equal((await opened.list()).length, SMALL.maxFinished);
    // The events it keeps are there from its horizon on, and it goes on with the board.
    const head = await opened.head();
    const events = [];
    for await (const event of opened.watch({ since: head - 10 })) {
      events.push(event);
      if (event.seq === head) break;
    }
    assert.deepEqual(events.map((e) => e.seq), Array.from({ length: 10 }, (_, i) => head - 9 + i));
    const next = await opened.submit({ kind: "k", input: "after" });
    assert.equal((await tasks.get(next.id))?.input, "after");
  });
});

test("a client that fell behind past a purge starts over from the snapshot, and has what the writer has", T, async () => {
  const prefix = `r${randomUUID().slice(0, 8)}`;
  const writer = colonyOn(prefix);
  const idle = colonyOn(prefix);
  await closing([writer, idle], async () => {
    const [tasks, behind] = [await writer.tasks(), await idle.tasks()];
    const early = await behind.submit({ kind: "other", input: "early" });
    await runThrough(tasks, 1200);
    await tasks.sweep();
    const { first } = await streamState(natsNames(prefix).tasks("default").stream);
    assert.ok(first > 3, `the log was purged past where the idle client was (starts at ${first})`);
    assert.deepEqual(await behind.list(), await tasks.list());
    assert.equal((await behind.get(early.id))?.status, "pending", "an unfinished task stays whatever its age");
    const claimed = await behind.claim({ worker: "late", capabilities: ["other"], leaseMs: 60_000 });
    assert.equal(claimed?.id, early.id);
  });
});

test("a snapshot head that is not Colony's is skipped and counted; the board opens from its log", T, async () => {
  const prefix = `r${randomUUID().slice(0, 8)}`;
  const { snapshots } = natsNames(prefix).tasks("default");
  const writer = colonyOn(prefix);
  const fresh = colonyOn(prefix);
  await closing([writer, fresh], async () => {
    const tasks = await writer.tasks();
    await runThrough(tasks, 20);
    const nc = await connect({ servers: nats.server.url });
    try {
      await jetstream(nc).publish(`${snapshots.subject}.head`, JSON.stringify({ hello: "world" }));
    } finally {
      await nc.close();
    }
    const opened = await fresh.tasks();
    assert.deepEqual(await opened.list(), await tasks.list());
    const rejected = await fresh.rejected();
    assert.equal(rejected.count, 1);
    assert.match(rejected.last.join(" "), /not a snapshot head/);
  });
});

test("after a burst that retention then removes, the next snapshot holds what the board kept, not the burst", T, async () => {
  const prefix = `r${randomUUID().slice(0, 8)}`;
  const { snapshots } = natsNames(prefix).tasks("default");
  const writer = colonyOn(prefix);
  const newestHead = async () => {
    const nc = await connect({ servers: nats.server.url });
    try {
      const message = await (await jetstreamManager(nc)).streams.getMessage(snapshots.stream, { last_by_subj: `${snapshots.subject}.head` });
      return message?.json<{ seq: number; entries?: number }>();
    } finally {
      await nc.close();
    }
  };
  await closing([writer], async () => {
    const tasks = await writer.tasks();
    // 1,200 tasks in flight at once, each heartbeaten (a message each, and nothing retention may
    // remove): the snapshot written meanwhile holds all of them.
    const burst = await tasks.submitAll(Array.from({ length: 1200 }, (_, i) => ({ kind: "k", input: i })));
    const claimed = await tasks.claimMany({ worker: "w", capabilities: ["k"], leaseMs: 60_000, max: burst.length });
    for (const task of claimed) await tasks.heartbeat(task.id, { generation: task.generation });
    const during = await newestHead();
    assert.ok(during && (during.entries ?? 0) > 1000, `a snapshot of the burst: ${JSON.stringify(during)}`);
    for (const task of claimed) await tasks.complete(task.id, null, { generation: task.generation });
    // Retention keeps 40 finished tasks and 80 events; a few more tasks pass the snapshot's mark.
    await tasks.sweep();
    await runThrough(tasks, 5);
  });
  // Closing waited for the snapshot on its way. The board keeps 40 finished tasks, 80 events and
  // the last few tasks' own: about 130 entries. A snapshot may be written while retention is
  // still removing the burst, once the state is under half the last one's (less 256), so the
  // newest holds at most twice what is kept and 256 more: well under the burst's thousands.
  const after = await newestHead();
  assert.ok(after && after.entries !== undefined && after.entries <= 2 * 150 + 256, `the newest snapshot holds ${JSON.stringify(after)}`);
});
