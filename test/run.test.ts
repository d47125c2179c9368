/**
 * The stigmergic loop (src/core/run.ts) through the public API, on the memory backend: stop
 * reasons, one snapshot per step, ordering and concurrency, failures, step records, usage and
 * definition checks. Timing is never asserted; agents that must overlap wait on each other or on
 * event-loop turns, not on clocks.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setImmediate as nextTurn } from "node:timers/promises";
import {
  ConfigError,
  NotFoundError,
  defineAgent,
  defineRun,
  type Agent,
  type AgentContext,
  type BoardView,
  type RunDefinition,
  type StepRecord,
} from "../src/index.ts";
import { withColony } from "./fixtures/helpers.ts";


async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await nextTurn();
}

const firedNames = (steps: StepRecord[]) => steps.map((s) => s.fired.map((f) => f.agent));

/** An agent that fires every step (a trigger that is always true) and writes nothing. */
const idler = (name: string, run: Agent["run"] = () => {}): Agent => ({ name, trigger: () => true, run });

/** An agent that fires every step and writes its step number under its own key. */
const ticker = (name: string): Agent => ({
  name,
  trigger: () => true,
  run: async (ctx) => void (await ctx.board.write(`tick/${name}`, ctx.step)),
});

await describe("stop reasons", async () => {
  await it("goal: checked before the first step, so no agent fires when it already holds", async () => {
    await withColony(async (colony) => {
      let ran = 0;
      const result = await colony.run({
        board: "goal-before",
        seed: { done: true },
        agents: [idler("never", () => void ran++)],
        goal: (v) => v.has("done"),
      });
      assert.equal(result.stopReason, "goal");
      assert.equal(result.steps.length, 0);
      assert.equal(ran, 0);
    });
  });

  await it("goal: checked after a step, so reaching it on the last allowed step is goal, not max_steps", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "goal-after",
        agents: [
          { name: "a", run: async (ctx) => void (await ctx.board.write("a", 1)) },
          { name: "b", trigger: (v) => v.has("a") && !v.has("b"), run: () => ({ writes: { b: 2 } }) },
        ],
        goal: (v) => v.has("b"),
        maxSteps: 2,
      });
      assert.equal(result.stopReason, "goal");
      assert.deepEqual(firedNames(result.steps), [["a"], ["b"]]);
    });
  });

  await it("goal: a step that reaches the goal ends the run with goal even if an agent failed in it", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "goal-then-throw",
        agents: [
          {
            name: "finisher",
            run: async (ctx) => {
              await ctx.board.write("answer", 42);
              throw new Error("lost the connection after writing");
            },
          },
        ],
        goal: (v) => v.has("answer"),
        deadlockAfter: 1,
      });
      assert.equal(result.stopReason, "goal");
      assert.equal(result.steps.length, 1);
      assert.match(result.steps[0]!.fired[0]!.error ?? "", /lost the connection/);
    });
  });

  await it("quiescence: no trigger fires (from the start, and after a chain runs out)", async () => {
    await withColony(async (colony) => {
      const idle = await colony.run({ board: "quiet-1", agents: [{ name: "x", trigger: () => false, run: () => {} }] });
      assert.equal(idle.stopReason, "quiescence");
      assert.equal(idle.steps.length, 0);

      const chain = await colony.run({
        board: "quiet-2",
        seed: { n: 0 },
        agents: [
          {
            name: "counter",
            trigger: (v) => (v.read<number>("n")?.value ?? 0) < 3,
            run: (ctx) => ({ writes: { n: ctx.view.read<number>("n")!.value + 1 } }),
          },
        ],
      });
      assert.equal(chain.stopReason, "quiescence");
      assert.equal(chain.steps.length, 3);
      assert.equal((await colony.board("quiet-2")).view().read("n")?.value, 3);
    });
  });

  await it("deadlock: agents fire but the board is unchanged for deadlockAfter steps", async () => {
    await withColony(async (colony) => {
      let fires = 0;
      const byDefault = await colony.run({ board: "dead-1", agents: [idler("spinner", () => void fires++)] });
      assert.equal(byDefault.stopReason, "deadlock");
      assert.equal(byDefault.steps.length, 3, "deadlockAfter defaults to 3");
      assert.equal(fires, 3);
      assert.ok(byDefault.steps.every((s) => s.seq === 0 && s.fired.length === 1 && s.fired[0]!.error === undefined));

      const custom = await colony.run({ board: "dead-2", agents: [idler("spinner")], deadlockAfter: 5 });
      assert.equal(custom.stopReason, "deadlock");
      assert.equal(custom.steps.length, 5);
    });
  });

  await it("deadlock: the count is of steps in a row; a step that writes starts it again", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "dead-row",
        agents: [
          idler("sometimes", async (ctx) => {
            if (ctx.step <= 2) await ctx.board.write("k", ctx.step);
          }),
        ],
        deadlockAfter: 2,
      });
      assert.equal(result.stopReason, "deadlock");
      assert.equal(result.steps.length, 4, "steps 1-2 write, steps 3-4 do not");
      assert.deepEqual(
        result.steps.map((s) => s.seq),
        [1, 2, 2, 2],
      );
    });
  });

  await it("max_steps: an agent that keeps writing stops at maxSteps", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({ board: "max", agents: [ticker("t")], maxSteps: 4 });
      assert.equal(result.stopReason, "max_steps");
      assert.equal(result.steps.length, 4);
      assert.deepEqual(
        result.steps.map((s) => s.index),
        [1, 2, 3, 4],
      );
      assert.equal((await colony.board("max")).view().read("tick/t")?.value, 4);
    });
  });

  await it("max_steps: the default is 100", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({ board: "max-default", agents: [ticker("t")] });
      assert.equal(result.stopReason, "max_steps");
      assert.equal(result.steps.length, 100);
    });
  });

  await it("aborted: a signal fired mid-run stops it, and the agent in flight sees ctx.signal aborted", async () => {
    await withColony(async (colony) => {
      const controller = new AbortController();
      const started = Promise.withResolvers<void>();
      const seen: { before: boolean; after: boolean; reason: unknown }[] = [];
      let laterSteps = 0;
      // Abort from outside once `waiter` is in flight (step 2).
      const aborting = started.promise.then(() => controller.abort("stop now"));
      const result = await colony.run({
        board: "abort",
        agents: [
          ticker("t"),
          {
            name: "waiter",
            trigger: (v) => v.has("tick/t") && !v.has("waited"),
            run: async (ctx) => {
              const before = ctx.signal.aborted;
              const aborted = new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
              started.resolve();
              await Promise.race([aborted, turns(500)]); // bounded, so that a signal that never arrives fails instead of hanging
              seen.push({ before, after: ctx.signal.aborted, reason: ctx.signal.reason });
              await ctx.board.write("waited", true);
            },
          },
          { name: "later", trigger: (v) => v.has("waited"), run: () => void laterSteps++ },
        ],
        signal: controller.signal,
        maxSteps: 50,
      });
      await aborting;
      assert.equal(result.stopReason, "aborted");
      assert.equal(result.steps.length, 2, "the step in flight finishes and is recorded; no step after it");
      assert.deepEqual(seen, [{ before: false, after: true, reason: "stop now" }]);
      assert.equal(laterSteps, 0);
      assert.equal((await colony.board("abort")).view().read("waited")?.author, "waiter");
    });
  });

  await it("aborted: a signal already fired means no step runs", async () => {
    await withColony(async (colony) => {
      let ran = 0;
      const result = await colony.run({ board: "pre-abort", agents: [idler("x", () => void ran++)], signal: AbortSignal.abort() });
      assert.equal(result.stopReason, "aborted");
      assert.equal(result.steps.length, 0);
      assert.equal(ran, 0);
    });
  });

  await it("error: every agent that fired failed for deadlockAfter steps in a row", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "err",
        agents: [idler("broken", () => Promise.reject(new Error("model unavailable"))), idler("also-broken", () => { throw new TypeError("bad input"); })],
        deadlockAfter: 2,
      });
      assert.equal(result.stopReason, "error");
      assert.equal(result.steps.length, 2);
      assert.match(result.error ?? "", /broken: model unavailable/);
      assert.match(result.error ?? "", /also-broken: bad input/);
      for (const step of result.steps) {
        assert.deepEqual(
          step.fired.map((f) => f.error),
          ["model unavailable", "bad input"],
        );
      }
      const [info] = await colony.runs.list();
      assert.equal(info?.stopReason, "error");
      assert.equal(info?.error, result.error);
    });
  });

  await it("error: a failing step followed by a working one starts the count again", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "err-row",
        agents: [
          idler("flaky", async (ctx) => {
            if (ctx.step % 2 === 1) throw new Error(`odd step ${ctx.step}`);
            await ctx.board.write("even", ctx.step);
          }),
        ],
        deadlockAfter: 2,
        maxSteps: 6,
      });
      assert.equal(result.stopReason, "max_steps");
      assert.deepEqual(
        result.steps.map((s) => s.fired[0]!.error),
        ["odd step 1", undefined, "odd step 3", undefined, "odd step 5", undefined],
      );
    });
  });

  await it("error: one agent failing while a sibling succeeds is not an error stop", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "err-mixed",
        agents: [idler("broken", () => { throw new Error("nope"); }), idler("fine")],
        deadlockAfter: 2,
      });
      assert.equal(result.stopReason, "deadlock", "the board never changes, but not every agent failed");
      assert.equal(result.steps.length, 2);
    });
  });

  await it("error: a VersionConflictError is not a failure; it is recorded with conflict: true", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "conflict",
        seed: { claim: "someone else" },
        agents: [idler("claimer", async (ctx) => void (await ctx.board.write("claim", "me", { expectedVersion: 0 })))],
        deadlockAfter: 2,
      });
      assert.equal(result.stopReason, "deadlock");
      assert.equal(result.error, undefined);
      assert.equal(result.steps.length, 2);
      for (const step of result.steps) {
        const [record] = step.fired;
        assert.equal(record?.conflict, true);
        assert.match(record?.error ?? "", /version conflict on "claim"/);
        assert.deepEqual(record?.written, []);
      }
      const claim = (await colony.board("conflict")).view().read("claim");
      assert.equal(claim?.value, "someone else");
      assert.equal(claim?.author, "seed");
    });
  });

  await it("error: an agent's ordinary failure carries no conflict flag", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({ board: "no-flag", agents: [{ name: "x", run: () => { throw new Error("boom"); } }] });
      const record = result.steps[0]!.fired[0]!;
      assert.equal(record.error, "boom");
      assert.equal(record.conflict, undefined);
    });
  });

  await it("error: triggers that throw every step end the run with error", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "trigger-err",
        agents: [{ name: "t", trigger: () => { throw new Error("bad predicate"); }, run: () => {} }],
        deadlockAfter: 2,
      });
      assert.equal(result.stopReason, "error");
      assert.equal(result.steps.length, 2);
      assert.match(result.steps[0]!.fired[0]!.error ?? "", /trigger threw: bad predicate/);
      assert.match(result.error ?? "", /t: trigger threw: bad predicate/);
    });
  });

  await it("error: a goal that throws ends the run with error instead of rejecting", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "goal-throws",
        agents: [idler("x")],
        goal: () => {
          throw new Error("goal is broken");
        },
      });
      assert.equal(result.stopReason, "error");
      assert.equal(result.error, "goal is broken");
      assert.equal(result.steps.length, 0);
    });
  });
});

