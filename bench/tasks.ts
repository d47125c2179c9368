/**
 * Task board benchmarks. `taskBoardBench`: submit → claim → complete of no-op tasks through
 * `colony.tasks()` on sqliteBackend with 1, 10 and 100 claimers (async loops in this process
 * sharing one colony), against the raw `node:sqlite` baseline of `bench/raw-tasks.ts` in the same
 * run. `workersBench`: tasks end to end through 1, 2 and 4 `colony worker` processes, submitted
 * from this process, for a workload (`WORKLOADS`): the same no-op tasks, or tasks whose agent
 * waits 20 ms; `workersOn` runs it on any store (bench/nats.ts).
 */
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { DEFAULT_RETENTION, createColony, sqliteBackend, type TaskBoard } from "../src/index.ts";
import { comparison, median, progress, type Result } from "./measure.ts";
import { RawTasks } from "./raw-tasks.ts";
import type { TaskBoardResults, TaskRequests, WorkerExit, WorkersResults } from "./report.ts";

const CLAIMERS = [1, 10, 100] as const;
const ROUNDS = 7;
/** Tasks per round are sized so that one of our rounds (submits and drain) takes about this long. */
const TARGET_MS = 600;
const CAPABILITIES = ["noop"];
/** Long enough that no lease lapses during a round: the reaper finds nothing. */
const LEASE_MS = 60_000;
/** The work a claimer does between claim and complete: nothing, but awaited, as a real agent would be. */
const work = async (_input: unknown): Promise<null> => null;

const result = (rounds: number[]): Result => ({ opsPerSec: median(rounds), rounds });

interface Side {
  /** Submits `m` tasks, one operation each. */
  submit(m: number): unknown;
  /** Claims and completes until a claim finds the queue empty; resolves with how many it completed. */
  claimer(worker: string): Promise<number>;
}

function ourSide(tasks: TaskBoard): Side {
  return {
    async submit(m) {
      for (let i = 0; i < m; i++) await tasks.submit({ kind: "noop", input: { i } });
    },
    async claimer(worker) {
      let done = 0;
      for (;;) {
        const task = await tasks.claim({ worker, capabilities: CAPABILITIES, leaseMs: LEASE_MS });
        if (!task) return done;
        await tasks.complete(task.id, await work(task.input), { generation: task.generation });
        done++;
      }
    },
  };
}

function rawSide(raw: RawTasks): Side {
  return {
    submit(m) {
      for (let i = 0; i < m; i++) raw.submit("noop", { i });
    },
    async claimer(worker) {
      let done = 0;
      for (;;) {
        const task = raw.claim(worker, CAPABILITIES, LEASE_MS);
        if (!task) return done;
        raw.complete(task.id, await work(task.input), task.generation);
        done++;
      }
    },
  };
}

/** One round: `m` submits, then `claimers` loops draining the queue. Seconds of each phase. */
async function round(side: Side, m: number, claimers: number): Promise<{ submit: number; drain: number }> {
  const started = performance.now();
  await side.submit(m);
  const submitted = performance.now();
  const done = await Promise.all(Array.from({ length: claimers }, (_, i) => side.claimer(`claimer-${i}`)));
  const drained = performance.now();
  const total = done.reduce((a, b) => a + b, 0);
  if (total !== m) throw new Error(`${claimers} claimers completed ${total} tasks, not the ${m} submitted`);
  return { submit: (submitted - started) / 1000, drain: (drained - submitted) / 1000 };
}

/**
 * Submits first, then drains: every round submits `m` tasks one `submit` at a time, then starts
 * the claimers, each claiming and completing until its claim finds the queue empty. Rounds of
 * ours and raw alternate which goes first; both files grow alike.
 */
