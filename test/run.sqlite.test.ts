/**
 * Runs persist on the SQLite backend: after a run, a new colony on the same file (a new process,
 * in effect) lists it with its stop reason and totals and returns its steps.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { NotFoundError, createColony, sqliteBackend, type Agent } from "../src/index.ts";

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "colony-run-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const chain: Agent[] = [
  {
    name: "researcher",
    trigger: (v) => v.has("question") && !v.has("notes"),
    run: (ctx) => ({ writes: { notes: `notes on ${String(ctx.view.read("question")?.value)}` }, usage: { tokens: 300, costUsd: 0.25 } }),
  },
  {
    name: "writer",
    trigger: (v) => v.has("notes") && !v.has("draft"),
    run: async (ctx) => {
      ctx.usage.add({ tokens: 200, costUsd: 0.5 });
      await ctx.board.write("draft", "ants follow pheromone trails", { tags: ["final"] });
    },
  },
];

await it("a new colony on the same file lists the run with its stop reason and totals, and returns its steps", async () => {
  const path = join(dir, "runs.db");
  const first = createColony({ backend: sqliteBackend({ path }) });
  const done = await first.run({ name: "essay run", board: "essay", seed: { question: "trails?" }, agents: chain, goal: (v) => v.has("draft") });
  const stuck = await first.run({
    board: "stuck",
    agents: [{ name: "broken", trigger: () => true, run: () => Promise.reject(new Error("model unavailable")) }],
    deadlockAfter: 2,
  });
  await first.close();
  assert.equal(done.stopReason, "goal");
  assert.equal(stuck.stopReason, "error");

  const second = createColony({ backend: sqliteBackend({ path }) });
  try {
    const runs = await second.runs.list();
    assert.deepEqual(runs.map((r) => r.runId).sort(), [done.runId, stuck.runId].sort());
    assert.equal((await second.runs.list({ limit: 1 })).length, 1);

    const listed = runs.find((r) => r.runId === done.runId)!;
    assert.equal(listed.name, "essay run");
    assert.equal(listed.board, "essay");
    assert.equal(listed.status, "finished");
    assert.equal(listed.stopReason, "goal");
    assert.equal(listed.steps, 2);
    assert.equal(listed.totalTokens, 500);
    assert.equal(listed.totalCostUsd, 0.75);
    assert.equal(listed.durationMs, done.durationMs);
    assert.equal(typeof listed.endedAt, "number");

    const { run, steps } = await second.runs.get(done.runId);
    assert.deepEqual(run, listed);
    assert.deepEqual(steps, done.steps);
    assert.deepEqual(
      steps.map((s) => [s.index, s.fired.map((f) => [f.agent, f.read, f.written, f.tokens, f.costUsd])]),
      [
        [1, [["researcher", ["question"], ["notes"], 300, 0.25]]],
        [2, [["writer", [], ["draft"], 200, 0.5]]],
      ],
    );

    const failed = await second.runs.get(stuck.runId);
    assert.equal(failed.run.stopReason, "error");
    assert.match(failed.run.error ?? "", /broken: model unavailable/);
    assert.equal(failed.steps.length, 2);
    assert.ok(failed.steps.every((s) => s.fired[0]?.error === "model unavailable"));

    // the board the run wrote is on the file too, authored by the agents
    const board = await second.board("essay");
    assert.deepEqual(
      board.view().entries().map((e) => [e.key, e.author]),
      [
        ["draft", "writer"],
        ["notes", "researcher"],
        ["question", "seed"],
      ],
    );

    await assert.rejects(second.runs.get("run-nope-000000"), NotFoundError);
  } finally {
    await second.close();
  }
});

await it("a run is listed as running while it is in progress", async () => {
  const path = join(dir, "live.db");
  const colony = createColony({ backend: sqliteBackend({ path }) });
  const observer = createColony({ backend: sqliteBackend({ path }) });
  try {
    let during: { status: string; steps: number } | undefined;
    const result = await colony.run({
      board: "live",
      agents: [
        { name: "a", run: () => ({ writes: { a: 1 } }) },
        {
          name: "b",
          trigger: (v) => v.has("a") && !v.has("b"),
          run: async (ctx) => {
            const { run, steps } = await observer.runs.get(ctx.runId);
            during = { status: run.status, steps: steps.length };
            return { writes: { b: 1 } };
          },
        },
      ],
    });
    assert.equal(result.stopReason, "quiescence");
    assert.deepEqual(during, { status: "running", steps: 1 });
    const { run } = await observer.runs.get(result.runId);
    assert.equal(run.status, "finished");
    assert.equal(run.steps, 2);
  } finally {
    await colony.close();
    await observer.close();
  }
});
