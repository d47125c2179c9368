/**
 * The agents registry: `colony.agents.list({ parentId, state })` and its fields, a generation
 * that grows with every lifecycle move (and a stale move refused), and termination asked for by a
 * second colony in another process on the same SQLite file, carried out by the owner.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { NotFoundError, SubAgentError, sqliteBackend, type AgentRecord, type AgentState, type Colony, type SubAgent } from "../src/index.ts";
import { alive, collect, label, sqliteColony, tempDir, waitFor, waitForEvent, within } from "./fixtures/helpers.ts";
import { ref, sleep } from "./fixtures/subagents.ts";

const REMOTE = fileURLToPath(new URL("./fixtures/subagent-remote.ts", import.meta.url));
/**
 * How long a wait on agents (threads and processes starting, a kill carried out, a process
 * exiting) may take before it fails, naming what it waited for. Only a hang comes near it: on a
 * loaded two-core machine a thread or process child can take seconds to start.
 */
const LIMIT_MS = 60_000;
/** A test's own limit, past the waits it makes one after another. */
const T = { timeout: 4 * LIMIT_MS };

let dir: ReturnType<typeof tempDir>;
let db: string;
let colony: Colony;

before(() => {
  dir = tempDir("colony-registry-");
  db = `${dir.path}/colony.db`;
  colony = sqliteColony(db);
});

after(async () => {
  await colony.close();
  dir.dispose();
});

async function row(id: string): Promise<AgentRecord> {
  const found = (await colony.agents.list()).find((r) => r.id === id);
  assert.ok(found, `agent ${id} is listed`);
  return found;
}

/** Runs the remote fixture: another process asks for `id` to be terminated. */
async function remoteTerminate(id: string, cascade = true): Promise<{ listed: [string, string, number][] }> {
  const { stdout } = await promisify(execFile)(process.execPath, [REMOTE, db, id, String(cascade)], { timeout: LIMIT_MS });
  return JSON.parse(stdout) as { listed: [string, string, number][] };
}

/** The states an agent ends in. */
const ENDED: ReadonlySet<AgentState> = new Set(["succeeded", "failed", "terminated"]);

/** Checks for `assert.rejects`: the SubAgentError of an agent terminated, saying why. */
function terminated(id: string, detail: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof SubAgentError, `expected a SubAgentError, got ${String(error)}`);
    assert.deepEqual([error.code, error.reason, error.agentId], ["SUBAGENT_TERMINATED", "terminated", id]);
    assert.match(error.message, detail);
    return true;
  };
}

/**
 * An agent and all its descendants in the registry, shallowest first. Found to a fixed point, not
 * in one pass over the list: that pass relies on a parent being listed before its child.
 */
async function treeOf(rootId: string): Promise<AgentRecord[]> {
  const all = await colony.agents.list();
  const ids = new Set([rootId]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of all) {
      if (r.parentId !== undefined && ids.has(r.parentId) && !ids.has(r.id)) {
        ids.add(r.id);
        grew = true;
      }
    }
  }
  return all.filter((r) => ids.has(r.id)).sort((a, b) => a.depth - b.depth);
}

/**
 * Waits until the tree under `rootId` is a chain of `levels` agents, each running its code (its
 * first turn is in the registry, which only happens once its host has loaded and started it), and
 * returns it. Fails at once, showing the tree, if one of them ends first, and at the limit otherwise.
 */
async function runningChain(rootId: string, levels: number): Promise<AgentRecord[]> {
  let last: AgentRecord[] = [];
  const show = () => JSON.stringify(last.map((r) => [r.name, r.depth, r.state, r.usage.turns, r.error ?? null]));
  try {
    return await waitFor(async () => {
      last = await treeOf(rootId);
      const ended = last.find((r) => ENDED.has(r.state));
      if (ended) throw new Error(`${ended.name} ended (${ended.state}) before ${levels} levels were running: ${show()}`);
      const chain = last.length === levels && last.every((r, depth) => r.depth === depth && r.state === "running" && r.usage.turns === 1);
      return chain && last;
    }, LIMIT_MS, `${levels} levels running their code`);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith("gave up")) error.message += `; the tree: ${show()}`;
    throw error;
  }
}