await describe("one snapshot per step", async () => {
  /**
   * Two agents each write their own key once. The second, in the same step, must see through
   * ctx.view the board as it was when the step began, even though the first has written by then.
   */
  const snapshotRun = async (parallel: boolean) =>
    withColony(async (colony) => {
      const triggerSeqs: number[][] = [];
      const ctxSeqs: Record<string, number> = {};
      let stepIndex = 0;
      let secondSaw: { viewHasA: boolean; freshHasA: boolean; freshSeq: number } | undefined;
      const firstWrote = Promise.withResolvers<void>();
      const watch = (v: BoardView) => {
        // Triggers are evaluated in list order; the first agent's trigger opens a new step.
        triggerSeqs[stepIndex]?.push(v.seq);
      };
      const first: Agent = {
        name: "first",
        priority: 1,
        trigger: (v) => {
          stepIndex = triggerSeqs.push([]) - 1;
          watch(v);
          return !v.has("a");
        },
        run: async (ctx) => {
          ctxSeqs.first = ctx.view.seq;
          await ctx.board.write("a", 1);
          firstWrote.resolve();
        },
      };
      const second: Agent = {
        name: "second",
        trigger: (v) => (watch(v), !v.has("b")),
        run: async (ctx) => {
          await firstWrote.promise; // in parallel mode, wait until the sibling has written
          ctxSeqs.second = ctx.view.seq;
          const fresh = ctx.board.view();
          secondSaw = { viewHasA: ctx.view.has("a"), freshHasA: fresh.has("a"), freshSeq: fresh.seq };
          await ctx.board.write("b", 2);
        },
      };
      const third: Agent = { name: "third", trigger: (v) => (watch(v), v.has("a") && v.has("b") && !v.has("c")), run: () => ({ writes: { c: 3 } }) };
      const result = await colony.run({ board: `snap-${parallel}`, seed: { start: true }, agents: [first, second, third], parallel });
      return { result, triggerSeqs, ctxSeqs, secondSaw };
    });

  for (const parallel of [true, false]) {
    await it(`every trigger and every ctx.view of a step see the same seq (parallel: ${parallel})`, async () => {
      const { result, triggerSeqs, ctxSeqs, secondSaw } = await snapshotRun(parallel);
      assert.equal(result.stopReason, "quiescence");
      assert.deepEqual(firedNames(result.steps), [["first", "second"], ["third"]]);
      // step 1 sees only the seed (seq 1); step 2 sees both writes (seq 3); the last look sees c (seq 4)
      assert.deepEqual(triggerSeqs, [
        [1, 1, 1],
        [3, 3, 3],
        [4, 4, 4],
      ]);
      assert.deepEqual(ctxSeqs, { first: 1, second: 1 });
      assert.deepEqual(secondSaw, { viewHasA: false, freshHasA: true, freshSeq: 2 });
      assert.deepEqual(
        result.steps.map((s) => s.seq),
        [3, 4],
      );
    });
  }

  await it("an agent that writes the key another agent's trigger waits for does not fire it in the same step", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "snap-chain",
        parallel: false,
        agents: [
          { name: "producer", priority: 1, run: () => ({ writes: { thing: 1 } }) },
          { name: "consumer", trigger: (v) => v.has("thing") && !v.has("used"), run: () => ({ writes: { used: true } }) },
        ],
      });
      assert.deepEqual(firedNames(result.steps), [["producer"], ["consumer"]]);
    });
  });
});

