/**
 * Sub-agents, the same behaviour in every isolation (inline, worker thread, child process):
 * spawn and result, the event stream, terminate, timeout, a thrown error, a forced stop, context
 * isolation, and turns steered by signals. Real threads and processes; PIDs checked for real.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createColony, memoryBackend, SubAgentError, type AgentRecord, type BackendFactory, type Isolation, type SubAgentContext, type SubAgentEvent, type SubAgentHandle } from "../src/index.ts";
import { alive, collect, label, waitFor, waitForEvent, colonyPerFile } from "./fixtures/helpers.ts";
import { chatty, echo, lastReturned, moduleState, ref } from "./fixtures/subagents.ts";

const T = { timeout: 30_000 };

const env = colonyPerFile("colony-subagents-");

async function record(id: string): Promise<AgentRecord> {
  const found = (await env.colony.agents.list()).find((r) => r.id === id);
  assert.ok(found, `agent ${id} is in the registry`);
  return found;
}

function failedWith(reason: string, detail?: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof SubAgentError, `a SubAgentError, got ${String(error)}`);
    assert.equal(error.reason, reason);
    assert.equal(error.code, `SUBAGENT_${reason.toUpperCase()}`);
    if (detail) assert.match(error.message, detail);
    return true;
  };
}

for (const isolation of ["inline", "thread", "process"] as const satisfies readonly Isolation[]) {
  describe(`${isolation} sub-agents`, () => {
    it("spawn → result, with the registry row that says where it ran", T, async () => {
      const handle = await env.colony.spawn(ref("echo"), { hello: "world" }, { isolation });
      assert.equal(handle.parentId, undefined);
      assert.equal(handle.name, "echo");
      const result = (await handle.result) as { input: unknown; name: string; depth: number; parentId: null; pid: number; turn: number };
      assert.deepEqual(result.input, { hello: "world" });
      assert.equal(result.name, "echo");
      assert.equal(result.depth, 0);
      assert.equal(result.parentId, null);
      assert.equal(result.turn, 1);
      assert.equal(handle.state, "succeeded");

      const row = await record(handle.id);
      assert.equal(row.isolation, isolation);
      assert.equal(row.state, "succeeded");
      assert.equal(row.ownerPid, process.pid);
      assert.equal(row.depth, 0);
      assert.equal(row.parentId, undefined);
      assert.ok(row.endedAt !== undefined && row.endedAt >= row.startedAt);
      if (isolation === "process") {
        assert.equal(row.pid, result.pid, "the registry holds the child's pid");
        assert.notEqual(result.pid, process.pid, "a process child runs in its own process");
        await waitFor(() => !alive(result.pid), 5_000, `process ${result.pid} to exit`);
      } else {
        assert.equal(row.pid, undefined);
        assert.equal(result.pid, process.pid);
      }
    });

    if (isolation === "inline") {
      it("inline also takes the agent object itself", T, async () => {
        const handle = await env.colony.spawn(echo, [1, 2, 3]);
        assert.deepEqual(((await handle.result) as { input: unknown }).input, [1, 2, 3]);
      });
    } else {
      it("refuses an agent object: a thread or process loads its code by reference", T, async () => {
        await assert.rejects(env.colony.spawn(echo, null, { isolation }), { code: "CONFIG" });
      });
    }

    it("streams its events: running → turn → emit/log/usage → succeeded → subagent.completed", T, async () => {
      const handle = await env.colony.spawn(isolation === "inline" ? chatty : ref("chatty"), null, { isolation });
      const [events, result] = await Promise.all([collect(handle), handle.result]);
      assert.deepEqual(result, { ok: true });
      assert.deepEqual(events.map(label), ["state:running", "turn:1", "emit:progress", "log", "usage", "state:succeeded", "subagent.completed"]);
      const byType = <K extends SubAgentEvent["type"]>(type: K) => events.find((e) => e.type === type) as Extract<SubAgentEvent, { type: K }>;
      assert.deepEqual(byType("emit").data, { n: 1 });
      assert.equal(byType("log").message, "half way");
      assert.equal(byType("usage").tokens, 5);
      assert.equal(byType("usage").costUsd, 0.01);
      assert.deepEqual(byType("subagent.completed").result, { ok: true });
      for (let i = 1; i < events.length; i++) assert.ok(events[i]!.at >= events[i - 1]!.at, "events are in time order");
      // The stream replays from the start for a late reader, and ends.
      assert.deepEqual((await collect(handle)).map(label), events.map(label));
      const row = await record(handle.id);
      assert.deepEqual(row.usage, { tokens: 5, costUsd: 0.01, turns: 1 });
      assert.equal(row.generation, events.filter((e) => e.type === "state").length, "one generation per lifecycle move");
    });

    it("terminate: state terminated, result rejects with reason terminated, nothing left running", T, async () => {
      const handle = await env.colony.spawn(ref("sleeper"), null, { isolation });
      await waitForEvent(handle, "emit:sleeping");
      assert.equal(handle.state, "running");
      const { pid } = await record(handle.id);
      if (isolation === "process") assert.ok(pid !== undefined && alive(pid));
      await handle.terminate({ graceMs: 2_000 });
      assert.equal(handle.state, "terminated");
      await assert.rejects(handle.result, failedWith("terminated"));
      const events = (await collect(handle)).map(label);
      assert.deepEqual(events.slice(-2), ["state:terminated", "subagent.failed:terminated"]);
      const row = await record(handle.id);
      assert.equal(row.state, "terminated");
      assert.equal(row.reason, "terminated");
      assert.ok(row.endedAt !== undefined);
      if (pid !== undefined) await waitFor(() => !alive(pid), 5_000, `process ${pid} to exit`);
      await assert.rejects(handle.signal("too late"), failedWith("terminated"));
    });

    it("a parent terminates its child through the child's handle", T, async () => {
      const parent = await env.colony.spawn(ref("terminatorParent"), { isolation }, { isolation });
      const out = (await parent.result) as { stateBefore: string; stateAfter: string; outcome: { ok: boolean; reason: string; code: string }; events: string[] };
      assert.equal(out.stateBefore, "running");
      assert.equal(out.stateAfter, "terminated");
      assert.equal(out.outcome.ok, false);
      assert.equal(out.outcome.reason, "terminated");
      assert.equal(out.outcome.code, "SUBAGENT_TERMINATED");
      assert.deepEqual(out.events.slice(-2), ["state:terminated", "subagent.failed"]);
      const [child] = await env.colony.agents.list({ parentId: parent.id });
      assert.deepEqual([child!.name, child!.state, child!.reason], ["doomed", "terminated", "terminated"]);
      if (child!.pid !== undefined) await waitFor(() => !alive(child!.pid!), 5_000, `process ${child!.pid} to exit`);
    });

    it("timeoutMs: a child with no result in time fails with reason timeout", T, async () => {
      const handle = await env.colony.spawn(ref("sleeper"), null, { isolation, timeoutMs: 300 });
      await assert.rejects(handle.result, failedWith("timeout", /within 300 ms/));
      assert.equal(handle.state, "failed");
      assert.deepEqual((await collect(handle)).map(label).slice(-2), ["state:failed", "subagent.failed:timeout"]);
      const row = await record(handle.id);
      assert.equal(row.reason, "timeout");
      if (row.pid !== undefined) await waitFor(() => !alive(row.pid!), 5_000, `process ${row.pid} to exit`);
    });

    it("an agent that throws fails with reason error and its message", T, async () => {
      const handle = await env.colony.spawn(ref("thrower"), { message: "kaput" }, { isolation });
      await assert.rejects(handle.result, failedWith("error", /kaput/));
      const events = await collect(handle);
      const last = events.at(-1)!;
      assert.equal(last.type, "subagent.failed");
      assert.equal(last.type === "subagent.failed" && last.reason, "error");
      const row = await record(handle.id);
      assert.equal(row.state, "failed");
      assert.match(row.error ?? "", /kaput/);
    });

    if (isolation !== "inline") {
      it("a child that never yields is forced: terminated after the grace period", T, async () => {
        const handle = await env.colony.spawn(ref("spinner"), null, { isolation });
        await waitForEvent(handle, "emit:spinning");
        const { pid } = await record(handle.id);
        await handle.terminate({ graceMs: 300 });
        await assert.rejects(handle.result, failedWith("terminated"));
        assert.equal((await record(handle.id)).state, "terminated");
        if (pid !== undefined) await waitFor(() => !alive(pid), 5_000, `process ${pid} to be killed`);
      });

      it("a child that never yields still times out", T, async () => {
        const handle = await env.colony.spawn(ref("spinner"), null, { isolation, timeoutMs: 500 });
        await assert.rejects(handle.result, failedWith("timeout"));
      });
    }

    it("context isolation: a child that mutates its input and globals changes nothing in the parent", T, async () => {
      const input = { list: ["parent"], nested: { value: "original" } };
      const touchedBefore = moduleState.touched;
      delete (globalThis as Record<string, unknown>).colonyFixtureGlobal;
      const handle = await env.colony.spawn(ref("mutator"), input, { isolation });
      const result = (await handle.result) as { input: typeof input };
      // The child saw and changed its own copy ...
      assert.deepEqual(result.input, { list: ["parent", "child"], nested: { value: "changed by the child" } });
      // ... and the parent's object is as it was.
      assert.deepEqual(input, { list: ["parent"], nested: { value: "original" } });
      if (isolation === "inline") {
        // Same event loop, so the same module: but the result the parent got is a copy too.
        assert.notEqual(lastReturned.value, result);
        result.input.list.push("parent again");
        assert.deepEqual((lastReturned.value as typeof result).input.list, ["parent", "child"]);
        delete (globalThis as Record<string, unknown>).colonyFixtureGlobal;
      } else {
        assert.equal((globalThis as Record<string, unknown>).colonyFixtureGlobal, undefined, "the child's global is its own");
        assert.equal(moduleState.touched, touchedBefore, "the child's module state is its own");
        assert.ok(!moduleState.list.includes(handle.id));
      }
    });

    it("turns: ctx.turn counts up, signals land in the inbox between turns, done ends it", T, async () => {
      const handle = await env.colony.spawn(ref("turner"), { pauseMs: 20 }, { isolation });
      await waitForEvent(handle, "turn:3");
      await handle.signal({ stop: true });
      const result = (await handle.result) as { turns: number[]; signals: unknown[] };
      const n = result.turns.length;
      assert.ok(n >= 3);
      assert.deepEqual(result.turns, Array.from({ length: n }, (_, i) => i + 1));
      assert.deepEqual(result.signals, [{ stop: true }]);

      const events = (await collect(handle)).map(label);
      assert.deepEqual(events.filter((e) => e.startsWith("turn:")), result.turns.map((t) => `turn:${t}`));
      assert.deepEqual(events.filter((e) => e.startsWith("emit:")), result.turns.map(() => "emit:turn"));
      // Between two turns the agent waits, then runs again.
      const states = events.filter((e) => e.startsWith("state:"));
      assert.deepEqual(states, ["state:running", ...result.turns.slice(1).flatMap(() => ["state:waiting", "state:running"]), "state:succeeded"]);
      const row = await record(handle.id);
      assert.equal(row.usage.turns, n);
      assert.equal(row.generation, states.length);
    });
  });
}

describe("malformed messages from a host", () => {
  it("are dropped and counted in the agent's events; the agent and its runtime go on", T, async () => {
    const handle = await env.colony.spawn(ref("garbler"), null, { isolation: "thread" });
    assert.equal(await handle.result, "still fine");
    const dropped = (await collect(handle)).filter((e) => e.type === "log" && e.message.startsWith("dropped malformed message"));
    assert.equal(dropped.length, 3);
    const [row] = (await env.colony.agents.list()).filter((r) => r.id === handle.id);
    assert.equal(row!.usage.tokens, 0, "the negative usage was not counted");
  });
});

describe("an ended agent", () => {
  it("is forgotten by its owner's runtime but stays in the registry; its handle still answers", T, async () => {
    const handle = await env.colony.spawn(ref("echo"), { n: 1 }, { isolation: "inline" });
    await handle.result;
    await handle.terminate(); // a no-op on an ended child, not an error
    await assert.rejects(handle.signal("late"), (error: Error) => error instanceof SubAgentError && /has ended \(succeeded\)/.test(error.message));
    const [row] = (await env.colony.agents.list()).filter((r) => r.id === handle.id);
    assert.equal(row!.state, "succeeded");
  });
});

describe("where a referenced module is found", () => {
  it("new URL(…, import.meta.url) and file: URLs find it from the calling file, whatever the current directory; a relative path from the current directory says which file it looked for", T, async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), "colony-cwd-"));
    const before = process.cwd();
    process.chdir(elsewhere);
    try {
      const url = new URL("./fixtures/worker-agents.ts", import.meta.url);
      for (const isolation of ["inline", "thread", "process"] as const) {
        for (const module of [url, url.href]) {
          const handle = await env.colony.spawn({ module, export: "echo" }, { n: 1 }, { isolation });
          assert.deepEqual(((await handle.result) as { input: unknown }).input, { n: 1 }, `${isolation}, ${typeof module}`);
        }
      }
      const lost = await env.colony.spawn({ module: "./fixtures/worker-agents.ts", export: "echo" }, null, { isolation: "thread" });
      await assert.rejects(lost.result, (error: unknown) => String(error).includes(join(elsewhere, "fixtures/worker-agents.ts")));
    } finally {
      process.chdir(before);
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});

describe("a child spawned as its parent is stopped", () => {
  it("does not start under the stopped parent: it ends terminated, and its code never runs", T, async () => {
    // The child's registry insert is held until the parent's stop has begun: the window in which
    // the stop's cascade could not see the child yet.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let childInsertAsked!: () => void;
    const childInsert = new Promise<void>((resolve) => (childInsertAsked = resolve));
    const inner = memoryBackend();
    const backend: BackendFactory = {
      ...inner,
      async open() {
        const opened = await inner.open();
        const insert = opened.agents.insert.bind(opened.agents);
        opened.agents.insert = async (record: AgentRecord) => {
          if (record.name === "late-child") {
            childInsertAsked();
            await held;
          }
          return insert(record);
        };
        return opened;
      },
    };
    const colony = createColony({ backend });
    try {
      let childRan = false;
      const child = { name: "late-child", run: () => void (childRan = true) };
      let childHandle: Promise<SubAgentHandle> | undefined;
      const parent = await colony.spawn({
        name: "parent",
        run: async (ctx: SubAgentContext) => {
          childHandle = ctx.spawn(child, null);
          await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
        },
      });
      await childInsert;
      const stopping = parent.terminate();
      release();
      await stopping;
      // The parent's spawn is answered no more (it has ended); the child is in the registry, ended.
      await assert.rejects(childHandle!, /parent: it has ended/);
      const record = await waitFor(async () => (await colony.agents.list()).find((a) => a.name === "late-child" && a.state === "terminated"), 10_000, "the late child to end terminated");
      assert.match(record.error ?? "", /its parent parent was stopped as it spawned this/);
      assert.equal(childRan, false, "the child's code never ran");
    } finally {
      release();
      await colony.close();
    }
  });
});
