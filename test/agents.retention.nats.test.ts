/**
 * The agent retention contract on natsBackend, on a private nats-server; and what only NATS needs:
 * removing an agent takes its messages out of the bucket's stream, leaving no delete marker behind.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { test } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { natsNames } from "../src/backends/nats/names.ts";
import { natsBackend, type AgentRecord } from "../src/index.ts";
import { agentRetentionContract } from "./contract/agent-retention.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

const nats = natsServerPerFile();

function endedRecord(id: string, endedAt: number): AgentRecord {
  return {
    id,
    name: id,
    parentId: undefined,
    depth: 0,
    state: "succeeded",
    generation: 1,
    isolation: "inline",
    pid: undefined,
    ownerPid: process.pid,
    ownerHost: hostname(),
    startedAt: 1,
    endedAt,
    usage: { tokens: 0, costUsd: 0, turns: 0 },
    reason: undefined,
    error: undefined,
  };
}

agentRetentionContract("nats", () => ({ factory: nats.backend(), cleanup: () => {} }));

test("two processes pruning one registry, each reading only what was written since its last prune, keep it to the newest maxEnded", { timeout: 30_000 }, async () => {
  const prefix = `t${randomUUID().slice(0, 8)}`;
  const [first, second] = [await natsBackend({ servers: nats.server.url, prefix }).open(), await natsBackend({ servers: nats.server.url, prefix }).open()];
  try {
    const retention = { maxAgeMs: Infinity, maxEnded: 3 };
    let endedAt = 0;
    const add = async (count: number) => {
      for (let i = 0; i < count; i++) await first.agents.insert(endedRecord(`agent-${++endedAt}`, endedAt));
    };
    const newest = (count: number) => Array.from({ length: count }, (_, i) => `agent-${endedAt - count + 1 + i}`).sort();
    const listed = async () => (await first.agents.list()).map((a) => a.id).sort();
    await add(5);
    await first.agents.prune(retention, 1000);
    assert.deepEqual(await listed(), newest(3));
    // The second removes what the first still holds as read; the first must not count those again.
    await add(4);
    await second.agents.prune(retention, 1000);
    assert.deepEqual(await listed(), newest(3));
    await add(2);
    await first.agents.prune(retention, 1000);
    assert.deepEqual(await listed(), newest(3));
    await add(1);
    await first.agents.prune(retention, 1000);
    await second.agents.prune(retention, 1000);
    assert.deepEqual(await listed(), newest(3));
  } finally {
    await first.close();
    await second.close();
  }
});

test("removing an agent shrinks the registry's stream: its record, its report and its taken kill request's marker go, no marker is left", { timeout: 30_000 }, async () => {
  const prefix = `t${randomUUID().slice(0, 8)}`;
  const backend = await natsBackend({ servers: nats.server.url, prefix }).open();
  const nc = await connect({ servers: nats.server.url });
  try {
    const jsm = await jetstreamManager(nc);
    const stream = `KV_${natsNames(prefix).agents}`;
    const stored = async () => (await jsm.streams.info(stream)).state.messages;
    const record = (id: string): AgentRecord => ({ ...endedRecord(id, 0), parentId: "p", depth: 1, state: "running", endedAt: undefined });
    const ids = Array.from({ length: 10 }, (_, i) => `agent-${i}`);
    for (const [i, id] of ids.entries()) {
      await backend.agents.insert(record(id));
      await backend.agents.requestKill(id, false);
      assert.deepEqual(await backend.agents.takeKillRequests(process.pid), [{ id, cascade: false }]);
      await backend.agents.transition(id, 1, { state: "terminated", reason: "terminated", endedAt: 100 + i });
      await backend.agents.putReport(id, { status: "failed", reason: "terminated", error: "killed" });
    }
    assert.equal(await stored(), 30, "a record, a kill request's delete marker and a report for each");

    await backend.agents.prune({ maxAgeMs: Infinity, maxEnded: 2 }, 1000);
    assert.deepEqual((await backend.agents.list()).map((a) => a.id), ids.slice(8));
    assert.equal(await stored(), 6, "what is kept, and no marker for what went");

    await backend.agents.prune({ maxAgeMs: 0, maxEnded: 0 }, 1000);
    assert.equal(await stored(), 0);
  } finally {
    await nc.close();
    await backend.close();
  }
});