await describe("ordering and concurrency", async () => {
  const tracing = (name: string, events: string[], priority?: number): Agent => ({
    name,
    ...(priority !== undefined && { priority }),
    run: async () => {
      events.push(`start ${name}`);
      await turns(3);
      events.push(`end ${name}`);
    },
  });

  await it("parallel (default): every agent of a step starts before any finishes", async () => {
    await withColony(async (colony) => {
      const events: string[] = [];
      await colony.run({ board: "par", agents: ["a", "b", "c"].map((n) => tracing(n, events)) });
      assert.deepEqual(events.slice(0, 3), ["start a", "start b", "start c"]);
      assert.deepEqual(events.slice(3).sort(), ["end a", "end b", "end c"]);
    });
  });

  await it("parallel: false runs one at a time, by priority (higher first), then list order", async () => {
    await withColony(async (colony) => {
      const events: string[] = [];
      const result = await colony.run({
        board: "seq",
        parallel: false,
        agents: [tracing("a", events), tracing("b", events, 5), tracing("c", events), tracing("d", events, 5), tracing("e", events, -1)],
      });
      const order = ["b", "d", "a", "c", "e"];
      assert.deepEqual(
        events,
        order.flatMap((n) => [`start ${n}`, `end ${n}`]),
      );
      assert.deepEqual(firedNames(result.steps), [order]);
    });
  });

  await it("concurrency bounds how many agents of a step are in flight, and priority decides who starts first", async () => {
    await withColony(async (colony) => {
      let inFlight = 0;
      let maxInFlight = 0;
      const starts: string[] = [];
      const agents: Agent[] = Array.from({ length: 10 }, (_, i) => ({
        name: `w${i}`,
        priority: i === 7 ? 10 : 0,
        run: async (ctx: AgentContext) => {
          starts.push(ctx.agent);
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await turns(1 + (i % 3));
          inFlight--;
        },
      }));
      const result = await colony.run({ board: "bounded", agents, concurrency: 3 });
      assert.equal(maxInFlight, 3);
      assert.equal(starts.length, 10);
      assert.equal(starts[0], "w7");
      assert.equal(result.steps[0]!.fired.length, 10);
    });
  });

  await it("without a concurrency option, up to 16 agents run at once", async () => {
    await withColony(async (colony) => {
      let inFlight = 0;
      let maxInFlight = 0;
      const agents: Agent[] = Array.from({ length: 20 }, (_, i) => ({
        name: `w${i}`,
        run: async () => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await turns(2);
          inFlight--;
        },
      }));
      await colony.run({ board: "bounded-default", agents });
      assert.equal(maxInFlight, 16);
    });
  });
});

