/**
 * Delivery policies: how a child's events and end reach its parent's inbox — streaming (events
 * as they happen), immediate (the end at once), deferred (the end at the next turn boundary),
 * on_demand (nothing; the parent pulls a report, which survives a restart) — and their
 * precedence: spawn option > agent definition > streaming. Run with parents and children in
 * different isolations, so the inbox crosses threads and processes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Isolation } from "../src/index.ts";
import { sqliteColony, colonyPerFile } from "./fixtures/helpers.ts";
import { ref } from "./fixtures/subagents.ts";

const T = { timeout: 30_000 };

const env = colonyPerFile("colony-delivery-");

const PAIRS: [parent: Isolation, child: Isolation][] = [
  ["inline", "inline"],
  ["thread", "process"],
  ["process", "thread"],
];

for (const [parentIsolation, childIsolation] of PAIRS) {
  describe(`delivery to a ${parentIsolation} parent from ${childIsolation} children`, () => {
    const spawnParent = (agent: string, input: Record<string, unknown> = {}) =>
      env.colony.spawn(ref(agent), { isolation: childIsolation, ...input }, { isolation: parentIsolation });

    it("streaming: the child's events are in the parent's inbox while it runs, then subagent.completed", T, async () => {
      const parent = await spawnParent("streamingParent");
      const out = (await parent.result) as { whileRunning: string[]; stateWhileRunning: string; after: string[]; result: unknown; childEvents: string[] };
      assert.equal(out.stateWhileRunning, "running");
      // The parent's handle of the child saw every event too, from the first.
      assert.deepEqual(out.childEvents, ["state:running", "turn", "emit:waiting", "emit:released", "state:succeeded", "subagent.completed"]);
      assert.deepEqual(out.whileRunning, ["event:gated:state:running", "event:gated:turn", "event:gated:emit:waiting"]);
      assert.ok(!out.whileRunning.some((m) => m.startsWith("completed")), "no completion before the child ended");
      assert.deepEqual(out.after, [
        ...out.whileRunning,
        "event:gated:emit:released",
        "event:gated:state:succeeded",
        "completed:gated",
      ]);
      assert.equal(out.result, "gated done");
    });

    it("immediate: the completion is in the inbox as soon as the child ends, in the same turn, with no events", T, async () => {
      const parent = await spawnParent("immediateParent");
      const out = (await parent.result) as { turn1: { turn: number; inbox: string[]; completed: { name: string; result: { input: unknown } } }; turn2: string[] };
      assert.equal(out.turn1.turn, 1, "delivered before the parent's next turn");
      assert.deepEqual(out.turn1.inbox, ["completed:echo"]);
      assert.equal(out.turn1.completed.name, "echo");
      assert.deepEqual(out.turn1.completed.result.input, { n: 1 });
      assert.deepEqual(out.turn2, ["completed:echo"], "and nothing more arrives at the turn boundary");
    });

    it("deferred: nothing in the inbox during the turn; both completions at the next turn boundary", T, async () => {
      const parent = await spawnParent("deferredParent");
      const out = (await parent.result) as { turn1: string[]; states: string[]; turn2: string[]; turn: number };
      assert.deepEqual(out.states, ["succeeded", "succeeded"], "both children had ended during turn 1");
      assert.deepEqual(out.turn1, [], "nothing delivered before the turn boundary");
      assert.equal(out.turn, 2);
      assert.deepEqual(out.turn2, ["completed:first", "completed:second"], "in the order the children ended");
    });

    it("on_demand: nothing in the inbox; ctx.reports.get(childId) has the result", T, async () => {
      const parent = await spawnParent("onDemandParent");
      const out = (await parent.result) as { childId: string; inbox: string[]; report: unknown };
      assert.deepEqual(out.inbox, []);
      assert.deepEqual(out.report, {
        status: "succeeded",
        result: { input: { n: 7 }, name: "pulled", depth: 1, parentId: parent.id, pid: (out.report as { result: { pid: number } }).result.pid, turn: 1 },
      });
      assert.deepEqual(await env.colony.reports.get(out.childId), out.report);
    });

    it("on_demand: a failed child leaves a failed report", T, async () => {
      const parent = await spawnParent("onDemandParent", { fail: true });
      const out = (await parent.result) as { inbox: string[]; report: { status: string; reason: string; error: string } };
      assert.deepEqual(out.inbox, []);
      assert.equal(out.report.status, "failed");
      assert.equal(out.report.reason, "error");
      assert.match(out.report.error, /boom/);
    });

    it("precedence: spawn option > agent definition > streaming", T, async () => {
      const parent = await spawnParent("precedenceParent", { byObject: childIsolation === "inline" && parentIsolation === "inline" });
      const out = (await parent.result) as { turn1: string[]; turn2: string[] };
      const turn1 = out.turn1;
      // by-default streams: its events, then its completion.
      assert.deepEqual(turn1.filter((m) => m.includes("by-default")), [
        "event:by-default:state:running",
        "event:by-default:turn",
        "event:by-default:state:succeeded",
        "completed:by-default",
      ]);
      // by-option is immediate (the option beats the definition's deferred): only its completion.
      assert.deepEqual(turn1.filter((m) => m.includes("by-option")), ["completed:by-option"]);
      // by-definition is deferred: nothing during the turn ...
      assert.deepEqual(turn1.filter((m) => m.includes("by-definition")), []);
      // ... and its completion at the next turn boundary.
      assert.ok(out.turn2.includes("completed:by-definition"), `turn 2 inbox: ${out.turn2.join(", ")}`);
      assert.equal(out.turn2.filter((m) => m === "completed:by-definition").length, 1);
    });
  });
}

describe("on_demand reports after a restart", () => {
  it("a new colony on the same SQLite file returns the report by the child's id", T, async () => {
    const path = `${env.dir}/restart.db`;
    const first = sqliteColony(path);
    const parent = await first.spawn(ref("onDemandParent"), { isolation: "process" }, { isolation: "thread" });
    const { childId, report } = (await parent.result) as { childId: string; report: unknown };
    await first.close();

    const second = sqliteColony(path);
    try {
      assert.deepEqual(await second.reports.get(childId), report);
      assert.equal((await second.reports.get(childId))?.status, "succeeded");
      assert.equal(await second.reports.get("agent-unknown"), undefined);
      const rows = await second.agents.list({ parentId: parent.id });
      assert.deepEqual(rows.map((r) => [r.id, r.state, r.isolation]), [[childId, "succeeded", "process"]]);
    } finally {
      await second.close();
    }
  });
});