export async function taskBoardBench(dir: string): Promise<TaskBoardResults> {
  const colony = createColony({ backend: sqliteBackend({ path: join(dir, "tasks-ours.db") }) });
  const raw = new RawTasks(join(dir, "tasks-raw.db"), "default");
  try {
    const sides = { ours: ourSide(await colony.tasks()), raw: rawSide(raw) };
    progress("task board: warm-up and sizing…");
    const probe = 300;
    await round(sides.raw, probe, 10);
    const warm = await round(sides.ours, probe, 10);
    const oursMs = (warm.submit + warm.drain) * 1000;
    const m = Math.min(20_000, Math.max(500, Math.round((probe * TARGET_MS) / oursMs / 100) * 100));
    const rows: TaskBoardResults["rows"] = [];
    for (const claimers of CLAIMERS) {
      progress(`task board: submit → claim → complete, ${claimers} claimer(s), ${ROUNDS} rounds of ${m} tasks…`);
      const samples = { ours: { cycle: [] as number[], submit: [] as number[], drain: [] as number[] }, raw: { cycle: [] as number[], submit: [] as number[], drain: [] as number[] } };
      for (let r = 0; r < ROUNDS; r++) {
        for (const name of r % 2 === 0 ? (["ours", "raw"] as const) : (["raw", "ours"] as const)) {
          const t = await round(sides[name], m, claimers);
          samples[name].cycle.push(m / (t.submit + t.drain));
          samples[name].submit.push(m / t.submit);
          samples[name].drain.push(m / t.drain);
        }
      }
      const row = {
        claimers,
        ...comparison(result(samples.ours.cycle), result(samples.raw.cycle)),
        submit: comparison(result(samples.ours.submit), result(samples.raw.submit)),
        drain: comparison(result(samples.ours.drain), result(samples.raw.drain)),
      };
      progress(`  ours ${row.ours.opsPerSec.toFixed(0)} tasks/s, raw ${row.raw.opsPerSec.toFixed(0)} tasks/s (${row.ratio.toFixed(2)}×)`);
      rows.push(row);
    }
    return { tasksPerRound: m, rounds: ROUNDS, leaseMs: LEASE_MS, rows };
  } finally {
    raw.close();
    await colony.close();
  }
}

// --- Workers end to end ------------------------------------------------------------------------

const MAIN = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const PROCESSES = [1, 2, 4] as const;

/** What the workers of one row set run, and how this process submits it. */
export interface Workload {
  /** The task kind: the workers' one capability, and the export of `agents` that runs it. */
  kind: string;
  /** The module `colony worker --agents` loads. */
  agents: string;
  /** `colony worker --concurrency`. */
  concurrency: number;
  /** Tasks per submit: 1 submits each with `tasks.submit`, more in `tasks.submitAll` batches of this many. */
  batch: number;
}

/** No-op tasks, one submit each: what the task board, the worker and the sub-agent around the work cost. */
const NOOP_WORKLOAD: Workload = { kind: "noop", agents: fileURLToPath(new URL("./fixtures/noop-agents.ts", import.meta.url)), concurrency: 4, batch: 1 };

/**
 * Tasks that each wait 20 ms, as an agent awaiting a model: a process can run at most 8 × 50 = 400
 * a second, 4 processes 1,600, more than one submit at a time keeps up with (on NATS not even
 * one process's 400), so this process submits in batches.
 */
const IO_WORKLOAD: Workload = { kind: "io", agents: fileURLToPath(new URL("./fixtures/io-agents.ts", import.meta.url)), concurrency: 8, batch: 50 };

/** How many tasks the end-to-end benchmark runs, and for how long. */
export interface E2ePlan {
  rounds: number;
  /** Untimed tasks once every worker is online; also what M is sized from. */
  warmup: number;
  /** Tasks per round are sized from the one-process warm-up for rounds of about this long… */
  targetS: number;
  /** …but at least this many, and at most `maxTasks`. */
  minTasks: number;
  maxTasks: number;
}

/** The workloads the end-to-end benchmark runs, by name. */
export const WORKLOADS = { noop: NOOP_WORKLOAD, io: IO_WORKLOAD } as const;
export type WorkloadName = keyof typeof WORKLOADS;

/**
 * The most tasks per round a row of `rounds` after `warmup` may have on SQLite, whose observer
 * counts the board's rows: past the default retention's finished tasks, the board removes the
 * oldest and the count would never reach its mark (a row sized from a fast warm-up stalled so).
 */
function withinRetention(warmup: number, rounds: number): number {
  return Math.floor((DEFAULT_RETENTION.maxFinished - warmup) / rounds / 100) * 100;
}