/** Spawns a thread child that succeeds and a process child that runs until stopped, then waits. */
const family: SubAgent = {
  name: "family",
  run: async (ctx) => {
    await ctx.spawn(ref("echo"), "quick", { isolation: "thread", name: "quick" });
    await ctx.spawn(ref("sleeper"), null, { isolation: "process", name: "slow" });
    ctx.usage.add({ tokens: 7 });
    await sleep(600_000, ctx.signal);
  },
};

describe("agents.list", () => {
  it("lists by parent and state, with every field", T, async () => {
    const before = Date.now();
    const parent = await colony.spawn(family, null, { name: "family" });
    const children = await waitFor(async () => {
      const rows = await colony.agents.list({ parentId: parent.id });
      const quick = rows.find((r) => r.name === "quick");
      const slow = rows.find((r) => r.name === "slow");
      // A running agent's turn is in the registry once its code has started.
      return quick?.state === "succeeded" && slow?.state === "running" && slow.usage.turns === 1 && { quick, slow };
    }, LIMIT_MS, "one child done and one in its first turn");
    const { quick, slow } = children;

    assert.deepEqual((await colony.agents.list({ parentId: parent.id, state: "running" })).map((r) => r.id), [slow.id]);
    assert.deepEqual((await colony.agents.list({ parentId: parent.id, state: "succeeded" })).map((r) => r.id), [quick.id]);
    assert.ok((await colony.agents.list({ state: "running" })).some((r) => r.id === parent.id));
    assert.deepEqual(await colony.agents.list({ parentId: "agent-none" }), []);

    const fields = ["id", "name", "parentId", "depth", "state", "generation", "isolation", "delivery", "pid", "ownerPid", "ownerHost", "startedAt", "endedAt", "usage", "reason", "error"];
    for (const key of ["id", "name", "parentId", "depth", "state", "generation", "isolation", "delivery", "pid", "ownerPid", "startedAt", "usage"]) assert.ok(key in slow, `a row has ${key}`);
    for (const key of Object.keys(slow)) assert.ok(fields.includes(key), `a row has no field ${key}`);
    assert.equal(slow.name, "slow");
    assert.equal(slow.state, "running");
    assert.equal(slow.parentId, parent.id);
    assert.equal(slow.depth, 1);
    assert.equal(slow.isolation, "process");
    assert.equal(slow.delivery, "streaming");
    assert.ok(alive(slow.pid!));
    assert.equal(slow.ownerPid, process.pid);
    assert.ok(slow.startedAt >= before && slow.startedAt <= Date.now());
    assert.equal(slow.endedAt, undefined);
    assert.deepEqual(slow.usage, { tokens: 0, costUsd: 0, turns: 1 });
    assert.equal(slow.generation, 1, "created → running");

    assert.equal(quick.isolation, "thread");
    assert.equal(quick.pid, undefined);
    assert.ok(quick.endedAt !== undefined && quick.endedAt >= quick.startedAt);
    assert.equal(quick.generation, 2, "created → running → succeeded");

    const top = await waitFor(async () => {
      const r = await row(parent.id);
      return r.usage.tokens === 7 && r;
    }, LIMIT_MS, "the parent's usage");
    assert.equal(top.depth, 0);
    assert.equal(top.parentId, undefined);
    assert.equal(top.isolation, "inline");
    assert.equal(top.pid, undefined);

    await colony.agents.terminate(parent.id, { graceMs: 1_000 });
    await assert.rejects(within(parent.result, "the parent's end", LIMIT_MS), terminated(parent.id, /terminated by request/));
    const ended = await colony.agents.list({ parentId: parent.id });
    assert.deepEqual(ended.map((r) => [r.name, r.state]).toSorted(), [["quick", "succeeded"], ["slow", "terminated"]]);
    await waitFor(() => !alive(slow.pid!), LIMIT_MS, "the process child to exit");
  });

  it("the generation grows by one with every lifecycle move, and a stale move is refused", T, async () => {
    const handle = await colony.spawn(ref("turner"), { maxTurns: 4, pauseMs: 30 }, { isolation: "thread" });
    const seen: number[] = [];
    await waitFor(async () => {
      const { generation } = await row(handle.id);
      if (seen.at(-1) !== generation) seen.push(generation);
      return handle.state === "succeeded";
    }, LIMIT_MS, "the turner to succeed, its generations sampled meanwhile");
    const events = (await collect(handle)).map(label).filter((e) => e.startsWith("state:"));
    assert.deepEqual(events, ["state:running", "state:waiting", "state:running", "state:waiting", "state:running", "state:waiting", "state:running", "state:succeeded"]);
    const final = await row(handle.id);
    assert.equal(final.generation, events.length);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!, `generations only grow: ${seen.join(", ")}`);

    // The store moves a record only from the generation it is at.
    const backend = await sqliteBackend({ path: db }).open();
    try {
      assert.equal(await backend.agents.transition(handle.id, final.generation - 1, { state: "running" }), false);
      assert.equal((await backend.agents.get(handle.id))?.state, "succeeded");
      assert.equal((await backend.agents.get(handle.id))?.generation, final.generation);
    } finally {
      await backend.close();
    }
  });

  it("terminating an unknown agent is a NotFoundError", T, async () => {
    await assert.rejects(colony.agents.terminate("agent-unknown"), NotFoundError);
  });
});

