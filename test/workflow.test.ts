import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { z } from "zod";
import { BudgetExceededError, ConfigError, createColony, InvalidInputError, memoryBackend, type SubAgentContext } from "../src/index.ts";
import { sqliteColony, tempDir, waitFor, withColony, within } from "./fixtures/helpers.ts";

const square = { name: "square", run: (ctx: SubAgentContext<number>) => ctx.input * ctx.input };
const sum = {
  name: "sum",
  run: (ctx: SubAgentContext<{ input: null; dependencies: Record<string, number> }>) => Object.values(ctx.input.dependencies).reduce((a, b) => a + b, 0),
};

/** How long a test waits for something it caused before it fails, naming it. */
const LIMIT_MS = 20_000;
/** A test's own limit, past the waits it makes. */
const T = { timeout: 3 * LIMIT_MS };

/**
 * An agent that counts how many of its kind run at once. Each holds on until `overlap` of them
 * have run at the same time (or none is left to join them): a handshake, not a pause long enough
 * for them to overlap, so a slow machine cannot make them miss each other.
 */
function overlapping(name: string, overlap: number, total: number) {
  const seen = { now: 0, peak: 0, started: 0 };
  const agent = {
    name,
    async run(ctx: SubAgentContext<number>) {
      seen.now++;
      seen.started++;
      seen.peak = Math.max(seen.peak, seen.now);
      await waitFor(() => seen.peak >= overlap || seen.started === total, LIMIT_MS, `${overlap} ${name} agents running at once`);
      seen.now--;
      return ctx.input;
    },
  };
  return { agent, seen };
}

