/**
 * Supervisors (src/runtime/agents/supervisor.ts) through `colony.supervise`, on the memory
 * backend: spec checks, each strategy with real restarts (inline children, and thread and process
 * children that count their runs on a board), each restart type, the intensity limit and its
 * escalation, and stop(). Nothing waits on the clock for an outcome: tests wait for the
 * supervisor's events, and timing only ever spaces failures apart (a slower machine spaces them more).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ConfigError,
  SupervisorEscalationError,
  type AgentRecord,
  type Colony,
  type SubAgent,
  type SubAgentContext,
  type Supervisor,
  type SupervisorEvent,
} from "../src/index.ts";
import { withColony } from "./fixtures/helpers.ts";
import { SUPERVISED, type FlakyInput } from "./fixtures/supervised.ts";


function stopped(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/**
 * An inline agent that counts its runs; `behave` says what run n does. `fail` throws, `wait`
 * waits until the agent is stopped, `done` returns at once.
 */
function counted(name: string, behave: (run: number) => "fail" | "wait" | "done" | Promise<"fail" | "wait" | "done">) {
  const state = { runs: 0 };
  const agent: SubAgent = {
    name,
    async run(ctx: SubAgentContext) {
      const run = ++state.runs;
      const what = await behave(run);
      if (what === "fail") throw new Error(`${name} run ${run} fails on purpose`);
      if (what === "wait") await stopped(ctx.signal);
      return { run };
    },
  };
  return { agent, get runs() {
    return state.runs;
  } };
}

const failFirst = (n: number) => (run: number) => (run <= n ? "fail" : "wait");

