/**
 * NATS benchmarks. Each part starts a private nats-server of its own (JetStream, a temp store, a
 * free port, HTTP monitoring) and stops it after; ours and its baseline run on that one server, in
 * the same interleaved rounds:
 *
 * - board CAS writes: `board.write` on natsBackend against `kv.update` on a plain KV bucket;
 * - task dispatch: submit one task and wait for its result, run by a TaskWorker in this process on
 *   a connection of its own, against a core request/reply;
 * - tasks end to end through 1, 2 and 4 `colony worker --nats` processes (as on SQLite), no-op
 *   tasks (`core`) and, on a server of its own, tasks that each wait 20 ms (`io`).
 *
 * For the dispatch and for each end-to-end row it also counts what the clients asked of JetStream
 * (`RequestCount`): a wiretap (bench/nats-tap.ts) hears every `$JS.API` request and every publish
 * on a stream's subjects, and the server's `/jsz` gives its own API counters and each stream's
 * last sequence (so what was stored). The count runs over one more round of the same size after
 * the timed rounds, untimed: the wiretap's own work (the server copying every message to it, its
 * thread decoding them) would slow the rounds it counts, so the timed rounds run without it.
 *
 * Skipped, saying so in the report, when nats-server is not on PATH.
 */
import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { Worker } from "node:worker_threads";
import { natsNames } from "../src/backends/nats/names.ts";
import { createColony, natsBackend, type TaskBoard, type TaskStatus } from "../src/index.ts";
import { startNatsServer, type NatsServer } from "../src/testing/nats-server.ts";
import { AUTHOR, casWriter } from "./cas.ts";
import { noop } from "./fixtures/noop-agents.ts";
import { compare, comparison, progress, type Comparison, type Task } from "./measure.ts";
import type { TapCounts, TapSetup } from "./nats-tap.ts";
import { RawKv, RawRpc, RawStoredPingPong } from "./raw-nats.ts";
import { requestsPerTask, type NatsResults, type TaskRequests } from "./report.ts";
import { WORKLOADS, workersOn, type BoardObserver, type E2ePlan, type E2eStore, type WorkloadName } from "./tasks.ts";

const WRITE_ROUNDS = 15;
const DISPATCH_ROUNDS = 9;
/** The fewest dispatches the requests are counted over (see `dispatchBench`). */
const COUNTED_DISPATCHES = 150;
/** Dispatches (and stored ping-pongs) before the calibration. */
const WARM_DISPATCHES = 500;
export const NATS_PLANS: Record<WorkloadName, E2ePlan> = {
  /** Fewer and smaller rounds than on SQLite: a NATS task costs more round trips, and the machine is shared. */
  noop: { rounds: 3, warmup: 100, targetS: 2, minTasks: 300, maxTasks: 5000 },
  io: { rounds: 3, warmup: 200, targetS: 4, minTasks: 600, maxTasks: 5000 },
};
const IN_FLIGHT: ReadonlySet<TaskStatus> = new Set(["pending", "blocked", "claimed"]);

/** `nats-server --version`, or why it cannot be run. */
export function serverVersion(): { version: string } | { missing: string } {
  const run = spawnSync("nats-server", ["--version"], { encoding: "utf8" });
  if (run.error) {
    const why = (run.error as NodeJS.ErrnoException).code === "ENOENT" ? "nats-server is not on PATH" : `nats-server --version failed: ${run.error.message}`;
    return { missing: why };
  }
  return { version: run.stdout.trim().replace(/^nats-server:\s*/, "") };
}

/** Runs `work` against a private nats-server started for it (with HTTP monitoring), and stops the server after. */
export async function onServer<T>(work: (url: string, server: NatsServer) => Promise<T>): Promise<T> {
  const server = await startNatsServer({ monitor: true });
  try {
    return await work(server.url, server);
  } finally {
    await server.stop();
  }
}

/** What `/jsz` says: the API counters, and every stream's subjects and last sequence. */
interface Jsz {
  api: { total: number; errors: number };
  streams: Map<string, { subjects: string[]; lastSeq: number }>;
}

interface JszReply {
  api: { total: number; errors: number };
  account_details?: { stream_detail?: { name: string; config?: { subjects?: string[] }; state: { last_seq: number } }[] }[];
}

async function jsz(server: NatsServer): Promise<Jsz> {
  const response = await fetch(`${server.monitorUrl}/jsz?accounts=true&streams=true&config=true`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`${server.monitorUrl}/jsz answered ${response.status}`);
  const reply = (await response.json()) as JszReply;
  const streams = new Map<string, { subjects: string[]; lastSeq: number }>();
  for (const account of reply.account_details ?? []) {
    for (const stream of account.stream_detail ?? []) streams.set(stream.name, { subjects: stream.config?.subjects ?? [], lastSeq: stream.state.last_seq });
  }
  return { api: reply.api, streams };
}

