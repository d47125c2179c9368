/**
 * The bounded soak: thousands of tasks through two worker processes on NATS, with a small
 * retention, so that finished tasks and events are pruned and the task log is purged behind
 * snapshots many times over, and the agents of ended tasks are pruned from the agent registry (by
 * the workers' coordinator). This process submits them in batches and waits for each batch, so the
 * backlog stays small. Once retention has kicked in, what the server holds for the task board
 * (consumers, the task log's and the snapshot stream's messages and bytes) and the workers' heaps
 * (after a forced GC) stay flat: checked at checkpoints every tenth of the tasks from a quarter on,
 * the log against the two snapshot intervals it may hold, the rest against the first checkpoints,
 * and the log against what it would hold without purges. At each checkpoint
 * a fresh client opens the board and must see what this one sees. Every task succeeds exactly
 * once, and the workers drain and exit 0 on SIGTERM.
 *
 * A gap still open is a `todo` subtest naming its cause, so that the soak says when it closes.
 * The samples are printed as diagnostics.
 *
 * 8,000 tasks by default; COLONY_SOAK=1 runs the 20,000 of the long soak. On a private nats-server.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { randomUUID } from "node:crypto";
import type { Readable, Writable } from "node:stream";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { natsNames } from "../src/backends/nats/names.ts";
import { SNAPSHOT_EVERY } from "../src/backends/nats/tasks.ts";
import { createColony, natsBackend, type Colony, type Task } from "../src/index.ts";
import { waitFor } from "./fixtures/helpers.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

const SOAK = process.env.COLONY_SOAK === "1";
// Thin workers' operations are group-committed by their coordinator, about one log message per two
// tasks: it takes this many for the log to be purged past its first checkpoint's messages.
const TOTAL = SOAK ? 20_000 : 8_000;
/** Submitted at once, and waited for before the next: the backlog stays this small. */
const BATCH = 50;
/** Small, so that retention kicks in after a few hundred tasks: for the task board, and for the agent registry (a task's agent each). */
const RETENTION = { maxFinished: 200, maxEvents: 400, agents: { maxEnded: 200 } };
/** At these many tasks done: a quarter, then every tenth, and the end. */
const CHECKPOINTS = [0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 1].map((f) => Math.round((f * TOTAL) / BATCH) * BATCH);
/** Consumers a stream may have at a checkpoint: one change feed per client (two workers, this process) and one more. */
const MAX_CONSUMERS = 4;
/** The board's clients, each folding its log and able to write its snapshots: the two workers and this process. */
const CLIENTS = 3;
/** Growth allowed from the first checkpoints to any later one, for what is not a sawtooth of its own (the snapshots, a message's size). */
const MAX_GROWTH = 2;
/**
 * The most messages the task log may hold at a checkpoint. A snapshot is written once the log has
 * SNAPSHOT_EVERY messages past the newest one (the board here, under its small retention, holds
 * far fewer than four times that), and the log is then purged up to the snapshot before: it holds
 * two intervals, and what comes while the next snapshot is being written and its purge lands,
 * which on a loaded machine was over a hundred messages (1,111 at one checkpoint): a third interval
 * covers it. Held against this, not against the first checkpoints, which may both fall at the
 * bottom of a tooth; a log that grew with the tasks would pass it within a few thousand.
 */
const MAX_LOG_MESSAGES = 3 * SNAPSHOT_EVERY;
/** A worker's heap at the end against the first checkpoint's: this times, plus SLACK_BYTES. */
const MAX_HEAP_GROWTH = 1.5;
const SLACK_BYTES = 4 * 1024 * 1024;
/**
 * Heap growth a task that a flat worker may show between checkpoints: a GC'd heap still moves
 * from one sample to the next (the coordinator's, which holds the folded board between purges and
 * serves the other worker, by up to 1.6 MB), so over a short run the bound is that noise spread
 * over its tasks, and over a long one this many bytes a task (a record kept per task is hundreds).
 */
