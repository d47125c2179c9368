/**
 * Long durations: Node's timers fire after 1 ms when asked to wait 2^31 ms or more, so a 30-day
 * timeout or wall-time budget must be chained, not handed to one timer; absurd durations are
 * refused with a message.
 */
import assert from "node:assert/strict";
import { describe, it, mock } from "node:test";
import { MAX_DURATION_MS, MAX_TIMER_MS, checkDuration, longTimeout } from "../src/core/timers.ts";
import { ConfigError } from "../src/index.ts";
import { withColony } from "./fixtures/helpers.ts";
import { ref, sleep } from "./fixtures/subagents.ts";

const THIRTY_DAYS = 30 * 24 * 60 * 60 * 1000;
const T = { timeout: 30_000 };

describe("longTimeout", () => {
  it("waits past the longest delay one timer holds, and fires once", () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      let fired = 0;
      longTimeout(() => fired++, 2 * MAX_TIMER_MS + 10);
      mock.timers.tick(MAX_TIMER_MS);
      mock.timers.tick(MAX_TIMER_MS);
      assert.equal(fired, 0, "not before its time");
      mock.timers.tick(9);
      assert.equal(fired, 0);
      mock.timers.tick(1);
      assert.equal(fired, 1);
      mock.timers.tick(MAX_TIMER_MS);
      assert.equal(fired, 1, "once");
    } finally {
      mock.timers.reset();
    }
  });

  it("is cancelled between two of its links too", () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      let fired = 0;
      const cancel = longTimeout(() => fired++, MAX_TIMER_MS + 5);
      mock.timers.tick(MAX_TIMER_MS);
      cancel();
      mock.timers.tick(10);
      assert.equal(fired, 0);
    } finally {
      mock.timers.reset();
    }
  });

  it("checkDuration refuses what no one means: negative, not finite, over ten years", () => {
    assert.equal(checkDuration(THIRTY_DAYS, "timeoutMs"), THIRTY_DAYS);
    for (const bad of [-1, Number.NaN, Infinity, MAX_DURATION_MS + 1, "5"]) {
      assert.throws(() => checkDuration(bad, "timeoutMs"), ConfigError, String(bad));
    }
    assert.throws(() => checkDuration(0, "timeoutMs", { positive: true }), /> 0/);
  });
});

describe("long timeouts and wall-time budgets", () => {
  for (const isolation of ["inline", "thread"] as const) {
    it(`${isolation}: an agent with a 30-day timeout and a 2^31 ms wall budget runs to its end`, T, async () => {
      await withColony(async (colony) => {
        const handle = await colony.spawn(ref("sleeper"), { ms: 50 }, { isolation, timeoutMs: THIRTY_DAYS, budget: { wallMs: 2 ** 31 } });
        assert.equal(await handle.result, "woke");
      });
    });
  }

  it("absurd durations are refused at spawn, at submit and in a workflow, saying what to do", T, async () => {
    await withColony(async (colony) => {
      await assert.rejects(colony.spawn(ref("echo"), null, { timeoutMs: 1e15 }), /timeoutMs is at most .* leave it out for no limit/);
      await assert.rejects(colony.spawn(ref("echo"), null, { budget: { wallMs: 1e15 } }), /budget.wallMs is at most/);
      const tasks = await colony.tasks();
      await assert.rejects(tasks.submit({ kind: "x", timeoutMs: 1e15 }), /timeoutMs is at most/);
      assert.throws(
        () => colony.workflow({ name: "w", decompose: () => [], execute: { x: { name: "x", run: () => 1 } }, synthesize: () => 1, budget: { wallMs: 1e15 } }),
        /budget.wallMs is at most/,
      );
    });
  });

  it("a worker's periods past what one timer holds are refused, as is an election's lease", T, async () => {
    await withColony(async (colony) => {
      const agents = { k: { name: "k", run: () => 1 } };
      for (const option of ["leaseMs", "heartbeatMs", "ttlMs", "pollMs"]) {
        await assert.rejects(colony.worker({ agents, [option]: 2 ** 31 }), new RegExp(`${option} is at most ${MAX_TIMER_MS} ms`));
      }
      await assert.rejects(async () => colony.elect("role", { leaseMs: 2 ** 31 }), /leaseMs is a whole number of milliseconds from \d+ to 2147483647/);
    });
  });

  it("a workflow with a 30-day wall budget finishes instead of being cut off at once", T, async () => {
    await withColony(async (colony) => {
      const flow = colony.workflow({
        name: "long",
        decompose: (n: number) => Array.from({ length: n }, (_, i) => ({ id: `s${i}`, kind: "double", input: i })),
        // Each takes a while, so a budget that fired at once would cut the run short.
        execute: { double: { name: "double", run: async (ctx: { input: number }) => (await sleep(40), ctx.input * 2) } },
        synthesize: ({ results }) => Object.values(results as Record<string, number>).reduce((a, b) => a + b, 0),
        budget: { wallMs: THIRTY_DAYS },
      });
      assert.equal((await flow.run(3)).result, 0 + 2 + 4);
    });
  });
});
