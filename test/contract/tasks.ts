/**
 * The TaskBoard contract, run against every backend: statuses and their moves, exclusive claims
 * under leases, exactly-once recording by generation, retries with backoff, dead letters,
 * dependencies, cancel cascades, the event stream, and the worker registry with its routes.
 * A backend's test file calls `taskBoardContract(name, newColony)`; every test gets a fresh colony
 * from `newColony` and calls its `cleanup` afterwards.
 *
 * Nothing here races a timer. A lease or registration that must outlast round trips is long
 * (LONG_LEASE_MS, or HELD_LEASE_MS where a test must also see it end); one a test needs to lapse
 * is short, and the test waits for the clock to pass the end the board stamped on it (`past`),
 * the observable lapse, never for a guessed sleep. No test asserts how fast anything is, only
 * what happened in what order.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import {
  ClosedError,
  ColonyError,
  ConfigError,
  HorizonError,
  InvalidTaskError,
  InvalidValueError,
  NoWorkerError,
  StaleTaskError,
  type Colony,
  type SubmitRequest,
  type Task,
  type TaskBoard,
  type TaskEvent,
  type TaskEventType,
} from "../../src/index.ts";
import type { ColonyUnderTest, ColonyUnderTestOptions, NewColony } from "./board.ts";

const BOARD = "contract";
/** A lease (or a worker's ttl) that a test wants to lapse: it waits for it with `past`. */
const SHORT_LEASE_MS = 60;
/**
 * A lease that must outlast a few round trips on a loaded machine, and that the test then waits
 * out: long enough not to lapse early, short enough to wait for.
 */
const HELD_LEASE_MS = 2_000;
/** A lease no test outlives. */
const LONG_LEASE_MS = 60_000;
/** Retries that may be claimed again at once. */
const NO_BACKOFF = { baseMs: 0, maxMs: 0 };

type Registration = Parameters<TaskBoard["heartbeatWorker"]>[0];

