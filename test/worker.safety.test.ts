/**
 * What a `colony worker` process must not do: run an agent of a capability it does not offer
 * (a task's kind picks the agent, its capability only routes it), or die of an error that an
 * inline agent raised where nothing awaited it. Real worker processes on a SQLite file; the
 * agents are in test/fixtures/unsafe-agents.ts; the board is polled, never timed.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { Task } from "../src/index.ts";
import { runCli } from "./fixtures/cli.ts";
import { waitFor } from "./fixtures/helpers.ts";
import { research, sleepy } from "./fixtures/unsafe-agents.ts";
import { PATIENCE, workerLab } from "./fixtures/worker-process.ts";

const AGENTS = fileURLToPath(new URL("./fixtures/unsafe-agents.ts", import.meta.url));
const T = { timeout: 30_000 };

const { dir, startWorker, freshDb, input: traced, trace, open, settled } = workerLab("colony-worker-safety-", AGENTS);
const colonyCli = (...args: string[]) => runCli(args, { cwd: dir });

describe("a worker runs only the agents of the capabilities it offers", () => {
  it("`colony submit sleepy --capability research` on a `--capability research` worker: failed for good, naming both, and sleepy never starts", T, async () => {
    const { db, colony } = freshDb("offers");
    const tasks = await colony.tasks();
    const worker = await startWorker(db, "research-only", ["--capability", "research"]);

    const submitted = await colonyCli("submit", "sleepy", "--capability", "research", "--input", JSON.stringify(traced("smuggled")), "--db", db, "--json");
    assert.equal(submitted.code, 0, submitted.stderr);
    const id = (JSON.parse(submitted.stdout) as Task).id;
    const ended = await settled(tasks, id, worker);

    assert.equal(ended.status, "failed", "failed for good, not retried");
    assert.equal(ended.failures.length, 1);
    assert.equal(ended.failures[0]!.worker, "research-only");
    assert.match(ended.reason ?? "", /kind "sleepy" came by capability "research"/);
    assert.match(ended.reason ?? "", /worker research-only runs only the agents of what it offers \(research\)/);
    assert.deepEqual(trace("smuggled"), [], "the sleepy agent never ran");
    const agents = await colony.agents.list();
    assert.deepEqual(agents.filter((a) => a.name.startsWith("sleepy")), [], "nor was it spawned");
    assert.equal((await worker.event("failed", id)).status, "failed");

    // The worker goes on serving what it offers.
    const good = await tasks.submit({ kind: "research", input: traced("offered") });
    const done = await settled(tasks, good.id);
    assert.equal(done.status, "succeeded");
    assert.equal(done.owner, "research-only");
    assert.deepEqual(trace("offered"), [`research ${worker.pid}`]);
    worker.kill("SIGTERM");
    assert.equal((await worker.exited).code, 0);
  });

  it("a worker that offers the kind as well runs such a task: capability routes, kind picks the agent", T, async () => {
    const { db, colony } = freshDb("offers-both");
    const tasks = await colony.tasks();
    const worker = await startWorker(db, "both", ["--capability", "research,sleepy"]);
    const task = await tasks.submit({ kind: "sleepy", capability: "research", input: traced("routed") });
    const done = await settled(tasks, task.id);
    assert.equal(done.status, "succeeded", done.reason);
    assert.deepEqual(trace("routed"), [`sleepy ${worker.pid}`]);
  });

  it("colony.worker({ agents, capabilities }) in a program holds to the same rule", T, async () => {
    const { colony } = freshDb("offers-lib");
    const tasks = await colony.tasks();
    const worker = await colony.worker({ id: "lib-w", agents: { research, sleepy }, capabilities: ["research"] });
    try {
      const task = await tasks.submit({ kind: "sleepy", capability: "research", input: traced("lib-smuggled") });
      const ended = await settled(tasks, task.id);
      assert.equal(ended.status, "failed");
      assert.match(ended.reason ?? "", /kind "sleepy" came by capability "research", but worker lib-w runs only/);
      assert.deepEqual(trace("lib-smuggled"), []);
    } finally {
      await worker.stop();
    }
  });
});

describe("an inline agent's error that nothing awaited", () => {
  it("fails its own task (uncaught exception, unhandled rejection); the worker keeps the task it holds and serves on", T, async () => {
    const { db, colony } = freshDb("uncaught");
    const tasks = await colony.tasks();
    const worker = await startWorker(db, "sturdy", ["--isolation", "inline", "--concurrency", "3"]);
    const held = await tasks.submit({ kind: "held", input: traced("held") });
    await worker.event("claimed", held.id);
    await waitFor(() => trace("held").length === 1, PATIENCE, "the held agent to start");

    const thrown = await tasks.submit({ kind: "timerThrows", input: traced("thrown"), maxAttempts: 1 });
    const rejected = await tasks.submit({ kind: "floatingRejection", input: traced("rejected"), maxAttempts: 1 });
    const [fromTimer, fromPromise] = await Promise.all([settled(tasks, thrown.id, worker), settled(tasks, rejected.id, worker)]);

    assert.equal(fromTimer.status, "dead", fromTimer.reason);
    assert.match(fromTimer.error ?? "", /^its agent raised an uncaught exception outside its run: boom from a timer of thrown$/);
    assert.equal(fromPromise.status, "dead", fromPromise.reason);
    assert.match(fromPromise.error ?? "", /^its agent raised an unhandled rejection outside its run: boom from a promise of rejected$/);
    for (const task of [fromTimer, fromPromise]) assert.equal(task.failures[0]!.worker, "sturdy");
    assert.ok(worker.running, `the worker is still there: ${worker.stderr}`);

    // The task it held all along is still its own, and ends as it should.
    assert.equal((await tasks.get(held.id))?.status, "claimed");
    open("held");
    const heldDone = await settled(tasks, held.id, worker);
    assert.equal(heldDone.status, "succeeded");
    assert.equal(heldDone.owner, "sturdy");
    assert.equal(heldDone.attempts, 0);
    assert.deepEqual(trace("held"), ["start", "done"]);

    // An error from an agent whose task has ended is no task's: reported, and the worker goes on.
    const late = await tasks.submit({ kind: "lateThrow", input: traced("late") });
    assert.equal((await settled(tasks, late.id, worker)).status, "succeeded");
    open("late");
    const reported = await waitFor(() => worker.events.find((e) => e.type === "error"), PATIENCE, "the late error to be reported");
    assert.equal(reported.error, `uncaught exception from the agent of task ${late.id}, which no longer runs here: boom after late ended`);

    const after = await tasks.submit({ kind: "research", input: traced("after") });
    assert.equal((await settled(tasks, after.id, worker)).status, "succeeded");
    assert.deepEqual(worker.stderr, "");
    worker.kill("SIGTERM");
    assert.equal((await worker.exited).code, 0);
  });
});
