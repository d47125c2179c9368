/**
 * Messages Colony did not write, published on a NATS board's or task board's subjects (by hand,
 * by another program): they are skipped and counted, and every client keeps working, instead of
 * one such message making every fold throw. On a private nats-server.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { natsNames } from "../src/backends/nats/names.ts";
import { createColony, natsBackend, type Colony } from "../src/index.ts";
import { cliJson } from "./fixtures/cli.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

const nats = natsServerPerFile();

/** Publishes each payload through JetStream, so that each is stored before the test goes on. */
async function publish(subject: string, ...payloads: string[]): Promise<void> {
  const nc = await connect({ servers: nats.server.url });
  try {
    const js = jetstream(nc);
    for (const payload of payloads) await js.publish(subject, payload);
  } finally {
    await nc.close();
  }
}

async function withColony<T>(prefix: string, work: (colony: Colony) => Promise<T>): Promise<T> {
  const colony = createColony({ backend: natsBackend({ servers: nats.server.url, prefix }) });
  try {
    return await work(colony);
  } finally {
    await colony.close();
  }
}

const cli = <T>(prefix: string, ...args: string[]) => cliJson<T>([...args, "--nats", nats.server.url, "--nats-prefix", prefix, "--json"], { timeoutMs: 20_000 });

const task = (id: string) => JSON.stringify({ id });

test("foreign messages on a task board's stream are skipped and counted; every client keeps working", { timeout: 60_000 }, async () => {
  const prefix = `f${randomUUID().slice(0, 8)}`;
  const { subject } = natsNames(prefix).tasks("default");
  const writer = createColony({ backend: natsBackend({ servers: nats.server.url, prefix }) });
  try {
    const tasks = await writer.tasks();
    const first = await tasks.submit({ kind: "k", input: 1 });
    await publish(
      subject,
      JSON.stringify({ hello: "world" }),
      "not json",
      // A write set whose task lacks every field but its id.
      JSON.stringify({ tasks: [["t-99", task("t-99")]], workers: [], events: [], nextId: 100 }),
      // The envelope's keys, with the wrong types inside.
      JSON.stringify({ tasks: [["t-98", 5]], workers: [[1, null]], events: [7], nextId: "x" }),
    );

    // A client that was open before them folds past them.
    const second = await tasks.submit({ kind: "k", input: 2 });
    assert.deepEqual((await tasks.list()).map((t) => t.id), [first.id, second.id]);
    assert.equal((await writer.rejected()).count, 4);

    await withColony(prefix, async (fresh) => {
      const board = await fresh.tasks();
      assert.deepEqual((await board.list()).map((t) => t.id), [first.id, second.id]);
      assert.equal((await board.get(first.id))?.input, 1);
      const claimed = (await board.claim({ worker: "w", capabilities: ["k"], leaseMs: 60_000 }))!;
      assert.equal(claimed.id, first.id);
      await board.complete(claimed.id, "done", { generation: claimed.generation });
      const third = await board.submit({ kind: "k", input: 3 });
      assert.equal(third.id, "t-3", "ids go on from the board's own, not from a foreign nextId");
      const seen: string[] = [];
      for await (const event of board.watch({ since: 0 })) {
        seen.push(`${event.seq} ${event.type} ${event.task.id}`);
        if (event.seq === (await board.head())) break;
      }
      assert.deepEqual(seen, [`1 submitted ${first.id}`, `2 submitted ${second.id}`, `3 claimed ${first.id}`, `4 succeeded ${first.id}`, "5 submitted t-3"]);
      const rejected = await fresh.rejected();
      assert.equal(rejected.count, 4);
      assert.match(rejected.last.join("\n"), /not JSON/);
      assert.match(rejected.last.join("\n"), /task "t-99"/);
    });

    const status = await cli<{ queue: Record<string, { pending: number }>; rejected?: { count: number; last: string[] } }>(prefix, "status");
    assert.equal(status.queue.k?.pending, 2);
    assert.equal(status.rejected?.count, 4);
    assert.equal(status.rejected?.last.length, 4);
  } finally {
    await writer.close();
  }
});

test("foreign messages on a board's KV subjects are skipped and counted; open, get, history, watch and writes work", { timeout: 60_000 }, async () => {
  const prefix = `f${randomUUID().slice(0, 8)}`;
  const { bucket } = natsNames(prefix).board("main");
  const token = (key: string) => Buffer.from(key, "utf8").toString("base64url");
  await withColony(prefix, async (colony) => {
    const board = await colony.board("main");
    await board.write("a", { n: 1 }, { author: "me" });
  });
  await publish(`$KV.${bucket}.somekey`, "not json");
  await publish(`$KV.${bucket}.${token("b")}`, JSON.stringify({ op: "write", key: 5, json: 7 }));
  // On a key Colony wrote: the key stays what Colony's records made it.
  await publish(`$KV.${bucket}.${token("a")}`, JSON.stringify({ op: "write", key: "a", version: 9, author: "x", at: 0, createdAt: 0, json: "{not json", tags: [] }));

  await withColony(prefix, async (colony) => {
    const board = await colony.board("main");
    assert.deepEqual([...board.view().entries()].map((e) => [e.key, e.value, e.version]), [["a", { n: 1 }, 1]]);
    assert.deepEqual((await board.get("a"))?.value, { n: 1 });
    assert.equal(await board.get("b"), undefined);
    const written = await board.write("a", { n: 2 }, { author: "me", expectedVersion: 1 });
    assert.equal(written.version, 2);
    await board.write("c", "new", { author: "me" });
    assert.deepEqual((await board.history()).map((r) => `${r.key}@${r.version}`), ["a@1", "a@2", "c@1"]);
    const watched: string[] = [];
    for await (const record of board.watch({ since: 0 })) {
      watched.push(`${record.key}@${record.version}`);
      if (record.key === "c") break;
    }
    assert.deepEqual(watched, ["a@1", "a@2", "c@1"]);
    assert.equal(await board.refresh(), board.seq);
    const rejected = await colony.rejected();
    assert.equal(rejected.count, 3);
    assert.match(rejected.last.join("\n"), /not JSON/);
    assert.match(rejected.last.join("\n"), /not a board record/);
  });
});

test("a board client open while a foreign message lands goes on writing and refreshing past it", { timeout: 60_000 }, async () => {
  const prefix = `f${randomUUID().slice(0, 8)}`;
  const { bucket } = natsNames(prefix).board("main");
  await withColony(prefix, async (colony) => {
    const board = await colony.board("main");
    await board.write("a", 1, { author: "me" });
    await publish(`$KV.${bucket}.somekey`, "not json");
    await board.write("b", 2, { author: "me" });
    await board.write("a", 3, { author: "me", expectedVersion: 1 });
    assert.equal(await board.refresh(), board.seq);
    assert.deepEqual([...board.view().entries()].map((e) => [e.key, e.value, e.version]), [["a", 3, 2], ["b", 2, 1]]);
  });
});