const SQLITE_PLANS: Record<WorkloadName, E2ePlan> = {
  noop: { rounds: 3, warmup: 200, targetS: 3, minTasks: 1000, maxTasks: withinRetention(200, 3) },
  // A warm-up long enough for every slot to have run many tasks; rounds of about 4 s at one process.
  io: { rounds: 3, warmup: 400, targetS: 4, minTasks: 1000, maxTasks: withinRetention(400, 3) },
};
/** How long anything the workers should come to may take on a loaded machine before it is an error. */
const PATIENCE_MS = 60_000;
const POLL_MS = 10;

/** A `colony worker --json` process: how many events of each type it printed, and how it ended. */
class WorkerProcess {
  readonly id: string;
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  readonly counts: Record<string, number> = {};
  /** The first few events that are not claims, successes or the worker's own comings and goings, as printed. */
  readonly problems: string[] = [];
  stderr = "";
  readonly exited: Promise<WorkerExit>;
  #pending = "";

  /** `store` is the flags that choose the store (`--db FILE`, `--nats URL --nats-prefix P`). */
  constructor(id: string, store: string[], workload: Workload) {
    this.id = id;
    const args = [MAIN, "worker", ...store, "--capability", workload.kind, "--concurrency", String(workload.concurrency), "--agents", workload.agents, "--json", "--id", id];
    this.child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    // Read stdout as it comes: a full pipe would stall the worker.
    this.child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      this.#pending += chunk;
      const lines = this.#pending.split("\n");
      this.#pending = lines.pop()!;
      for (const line of lines) this.#line(line);
    });
    this.child.stderr.setEncoding("utf8").on("data", (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-4000)));
    this.exited = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve({ worker: id, code, signal, timedOut: false })));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Throws if the process has ended, saying how and what it printed to stderr. */
  check(): void {
    if (this.running) return;
    throw new Error(`worker ${this.id} exited (code ${this.child.exitCode}, signal ${this.child.signalCode}): ${this.stderr.trim() || "(no stderr)"}`);
  }

  /** SIGTERM (drain), then waits; after `PATIENCE_MS` a SIGKILL, and the exit says it timed out. */
  async stop(): Promise<WorkerExit> {
    if (this.running) this.child.kill("SIGTERM");
    const exit = await Promise.race([this.exited, sleep(PATIENCE_MS, undefined, { ref: false })]);
    if (exit) return exit;
    this.child.kill("SIGKILL");
    return { ...(await this.exited), timedOut: true };
  }

  #line(line: string): void {
    if (!line.trim()) return;
    let type = "unparsed";
    try {
      type = String((JSON.parse(line) as { type?: unknown }).type);
    } catch {
      // Counted as unparsed, and kept below.
    }
    this.counts[type] = (this.counts[type] ?? 0) + 1;
    if (!["online", "claimed", "succeeded", "draining", "stopped", "coordinator"].includes(type) && this.problems.length < 5) this.problems.push(line.slice(0, 500));
  }
}

async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, workers: WorkerProcess[], pollMs: number): Promise<T> {
  const deadline = performance.now() + PATIENCE_MS;
  for (;;) {
    for (const worker of workers) worker.check();
    const value = await check();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`gave up after ${PATIENCE_MS / 1000} s waiting for ${what}`);
    await sleep(pollMs);
  }
}

/** How a row of the end-to-end benchmark sees the board: it is polled while the workers run. */
export interface BoardObserver {
  /** Tasks pending, blocked or claimed. */
  inFlight(): number;
  /** Tasks by status, over every task the board holds. */
  statuses(): Record<string, number>;
  /** The wall-clock time (ms) of the board's newest event. */
  lastEventAt(): number;
  close(): void | Promise<void>;
}

/** Where one row runs: `colony worker`'s store flags, this process's task board and its observer. */
export interface E2eStore {
  args: string[];
  tasks: TaskBoard;
  observer: BoardObserver;
  /**
   * Counts the requests the store is sent, if it can (NATS): over one more round of M after the
   * timed rounds, untimed, since counting slows the round it counts.
   */
  counting?: { start(): Promise<void>; finish(tasks: number): Promise<TaskRequests> };
  close(): Promise<void>;
}

/** What a SQLite board holds, read on a connection of its own outside any write transaction. */
class SqliteObserver implements BoardObserver {
  readonly #db: DatabaseSync;
  readonly #inFlight;
  readonly #statuses;
  readonly #lastEvent;

