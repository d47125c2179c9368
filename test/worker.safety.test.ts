/**
 * What a `colony worker` process must not do: run an agent of a capability it does not offer
 * (a task's kind picks the agent, its capability only routes it), or die of an error that an
 * inline agent raised where nothing awaited it. Real worker processes on a SQLite file; the
 * agents are in test/fixtures/unsafe-agents.ts; the board is polled, never timed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { Colony, Task, TaskBoard } from "../src/index.ts";
import { sqliteColony, tempDir, waitFor } from "./fixtures/helpers.ts";
import { research, sleepy, type Traced } from "./fixtures/unsafe-agents.ts";
import { WorkerProcess } from "./fixtures/worker-process.ts";

const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const AGENTS = fileURLToPath(new URL("./fixtures/unsafe-agents.ts", import.meta.url));
const T = { timeout: 30_000 };
/** How long to wait for anything the board should come to; generous, as the machine may be loaded. */
const PATIENCE = 15_000;

const dir = tempDir("colony-worker-safety-");
const workers: WorkerProcess[] = [];
const colonies: Colony[] = [];

after(async () => {
  for (const worker of workers) worker.kill("SIGKILL");
  await Promise.all(workers.map((w) => w.exited));
  for (const worker of workers) {
    worker.child.stdout.destroy();
    worker.child.stderr.destroy();
  }
  for (const colony of colonies) await colony.close();
  dir.dispose();
});

async function startWorker(db: string, id: string, flags: string[] = []): Promise<WorkerProcess> {
  const worker = new WorkerProcess(id, ["--db", db, "--agents", AGENTS, "--id", id, "--json", ...flags], { patienceMs: PATIENCE });
  workers.push(worker);
  assert.equal((await worker.event("online")).worker, id);
  return worker;
}

function freshDb(name: string): { db: string; colony: Colony } {
  const db = join(dir.path, `${name}.db`);
  const colony = sqliteColony(db);
  colonies.push(colony);
  return { db, colony };
}

function traced(name: string): Traced {
  return { dir: dir.path, name };
}

/** The lines an agent wrote for `name`. */
function trace(name: string): string[] {
  try {
    return readFileSync(join(dir.path, `${name}.log`), "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

function open(name: string): void {
  writeFileSync(join(dir.path, `${name}.go`), "");
}

/** Waits for the task to end; fails at once if `worker` exits meanwhile. */
async function settled(tasks: TaskBoard, id: string, worker?: WorkerProcess): Promise<Task> {
  return waitFor(async () => {
    if (worker && !worker.running) throw new Error(`worker ${worker.id} exited before task ${id} ended: ${worker.stderr}`);
    const task = await tasks.get(id);
    return task && ["succeeded", "failed", "dead", "cancelled"].includes(task.status) && task;
  }, PATIENCE, `task ${id} to end`);
}

async function colonyCli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: dir.path, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, "close")) as [number | null];
  return { code, stdout, stderr };
}

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
