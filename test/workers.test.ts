/**
 * Worker processes for real: `colony worker` processes on a SQLite file, killed with SIGKILL,
 * drained with SIGTERM, fed poison, routed to by capability, by name and by broadcast, and a
 * submitting process that runs what no worker offers itself. The agents are in
 * test/fixtures/worker-agents.ts; the board is polled, never timed.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createColony, NoWorkerError, sqliteBackend, WorkerIdInUseError, type Task, type TaskBoard } from "../src/index.ts";
import { alive, sqliteColony, waitFor } from "./fixtures/helpers.ts";
import { echo, type Ran } from "./fixtures/worker-agents.ts";
import { PATIENCE, WorkerProcess, workerLab } from "./fixtures/worker-process.ts";

const AGENTS = fileURLToPath(new URL("./fixtures/worker-agents.ts", import.meta.url));
const T = { timeout: 30_000 };

const { dir, workers, colonies, startWorker, freshDb, input: gate, trace, open, settled } = workerLab("colony-workers-", AGENTS);

describe("colony worker processes", () => {
  for (const isolation of ["inline", "process"] as const) {
    it(`a worker killed with SIGKILL while holding a lease (its agent ${isolation === "inline" ? "inline" : "in a process of its own"}): another worker redoes the task, once`, T, async (t) => {
      const name = `kill-${isolation}`;
      const { db, colony } = freshDb(name);
      const tasks = await colony.tasks();
      const a = await startWorker(db, `${name}-a`, ["--lease-ms", "900", "--capability", "gated", "--isolation", isolation]);
      const task = await tasks.submit({ kind: "gated", input: gate(name), backoff: { baseMs: 50 } });
      await a.event("claimed", task.id);
      await waitFor(() => trace(name).length === 1, PATIENCE, "A's agent to start");
      const agentPid = Number(trace(name)[0]!.split(" ")[1]);
      if (isolation === "inline") assert.equal(agentPid, a.pid);
      else assert.notEqual(agentPid, a.pid);
      const b = await startWorker(db, `${name}-b`, ["--capability", "gated"]);

      a.kill("SIGKILL");
      assert.equal((await a.exited).signal, "SIGKILL");
      // A's agent goes with it: nothing of A may finish the work once the gate opens.
      await waitFor(() => !alive(agentPid), PATIENCE, `A's agent process ${agentPid} to end`);
      // B takes the next attempt once A's lease lapses (or A is found offline).
      await b.event("claimed", task.id);
      await waitFor(() => trace(name).length === 2, PATIENCE, "B's agent to start");
      open(name);
      const done = await settled(tasks, task.id);

      assert.equal(done.status, "succeeded");
      assert.equal(done.owner, `${name}-b`);
      assert.deepEqual(done.result, { name, pid: b.pid });
      assert.equal(done.attempts, 1);
      assert.equal(done.failures.length, 1);
      assert.deepEqual([done.failures[0]!.attempt, done.failures[0]!.worker, done.failures[0]!.kind], [1, `${name}-a`, "lease"]);
      assert.match(done.failures[0]!.error, new RegExp(`${name}-a`));
      t.diagnostic(`failure: ${done.failures[0]!.error}`);
      assert.deepEqual(trace(name), [`start ${agentPid}`, `start ${b.pid}`, `done ${b.pid}`], "the work completed once, by B");
      assert.equal(b.events.find((e) => e.type === "claimed" && e.task === task.id)?.attempt, 2);
      await b.event("succeeded", task.id);
      assert.deepEqual(a.events.filter((e) => e.type === "succeeded" || e.type === "failed"), [], "A recorded nothing");

      const registry = await waitFor(async () => {
        const all = await tasks.workers();
        return all.find((w) => w.id === `${name}-a`)?.status === "offline" && all;
      }, PATIENCE, "A to be marked offline");
      assert.equal(registry.find((w) => w.id === `${name}-a`)?.running, 0);
      assert.equal(registry.find((w) => w.id === `${name}-b`)?.status, "online");
      b.kill("SIGTERM");
      assert.equal((await b.exited).code, 0);
    });
  }

  it("a worker killed with SIGKILL while holding a batch of claims: another worker redoes each task, once", T, async () => {
    const { db, colony } = freshDb("batch-kill");
    const tasks = await colony.tasks();
    const names = ["batch-1", "batch-2", "batch-3", "batch-4"];
    // On the board before A starts, so that A's first claim takes all four at once.
    const submitted = await tasks.submitAll(names.map((name) => ({ id: name, kind: "gated", input: gate(name), backoff: { baseMs: 50 } })));
    const a = await startWorker(db, "batch-a", ["--lease-ms", "900", "--capability", "gated", "--concurrency", "4"]);
    await waitFor(() => names.every((name) => trace(name).length === 1), PATIENCE, "A's four agents to start");
    const held = await Promise.all(names.map((id) => tasks.get(id)));
    assert.ok(held.every((t) => t?.status === "claimed" && t.owner === "batch-a"));
    assert.equal(new Set(held.map((t) => t!.updatedAt)).size, 1, "claimed in one transaction");
    const b = await startWorker(db, "batch-b", ["--capability", "gated", "--concurrency", "4"]);

    a.kill("SIGKILL");
    assert.equal((await a.exited).signal, "SIGKILL");
    await waitFor(() => names.every((name) => trace(name).length === 2), PATIENCE, "B's four agents to start");
    for (const name of names) open(name);
    for (const task of submitted) {
      const done = await settled(tasks, task.id);
      assert.equal(done.status, "succeeded");
      assert.equal(done.owner, "batch-b");
      assert.equal(done.attempts, 1);
      assert.deepEqual(done.failures.map((f) => [f.attempt, f.worker, f.kind]), [[1, "batch-a", "lease"]]);
      assert.deepEqual(trace(task.id), [`start ${a.pid}`, `start ${b.pid}`, `done ${b.pid}`], `${task.id} ran to its end once, on B`);
    }
    b.kill("SIGTERM");
    assert.equal((await b.exited).code, 0);
  });

  it("a poison task ends dead after maxAttempts with its failures; the worker goes on serving", T, async () => {
    const { db, colony } = freshDb("poison");
    const tasks = await colony.tasks();
    const worker = await startWorker(db, "poison-w", ["--capability", "poison,echo"]);
    const poison = await tasks.submit({ kind: "poison", maxAttempts: 3, backoff: { baseMs: 20, maxMs: 100 } });
    const dead = await settled(tasks, poison.id);

    assert.equal(dead.status, "dead");
    assert.equal(dead.attempts, 3);
    assert.deepEqual(dead.failures.map((f) => [f.attempt, f.worker, f.kind]), [
      [1, "poison-w", "error"],
      [2, "poison-w", "error"],
      [3, "poison-w", "error"],
    ]);
    for (const failure of dead.failures) assert.match(failure.error, /poison: this task always fails/);
    assert.match(dead.reason ?? "", /gave up after 3 attempt/);
    // The board can settle before the worker's own line for the third failure reaches our pipe.
    const failed = () => worker.events.filter((e) => e.type === "failed" && e.task === poison.id).map((e) => e.status);
    await waitFor(() => failed().length === 3, PATIENCE, "the worker to report the third failure");
    assert.deepEqual(failed(), ["pending", "pending", "dead"]);

    const good = await tasks.submit({ kind: "echo", input: { ms: 10 } });
    const done = await settled(tasks, good.id);
    assert.equal(done.status, "succeeded");
    assert.equal(done.owner, "poison-w");
    assert.equal((done.result as Ran).pid, worker.pid);
    assert.ok(worker.running);
    worker.kill("SIGTERM");
    assert.equal((await worker.exited).code, 0);
  });

  it("a task whose agent kills its own process (--isolation process) ends dead; the worker goes on serving", T, async (t) => {
    const { db, colony } = freshDb("crash");
    const tasks = await colony.tasks();
    const worker = await startWorker(db, "crash-w", ["--capability", "crash,echo", "--isolation", "process"]);
    const crash = await tasks.submit({ kind: "crash", maxAttempts: 2, backoff: { baseMs: 20, maxMs: 100 } });
    const dead = await settled(tasks, crash.id);
    t.diagnostic(`failure: ${dead.failures[0]?.error}`);
    for (const failure of dead.failures) assert.match(failure.error, /exited with code 3/);

    assert.equal(dead.status, "dead");
    assert.deepEqual(dead.failures.map((f) => [f.attempt, f.worker, f.kind]), [
      [1, "crash-w", "error"],
      [2, "crash-w", "error"],
    ]);
    const good = await tasks.submit({ kind: "echo" });
    const done = await settled(tasks, good.id);
    assert.equal(done.status, "succeeded");
    assert.equal(done.owner, "crash-w");
    assert.notEqual((done.result as Ran).pid, worker.pid, "the agent ran in a process of its own");
    assert.ok(worker.running);
    worker.kill("SIGTERM");
    assert.equal((await worker.exited).code, 0);
  });

  it("SIGTERM drains: the worker finishes what it holds, claims nothing queued, exits 0 and is stopped", T, async () => {
    const { db, colony } = freshDb("drain");
    const tasks = await colony.tasks();
    const worker = await startWorker(db, "drain-w", ["--capability", "gated,echo", "--concurrency", "2"]);
    const held = await tasks.submitAll([
      { kind: "gated", input: gate("drain-1") },
      { kind: "gated", input: gate("drain-2") },
    ]);
    for (const task of held) await worker.event("claimed", task.id);
    await waitFor(() => trace("drain-1").length === 1 && trace("drain-2").length === 1, PATIENCE, "both agents to start");
    // Queued while the worker is full, and reserved for it: it must leave them when told to drain.
    const queued = await tasks.submitAll([{ kind: "echo" }, { kind: "echo" }, { kind: "gated", input: gate("drain-3") }]);
    open("drain-3");

    worker.kill("SIGTERM");
    const draining = await worker.event("draining");
    assert.equal(draining.running, 2);
    await waitFor(async () => (await tasks.workers()).find((w) => w.id === "drain-w")?.status === "draining", PATIENCE, "the registry to show it draining");
    open("drain-1");
    open("drain-2");
    const { code, signal } = await worker.exited;
    assert.deepEqual([code, signal], [0, null], worker.stderr);

    for (const task of held) {
      const done = await tasks.get(task.id);
      assert.equal(done?.status, "succeeded");
      assert.equal(done?.owner, "drain-w");
      assert.equal(done?.attempts, 0);
    }
    assert.deepEqual(worker.claimed().toSorted(), held.map((t) => t.id).toSorted(), "it claimed nothing after the held tasks");
    assert.deepEqual(worker.events.filter((e) => e.type === "succeeded").map((e) => e.task).toSorted(), held.map((t) => t.id).toSorted());
    assert.deepEqual(worker.events.at(-1)?.type, "stopped");
    for (const task of queued) assert.equal((await tasks.get(task.id))?.status, "pending", `${task.id} is still queued`);
    assert.deepEqual(trace("drain-3"), []);
    const entry = (await tasks.workers()).find((w) => w.id === "drain-w");
    assert.deepEqual([entry?.status, entry?.running], ["stopped", 0]);

    // Nothing was lost: a second worker picks up the queue.
    const next = await startWorker(db, "drain-next", ["--capability", "gated,echo"]);
    for (const task of queued) {
      const done = await settled(tasks, task.id);
      assert.deepEqual([done.status, done.owner], ["succeeded", "drain-next"]);
    }
    next.kill("SIGTERM");
    assert.equal((await next.exited).code, 0);
  });

  it(
    "a direct task queued for a worker that drains does not wait forever: it fails naming the worker, and a draining worker takes no new direct task",
    T,
    async () => {
      const { db, colony } = freshDb("drain-direct");
      const tasks = await colony.tasks();
      const worker = await startWorker(db, "drain-d", ["--capability", "gated,echo"]);
      const held = await tasks.submit({ kind: "gated", input: gate("drain-direct") });
      await worker.event("claimed", held.id);
      const direct = await tasks.submit({ kind: "echo", route: { mode: "direct", worker: "drain-d" } });
      const group = await tasks.submit({ kind: "echo", route: { mode: "broadcast" } });

      worker.kill("SIGTERM");
      await worker.event("draining");
      await waitFor(async () => (await tasks.workers()).find((w) => w.id === "drain-d")?.status === "draining", PATIENCE, "the registry to show it draining");
      const late = await tasks.submit({ kind: "echo", route: { mode: "direct", worker: "drain-d" } }).then(
        (task) => task,
        (error: unknown) => error,
      );
      open("drain-direct");
      assert.equal((await worker.exited).code, 0, worker.stderr);
      assert.equal((await tasks.get(held.id))?.status, "succeeded");

      const stuck = await tasks.get(direct.id);
      assert.equal(stuck?.status, "failed", `${direct.id} is ${stuck?.status}, reserved for ${stuck?.assignee}`);
      assert.match(stuck?.reason ?? "", /drain-d/);
      const collected = await tasks.get(group.id);
      assert.equal(collected?.status, "failed", `broadcast ${group.id} is ${collected?.status}: ${collected?.reason}`);
      assert.deepEqual(Object.keys((collected?.result as { errors: object }).errors), ["drain-d"]);
      assert.ok(late instanceof NoWorkerError, `a direct submit to a draining worker was accepted as ${(late as Task).id}`);
    },
  );

  describe("routing between worker processes", () => {
    let db: string;
    let tasks: TaskBoard;
    let r1: WorkerProcess;
    let r2: WorkerProcess;

    before(async () => {
      const fresh = freshDb("routing");
      db = fresh.db;
      tasks = await fresh.colony.tasks();
      [r1, r2] = await Promise.all([startWorker(db, "r1", ["--capability", "echo,alpha"]), startWorker(db, "r2", ["--capability", "echo,beta"])]);
    });

    after(async () => {
      for (const w of [r1, r2]) w?.kill("SIGTERM");
      for (const w of [r1, r2]) if (w) assert.equal((await w.exited).code, 0, w.stderr);
    });

    it("any: a batch is reserved for the least loaded, so both workers get work", T, async () => {
      const batch = await tasks.submitAll(Array.from({ length: 4 }, (_, i) => ({ kind: "echo", input: { ms: 200, i } })));
      // Reserved for a worker, or claimed for it at once where it had a free slot (a push).
      const reserved = batch.map((t) => t.assignee ?? t.owner);
      assert.deepEqual(reserved.filter((w) => w === "r1").length, 2, `reservations: ${reserved.join(", ")}`);
      assert.deepEqual(reserved.filter((w) => w === "r2").length, 2, `reservations: ${reserved.join(", ")}`);
      const done = await Promise.all(batch.map((t) => settled(tasks, t.id)));
      assert.ok(done.every((t) => t.status === "succeeded"));
      const pids = { r1: r1.pid, r2: r2.pid } as Record<string, number>;
      for (const task of done) assert.equal((task.result as Ran).pid, pids[task.owner!], `${task.id} ran where its owner is`);
      assert.deepEqual(new Set(done.map((t) => t.owner)), new Set(["r1", "r2"]));
    });

    it("by capability: a kind only one worker offers runs there", T, async () => {
      const [a, b] = await tasks.submitAll([{ kind: "alpha" }, { kind: "beta" }]);
      const [doneA, doneB] = [await settled(tasks, a!.id), await settled(tasks, b!.id)];
      assert.deepEqual([doneA.status, doneA.owner, (doneA.result as Ran).pid], ["succeeded", "r1", r1.pid]);
      assert.deepEqual([doneB.status, doneB.owner, (doneB.result as Ran).pid], ["succeeded", "r2", r2.pid]);
    });

    it("direct: a task routed to a named worker runs there, and only a live one offering the capability is accepted", T, async () => {
      const batch = await tasks.submitAll([
        { kind: "echo", route: { mode: "direct", worker: "r2" } },
        { kind: "echo", route: { mode: "direct", worker: "r2" } },
        { kind: "echo", route: { mode: "direct", worker: "r1" } },
      ]);
      const done = await Promise.all(batch.map((t) => settled(tasks, t.id)));
      assert.deepEqual(done.map((t) => [t.status, t.owner]), [["succeeded", "r2"], ["succeeded", "r2"], ["succeeded", "r1"]]);
      assert.deepEqual(done.map((t) => (t.result as Ran).pid), [r2.pid, r2.pid, r1.pid]);
      await assert.rejects(tasks.submit({ kind: "alpha", route: { mode: "direct", worker: "r2" } }), NoWorkerError);
      await assert.rejects(tasks.submit({ kind: "echo", route: { mode: "direct", worker: "nobody" } }), NoWorkerError);
    });

    it("broadcast: one copy per live worker with the capability, results collected by worker", T, async () => {
      const group = await tasks.submit({ kind: "echo", input: { ms: 10 }, route: { mode: "broadcast" } });
      const done = await settled(tasks, group.id);
      assert.equal(done.status, "succeeded");
      assert.deepEqual(done.result, {
        results: {
          r1: { kind: "echo", input: { ms: 10 }, pid: r1.pid },
          r2: { kind: "echo", input: { ms: 10 }, pid: r2.pid },
        },
        errors: {},
      });
      const copies = await tasks.list({ parentId: group.id });
      assert.deepEqual(copies.map((c) => [c.status, c.owner]).toSorted(), [["succeeded", "r1"], ["succeeded", "r2"]]);
      // Only the capability's workers: alpha is r1's alone.
      const alphas = await settled(tasks, (await tasks.submit({ kind: "alpha", route: { mode: "broadcast" } })).id);
      assert.deepEqual(Object.keys((alphas.result as { results: object }).results), ["r1"]);
    });

    it("local fallback: a colony with agents runs a kind no live worker offers in its own process", T, async () => {
      const local = createColony({ backend: sqliteBackend({ path: db }), agents: { echo, gamma: echo } });
      colonies.push(local);
      const here = await local.tasks();
      const [mine, theirs] = [await here.submit({ kind: "gamma", input: { ms: 10 } }), await here.submit({ kind: "echo", input: { ms: 10 } })];
      const [doneMine, doneTheirs] = [await settled(here, mine.id), await settled(here, theirs.id)];
      assert.equal(doneMine.status, "succeeded");
      assert.match(doneMine.owner ?? "", new RegExp(`^local-${process.pid}-`));
      assert.equal((doneMine.result as Ran).pid, process.pid);
      // What a live worker offers still goes to the workers, not to the fallback.
      assert.equal(doneTheirs.status, "succeeded");
      assert.ok(["r1", "r2"].includes(doneTheirs.owner!), doneTheirs.owner);
      const registry = await here.workers();
      assert.equal(registry.find((w) => w.id === doneMine.owner)?.local, true);
      await local.close();
      assert.equal((await tasks.workers()).find((w) => w.id === doneMine.owner)?.status, "stopped");
    });
  });

  describe("bad start-up", () => {
    /** Runs `colony worker` to its end; it must not get far enough to need stopping. */
    async function failing(args: string[]): Promise<{ code: number | null; stderr: string; proc: WorkerProcess }> {
      const proc = new WorkerProcess("bad", args);
      workers.push(proc);
      const { code } = await proc.exited;
      return { code, stderr: proc.stderr, proc };
    }

    function oneLine(stderr: string): string {
      const lines = stderr.trim().split("\n");
      assert.equal(lines.length, 1, `one line on stderr, got:\n${stderr}`);
      return lines[0]!;
    }

    it("an --agents file that is missing, exports no agents or does not parse: exit 2, one line on stderr", T, async () => {
      const db = join(dir, "bad.db");
      const none = join(dir, "no-agents.mjs");
      writeFileSync(none, "export const answer = 42;\n");
      const broken = join(dir, "broken.mjs");
      writeFileSync(broken, "export const = ;\n");
      const cases: [string, RegExp][] = [
        [join(dir, "missing.ts"), /missing\.ts: no such file/],
        [none, /no-agents\.mjs: exports no agents/],
        [broken, /broken\.mjs(:\d+)?: syntax error/],
      ];
      const results = await Promise.all(cases.map(([file]) => failing(["--db", db, "--agents", file, "--json"])));
      for (const [i, { code, stderr, proc }] of results.entries()) {
        assert.equal(code, 2, stderr);
        assert.match(oneLine(stderr), cases[i]![1]);
        assert.deepEqual(proc.events, [], "it never came online");
      }
      const colony = sqliteColony(db);
      colonies.push(colony);
      assert.deepEqual(await (await colony.tasks()).workers(), []);
    });

    it("an unknown --capability: exit 2, one line on stderr naming it and what the module offers", T, async () => {
      const db = join(dir, "bad-capability.db");
      const { code, stderr, proc } = await failing(["--db", db, "--agents", AGENTS, "--capability", "echo,nope", "--json"]);
      assert.equal(code, 2, stderr);
      const line = oneLine(stderr);
      assert.match(line, /--capability nope/);
      assert.match(line, /it exports .*echo.*gated/);
      assert.deepEqual(proc.events, []);
      assert.ok(!alive(proc.pid));
    });
  });
});

