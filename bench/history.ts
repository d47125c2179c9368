/**
 * A task board's past under retention: on SQLite and on NATS (a private nats-server), two task
 * boards with the same retention, one that has seen 100 tasks and one that has seen 100,000, every
 * one of them finished. Each is built in this process — batches submitted with `submitAll`,
 * claimed with `claimMany`, each task completed with its own `complete` — then `sweep()`, and
 * closed. Then a fresh client (a child process, `bench/fixtures/history-open.ts`) opens each
 * board: the time from `createColony` to the end of its first `list()`, and the heap it holds
 * after that, medians over several processes. The target: the board that has seen
 * 100,000 tasks opens in at most 1.5× the time and memory of the one that has seen 100.
 */
import { spawn } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { natsNames } from "../src/backends/nats/names.ts";
import { createColony, natsBackend, sqliteBackend, type BackendFactory, type Retention, type TaskBoard } from "../src/index.ts";
import type { OpenMeasure } from "./fixtures/history-open.ts";
import { median, progress } from "./measure.ts";
import { onServer, serverVersion } from "./nats.ts";
import type { HistoryBackendResults, HistoryResults, HistoryRow, StreamState } from "./report.ts";

/** The retention both boards are built and opened under; what it leaves out is `DEFAULT_RETENTION`'s. */
const RETENTION: Partial<Retention> = { maxFinished: 100, maxEvents: 200 };
const SIZES = [100, 100_000] as const;
/** Tasks per `submitAll`, and per `claimMany`. */
const BATCH = 500;
const BOARD = "history";
/** Fresh processes per board, after one untimed one each. */
const RUNS = 15;
const OPEN = fileURLToPath(new URL("./fixtures/history-open.ts", import.meta.url));
const CHILD_TIMEOUT_MS = 120_000;
const LEASE_MS = 10 * 60_000;

type Store = { sqlite: string } | { nats: string; prefix: string };

/**
 * Submits `total` no-op tasks in batches of `BATCH`; after each batch claims it with `claimMany`
 * and completes every task, one `complete` each; then `sweep()`. Seconds it took.
 */
async function build(backend: BackendFactory, total: number, label: string): Promise<number> {
  const colony = createColony({ backend, retention: RETENTION });
  try {
    const tasks = await colony.tasks(BOARD);
    const started = performance.now();
    let lastNote = started;
    for (let done = 0; done < total; ) {
      const m = Math.min(BATCH, total - done);
      await tasks.submitAll(Array.from({ length: m }, (_, j) => ({ kind: "noop", input: { i: done + j } })));
      await drain(tasks, m);
      done += m;
      if (performance.now() - lastNote > 10_000) {
        lastNote = performance.now();
        progress(`  ${label}: ${done.toLocaleString("en-US")} of ${total.toLocaleString("en-US")} tasks finished, ${((lastNote - started) / 1000).toFixed(0)} s`);
      }
    }
    await tasks.sweep();
    return (performance.now() - started) / 1000;
  } finally {
    await colony.close();
  }
}

async function drain(tasks: TaskBoard, m: number): Promise<void> {
  const claimed = await tasks.claimMany({ worker: "history-builder", capabilities: ["noop"], leaseMs: LEASE_MS, max: m });
  if (claimed.length !== m) throw new Error(`claimMany took ${claimed.length} of the ${m} tasks just submitted`);
  for (const task of claimed) await tasks.complete(task.id, null, { generation: task.generation });
}

/** One fresh process opening the board and listing it. */
function openOnce(store: Store): Promise<OpenMeasure> {
  const job = JSON.stringify({ backend: store, board: BOARD, retention: RETENTION });
  const child = spawn(process.execPath, [...process.execArgv, "--expose-gc", OPEN, job], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), CHILD_TIMEOUT_MS);
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split("\n").pop();
      if (code !== 0 || !line) {
        reject(new Error(`history-open exited (code ${code}, signal ${signal}): ${stderr.trim() || "(no stderr)"}`));
        return;
      }
      resolve(JSON.parse(line) as OpenMeasure);
    });
  });
}

/** An untimed process per board, then `RUNS` rounds, alternating which board goes first. */
async function measureOpens(stores: Record<number, Store>, label: string): Promise<Record<number, OpenMeasure[]>> {
  const runs: Record<number, OpenMeasure[]> = Object.fromEntries(SIZES.map((n) => [n, []]));
  for (const n of SIZES) await openOnce(stores[n]!);
  for (let round = 0; round < RUNS; round++) {
    for (const n of round % 2 === 0 ? SIZES : [...SIZES].reverse()) runs[n]!.push(await openOnce(stores[n]!));
  }
  for (const n of SIZES) {
    const ms = median(runs[n]!.map((r) => r.ms));
    const heap = median(runs[n]!.map((r) => r.heapBytes));
    progress(`  ${label}, seen ${n.toLocaleString("en-US")}: open + first list ${ms.toFixed(1)} ms, heap ${(heap / 1024).toFixed(0)} KiB, ${runs[n]![0]!.listed} tasks listed`);
  }
  return runs;
}

