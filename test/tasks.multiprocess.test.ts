/**
 * The task board across processes: 4 claimer processes (test/fixtures/multiprocess-claimer.ts)
 * drain 4,000 tasks from one board with `claimMany({ max: 8 })` and `complete`, and every task
 * ends succeeded exactly once — one `succeeded` event per task in the log, each task's result
 * naming the process that reported completing it, and the processes' reports together naming
 * every task once. On SQLite (one temp file) and on NATS (a private nats-server). memoryBackend
 * has no multi-process form: its board lives in one process's memory, so no second process can
 * open it, and it is left out here.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { createColony, natsBackend, sqliteBackend, type BackendFactory } from "../src/index.ts";
import { tempDir } from "./fixtures/helpers.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

const CLAIMER = fileURLToPath(new URL("./fixtures/multiprocess-claimer.ts", import.meta.url));
const PROCESSES = 4;
const TASKS = 4000;
/** Submitted in batches: one NATS transaction must fit in the server's max_payload. */
const BATCH = 200;

interface Report {
  worker: string;
  completed: string[];
  stale: string[];
  /** Calls the store answered busy (StoreBusyError, TaskContentionError) and the claimer made again. */
  busy: number;
}

/** A claimer process: "ready" once its board is open, then one JSON report on exit. */
function startClaimer(args: string[]) {
  const child = spawn(process.execPath, [CLAIMER, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let onReady: () => void;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    if (stdout.startsWith("ready\n")) onReady();
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const ended = once(child, "exit").then(([code, signal]) => {
    if (code !== 0) throw new Error(`claimer ${args.at(-1)} exited with code ${code}, signal ${signal}: ${stderr.trim()}`);
    return JSON.parse(stdout.slice("ready\n".length)) as Report;
  });
  // Awaited later; marked handled so that claimers killed after another failed raise nothing of their own.
  ended.catch(() => {});
  // A claimer that dies before "ready" must fail the test, not leave it waiting.
  return { child, ready: Promise.race([ready, ended.then(() => {})]), ended, go: () => child.stdin.end("go\n") };
}

/** Submits the tasks, runs the claimers on `claimerArgs(worker)`, then checks the board from a fresh client of `backend()`. */
async function drainAcrossProcesses(t: TestContext, backend: () => BackendFactory, claimerArgs: (worker: string) => string[]): Promise<void> {
  const submitter = createColony({ backend: backend() });
  const ids: string[] = [];
  try {
    const tasks = await submitter.tasks();
    for (let from = 0; from < TASKS; from += BATCH) {
      const batch = await tasks.submitAll(Array.from({ length: BATCH }, (_, i) => ({ kind: "k", input: from + i })));
      ids.push(...batch.map((t) => t.id));
    }
  } finally {
    await submitter.close();
  }
  assert.equal(new Set(ids).size, TASKS);

  const claimers = Array.from({ length: PROCESSES }, (_, i) => startClaimer(claimerArgs(`claimer-${i + 1}`)));
  let reports: Report[];
  try {
    await Promise.all(claimers.map((c) => c.ready));
    for (const c of claimers) c.go();
    reports = await Promise.all(claimers.map((c) => c.ended));
  } finally {
    for (const c of claimers) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
  }

  // How the work was shared is machine-dependent: shown, not asserted.
  t.diagnostic(`completed per process: ${reports.map((r) => `${r.worker} ${r.completed.length}`).join(", ")}`);
  t.diagnostic(`busy answers retried: ${reports.map((r) => `${r.worker} ${r.busy}`).join(", ")}`);

  // What the processes say they did: every task once, none twice, none refused as stale.
  const byWorker = new Map<string, string>();
  for (const report of reports) {
    assert.deepEqual(report.stale, [], `${report.worker} had completes refused as stale`);
    for (const id of report.completed) {
      assert.equal(byWorker.get(id), undefined, `task ${id} completed by ${byWorker.get(id)} and by ${report.worker}`);
      byWorker.set(id, report.worker);
    }
  }
  assert.deepEqual([...byWorker.keys()].sort(), [...ids].sort());

  // What the board says, read by a client that opens it afresh.
  const reader = createColony({ backend: backend() });
  try {
    const tasks = await reader.tasks();
    const all = await tasks.list();
    assert.equal(all.length, TASKS);
    for (const task of all) {
      assert.equal(task.status, "succeeded", `task ${task.id} is ${task.status}`);
      assert.deepEqual(task.result, { worker: byWorker.get(task.id) }, `task ${task.id}'s result names another worker than the one that reported it`);
    }
    const succeeded = new Map<string, number>();
    const head = await tasks.head();
    for await (const event of tasks.watch({ since: 0 })) {
      if (event.type === "succeeded") succeeded.set(event.task.id, (succeeded.get(event.task.id) ?? 0) + 1);
      if (event.seq >= head) break;
    }
    assert.equal(succeeded.size, TASKS);
    for (const [id, n] of succeeded) assert.equal(n, 1, `task ${id} has ${n} succeeded events`);
  } finally {
    await reader.close();
  }
}

test(`sqlite: ${PROCESSES} claimer processes drain ${TASKS} tasks from one file, each task succeeding once`, { timeout: 120_000 }, async (t) => {
  const dir = tempDir("colony-multiprocess-");
  const path = join(dir.path, "colony.db");
  try {
    await drainAcrossProcesses(
      t,
      () => sqliteBackend({ path }),
      (worker) => ["sqlite", path, worker],
    );
  } finally {
    dir.dispose();
  }
});

const nats = natsServerPerFile();

test(`nats: ${PROCESSES} claimer processes drain ${TASKS} tasks from one board, each task succeeding once`, { timeout: 120_000 }, async (t) => {
  const prefix = `mp${Date.now().toString(36)}`;
  await drainAcrossProcesses(
    t,
    () => natsBackend({ servers: nats.server.url, prefix }),
    (worker) => ["nats", nats.server.url, prefix, worker],
  );
});