describe("one worker id, one live process", () => {
  it("a second process started under a live worker's id watches its heartbeat move on and refuses to start: exit 2, one line naming the holder", T, async () => {
    const { db, colony } = freshDb("dup-live");
    const first = await startWorker(db, "dup", ["--lease-ms", "600", "--capability", "echo"]);
    const second = new WorkerProcess("dup-second", ["--db", db, "--agents", AGENTS, "--id", "dup", "--json", "--capability", "echo"]);
    workers.push(second);
    const { code } = await second.exited;
    assert.equal(code, 2);
    assert.deepEqual(second.events.map((e) => e.type), ["waiting"]);
    assert.match(second.stderr.trim(), new RegExp(`^colony: worker id dup is in use by pid ${first.pid} on \\S+, which still heartbeats; give this worker another id`));
    // The first is untouched: still online, and it runs what comes.
    assert.equal(first.running, true);
    const task = await (await colony.tasks()).submit({ kind: "echo", input: 1 });
    assert.equal((await settled(await colony.tasks(), task.id)).owner, "dup");
  });

  it("a worker killed with SIGKILL is replaced at once by a process under its id on the same host (its pid is gone), which retries what it held", T, async () => {
    const { db, colony } = freshDb("dup-dead");
    const tasks = await colony.tasks();
    const first = await startWorker(db, "again", ["--capability", "gated"]);
    const task = await tasks.submit({ kind: "gated", input: gate("dup-dead"), backoff: { baseMs: 1 } });
    await first.event("claimed", task.id);
    first.kill("SIGKILL");
    await first.exited;
    // Its record is still live (a 30 s lease, ttl and heartbeats of 10 s): only the dead pid says it is gone.
    const second = await startWorker(db, "again", ["--capability", "gated"]);
    assert.equal(second.events.some((e) => e.type === "waiting"), false);
    await second.event("claimed", task.id);
    open("dup-dead");
    const done = await settled(tasks, task.id);
    assert.deepEqual([done.status, done.owner, done.failures.map((f) => f.kind)], ["succeeded", "again", ["lease"]]);
    assert.match(done.failures[0]!.error, /again restarted/);
  });

  it("a record of another host that stops heartbeating is waited out, then taken over; one that heartbeats on is refused", T, async () => {
    const colony = sqliteColony(join(dir, "dup-elsewhere.db"));
    colonies.push(colony);
    const tasks = await colony.tasks();
    const elsewhere = { capabilities: ["echo"], concurrency: 1, running: 0, status: "online" as const, pid: 4242, host: "elsewhere", local: false, ttlMs: 400 };
    await tasks.heartbeatWorker({ id: "gone", ...elsewhere });
    const heard: string[] = [];
    const worker = await colony.worker({ id: "gone", agents: { echo }, on: (e) => heard.push(e.type) });
    assert.deepEqual(heard.slice(0, 2), ["waiting", "online"]);
    const record = (await tasks.workers()).find((w) => w.id === "gone");
    assert.deepEqual([record?.pid, record?.host], [process.pid, hostname()]);
    await worker.drain();

    await tasks.heartbeatWorker({ id: "busy", ...elsewhere });
    const beating = setInterval(() => void tasks.heartbeatWorker({ id: "busy", ...elsewhere }), 50);
    try {
      await assert.rejects(colony.worker({ id: "busy", agents: { echo } }), (error: unknown) => {
        assert.ok(error instanceof WorkerIdInUseError);
        assert.deepEqual([error.code, error.workerId, error.pid, error.host], ["WORKER_ID_IN_USE", "busy", 4242, "elsewhere"]);
        return true;
      });
    } finally {
      clearInterval(beating);
    }
    assert.equal((await tasks.workers()).find((w) => w.id === "busy")?.pid, 4242, "the refused worker registered nothing");
  });
});
