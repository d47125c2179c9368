/**
 * The BullMQ baseline for Colony's workers end to end on NATS (bench/nats.ts), on the machine's
 * Redis at 127.0.0.1:6379: the same workloads (no-op tasks submitted one at a time; 20 ms tasks
 * submitted in batches of 50) through 1 and 4 BullMQ `Worker` processes (bench/bullmq-worker.ts)
 * with `colony worker`'s concurrency there. Measured as Colony's rows are: an untimed warm-up,
 * then rounds of M jobs added from this process, each round timed from its first add to its last
 * job's end (the job's `finishedOn`, stamped by a worker as Colony's events are), M sized from
 * the one-process warm-up for rounds of the same length, median of the rounds. And the dispatch
 * round trip (add one job, wait for its end) against a request/reply over Redis pub/sub, as
 * Colony's is measured against one over core NATS. A queue of its own per row, obliterated after.
 * bullmq and ioredis are dev dependencies for this baseline only; Colony does not use them.
 *
 * Skipped, saying so in the report, when Redis does not answer a PING within a second.
 */
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { createConnection } from "node:net";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Queue, QueueEvents, Worker } from "bullmq";
import { Redis } from "ioredis";
import { IO_WAIT_MS } from "./fixtures/io-agents.ts";
import { compare, comparison, median, progress, type Comparison } from "./measure.ts";
import { NATS_PLANS } from "./nats.ts";
import type { BullmqResults, BullmqRow } from "./report.ts";
import { WORKLOADS, type WorkloadName } from "./tasks.ts";

const HOST = "127.0.0.1";
const PORT = 6379;
const PROBE_MS = 1000;
/** The worker processes of each row: Colony's first and last on NATS. */
const PROCESSES = [1, 4] as const;
/** Per workload, what a job waits (as Colony's agents do); concurrency, batches and plan are Colony's (bench/tasks.ts, bench/nats.ts). */
const WAIT_MS: Record<WorkloadName, number> = { noop: 0, io: IO_WAIT_MS };
/** As Colony's dispatch rounds (bench/nats.ts). */
const DISPATCH_ROUNDS = 9;
const PATIENCE_MS = 60_000;
const POLL_MS = 10;
const WORKER = fileURLToPath(new URL("./bullmq-worker.ts", import.meta.url));

/** Redis's version if it answers a PING and an INFO within `PROBE_MS`; otherwise why not. */
export function probeRedis(host = HOST, port = PORT): Promise<{ version: string } | { unreachable: string }> {
  return new Promise((resolve) => {
    let text = "";
    const socket = createConnection({ host, port });
    const done = (answer: { version: string } | { unreachable: string }) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done({ unreachable: `no answer within ${PROBE_MS} ms` }), PROBE_MS);
    socket.once("error", (error) => done({ unreachable: error.message }));
    socket.once("connect", () => socket.write("PING\r\nINFO server\r\n"));
    socket.setEncoding("utf8").on("data", (chunk: string) => {
      text += chunk;
      if (text.startsWith("-")) return done({ unreachable: text.split("\r\n")[0]!.slice(1) });
      const version = /\r\nredis_version:([^\r\n]+)\r\n/.exec(text);
      if (version) done({ version: version[1]! });
    });
  });
}

/** A worker process: its "ready", the counts it prints on exit, and how it ended. */
class BullmqWorkerProcess {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  readonly ready: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  counts: { processed: number; failed: number } | undefined;
  stderr = "";