function row(tasks: number, buildSeconds: number, runs: OpenMeasure[]): HistoryRow {
  const listed = [...new Set(runs.map((r) => r.listed))];
  return {
    tasks,
    buildSeconds,
    ms: median(runs.map((r) => r.ms)),
    heapBytes: median(runs.map((r) => r.heapBytes)),
    msRuns: runs.map((r) => r.ms),
    heapRuns: runs.map((r) => r.heapBytes),
    listed: listed.length === 1 ? listed[0]! : Math.max(...listed),
  };
}

/** What the SQLite file keeps of the board after building: rows and bytes. */
function sqliteState(path: string): HistoryRow["sqlite"] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const count = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table} WHERE board = ?`).get(BOARD) as { n: number }).n;
    const pages = (pragma: string) => (db.prepare(`PRAGMA ${pragma}`).get() as Record<string, number>)[pragma]!;
    return { taskRows: count("tasks"), eventRows: count("task_events"), fileBytes: statSync(path).size, freePages: pages("freelist_count"), pages: pages("page_count") };
  } finally {
    db.close();
  }
}

async function sqliteHistory(dir: string): Promise<HistoryBackendResults> {
  const stores: Record<number, Store> = {};
  const built: Record<number, { seconds: number; state: HistoryRow["sqlite"] }> = {};
  try {
    for (const n of SIZES) {
      const path = join(dir, `history-${n}.db`);
      progress(`history on SQLite: building a board that has seen ${n.toLocaleString("en-US")} tasks…`);
      const seconds = await build(sqliteBackend({ path }), n, `SQLite, ${n.toLocaleString("en-US")}`);
      built[n] = { seconds, state: sqliteState(path) };
      stores[n] = { sqlite: path };
      progress(`  built in ${seconds.toFixed(1)} s; ${built[n].state!.taskRows} task rows, ${built[n].state!.eventRows} event rows kept`);
    }
    progress(`history on SQLite: a fresh process opens each board and lists it, ${RUNS} rounds…`);
    const runs = await measureOpens(stores, "SQLite");
    return { rows: SIZES.map((n) => ({ ...row(n, built[n]!.seconds, runs[n]!), sqlite: built[n]!.state })) };
  } catch (error) {
    progress(`history on SQLite stopped short: ${(error as Error).message}`);
    return { rows: [], error: (error as Error).message };
  }
}

/** The task board's log stream and its snapshot stream, as the server holds them. */
async function natsState(url: string, prefix: string): Promise<NonNullable<HistoryRow["nats"]>> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const names = natsNames(prefix).tasks(BOARD);
    const state = async (stream: string): Promise<StreamState> => {
      const s = (await jsm.streams.info(stream)).state;
      return { messages: s.messages, bytes: s.bytes, firstSeq: s.first_seq, lastSeq: s.last_seq };
    };
    const snapshots = await state(names.snapshots.stream);
    // The snapshot head message names the log seq the newest snapshot reflects.
    const head = snapshots.messages === 0 ? null : await jsm.streams.getMessage(names.snapshots.stream, { last_by_subj: `${names.snapshots.subject}.head` });
    const snapshotSeq = head ? head.json<{ seq: number }>().seq : undefined;
    return { log: await state(names.stream), snapshots, ...(snapshotSeq === undefined ? {} : { snapshotSeq }) };
  } finally {
    await nc.close();
  }
}

async function natsHistory(): Promise<HistoryBackendResults> {
  const server = serverVersion();
  if ("missing" in server) {
    progress(`history on NATS skipped: ${server.missing}`);
    return { rows: [], skipped: server.missing };
  }
  return onServer(async (url) => {
    const stores: Record<number, Store> = {};
    const built: Record<number, { seconds: number; state: HistoryRow["nats"] }> = {};
    try {
      for (const n of SIZES) {
        const prefix = `history-${n}`;
        progress(`history on NATS: building a board that has seen ${n.toLocaleString("en-US")} tasks…`);
        const seconds = await build(natsBackend({ servers: url, prefix }), n, `NATS, ${n.toLocaleString("en-US")}`);
        const state = await natsState(url, prefix);
        built[n] = { seconds, state };
        stores[n] = { nats: url, prefix };
        const snapshot = state.snapshotSeq === undefined ? "no snapshot yet" : `newest snapshot at log seq ${state.snapshotSeq}`;
        progress(`  built in ${seconds.toFixed(1)} s; log holds ${state.log.messages} messages (${state.log.firstSeq}–${state.log.lastSeq}), ${state.log.bytes} bytes; snapshot stream ${state.snapshots.messages} messages, ${state.snapshots.bytes} bytes; ${snapshot}`);
      }
      progress(`history on NATS: a fresh process opens each board and lists it, ${RUNS} rounds…`);
      const runs = await measureOpens(stores, "NATS");
      return { server: server.version, rows: SIZES.map((n) => ({ ...row(n, built[n]!.seconds, runs[n]!), nats: built[n]!.state })) };
    } catch (error) {
      progress(`history on NATS stopped short: ${(error as Error).message}`);
      return { server: server.version, rows: [], error: (error as Error).message };
    }
  });
}

export async function historyBench(dir: string): Promise<HistoryResults> {
  return { retention: RETENTION, batch: BATCH, runs: RUNS, sqlite: await sqliteHistory(dir), nats: await natsHistory() };
}
