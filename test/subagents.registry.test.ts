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
import { NotFoundError, SubAgentError, sqliteBackend, type AgentRecord, type Colony, type SubAgent } from "../src/index.ts";
import { alive, collect, label, sqliteColony, tempDir, waitFor, waitForEvent } from "./fixtures/helpers.ts";
import { ref, sleep } from "./fixtures/subagents.ts";

const REMOTE = fileURLToPath(new URL("./fixtures/subagent-remote.ts", import.meta.url));
const T = { timeout: 60_000 };

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
  const { stdout } = await promisify(execFile)(process.execPath, [REMOTE, db, id, String(cascade)], { timeout: 20_000 });
  return JSON.parse(stdout) as { listed: [string, string, number][] };
}

function terminated(error: unknown): boolean {
  return error instanceof SubAgentError && error.reason === "terminated";
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
    }, 20_000, "one child done and one in its first turn");
    const { quick, slow } = children;

    assert.deepEqual((await colony.agents.list({ parentId: parent.id, state: "running" })).map((r) => r.id), [slow.id]);
    assert.deepEqual((await colony.agents.list({ parentId: parent.id, state: "succeeded" })).map((r) => r.id), [quick.id]);
    assert.ok((await colony.agents.list({ state: "running" })).some((r) => r.id === parent.id));
    assert.deepEqual(await colony.agents.list({ parentId: "agent-none" }), []);

    const fields = ["id", "name", "parentId", "depth", "state", "generation", "isolation", "pid", "ownerPid", "ownerHost", "startedAt", "endedAt", "usage", "reason", "error"];
    for (const key of ["id", "name", "parentId", "depth", "state", "generation", "isolation", "pid", "ownerPid", "startedAt", "usage"]) assert.ok(key in slow, `a row has ${key}`);
    for (const key of Object.keys(slow)) assert.ok(fields.includes(key), `a row has no field ${key}`);
    assert.equal(slow.name, "slow");
    assert.equal(slow.state, "running");
    assert.equal(slow.parentId, parent.id);
    assert.equal(slow.depth, 1);
    assert.equal(slow.isolation, "process");
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
    }, 5_000, "the parent's usage");
    assert.equal(top.depth, 0);
    assert.equal(top.parentId, undefined);
    assert.equal(top.isolation, "inline");
    assert.equal(top.pid, undefined);

    await colony.agents.terminate(parent.id, { graceMs: 1_000 });
    await assert.rejects(parent.result, terminated);
    const ended = await colony.agents.list({ parentId: parent.id });
    assert.deepEqual(ended.map((r) => [r.name, r.state]).toSorted(), [["quick", "succeeded"], ["slow", "terminated"]]);
    await waitFor(() => !alive(slow.pid!), 5_000, "the process child to exit");
  });

  it("the generation grows by one with every lifecycle move, and a stale move is refused", T, async () => {
    const handle = await colony.spawn(ref("turner"), { maxTurns: 4, pauseMs: 30 }, { isolation: "thread" });
    const seen: number[] = [];
    while (handle.state !== "succeeded") {
      const { generation } = await row(handle.id);
      if (seen.at(-1) !== generation) seen.push(generation);
      await sleep(5);
    }
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
    await waitForEvent(handle, "emit:sleeping");
    const { pid } = await row(handle.id);

    const { listed } = await remoteTerminate(handle.id);
    const asked = Date.now();
    assert.deepEqual(listed.find(([id]) => id === handle.id), [handle.id, "running", process.pid]);
    // The owner polls for kill requests; well within a few seconds it has carried this one out.
    await assert.rejects(handle.result, terminated);
    assert.ok(Date.now() - asked < 5_000);
    const ended = await row(handle.id);
    assert.equal(ended.state, "terminated");
    assert.match(ended.error ?? "", /killed on request/);
    await waitFor(() => !alive(pid!), 5_000, `process ${pid} to exit`);
  });

  it("cascades to the descendants by default, and not with cascade false", T, async () => {
    const cascading = await colony.spawn(ref("tree"), { levels: 3, isolation: "thread" }, { isolation: "thread" });
    const keeping = await colony.spawn(ref("tree"), { levels: 2, isolation: "process" }, { isolation: "thread" });
    const treeOf = async (rootId: string) => {
      const all = await colony.agents.list();
      const ids = new Set([rootId]);
      for (const r of all) if (r.parentId !== undefined && ids.has(r.parentId)) ids.add(r.id);
      return all.filter((r) => ids.has(r.id)).sort((a, b) => a.depth - b.depth);
    };
    await waitFor(async () => (await treeOf(cascading.id)).filter((r) => r.state === "running").length === 3, 20_000, "three levels");
    const [, kept] = await waitFor(async () => {
      const r = await treeOf(keeping.id);
      return r.length === 2 && r.every((x) => x.state === "running") && r;
    }, 20_000, "two levels");

    await remoteTerminate(cascading.id);
    await remoteTerminate(keeping.id, false);
    await assert.rejects(cascading.result, terminated);
    await assert.rejects(keeping.result, terminated);
    const all = await waitFor(async () => {
      const r = await treeOf(cascading.id);
      return r.every((x) => x.state === "terminated") && r;
    }, 5_000, "the whole tree to end");
    assert.equal(all.length, 3);

    // Without cascade the child outlives its parent, until it is terminated itself.
    assert.equal((await row(kept!.id)).state, "running");
    assert.ok(alive(kept!.pid!));
    await colony.agents.terminate(kept!.id);
    assert.equal((await row(kept!.id)).state, "terminated");
    await waitFor(() => !alive(kept!.pid!), 5_000, "the kept child's process to exit");
  });
});
