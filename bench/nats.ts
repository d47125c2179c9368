/**
 * NATS benchmarks. Each part starts a private nats-server of its own (JetStream, a temp store, a
 * free port) and stops it after; ours and its baseline run on that one server, in the same
 * interleaved rounds:
 *
 * - board CAS writes: `board.write` on natsBackend against `kv.update` on a plain KV bucket;
 * - task dispatch: submit one task and wait for its result, run by a TaskWorker in this process,
 *   against a core request/reply;
 * - tasks end to end through 1, 2 and 4 `colony worker --nats` processes (as on SQLite), no-op
 *   tasks (`core`) and, on a server of its own, tasks that each wait 20 ms (`io`).
 *
 * Skipped, saying so in the report, when nats-server is not on PATH.
 */
import { spawnSync } from "node:child_process";
import { createColony, natsBackend, type TaskBoard, type TaskStatus } from "../src/index.ts";
import { startNatsServer } from "../src/testing/nats-server.ts";
import { AUTHOR, casWriter } from "./cas.ts";
import { noop } from "./fixtures/noop-agents.ts";
import { compare, comparison, progress, type Comparison, type Task } from "./measure.ts";
import { RawKv, RawRpc } from "./raw-nats.ts";
import type { NatsResults } from "./report.ts";
import { WORKLOADS, workersOn, type BoardObserver, type E2ePlan, type E2eStore, type WorkloadName } from "./tasks.ts";

const WRITE_ROUNDS = 15;
const DISPATCH_ROUNDS = 9;
const NATS_PLANS: Record<WorkloadName, E2ePlan> = {
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

/** Runs `work` against a private nats-server started for it, and stops the server after. */
export async function onServer<T>(work: (url: string) => Promise<T>): Promise<T> {
  const server = await startNatsServer();
  try {
    return await work(server.url);
  } finally {
    await server.stop();
  }
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

async function dispatchBench(url: string): Promise<Comparison & { tasks: number }> {
  const colony = createColony({ backend: natsBackend({ servers: url, prefix: "bench" }) });
  const rpc = await RawRpc.open(url, "bench.rpc");
  try {
    const tasks = await colony.tasks();
    await colony.worker({ id: "bench-dispatch", agents: { noop }, concurrency: 1 });
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
    progress("NATS task dispatch: submit → worker → result vs core request/reply…");
    const trips = await compare({ ours, raw }, { rounds: DISPATCH_ROUNDS, targetMs: 400 });
    const result = comparison(trips.ours, trips.raw);
    progress(`  ours ${result.ours.opsPerSec.toFixed(0)}/s, raw ${result.raw.opsPerSec.toFixed(0)}/s (${result.ratio.toFixed(2)}×); ${i} tasks on the board`);
    return { ...result, tasks: i };
  } finally {
    await rpc.close();
    await colony.close();
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
async function natsStore(url: string, name: string): Promise<E2eStore> {
  const prefix = `bench-w-${name}`;
  const colony = createColony({ backend: natsBackend({ servers: url, prefix }) });
  try {
    const tasks = await colony.tasks();
    const observer = await WatchObserver.open(tasks);
    return {
      args: ["--nats", url, "--nats-prefix", prefix],
      tasks,
      observer,
      async close() {
        await observer.close();
        await colony.close();
      },
    };
  } catch (error) {
    await colony.close();
    throw error;
  }
}

const workersBench = (workload: WorkloadName) => (url: string) => workersOn("NATS", WORKLOADS[workload], (name) => natsStore(url, name), NATS_PLANS[workload]);

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
