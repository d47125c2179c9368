/**
 * Compare-and-set on a three-server cluster with three replicas, where nats-server 2.9 does not
 * hold a key's expected revision on its own (nats-server#4320): many clients, each on another
 * server, race for the same revision; exactly one may win, every round. Covers the leases (the
 * coordinator election) and the agent registry's lifecycle moves.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { natsBackend, type AgentRecord, type Backend } from "../src/index.ts";
import { startNatsCluster, type NatsCluster } from "../src/testing/nats-server.ts";

const ROUNDS = 60;

describe("compare-and-set on a three-server cluster", { timeout: 120_000 }, () => {
  let cluster: NatsCluster;
  let backends: Backend[];
  before(async () => {
    cluster = await startNatsCluster({ size: 3 });
    const prefix = `c${randomUUID().slice(0, 8)}`;
    // Two clients on each server, each naming only its own server.
    backends = [];
    for (const server of [...cluster.servers, ...cluster.servers]) backends.push(await natsBackend({ servers: server.url, prefix, replicas: 3 }).open());
  });
  after(async () => {
    for (const backend of backends ?? []) await backend.close();
    await cluster?.stop();
  });

  test("leases: a lapsed lease taken over by six clients at once has one new holder, every round", async () => {
    let revision = (await backends[0]!.leases.put("race", "first", 0))!;
    for (let round = 0; round < ROUNDS; round++) {
      const results = await Promise.all(backends.map((b, i) => b.leases.put("race", `client-${i}`, revision)));
      const winners = results.filter((r) => r !== undefined);
      assert.equal(winners.length, 1, `round ${round}: ${winners.length} clients took revision ${revision}`);
      revision = winners[0]!;
      assert.equal((await backends[round % backends.length]!.leases.get("race")).revision, revision);
    }
    const released = await Promise.all(backends.map((b) => b.leases.release("race", revision)));
    assert.equal(released.filter(Boolean).length, 1, "one release wins");
  });

  test("agent registry: a lifecycle move raced by six clients on one generation is applied once, every round", async () => {
    const id = `a-${randomUUID().slice(0, 8)}`;
    const record: AgentRecord = {
      id, name: "raced", parentId: undefined, depth: 0, state: "running", generation: 0, isolation: "inline", pid: undefined,
      ownerPid: process.pid, startedAt: Date.now(), endedAt: undefined, usage: { tokens: 0, costUsd: 0, turns: 0 }, reason: undefined, error: undefined,
    };
    await backends[0]!.agents.insert(record);
    for (let generation = 0; generation < ROUNDS; generation++) {
      const moved = await Promise.all(backends.map((b, i) => b.agents.transition(id, generation, { state: generation % 2 === 0 ? "waiting" : "running", error: `client-${i}` })));
      assert.equal(moved.filter(Boolean).length, 1, `generation ${generation}: ${moved.filter(Boolean).length} moves applied`);
    }
    assert.equal((await backends[1]!.agents.get(id))?.generation, ROUNDS);
  });
});
