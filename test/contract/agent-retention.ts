/**
 * The agent registry's retention, run against every backend: `AgentStore.prune` removes ended
 * agents past `maxEnded` (oldest ended first) or older than `maxAgeMs`, a bounded number per call,
 * never a live one, nor an ended child of a live parent or an ended ancestor of a live agent, and
 * takes their reports and kill requests with them; and a colony runs it by itself, keeping a
 * running task's agent listed. A backend's test file calls `agentRetentionContract(name,
 * newBackend)`; every test gets a fresh, empty backend.
 */
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { afterEach, beforeEach, describe, test } from "node:test";
import { AGENT_PRUNE_STEP } from "../../src/core/agent-retention.ts";
import { createColony, type AgentRecord, type AgentRetention, type Backend, type BackendFactory, type SubAgent } from "../../src/index.ts";
import { waitFor } from "../fixtures/helpers.ts";

export type NewBackend = () => { factory: BackendFactory; cleanup(): void | Promise<void> };

/** The prunes' clock: records end before it, as far back as each test says. */
const NOW = 1_000_000_000;
const KEEP_ALL: AgentRetention = { maxAgeMs: Infinity, maxEnded: Infinity };

function it(name: string, fn: () => Promise<void>): void {
  void test(name, { timeout: 30_000 }, fn);
}

function agent(id: string, fields: Partial<AgentRecord> = {}): AgentRecord {
  return {
    id,
    name: id,
    parentId: undefined,
    depth: 0,
    state: "running",
    generation: 1,
    isolation: "inline",
    pid: undefined,
    ownerPid: process.pid,
    ownerHost: hostname(),
    startedAt: NOW - 1_000_000,
    endedAt: undefined,
    usage: { tokens: 0, costUsd: 0, turns: 0 },
    reason: undefined,
    error: undefined,
    ...fields,
  };
}

/** An agent that ended `ago` ms before NOW. */
function ended(id: string, ago: number, fields: Partial<AgentRecord> = {}): AgentRecord {
  return agent(id, { state: "succeeded", endedAt: NOW - ago, ...fields });
}

