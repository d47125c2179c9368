/**
 * What a NATS board costs in round trips: a write to a key the client knows is one conditional
 * update, a write another client got ahead of is retried after one read, and history and opening
 * a board read in batches, not a request per message, leaving no consumer behind. Requests are
 * counted by a second connection that hears every JetStream API call and KV publish on a private
 * nats-server, where the board under test is the only client at work.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { natsNames } from "../src/backends/nats/names.ts";
import { createColony, natsBackend, VersionConflictError, type Colony } from "../src/index.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

const nats = natsServerPerFile();

interface Requests {
  /** Every JetStream API request and KV publish. */
  total: number;
  /** KV publishes: the writes. */
  writes: number;
  /** Message gets: a key's current value, one message of the log. */
  gets: number;
}

/** Counts the JetStream API requests and KV publishes any client sends. */
class RequestCounter {
  readonly #count: Requests = { total: 0, writes: 0, gets: 0 };
  readonly #nc: NatsConnection;

  private constructor(nc: NatsConnection) {
    this.#nc = nc;
    nc.subscribe("$KV.>", {
      callback: () => {
        this.#count.total++;
        this.#count.writes++;
      },
    });
    nc.subscribe("$JS.API.>", {
      callback: (_, msg) => {
        this.#count.total++;
        if (msg.subject.startsWith("$JS.API.STREAM.MSG.GET.")) this.#count.gets++;
      },
    });
  }

  static async open(url: string): Promise<RequestCounter> {
    const nc = await connect({ servers: url });
    await nc.flush();
    return new RequestCounter(nc);
  }

  /** The requests `work` sent. The server copies each to this connection before answering it, so a flush after sees them all. */
  async during(work: () => Promise<unknown>): Promise<number> {
    return (await this.split(work)).total;
  }