await describe("failures inside a step", async () => {
  await it("an agent that throws does not stop the run; its error is on its record and the siblings' writes land", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "sibling",
        agents: [
          { name: "left", run: async (ctx) => void (await ctx.board.write("left", "ok")) },
          {
            name: "bad",
            run: async () => {
              await turns(1);
              throw new Error("exploded");
            },
          },
          { name: "right", run: () => ({ writes: { right: "ok" } }) },
          { name: "next", trigger: (v) => v.has("left") && v.has("right") && !v.has("next"), run: () => ({ writes: { next: true } }) },
        ],
      });
      assert.equal(result.stopReason, "quiescence");
      assert.equal(result.steps.length, 2);
      const [left, bad, right] = result.steps[0]!.fired;
      assert.equal(bad?.agent, "bad");
      assert.equal(bad?.error, "exploded");
      assert.equal(left?.error, undefined);
      assert.equal(right?.error, undefined);
      const view = (await colony.board("sibling")).view();
      assert.deepEqual(view.keys(), ["left", "next", "right"]);
    });
  });

  await it("a thrown non-Error is recorded as its string", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "non-error",
        agents: [
          {
            name: "x",
            run: () => {
              throw "plain string";
            },
          },
        ],
      });
      assert.equal(result.steps[0]!.fired[0]!.error, "plain string");
    });
  });

  await it("a trigger that throws is recorded as an error and the other agents still fire", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "trigger-throws",
        agents: [
          { name: "fragile", trigger: (v) => (v.read<{ n: number }>("missing")!.value.n > 0), run: () => ({ writes: { fragile: 1 } }) },
          { name: "fine", run: () => ({ writes: { fine: 1 } }) },
        ],
        maxSteps: 1,
      });
      assert.equal(result.stopReason, "max_steps");
      const fired = result.steps[0]!.fired;
      assert.deepEqual(
        fired.map((f) => f.agent),
        ["fragile", "fine"],
      );
      assert.match(fired[0]!.error ?? "", /^trigger threw: /);
      assert.deepEqual(fired[0]!.written, []);
      assert.equal(fired[1]!.error, undefined);
      const view = (await colony.board("trigger-throws")).view();
      assert.deepEqual(view.keys(), ["fine"]);
    });
  });

  await it("negative usage is refused and recorded as the agent's error", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({ board: "neg-usage", agents: [{ name: "x", run: () => ({ usage: { tokens: -1 } }) }] });
      assert.match(result.steps[0]!.fired[0]!.error ?? "", /non-negative/);
      assert.equal(result.totalTokens, 0);
    });
  });
});