export function agentRetentionContract(name: string, newBackend: NewBackend): void {
  describe(`agent retention: ${name}`, () => {
    let under: ReturnType<NewBackend>;
    let backend: Backend;
    const listed = async () => (await backend.agents.list()).map((r) => r.id).sort();
    const insert = (...records: AgentRecord[]) => Promise.all(records.map((r) => backend.agents.insert(r)));

    beforeEach(async () => {
      under = newBackend();
      backend = await under.factory.open();
    });
    afterEach(async () => {
      await backend.close();
      await under.cleanup();
    });

    it("removes the ended agents past maxEnded, oldest ended first, and no live one", async () => {
      await insert(ended("e3", 300), ended("e1", 500), agent("live-1"), ended("e5", 100), ended("e2", 400), agent("live-2", { state: "waiting" }), ended("e4", 200));
      assert.equal(await backend.agents.prune({ maxAgeMs: Infinity, maxEnded: 2 }, NOW), false);
      assert.deepEqual(await listed(), ["e4", "e5", "live-1", "live-2"]);
      assert.equal(await backend.agents.prune({ maxAgeMs: Infinity, maxEnded: 2 }, NOW), false);
      assert.deepEqual(await listed(), ["e4", "e5", "live-1", "live-2"], "a second prune finds nothing more to remove");
    });

    it("removes the ended agents that ended longer ago than maxAgeMs", async () => {
      await insert(ended("old", 5000), ended("older", 9000, { state: "failed", reason: "error", error: "boom" }), ended("new", 1000), agent("live", { startedAt: NOW - 50_000 }));
      await backend.agents.prune({ maxAgeMs: 2000, maxEnded: Infinity }, NOW);
      assert.deepEqual(await listed(), ["live", "new"]);
    });

    it("keeps an ended child of a live parent and the ended ancestors of a live agent, until it ends", async () => {
      await insert(
        ended("root", 900),
        agent("mid", { parentId: "root", depth: 1 }),
        ended("leaf", 800, { parentId: "mid", depth: 2 }),
        ended("sibling", 700, { parentId: "mid", depth: 2, state: "terminated", reason: "terminated" }),
        // An ended child of the ended root: nothing live depends on it.
        ended("cousin", 600, { parentId: "root", depth: 1 }),
      );
      await backend.agents.prune({ maxAgeMs: 0, maxEnded: 0 }, NOW);
      assert.deepEqual(await listed(), ["leaf", "mid", "root", "sibling"]);

      const mid = (await backend.agents.get("mid"))!;
      assert.equal(await backend.agents.transition("mid", mid.generation, { state: "succeeded", endedAt: NOW - 100 }), true);
      await backend.agents.prune({ maxAgeMs: 0, maxEnded: 0 }, NOW);
      assert.deepEqual(await listed(), []);
    });

    it("removes an agent's report and kill request with it, and a report written after it went", async () => {
      await insert(agent("killed"), ended("reported", 200, { parentId: "gone" }), ended("kept", 100, { parentId: "gone" }));
      assert.equal(await backend.agents.requestKill("killed", true), true);
      assert.equal(await backend.agents.transition("killed", 1, { state: "terminated", reason: "terminated", endedAt: NOW - 300 }), true);
      await backend.agents.putReport("reported", { status: "succeeded", result: 1 });
      await backend.agents.putReport("kept", { status: "failed", reason: "error", error: "no" });

      await backend.agents.prune({ maxAgeMs: Infinity, maxEnded: 1 }, NOW);
      assert.deepEqual(await listed(), ["kept"]);
      assert.equal(await backend.agents.getReport("reported"), undefined);
      assert.deepEqual(await backend.agents.getReport("kept"), { status: "failed", reason: "error", error: "no" });
      assert.deepEqual(await backend.agents.takeKillRequests(process.pid), [], "the kill request went with its agent");

      // Its owner was still on its way to writing the report when the agent went.
      await backend.agents.putReport("reported", { status: "succeeded", result: 1 });
      await backend.agents.prune({ maxAgeMs: Infinity, maxEnded: 1 }, NOW);
      assert.equal(await backend.agents.getReport("reported"), undefined);
      assert.deepEqual(await backend.agents.getReport("kept"), { status: "failed", reason: "error", error: "no" });
    });

    it(`removes a backlog ${AGENT_PRUNE_STEP} agents a call, saying whether more remain`, async () => {
      const count = AGENT_PRUNE_STEP + 50;
      await insert(...Array.from({ length: count }, (_, i) => ended(`e${String(i).padStart(4, "0")}`, count - i)));
      assert.equal(await backend.agents.prune({ maxAgeMs: Infinity, maxEnded: 10 }, NOW), true);
      assert.equal((await listed()).length, count - AGENT_PRUNE_STEP);
      assert.equal(await backend.agents.prune({ maxAgeMs: Infinity, maxEnded: 10 }, NOW), false);
      assert.deepEqual(await listed(), Array.from({ length: 10 }, (_, i) => `e${String(count - 10 + i).padStart(4, "0")}`));
    });

    it("keeps every ended agent under a retention that keeps everything", async () => {
      await insert(ended("a", 1e12), ended("b", 1));
      assert.equal(await backend.agents.prune(KEEP_ALL, NOW), false);
      assert.deepEqual(await listed(), ["a", "b"]);
    });

    it("a colony with no worker prunes the registry as its agents end", async () => {
      const noop: SubAgent<unknown, number> = { name: "noop", run: (ctx) => ctx.input as number };
      const colony = createColony({ backend: under.factory, retention: { agents: { maxEnded: 3 } } });
      try {
        for (let i = 0; i < 20; i++) assert.equal(await (await colony.spawn(noop, i)).result, i);
        // Each end may start a prune; the last ones may come within a prune's interval of the one before.
        await waitFor(
          async () => {
            if ((await colony.agents.list()).length <= 3) return true;
            await (await colony.spawn(noop, 0)).result;
            return false;
          },
          10_000,
          "the registry to keep 3 ended agents",
        );
      } finally {
        await colony.close();
      }
    });

    it("a colony with a worker prunes the registry by itself, and lists a running task's agent throughout", async () => {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const hold: SubAgent<unknown, string> = { name: "hold", run: async () => (await released, "held") };
      const noop: SubAgent<unknown, number> = { name: "noop", run: (ctx) => ctx.input as number };
      const colony = createColony({ backend: under.factory, retention: { agents: { maxEnded: 3 } } });
      try {
        await colony.worker({ agents: { hold, noop }, concurrency: 4 });
        const tasks = await colony.tasks();
        const held = await tasks.submit({ kind: "hold" });
        const running = () => colony.agents.list({ state: "running" }).then((agents) => agents.find((a) => a.name.startsWith("hold")));
        const holder = await waitFor(running, 10_000, "the held task's agent to be listed");
        const done = await tasks.submitAll(Array.from({ length: 20 }, (_, input) => ({ kind: "noop", input })));
        for (const task of done) assert.equal((await tasks.wait(task.id)).status, "succeeded");
        const endedAgents = async () => (await colony.agents.list()).filter((a) => a.state !== "running");
        await waitFor(async () => (await endedAgents()).length <= 3, 10_000, "the registry to keep 3 ended agents");
        assert.equal((await running())?.id, holder.id, "the running task's agent is still listed");

        release();
        assert.equal((await tasks.wait(held.id)).status, "succeeded");
        await waitFor(async () => (await colony.agents.list()).every((a) => a.state === "succeeded") && (await endedAgents()).length <= 3, 10_000, "the held agent's end to be kept");
      } finally {
        release();
        await colony.close();
      }
    });
  });
}