/** The wiretap's next message, or its error. */
async function heard(tap: Worker): Promise<unknown> {
  const [message] = await Promise.race([once(tap, "message"), once(tap, "error").then(([error]) => Promise.reject(error as Error))]);
  return message;
}

/**
 * Counts what the clients of `server` ask of JetStream from `start` to `finish`: the requests
 * and publishes a wiretap hears (bench/nats-tap.ts, in a worker thread), and from `/jsz` the
 * server's API counters and, per stream, the messages stored (`last_seq` now less `last_seq` at
 * the start). The server's `api.total` leaves out the requests a stream or a consumer answers
 * itself (a message get that finds its message, a pull); the wiretap hears them all. Of the
 * publishes, the wiretap also reads the stream's answers: stored, refused (a compare-and-set
 * lost) or a duplicate. Everything on the server is counted, so nothing else may use it
 * meanwhile; streams are named after `prefix`'s task board "default" and registry buckets where
 * they are one of those.
 */
class RequestCount {
  readonly #server: NatsServer;
  readonly #labels: Map<string, string>;
  readonly #tap: Worker;
  readonly #started: Jsz;
  readonly #startedAt: number;

  private constructor(server: NatsServer, labels: Map<string, string>, tap: Worker, started: Jsz) {
    this.#server = server;
    this.#labels = labels;
    this.#tap = tap;
    this.#started = started;
    this.#startedAt = performance.now();
  }

  static async start(server: NatsServer, prefix: string): Promise<RequestCount> {
    const names = natsNames(prefix);
    const board = names.tasks("default");
    const labels = new Map([
      [board.stream, "tasks"],
      [board.snapshots.stream, "snapshots"],
      [`KV_${names.runs}`, "runs"],
      [`KV_${names.agents}`, "agents"],
      [`KV_${names.leases}`, "leases"],
    ]);
    const setup: TapSetup = { url: server.url, streams: [...(await jsz(server)).streams].map(([name, { subjects }]) => ({ name, subjects })) };
    const tap = new Worker(new URL("./nats-tap.ts", import.meta.url), { workerData: setup });
    try {
      const ready = await heard(tap);
      if (ready !== "ready") throw new Error(`the wiretap said ${JSON.stringify(ready)}, not ready`);
      return new RequestCount(server, labels, tap, await jsz(server));
    } catch (error) {
      await tap.terminate();
      throw error;
    }
  }

  /** Stops counting: the totals over the span, for `tasks` tasks. */
  async finish(tasks: number): Promise<TaskRequests> {
    const seconds = (performance.now() - this.#startedAt) / 1000;
    const ended = await jsz(this.#server);
    const answer = heard(this.#tap);
    this.#tap.postMessage("stop");
    const counts = (await answer) as TapCounts;
    const label = (stream: string) => this.#labels.get(stream) ?? stream;
    const byLabel = <T>(o: Record<string, T>) => Object.fromEntries(Object.entries(o).map(([stream, v]) => [label(stream), v]));
    const stored: Record<string, number> = {};
    const published: Record<string, number> = {};
    const unheard: string[] = [];
    for (const [stream, { lastSeq }] of ended.streams) {
      const delta = lastSeq - (this.#started.streams.get(stream)?.lastSeq ?? 0);
      if (delta !== 0) stored[label(stream)] = delta;
      const heardOn = counts.published[stream];
      if (heardOn === undefined) unheard.push(stream);
      else if (heardOn !== 0) published[label(stream)] = heardOn;
    }
    const mostFirst = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).sort(([, a], [, b]) => b - a));
    return {
      tasks,
      seconds,
      api: mostFirst(counts.api),
      jsz: { total: ended.api.total - this.#started.api.total, errors: ended.api.errors - this.#started.api.errors },
      published: mostFirst(published),
      stored: mostFirst(stored),
      refused: byLabel(counts.refused),
      duplicates: byLabel(counts.duplicates),
      unanswered: counts.unanswered,
      acks: counts.acks,
      ...(unheard.length > 0 && { unheard }),
    };
  }

  /** Ends the wiretap if `finish` did not. */
  async close(): Promise<void> {
    await this.#tap.terminate();
  }
}

/** Progress lines for a count. */
function countLines(r: TaskRequests): string {
  const per = requestsPerTask(r);
  const f = (n: number) => n.toFixed(2);
  const each = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, n]) => `${k} ${f(n / r.tasks)}`)
      .join(", ") || "none";
  const served = r.jsz.total - (per.api - per.gets - per.pulls) * r.tasks;
  const unsorted = (per.published - per.stored - per.refused - per.duplicates) * r.tasks - r.unanswered;
  return [
    `  per task over ${r.tasks} tasks in ${r.seconds.toFixed(1)} s: ${f(per.requests)} requests = ${f(per.api)} JetStream API + ${f(per.published)} publishes`,
    `    API by kind: ${each(r.api)}; /jsz api.total ${f(per.jszTotal)}; in all, /jsz counted ${r.jsz.errors} errors and ${Math.round(served)} requests more than the wiretap heard less gets and pulls (a get that finds nothing is counted)`,
    `    publishes: ${f(per.stored)} stored (${each(r.stored)}), ${f(per.refused)} refused, ${f(per.duplicates)} duplicates, ${r.unanswered} unanswered (${Math.round(unsorted)} heard and neither stored, refused nor duplicate)${r.acks > 0 ? `; ${r.acks} acks` : ""}${r.unheard ? `; streams made meanwhile, not tapped: ${r.unheard.join(", ")}` : ""}`,
  ].join("\n[bench] ");
}

