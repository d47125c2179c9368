/**
 * The sub-agent registry on NATS, where the colonies that list and kill an agent may be other
 * processes on other machines: listing and terminating through the backend, and pids that are
 * only checked on their own machine.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { afterEach, describe, test } from "node:test";
import { createColony, defineSubAgent, SubAgentError, type AgentRecord, type Colony } from "../src/index.ts";
import { waitFor, waitForEvent } from "./fixtures/helpers.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

const nats = natsServerPerFile();
const opened: Colony[] = [];
afterEach(async () => {
  for (const colony of opened.splice(0)) await colony.close();
});

function pair(): { colonies: [Colony, Colony]; prefix: string } {
  const prefix = `r${randomUUID().slice(0, 8)}`;
  const colonies: [Colony, Colony] = [createColony({ backend: nats.backend(prefix) }), createColony({ backend: nats.backend(prefix) })];
  opened.push(...colonies);
  return { colonies, prefix };
}

const waiter = defineSubAgent({
  name: "waiter",
  run: (ctx) => new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(new Error("stopped")), { once: true })),
});

describe("the agent registry on NATS", { timeout: 30_000 }, () => {
  test("another connection lists a live agent and terminates it through the backend", async () => {
    const [owner, other] = pair().colonies;
    const handle = await owner.spawn(waiter, undefined, { name: "remote-kill" });
    const listed = await waitFor(async () => (await other.agents.list()).find((r) => r.id === handle.id && r.state === "running"), 10_000, "the agent listed as running");
    assert.equal(listed.ownerPid, process.pid);
    assert.equal(typeof listed.ownerHost, "string");
    await other.agents.terminate(handle.id);
    // The owner finds the kill request in the backend and carries it out: the agent ends terminated,
    // whatever its own code made of being stopped (it rejects with "stopped").
    await waitForEvent(handle, "subagent.failed:terminated", 10_000);
    await assert.rejects(handle.result, (error: unknown) => {
      assert.ok(error instanceof SubAgentError, `expected a SubAgentError, got ${String(error)}`);
      assert.deepEqual([error.code, error.reason, error.agentId], ["SUBAGENT_TERMINATED", "terminated", handle.id]);
      assert.match(error.message, /remote-kill .* terminated: killed on request/);
      return true;
    });
    const ended = await waitFor(async () => (await other.agents.list()).find((r) => r.id === handle.id && r.state === "terminated"), 10_000, "the agent terminated");
    assert.equal(ended.id, handle.id);
  });

  test("a record owned by another machine is not declared crashed here, whatever its pid", async () => {
    const { colonies, prefix } = pair();
    const colony = colonies[0];
    const backend = await nats.backend(prefix).open();
    try {
      const base: AgentRecord = {
        id: `a-${randomUUID().slice(0, 8)}`,
        name: "elsewhere",
        parentId: undefined,
        depth: 0,
        state: "running",
        generation: 1,
        isolation: "process",
        pid: 2 ** 22 + 17,
        ownerPid: 2 ** 22 + 17,
        ownerHost: "another-machine",
        startedAt: Date.now(),
        endedAt: undefined,
        usage: { tokens: 0, costUsd: 0, turns: 0 },
        reason: undefined,
        error: undefined,
      };
      await backend.agents.insert(base);
      await backend.agents.insert({ ...base, id: `${base.id}-here`, ownerHost: hostname() });
      const listed = await colony.agents.list();
      assert.equal(listed.find((r) => r.id === base.id)?.state, "running", "another machine's agent is left alone");
      const here = listed.find((r) => r.id === `${base.id}-here`);
      assert.deepEqual([here?.state, here?.reason], ["failed", "crash"], "this machine's dead pid is a crash");
    } finally {
      await backend.close();
    }
  });
});