describe("colony.workflow", () => {
  test("decompose → parallel → synthesize: dependents get their dependencies' results, synthesize gets every result", async () => {
    await withColony(async (colony) => {
      const squares = colony.workflow({
        name: "squares",
        decompose: (n: number) => [
          ...Array.from({ length: n }, (_, i) => ({ id: `sq${i}`, kind: "square", input: i + 1 })),
          { id: "total", kind: "sum", input: null, dependsOn: Array.from({ length: n }, (_, i) => `sq${i}`) },
        ],
        execute: { square, sum },
        synthesize: ({ input, results, failures }) => ({ n: input, total: results.total, parts: Object.keys(results).length, failed: Object.keys(failures) }),
      });
      const outcome = await squares.run(4);
      assert.deepEqual(outcome.result, { n: 4, total: 1 + 4 + 9 + 16, parts: 5, failed: [] });
      assert.equal(outcome.tasks.length, 5);
      assert.ok(outcome.tasks.every((t) => t.status === "succeeded" && t.parentId === outcome.runId));
      const tasks = await colony.tasks();
      const root = await tasks.get(outcome.runId);
      assert.equal(root?.status, "succeeded");
      assert.deepEqual(root?.result, outcome.result);
    });
  });

  test("subtasks run in parallel up to the workflow's concurrency, never more", T, async () => {
    await withColony(async (colony) => {
      const { agent, seen } = overlapping("slow", 3, 8);
      const fan = colony.workflow({
        name: "fan",
        decompose: () => Array.from({ length: 8 }, (_, i) => ({ id: `s${i}`, kind: "slow", input: i })),
        execute: { slow: agent },
        synthesize: ({ results }) => Object.keys(results).length,
        concurrency: 3,
      });
      const outcome = await fan.run(undefined);
      assert.equal(outcome.result, 8);
      assert.deepEqual(outcome.failures, {});
      assert.equal(seen.started, 8);
      assert.equal(seen.peak, 3);
    });
  });

  test("a failed subtask reaches synthesize as a failure, and its dependents fail naming it instead of hanging", async () => {
    await withColony(async (colony) => {
      const boom = { name: "boom", run: () => { throw new Error("no data"); } };
      const flow = colony.workflow({
        name: "partial",
        decompose: () => [
          { id: "good", kind: "square", input: 3 },
          { id: "bad", kind: "boom", maxAttempts: 2 },
          { id: "after-bad", kind: "square", input: 1, dependsOn: ["bad"] },
        ],
        execute: { square, boom },
        synthesize: ({ results, failures }) => ({ results, failures }),
        maxAttempts: 1,
      });
      const { result } = await flow.run(null);
      assert.deepEqual(result.results, { good: 9 });
      assert.equal(result.failures.bad?.status, "dead");
      assert.match(result.failures.bad!.reason, /no data/);
      assert.equal(result.failures["after-bad"]?.status, "failed");
      assert.match(result.failures["after-bad"]!.reason, /dependency .*bad is dead/);
    });
  });

  test("a subtask whose result is not JSON fails for good, saying why, instead of holding its lease", async () => {
    await withColony(async (colony) => {
      const flow = colony.workflow({
        name: "nan",
        decompose: () => [{ id: "x", kind: "nan" }],
        execute: { nan: { name: "nan", run: () => Number.NaN } },
        synthesize: ({ failures }) => failures,
      });
      const { result } = await flow.run(null);
      assert.equal(result.x?.status, "failed");
      assert.match(result.x!.reason, /result cannot be stored: .*NaN is not a JSON number/);
    });
  });

  test("decompose and synthesize may be agents", async () => {
    await withColony(async (colony) => {
      const flow = colony.workflow({
        name: "agents",
        decompose: { name: "planner", run: (ctx: SubAgentContext<number[]>) => ctx.input.map((n, i) => ({ id: `n${i}`, kind: "square", input: n })) },
        execute: { square },
        synthesize: { name: "writer", run: (ctx: SubAgentContext<{ results: Record<string, unknown> }>) => (Object.values(ctx.input.results) as number[]).sort((a, b) => a - b) },
      });
      assert.deepEqual((await flow.run([3, 1, 2])).result, [1, 4, 9]);
    });
  });

  test("a bad definition is a ConfigError before anything runs; a bad plan names what is wrong and leaves no subtask", async () => {
    await withColony(async (colony) => {
      assert.throws(() => colony.workflow({ name: "no synth", decompose: () => [], execute: { square }, synthesize: 3 as never }), ConfigError);
      assert.throws(() => colony.workflow({ name: "x", decompose: () => [], execute: {}, synthesize: () => 1 }), /execute/);
      const flow = colony.workflow({ name: "badplan", decompose: () => [{ id: "has space", kind: "square" }], execute: { square }, synthesize: () => 1 });
      await assert.rejects(flow.run(null), (error: Error) => error instanceof ConfigError && /decompose returned a bad plan at 0\.id/.test(error.message));
      const cyclic = colony.workflow({
        name: "cyclic",
        decompose: () => [
          { id: "a", kind: "square", input: 1, dependsOn: ["b"] },
          { id: "b", kind: "square", input: 1, dependsOn: ["a"] },
        ],
        execute: { square },
        synthesize: () => 1,
      });
      await assert.rejects(cyclic.run(null), /cycle/);
      const tasks = await colony.tasks();
      assert.equal((await tasks.list()).filter((t) => t.parentId !== undefined).length, 0);
    });
  });

  test("an input schema: bad input is an InvalidInputError naming the field before anything runs; decompose gets what the schema parsed", async () => {
    await withColony(async (colony) => {
      let planned: unknown;
      const flow = colony.workflow({
        name: "squares",
        input: z.object({ numbers: z.array(z.number().int()).min(1), label: z.string().default("squares") }),
        decompose: (q) => ((planned = q), q.numbers.map((n, i) => ({ id: `n${i}`, kind: "square", input: n }))),
        execute: { square },
        synthesize: ({ input, results }) => `${input.label}: ${Object.values(results).join(",")}`,
      });
      const bad: [unknown, string, RegExp][] = [
        [undefined, "", /expected object, received undefined/],
        [{ numbers: "1,2" }, "numbers", /expected array, received string/],
        [{ numbers: [1, 2.5] }, "numbers[1]", /expected int/],
        [{ numbers: [] }, "numbers", /too small/i],
      ];
      for (const [input, path, message] of bad) {
        await assert.rejects(flow.run(input as never), (error: unknown) => {
          assert.ok(error instanceof InvalidInputError, String(error));
          assert.deepEqual([error.code, error.path], ["INVALID_INPUT", path]);
          assert.match(error.message, message);
          assert.match(error.message, /^workflow squares: input/);
          return true;
        });
      }
      assert.equal(planned, undefined, "decompose never ran");
      assert.deepEqual(await (await colony.tasks()).list(), [], "nothing was submitted");
      const { result } = await flow.run({ numbers: [2, 3] } as never);
      assert.equal(result, "squares: 4,9");
      assert.deepEqual(planned, { numbers: [2, 3], label: "squares" });
      assert.throws(() => colony.workflow({ name: "x", input: { parse: () => 1 } as never, decompose: () => [], execute: { square }, synthesize: () => 1 }), /input is a zod schema/);
    });
  });

  test("budget.wallMs cancels every subtask and rejects with BudgetExceededError", async () => {
    await withColony(async (colony) => {
      const stuck = { name: "stuck", run: (ctx: SubAgentContext) => new Promise((resolve) => ctx.signal.addEventListener("abort", () => resolve(null))) };
      const flow = colony.workflow({
        name: "slowpoke",
        decompose: () => [{ id: "a", kind: "stuck" }, { id: "b", kind: "stuck" }, { id: "c", kind: "square", input: 2, dependsOn: ["a"] }],
        execute: { stuck, square },
        synthesize: () => "never",
        budget: { wallMs: 300 },
      });
      await assert.rejects(flow.run(null), BudgetExceededError);
      const tasks = await colony.tasks();
      const subtasks = (await tasks.list()).filter((t) => t.parentId !== undefined);
      assert.equal(subtasks.length, 3);
      assert.ok(subtasks.every((t) => t.status === "cancelled" || t.status === "failed"), JSON.stringify(subtasks.map((t) => t.status)));
      const root = (await tasks.list()).find((t) => t.parentId === undefined)!;
      assert.equal(root.status, "cancelled");
    });
  });

  test("an abort signal cancels the run", T, async () => {
    await withColony(async (colony) => {
      const controller = new AbortController();
      const reason = new Error("user stop");
      let started = 0;
      const stuck = {
        name: "stuck",
        run: (ctx: SubAgentContext) =>
          new Promise((resolve) => {
            ctx.signal.addEventListener("abort", () => resolve(null));
            // Aborted while its subtask runs: once it has started, not after a guessed pause.
            if (++started === 1) controller.abort(reason);
          }),
      };
      const flow = colony.workflow({ name: "aborted", decompose: () => [{ id: "a", kind: "stuck" }], execute: { stuck }, synthesize: () => 1 });
      await assert.rejects(flow.run(null, { signal: controller.signal }), (error: unknown) => {
        assert.equal(error, reason, `expected the signal's reason, got ${String(error)}`);
        return true;
      });
      assert.equal(started, 1);
      const tasks = await colony.tasks();
      assert.deepEqual((await tasks.list()).map((t) => [t.parentId === undefined ? "root" : t.id.split(".").at(-1), t.status]), [
        ["root", "cancelled"],
        ["a", "cancelled"],
      ]);
    });
  });

  test("progress reports every subtask's moves and ends with all of them ended", async () => {
    await withColony(async (colony) => {
      const seen: string[] = [];
      const flow = colony.workflow({
        name: "progress",
        decompose: () => [{ id: "a", kind: "square", input: 2 }, { id: "b", kind: "sum", input: null, dependsOn: ["a"] }],
        execute: { square, sum },
        synthesize: ({ results }) => results,
      });
      const last: { ended: number; total: number }[] = [];
      await flow.run(null, {
        onProgress: (p) => {
          if (p.last) seen.push(`${p.last.id.split(".").at(-1)}:${p.last.status}`);
          last.push({ ended: p.counts.succeeded, total: p.total });
        },
      });
      assert.deepEqual(last.at(-1), { ended: 2, total: 2 });
      assert.ok(seen.indexOf("a:succeeded") < seen.indexOf("b:claimed"), seen.join(" "));
      assert.ok(seen.includes("b:succeeded"));
    });
  });

  test("on SQLite, two workflows share a task board without mixing their subtasks", async () => {
    const dir = tempDir("colony-workflow-");
    const colony = sqliteColony(join(dir.path, "colony.db"));
    try {
      const flow = colony.workflow({
        name: "twice",
        decompose: (n: number) => Array.from({ length: 3 }, (_, i) => ({ id: `s${i}`, kind: "square", input: n + i })),
        execute: { square },
        synthesize: ({ results }) => Object.values(results as Record<string, number>).reduce((a, b) => a + b, 0),
      });
      const [one, two] = await Promise.all([flow.run(1), flow.run(10)]);
      assert.equal(one.result, 1 + 4 + 9);
      assert.equal(two.result, 100 + 121 + 144);
      assert.notEqual(one.runId, two.runId);
    } finally {
      await colony.close();
      dir.dispose();
    }
  });
});

