/**
 * Long dependency chains and deep subtask trees: submitted in any order, failed, lapsed or
 * cancelled at the head, they settle without overflowing the stack, and the board stays usable.
 * (Recursion overflowed past about 4,000 tasks, and every later read reaped into the overflow.)
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CASCADE_STEP } from "../src/core/task-engine.ts";
import { createColony, memoryBackend, sqliteBackend, type Colony, type TaskBoard } from "../src/index.ts";
import { KEEP_ALL, tempDir } from "./fixtures/helpers.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

/** The bar for one chain; the other cases use a fifth of it, still five times past where recursion broke. */
const N = 100_000;
const M = N / 5;
const T = { timeout: 300_000 };

const nats = natsServerPerFile();

const backends: [string, () => { colony: Colony; dispose(): void }][] = [
  // One transaction is one NATS message, of at most max_payload (1 MiB): a cascade must fit in
  // steps, and a submit of the whole chain goes in batches (see `submitChain`).
  ["NATS", () => ({ colony: createColony({ backend: nats.backend(), retention: KEEP_ALL }), dispose() {} })],
  ["memory", () => ({ colony: createColony({ backend: memoryBackend(), retention: KEEP_ALL }), dispose() {} })],
  [
    "SQLite",
    () => {
      const dir = tempDir("colony-chains-");
      return { colony: createColony({ backend: sqliteBackend({ path: join(dir.path, "colony.db") }), retention: KEEP_ALL }), dispose: () => dir.dispose() };
    },
  ],
];

/** A chain t0 ← t1 ← … ← t(n-1), listed tail first so the submit must order it itself. */
function reversedChain(n: number, extra: { maxAttempts?: number } = {}) {
  return Array.from({ length: n }, (_, i) => n - 1 - i).map((i) => ({ id: `t${i}`, kind: i === 0 ? "head" : "link", ...(i > 0 && { dependsOn: [`t${i - 1}`] }), ...extra }));
}

/** Submits in batches that fit one NATS message; each batch depends only on tasks already submitted. */
async function submitChain(tasks: TaskBoard, items: ReturnType<typeof reversedChain>): Promise<void> {
  const ordered = [...items].reverse();
  for (let i = 0; i < ordered.length; i += 500) await tasks.submitAll(ordered.slice(i, i + 500));
}

async function withBoard(open: () => { colony: Colony; dispose(): void }, fn: (tasks: TaskBoard) => Promise<void>): Promise<void> {
  const { colony, dispose } = open();
  try {
    await fn(await colony.tasks());
  } finally {
    await colony.close();
    dispose();
  }
}

for (const [name, open] of backends) {
  describe(`${name}: long chains and deep trees`, () => {
    it(`a chain of ${N} submitted tail first is ordered; a failed head fails every link; the board still answers`, T, async () => {
      await withBoard(open, async (tasks) => {
        // Tail first in one batch where a batch can hold it all; on NATS, in order, in batches.
        if (name === "NATS") await submitChain(tasks, reversedChain(N));
        else assert.equal((await tasks.submitAll(reversedChain(N))).length, N);
        const head = (await tasks.claim({ worker: "w", capabilities: ["head"], leaseMs: 60_000 }))!;
        assert.equal(head.id, "t0");
        await tasks.fail("t0", "broken", { generation: head.generation, retryable: false });
        const tail = (await tasks.get(`t${N - 1}`))!;
        assert.equal(tail.status, "failed");
        assert.match(tail.reason ?? "", /t\d+/);
        assert.equal((await tasks.list({ status: "failed" })).length, N);
        assert.equal(await tasks.claim({ worker: "w", capabilities: ["link"], leaseMs: 1000 }), undefined);
      });
    });

    it(`a head of ${M} whose last lease lapses goes dead and takes the chain with it, on the next read`, T, async () => {
      await withBoard(open, async (tasks) => {
        if (name === "NATS") await submitChain(tasks, reversedChain(M, { maxAttempts: 1 }));
        else await tasks.submitAll(reversedChain(M, { maxAttempts: 1 }));
        const head = (await tasks.claim({ worker: "w", capabilities: ["head"], leaseMs: 1 }))!;
        // The lease is 1 ms: each get reaps, so the head turns dead once that time has passed.
        let seen = head;
        while (seen.status === "claimed") seen = (await tasks.get("t0"))!;
        assert.equal(seen.status, "dead");
        assert.equal((await tasks.get(`t${M - 1}`))!.status, "failed");
        await tasks.submit({ id: "after", kind: "other" });
        assert.equal((await tasks.claim({ worker: "w2", capabilities: ["other"], leaseMs: 1000 }))?.id, "after");
      });
    });

    it("a fan-out wider than one step: dependents still waiting are passed over once told, then all move on", T, async () => {
      await withBoard(open, async (tasks) => {
        const width = 3 * CASCADE_STEP;
        await tasks.submitAll([{ id: "x", kind: "head" }, { id: "y", kind: "head" }]);
        const fan = Array.from({ length: width }, (_, i) => ({ id: `f${i}`, kind: "link", dependsOn: ["x", "y"] }));
        for (let i = 0; i < width; i += 500) await tasks.submitAll(fan.slice(i, i + 500));
        const x = (await tasks.claim({ worker: "w", capabilities: ["head"], leaseMs: 60_000 }))!;
        await tasks.complete(x.id, "x done", { generation: x.generation });
        const waiting = await tasks.list({ status: "blocked" });
        assert.equal(waiting.length, width);
        assert.ok(waiting.every((t) => t.reason === "waiting on y"), "each was told what it still waits on");
        const y = (await tasks.claim({ worker: "w", capabilities: ["head"], leaseMs: 60_000 }))!;
        await tasks.fail(y.id, "y broke", { generation: y.generation, retryable: false });
        const failed = await tasks.list({ status: "failed" });
        assert.equal(failed.length, width + 1);
        assert.deepEqual(await tasks.list({ status: "blocked" }), []);
      });
    });

    it(`cancelling the root of a subtask tree ${M} deep cancels every level`, T, async () => {
      await withBoard(open, async (tasks) => {
        const tree = Array.from({ length: M }, (_, i) => ({ id: `s${i}`, kind: "k", ...(i > 0 && { parentId: `s${i - 1}` }) }));
        for (let i = 0; i < M; i += 500) await tasks.submitAll(tree.slice(i, i + 500));
        assert.equal((await tasks.cancel("s0")).status, "cancelled");
        const deepest = (await tasks.get(`s${M - 1}`))!;
        assert.equal(deepest.status, "cancelled");
        assert.match(deepest.reason ?? "", /s0/);
      });
    });
  });
}