await describe("step records, authorship and usage", async () => {
  await it("seed entries are written by author seed before the first step", async () => {
    await withColony(async (colony) => {
      let sawSeed = false;
      await colony.run({
        board: "seeded",
        seed: { question: "why do ants form trails?", limits: { words: 200 } },
        agents: [{ name: "x", run: (ctx) => void (sawSeed = ctx.view.has("question") && ctx.view.has("limits")) }],
      });
      assert.ok(sawSeed);
      const board = await colony.board("seeded");
      const view = board.view();
      assert.deepEqual(
        view.entries().map((e) => [e.key, e.author, e.version]),
        [
          ["limits", "seed", 1],
          ["question", "seed", 1],
        ],
      );
      assert.deepEqual(view.read("limits")?.value, { words: 200 });
    });
  });

  await it("ctx.board writes and returned writes are authored by the agent; read and written are recorded", async () => {
    await withColony(async (colony) => {
      let ctxSeen: Pick<AgentContext, "agent" | "runId" | "step"> | undefined;
      const result = await colony.run({
        board: "records",
        seed: { a: 1, b: 2, c: 3, old: "x", tagged: "t" },
        agents: [
          {
            name: "worker",
            run: async (ctx) => {
              ctxSeen = { agent: ctx.agent, runId: ctx.runId, step: ctx.step };
              ctx.view.read("a");
              ctx.view.has("b");
              ctx.view.read("a"); // a second read is not listed twice
              await ctx.board.get("c");
              ctx.view.has("nope");
              await ctx.board.write("out", { ok: true }, { tags: ["result"] });
              assert.equal(await ctx.board.delete("old"), true);
              assert.equal(await ctx.board.delete("never-existed"), false);
              ctx.log("halfway");
              return { writes: { extra: 1, more: 2 } };
            },
          },
        ],
      });
      assert.equal(result.steps.length, 1);
      const record = result.steps[0]!.fired[0]!;
      assert.equal(record.agent, "worker");
      assert.deepEqual(record.read, ["a", "b", "c", "nope"]);
      assert.deepEqual(record.written, ["out", "old", "extra", "more"]);
      assert.deepEqual(record.logs, ["halfway"]);
      assert.equal(record.error, undefined);
      assert.equal(typeof record.ms, "number");
      assert.deepEqual(ctxSeen, { agent: "worker", runId: result.runId, step: 1 });

      const board = await colony.board("records");
      const view = board.view();
      assert.equal(view.has("old"), false);
      for (const key of ["out", "extra", "more"]) assert.equal(view.read(key)?.author, "worker", key);
      assert.deepEqual(view.read("out")?.tags, { result: true });
      const log = await board.history();
      assert.deepEqual(
        log.map((r) => [r.op, r.key, r.author]),
        [
          ["write", "a", "seed"],
          ["write", "b", "seed"],
          ["write", "c", "seed"],
          ["write", "old", "seed"],
          ["write", "tagged", "seed"],
          ["write", "out", "worker"],
          ["delete", "old", "worker"],
          ["write", "extra", "worker"],
          ["write", "more", "worker"],
        ],
      );
      assert.equal(result.steps[0]!.seq, 9);
    });
  });

  await it("reads through readByTag, readByAuthor and entries are recorded too", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "bulk-reads",
        seed: { s1: 1 },
        agents: [
          {
            name: "tagger",
            run: async (ctx) => void (await ctx.board.write("note", "n", { tags: ["note"] })),
          },
          {
            name: "reader",
            trigger: (v) => v.has("note") && !v.has("done"),
            run: (ctx) => {
              ctx.view.readByTag("note");
              ctx.view.readByAuthor("seed");
              return { writes: { done: true } };
            },
          },
        ],
      });
      const reader = result.steps[1]!.fired[0]!;
      assert.deepEqual(reader.read, ["note", "s1"]);
    });
  });

  await it("usage.add and returned usage sum into the record's tokens and costUsd, and into the run totals", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "usage",
        agents: [
          {
            name: "thinker",
            maxFires: 2,
            trigger: () => true,
            run: (ctx) => {
              ctx.usage.add({ tokens: 100, costUsd: 0.25 });
              ctx.usage.add({ tokens: 20 });
              ctx.usage.add({ costUsd: 0.125 });
              return { usage: { tokens: 5, costUsd: 0.5 }, writes: { [`t${ctx.step}`]: 1 } };
            },
          },
          { name: "cheap", run: () => ({ usage: { tokens: 1 } }) },
          { name: "free", run: () => {} },
        ],
      });
      assert.equal(result.stopReason, "quiescence");
      assert.deepEqual(
        result.steps.map((s) => s.fired.map((f) => [f.agent, f.tokens, f.costUsd])),
        [
          [
            ["thinker", 125, 0.875],
            ["cheap", 1, 0],
            ["free", 0, 0],
          ],
          [["thinker", 125, 0.875]],
        ],
      );
      assert.equal(result.totalTokens, 251);
      assert.equal(result.totalCostUsd, 1.75);
      const { run } = await colony.runs.get(result.runId);
      assert.equal(run.totalTokens, 251);
      assert.equal(run.totalCostUsd, 1.75);
      assert.equal(run.steps, 2);
    });
  });

  await it("usage added before an agent fails is still counted", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "usage-fail",
        agents: [
          {
            name: "x",
            run: (ctx) => {
              ctx.usage.add({ tokens: 7, costUsd: 0.5 });
              throw new Error("after spending");
            },
          },
        ],
      });
      assert.equal(result.steps[0]!.fired[0]!.tokens, 7);
      assert.equal(result.totalTokens, 7);
      assert.equal(result.totalCostUsd, 0.5);
    });
  });

  await it("maxFires caps how many steps an agent fires in; without a trigger an agent fires once", async () => {
    await withColony(async (colony) => {
      const result = await colony.run({
        board: "fires",
        agents: [
          { name: "twice", maxFires: 2, trigger: () => true, run: (ctx) => ({ writes: { [`twice${ctx.step}`]: 1 } }) },
          { name: "once", run: () => ({ writes: { once: 1 } }) },
          { name: "thrice-untriggered", maxFires: 3, run: (ctx) => ({ writes: { [`u${ctx.step}`]: 1 } }) },
        ],
      });
      assert.equal(result.stopReason, "quiescence");
      assert.deepEqual(firedNames(result.steps), [["twice", "once", "thrice-untriggered"], ["twice", "thrice-untriggered"], ["thrice-untriggered"]]);
    });
  });

  await it("a step's seq is the board's position after the step, and onStep sees each step as it is recorded", async () => {
    await withColony(async (colony) => {
      const seen: [number, number, number][] = [];
      const result = await colony.run(
        { board: "hooks", agents: [ticker("t")], maxSteps: 3 },
        { onStep: (step, run) => void seen.push([step.index, step.seq, run.steps]) },
      );
      assert.deepEqual(seen, [
        [1, 1, 1],
        [2, 2, 2],
        [3, 3, 3],
      ]);
      const stored = await colony.runs.get(result.runId);
      assert.deepEqual(stored.steps, result.steps);
      assert.equal(stored.run.status, "finished");
      assert.equal(stored.run.stopReason, "max_steps");
      assert.equal(stored.run.board, "hooks");
      assert.equal(stored.run.name, "hooks");
    });
  });

  await it("onStart hears of the run as it is recorded, before its seed is written or its goal looked at", async () => {
    await withColony(async (colony) => {
      const started: { runId: string; status: string; seq: number }[] = [];
      const board = await colony.board("started");
      const result = await colony.run(
        // The goal holds once the seed is written: no step runs.
        { board: "started", seed: { done: true }, agents: [ticker("t")], goal: (view) => view.has("done") },
        { onStart: (run) => void started.push({ runId: run.runId, status: run.status, seq: board.seq }) },
      );
      assert.deepEqual(started, [{ runId: result.runId, status: "running", seq: 0 }]);
      assert.equal(result.stopReason, "goal");
    });
  });

  await it("a run is listed with its name and board, and an unknown id is NotFoundError", async () => {
    await withColony(async (colony) => {
      const first = await colony.run({ name: "first run", board: "listing", agents: [idler("x")], deadlockAfter: 1 });
      const list = await colony.runs.list();
      assert.equal(list.length, 1);
      assert.equal(list[0]?.runId, first.runId);
      assert.equal(list[0]?.name, "first run");
      assert.equal(list[0]?.board, "listing");
      await assert.rejects(colony.runs.get("run-does-not-exist"), NotFoundError);
    });
  });
});