async function writesBench(url: string): Promise<Comparison> {
  const colony = createColony({ backend: natsBackend({ servers: url, prefix: "bench" }) });
  const raw = await RawKv.open(url, "raw_cas");
  try {
    const board = await colony.board("cas");
    progress("NATS CAS writes: natsBackend board.write vs raw kv.update…");
    const writes = await compare(
      {
        ours: casWriter(async (k, v, e) => (await board.write(k, v, { author: AUTHOR, expectedVersion: e })).version, false),
        raw: casWriter((k, v, e) => raw.write(k, v, e), false),
      },
      { rounds: WRITE_ROUNDS, targetMs: 250 },
    );
    const result = comparison(writes.ours, writes.raw);
    progress(`  ours ${result.ours.opsPerSec.toFixed(0)}/s, raw ${result.raw.opsPerSec.toFixed(0)}/s (${result.ratio.toFixed(2)}×)`);
    return result;
  } finally {
    await raw.close();
    await colony.close();
  }
}

async function dispatchBench(url: string, server: NatsServer): Promise<NonNullable<NatsResults["dispatch"]>> {
  const colony = createColony({ backend: natsBackend({ servers: url, prefix: "bench" }) });
  // The worker on a connection of its own, as a worker of the swarm is.
  const workers = createColony({ backend: natsBackend({ servers: url, prefix: "bench" }) });
  const rpc = await RawRpc.open(url, "bench.rpc");
  const stored = await RawStoredPingPong.open(url, "benchpp");
  let count: RequestCount | undefined;
  try {
    const tasks = await colony.tasks();
    await workers.worker({ id: "bench-dispatch", agents: { noop }, concurrency: 1 });
    let i = 0;
    const ours: Task = async (n) => {
      for (let j = 0; j < n; j++) {
        const task = await tasks.submit({ kind: "noop", input: { i: i++ } });
        const done = await tasks.wait(task.id);
        if (done.status !== "succeeded") throw new Error(`task ${task.id} ended ${done.status}: ${JSON.stringify(done.failures)}`);
      }
    };
    let k = 0;
    const raw: Task = async (n) => {
      for (let j = 0; j < n; j++) await rpc.call({ kind: "noop", input: { i: k++ } });
    };
    const floor: Task = async (n) => {
      for (let j = 0; j < n; j++) await stored.call({ kind: "noop", input: { i: k++ } });
    };
    progress("NATS task dispatch: submit → worker → result vs core request/reply…");
    // Warm first: the first dispatches (the worker's election and registration, consumers made,
    // code not yet optimised) took the calibration's first batch to 250 ms and more, which sized
    // rounds of a couple of dozen, each at the mercy of one timer or one GC.
    await ours(WARM_DISPATCHES);
    await floor(WARM_DISPATCHES);
    let before = 0;
    let timed = 0;
    const trips = await compare(
      { ours, raw, floor },
      {
        rounds: DISPATCH_ROUNDS,
        targetMs: 400,
        beforeRounds: () => (before = i),
        afterRounds: () => (timed = i - before),
      },
    );
    const result = { ...comparison(trips.ours, trips.raw), floor: trips.floor };
    progress(`  ours ${result.ours.opsPerSec.toFixed(0)}/s, raw ${result.raw.opsPerSec.toFixed(0)}/s (${result.ratio.toFixed(2)}×), stored ping-pong ${trips.floor.opsPerSec.toFixed(0)}/s`);
    // The requests are counted over one more batch of dispatches after the timed rounds, untimed,
    // since the wiretap's own work would slow the rounds it counts. The batch is as many as one
    // timed round had (`compare` runs every task `n` times a round, n sized by calibration so that
    // the slower, ours, takes about `targetMs`: 150 to 250 dispatches on a 2-core machine), and at
    // least COUNTED_DISPATCHES, as a calibration on a busy machine can size rounds of a dozen.
    const n = Math.max(timed / DISPATCH_ROUNDS, COUNTED_DISPATCHES);
    progress(`  counted batch, untimed: ${n} dispatches…`);
    count = await RequestCount.start(server, "bench");
    await ours(n);
    const requests = await count.finish(n);
    progress(countLines(requests));
    progress(`  ${i} tasks on the board`);
    return { ...result, tasks: i, requests };
  } finally {
    await count?.close();
    await rpc.close();
    await stored.close();
    await colony.close();
    await workers.close();
  }
}