describe("agents.terminate from another process", () => {
  it("is carried out by the owning process, which lists it first", T, async () => {
    const handle = await colony.spawn(ref("sleeper"), null, { isolation: "process", name: "remote-target" });
    await waitForEvent(handle, "emit:sleeping", LIMIT_MS);
    const { pid } = await row(handle.id);

    const { listed } = await remoteTerminate(handle.id);
    assert.deepEqual(listed.find(([id]) => id === handle.id), [handle.id, "running", process.pid]);
    // The owner polls for kill requests and carries this one out: it is what ends the agent.
    await assert.rejects(within(handle.result, "the owner to carry out the kill request", LIMIT_MS), terminated(handle.id, /killed on request/));
    const ended = await row(handle.id);
    assert.deepEqual([ended.state, ended.reason], ["terminated", "terminated"]);
    assert.match(ended.error ?? "", /killed on request/);
    const events = (await collect(handle)).map(label);
    assert.deepEqual(events.slice(-2), ["state:terminated", "subagent.failed:terminated"]);
    await waitFor(() => !alive(pid!), LIMIT_MS, `process ${pid} to exit`);
  });

  it("cascades to the descendants by default, and not with cascade false", T, async () => {
    const cascading = await colony.spawn(ref("tree"), { levels: 3, isolation: "thread" }, { isolation: "thread" });
    const keeping = await colony.spawn(ref("tree"), { levels: 2, isolation: "process" }, { isolation: "thread" });
    // Every level registered and running its code (in its first turn, waiting to be stopped) before
    // the kill is asked for: the kill then meets the whole tree, no level of it still starting.
    const cascadingTree = await runningChain(cascading.id, 3);
    const [, kept] = await runningChain(keeping.id, 2);

    await remoteTerminate(cascading.id);
    await remoteTerminate(keeping.id, false);
    await assert.rejects(within(cascading.result, "the cascading root's end", LIMIT_MS), terminated(cascading.id, /killed on request/));
    await assert.rejects(within(keeping.result, "the keeping root's end", LIMIT_MS), terminated(keeping.id, /killed on request/));
    const all = await waitFor(async () => {
      const r = await treeOf(cascading.id);
      return r.every((x) => ENDED.has(x.state)) && r;
    }, LIMIT_MS, "the whole cascading tree to end");
    assert.deepEqual(
      all.map((r) => [r.id, r.state, r.reason]),
      cascadingTree.map((r) => [r.id, "terminated", "terminated"]),
    );

    // Without cascade the child outlives its parent, until it is terminated itself.
    assert.equal((await row(kept!.id)).state, "running");
    assert.ok(alive(kept!.pid!));
    await colony.agents.terminate(kept!.id);
    assert.equal((await row(kept!.id)).state, "terminated");
    await waitFor(() => !alive(kept!.pid!), LIMIT_MS, "the kept child's process to exit");
  });
});