await describe("multi-agent patterns", async () => {
  await it("researcher → critic → writer reaches its goal in three steps", async () => {
    await withColony(async (colony) => {
      const researcher = defineAgent({
        name: "researcher",
        trigger: (v) => v.has("question") && !v.has("notes"),
        run: (ctx) => ({ writes: { notes: `notes on: ${ctx.view.read<string>("question")!.value}` }, usage: { tokens: 300, costUsd: 0.25 } }),
      });
      const critic = defineAgent({
        name: "critic",
        trigger: (v) => v.has("notes") && !v.has("critique"),
        run: (ctx) => ({ writes: { critique: `too thin: ${ctx.view.read<string>("notes")!.value}` }, usage: { tokens: 200, costUsd: 0.125 } }),
      });
      const writer = defineAgent({
        name: "writer",
        trigger: (v) => v.has("critique") && !v.has("draft"),
        run: async (ctx) => {
          const notes = ctx.view.read<string>("notes")!.value;
          const critique = ctx.view.read<string>("critique")!.value;
          await ctx.board.write("draft", `${notes} / addressed ${critique}`);
          ctx.usage.add({ tokens: 500, costUsd: 0.5 });
        },
      });
      const result = await colony.run(
        defineRun({
          board: "essay",
          seed: { question: "why do ants form trails?" },
          agents: [writer, critic, researcher], // list order does not matter: the board does
          goal: (v) => v.has("draft"),
        }),
      );
      assert.equal(result.stopReason, "goal");
      assert.deepEqual(firedNames(result.steps), [["researcher"], ["critic"], ["writer"]]);
      assert.deepEqual(
        result.steps.map((s) => [s.fired[0]!.read, s.fired[0]!.written]),
        [
          [["question"], ["notes"]],
          [["notes"], ["critique"]],
          [["notes", "critique"], ["draft"]],
        ],
      );
      assert.equal(result.totalTokens, 1000);
      assert.equal(result.totalCostUsd, 0.875);
      const draft = (await colony.board("essay")).view().read<string>("draft");
      assert.equal(draft?.author, "writer");
      assert.match(draft?.value ?? "", /ants form trails/);
    });
  });

  await it("several researchers fire in the same step and the synthesizer waits for all of them", async () => {
    await withColony(async (colony) => {
      const topics = ["food", "pheromones", "predators"];
      const researchers = topics.map(
        (topic, i): Agent => ({
          name: `researcher-${topic}`,
          trigger: (v) => !v.has(`notes/${topic}`),
          run: async (ctx) => {
            await turns(1 + 2 * i); // they finish at different times
            await ctx.board.write(`notes/${topic}`, `what we know about ${topic}`, { tags: ["notes"] });
          },
        }),
      );
      let synthFires = 0;
      const synthesizer: Agent = {
        name: "synthesizer",
        trigger: (v) => v.keys("notes/").length === topics.length && !v.has("summary"),
        run: (ctx) => {
          synthFires++;
          const notes = ctx.view.readByTag("notes").map((e) => e.value as string);
          return { writes: { summary: notes.join("; ") } };
        },
      };
      const result = await colony.run({ board: "swarm", agents: [synthesizer, ...researchers], goal: (v) => v.has("summary") });
      assert.equal(result.stopReason, "goal");
      assert.deepEqual(firedNames(result.steps), [researchers.map((r) => r.name), ["synthesizer"]]);
      assert.equal(synthFires, 1);
      assert.deepEqual(result.steps[1]!.fired[0]!.read, ["notes/food", "notes/pheromones", "notes/predators"]);
      const summary = (await colony.board("swarm")).view().read<string>("summary")?.value ?? "";
      for (const topic of topics) assert.match(summary, new RegExp(topic));
    });
  });
});