/** What a NATS task board holds, as this process's board learns it from its events. */
class WatchObserver implements BoardObserver {
  readonly #statuses = new Map<string, TaskStatus>();
  readonly #counts = new Map<TaskStatus, number>();
  readonly #stop = new AbortController();
  readonly #watching: Promise<void>;
  #lastAt = 0;
  #failure: unknown;

  private constructor(tasks: TaskBoard, since: number) {
    this.#watching = this.#watch(tasks, since);
  }

  /** Watches from the board's head now: it sees every task submitted after this. */
  static async open(tasks: TaskBoard): Promise<WatchObserver> {
    return new WatchObserver(tasks, await tasks.head());
  }

  inFlight(): number {
    if (this.#failure !== undefined) throw new Error("watching the task board failed", { cause: this.#failure });
    let n = 0;
    for (const status of IN_FLIGHT) n += this.#counts.get(status) ?? 0;
    return n;
  }

  statuses(): Record<string, number> {
    return Object.fromEntries([...this.#counts].filter(([, n]) => n > 0));
  }

  lastEventAt(): number {
    return this.#lastAt;
  }

  async close(): Promise<void> {
    this.#stop.abort();
    await this.#watching;
  }

  async #watch(tasks: TaskBoard, since: number): Promise<void> {
    try {
      for await (const { task, at } of tasks.watch({ since, signal: this.#stop.signal })) {
        const before = this.#statuses.get(task.id);
        if (before !== undefined) this.#counts.set(before, this.#counts.get(before)! - 1);
        this.#statuses.set(task.id, task.status);
        this.#counts.set(task.status, (this.#counts.get(task.status) ?? 0) + 1);
        this.#lastAt = at;
      }
    } catch (error) {
      if (!this.#stop.signal.aborted) this.#failure = error;
    }
  }
}

/** A fresh prefix per row on the one server: the workers and this process share nothing else. */
async function natsStore(server: NatsServer, name: string): Promise<E2eStore> {
  const { url } = server;
  const prefix = `bench-w-${name}`;
  const colony = createColony({ backend: natsBackend({ servers: url, prefix }) });
  try {
    const tasks = await colony.tasks();
    const observer = await WatchObserver.open(tasks);
    let count: RequestCount | undefined;
    return {
      args: ["--nats", url, "--nats-prefix", prefix],
      tasks,
      observer,
      counting: {
        async start() {
          count = await RequestCount.start(server, prefix);
        },
        async finish(tasks) {
          const requests = await count!.finish(tasks);
          progress(countLines(requests));
          return requests;
        },
      },
      async close() {
        await count?.close();
        await observer.close();
        await colony.close();
      },
    };
  } catch (error) {
    await colony.close();
    throw error;
  }
}

const workersBench = (workload: WorkloadName) => (_url: string, server: NatsServer) => workersOn("NATS", WORKLOADS[workload], (name) => natsStore(server, name), NATS_PLANS[workload]);

/** `core`: CAS writes, dispatch and the no-op workers; `io`: the workers with 20 ms tasks. */
export async function natsBench(parts: { core: boolean; io: boolean }): Promise<NatsResults> {
  const server = serverVersion();
  if ("missing" in server) {
    progress(`NATS sections skipped: ${server.missing}`);
    return { skipped: server.missing };
  }
  progress(`NATS: nats-server ${server.version}, a private server per part`);
  const results: NatsResults = { server: server.version };
  if (parts.core) {
    results.writes = await onServer(writesBench);
    results.dispatch = await onServer(dispatchBench);
    results.workers = await onServer(workersBench("noop"));
  }
  if (parts.io) results.workersIo = await onServer(workersBench("io"));
  return results;
}