/** Reads the supervisor's events until `enough` holds for what was seen; fails after `limitMs`. */
async function eventsUntil(sup: Supervisor, enough: (seen: SupervisorEvent[]) => boolean, limitMs = 10_000): Promise<SupervisorEvent[]> {
  const seen: SupervisorEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  const read = (async () => {
    for await (const event of sup.events) {
      seen.push(event);
      if (enough(seen)) return seen;
    }
    throw new Error(`the events ended first: ${brief(seen)}`);
  })();
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up after ${limitMs} ms: ${brief(seen)}`)), limitMs);
  });
  try {
    return await Promise.race([read, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every event, once the supervisor has ended. */
async function allEvents(sup: Supervisor): Promise<SupervisorEvent[]> {
  const seen: SupervisorEvent[] = [];
  for await (const event of sup.events) seen.push(event);
  return seen;
}

/** Events as `type child reason`, to compare sequences. */
const brief = (events: SupervisorEvent[]) => events.map((e) => [e.type, e.child, e.reason].filter(Boolean).join(" "));

const count = (events: SupervisorEvent[], type: SupervisorEvent["type"], child?: string) =>
  events.filter((e) => e.type === type && (child === undefined || e.child === child)).length;

async function records(colony: Colony): Promise<Map<string, AgentRecord>> {
  return new Map((await colony.agents.list()).map((r) => [r.id, r]));
}

const FINAL = new Set(["succeeded", "failed", "terminated"]);

await describe("spec checks", async () => {
  await it("refuses a bad spec with a ConfigError that says what is wrong, before anything starts", async () => {
    await withColony(async (colony) => {
      const w = counted("w", () => "wait").agent;
      const bad: [unknown, RegExp][] = [
        [undefined, /supervise takes \{ strategy, children/],
        [{ strategy: "one_for_some", children: [{ agent: w, restart: "permanent" }] }, /strategy is one_for_one, one_for_all or rest_for_one, got "one_for_some"/],
        [{ strategy: "one_for_one", children: [] }, /at least one child; children is empty/],
        [{ strategy: "one_for_one" }, /children is an array/],
        [{ strategy: "one_for_one", children: [{ agent: w, restart: "always" }] }, /children\[0\] \("w"\): restart is permanent, transient or temporary, got "always"/],
        [{ strategy: "one_for_one", children: [{ agent: w }] }, /children\[0\] \("w"\): restart is permanent, transient or temporary, got undefined/],
        [
          { strategy: "one_for_one", children: [{ agent: w, restart: "permanent" }, { agent: w, restart: "temporary" }] },
          /children\[0\] and children\[1\] both have the id "w"; give each child a distinct id/,
        ],
        [
          { strategy: "one_for_one", children: [{ agent: w, restart: "permanent", id: "x" }, { agent: w, restart: "permanent", id: "x" }] },
          /children\[0\] and children\[1\] both have the id "x"/,
        ],
        [{ strategy: "one_for_one", children: [{ agent: w, restart: "permanent", id: "" }] }, /children\[0\]: id is a non-empty string/],
        [{ strategy: "one_for_one", children: [{ agent: {}, restart: "permanent" }] }, /children\[0\]: agent is an agent object/],
        [
          { strategy: "one_for_one", children: [{ agent: w, restart: "permanent", options: { isolation: "thread" } }] },
          /children\[0\] \("w"\): a thread child loads its code itself/,
        ],
        [{ strategy: "one_for_one", maxRestarts: -1, children: [{ agent: w, restart: "permanent" }] }, /maxRestarts is a whole number >= 0, got -1/],
        [{ strategy: "one_for_one", withinMs: 0, children: [{ agent: w, restart: "permanent" }] }, /withinMs is a number of milliseconds > 0, got 0/],
      ];
      for (const [spec, message] of bad) {
        await assert.rejects(colony.supervise(spec as never), (error: unknown) => {
          assert.ok(error instanceof ConfigError, `${String(error)} is a ConfigError`);
          assert.match(error.message, message);
          return true;
        });
      }
      assert.deepEqual(await colony.agents.list(), []);
    });
  });

  await it("a child that cannot start stops those started before it, and supervise rejects with the spawn's error", async () => {
    await withColony(async (colony) => {
      const a = counted("a", () => "wait");
      await assert.rejects(
        colony.supervise({
          strategy: "one_for_one",
          children: [
            { agent: a.agent, restart: "permanent" },
            { agent: counted("b", () => "wait").agent, restart: "permanent", options: { timeoutMs: -5 } },
          ],
        }),
        (error: unknown) => error instanceof ConfigError && /timeoutMs/.test(error.message),
      );
      const list = await colony.agents.list();
      assert.deepEqual(list.map((r) => [r.name, r.state]), [["a", "terminated"]]);
    });
  });
});

await describe("strategies", async () => {
  await it("one_for_one restarts only the child that failed", async () => {
    await withColony(async (colony) => {
      const a = counted("a", failFirst(2));
      const b = counted("b", () => "wait");
      const sup = await colony.supervise({
        strategy: "one_for_one",
        children: [
          { agent: a.agent, restart: "permanent" },
          { agent: b.agent, restart: "permanent" },
        ],
      });
      const firstB = sup.children().get("b")!.id;
      const seen = await eventsUntil(sup, (s) => count(s, "restarted", "a") === 2);
      assert.deepEqual(brief(seen), [
        "started a start",
        "started b start",
        "child.ended a error",
        "restarted a error",
        "child.ended a error",
        "restarted a error",
      ]);
      assert.equal(seen[3]!.trigger, "a");
      assert.deepEqual([...sup.children().keys()], ["a", "b"]);
      assert.equal(sup.children().get("b")!.id, firstB);
      assert.equal(b.runs, 1);

      await sup.stop();
      await sup.result;
      assert.equal(a.runs, 3);
      const list = await colony.agents.list();
      assert.deepEqual(list.map((r) => [r.name, r.state, r.reason]).sort(), [
        ["a", "failed", "error"],
        ["a", "failed", "error"],
        ["a", "terminated", "terminated"],
        ["b", "terminated", "terminated"],
      ]);
    });
  });

  await it("one_for_all terminates the others (last first) and restarts all of them in spec order", async () => {
    await withColony(async (colony) => {
      const a = counted("a", () => "wait");
      const b = counted("b", failFirst(1));
      const c = counted("c", () => "wait");
      const sup = await colony.supervise({
        strategy: "one_for_all",
        children: [a, b, c].map((x) => ({ agent: x.agent, restart: "permanent" as const })),
      });
      const before = new Map([...sup.children()].map(([id, h]) => [id, h.id]));
      const seen = await eventsUntil(sup, (s) => count(s, "restarted") === 3);
      assert.deepEqual(brief(seen.slice(3)), [
        "child.ended b error",
        "child.ended c shutdown",
        "child.ended a shutdown",
        "restarted a error",
        "restarted b error",
        "restarted c error",
      ]);
      assert.ok(seen.slice(6).every((e) => e.trigger === "b"));
      assert.deepEqual([a.runs, b.runs, c.runs], [2, 2, 2]);
      const registry = await records(colony);
      for (const id of ["a", "c"]) assert.equal(registry.get(before.get(id)!)!.state, "terminated");
      for (const [id, handle] of sup.children()) {
        assert.notEqual(handle.id, before.get(id));
        assert.equal(registry.get(handle.id)!.state, "running");
      }
      await sup.stop();
    });
  });

  await it("rest_for_one restarts the failed child and those after it, here as process children counting runs on a board", async () => {
    await withColony(async (colony) => {
      const board = await colony.board("sup-rest");
      const child = (id: string, input: Omit<FlakyInput, "key">) => ({
        id,
        agent: { module: SUPERVISED, export: "flaky" },
        input: { key: id, ...input },
        restart: "permanent" as const,
        options: { isolation: "process" as const, board: "sup-rest" },
      });
      const sup = await colony.supervise({
        strategy: "rest_for_one",
        children: [child("a", { failures: 0, wait: true }), child("b", { failures: 1, wait: true, after: ["a", "c"] }), child("c", { failures: 0, wait: true })],
      });
      const firstA = sup.children().get("a")!.id;
      const firstC = sup.children().get("c")!.id;
      const seen = await eventsUntil(sup, (s) => count(s, "restarted") === 2);
      assert.deepEqual(brief(seen.slice(3)), ["child.ended b error", "child.ended c shutdown", "restarted b error", "restarted c error"]);
      const runs = async () => Promise.all(["a", "b", "c"].map(async (k) => (await board.get<number>(k))?.value));
      // b fails only once a and c have counted their first run; the new b and c count theirs as they start.
      for (let i = 0; (await runs()).join() !== "1,2,2"; i++) {
        assert.ok(i < 500, `runs on the board: ${(await runs()).join()}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(sup.children().get("a")!.id, firstA);
      const registry = await records(colony);
      assert.equal(registry.get(firstC)!.state, "terminated");
      assert.equal(registry.get(firstA)!.state, "running");
      assert.ok(registry.get(firstA)!.pid! > 0);
      await sup.stop();
      const after = await colony.agents.list();
      assert.equal(after.length, 5);
      assert.ok(after.every((r) => FINAL.has(r.state)), JSON.stringify(after.map((r) => [r.name, r.state])));
    });
  });

  await it("one_for_one with thread children that crash: a transient child is restarted until it returns, then the supervisor is done", async () => {
    await withColony(async (colony) => {
      const board = await colony.board("sup-thread");
      const sup = await colony.supervise({
        strategy: "one_for_one",
        children: [
          {
            id: "worker",
            agent: { module: SUPERVISED, export: "flaky" },
            input: { key: "worker", failures: 2, how: "exit" } satisfies FlakyInput,
            restart: "transient",
            options: { isolation: "thread", board: "sup-thread" },
          },
        ],
      });
      await sup.result;
      assert.deepEqual(brief(await allEvents(sup)), [
        "started worker start",
        "child.ended worker crash",
        "restarted worker crash",
        "child.ended worker crash",
        "restarted worker crash",
        "child.ended worker normal",
        "stopped normal",
      ]);
      assert.equal((await board.get<number>("worker"))?.value, 3);
      assert.deepEqual(await sup.children().get("worker")!.result, { run: 3 });
    });
  });
});