  async split(work: () => Promise<unknown>): Promise<Requests> {
    await this.#nc.flush();
    const start = { ...this.#count };
    await work();
    await this.#nc.flush();
    return { total: this.#count.total - start.total, writes: this.#count.writes - start.writes, gets: this.#count.gets - start.gets };
  }

  close(): Promise<void> {
    return this.#nc.close();
  }
}

let counter: RequestCounter;
let jsm: JetStreamManager;
let manager: NatsConnection;

async function withColonies(count: number, work: (colonies: Colony[], prefix: string) => Promise<void>): Promise<void> {
  const prefix = `r${randomUUID().slice(0, 8)}`;
  const colonies = Array.from({ length: count }, () => createColony({ backend: natsBackend({ servers: nats.server.url, prefix }) }));
  try {
    await work(colonies, prefix);
  } finally {
    await Promise.all(colonies.map((c) => c.close()));
  }
}

/** Consumers left on a board's bucket stream. */
async function consumersOn(prefix: string, board: string): Promise<string[]> {
  const names: string[] = [];
  for await (const info of jsm.consumers.list(`KV_${natsNames(prefix).board(board).bucket}`)) names.push(info.name);
  return names;
}

/** Stores records fast, through JetStream directly, as board writes would (the client reading them must take them as its own). */
async function seed(prefix: string, board: string, records: { key: string; version: number; tags?: unknown }[]): Promise<void> {
  const { bucket } = natsNames(prefix).board(board);
  const nc = await connect({ servers: nats.server.url });
  try {
    const js = jetstream(nc);
    const at = Date.now();
    const acks = records.map(({ key, version, tags = {} }) =>
      js.publish(`$KV.${bucket}.${Buffer.from(key, "utf8").toString("base64url")}`, JSON.stringify({ op: "write", key, version, author: "seed", at, createdAt: at, json: JSON.stringify(version), tags, id: randomUUID() })),
    );
    await Promise.all(acks);
  } finally {
    await nc.close();
  }
}

describe("round trips of a board on NATS", () => {
  before(async () => {
    counter = await RequestCounter.open(nats.server.url);
    manager = await connect({ servers: nats.server.url });
    jsm = await jetstreamManager(manager);
  });
  after(async () => {
    await counter?.close();
    await manager?.close();
  });

  test("records written when tags were a list of names read with each name tagged true", async () => {
    await withColonies(2, async ([creator, colony], prefix) => {
      await creator!.board("legacy"); // makes the bucket
      await seed(prefix, "legacy", [{ key: "a", version: 1, tags: ["x", "y"] }, { key: "b", version: 1, tags: [] }, { key: "c", version: 1, tags: { status: "approved" } }]);
      const board = await colony!.board("legacy");
      const view = board.view();
      assert.deepEqual(["a", "b", "c"].map((k) => view.read(k)?.tags), [{ x: true, y: true }, {}, { status: "approved" }]);
      assert.deepEqual(view.readByTag("x").map((e) => e.key), ["a"]);
      assert.deepEqual((await board.history()).map((r) => r.tags), [{ x: true, y: true }, {}, { status: "approved" }]);
      assert.deepEqual((await board.get("a"))?.tags, { x: true, y: true });
    });
  });

  test("a write to a key the client knows is one request, a first write too, and so is a delete", async () => {
    await withColonies(1, async ([colony], prefix) => {
      const board = await colony!.board("main");
      assert.equal(await counter.during(() => board.write("k", 1, { author: "a" })), 1, "a first write: one create");
      assert.equal(await counter.during(() => board.write("k", 2, { author: "a" })), 1);
      assert.equal(await counter.during(() => board.write("k", 3, { author: "a", expectedVersion: 2 })), 1);
      assert.equal(await counter.during(() => board.delete("k", { author: "a", expectedVersion: 3 })), 1);
      const again = await board.write("k", 5, { author: "a" });
      assert.equal(again.version, 5, "versions go on past the delete");
      assert.deepEqual((await board.history({ key: "k" })).map((r) => [r.op, r.version]), [["write", 1], ["write", 2], ["write", 3], ["delete", 4], ["write", 5]]);
      assert.deepEqual(await consumersOn(prefix, "main"), []);
    });
  });

  test("a write after another client wrote the key is retried after one read; an expected version it moved past is refused", async () => {
    await withColonies(2, async ([first, second]) => {
      const [a, b] = [await first!.board("main"), await second!.board("main")];
      await a.write("k", "a1", { author: "a" });
      await b.write("k", "b2", { author: "b", expectedVersion: 1 });
      let written: number | undefined;
      // The stale update, a read of the key, the update (and then the board's catch-up on the write it missed, in one history read).
      const retried = await counter.split(async () => (written = (await a.write("k", "a3", { author: "a" })).version));
      assert.deepEqual([retried.writes, retried.gets], [2, 1]);
      assert.equal(written, 3);
      assert.equal((await b.get("k"))?.value, "a3");

      await b.write("k", "b4", { author: "b", expectedVersion: 3 });
      await assert.rejects(a.write("k", "stale", { author: "a", expectedVersion: 3 }), (error: unknown) => error instanceof VersionConflictError && error.actualVersion === 4);
      // An expected version the client has not seen: the key is read before the write, not refused unread.
      await b.write("k", "b5", { author: "b", expectedVersion: 4 });
      const checked = await counter.split(() => a.write("k", "a6", { author: "a", expectedVersion: 5 }));
      assert.deepEqual([checked.writes, checked.gets], [1, 1]);
      await assert.rejects(a.write("k", "nope", { author: "a", expectedVersion: 9 }), (error: unknown) => error instanceof VersionConflictError && error.actualVersion === 6);
      // A key created elsewhere since this client loaded: the create is refused, the key read, the update sent.
      await b.write("new", 1, { author: "b" });
      assert.equal((await a.write("new", 2, { author: "a" })).version, 2);
      // A delete of a key the client thinks absent reads it first.
      await b.write("other", 1, { author: "b" });
      assert.equal(await a.delete("other", { author: "a" }), true);
      assert.deepEqual((await a.history()).map((r) => `${r.key}@${r.version}`), ["k@1", "k@2", "k@3", "k@4", "k@5", "k@6", "new@1", "new@2", "other@1", "other@2"]);
    });
  });

  test("history of a key with 500 revisions among 5,000 records, and of the whole board, are read in batches", { timeout: 60_000 }, async (t) => {
    await withColonies(1, async ([colony], prefix) => {
      const board = await colony!.board("log");
      const records = Array.from({ length: 5000 }, (_, i) => (i % 10 === 0 ? { key: "hot", version: i / 10 + 1 } : { key: `cold-${i}`, version: 1 }));
      await seed(prefix, "log", records);
      let history: { version: number }[] = [];
      const keyed = await counter.during(async () => (history = await board.history({ key: "hot" })));
      assert.deepEqual(history.map((r) => r.version), Array.from({ length: 500 }, (_, i) => i + 1));
      // The stream's head, the consumer's creation, its lookup, two pulls, its removal.
      t.diagnostic(`history({ key }): ${keyed} requests`);
      assert.ok(keyed <= 8, `history({ key }) made ${keyed} requests`);
      let all = 0;
      const whole = await counter.during(async () => (all = (await board.history()).length));
      assert.equal(all, 5000);
      t.diagnostic(`history() of 5,000 records: ${whole} requests`);
      assert.ok(whole <= 30, `history() of 5,000 records made ${whole} requests`);
      const since = await counter.during(async () => (all = (await board.history({ since: 4990, limit: 5 })).length));
      assert.equal(all, 5);
      assert.ok(since <= 6, `history({ since, limit }) made ${since} requests`);
      assert.deepEqual(await consumersOn(prefix, "log"), []);
    });
  });

  test("opening a board of 2,000 keys is a few requests, and its writes then go straight out", { timeout: 60_000 }, async (t) => {
    await withColonies(2, async ([creator, colony], prefix) => {
      await creator!.board("wide");
      await seed(prefix, "wide", Array.from({ length: 2000 }, (_, i) => ({ key: `key-${i}`, version: 1 })));
      await colony!.board("warm-up");
      let board: Awaited<ReturnType<Colony["board"]>> | undefined;
      const opening = await counter.during(async () => (board = await colony!.board("wide")));
      assert.equal(board!.view().size, 2000);
      t.diagnostic(`opening a board of 2,000 keys: ${opening} requests`);
      assert.ok(opening <= 20, `opening the board made ${opening} requests`);
      assert.equal(await counter.during(() => board!.write("key-7", "x", { author: "a", expectedVersion: 1 })), 1);
      assert.equal(await counter.during(() => board!.write("key-new", "x", { author: "a" })), 1);
      assert.deepEqual(await consumersOn(prefix, "wide"), []);
    });
  });
});