await describe("definition checks", async () => {
  const noop = () => {};
  const cases: [string, unknown, RegExp][] = [
    ["missing agents", { board: "b" }, /run definition: agents: agents must be an array of agents/],
    ["empty agents", { board: "b", agents: [] }, /agents: agents must list at least one agent/],
    ["agents not an array", { board: "b", agents: { name: "x", run: noop } }, /agents: agents must be an array/],
    ["trigger not a function", { board: "b", agents: [{ name: "x", run: noop }, { name: "y", trigger: true, run: noop }] }, /agents\[1\]\.trigger: trigger must be a function/],
    ["run missing", { board: "b", agents: [{ name: "x" }] }, /agents\[0\]\.run: run must be a function/],
    ["agent without a name", { board: "b", agents: [{ run: noop }] }, /agents\[0\]\.name: an agent needs a name/],
    ["duplicate names", { board: "b", agents: [{ name: "x", run: noop }, { name: "x", run: noop }] }, /two agents are named "x"/],
    ["maxSteps 0", { board: "b", agents: [{ name: "x", run: noop }], maxSteps: 0 }, /maxSteps: maxSteps must be at least 1/],
    ["maxSteps fractional", { board: "b", agents: [{ name: "x", run: noop }], maxSteps: 2.5 }, /maxSteps: maxSteps must be a whole number/],
    ["maxSteps a string", { board: "b", agents: [{ name: "x", run: noop }], maxSteps: "10" }, /maxSteps: maxSteps must be a number/],
    ["maxFires 0", { board: "b", agents: [{ name: "x", run: noop, maxFires: 0 }] }, /agents\[0\]\.maxFires: maxFires must be at least 1/],
    ["concurrency 0", { board: "b", agents: [{ name: "x", run: noop }], concurrency: 0 }, /concurrency: concurrency must be at least 1/],
    ["deadlockAfter 0", { board: "b", agents: [{ name: "x", run: noop }], deadlockAfter: 0 }, /deadlockAfter: deadlockAfter must be at least 1/],
    ["parallel not a boolean", { board: "b", agents: [{ name: "x", run: noop }], parallel: "yes" }, /parallel: parallel must be true or false/],
    ["signal not an AbortSignal", { board: "b", agents: [{ name: "x", run: noop }], signal: {} }, /signal: signal must be an AbortSignal/],
    ["seed not an object", { board: "b", agents: [{ name: "x", run: noop }], seed: ["a"] }, /seed: seed must be an object/],
    ["goal not a function", { board: "b", agents: [{ name: "x", run: noop }], goal: "done" }, /goal: goal must be a function/],
    ["bad board name", { board: "no spaces please", agents: [{ name: "x", run: noop }] }, /board names are 1 to 64/],
  ];
  for (const [label, definition, message] of cases) {
    await it(`${label}: ConfigError naming the field, before anything is written`, async () => {
      await withColony(async (colony) => {
        let ran = false;
        const withSeed = { seed: { s: 1 }, ...(definition as object), agents: markRan((definition as { agents?: unknown }).agents, () => (ran = true)) };
        await assert.rejects(colony.run(withSeed as unknown as RunDefinition), (error: unknown) => {
          assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
          assert.match(error.message, message);
          return true;
        });
        assert.equal(ran, false);
        assert.deepEqual(await colony.runs.list(), []);
        if (label !== "bad board name") {
          const board = await colony.board("b");
          assert.equal(board.seq, 0, "no seed entry was written");
        }
      });
    });
  }

  await it("a definition that is not an object is a ConfigError", async () => {
    await withColony(async (colony) => {
      await assert.rejects(colony.run(null as unknown as RunDefinition), ConfigError);
      await assert.rejects(colony.run("essay" as unknown as RunDefinition), ConfigError);
    });
  });
});

/** Wraps every well-formed agent's run so that the test can tell whether anything fired. */
function markRan(agents: unknown, onRun: () => void): unknown {
  if (!Array.isArray(agents)) return agents;
  return agents.map((a: unknown) =>
    typeof a === "object" && a !== null && typeof (a as Agent).run === "function"
      ? { ...a, run: (ctx: AgentContext) => (onRun(), (a as Agent).run(ctx)) }
      : a,
  );
}