const MAX_HEAP_SLOPE = 100;
const HEAP_NOISE_BYTES = 2 * 1024 * 1024;
/** How long anything a worker process should come to may take; generous, as the machine may be loaded. */
const PATIENCE = 60_000;
const WORKER = fileURLToPath(new URL("./fixtures/soak-worker.ts", import.meta.url));

const nats = natsServerPerFile();
const colonyOn = (prefix: string) => createColony({ backend: natsBackend({ servers: nats.server.url, prefix }), retention: RETENTION });

/** What a worker process reports (see test/fixtures/soak-worker.ts). */
interface Report {
  type: "online" | "sample" | "stopped";
  heapUsed?: number;
  claimed: number;
  succeeded: number;
  failed: number;
  stale: number;
  errors: number;
  lastErrors: string[];
}

class SoakWorker {
  readonly id: string;
  readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  readonly reports: Report[] = [];
  stderr = "";
  #pending = "";

  constructor(id: string, prefix: string) {
    this.id = id;
    this.child = spawn(process.execPath, ["--expose-gc", WORKER, nats.server.url, prefix, id, JSON.stringify(RETENTION)], { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      this.#pending += chunk;
      const lines = this.#pending.split("\n");
      this.#pending = lines.pop()!;
      for (const line of lines) if (line.trim()) this.reports.push(JSON.parse(line) as Report);
    });
    this.child.stderr.setEncoding("utf8").on("data", (chunk: string) => (this.stderr += chunk));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits for the report after the first `from` of this type, failing at once if the process ends. */
  report(type: Report["type"], from = 0): Promise<Report> {
    return waitFor(
      () => {
        const found = this.reports.filter((r) => r.type === type)[from];
        if (!found && !this.running) throw new Error(`soak worker ${this.id} exited (${this.child.exitCode ?? this.child.signalCode}) before its ${type} report: ${this.stderr}`);
        return found;
      },
      PATIENCE,
      `soak worker ${this.id}'s ${type} report`,
    );
  }

  /** Its heap after a forced GC, and its counts so far. */
  sample(): Promise<Report> {
    const seen = this.reports.filter((r) => r.type === "sample").length;
    this.child.stdin.write("sample\n");
    return this.report("sample", seen);
  }
}

const workers: SoakWorker[] = [];
after(() => {
  for (const worker of workers) if (worker.running) worker.child.kill("SIGKILL");
});

interface StreamSample {
  messages: number;
  bytes: number;
  consumers: number;
  /** The log's first and last sequence: `last` is every message it was ever sent. */
  first: number;
  last: number;
}

async function consumerNames(jsm: JetStreamManager, stream: string): Promise<Set<string>> {
  const names = new Set<string>();
  // A consumer deleted while the list is made (a batch read's, short-lived) comes as null.
  for await (const consumer of jsm.consumers.list(stream) as AsyncIterable<{ name: string } | null>) if (consumer) names.add(consumer.name);
  return names;
}

async function streamSample(jsm: JetStreamManager, stream: string): Promise<StreamSample> {
  const { state } = await jsm.streams.info(stream);
  return { messages: state.messages, bytes: state.bytes, consumers: state.consumer_count, first: state.first_seq, last: state.last_seq };
}

/** Every stream of the prefix besides the task board's two, by name: what else the swarm keeps on the server. */
async function otherStreams(jsm: JetStreamManager, prefix: string, except: string[]): Promise<Record<string, StreamSample>> {
  const out: Record<string, StreamSample> = {};
  for await (const info of jsm.streams.list()) {
    const name = info.config.name;
    if (except.includes(name) || !(name.startsWith(`${prefix}_`) || name.startsWith(`KV_${prefix}_`))) continue;
    const { state } = info;
    out[name] = { messages: state.messages, bytes: state.bytes, consumers: state.consumer_count, first: state.first_seq, last: state.last_seq };
  }
  return out;
}

type RejectedMessages = Awaited<ReturnType<Colony["rejected"]>>;

interface Checkpoint {
  done: number;
  log: StreamSample;
  /** The consumers on the task log besides those the fresh clients of earlier checkpoints left. */
  swarm: number;
  /** Consumers on the task log that this checkpoint's fresh client left once it closed. */
  left: number;
  snapshots: StreamSample;
  heaps: number[];
  others: Record<string, StreamSample>;
  /** What a client opening the board then skipped as not Colony's (a snapshot it could not read whole). */
  rejected: RejectedMessages;
}

/** The least-squares slope of heap bytes over tasks done. */
function bytesPerTask(points: [number, number][]): number {
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const [x, y] = [mean(points.map((p) => p[0])), mean(points.map((p) => p[1]))];
  return points.reduce((sum, [px, py]) => sum + (px - x) * (py - y), 0) / points.reduce((sum, [px]) => sum + (px - x) ** 2, 0);
}

const kb = (bytes: number) => `${Math.round(bytes / 1024)} kB`;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const line = (c: Checkpoint) =>
  `${c.done} tasks: log ${c.log.messages} msgs ${kb(c.log.bytes)} ${c.log.consumers} consumers, ${c.swarm} the swarm's (of ${c.log.last} msgs ever sent), ` +
  `snapshots ${c.snapshots.messages} msgs ${kb(c.snapshots.bytes)} ${c.snapshots.consumers} consumers, ` +
  `heaps ${c.heaps.map(mb).join(" / ")}, ` +
  `a fresh client skipped ${c.rejected.count}${c.rejected.count > 0 ? ` (${c.rejected.last.join("; ")})` : ""} and left ${c.left} consumers, ` +
  `others ${Object.entries(c.others).map(([name, s]) => `${name} ${s.messages} msgs ${kb(s.bytes)} ${s.consumers} consumers`).join(", ")}`;

test(`${TOTAL} tasks through 2 worker processes on NATS: consumers, stream sizes and heaps stay flat once retention kicks in`, { timeout: SOAK ? 1_200_000 : 180_000 }, async (t) => {
  const started = performance.now();
  const prefix = `s${randomUUID().slice(0, 8)}`;
  const { stream, snapshots } = natsNames(prefix).tasks("default");
  const colony = colonyOn(prefix);
  const nc = await connect({ servers: nats.server.url });
  try {
    const jsm = await jetstreamManager(nc);
    const tasks = await colony.tasks();
    workers.push(new SoakWorker("soak-1", prefix), new SoakWorker("soak-2", prefix));
    await Promise.all(workers.map((w) => w.report("online")));
    t.diagnostic(`workers online after ${Math.round(performance.now() - started)} ms`);

    const checkpoints: Checkpoint[] = [];
    /** Consumers on the task log that the checkpoints' fresh clients left behind. */
    const leftByFresh = new Set<string>();
    /** Tasks that came back succeeded, by the worker that ran them (from their results). */
    const ranBy = new Map<string, number>();
    const running = performance.now();
    for (let done = 0; done < TOTAL; ) {
      const inputs = Array.from({ length: BATCH }, (_, j) => done + j);
      const submitted = await tasks.submitAll(inputs.map((input) => ({ kind: "noop", input })));
      // Each task as it ended, before retention may remove it: `wait` looks again if its events went.
      const ended = (await Promise.all(submitted.map((task) => tasks.wait(task.id)))) as Task<number, { input: number; worker: string }>[];
      assert.deepEqual(
        ended.map((task) => [task.status, task.attempts, task.failures.length, task.result?.input]),
        inputs.map((input) => ["succeeded", 0, 0, input]),
        `batch from task ${done}`,
      );
      for (const task of ended) ranBy.set(task.result!.worker, (ranBy.get(task.result!.worker) ?? 0) + 1);
      done += BATCH;
      if (!CHECKPOINTS.includes(done)) continue;
      const [log, snaps, others, reports, names] = await Promise.all([
        streamSample(jsm, stream),
        streamSample(jsm, snapshots.stream),
        otherStreams(jsm, prefix, [stream, snapshots.stream]),
        Promise.all(workers.map((w) => w.sample())),
        consumerNames(jsm, stream),
      ]);
      // A client opening the board now starts from the newest snapshot and sees what this one sees.
      const fresh = colonyOn(prefix);
      let rejected: RejectedMessages;
      try {
        const opened = await fresh.tasks();
        await waitFor(async () => JSON.stringify(await opened.list()) === JSON.stringify(await tasks.list()), PATIENCE, `a fresh client at ${done} tasks to list what this one lists`);
        rejected = await fresh.rejected();
      } finally {
        await fresh.close();
      }
      // Its consumers on the task log that are still there once it closed: not the swarm's.
      const left = [...(await consumerNames(jsm, stream))].filter((name) => !names.has(name));
      const swarm = [...names].filter((name) => !leftByFresh.has(name)).length;
      for (const name of left) leftByFresh.add(name);
      const checkpoint = { done, log, swarm, left: left.length, snapshots: snaps, heaps: reports.map((r) => r.heapUsed!), others, rejected };
      checkpoints.push(checkpoint);
      t.diagnostic(`${line(checkpoint)} (${Math.round(performance.now() - running)} ms in)`);
    }
    const ranFor = performance.now() - running;
    t.diagnostic(`${TOTAL} tasks in ${Math.round(ranFor)} ms, ${Math.round(TOTAL / (ranFor / 1000))} tasks/s; ran by ${[...ranBy].map(([w, n]) => `${w} ${n}`).join(", ")}`);

    // Retention kicks in for the log once a second snapshot is written (every ~1,000 messages):
    // the log is purged up to the first. From then on its size is a sawtooth, growing to about a
    // snapshot's interval past the snapshot before, then purged back.
    const purged = checkpoints.filter((c) => c.log.first > 1);
    assert.ok(purged.length >= 4, `the log was purged by ${purged[0]?.done ?? "none"} of the ${TOTAL} tasks, leaving ${purged.length} checkpoints to compare`);
    const [first, second] = [purged[0]!, purged[1]!];
    const last = purged.at(-1)!;
    assert.ok(first.snapshots.messages > 0, `a snapshot was there by ${first.done} tasks`);

    for (const c of checkpoints) {
      assert.ok(c.swarm <= MAX_CONSUMERS, `${c.done} tasks: ${c.swarm} consumers of the swarm on the task log`);
      assert.ok(c.snapshots.consumers <= MAX_CONSUMERS, `${c.done} tasks: ${c.snapshots.consumers} consumers on the snapshot stream`);
    }
    // Against the larger of the first two purged checkpoints: one of them may be at the bottom of a tooth.
    const perMessage = (c: Checkpoint) => c.log.bytes / Math.max(1, c.log.messages);
    const base = {
      bytesPerMessage: Math.max(perMessage(first), perMessage(second)),
      snapMessages: Math.max(first.snapshots.messages, second.snapshots.messages),
      snapBytes: Math.max(first.snapshots.bytes, second.snapshots.bytes),
    };
    for (const c of purged) {
      assert.ok(c.log.messages <= MAX_LOG_MESSAGES, `${c.done} tasks: the log holds ${c.log.messages} messages, over the ${MAX_LOG_MESSAGES} that the snapshot rule allows`);
      assert.ok(perMessage(c) <= MAX_GROWTH * base.bytesPerMessage, `${c.done} tasks: the log's messages average ${kb(perMessage(c))}, over ${MAX_GROWTH}× the ${kb(base.bytesPerMessage)} of the first checkpoints`);
      // Every client folds the same log and may write the same snapshot at once; the losers' copies
      // stay until the next purge. So at most one snapshot per client, none much larger than the first.
      assert.ok(c.snapshots.messages <= MAX_GROWTH * CLIENTS * base.snapMessages, `${c.done} tasks: the snapshot stream holds ${c.snapshots.messages} messages, over ${MAX_GROWTH}× ${CLIENTS} clients' ${base.snapMessages} of the first checkpoints`);
      assert.ok(c.snapshots.bytes <= MAX_GROWTH * CLIENTS * base.snapBytes, `${c.done} tasks: the snapshot stream holds ${kb(c.snapshots.bytes)}, over ${MAX_GROWTH}× ${CLIENTS} clients' ${kb(base.snapBytes)} of the first checkpoints`);
    }
    // Not growing with the tasks: without purges the log would hold every message it was sent;
    // by the end, all that it held at the first purged checkpoint has been purged.
    assert.ok(last.log.first > first.log.last, `at the end the log starts at ${last.log.first}, so it still holds what it held at ${first.done} tasks (up to ${first.log.last})`);
    for (const [i, worker] of workers.entries()) {
      const [from, to] = [first.heaps[i]!, last.heaps[i]!];
      assert.ok(to <= MAX_HEAP_GROWTH * from + SLACK_BYTES, `${worker.id}'s heap after a GC went from ${mb(from)} at ${first.done} tasks to ${mb(to)} at ${last.done}`);
    }

    // What else the swarm keeps on the server, and the clients and workers themselves.
    await t.test("the other streams of the swarm keep few consumers", () => {
      for (const c of purged) for (const [name, s] of Object.entries(c.others)) assert.ok(s.consumers <= MAX_CONSUMERS, `${c.done} tasks: ${s.consumers} consumers on ${name}`);
    });
    await t.test("the other streams of the swarm do not grow with the tasks", () => {
      // Less than a message for every ten tasks run between the first purged checkpoint and the last.
      for (const [name, s] of Object.entries(last.others)) {
        const from = first.others[name]?.messages ?? 0;
        assert.ok(s.messages - from <= (last.done - first.done) / 10, `${name} held ${from} messages at ${first.done} tasks and ${s.messages} at ${last.done}`);
      }
    });

    await t.test("a client opening the board reads the newest snapshot whole", () => {
      for (const c of checkpoints) assert.equal(c.rejected.count, 0, `${c.done} tasks: a fresh client skipped ${c.rejected.last.join("; ")}`);
    });
    await t.test("a client that opened the board and closed leaves no consumer behind", () => {
      for (const c of checkpoints) assert.equal(c.left, 0, `${c.done} tasks: a fresh client left ${c.left} consumers on the task log`);
    });
    await t.test("the workers' heaps do not grow with the tasks", () => {
      for (const [i, worker] of workers.entries()) {
        const slope = bytesPerTask(purged.map((c) => [c.done, c.heaps[i]!]));
        assert.ok(slope <= Math.max(MAX_HEAP_SLOPE, HEAP_NOISE_BYTES / (last.done - first.done)), `${worker.id}'s heap after a GC grew by ${Math.round(slope)} bytes a task from ${first.done} tasks to ${last.done}`);
      }
    });

    // Drained on SIGTERM: every worker says what it did and exits 0 by itself.
    for (const worker of workers) worker.child.kill("SIGTERM");
    const stopped = await Promise.all(workers.map((w) => w.report("stopped")));
    await waitFor(() => workers.every((w) => !w.running), PATIENCE, "the workers to exit");
    assert.deepEqual(
      workers.map((w) => [w.id, w.child.exitCode, w.child.signalCode]),
      workers.map((w) => [w.id, 0, null]),
      workers.map((w) => w.stderr).join("\n"),
    );
    t.diagnostic(`stopped: ${stopped.map((r, i) => `${workers[i]!.id} claimed ${r.claimed} succeeded ${r.succeeded} failed ${r.failed} stale ${r.stale} errors ${r.errors}`).join("; ")}`);
    // Exactly once: each of the tasks came back succeeded at its first attempt, and the workers
    // recorded as many successes as the tasks say each of them ran, no more.
    assert.deepEqual(
      stopped.map((r, i) => ({ worker: workers[i]!.id, claimed: r.claimed, succeeded: r.succeeded, failed: r.failed, stale: r.stale, errors: r.errors, lastErrors: r.lastErrors })),
      workers.map((w) => ({ worker: w.id, claimed: ranBy.get(w.id) ?? 0, succeeded: ranBy.get(w.id) ?? 0, failed: 0, stale: 0, errors: 0, lastErrors: [] })),
    );
    assert.equal([...ranBy.values()].reduce((a, b) => a + b, 0), TOTAL);
    assert.deepEqual(await tasks.list({ status: "pending" }), []);
    t.diagnostic(`the whole test took ${Math.round(performance.now() - started)} ms`);
  } finally {
    await colony.close();
    await nc.close();
  }
});