  constructor(path: string) {
    this.#db = new DatabaseSync(path, { readOnly: true, timeout: 5000 });
    this.#inFlight = this.#db.prepare("SELECT count(*) AS n FROM tasks WHERE board = 'default' AND status IN ('pending', 'blocked', 'claimed')");
    this.#statuses = this.#db.prepare("SELECT status, count(*) AS n FROM tasks WHERE board = 'default' GROUP BY status");
    this.#lastEvent = this.#db.prepare("SELECT at FROM task_events WHERE board = 'default' ORDER BY seq DESC LIMIT 1");
  }

  inFlight(): number {
    return (this.#inFlight.get() as { n: number }).n;
  }

  statuses(): Record<string, number> {
    return Object.fromEntries((this.#statuses.all() as { status: string; n: number }[]).map((r) => [r.status, r.n]));
  }

  lastEventAt(): number {
    return (this.#lastEvent.get() as { at: number }).at;
  }

  close(): void {
    this.#db.close();
  }
}

/** A fresh SQLite file per row, opened (and so created) here before the workers open it. */
async function sqliteStore(dir: string, name: string): Promise<E2eStore> {
  const db = join(dir, `${name}.db`);
  const colony = createColony({ backend: sqliteBackend({ path: db }) });
  const tasks = await colony.tasks();
  const observer = new SqliteObserver(db);
  return {
    args: ["--db", db],
    tasks,
    observer,
    async close() {
      observer.close();
      await colony.close();
    },
  };
}

/**
 * Submits `m` tasks, one at a time or in batches, and waits until none is in flight. Times from
 * the first submit to the last task's end (its event's timestamp), in seconds; also the submits alone.
 */
async function e2eRound(store: E2eStore, workers: WorkerProcess[], workload: Workload, m: number, succeededBefore: number): Promise<{ seconds: number; submitSeconds: number }> {
  const { tasks, observer } = store;
  const { kind, batch } = workload;
  const startedAt = Date.now();
  const started = performance.now();
  if (batch === 1) for (let i = 0; i < m; i++) await tasks.submit({ kind, input: { i } });
  else for (let i = 0; i < m; i += batch) await tasks.submitAll(Array.from({ length: Math.min(batch, m - i) }, (_, j) => ({ kind, input: { i: i + j } })));
  const submitSeconds = (performance.now() - started) / 1000;
  // An observer that learns of tasks from events may not have seen the last submits yet.
  const seen = () => Object.values(observer.statuses()).reduce((a, b) => a + b, 0);
  await until(`${m} tasks to end`, () => observer.inFlight() === 0 && seen() >= succeededBefore + m, workers, POLL_MS);
  const seconds = (observer.lastEventAt() - startedAt) / 1000;
  const statuses = observer.statuses();
  if ((statuses.succeeded ?? 0) !== succeededBefore + m || Object.keys(statuses).some((s) => s !== "succeeded")) {
    throw new Error(`expected ${succeededBefore + m} succeeded tasks and nothing else, found ${JSON.stringify(statuses)}`);
  }
  return { seconds: Math.max(seconds, 0.001), submitSeconds };
}

/**
 * N workers on a fresh store: online, warmed up, `rounds` timed rounds, one more untimed round
 * counting requests if the store can count them, then drained by SIGTERM.
 */
async function e2e(store: E2eStore, processes: number, workload: Workload, plan: E2ePlan, size: (warmupRate: number) => number): Promise<WorkersResults["rows"][number]> {
  const { tasks } = store;
  const workers: WorkerProcess[] = [];
  try {
    const launched = performance.now();
    for (let i = 0; i < processes; i++) workers.push(new WorkerProcess(`bench-${workload.kind}-${processes}-${i + 1}`, store.args, workload));
    const ids = new Set(workers.map((w) => w.id));
    await until(`${processes} worker(s) online`, async () => (await tasks.workers()).filter((w) => ids.has(w.id) && w.status === "online").length === processes, workers, 100);
    const startupSeconds = (performance.now() - launched) / 1000;
    progress(`  ${processes} online after ${startupSeconds.toFixed(1)} s; warm-up of ${plan.warmup} tasks…`);
    const warm = await e2eRound(store, workers, workload, plan.warmup, 0);
    const m = size(plan.warmup / warm.seconds);
    let succeeded = plan.warmup;
    const rates: number[] = [];
    const submitRates: number[] = [];
    for (let r = 0; r < plan.rounds; r++) {
      const t = await e2eRound(store, workers, workload, m, succeeded);
      succeeded += m;
      rates.push(m / t.seconds);
      submitRates.push(m / t.submitSeconds);
      progress(`  round ${r + 1}: ${m} tasks in ${t.seconds.toFixed(2)} s (${(m / t.seconds).toFixed(0)}/s; submits alone ${(m / t.submitSeconds).toFixed(0)}/s)`);
    }
    // Requests are counted over one more round of M, untimed: the count's own work (a wiretap on
    // NATS) would slow the rounds it counts, so the timed rounds run without it.
    let requests: TaskRequests | undefined;
    if (store.counting) {
      await store.counting.start();
      const t = await e2eRound(store, workers, workload, m, succeeded);
      succeeded += m;
      progress(`  counted round, untimed: ${m} tasks in ${t.seconds.toFixed(2)} s (${(m / t.seconds).toFixed(0)}/s with the count running)`);
      requests = await store.counting.finish(m);
    }
    const stopping = performance.now();
    const exits = await Promise.all(workers.map((w) => w.stop()));
    const stopSeconds = (performance.now() - stopping) / 1000;
    const claimed = workers.map((w) => w.counts.claimed ?? 0);
    const problems = workers.flatMap((w) => w.problems.map((p) => `${w.id}: ${p}`));
    for (const exit of exits.filter((e) => e.code !== 0 || e.timedOut)) problems.push(`${exit.worker} exited with code ${exit.code}, signal ${exit.signal}${exit.timedOut ? " after SIGKILL (SIGTERM did not end it)" : ""}`);
    return { processes, tasksPerRound: m, ...result(rates), vsOne: 1, submit: result(submitRates), startupSeconds, stopSeconds, claimedPerWorker: claimed, exits, problems, ...(requests && { requests }) };
  } finally {
    for (const worker of workers) if (worker.running) worker.child.kill("SIGKILL");
    await Promise.all(workers.map((w) => w.exited));
    for (const worker of workers) {
      worker.child.stdout.destroy();
      worker.child.stderr.destroy();
    }
    await store.close();
  }
}

/**
 * For 1, 2 and 4 processes: a fresh store from `open` (given a name unique to the workload and
 * N), N `colony worker` processes on it running the workload's agent inline at its concurrency,
 * wait until the registry shows all N online, run an untimed warm-up, then rounds of M tasks
 * submitted from this process (one at a time or in batches, as the workload says) each waited on
 * until every task has succeeded; if the store counts requests (NATS), one more round of M,
 * untimed, with the count running; SIGTERM and await the exits. M is sized once from the
 * one-process warm-up and kept for 2 and 4. An error (a worker that never comes online, exits,
 * or fails a task) is reported rather than thrown. `label` names the store in progress lines.
 */
export async function workersOn(label: string, workload: Workload, open: (name: string) => Promise<E2eStore>, plan: E2ePlan): Promise<WorkersResults> {
  const rows: WorkersResults["rows"] = [];
  let m: number | undefined;
  const size = (rate: number) => (m ??= Math.min(plan.maxTasks, Math.max(plan.minTasks, Math.round((rate * plan.targetS) / 100) * 100)));
  const outline = { kind: workload.kind, concurrency: workload.concurrency, batch: workload.batch, rounds: plan.rounds, warmup: plan.warmup };
  try {
    for (const processes of PROCESSES) {
      progress(`workers end to end on ${label}, ${workload.kind} tasks: ${processes} colony worker process(es) at concurrency ${workload.concurrency}…`);
      rows.push(await e2e(await open(`${workload.kind}-${processes}`), processes, workload, plan, size));
    }
    const one = rows[0]!.opsPerSec;
    for (const row of rows) row.vsOne = row.opsPerSec / one;
    return { ...outline, rows };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    progress(`workers end to end on ${label}, ${workload.kind} tasks, failed: ${message}`);
    return { ...outline, rows, error: message };
  }
}

/** The end-to-end benchmark of a workload on SQLite: a fresh file per row. */
export function workersBench(dir: string, workload: WorkloadName): Promise<WorkersResults> {
  return workersOn("SQLite", WORKLOADS[workload], (name) => sqliteStore(dir, `workers-${name}`), SQLITE_PLANS[workload]);
}