test("a colony with agents and no live worker runs a submitted task itself (local fallback), and not with localFallback off", T, async () => {
  const on = createColony({ backend: memoryBackend(), agents: { square } });
  const off = createColony({ backend: memoryBackend(), agents: { square }, localFallback: false });
  try {
    const tasks = await on.tasks();
    const task = await tasks.submit({ kind: "square", input: 7 });
    assert.match(task.assignee ?? "", /^local-/);
    assert.deepEqual((await tasks.workers()).map((w) => [w.id, w.local]), [[task.assignee, true]], "the local worker started for it");
    assert.equal((await within(tasks.wait(task.id), "the local worker to run the task")).result, 49);

    const offTasks = await off.tasks();
    const idle = await offTasks.submit({ kind: "square", input: 7 });
    assert.equal(idle.assignee, undefined);
    // With the fallback, its worker would have been started by the submit itself, as above.
    assert.deepEqual(await offTasks.workers(), [], "no local worker was started");
    // Nothing else takes it: the first claim of it is this one, and its only events are this test's.
    const mine = await offTasks.claim({ worker: "by-hand", capabilities: ["square"], leaseMs: 60_000 });
    assert.deepEqual([mine?.id, mine?.attempts], [idle.id, 0]);
    await offTasks.complete(idle.id, "by hand", { generation: mine!.generation });
    const head = await offTasks.head();
    const events = await within(
      (async () => {
        const read: [string, string | undefined][] = [];
        for await (const event of offTasks.watch({ since: 0 })) {
          read.push([event.type, event.task.owner]);
          if (event.seq >= head) break;
        }
        return read;
      })(),
      "the board's events",
    );
    assert.deepEqual(events, [
      ["submitted", undefined],
      ["claimed", "by-hand"],
      ["succeeded", "by-hand"],
    ]);
  } finally {
    await on.close();
    await off.close();
  }
});
