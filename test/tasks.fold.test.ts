/**
 * Write sets decided as they are folded (the NATS task board's concurrency): two transactions made
 * on the same state, as two clients make them before either sees the other's, are folded in one
 * order; the second is applied only if nothing it rests on moved, and otherwise runs again on the
 * newer state, as a client does. Each case is a race the engine's rules must come out of as if the
 * two had run one after the other. No server: the folds are the ones every client makes.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { restoreState } from "../src/backends/nats/task-log.ts";
import { StagedTaskTx, TaskState } from "../src/backends/task-state.ts";
import type { TaskTx } from "../src/core/store.ts";
import * as engine from "../src/core/task-engine.ts";
import type { Task, WorkerInfo } from "../src/core/tasks.ts";

const RESERVE_MS = 5_000;
const LEASE = { leaseMs: 60_000 };

/** Runs `work` on `state` as a client does before it publishes: what it returns and what it wrote. */
function made<T>(state: TaskState, work: (tx: TaskTx) => T) {
  const tx = new StagedTaskTx(state);
  const result = work(tx);
  return { result, changes: tx.changes()! };
}

/** One transaction on its own, applied (if it wrote anything). */
function run<T>(state: TaskState, work: (tx: TaskTx) => T): T {
  const tx = new StagedTaskTx(state);
  const result = work(tx);
  const changes = tx.changes();
  if (changes) assert.equal(state.apply(changes), true);
  return result;
}

/**
 * Two transactions made on the same state and folded `first` then `second`: whether the second was
 * applied, and its result after it ran again on the newer state if it was not.
 */
function race<A, B>(state: TaskState, first: (tx: TaskTx) => A, second: (tx: TaskTx) => B): { applied: boolean; second: B } {
  const a = made(state, first);
  const b = made(state, second);
  assert.equal(state.apply(a.changes), true, "the first write set folded is always applied");
  const applied = state.apply(b.changes);
  return { applied, second: applied ? b.result : run(state, second) };
}

function get(state: TaskState, id: string): Task {
  return new StagedTaskTx(state).get(id)!;
}

function online(id: string, capabilities = ["k"]): Omit<WorkerInfo, "heartbeatAt" | "startedAt"> {
  return { id, capabilities, concurrency: 4, running: 0, status: "online", pid: 1, host: "h", local: false, ttlMs: 60_000 };
}

const submit = (items: engine.SubmitItem[]) => (tx: TaskTx) => engine.submitAll(tx, items, { reserveMs: RESERVE_MS });
const claimOne = (worker: string) => (tx: TaskTx) => engine.claim(tx, { worker, capabilities: ["k"], ...LEASE }, RESERVE_MS)[0];

