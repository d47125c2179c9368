/**
 * The BullMQ baseline for Colony's workers end to end on NATS (bench/nats.ts, one process): the
 * same no-op tasks through ONE worker process, here a BullMQ `Worker` (bench/bullmq-worker.ts)
 * with `colony worker`'s concurrency there, on the machine's Redis at 127.0.0.1:6379. Measured as
 * Colony's row is: an untimed warm-up, then rounds of M `queue.add` calls one at a time from this
 * process, each round timed from its first add to its last job's end (the job's `finishedOn`,
 * stamped by the worker as Colony's events are), M sized for rounds of the same length, median of
 * the rounds. A queue of its own per run, obliterated after. bullmq (and its Redis driver,
 * ioredis) are dev dependencies for this baseline only; Colony does not use them.
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
import { Queue } from "bullmq";
import { median, progress } from "./measure.ts";
import type { BullmqResults } from "./report.ts";
import type { E2ePlan } from "./tasks.ts";

const HOST = "127.0.0.1";
const PORT = 6379;
const PROBE_MS = 1000;
/** `colony worker --concurrency` in the end-to-end benchmark (bench/tasks.ts). */
const CONCURRENCY = 4;
/** NATS_PLAN in bench/nats.ts: the same warm-up, rounds, round length and bounds on M. */
const PLAN: E2ePlan = { rounds: 3, warmup: 100, targetS: 2, minTasks: 300, maxTasks: 5000 };
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

/** The worker process: its "ready", the counts it prints on exit, and how it ended. */
class BullmqWorkerProcess {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  readonly ready: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  counts: { processed: number; failed: number } | undefined;
  stderr = "";

  constructor(queue: string) {
    this.child = spawn(process.execPath, [WORKER, queue, String(CONCURRENCY), HOST, String(PORT)], { stdio: ["ignore", "pipe", "pipe"] });
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
    throw new Error(`the BullMQ worker exited (code ${this.child.exitCode}, signal ${this.child.signalCode}): ${this.stderr.trim() || "(no stderr)"}`);
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

async function until(what: string, check: () => Promise<boolean>, worker: BullmqWorkerProcess): Promise<void> {
  const deadline = performance.now() + PATIENCE_MS;
  for (;;) {
    worker.check();
    if (await check()) return;
    if (performance.now() > deadline) throw new Error(`gave up after ${PATIENCE_MS / 1000} s waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

/**
 * Adds `m` no-op jobs one at a time and polls until the queue has `before + m` completed jobs.
 * Times from the first add to the newest completed job's `finishedOn`, in seconds; also the adds alone.
 */
async function round(queue: Queue, worker: BullmqWorkerProcess, m: number, before: number): Promise<{ seconds: number; submitSeconds: number }> {
  const startedAt = Date.now();
  const started = performance.now();
  for (let i = 0; i < m; i++) await queue.add("noop", { i });
  const submitSeconds = (performance.now() - started) / 1000;
  let counts: Record<string, number> = {};
  await until(`${m} jobs to end`, async () => {
    counts = await queue.getJobCounts("completed", "failed");
    return (counts.completed ?? 0) + (counts.failed ?? 0) >= before + m;
  }, worker);
  if (counts.completed !== before + m || (counts.failed ?? 0) > 0) throw new Error(`expected ${before + m} completed jobs and nothing else, found ${JSON.stringify(counts)}`);
  // The completed set is ordered by finish time: its newest is the round's last job.
  const [last] = await queue.getCompleted(0, 0);
  if (last?.finishedOn === undefined) throw new Error("the newest completed job has no finishedOn");
  return { seconds: Math.max((last.finishedOn - startedAt) / 1000, 0.001), submitSeconds };
}

/** The BullMQ row, or why it was skipped; an error midway is reported rather than thrown. */
export async function bullmqBench(): Promise<BullmqResults> {
  const outline = { concurrency: CONCURRENCY, rounds: PLAN.rounds, warmup: PLAN.warmup, bullmq: bullmqVersion() };
  const redis = await probeRedis();
  if ("unreachable" in redis) {
    const skipped = `Redis not reachable at ${HOST}:${PORT}: row skipped (${redis.unreachable})`;
    progress(`BullMQ: ${skipped}`);
    return { ...outline, skipped };
  }
  const name = `colony-bench-${randomUUID().slice(0, 8)}`;
  progress(`BullMQ ${outline.bullmq} on Redis ${redis.version} at ${HOST}:${PORT}, queue ${name}: 1 worker process…`);
  const queue = new Queue(name, { connection: { host: HOST, port: PORT } });
  let worker: BullmqWorkerProcess | undefined;
  try {
    await queue.waitUntilReady();
    const launched = performance.now();
    worker = new BullmqWorkerProcess(name);
    const w = worker;
    await Promise.race([w.ready, w.exited.then(() => w.check())]);
    const startupSeconds = (performance.now() - launched) / 1000;
    progress(`  ready after ${startupSeconds.toFixed(1)} s; two warm-ups of ${PLAN.warmup} jobs…`);
    // Two warm-ups, M sized from the second: the first pays for loading BullMQ's scripts and
    // warming both processes up, and its rate would size rounds of well under PLAN.targetS.
    await round(queue, w, PLAN.warmup, 0);
    const warm = await round(queue, w, PLAN.warmup, PLAN.warmup);
    const m = Math.min(PLAN.maxTasks, Math.max(PLAN.minTasks, Math.round(((PLAN.warmup / warm.seconds) * PLAN.targetS) / 100) * 100));
    let completed = 2 * PLAN.warmup;
    const rates: number[] = [];
    const submitRates: number[] = [];
    for (let r = 0; r < PLAN.rounds; r++) {
      const t = await round(queue, w, m, completed);
      completed += m;
      rates.push(m / t.seconds);
      submitRates.push(m / t.submitSeconds);
      progress(`  round ${r + 1}: ${m} jobs in ${t.seconds.toFixed(2)} s (${(m / t.seconds).toFixed(0)}/s; adds alone ${(m / t.submitSeconds).toFixed(0)}/s)`);
    }
    const stopping = performance.now();
    const exit = await w.stop();
    const stopSeconds = (performance.now() - stopping) / 1000;
    const problems: string[] = [];
    if (exit.code !== 0 || exit.timedOut) problems.push(`the worker exited with code ${exit.code}, signal ${exit.signal}${exit.timedOut ? " after SIGKILL" : ""}: ${w.stderr.trim()}`);
    if (w.counts && (w.counts.processed !== completed || w.counts.failed > 0)) problems.push(`the worker processed ${w.counts.processed} jobs (${w.counts.failed} failed), not ${completed}`);
    return {
      ...outline,
      redis: redis.version,
      row: { opsPerSec: median(rates), rounds: rates, tasksPerRound: m, submit: { opsPerSec: median(submitRates), rounds: submitRates }, startupSeconds, stopSeconds, processed: w.counts?.processed, problems },
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    progress(`BullMQ baseline failed: ${message}`);
    return { ...outline, redis: redis.version, error: message };
  } finally {
    if (worker?.running) worker.child.kill("SIGKILL");
    await worker?.exited;
    worker?.child.stdout.destroy();
    worker?.child.stderr.destroy();
    try {
      await queue.obliterate({ force: true });
    } catch (error) {
      progress(`  obliterating queue ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    await queue.close();
  }
}

function bullmqVersion(): string {
  const require = createRequire(import.meta.url);
  return (require("bullmq/package.json") as { version: string }).version;
}