await describe("restart types", async () => {
  await it("transient restarts after a failure only; temporary never; the supervisor is done when nothing is left to restart", async () => {
    await withColony(async (colony) => {
      const t1 = counted("t1", (run) => (run === 1 ? "fail" : "done"));
      const t2 = counted("t2", () => "done");
      const tmp = counted("tmp", () => "fail");
      const sup = await colony.supervise({
        strategy: "one_for_one",
        children: [
          { agent: t1.agent, restart: "transient" },
          { agent: t2.agent, restart: "transient" },
          { agent: tmp.agent, restart: "temporary" },
        ],
      });
      await sup.result;
      assert.deepEqual([t1.runs, t2.runs, tmp.runs], [2, 1, 1]);
      const events = await allEvents(sup);
      assert.equal(count(events, "restarted"), 1);
      assert.equal(count(events, "restarted", "t1"), 1);
      assert.equal(events.find((e) => e.child === "tmp" && e.type === "child.ended")!.reason, "error");
      assert.deepEqual(brief(events.slice(-1)), ["stopped normal"]);
    });
  });

  await it("permanent restarts even after a normal end", async () => {
    await withColony(async (colony) => {
      const p = counted("p", (run) => (run <= 2 ? "done" : "wait"));
      const sup = await colony.supervise({ strategy: "one_for_one", children: [{ agent: p.agent, restart: "permanent" }] });
      const seen = await eventsUntil(sup, (s) => count(s, "restarted") === 2);
      assert.deepEqual(
        seen.filter((e) => e.type === "restarted").map((e) => e.reason),
        ["normal", "normal"],
      );
      assert.equal(p.runs, 3);
      await sup.stop();
    });
  });

  await it("a child terminated from outside: permanent is restarted, transient is not (a termination is no failure)", async () => {
    await withColony(async (colony) => {
      const p = counted("p", () => "wait");
      const t = counted("t", () => "wait");
      const sup = await colony.supervise({
        strategy: "one_for_one",
        children: [
          { agent: p.agent, restart: "permanent" },
          { agent: t.agent, restart: "transient" },
        ],
      });
      await colony.agents.terminate(sup.children().get("t")!.id, { graceMs: 100 });
      await colony.agents.terminate(sup.children().get("p")!.id, { graceMs: 100 });
      const seen = await eventsUntil(sup, (s) => count(s, "restarted") === 1);
      assert.deepEqual(brief(seen.slice(2)), ["child.ended t terminated", "child.ended p terminated", "restarted p terminated"]);
      assert.deepEqual([p.runs, t.runs], [2, 1]);
      await sup.stop();
      assert.deepEqual(brief((await allEvents(sup)).slice(5)), ["child.ended p shutdown", "stopped stop"]);
    });
  });

  await it("a group restart drops temporary children and starts transient ones again, even one that had ended normally (as OTP does)", async () => {
    await withColony(async (colony) => {
      const once = counted("once", () => "done");
      const tmp = counted("tmp", () => "wait");
      const x = counted("x", failFirst(1));
      const sup = await colony.supervise({
        strategy: "one_for_all",
        children: [
          { agent: once.agent, restart: "transient" },
          { agent: tmp.agent, restart: "temporary" },
          { agent: x.agent, restart: "permanent" },
        ],
      });
      const seen = await eventsUntil(sup, (s) => count(s, "restarted") === 2 && count(s, "child.ended", "once") === 2);
      assert.deepEqual(
        seen.filter((e) => e.type === "restarted").map((e) => e.child),
        ["once", "x"],
      );
      assert.equal(seen.find((e) => e.child === "tmp" && e.type === "child.ended")!.reason, "shutdown");
      assert.deepEqual([once.runs, tmp.runs, x.runs], [2, 1, 2]);
      await sup.stop();
    });
  });
});