describe("write sets decided as they are folded", () => {
  test("two claims of the only pending task: one worker gets it, the other finds nothing when it looks again", () => {
    const state = new TaskState();
    run(state, submit([{ id: "a", kind: "k" }]));
    const { applied, second } = race(state, claimOne("w1"), claimOne("w2"));
    assert.equal(applied, false);
    assert.equal(second, undefined);
    assert.equal(get(state, "a").owner, "w1");
    assert.equal(get(state, "a").generation, 2);
  });

  test("claims of different tasks are both applied: transactions on different tasks do not conflict", () => {
    const state = new TaskState();
    run(state, submit([{ id: "a", kind: "k1" }, { id: "b", kind: "k2" }]));
    const a = made(state, (tx) => engine.claim(tx, { worker: "w1", capabilities: ["k1"], ...LEASE }, RESERVE_MS)[0]);
    const b = made(state, (tx) => engine.claim(tx, { worker: "w2", capabilities: ["k2"], ...LEASE }, RESERVE_MS)[0]);
    assert.equal(state.apply(a.changes), true);
    assert.equal(state.apply(b.changes), true);
    assert.equal(get(state, "a").owner, "w1");
    assert.equal(get(state, "b").owner, "w2");
    assert.deepEqual(
      state.eventsSince(0).map((e) => [e.seq, e.type, e.task.id]),
      [[1, "submitted", "a"], [2, "submitted", "b"], [3, "claimed", "a"], [4, "claimed", "b"]],
      "events are numbered in the order their write sets were folded",
    );
  });

  test("a task submitted depending on one that ends meanwhile is not left blocked, whichever is folded first", () => {
    for (const order of ["submit first", "complete first"] as const) {
      const state = new TaskState();
      run(state, submit([{ id: "d", kind: "k" }]));
      const claimed = run(state, claimOne("w1"))!;
      const complete = (tx: TaskTx) => engine.complete(tx, "d", "done", claimed.generation, RESERVE_MS);
      const dependent = submit([{ id: "x", kind: "k", dependsOn: ["d"] }]);
      const { applied } = order === "submit first" ? race(state, dependent, complete) : race(state, complete, dependent);
      assert.equal(applied, false, `${order}: the second rests on d, which the first moved`);
      assert.equal(get(state, "d").status, "succeeded");
      assert.equal(get(state, "x").status, "pending", `${order}: x is unblocked, not left waiting on a dependency that ended`);
    }
  });

  test("a subtask submitted while its parent is cancelled is cancelled too", () => {
    const state = new TaskState();
    run(state, submit([{ id: "p", kind: "k" }]));
    const { applied } = race(state, (tx) => engine.cancel(tx, "p", RESERVE_MS), submit([{ id: "c", kind: "k", parentId: "p" }]));
    assert.equal(applied, false);
    // Submitted again after the cancel, it is on the board under a cancelled parent; the cancel's
    // cascade reached what was there. A subtask submitted first is reached by the cancel:
    const state2 = new TaskState();
    run(state2, submit([{ id: "p", kind: "k" }]));
    const second = race(state2, submit([{ id: "c", kind: "k", parentId: "p" }]), (tx) => engine.cancel(tx, "p", RESERVE_MS));
    assert.equal(second.applied, false);
    assert.equal(get(state2, "c").status, "cancelled");
  });

  test("broadcast copies that end at the same time: the group is collected once both have", () => {
    const state = new TaskState();
    run(state, (tx) => engine.heartbeatWorker(tx, online("w1"), RESERVE_MS));
    run(state, (tx) => engine.heartbeatWorker(tx, online("w2"), RESERVE_MS));
    const group = run(state, submit([{ id: "g", kind: "k", route: { mode: "broadcast" } }]))[0]!;
    const copies = new StagedTaskTx(state).children(group.id);
    assert.equal(copies.length, 2);
    const held = copies.map((copy) => run(state, (tx) => engine.claim(tx, { worker: (copy.route as { worker: string }).worker, capabilities: ["k"], ...LEASE }, RESERVE_MS)[0]!));
    const end = (task: Task) => (tx: TaskTx) => engine.complete(tx, task.id, task.owner, task.generation, RESERVE_MS);
    const { applied } = race(state, end(held[0]!), end(held[1]!));
    assert.equal(applied, false, "both copies' ends rest on the group");
    const collected = get(state, "g");
    assert.equal(collected.status, "succeeded");
    assert.deepEqual(Object.keys((collected.result as { results: object }).results).sort(), ["w1", "w2"]);
  });

  test("two submits with one idempotency key make one task", () => {
    const state = new TaskState();
    const once = submit([{ kind: "k", idempotencyKey: "K" }]);
    const { applied, second } = race(state, once, once);
    assert.equal(applied, false);
    assert.equal(new StagedTaskTx(state).list({}).length, 1);
    assert.equal(second[0]!.id, new StagedTaskTx(state).byIdempotencyKey("K")!.id);
  });

  test("a direct task submitted while its worker drains is not left reserved for it", () => {
    const state = new TaskState();
    run(state, (tx) => engine.heartbeatWorker(tx, online("w1"), RESERVE_MS));
    const drain = (tx: TaskTx) => engine.heartbeatWorker(tx, { ...online("w1"), status: "draining" }, RESERVE_MS);
    const direct = submit([{ id: "x", kind: "k", route: { mode: "direct", worker: "w1" } }]);
    const a = made(state, drain);
    const b = made(state, direct);
    assert.equal(state.apply(a.changes), true);
    assert.equal(state.apply(b.changes), false, "the submit rests on the worker it reserves for");
    assert.throws(() => run(state, direct), /draining/);
  });

  test("two submits pushing to a worker with one free slot: one task is claimed for it, the other made again finds it full", () => {
    const state = new TaskState();
    run(state, (tx) => engine.heartbeatWorker(tx, { ...online("w1"), concurrency: 1, push: LEASE }, RESERVE_MS));
    const { applied, second } = race(state, submit([{ id: "a", kind: "k" }]), submit([{ id: "b", kind: "k" }]));
    assert.equal(applied, false, "a push rests on the worker's record, which the other push wrote");
    assert.deepEqual([get(state, "a").status, get(state, "a").owner], ["claimed", "w1"]);
    assert.deepEqual([second[0]!.status, second[0]!.assignee], ["pending", "w1"]);
  });

  test("a push and the worker's own claim at once never give it more than its slots, whichever is folded first", () => {
    for (const pushFirst of [true, false]) {
      const state = new TaskState();
      run(state, submit([{ id: "x", kind: "k" }]));
      run(state, (tx) => engine.heartbeatWorker(tx, { ...online("w1"), concurrency: 1, push: LEASE }, RESERVE_MS));
      // The push takes the worker's next in line (x, the older), as its own claim does.
      const push = submit([{ id: "y", kind: "k" }]);
      const own = (tx: TaskTx) => engine.claim(tx, { worker: "w1", capabilities: ["k"], ...LEASE }, RESERVE_MS, 4);
      const { applied } = pushFirst ? race(state, push, own) : race(state, own, push);
      assert.equal(applied, false, `folded ${pushFirst ? "push, then claim" : "claim, then push"}`);
      if (!pushFirst) run(state, own);
      const held = [...state.tasks.keys()].map((id) => get(state, id)).filter((t) => t.status === "claimed");
      assert.deepEqual(held.map((t) => [t.id, t.owner]), [["x", "w1"]], `folded ${pushFirst ? "push, then claim" : "claim, then push"}`);
      assert.equal(get(state, "y").status, "pending");
    }
  });

  test("retention does not remove a task that a task submitted meanwhile depends on", () => {
    const state = new TaskState();
    run(state, submit([{ id: "d", kind: "k" }]));
    const claimed = run(state, claimOne("w1"))!;
    run(state, (tx) => engine.complete(tx, "d", 1, claimed.generation, RESERVE_MS));
    const prune = (tx: TaskTx) => engine.prune(tx, { maxAgeMs: 0, maxFinished: 0, maxEvents: 1_000 });
    const { applied } = race(state, submit([{ id: "x", kind: "k", dependsOn: ["d"] }]), prune);
    assert.equal(applied, false);
    assert.ok(get(state, "d"), "d stays while x, which needs it, has not ended");
  });

  test("a write set stored twice is applied once", () => {
    const state = new TaskState();
    run(state, submit([{ id: "a", kind: "k" }]));
    const { changes } = made(state, claimOne("w1"));
    assert.equal(state.apply(changes), true);
    assert.equal(state.apply(changes), false);
    assert.equal(state.head, 2, "one claimed event, not two");
  });

  test("a client that starts from a snapshot decides the next write sets as one that folded the log", () => {
    const folded = new TaskState();
    run(folded, submit([{ id: "a", kind: "k" }, { id: "b", kind: "k" }]));
    run(folded, claimOne("w1"));
    run(folded, (tx) => engine.heartbeatWorker(tx, online("w1"), RESERVE_MS));
    const restored = restoreState([...folded.snapshot()]);
    assert.ok(restored.ok);
    assert.deepEqual([...restored.state.revisions], [...folded.revisions]);
    assert.deepEqual([...restored.state.workerRevisions], [...folded.workerRevisions]);
    assert.equal(restored.state.version, folded.version);
    // Write sets made before the snapshot and folded after it are decided alike by both.
    const sets = ["w2", "w3"].map((worker) => made(folded, claimOne(worker)).changes);
    for (const state of [folded, restored.state]) {
      assert.deepEqual(sets.map((changes) => state.apply(structuredClone(changes))), [true, false]);
    }
    assert.deepEqual([...restored.state.tasks], [...folded.tasks]);
    assert.deepEqual(restored.state.eventsSince(0), folded.eventsSince(0));
  });
});