/** A test that fails by itself when it hangs (a wait that never ends), not by taking the suite down. */
function it(name: string, fn: () => Promise<void>): void {
  void test(name, { timeout: 15_000 }, fn);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns something truthy; fails after `limitMs`. */
async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, limitMs = 5000): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what} after ${limitMs} ms`);
    await sleep(10);
  }
}

/**
 * Waits until this process's clock is past `time`: the end the board stamped on a lease
 * (`leaseUntil`), a backoff (`runAfter`) or a registration (`heartbeatAt + ttlMs`). Once it is,
 * that lease or registration has lapsed, whenever the board gets to notice it (the board's clock
 * is this process's). Nothing is read from the board meanwhile.
 */
async function past(time: number, what: string): Promise<void> {
  await eventually(async () => Date.now() > time, what, Math.max(0, time - Date.now()) + 5000);
}

/** Every event on the board after `since`, read through `watch` up to the current head. */
async function eventsOf(tasks: TaskBoard, since = 0): Promise<TaskEvent[]> {
  return eventsUpTo(tasks, since, await tasks.head());
}

/** Every event after `since` up to `through`, read through one watch as they come. */
async function eventsUpTo(tasks: TaskBoard, since: number, through: number): Promise<TaskEvent[]> {
  const events: TaskEvent[] = [];
  if (through <= since) return events;
  for await (const event of tasks.watch({ since })) {
    events.push(event);
    if (event.seq >= through) break;
  }
  return events;
}

function assertGapFree(events: readonly TaskEvent[], from = 1): void {
  assert.deepEqual(
    events.map((e) => e.seq),
    events.map((_, i) => from + i),
  );
}

/** What a refused operation must leave as it was: every task and the event log's head. */
async function state(tasks: TaskBoard) {
  return { head: await tasks.head(), tasks: await tasks.list() };
}

async function assertNothingWritten(tasks: TaskBoard, before: Awaited<ReturnType<typeof state>>): Promise<void> {
  assert.deepEqual(await state(tasks), before);
}

function isStale(id: string, generation: number): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof StaleTaskError, `expected StaleTaskError, got ${String(error)}`);
    assert.ok(error instanceof ColonyError);
    assert.equal(error.code, "STALE_TASK");
    assert.equal(error.taskId, id);
    assert.equal(error.generation, generation);
    assert.ok(Number.isInteger(error.actualGeneration) && error.actualGeneration >= generation - 1);
    return true;
  };
}

function invalid(pattern: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof InvalidTaskError, `expected InvalidTaskError, got ${String(error)}`);
    assert.equal(error.code, "INVALID_TASK");
    assert.match(error.message, pattern);
    return true;
  };
}

export function taskBoardContract(name: string, newColony: NewColony): void {
  describe(`TaskBoard contract: ${name}`, () => {
    let current: ColonyUnderTest;
    let colony: Colony;
    let tasks: TaskBoard;

    beforeEach(async () => {
      current = await newColony();
      colony = current.colony;
      tasks = await colony.tasks(BOARD);
    });

    afterEach(async () => {
      await current.cleanup();
    });

    const claim = (worker = "w1", capabilities = ["k"], leaseMs = LONG_LEASE_MS) => tasks.claim({ worker, capabilities, leaseMs });

    async function claimed(worker = "w1", capabilities = ["k"], leaseMs = LONG_LEASE_MS): Promise<Task> {
      const task = await claim(worker, capabilities, leaseMs);
      assert.ok(task, `${worker} expected to claim a task`);
      return task;
    }

    async function get(id: string): Promise<Task> {
      const task = await tasks.get(id);
      assert.ok(task, `task ${id} is on the board`);
      return task;
    }

    /** Swaps this test's colony for one opened with `options`; `afterEach` cleans it up as usual. */
    async function reopen(options: ColonyUnderTestOptions): Promise<void> {
      await current.cleanup();
      current = await newColony(options);
      colony = current.colony;
      tasks = await colony.tasks(BOARD);
    }

    const register = (id: string, extra: Partial<Registration> = {}) =>
      tasks.heartbeatWorker({
        id,
        capabilities: ["k"],
        concurrency: 1,
        running: 0,
        status: "online",
        pid: process.pid,
        host: "test-host",
        local: false,
        ttlMs: LONG_LEASE_MS,
        ...extra,
      });

    describe("submit", () => {
      it("stores a pending task with the documented defaults", async () => {
        const before = Date.now();
        const task = await tasks.submit({ kind: "k", input: { q: "ants", n: [1, null] } });
        assert.equal(typeof task.id, "string");
        assert.ok(task.id.length > 0);
        assert.equal(task.kind, "k");
        assert.equal(task.capability, "k", "the capability defaults to the kind");
        assert.deepEqual(task.input, { q: "ants", n: [1, null] });
        assert.equal(task.status, "pending");
        assert.equal(task.generation, 1);
        assert.deepEqual(task.dependsOn, []);
        assert.equal(task.parentId, undefined);
        assert.equal(task.owner, undefined);
        assert.equal(task.leaseUntil, undefined);
        assert.equal(task.attempts, 0);
        assert.equal(task.maxAttempts, 3);
        assert.equal(task.priority, 0);
        assert.equal(task.result, undefined);
        assert.equal(task.error, undefined);
        assert.deepEqual(task.failures, []);
        assert.deepEqual(task.route, { mode: "any" });
        assert.deepEqual(task.backoff, { baseMs: 1000, maxMs: 60_000 });
        assert.equal(task.runAfter, undefined);
        assert.ok(task.createdAt >= before && task.createdAt <= Date.now());
        assert.equal(task.updatedAt, task.createdAt);
        assert.deepEqual(await tasks.get(task.id), task);
        assert.deepEqual(await tasks.list(), [task]);
      });

      it("keeps what the request sets: id, capability, priority, maxAttempts, timeoutMs, backoff, parentId", async () => {
        const parent = await tasks.submit({ id: "parent", kind: "plan" });
        const task = await tasks.submit({
          id: "child.1",
          kind: "research",
          capability: "gpu",
          priority: 7,
          maxAttempts: 5,
          timeoutMs: 1234,
          backoff: { baseMs: 10 },
          parentId: parent.id,
        });
        assert.equal(task.id, "child.1");
        assert.equal(task.capability, "gpu");
        assert.equal(task.priority, 7);
        assert.equal(task.maxAttempts, 5);
        assert.equal(task.timeoutMs, 1234);
        assert.deepEqual(task.backoff, { baseMs: 10, maxMs: 60_000 }, "an unset backoff field keeps its default");
        assert.equal(task.parentId, "parent");
        assert.deepEqual(await tasks.get("child.1"), task);
      });

      it("ids are unique; generated ones never collide with caller-chosen ones", async () => {
        const a = await tasks.submit({ kind: "k" });
        const b = await tasks.submit({ kind: "k" });
        assert.notEqual(a.id, b.id);
        // A caller may choose an id of the board's own form; later generated ids step over it.
        const chosen = ["t-1", "t-2", "t-3", "t-4", "t-5"].filter((id) => id !== a.id && id !== b.id);
        for (const id of chosen) await tasks.submit({ id, kind: "k" });
        const generated = await tasks.submitAll([{ kind: "k" }, { id: "t-9", kind: "k" }, { kind: "k" }]);
        const ids = (await tasks.list()).map((t) => t.id);
        assert.equal(new Set(ids).size, ids.length);
        assert.equal(ids.length, 2 + chosen.length + 3);
        assert.equal(generated[1]!.id, "t-9");
        await assert.rejects(tasks.submit({ id: a.id, kind: "k" }), invalid(/already taken/));
        await assert.rejects(tasks.submitAll([{ id: "dup", kind: "k" }, { id: "dup", kind: "k" }]), invalid(/already taken/));
        assert.equal((await tasks.list()).length, ids.length);
      });

      it("the board keeps its own copy of the input and hands out copies", async () => {
        const input = { list: [1, 2] };
        const task = await tasks.submit({ kind: "k", input });
        input.list.push(3);
        (task.input as { list: number[] }).list.push(4);
        task.status = "succeeded";
        const stored = await get(task.id);
        assert.deepEqual(stored.input, { list: [1, 2] });
        assert.equal(stored.status, "pending");
      });

      it("the same idempotencyKey gives back the first task and stores nothing new", async () => {
        const first = await tasks.submit({ kind: "k", input: 1, idempotencyKey: "once" });
        const head = await tasks.head();
        const again = await tasks.submit({ kind: "other", input: 2, idempotencyKey: "once" });
        assert.deepEqual(again, first);
        assert.equal(await tasks.head(), head, "no event for a deduplicated submit");
        assert.equal((await tasks.list()).length, 1);

        // Still so once the first has ended, and inside a batch with new tasks.
        const held = await claimed();
        await tasks.complete(held.id, "done", { generation: held.generation });
        const [old, fresh] = await tasks.submitAll([{ kind: "k", idempotencyKey: "once" }, { kind: "k", idempotencyKey: "twice" }]);
        assert.equal(old!.id, first.id);
        assert.equal(old!.status, "succeeded");
        assert.equal(old!.result, "done");
        assert.notEqual(fresh!.id, first.id);
        assert.equal((await tasks.list()).length, 2);
      });

      it("the same idempotencyKey twice in one batch is one task", async () => {
        const [a, b, c] = await tasks.submitAll([
          { kind: "k", input: "first", idempotencyKey: "same" },
          { kind: "k", input: "second", idempotencyKey: "same" },
          { kind: "k", input: "other" },
        ]);
        assert.equal(a!.id, b!.id);
        assert.equal(b!.input, "first");
        assert.notEqual(c!.id, a!.id);
        assert.equal((await tasks.list()).length, 2);
        assert.deepEqual((await eventsOf(tasks)).map((e) => e.type), ["submitted", "submitted"]);
      });

      it("bad requests are InvalidTaskError naming the field, and store nothing", async () => {
        await tasks.submit({ id: "exists", kind: "k" });
        const before = await state(tasks);
        const bad: [unknown, RegExp][] = [
          [{}, /kind/],
          [{ kind: "" }, /kind/],
          [{ kind: 7 }, /kind/],
          [{ kind: "k", priority: 1.5 }, /priority/],
          [{ kind: "k", priority: "high" }, /priority/],
          [{ kind: "k", maxAttempts: 0 }, /maxAttempts/],
          [{ kind: "k", timeoutMs: -1 }, /timeoutMs/],
          [{ kind: "k", dependsOn: "exists" }, /dependsOn/],
          [{ kind: "k", dependsOn: ["has space"] }, /dependsOn/],
          [{ kind: "k", parentId: "" }, /parentId/],
          [{ kind: "k", id: "no/slash" }, /\bid\b/],
          [{ kind: "k", idempotencyKey: "" }, /idempotencyKey/],
          [{ kind: "k", capability: ["gpu"] }, /capability/],
          [{ kind: "k", route: { mode: "sometimes" } }, /route/],
          [{ kind: "k", route: { mode: "direct" } }, /route/],
          [{ kind: "k", backoff: { baseMs: -1 } }, /backoff\.baseMs/],
          [{ kind: "k", backoff: { maxMs: 0.5 } }, /backoff\.maxMs/],
          [{ kind: "k", surprise: true }, /surprise/],
        ];
        for (const [request, field] of bad) {
          await assert.rejects(tasks.submit(request as SubmitRequest), invalid(field), JSON.stringify(request));
        }
        // One bad item refuses the whole batch, naming the item.
        await assert.rejects(tasks.submitAll([{ kind: "k" }, { kind: "k", priority: 0.5 } as SubmitRequest]), invalid(/item 1.*priority/));
        await assert.rejects(tasks.submitAll("nope" as unknown as SubmitRequest[]), InvalidTaskError);
        await assertNothingWritten(tasks, before);
      });

      it("an unknown dependency or parent refuses the whole batch", async () => {
        await tasks.submit({ id: "known", kind: "k" });
        const before = await state(tasks);
        await assert.rejects(tasks.submit({ kind: "k", dependsOn: ["known", "ghost"] }), invalid(/ghost/));
        await assert.rejects(tasks.submitAll([{ id: "a", kind: "k" }, { id: "b", kind: "k", dependsOn: ["a", "nowhere"] }]), invalid(/nowhere/));
        await assert.rejects(tasks.submitAll([{ id: "a", kind: "k" }, { id: "b", kind: "k", parentId: "ghost" }]), invalid(/ghost/));
        await assertNothingWritten(tasks, before);
      });

      it("a cycle in dependsOn is refused, naming it, and nothing is stored", async () => {
        await tasks.submit({ id: "outside", kind: "k" });
        const before = await state(tasks);
        await assert.rejects(tasks.submit({ id: "self", kind: "k", dependsOn: ["self"] }), invalid(/cycle.*self → self/));
        await assert.rejects(
          tasks.submitAll([
            { id: "a", kind: "k", dependsOn: ["b"] },
            { id: "b", kind: "k", dependsOn: ["a"] },
          ]),
          invalid(/cycle/),
        );
        await assert.rejects(
          tasks.submitAll([
            { id: "fine", kind: "k", dependsOn: ["outside"] },
            { id: "x", kind: "k", dependsOn: ["fine", "z"] },
            { id: "y", kind: "k", dependsOn: ["x"] },
            { id: "z", kind: "k", dependsOn: ["y"] },
          ]),
          (error: unknown) => {
            assert.ok(error instanceof InvalidTaskError);
            for (const id of ["x", "y", "z"]) assert.match(error.message, new RegExp(`\\b${id}\\b`));
            return true;
          },
        );
        await assertNothingWritten(tasks, before);
      });

      it("an input that is not plain JSON or over maxValueBytes is refused, storing nothing", async () => {
        await assert.rejects(tasks.submit({ kind: "k", input: { when: new Date() } }), InvalidValueError);
        await assert.rejects(tasks.submit({ kind: "k", input: { n: Number.NaN } }), InvalidValueError);
        assert.deepEqual(await state(tasks), { head: 0, tasks: [] });

        const small = await newColony({ maxValueBytes: 1024 });
        try {
          const board = await small.colony.tasks(BOARD);
          const fits = await board.submit({ kind: "k", input: "x".repeat(1000) });
          const before = await state(board);
          await assert.rejects(board.submit({ kind: "k", input: "x".repeat(2000) }), (error: unknown) => {
            assert.ok(error instanceof InvalidValueError);
            assert.equal(error.code, "VALUE_TOO_LARGE");
            return true;
          });
          await assertNothingWritten(board, before);

          // A result over the limit is refused too; the claim still holds and can record a small one.
          const held = await board.claim({ worker: "w1", capabilities: ["k"], leaseMs: LONG_LEASE_MS });
          assert.ok(held);
          assert.equal(held.id, fits.id);
          const claimedState = await state(board);
          await assert.rejects(board.complete(fits.id, { big: "y".repeat(2000) }, { generation: held.generation }), InvalidValueError);
          await assertNothingWritten(board, claimedState);
          const done = await board.complete(fits.id, "small", { generation: held.generation });
          assert.equal(done.status, "succeeded");
          assert.equal(done.result, "small");
        } finally {
          await small.cleanup();
        }
      });
    });

    describe("claim", () => {
      it("claimMany takes up to max tasks in line order (priority, then age), each under its own lease", async () => {
        await tasks.submitAll([
          { id: "a", kind: "k" },
          { id: "b", kind: "k", priority: 5 },
          { id: "c", kind: "k" },
          { id: "d", kind: "other" },
          { id: "e", kind: "k" },
        ]);
        const first = await tasks.claimMany({ worker: "w1", capabilities: ["k"], leaseMs: 5000, max: 3 });
        assert.deepEqual(first.map((t) => t.id), ["b", "a", "c"]);
        for (const task of first) {
          assert.equal(task.status, "claimed");
          assert.equal(task.owner, "w1");
          assert.equal(task.leaseUntil, task.updatedAt + 5000);
        }
        assert.deepEqual((await tasks.claimMany({ worker: "w2", capabilities: ["k", "other"], leaseMs: 5000, max: 5 })).map((t) => t.id), ["d", "e"]);
        assert.deepEqual(await tasks.claimMany({ worker: "w3", capabilities: ["k", "other"], leaseMs: 5000, max: 2 }), []);
        assert.equal((await eventsOf(tasks)).filter((e) => e.type === "claimed").length, 5);
        await assert.rejects(tasks.claimMany({ worker: "w1", capabilities: ["k"], leaseMs: 5000, max: 0 }), invalid(/max/));
        await assert.rejects(tasks.claimMany({ worker: "w1", capabilities: ["k"], leaseMs: 5000, max: 1.5 }), invalid(/max/));
      });

      it("completeAndClaim records the result and claims the next in one step; a stale generation does neither", async () => {
        await tasks.submitAll([
          { id: "one", kind: "k" },
          { id: "two", kind: "k" },
          { id: "three", kind: "k" },
        ]);
        const held = await claimed("w1");
        const next = { worker: "w1", capabilities: ["k"], leaseMs: 5000 };
        const head = await tasks.head();
        const { task, claimed: more } = await tasks.completeAndClaim(held.id, "r1", { generation: held.generation }, { ...next, max: 2 });
        assert.equal(task.status, "succeeded");
        assert.equal(task.result, "r1");
        assert.deepEqual(more.map((t) => [t.id, t.status, t.owner]), [["two", "claimed", "w1"], ["three", "claimed", "w1"]]);
        assert.deepEqual((await eventsOf(tasks, head)).map((e) => [e.type, e.task.id]), [["succeeded", "one"], ["claimed", "two"], ["claimed", "three"]]);

        await assert.rejects(tasks.completeAndClaim(held.id, "again", { generation: held.generation }, { ...next, max: 1 }), isStale(held.id, held.generation));
        await tasks.submit({ id: "four", kind: "k" });
        await assert.rejects(tasks.completeAndClaim(more[0]!.id, "r2", { generation: more[0]!.generation - 1 }, { ...next, max: 1 }), StaleTaskError);
        assert.equal((await get("four")).status, "pending", "a refused completion claims nothing");
        const done = await tasks.completeAndClaim(more[0]!.id, "r2", { generation: more[0]!.generation });
        assert.deepEqual([done.task.status, done.claimed], ["succeeded", []], "without next it only completes");
      });

      it("pending → claimed → succeeded, each move a new generation and an event", async () => {
        const task = await tasks.submit({ kind: "k", input: "in" });
        const before = Date.now();
        const held = await claimed("w1", ["k"], 5000);
        assert.equal(held.id, task.id);
        assert.equal(held.status, "claimed");
        assert.equal(held.owner, "w1");
        assert.equal(held.generation, task.generation + 1);
        assert.equal(held.leaseMs, 5000);
        assert.equal(held.leaseUntil, held.updatedAt + 5000);
        assert.ok(held.updatedAt >= before);
        assert.equal(held.attempts, 0, "a claim uses no attempt until it fails or lapses");
        assert.deepEqual(await get(task.id), held);

        const done = await tasks.complete(task.id, { answer: 42 }, { generation: held.generation });
        assert.equal(done.status, "succeeded");
        assert.deepEqual(done.result, { answer: 42 });
        assert.equal(done.generation, held.generation + 1);
        assert.equal(done.leaseUntil, undefined);
        assert.deepEqual(await get(task.id), done);
        const events = await eventsOf(tasks);
        assert.deepEqual(events.map((e) => e.type), ["submitted", "claimed", "succeeded"]);
        assert.deepEqual(events.map((e) => e.task.generation), [1, 2, 3]);
        assert.deepEqual(events[2]!.task, done);
      });

      it("an ended task never changes again: complete, fail, heartbeat are stale; cancel leaves it", async () => {
        await tasks.submit({ kind: "k" });
        const held = await claimed();
        const done = await tasks.complete(held.id, "first", { generation: held.generation });
        const before = await state(tasks);
        await assert.rejects(tasks.complete(held.id, "second", { generation: held.generation }), isStale(held.id, held.generation));
        await assert.rejects(tasks.complete(held.id, "third", { generation: done.generation }), StaleTaskError);
        await assert.rejects(tasks.fail(held.id, "late", { generation: held.generation }), StaleTaskError);
        await assert.rejects(tasks.heartbeat(held.id, { generation: done.generation }), StaleTaskError);
        assert.deepEqual(await tasks.cancel(held.id), done);
        await assertNothingWritten(tasks, before);
        assert.equal(await claim(), undefined);
      });

      it("an empty board gives undefined and records nothing", async () => {
        assert.equal(await claim(), undefined);
        assert.equal(await tasks.head(), 0);
      });

      it("only a worker offering the task's capability gets it", async () => {
        const task = await tasks.submit({ kind: "summarise", capability: "gpu" });
        assert.equal(await claim("w1", ["summarise"]), undefined, "the kind is not the capability once one is set");
        assert.equal(await claim("w1", ["cpu", "disk"]), undefined);
        const held = await claimed("w2", ["cpu", "gpu"]);
        assert.equal(held.id, task.id);
        assert.equal(held.owner, "w2");
      });

      it("many concurrent claims give each task to exactly one claimer", async () => {
        const submitted = await tasks.submitAll(Array.from({ length: 25 }, (_, i) => ({ kind: "k", input: i })));
        const results = await Promise.all(Array.from({ length: 80 }, (_, i) => claim(`w${i % 8}`)));
        const got = results.filter((t): t is Task => t !== undefined);
        assert.equal(got.length, submitted.length);
        assert.deepEqual(got.map((t) => t.id).sort(), submitted.map((t) => t.id).sort());
        for (const task of got) {
          const stored = await get(task.id);
          assert.equal(stored.owner, task.owner);
          assert.equal(stored.generation, task.generation);
        }
        assert.equal((await tasks.list({ status: "claimed" })).length, submitted.length);
        assert.equal((await eventsOf(tasks)).filter((e) => e.type === "claimed").length, submitted.length);
        assert.equal(await claim(), undefined);
      });

      it("highest priority first, then oldest", async () => {
        const ids = ["low-old", "high-old", "mid", "high-new", "low-new", "negative"];
        const priorities = [0, 5, 2, 5, 0, -3];
        for (const [i, id] of ids.entries()) await tasks.submit({ id, kind: "k", priority: priorities[i] });
        const order: string[] = [];
        for (let task = await claim(); task; task = await claim()) order.push(task.id);
        assert.deepEqual(order, ["high-old", "high-new", "mid", "low-old", "low-new", "negative"]);
      });

      it("a retried task keeps its place by age", async () => {
        await tasks.submitAll([
          { id: "first", kind: "k", backoff: NO_BACKOFF },
          { id: "second", kind: "k" },
        ]);
        const held = await claimed();
        assert.equal(held.id, "first");
        await tasks.fail(held.id, "flaky", { generation: held.generation });
        assert.equal((await claimed()).id, "first");
        assert.equal((await claimed()).id, "second");
      });
    });

    describe("dependencies", () => {
      it("a task waits, blocked, until every dependency succeeded, and is claimed in order", async () => {
        const [c, a, b] = await tasks.submitAll([
          { id: "c", kind: "k", dependsOn: ["a", "b"], priority: 100 },
          { id: "a", kind: "k" },
          { id: "b", kind: "k", dependsOn: ["a"], priority: 50 },
        ]);
        assert.deepEqual([c!.id, a!.id, b!.id], ["c", "a", "b"], "tasks come back in request order");
        assert.equal(c!.status, "blocked");
        assert.equal(c!.reason, "waiting on a, b");
        assert.equal(a!.status, "pending");
        assert.equal(b!.status, "blocked");
        assert.equal(b!.reason, "waiting on a");

        const first = await claimed();
        assert.equal(first.id, "a", "dependencies come first whatever the priorities");
        assert.equal(await claim(), undefined);
        await tasks.complete("a", 1, { generation: first.generation });
        assert.equal((await get("b")).status, "pending");
        const c1 = await get("c");
        assert.equal(c1.status, "blocked");
        assert.match(c1.reason ?? "", /waiting on b$/);

        const second = await claimed();
        assert.equal(second.id, "b");
        assert.equal(await claim(), undefined);
        await tasks.complete("b", 2, { generation: second.generation });
        const third = await claimed();
        assert.equal(third.id, "c");
        assert.equal(third.reason, undefined);

        const unblocked = (await eventsOf(tasks)).filter((e) => e.type === "unblocked").map((e) => e.task.id);
        assert.deepEqual(unblocked, ["b", "c"]);
      });

      it("dependsOn may name tasks already on the board, finished or not", async () => {
        await tasks.submit({ id: "old", kind: "k" });
        const held = await claimed();
        await tasks.complete("old", "ok", { generation: held.generation });
        await tasks.submit({ id: "running", kind: "k" });
        const ready = await tasks.submit({ id: "ready", kind: "k", dependsOn: ["old"] });
        assert.equal(ready.status, "pending");
        const waiting = await tasks.submit({ id: "waiting", kind: "k", dependsOn: ["old", "running", "running"] });
        assert.equal(waiting.status, "blocked");
        assert.deepEqual(waiting.dependsOn, ["old", "running"]);
      });

      for (const how of ["failed", "dead", "cancelled"] as const) {
        it(`dependents of a ${how} task fail with a reason naming it, transitively, and never hang`, async () => {
          await tasks.submitAll([
            { id: "dep", kind: "k", maxAttempts: 1 },
            { id: "child", kind: "k", dependsOn: ["dep"] },
            { id: "grandchild", kind: "k", dependsOn: ["child"] },
            { id: "bystander", kind: "k" },
          ]);
          const waiting = tasks.wait("grandchild");
          if (how === "cancelled") {
            await tasks.cancel("dep");
          } else {
            const held = await claimed("w1", ["k"]);
            assert.equal(held.id, "dep");
            await tasks.fail("dep", "broken pipe", { generation: held.generation, retryable: how === "dead" });
          }
          assert.equal((await get("dep")).status, how);
          const child = await get("child");
          assert.equal(child.status, "failed");
          assert.match(child.reason ?? "", /dep/);
          assert.match(child.reason ?? "", how === "cancelled" ? /cancelled/ : /broken pipe/);
          const grandchild = await waiting;
          assert.equal(grandchild.status, "failed");
          assert.match(grandchild.reason ?? "", /child/);
          assert.equal((await get("bystander")).status, "pending");

          // A task submitted after the dependency ended fails at once.
          const late = await tasks.submit({ kind: "k", dependsOn: ["dep"] });
          assert.equal(late.status, "failed");
          assert.match(late.reason ?? "", /dep/);
          assert.equal((await claimed()).id, "bystander");
          assert.equal(await claim(), undefined);
        });
      }
    });

    describe("leases", () => {
      it("release hands a claimed task back unrun: pending at once, no attempt used, the old generation stale", async () => {
        const task = await tasks.submit({ kind: "k" });
        const held = await claimed("w1", ["k"], LONG_LEASE_MS);
        const back = await tasks.release(task.id, { generation: held.generation });
        assert.equal(back.status, "pending");
        assert.equal(back.attempts, 0);
        assert.equal(back.owner, undefined);
        assert.deepEqual(back.failures, []);
        assert.ok(back.generation > held.generation);
        await assert.rejects(tasks.complete(task.id, "late", { generation: held.generation }), StaleTaskError);
        await assert.rejects(tasks.release(task.id, { generation: held.generation }), StaleTaskError);
        const again = await claimed("w2");
        assert.equal(again.id, task.id);
        assert.equal((await tasks.complete(task.id, "w2's", { generation: again.generation })).result, "w2's");
      });

      it("a lapsed lease returns the task to pending with attempts + 1; the stale complete records nothing", async () => {
        const task = await tasks.submit({ kind: "k", backoff: NO_BACKOFF });
        const held = await claimed("w1", ["k"], SHORT_LEASE_MS);
        await past(held.leaseUntil!, "the lease to lapse");
        // Nothing has read the board since the lease lapsed: the complete itself must refuse.
        const head = await tasks.head();
        await assert.rejects(tasks.complete(task.id, "too late", { generation: held.generation }), isStale(task.id, held.generation));
        await assert.rejects(tasks.fail(task.id, "too late", { generation: held.generation }), StaleTaskError);
        await assert.rejects(tasks.heartbeat(task.id, { generation: held.generation }), StaleTaskError);
        assert.equal(await tasks.head(), head, "a stale call appends no event");

        const lapsed = await get(task.id);
        assert.equal(lapsed.status, "pending");
        assert.equal(lapsed.attempts, 1);
        assert.equal(lapsed.owner, undefined);
        assert.equal(lapsed.result, undefined);
        assert.ok(lapsed.generation > held.generation);
        assert.equal(lapsed.failures.length, 1);
        assert.equal(lapsed.failures[0]!.attempt, 1);
        assert.equal(lapsed.failures[0]!.kind, "lease");
        assert.equal(lapsed.failures[0]!.worker, "w1");
        assert.equal((await eventsOf(tasks)).at(-1)!.type, "released");

        const again = await claimed("w2");
        assert.equal(again.id, task.id);
        assert.ok(again.generation > lapsed.generation);
        await assert.rejects(tasks.complete(task.id, "w1 again", { generation: held.generation }), StaleTaskError);
        const done = await tasks.complete(task.id, "w2's", { generation: again.generation });
        assert.equal(done.result, "w2's");
        await assert.rejects(tasks.complete(task.id, "w1 once more", { generation: held.generation }), StaleTaskError);
        const final = await get(task.id);
        assert.equal(final.status, "succeeded");
        assert.equal(final.result, "w2's");
        assert.equal(final.attempts, 1);
        assert.equal((await eventsOf(tasks)).filter((e) => e.type === "succeeded").length, 1);
      });

      it("heartbeats extend the lease without an event; a stale heartbeat throws", async () => {
        await tasks.submitAll([
          { id: "kept", kind: "k" },
          { id: "dropped", kind: "k", backoff: NO_BACKOFF },
        ]);
        // Long enough to outlast the round trips up to its heartbeats on a loaded machine.
        const kept = await claimed("w1", ["k"], HELD_LEASE_MS);
        const head = await tasks.head();
        const beat = await tasks.heartbeat(kept.id, { generation: kept.generation });
        assert.equal(beat.generation, kept.generation, "a heartbeat is not a state change");
        assert.equal(beat.leaseUntil, beat.updatedAt + HELD_LEASE_MS, "by default as long as the claim's lease");
        const longer = await tasks.heartbeat(kept.id, { generation: kept.generation, leaseMs: LONG_LEASE_MS });
        assert.equal(longer.leaseUntil, longer.updatedAt + LONG_LEASE_MS);
        assert.equal(longer.status, "claimed");
        assert.equal(await tasks.head(), head);
        // The same lease as kept's, claimed after it: it ends after kept's first lease would have.
        const dropped = await claimed("w2", ["k"], HELD_LEASE_MS);
        assert.equal(dropped.id, "dropped");
        assert.ok(dropped.leaseUntil! >= kept.leaseUntil!);

        await assert.rejects(tasks.heartbeat(kept.id, { generation: kept.generation - 1 }), isStale(kept.id, kept.generation - 1));
        await assert.rejects(tasks.heartbeat(kept.id, { generation: kept.generation + 1 }), StaleTaskError);
        await assert.rejects(tasks.heartbeat(kept.id, {} as { generation: number }), invalid(/generation/));
        await assert.rejects(tasks.heartbeat(kept.id, { generation: kept.generation, leaseMs: 0 }), invalid(/leaseMs/));
        await assert.rejects(tasks.heartbeat("ghost", { generation: 1 }), InvalidTaskError);

        await past(dropped.leaseUntil!, "dropped's lease, without heartbeats, to lapse");
        const stillHeld = await get(kept.id);
        assert.equal(stillHeld.status, "claimed");
        assert.equal(stillHeld.owner, "w1");
        assert.equal(stillHeld.generation, kept.generation);
        assert.equal((await get(dropped.id)).status, "pending", "without heartbeats the same lease lapsed");
        await assert.rejects(tasks.heartbeat(dropped.id, { generation: dropped.generation }), StaleTaskError);
        assert.equal((await tasks.complete(kept.id, "ok", { generation: kept.generation })).status, "succeeded");
      });

      it("a lapsed lease's retry backoff counts from when the lease ended, not from when it was noticed", async () => {
        const task = await tasks.submit({ kind: "k", backoff: { baseMs: 200 } });
        const held = await claimed("w1", ["k"], SHORT_LEASE_MS);
        // Nobody looks until the lease and its backoff are both over.
        await past(held.leaseUntil! + 200, "the lease and its backoff to be over");
        const lapsed = await get(task.id);
        assert.equal(lapsed.status, "pending");
        assert.equal(lapsed.runAfter, held.leaseUntil! + 200);
        assert.equal((await claimed("w2")).id, task.id, "its backoff is already over");
      });

      it("a lapse past maxAttempts makes the task dead", async () => {
        await tasks.submit({ id: "once", kind: "k", maxAttempts: 1 });
        const held = await claimed("w1", ["k"], SHORT_LEASE_MS);
        await past(held.leaseUntil!, "the lease to lapse");
        const dead = await get("once");
        assert.equal(dead.status, "dead");
        assert.equal(dead.attempts, 1);
        assert.deepEqual(dead.failures.map((f) => [f.attempt, f.kind, f.worker]), [[1, "lease", "w1"]]);
        assert.equal(await claim(), undefined);
      });
    });

    describe("failure and retries", () => {
      it("retries back off exponentially up to maxMs; past maxAttempts the task is dead with its failures", async () => {
        const task = await tasks.submit({ kind: "k", maxAttempts: 5, backoff: { baseMs: 10, maxMs: 50 } });
        const delays: number[] = [];
        for (let attempt = 1; attempt <= 5; attempt++) {
          const held = await eventually(() => claim(), `attempt ${attempt}`);
          assert.equal(held.id, task.id);
          assert.equal(held.attempts, attempt - 1);
          const after = await tasks.fail(task.id, new Error(`e${attempt}`), { generation: held.generation });
          assert.equal(after.attempts, attempt);
          assert.equal(after.error, `e${attempt}`);
          assert.equal(after.owner, undefined);
          if (attempt < 5) {
            assert.equal(after.status, "pending");
            assert.ok(after.runAfter !== undefined);
            delays.push(after.runAfter - after.updatedAt);
          } else {
            assert.equal(after.status, "dead");
            assert.match(after.reason ?? "", /5 attempt/);
          }
        }
        assert.deepEqual(delays, [10, 20, 40, 50], "baseMs × 2^(attempt − 1), at most maxMs");
        const dead = await get(task.id);
        assert.equal(dead.status, "dead");
        assert.deepEqual(
          dead.failures.map((f) => [f.attempt, f.kind, f.worker, f.error]),
          [1, 2, 3, 4, 5].map((n) => [n, "error", "w1", `e${n}`]),
        );
        assert.equal(await claim(), undefined);
        const types = (await eventsOf(tasks)).map((e) => e.type);
        assert.deepEqual(types, ["submitted", ...Array<TaskEventType>(4).fill("claimed").flatMap((c) => [c, "retrying" as const]), "claimed", "dead"]);
      });

      it("a task in backoff is not claimed before runAfter; others are", async () => {
        await tasks.submit({ id: "slow", kind: "k", priority: 10, backoff: { baseMs: 60_000 } });
        const held = await claimed();
        const after = await tasks.fail("slow", "try later", { generation: held.generation });
        assert.equal(after.status, "pending");
        assert.ok(after.runAfter! >= after.updatedAt + 60_000);
        assert.match(after.reason ?? "", /retry/);
        assert.equal(await claim(), undefined);
        await tasks.submit({ id: "other", kind: "k" });
        assert.equal((await claimed("w2")).id, "other", "the retry waits; the lower-priority task does not");
        assert.equal(await claim("w3"), undefined);
        assert.equal((await get("slow")).status, "pending");
      });

      it("a non-retryable failure ends the task failed at once", async () => {
        await tasks.submit({ id: "x", kind: "k", maxAttempts: 5 });
        const held = await claimed();
        const failed = await tasks.fail("x", "bad input", { generation: held.generation, retryable: false });
        assert.equal(failed.status, "failed");
        assert.equal(failed.attempts, 1);
        assert.equal(failed.error, "bad input");
        assert.match(failed.reason ?? "", /bad input/);
        assert.deepEqual(failed.failures.map((f) => [f.attempt, f.kind, f.error]), [[1, "error", "bad input"]]);
        assert.equal(await claim(), undefined);
        assert.deepEqual((await eventsOf(tasks)).map((e) => e.type), ["submitted", "claimed", "failed"]);
        await assert.rejects(tasks.fail("x", "again", { generation: held.generation, retryable: false }), StaleTaskError);
      });

      it("complete and fail need the claim's generation", async () => {
        await tasks.submit({ id: "x", kind: "k" });
        const held = await claimed();
        const before = await state(tasks);
        await assert.rejects(tasks.complete("x", 1, {} as { generation: number }), invalid(/generation/));
        await assert.rejects(tasks.fail("x", "e", { generation: 0 }), invalid(/generation/));
        await assert.rejects(tasks.complete("x", 1, { generation: held.generation - 1 }), isStale("x", held.generation - 1));
        await assert.rejects(tasks.complete("ghost", 1, { generation: 1 }), InvalidTaskError);
        await assertNothingWritten(tasks, before);
      });
    });

    describe("cancel", () => {
      it("cancels a task and its subtasks, leaving ended ones and others alone", async () => {
        await tasks.submit({ id: "root", kind: "plan" });
        await tasks.submitAll([
          { id: "pending-child", kind: "k", parentId: "root" },
          { id: "claimed-child", kind: "busy", parentId: "root" },
          { id: "done-child", kind: "quick", parentId: "root" },
          { id: "blocked-child", kind: "k", parentId: "root", dependsOn: ["pending-child"] },
          { id: "bystander", kind: "k" },
        ]);
        await tasks.submit({ id: "grandchild", kind: "k", parentId: "pending-child" });
        const quick = await claimed("w1", ["quick"]);
        await tasks.complete(quick.id, "kept", { generation: quick.generation });
        const busy = await claimed("w2", ["busy"]);

        const root = await tasks.cancel("root");
        assert.equal(root.status, "cancelled");
        for (const id of ["pending-child", "claimed-child", "blocked-child", "grandchild"]) {
          const task = await get(id);
          assert.equal(task.status, "cancelled", id);
          assert.match(task.reason ?? "", /root/);
        }
        assert.equal((await get("done-child")).status, "succeeded");
        assert.equal((await get("done-child")).result, "kept");
        assert.equal((await get("bystander")).status, "pending");

        // The claimed one's worker finds out when it tries to record.
        await assert.rejects(tasks.complete("claimed-child", "late", { generation: busy.generation }), isStale("claimed-child", busy.generation));
        await assert.rejects(tasks.heartbeat("claimed-child", { generation: busy.generation }), StaleTaskError);
        const cancelled = await get("claimed-child");
        assert.equal(cancelled.status, "cancelled");
        assert.equal(cancelled.result, undefined);

        const events = await eventsOf(tasks);
        assert.deepEqual(
          events.filter((e) => e.type === "cancelled").map((e) => e.task.id).sort(),
          ["blocked-child", "claimed-child", "grandchild", "pending-child", "root"],
        );
        assert.equal((await claimed("w3", ["k", "plan", "busy", "quick"])).id, "bystander");
        assert.equal(await claim("w3", ["k", "plan", "busy", "quick"]), undefined);
      });

      it("cancel of an unknown task is InvalidTaskError", async () => {
        await assert.rejects(tasks.cancel("ghost"), invalid(/ghost/));
      });
    });

    describe("get and list", () => {
      it("get of an unknown id is undefined", async () => {
        assert.equal(await tasks.get("ghost"), undefined);
      });

      it("list filters by status, kind and parentId, in submit order", async () => {
        await tasks.submit({ id: "p", kind: "plan" });
        await tasks.submitAll([
          { id: "a", kind: "k", parentId: "p" },
          { id: "b", kind: "other", parentId: "p" },
          { id: "c", kind: "k" },
          { id: "d", kind: "k", dependsOn: ["c"] },
        ]);
        const held = await claimed("w1", ["other"]);
        assert.deepEqual((await tasks.list()).map((t) => t.id), ["p", "a", "b", "c", "d"]);
        assert.deepEqual((await tasks.list({ kind: "k" })).map((t) => t.id), ["a", "c", "d"]);
        assert.deepEqual((await tasks.list({ parentId: "p" })).map((t) => t.id), ["a", "b"]);
        assert.deepEqual((await tasks.list({ status: "blocked" })).map((t) => t.id), ["d"]);
        assert.deepEqual((await tasks.list({ status: "claimed" })).map((t) => t.id), [held.id]);
        assert.deepEqual((await tasks.list({ status: "pending", kind: "k", parentId: "p" })).map((t) => t.id), ["a"]);
        assert.deepEqual(await tasks.list({ status: "dead" }), []);
        await assert.rejects(tasks.list({ status: "done" } as unknown as { status: "dead" }), invalid(/status/));
        await assert.rejects(tasks.list({ owner: "w1" } as unknown as { kind: string }), invalid(/owner/));
      });
    });

    describe("watch and wait", () => {
      it("watch yields every state change in order with a gap-free seq, and resumes from since", async () => {
        const controller = new AbortController();
        const seen: TaskEvent[] = [];
        let reached: () => void = () => {};
        const nine = new Promise<void>((resolve) => (reached = resolve));
        const watching = (async () => {
          for await (const event of tasks.watch({ since: 0, signal: controller.signal })) {
            seen.push(event);
            if (seen.length === 9) reached();
          }
        })();

        await tasks.submit({ id: "a", kind: "k" });
        await tasks.submit({ id: "b", kind: "k", dependsOn: ["a"] });
        const a = await claimed();
        await tasks.complete("a", "A", { generation: a.generation });
        const b = await claimed();
        await tasks.fail("b", "no", { generation: b.generation, retryable: false });
        await tasks.submit({ id: "c", kind: "k" });
        await tasks.cancel("c");
        await nine;
        controller.abort();
        await watching;

        assertGapFree(seen);
        const expected: [TaskEventType, string, string][] = [
          ["submitted", "a", "pending"],
          ["submitted", "b", "blocked"],
          ["claimed", "a", "claimed"],
          ["succeeded", "a", "succeeded"],
          ["unblocked", "b", "pending"],
          ["claimed", "b", "claimed"],
          ["failed", "b", "failed"],
          ["submitted", "c", "pending"],
          ["cancelled", "c", "cancelled"],
        ];
        assert.deepEqual(seen.map((e) => [e.type, e.task.id, e.task.status]), expected);
        for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.at >= seen[i - 1]!.at);
        for (const id of ["a", "b", "c"]) assert.deepEqual(seen.filter((e) => e.task.id === id).at(-1)!.task, await get(id));

        assert.deepEqual(await eventsOf(tasks, 4), seen.slice(4));
        assert.deepEqual(await eventsOf(tasks), seen);
        assert.equal(await tasks.head(), 9);
      });

      it("watch without since starts from now; close ends it", async () => {
        await tasks.submit({ id: "before", kind: "k" });
        const seen: TaskEvent[] = [];
        const watching = (async () => {
          for await (const event of tasks.watch()) seen.push(event);
        })();
        // "Now" is where the board stood when the watch began: a task submitted right after it
        // (even before the watch has read anything) is shown, and nothing from before.
        await tasks.submit({ id: "after-0", kind: "k" });
        await tasks.submit({ id: "after-1", kind: "k" });
        await eventually(async () => seen.length >= 2, "the watch to show the two tasks submitted after it began");
        tasks.close();
        await watching;
        assert.deepEqual(
          seen.map((e) => [e.seq, e.type, e.task.id]),
          [
            [2, "submitted", "after-0"],
            [3, "submitted", "after-1"],
          ],
        );
        await assert.rejects(tasks.submit({ kind: "k" }), ClosedError);
        await assert.rejects(claim(), ClosedError);
      });

      it("wait resolves with the ended task; at once if it has ended; unknown ids are refused", async () => {
        await tasks.submit({ id: "x", kind: "k" });
        // What happened, in order: the wait's end must come after the complete, with what it recorded.
        const order: string[] = [];
        const waiting = tasks.wait("x").then((task) => {
          order.push(`wait ended: ${task.status}`);
          return task;
        });
        const held = await claimed();
        // A wait that took the claimed task for an ended one ends with it, before the complete or
        // after, but with the claimed task: the order and the status say so either way.
        order.push("complete asked");
        const completed = await tasks.complete("x", "X", { generation: held.generation });
        const done = await waiting;
        assert.deepEqual(order, ["complete asked", "wait ended: succeeded"], "a claimed task has not ended");
        assert.equal(done.status, "succeeded");
        assert.equal(done.result, "X");
        assert.deepEqual(done, completed);
        assert.deepEqual(await tasks.wait("x"), done);
        await assert.rejects(tasks.wait("ghost"), invalid(/ghost/));

        await tasks.submit({ id: "y", kind: "k" });
        const controller = new AbortController();
        const aborted = tasks.wait("y", { signal: controller.signal });
        controller.abort();
        await assert.rejects(aborted, (error: unknown) => {
          assert.ok(error instanceof DOMException, `expected the signal's AbortError, got ${String(error)}`);
          assert.equal(error.name, "AbortError");
          assert.equal(error, controller.signal.reason, "the signal's own reason");
          return true;
        });
        assert.equal((await get("y")).status, "pending", "an aborted wait changes nothing");
      });

      it("wait notices a lapsed lease with nobody else using the board", async () => {
        await tasks.submit({ id: "orphan", kind: "k", maxAttempts: 1 });
        await claimed("w1", ["k"], SHORT_LEASE_MS);
        const dead = await tasks.wait("orphan");
        assert.equal(dead.status, "dead");
        assert.equal(dead.failures[0]!.kind, "lease");
      });

      it("hundreds of waits at once each end with their own task, and watchers beside them see every event", async () => {
        const n = 300;
        const submitted: Task[] = [];
        for (let i = 0; i < n; i += 100) submitted.push(...(await tasks.submitAll(Array.from({ length: 100 }, (_, j) => ({ kind: "k", input: i + j })))));
        const since = await tasks.head();
        const watched = eventsUpTo(tasks, since, since + 2 * n);
        const waits = submitted.map((task) => tasks.wait(task.id));
        for (let done = 0; done < n; ) {
          const batch = await tasks.claimMany({ worker: "w1", capabilities: ["k"], leaseMs: LONG_LEASE_MS, max: 50 });
          for (const task of batch) await tasks.complete(task.id, (task.input as number) * 2, { generation: task.generation });
          done += batch.length;
        }
        const ended = await Promise.all(waits);
        assert.deepEqual(
          ended.map((t) => [t.id, t.status, t.result]),
          submitted.map((t) => [t.id, "succeeded", (t.input as number) * 2]),
        );
        const events = await watched;
        assertGapFree(events, since + 1);
        assert.equal(events.filter((e) => e.type === "succeeded").length, n);
      });

      it("a watcher that stops reading for a while still gets every event in order, as does one that starts later", async () => {
        const since = await tasks.head();
        const slow = tasks.watch({ since })[Symbol.asyncIterator]();
        await tasks.submit({ id: "first", kind: "k" });
        const first = await slow.next();
        assert.equal(first.done, false);
        // Far more than a watcher is held for while it does not read (see TaskEventRouter).
        for (let i = 0; i < 1500; i += 250) await tasks.submitAll(Array.from({ length: 250 }, () => ({ kind: "k" })));
        const head = await tasks.head();
        const events = [first.value as TaskEvent];
        while (events.at(-1)!.seq < head) {
          const next = await slow.next();
          assert.equal(next.done, false);
          events.push(next.value as TaskEvent);
        }
        await slow.return(undefined);
        assertGapFree(events, since + 1);
        assert.equal(events.length, 1501);
        // Everyone left; one that starts afterwards from the middle reads on from there.
        assertGapFree(await eventsOf(tasks, since + 700), since + 701);
      });
    });

    describe("registry", () => {
      it("heartbeatWorker registers and renews; a silent worker is marked offline", async () => {
        const registered = await register("w1", { capabilities: ["k", "gpu"], concurrency: 3 });
        assert.equal(registered.id, "w1");
        assert.equal(registered.status, "online");
        assert.deepEqual(registered.capabilities, ["k", "gpu"]);
        await register("w2");
        // So that the renewal's heartbeat is stamped later than the first.
        await past(registered.heartbeatAt, "the clock to move past the first heartbeat");
        const renewed = await register("w1", { capabilities: ["k", "gpu"], concurrency: 3, running: 2 });
        assert.equal(renewed.startedAt, registered.startedAt);
        assert.ok(renewed.heartbeatAt > registered.heartbeatAt);
        assert.deepEqual(
          (await tasks.workers()).map((w) => [w.id, w.status, w.running]),
          [
            ["w1", "online", 2],
            ["w2", "online", 0],
          ],
        );
        // Its last heartbeat gives a short ttl; then it is silent until that has passed.
        const last = await register("w1", { capabilities: ["k", "gpu"], concurrency: 3, ttlMs: SHORT_LEASE_MS, running: 2 });
        await past(last.heartbeatAt + last.ttlMs, "w1's ttl to pass without a heartbeat");
        assert.deepEqual((await tasks.workers()).map((w) => [w.id, w.status]), [["w1", "offline"], ["w2", "online"]]);
        await register("w1");
        assert.equal((await tasks.workers()).find((w) => w.id === "w1")?.status, "online");
      });

      it("a worker that goes silent loses its claims at once, long before their leases end", async () => {
        await register("w1");
        await tasks.submit({ id: "x", kind: "k", backoff: NO_BACKOFF });
        const held = await claimed("w1", ["k"], LONG_LEASE_MS);
        // Its last heartbeat gives a short ttl; then it is silent until that has passed.
        const last = await register("w1", { ttlMs: SHORT_LEASE_MS });
        await past(last.heartbeatAt + last.ttlMs, "w1's ttl to pass without a heartbeat");
        const lapsed = await get("x");
        assert.equal(lapsed.status, "pending");
        assert.equal(lapsed.attempts, 1);
        assert.equal(lapsed.failures[0]!.kind, "lease");
        assert.equal(lapsed.failures[0]!.worker, "w1");
        assert.match(lapsed.failures[0]!.error, /offline/);
        assert.equal((await tasks.workers())[0]!.status, "offline");
        await assert.rejects(tasks.complete("x", "late", { generation: held.generation }), StaleTaskError);
        const again = await claimed("w2");
        assert.equal((await tasks.complete("x", "w2", { generation: again.generation })).result, "w2");
      });
    });

    describe("routes", () => {
      it("direct: only the named worker may claim it", async () => {
        await register("w1");
        await register("w2");
        const task = await tasks.submit({ kind: "k", route: { mode: "direct", worker: "w2" } });
        assert.equal(task.assignee, "w2");
        assert.equal(await claim("w1"), undefined);
        assert.equal(await claim("stranger"), undefined);
        const held = await claimed("w2");
        assert.equal(held.id, task.id);
      });

      it("direct to a worker that is unknown, offline or lacks the capability is NoWorkerError, storing nothing", async () => {
        await register("w1", { capabilities: ["k"] });
        const brief = await register("brief", { ttlMs: SHORT_LEASE_MS });
        await past(brief.heartbeatAt + brief.ttlMs, "brief's ttl to pass without a heartbeat");
        const before = await state(tasks);
        for (const [worker, pattern] of [
          ["ghost", /ghost/],
          ["brief", /brief/],
        ] as const) {
          await assert.rejects(tasks.submit({ kind: "k", route: { mode: "direct", worker } }), (error: unknown) => {
            assert.ok(error instanceof NoWorkerError);
            assert.equal(error.code, "NO_WORKER");
            assert.match(error.message, pattern);
            return true;
          });
        }
        await assert.rejects(tasks.submit({ kind: "gpu-job", route: { mode: "direct", worker: "w1" } }), (error: unknown) => {
          assert.ok(error instanceof NoWorkerError);
          assert.match(error.message, /gpu-job/);
          return true;
        });
        await assert.rejects(
          tasks.submitAll([{ id: "ok", kind: "k" }, { kind: "k", route: { mode: "direct", worker: "ghost" } }]),
          NoWorkerError,
        );
        // `before` was taken after the read that marked "brief" offline.
        await assertNothingWritten(tasks, before);
      });

      it("direct: when its worker goes offline the task fails, and so do its dependents", async () => {
        await register("w1");
        await register("w2");
        await tasks.submitAll([
          { id: "pinned", kind: "k", route: { mode: "direct", worker: "w1" } },
          { id: "after", kind: "k", dependsOn: ["pinned"] },
          { id: "gate", kind: "gate" },
          { id: "pinned-later", kind: "k", dependsOn: ["gate"], route: { mode: "direct", worker: "w1" } },
        ]);
        // w1's last heartbeat gives a short ttl; then it is silent until that has passed.
        const last = await register("w1", { ttlMs: SHORT_LEASE_MS });
        await past(last.heartbeatAt + last.ttlMs, "w1's ttl to pass without a heartbeat");
        assert.equal(await claim("w2"), undefined);
        const pinned = await get("pinned");
        assert.equal(pinned.status, "failed");
        assert.match(pinned.reason ?? "", /w1/);
        assert.equal((await get("after")).status, "failed");

        // One still blocked when its worker left fails when its dependency is done, not waits forever.
        const gate = await claimed("w2", ["gate"]);
        await tasks.complete("gate", "open", { generation: gate.generation });
        const later = await get("pinned-later");
        assert.equal(later.status, "failed");
        assert.match(later.reason ?? "", /w1/);
      });

      it("any: reserved for the least loaded live worker, by share of its concurrency", async () => {
        // Reservations that outlast every round trip of the test, however slow.
        await reopen({ reserveMs: LONG_LEASE_MS });
        await register("w1", { concurrency: 4 });
        await register("w2", { concurrency: 1 });
        await register("w3", { capabilities: ["other"] });
        const assignees: (string | undefined)[] = [];
        for (let i = 0; i < 4; i++) assignees.push((await tasks.submit({ id: `t${i}`, kind: "k" })).assignee);
        // Load (reserved + claimed) over concurrency: 0/4 ties 0/1 → w1 by id; 1/4 > 0/1 → w2; 1/4 < 1/1 → w1; 2/4 < 1/1 → w1.
        assert.deepEqual(assignees, ["w1", "w2", "w1", "w1"]);
        const t0 = await get("t0");
        assert.ok(t0.assignedUntil !== undefined && t0.assignedUntil > t0.updatedAt);
        assert.equal(await claim("stranger"), undefined, "everything is reserved for now");
        assert.equal((await claimed("w2")).id, "t1");
        assert.equal(await claim("w2"), undefined);
        assert.deepEqual([(await claimed("w1")).id, (await claimed("w1")).id, (await claimed("w1")).id], ["t0", "t2", "t3"]);
      });

      it("any: once the reservation passes, anyone with the capability may claim it", async () => {
        // Long enough to outlast the one claim it must refuse; then the test waits it out.
        await reopen({ reserveMs: HELD_LEASE_MS });
        await register("w1");
        await register("w2");
        const task = await tasks.submit({ kind: "k" });
        assert.equal(task.assignee, "w1");
        assert.equal(task.assignedUntil, task.updatedAt + HELD_LEASE_MS);
        assert.equal(await claim("w2"), undefined);
        await past(task.assignedUntil!, "the reservation to pass");
        const taken = await claimed("w2");
        assert.equal(taken.id, task.id);
        assert.equal(taken.owner, "w2");
      });

      it("any: a reservation for a worker that goes offline moves to a live one", async () => {
        // A reservation that cannot pass by itself first, however slow the round trips.
        await reopen({ reserveMs: LONG_LEASE_MS });
        await register("w1");
        await register("w2");
        const task = await tasks.submit({ kind: "k" });
        assert.equal(task.assignee, "w1");
        // w1's last heartbeat gives a short ttl; then it is silent until that has passed.
        const last = await register("w1", { ttlMs: SHORT_LEASE_MS });
        await past(last.heartbeatAt + last.ttlMs, "w1's ttl to pass without a heartbeat");
        const moved = await get(task.id);
        assert.equal(moved.status, "pending");
        assert.equal(moved.assignee, "w2");
        const reassigned = (await eventsOf(tasks)).filter((e) => e.type === "reassigned");
        assert.deepEqual(reassigned.map((e) => [e.task.id, e.task.assignee]), [[task.id, "w2"]]);
        assert.equal(await claim("stranger"), undefined);
        assert.equal((await claimed("w2")).id, task.id);
      });

      it("a local worker runs only what fell back to it", async () => {
        await register("local-1", { local: true });
        const [fallen] = await tasks.submitAll([{ kind: "k" }], { fallbackWorker: "local-1" });
        assert.equal(fallen!.assignee, "local-1");
        assert.equal(fallen!.assignedUntil, undefined);
        const other = await tasks.submit({ kind: "k" });
        assert.equal(other.assignee, undefined);
        assert.equal((await claimed("stranger")).id, other.id);
        assert.equal(await claim("stranger"), undefined);
        assert.equal((await claimed("local-1")).id, fallen!.id);
      });

      it("broadcast: one copy per live worker with the capability; the task collects their results", async () => {
        await register("w1");
        await register("w2");
        await register("w3", { capabilities: ["other"] });
        // w1 is busy, so the copies are made least loaded first (w2, w1); each worker still gets one.
        const busy = await tasks.submit({ kind: "k", input: "ping" });
        assert.equal((await claimed("w1")).id, busy.id);
        const broadcast = await tasks.submit({ id: "all", kind: "k", input: "hello", route: { mode: "broadcast" } });
        assert.equal(broadcast.status, "blocked");
        const copies = await tasks.list({ parentId: "all" });
        assert.deepEqual(copies.map((c) => c.route).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))), [
          { mode: "direct", worker: "w1" },
          { mode: "direct", worker: "w2" },
        ]);
        for (const copy of copies) {
          assert.equal(copy.input, "hello");
          assert.equal(copy.status, "pending");
        }
        assert.equal(await claim("w3", ["k", "other"]), undefined);
        const c1 = await claimed("w1");
        assert.equal(c1.parentId, "all");
        assert.equal(await claim("w1"), undefined, "w1 may not take w2's copy");
        const c2 = await claimed("w2");
        assert.equal(c2.parentId, "all");
        const waiting = tasks.wait("all");
        await tasks.complete(c1.id, "from w1", { generation: c1.generation });
        assert.equal((await get("all")).status, "blocked");
        await tasks.complete(c2.id, { n: 2 }, { generation: c2.generation });
        const done = await waiting;
        assert.equal(done.status, "succeeded");
        assert.deepEqual(done.result, { results: { w1: "from w1", w2: { n: 2 } }, errors: {} });
      });

      it("broadcast: a copy that fails makes the task fail, with every worker's outcome", async () => {
        await register("w1");
        await register("w2");
        await tasks.submit({ id: "gate", kind: "gate" });
        await tasks.submit({ id: "all", kind: "k", dependsOn: ["gate"], route: { mode: "broadcast" } });
        assert.equal(await claim("w1"), undefined, "copies wait for the broadcast's dependencies");
        const gate = await claimed("w9", ["gate"]);
        await tasks.complete("gate", null, { generation: gate.generation });
        const c1 = await claimed("w1");
        const c2 = await claimed("w2");
        await tasks.fail(c2.id, "disk full", { generation: c2.generation, retryable: false });
        assert.equal((await get("all")).status, "blocked");
        await tasks.complete(c1.id, "fine", { generation: c1.generation });
        const failed = await get("all");
        assert.equal(failed.status, "failed");
        const result = failed.result as { results: Record<string, unknown>; errors: Record<string, string> };
        assert.deepEqual(result.results, { w1: "fine" });
        assert.deepEqual(Object.keys(result.errors), ["w2"]);
        assert.match(result.errors.w2!, /disk full/);
        assert.match(failed.reason ?? "", /1 of 2/);
      });

      it("broadcast: cancel cancels the copies; no live worker is NoWorkerError", async () => {
        const before = await state(tasks);
        await assert.rejects(tasks.submit({ kind: "k", route: { mode: "broadcast" } }), NoWorkerError);
        await assertNothingWritten(tasks, before);
        await register("w1");
        await register("w2");
        await tasks.submit({ id: "all", kind: "k", route: { mode: "broadcast" } });
        const c1 = await claimed("w1");
        await tasks.cancel("all");
        assert.deepEqual((await tasks.list({ parentId: "all" })).map((c) => c.status), ["cancelled", "cancelled"]);
        assert.equal((await get("all")).status, "cancelled");
        await assert.rejects(tasks.complete(c1.id, "late", { generation: c1.generation }), StaleTaskError);
      });
    });

    describe("push", () => {
      const pushing = (id: string, concurrency: number, extra: Partial<Registration> = {}) => register(id, { concurrency, push: { leaseMs: LONG_LEASE_MS }, ...extra });

      it("a task reserved for a worker that takes pushes, while it has a free slot, is claimed for it at submit under its lease", async () => {
        await pushing("w1", 2);
        const before = Date.now();
        const [a, b, c] = [await tasks.submit({ kind: "k" }), await tasks.submit({ kind: "k" }), await tasks.submit({ kind: "k" })];
        for (const task of [a!, b!]) {
          assert.deepEqual([task.status, task.owner, task.leaseMs, task.attempts, task.generation, task.assignee], ["claimed", "w1", LONG_LEASE_MS, 0, 2, undefined]);
          assert.ok(task.leaseUntil! >= before + LONG_LEASE_MS);
        }
        // Its two slots are held: the third waits, reserved for it.
        assert.deepEqual([c!.status, c!.assignee], ["pending", "w1"]);
        const events = (await eventsOf(tasks)).filter((e) => e.task.id !== c!.id);
        assert.deepEqual(events.map((e) => [e.type, e.task.id]), [["submitted", a!.id], ["claimed", a!.id], ["submitted", b!.id], ["claimed", b!.id]]);
        // What was pushed is held as any claim is: completed with its generation.
        assert.equal((await tasks.complete(a!.id, "done", { generation: a!.generation })).status, "succeeded");
      });

      it("the worker's own claims take no more than its free slots as the board counts them", async () => {
        await pushing("w1", 2);
        const pushed = await tasks.submit({ kind: "k" });
        assert.equal(pushed.owner, "w1");
        await tasks.heartbeatWorker({ id: "w1", capabilities: ["k"], concurrency: 2, running: 0, status: "draining", pid: process.pid, host: "test-host", local: false, ttlMs: LONG_LEASE_MS });
        await tasks.submitAll([{ kind: "k" }, { kind: "k" }, { kind: "k" }]);
        await pushing("w1", 2);
        assert.equal((await tasks.claimMany({ worker: "w1", capabilities: ["k"], leaseMs: LONG_LEASE_MS, max: 5 })).length, 1);
        // A worker that takes no pushes is held to what it asks for, as before.
        await register("w2", { concurrency: 1 });
        assert.equal((await tasks.claimMany({ worker: "w2", capabilities: ["k"], leaseMs: LONG_LEASE_MS, max: 5 })).length, 2);
      });

      it("the worker's next task in line is pushed, not the newest: one of higher priority waiting comes first", async () => {
        await pushing("w1", 1);
        const first = await tasks.submit({ kind: "k" });
        assert.equal(first.owner, "w1");
        const low = await tasks.submit({ kind: "k" });
        const high = await tasks.submit({ kind: "k", priority: 5 });
        await tasks.complete(first.id, null, { generation: first.generation });
        const newest = await tasks.submit({ kind: "k" });
        assert.equal(newest.status, "pending");
        assert.deepEqual([(await get(high.id)).status, (await get(high.id)).owner], ["claimed", "w1"]);
        assert.equal((await get(low.id)).status, "pending");
      });

      it("a dependent that becomes pending is pushed too", async () => {
        await pushing("w1", 1);
        const gate = await tasks.submit({ id: "gate", kind: "k" });
        const after = await tasks.submit({ id: "after", kind: "k", dependsOn: ["gate"] });
        assert.equal(after.status, "blocked");
        await tasks.complete(gate.id, null, { generation: gate.generation });
        assert.deepEqual([(await get("after")).status, (await get("after")).owner], ["claimed", "w1"]);
      });

      it("a worker that comes back as another process under the same id: what the last one held is retried at once, and its slots are free", async () => {
        await pushing("w1", 1, { pid: 111 });
        const held = await tasks.submit({ kind: "k", backoff: NO_BACKOFF });
        assert.equal(held.owner, "w1");
        // Its own heartbeat, same process: nothing moves.
        await pushing("w1", 1, { pid: 111 });
        assert.equal((await get(held.id)).status, "claimed");
        await pushing("w1", 1, { pid: 222 });
        const retried = await get(held.id);
        assert.deepEqual([retried.status, retried.attempts, retried.owner, retried.failures.at(-1)?.kind], ["pending", 1, undefined, "lease"]);
        assert.match(retried.error ?? "", /w1 restarted \(pid 111 on test-host, now pid 222 on test-host\)/);
        // The new process takes it, or a new task, at once: nothing holds its one slot.
        const next = await tasks.submit({ kind: "k" });
        assert.deepEqual([(await get(held.id)).owner, next.status], ["w1", "pending"]);
      });

      it("nothing is pushed to a worker that takes no pushes, is draining, is silent, is a local fallback or lacks the capability", async () => {
        await register("plain");
        const brief = await pushing("brief", 1, { ttlMs: SHORT_LEASE_MS });
        await past(brief.heartbeatAt + brief.ttlMs, "brief's ttl to pass without a heartbeat");
        await pushing("fallback", 1, { local: true });
        await pushing("other", 1, { capabilities: ["other"] });
        const task = await tasks.submit({ kind: "k" });
        assert.deepEqual([task.status, task.assignee], ["pending", "plain"]);
        await pushing("leaving", 1, { status: "draining" });
        assert.equal((await tasks.submit({ kind: "k", route: { mode: "direct", worker: "plain" } })).status, "pending");
      });
    });

    describe("retention", () => {
      /** A colony of its own with `retention`, its board, and a helper that runs a task to its end. */
      async function retaining(retention: ColonyUnderTestOptions["retention"]) {
        const under = await newColony({ retention });
        const board = await under.colony.tasks(BOARD);
        const finish = async (id: string) => {
          const task = await board.claim({ worker: "w1", capabilities: ["k"], leaseMs: LONG_LEASE_MS });
          assert.equal(task?.id, id, `${id} is first in line`);
          await board.complete(id, `done ${id}`, { generation: task.generation });
        };
        return { under, board, finish };
      }

      it("past maxFinished, the tasks that ended first go; one that an unfinished task still needs stays until it has ended", async () => {
        const { under, board, finish } = await retaining({ maxFinished: 2, maxEvents: Infinity });
        try {
          await board.submitAll([{ id: "a", kind: "k", idempotencyKey: "key-a" }, { id: "b", kind: "k" }, { id: "c", kind: "k" }]);
          for (const id of ["a", "b", "c"]) await finish(id);
          // p ends while its subtask q runs on; y ends while z, which depends on it, waits on w.
          await board.submit({ id: "p", kind: "k" });
          await finish("p");
          await board.submitAll([{ id: "q", kind: "other", parentId: "p" }, { id: "y", kind: "k" }, { id: "w", kind: "other" }, { id: "z", kind: "other", dependsOn: ["y", "w"] }]);
          await finish("y");
          const head = await board.head();

          await board.sweep();
          // Five ended, two may stay: a, b and c go; p and y are still needed and stay over the limit.
          assert.deepEqual((await board.list()).map((t) => t.id), ["p", "q", "y", "w", "z"]);
          assert.equal(await board.get("a"), undefined);
          assert.equal(await board.head(), head, "removing ended tasks is not a change of any task: no event");
          // Its events are still there, and its key is free again.
          assert.deepEqual((await eventsOf(board)).filter((e) => e.task.id === "a").map((e) => e.type), ["submitted", "claimed", "succeeded"]);
          const again = await board.submit({ kind: "k", idempotencyKey: "key-a" });
          assert.notEqual(again.id, "a");
          await board.cancel(again.id);

          const q = await board.claim({ worker: "w2", capabilities: ["other"], leaseMs: LONG_LEASE_MS });
          assert.equal(q?.id, "q");
          await board.complete("q", "Q", { generation: q.generation });
          await board.sweep();
          // p is free to go now, and goes first; y still waits for z.
          const left = (await board.list()).map((t) => t.id);
          assert.ok(!left.includes("p"), `p was removed: ${left.join(",")}`);
          assert.ok(left.includes("y") && left.includes("z") && left.includes("w"), `y, z and w stay: ${left.join(",")}`);
          assert.equal((await board.get("z"))?.status, "blocked");
        } finally {
          await under.cleanup();
        }
      });

      it("a finished task goes once it ended longer ago than maxAgeMs; newer ones stay", async () => {
        // Long enough that "new" is still younger than this when the sweep comes, on a loaded machine.
        const maxAgeMs = HELD_LEASE_MS;
        const { under, board, finish } = await retaining({ maxAgeMs });
        try {
          await board.submitAll([{ id: "old", kind: "k" }, { id: "new", kind: "k" }, { id: "open", kind: "k", priority: -1 }]);
          await finish("old");
          const old = await board.get("old");
          await past(old!.updatedAt + maxAgeMs, "old to have ended longer ago than maxAgeMs");
          await finish("new");
          await board.sweep();
          assert.deepEqual((await board.list()).map((t) => t.id), ["new", "open"]);
        } finally {
          await under.cleanup();
        }
      });

      it("the event log keeps maxEvents; watch from below its horizon throws HorizonError naming it, and from the horizon yields the rest", async () => {
        const { under, board } = await retaining({ maxEvents: 3, maxFinished: Infinity });
        try {
          await board.submitAll([{ id: "a", kind: "k" }, { id: "b", kind: "k" }]);
          await board.submit({ id: "c", kind: "k" });
          await board.submit({ id: "d", kind: "k" });
          await board.submit({ id: "e", kind: "k" });
          await board.sweep();
          assert.equal(await board.head(), 5);
          await assert.rejects(
            eventsOf(board, 0),
            (error: unknown) => error instanceof HorizonError && error.code === "HORIZON" && error.horizon === 2 && error.since === 0 && /seq 2/.test(error.message),
          );
          await assert.rejects(eventsOf(board, 1), HorizonError);
          const rest = await eventsOf(board, 2);
          assertGapFree(rest, 3);
          assert.deepEqual(rest.map((e) => e.task.id), ["c", "d", "e"]);
          // The tasks themselves are all there, and waiting on one still works.
          assert.equal((await board.list()).length, 5);
          const a = await board.claim({ worker: "w1", capabilities: ["k"], leaseMs: LONG_LEASE_MS });
          await board.complete(a!.id, "A", { generation: a!.generation });
          assert.equal((await board.wait(a!.id)).status, "succeeded");
        } finally {
          await under.cleanup();
        }
      });

      it("what retention no longer keeps is removed as the board is used, without a sweep", async () => {
        const { under, board, finish } = await retaining({ maxFinished: 0 });
        try {
          await board.submit({ id: "a", kind: "k" });
          await finish("a");
          await eventually(async () => (await board.list()).length === 0, "the ended task to be removed", 10_000);
        } finally {
          await under.cleanup();
        }
      });

      it("a bad retention is a ConfigError naming the field", async () => {
        for (const [retention, field] of [
          [{ maxFinished: -1 }, /retention\.maxFinished/],
          [{ maxEvents: 1.5 }, /retention\.maxEvents/],
          [{ maxAgeMs: "1d" }, /retention\.maxAgeMs/],
          [{ keep: 3 }, /keep/],
          [{ boards: { "no spaces": { maxFinished: 1 } } }, /retention\.boards/],
          [{ boards: { audit: { maxEvents: -2 } } }, /retention\.boards\.audit\.maxEvents/],
        ] as const) {
          await assert.rejects(async () => newColony({ retention: retention as ColonyUnderTestOptions["retention"] }), (error: unknown) => error instanceof ConfigError && field.test(error.message), JSON.stringify(retention));
        }
      });
    });

    describe("task boards", () => {
      it("the same name is the same board; names are separate; bad names are ConfigError", async () => {
        assert.equal(await colony.tasks(BOARD), tasks);
        const other = await colony.tasks("other");
        await tasks.submit({ id: "here", kind: "k" });
        assert.deepEqual(await other.list(), []);
        assert.equal(await other.get("here"), undefined);
        assert.equal(await other.claim({ worker: "w1", capabilities: ["k"], leaseMs: 1000 }), undefined);
        assert.equal((await colony.tasks()).name, "default");
        await assert.rejects(colony.tasks("no spaces"), ConfigError);
      });

      it("claim requests are checked", async () => {
        await tasks.submit({ kind: "k" });
        const before = await state(tasks);
        const bad: [unknown, RegExp][] = [
          [{ worker: "", capabilities: ["k"], leaseMs: 10 }, /worker/],
          [{ worker: "w", capabilities: [], leaseMs: 10 }, /capabilities/],
          [{ worker: "w", capabilities: "k", leaseMs: 10 }, /capabilities/],
          [{ worker: "w", capabilities: ["k"], leaseMs: 0 }, /leaseMs/],
          [{ worker: "w", capabilities: ["k"] }, /leaseMs/],
        ];
        for (const [request, field] of bad) {
          await assert.rejects(tasks.claim(request as Parameters<TaskBoard["claim"]>[0]), invalid(field), JSON.stringify(request));
        }
        await assertNothingWritten(tasks, before);
      });
    });
  });
}