await describe("intensity and escalation", async () => {
  await it("more than maxRestarts restarts within withinMs: every child is terminated, then result rejects", async () => {
    await withColony(async (colony) => {
      const x = counted("x", () => "fail");
      const y = counted("y", () => "wait");
      const sup = await colony.supervise({
        strategy: "one_for_one",
        maxRestarts: 2,
        withinMs: 60_000,
        name: "fragile",
        children: [
          { agent: x.agent, restart: "permanent" },
          { agent: y.agent, restart: "permanent" },
        ],
      });
      await assert.rejects(sup.result, (error: unknown) => {
        assert.ok(error instanceof SupervisorEscalationError);
        assert.equal(error.code, "SUPERVISOR_ESCALATED");
        assert.equal(error.child, "x");
        assert.equal(error.reason, "intensity");
        assert.equal(error.supervisorId, sup.id);
        assert.match(error.message, /supervisor fragile escalated: 3 restarts within 60000 ms \(at most 2\)/);
        return true;
      });
      assert.equal(x.runs, 3);
      const events = await allEvents(sup);
      assert.equal(count(events, "restarted"), 2);
      assert.deepEqual(brief(events.slice(-3)), ["child.ended x error", "child.ended y shutdown", "escalated x intensity"]);
      const list = await colony.agents.list();
      assert.ok(list.every((r) => FINAL.has(r.state)));
      assert.deepEqual(list.filter((r) => r.name === "y").map((r) => r.state), ["terminated"]);
      // Once escalated, stop() has nothing left to do.
      await sup.stop();
    });
  });

  await it("maxRestarts 0 escalates at the first end that calls for a restart", async () => {
    await withColony(async (colony) => {
      const x = counted("x", () => "fail");
      const sup = await colony.supervise({ strategy: "rest_for_one", maxRestarts: 0, children: [{ agent: x.agent, restart: "transient" }] });
      await assert.rejects(sup.result, SupervisorEscalationError);
      assert.equal(x.runs, 1);
    });
  });

  await it("restarts older than withinMs do not count", async () => {
    await withColony(async (colony) => {
      // Each failing run lasts at least 60 ms, so no two restarts fall within 20 ms of each other.
      const x = counted("x", async (run) => {
        if (run > 3) return "wait";
        await new Promise((resolve) => setTimeout(resolve, 60));
        return "fail";
      });
      const sup = await colony.supervise({ strategy: "one_for_one", maxRestarts: 1, withinMs: 20, children: [{ agent: x.agent, restart: "permanent" }] });
      await eventsUntil(sup, (s) => count(s, "restarted") === 3);
      assert.equal(x.runs, 4);
      await sup.stop();
      await sup.result;
    });
  });
});