  constructor(queue: string, concurrency: number, ms: number) {
    this.child = spawn(process.execPath, [WORKER, queue, String(concurrency), HOST, String(PORT), String(ms)], { stdio: ["ignore", "pipe", "pipe"] });
    this.child.stderr.setEncoding("utf8").on("data", (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-4000)));
    this.exited = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve({ code, signal })));
    let out = "";
    this.ready = new Promise((resolve) => {
      this.child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk;
        const lines = out.split("\n");
        out = lines.pop()!;
        for (const line of lines) {
          if (line === "ready") resolve();
          else if (line.startsWith("{")) this.counts = JSON.parse(line) as { processed: number; failed: number };
        }
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  check(): void {
    if (this.running) return;
    throw new Error(`a BullMQ worker exited (code ${this.child.exitCode}, signal ${this.child.signalCode}): ${this.stderr.trim() || "(no stderr)"}`);
  }

  /** SIGTERM (the worker finishes what it holds), then waits; after `PATIENCE_MS` a SIGKILL. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }> {
    if (this.running) this.child.kill("SIGTERM");
    const exit = await Promise.race([this.exited, sleep(PATIENCE_MS, undefined, { ref: false })]);
    if (exit) return { ...exit, timedOut: false };
    this.child.kill("SIGKILL");
    return { ...(await this.exited), timedOut: true };
  }
}

async function until(what: string, check: () => Promise<boolean>, workers: readonly BullmqWorkerProcess[]): Promise<void> {
  const deadline = performance.now() + PATIENCE_MS;
  for (;;) {
    for (const worker of workers) worker.check();
    if (await check()) return;
    if (performance.now() > deadline) throw new Error(`gave up after ${PATIENCE_MS / 1000} s waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

/**
 * Adds `m` jobs, one at a time or in `addBulk` batches of `batch`, and polls until the queue has
 * `before + m` completed jobs. Times from the first add to the newest completed job's
 * `finishedOn`, in seconds; also the adds alone.
 */
async function round(queue: Queue, workers: readonly BullmqWorkerProcess[], m: number, before: number, batch: number): Promise<{ seconds: number; submitSeconds: number }> {
  const startedAt = Date.now();
  const started = performance.now();
  for (let i = 0; i < m; i += batch) {
    if (batch === 1) await queue.add("job", { i });
    else await queue.addBulk(Array.from({ length: Math.min(batch, m - i) }, (_, j) => ({ name: "job", data: { i: i + j } })));
  }
  const submitSeconds = (performance.now() - started) / 1000;
  let counts: Record<string, number> = {};
  await until(`${m} jobs to end`, async () => {
    counts = await queue.getJobCounts("completed", "failed");
    return (counts.completed ?? 0) + (counts.failed ?? 0) >= before + m;
  }, workers);
  if (counts.completed !== before + m || (counts.failed ?? 0) > 0) throw new Error(`expected ${before + m} completed jobs and nothing else, found ${JSON.stringify(counts)}`);
  // The completed set is ordered by finish time: its newest is the round's last job.
  const [last] = await queue.getCompleted(0, 0);
  if (last?.finishedOn === undefined) throw new Error("the newest completed job has no finishedOn");
  return { seconds: Math.max((last.finishedOn - startedAt) / 1000, 0.001), submitSeconds };
}

/**
 * One row: `processes` worker processes on a fresh queue, two warm-ups, then the rounds. M is
 * given (sized from the one-process row) or sized here from the second warm-up: the first also
 * pays for loading BullMQ's scripts and warming the processes up.
 */
async function row(workload: WorkloadName, processes: number, sized: number | undefined): Promise<BullmqRow> {
  const { concurrency, batch } = WORKLOADS[workload];
  const plan = NATS_PLANS[workload];
  const name = `colony-bench-${randomUUID().slice(0, 8)}`;
  progress(`BullMQ, ${workload} jobs, ${processes} worker process${processes > 1 ? "es" : ""}, queue ${name}…`);
  const queue = new Queue(name, { connection: { host: HOST, port: PORT } });
  const workers: BullmqWorkerProcess[] = [];
  try {
    await queue.waitUntilReady();
    const launched = performance.now();
    for (let i = 0; i < processes; i++) workers.push(new BullmqWorkerProcess(name, concurrency, WAIT_MS[workload]));
    await Promise.race([Promise.all(workers.map((w) => w.ready)), ...workers.map((w) => w.exited.then(() => w.check()))]);
    const startupSeconds = (performance.now() - launched) / 1000;
    await round(queue, workers, plan.warmup, 0, batch);
    const warm = await round(queue, workers, plan.warmup, plan.warmup, batch);
    const m = sized ?? Math.min(plan.maxTasks, Math.max(plan.minTasks, Math.round(((plan.warmup / warm.seconds) * plan.targetS) / 100) * 100));
    let completed = 2 * plan.warmup;
    const rates: number[] = [];
    const submitRates: number[] = [];
    for (let r = 0; r < plan.rounds; r++) {
      const t = await round(queue, workers, m, completed, batch);
      completed += m;
      rates.push(m / t.seconds);
      submitRates.push(m / t.submitSeconds);
      progress(`  round ${r + 1}: ${m} jobs in ${t.seconds.toFixed(2)} s (${(m / t.seconds).toFixed(0)}/s; adds alone ${(m / t.submitSeconds).toFixed(0)}/s)`);
    }
    const stopping = performance.now();
    const exits = await Promise.all(workers.map((w) => w.stop()));
    const stopSeconds = (performance.now() - stopping) / 1000;
    const problems: string[] = [];
    for (const [i, exit] of exits.entries()) {
      if (exit.code !== 0 || exit.timedOut) problems.push(`worker ${i + 1} exited with code ${exit.code}, signal ${exit.signal}${exit.timedOut ? " after SIGKILL" : ""}: ${workers[i]!.stderr.trim()}`);
    }
    const counts = workers.map((w) => w.counts);
    const processed = counts.every((c) => c !== undefined) ? counts.reduce((sum, c) => sum + c!.processed, 0) : undefined;
    if (processed !== undefined && processed !== completed) problems.push(`the workers processed ${processed} jobs, not ${completed}`);
    if (counts.some((c) => (c?.failed ?? 0) > 0)) problems.push(`jobs failed: ${counts.map((c) => c?.failed ?? "?").join(" / ")}`);
    return {
      processes,
      opsPerSec: median(rates),
      rounds: rates,
      tasksPerRound: m,
      submit: { opsPerSec: median(submitRates), rounds: submitRates },
      startupSeconds,
      stopSeconds,
      processed,
      perWorker: counts.map((c) => c?.processed),
      problems,
    };
  } finally {
    for (const worker of workers) {
      if (worker.running) worker.child.kill("SIGKILL");
      await worker.exited;
      worker.child.stdout.destroy();
      worker.child.stderr.destroy();
    }
    try {
      await queue.obliterate({ force: true });
    } catch (error) {
      progress(`  obliterating queue ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    await queue.close();
  }
}

/**
 * Add one job and wait for its end (`job.waitUntilFinished`, told by `QueueEvents`), a `Worker` of
 * concurrency 1 in this process on its own connections; against a request/reply over Redis
 * pub/sub, a responder on two connections of its own publishing each request back, as Colony's
 * dispatch is measured against a core NATS request/reply in this process.
 */
async function dispatch(): Promise<Comparison> {
  const connection = { host: HOST, port: PORT };
  const name = `colony-bench-${randomUUID().slice(0, 8)}`;
  progress(`BullMQ dispatch: add → worker → finished vs Redis pub/sub request/reply, queue ${name}…`);
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  const worker = new Worker(name, async () => null, { connection, concurrency: 1 });
  const [requests, replies, responderIn, responderOut] = [0, 1, 2, 3].map(() => new Redis(PORT, HOST));
  try {
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), worker.waitUntilReady()]);
    const [ask, answer] = [`${name}-ask`, `${name}-answer`];
    await responderIn!.subscribe(ask);
    responderIn!.on("message", (_channel: string, message: string) => void responderOut!.publish(answer, message));
    const waiting: ((message: string) => void)[] = [];
    await replies!.subscribe(answer);
    replies!.on("message", (_channel: string, message: string) => waiting.shift()?.(message));
    let i = 0;
    const ours = async (n: number) => {
      for (let j = 0; j < n; j++) {
        const job = await queue.add("job", { i: i++ });
        await job.waitUntilFinished(events);
      }
    };
    let k = 0;
    const raw = async (n: number) => {
      for (let j = 0; j < n; j++) {
        const reply = new Promise<string>((resolve) => waiting.push(resolve));
        await requests!.publish(ask, JSON.stringify({ i: k++ }));
        await reply;
      }
    };
    const trips = await compare({ ours, raw }, { rounds: DISPATCH_ROUNDS, targetMs: 400 });
    const result = comparison(trips.ours, trips.raw);
    progress(`  BullMQ ${result.ours.opsPerSec.toFixed(0)}/s, raw ${result.raw.opsPerSec.toFixed(0)}/s (${result.ratio.toFixed(2)}×)`);
    return result;
  } finally {
    await worker.close();
    await events.close();
    for (const client of [requests, replies, responderIn, responderOut]) client!.disconnect();
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
  }
}

/** The rows, or why they were skipped; an error midway is reported rather than thrown. */
export async function bullmqBench(): Promise<BullmqResults> {
  const outline = { bullmq: bullmqVersion(), rows: { noop: [], io: [] } };
  const redis = await probeRedis();
  if ("unreachable" in redis) {
    const skipped = `Redis not reachable at ${HOST}:${PORT}: rows skipped (${redis.unreachable})`;
    progress(`BullMQ: ${skipped}`);
    return { ...outline, skipped };
  }
  const results: BullmqResults = { ...outline, redis: redis.version };
  try {
    for (const workload of ["noop", "io"] as const) {
      for (const processes of PROCESSES) results.rows[workload].push(await row(workload, processes, results.rows[workload][0]?.tasksPerRound));
    }
    results.dispatch = await dispatch();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    progress(`BullMQ baseline failed: ${message}`);
    results.error = message;
  }
  return results;
}

function bullmqVersion(): string {
  const require = createRequire(import.meta.url);
  return (require("bullmq/package.json") as { version: string }).version;
}