await describe("stop", async () => {
  await it("terminates every child last first, resolves result, ends the events; a second stop does nothing", async () => {
    await withColony(async (colony) => {
      const kids = ["a", "b", "c"].map((n) => counted(n, () => "wait"));
      const sup = await colony.supervise({
        strategy: "one_for_all",
        children: kids.map((k) => ({ agent: k.agent, restart: "permanent" as const })),
      });
      await sup.stop();
      await sup.result;
      assert.deepEqual(brief(await allEvents(sup)), [
        "started a start",
        "started b start",
        "started c start",
        "child.ended c shutdown",
        "child.ended b shutdown",
        "child.ended a shutdown",
        "stopped stop",
      ]);
      const list = await colony.agents.list();
      assert.deepEqual(list.map((r) => r.state), ["terminated", "terminated", "terminated"]);
      assert.ok([...sup.children().values()].every((h) => h.state === "terminated"));
      await sup.stop();
      assert.deepEqual(kids.map((k) => k.runs), [1, 1, 1]);
    });
  });

  await it("a child that fails as the supervisor stops is not restarted; concurrent stop() calls share one end", async () => {
    await withColony(async (colony) => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const a = counted("a", () => "wait");
      const b = counted("b", async () => {
        await gate;
        return "fail" as const;
      });
      const sup = await colony.supervise({
        strategy: "one_for_one",
        children: [
          { agent: a.agent, restart: "permanent" },
          { agent: b.agent, restart: "permanent" },
        ],
      });
      const stopping = sup.stop();
      release();
      await Promise.all([stopping, sup.stop()]);
      await sup.result;
      const events = await allEvents(sup);
      assert.equal(count(events, "restarted"), 0);
      assert.equal(count(events, "stopped"), 1);
      assert.deepEqual([a.runs, b.runs], [1, 1]);
    });
  });
});
