/**
 * Colony's benchmarks: board writes and reads against raw node:sqlite, the loop's own cost,
 * sub-agents' spawn latency and message round trip against raw worker threads and processes,
 * the task board's submit → claim → complete against raw node:sqlite, tasks end to end
 * through 1, 2 and 4 `colony worker` processes (no-op tasks, and I/O-bound tasks that each wait
 * 20 ms), and on NATS (private nats-servers): board writes against raw KV, task dispatch against
 * request/reply, and the same two end-to-end row sets; then one NATS worker process against one
 * BullMQ worker process on the machine's Redis (skipped if Redis is not there); last, a fresh
 * client opening a task board that has seen 100,000 tasks against one that has seen 100, under
 * the same retention, on SQLite and on NATS; and after it, model agents (a scripted mock model) against
 * the AI SDK's own `generateText`: a 10-step tool loop per isolation, and 100 model sub-agents
 * fanned out from one parent against raw worker and process starts; last, the HTTP API: board entries
 * and the task list over a socket against the in-process call plus a raw Hono round trip, and
 * 50 SSE clients following 10,000 board writes. Run with `npm run bench`; `node bench/main.ts --json` (or `npm run -s bench -- --json`)
 * also prints the results as JSON on stdout. Progress goes to stderr. Writes BENCHMARKS.md at the repo root.
 *
 * `--only SECTION[,SECTION]` runs some sections and prints their part of the report on stdout
 * (JSON with `--json`) instead of writing BENCHMARKS.md: board, loop, subagents, claimers,
 * workers (no-op tasks on SQLite), workers-io (20 ms tasks on SQLite), nats (CAS writes, dispatch
 * and no-op workers on NATS), nats-io (20 ms tasks on NATS), bullmq, history (opening a board
 * that has seen 100,000 tasks, on SQLite and NATS), models (model agents against `generateText`), server (the
 * HTTP API: entries and tasks over a socket, SSE fan-out); groups: `tasks` = claimers,
 * workers and workers-io; `io` = workers-io and nats-io.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createColony, memoryBackend, sqliteBackend, type Agent, type BackendFactory } from "../src/index.ts";
import { bullmqBench } from "./bullmq.ts";
import { historyBench } from "./history.ts";
import { AUTHOR, casWriter, KEYS } from "./cas.ts";
import { calibrate, compare, comparison, median, progress, time, type Result, type Task } from "./measure.ts";
import { RawBoard } from "./raw-sqlite.ts";
import { natsBench } from "./nats.ts";
import { modelsBench, renderModels, type ModelResults } from "./models.ts";
import { machine, render, type Results } from "./report.ts";
import { renderServer, serverBench, type ServerResults } from "./server.ts";
import { subAgentBench } from "./spawn.ts";
import { taskBoardBench, workersBench } from "./tasks.ts";

const ROUNDS = 15;

async function boards(dir: string) {
  const ours = createColony({ backend: sqliteBackend({ path: join(dir, "ours.db") }) });
  const memory = createColony({ backend: memoryBackend() });
  return { ours, memory, board: await ours.board("bench"), memBoard: await memory.board("bench"), raw: new RawBoard(join(dir, "raw.db"), "bench") };
}

async function loopSteps(backend: () => BackendFactory, agentCount: number): Promise<Result> {
  const colony = createColony({ backend: backend() });
  const agents: Agent[] = Array.from({ length: agentCount }, (_, i) => ({ name: `noop-${i}`, trigger: () => true, run: () => {} }));
  const task: Task = async (n) => {
    const result = await colony.run({ board: "loop", agents, maxSteps: n, deadlockAfter: 1_000_000_000 });
    if (result.stopReason !== "max_steps") throw new Error(`loop stopped by ${result.stopReason}: ${result.error ?? ""}`);
  };
  const n = await calibrate(task, 400);
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) rounds.push(n / (await time(task, n)));
  await colony.close();
  return { opsPerSec: median(rounds), rounds };
}

const SECTIONS = ["board", "loop", "subagents", "claimers", "workers", "workers-io", "nats", "nats-io", "bullmq", "history", "models", "server"] as const;
type Section = (typeof SECTIONS)[number];
const GROUPS: Record<string, Section[]> = { tasks: ["claimers", "workers", "workers-io"], io: ["workers-io", "nats-io"] };

/** The sections `--only a,b` (or `--only=a,b`) asks for; undefined without the flag. */
function only(args: string[]): Set<Section> | undefined {
  const at = args.findIndex((a) => a === "--only" || a.startsWith("--only="));
  if (at < 0) return undefined;
  const value = args[at]!.startsWith("--only=") ? args[at]!.slice("--only=".length) : args[at + 1];
  const wanted = new Set<Section>();
  for (const name of (value ?? "").split(",").map((n) => n.trim()).filter(Boolean)) {
    const sections = GROUPS[name] ?? (SECTIONS.includes(name as Section) ? [name as Section] : undefined);
    if (!sections) throw new Error(`--only ${name}: no such section; choose from ${[...SECTIONS, ...Object.keys(GROUPS)].join(", ")}`);
    for (const section of sections) wanted.add(section);
  }
  if (wanted.size === 0) throw new Error(`--only needs sections: ${[...SECTIONS, ...Object.keys(GROUPS)].join(", ")}`);
  return wanted;
}

async function boardBench(dir: string): Promise<Pick<Results, "writes" | "reads">> {
  const { ours, memory, board, memBoard, raw } = await boards(dir);
  try {
    progress("CAS writes: sqliteBackend vs raw node:sqlite…");
    const writes = await compare(
      {
        ours: casWriter(async (k, v, e) => (await board.write(k, v, { author: AUTHOR, expectedVersion: e })).version, false),
        raw: casWriter((k, v, e) => raw.write(k, v, AUTHOR, e), true),
      },
      { rounds: ROUNDS, targetMs: 250 },
    );
    progress(`  ours ${writes.ours.opsPerSec.toFixed(0)}/s, raw ${writes.raw.opsPerSec.toFixed(0)}/s`);

    progress("CAS writes: memoryBackend…");
    const memWrites = await compare(
      { memory: casWriter(async (k, v, e) => (await memBoard.write(k, v, { author: AUTHOR, expectedVersion: e })).version, false) },
      { rounds: ROUNDS, targetMs: 100 },
    );

    progress("reads: board.get vs raw SELECT…");
    let r1 = 0;
    let r2 = 0;
    let r3 = 0;
    const reads = await compare(
      {
        ours: async (n) => {
          for (let j = 0; j < n; j++) await board.get(KEYS[r1++ % KEYS.length]!);
        },
        raw: (n) => {
          for (let j = 0; j < n; j++) raw.get(KEYS[r2++ % KEYS.length]!);
        },
      },
      { rounds: ROUNDS, targetMs: 150 },
    );
    progress("reads: board.view().read…");
    const viewReads = await compare(
      {
        view: (n) => {
          for (let j = 0; j < n; j++) board.view().read(KEYS[r3++ % KEYS.length]!);
        },
      },
      { rounds: ROUNDS, targetMs: 100 },
    );
    return {
      writes: { ...comparison(writes.ours, writes.raw), memory: memWrites.memory },
      reads: { ...comparison(reads.ours, reads.raw), view: viewReads.view },
    };
  } finally {
    raw.close();
    await ours.close();
    await memory.close();
  }
}

async function loopBench(dir: string): Promise<NonNullable<Results["loop"]>> {
  const loop: NonNullable<Results["loop"]> = [];
  for (const [name, backend] of [
    ["memory", () => memoryBackend()],
    ["sqlite", () => sqliteBackend({ path: join(dir, `loop-${loop.length}.db`) })],
  ] as const) {
    for (const agents of [3, 100]) {
      progress(`loop: ${agents} no-op agents on ${name}…`);
      loop.push({ backend: name, agents, ...(await loopSteps(backend, agents)) });
    }
  }
  return loop;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes("--json");
  let sections: Set<Section> | undefined;
  try {
    sections = only(args);
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const run = (section: Section) => sections === undefined || sections.has(section);
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), "colony-bench-"));
  const env = machine(args);
  progress(`${env.cpu} ×${env.cores}, node ${env.node}; temp files in ${dir}`);
  try {
    // The models and server sections render their own parts (bench/models.ts, bench/server.ts), after report.ts's sections.
    const results: Results & { models?: ModelResults; server?: ServerResults } = {
      ...env,
      ...(run("board") && (await boardBench(dir))),
      loop: run("loop") ? await loopBench(dir) : undefined,
      subagents: run("subagents") ? await subAgentBench(dir) : undefined,
      tasks: run("claimers") ? await taskBoardBench(dir) : undefined,
      workers: run("workers") ? await workersBench(dir, "noop") : undefined,
      workersIo: run("workers-io") ? await workersBench(dir, "io") : undefined,
      nats: run("nats") || run("nats-io") ? await natsBench({ core: run("nats"), io: run("nats-io") }) : undefined,
      // After nats: its ratio is to the NATS one-process row of this same run.
      bullmq: run("bullmq") ? await bullmqBench() : undefined,
      history: run("history") ? await historyBench(dir) : undefined,
      models: run("models") ? await modelsBench() : undefined,
      server: run("server") ? await serverBench(dir) : undefined,
      seconds: 0,
    };
    results.seconds = (performance.now() - started) / 1000;
    const text = [render(results), results.models && renderModels(results.models), results.server && renderServer(results.server)].filter(Boolean).join("\n");
    if (sections === undefined) {
      const out = resolve(import.meta.dirname, "..", "BENCHMARKS.md");
      writeFileSync(out, text);
      progress(`wrote ${out} in ${results.seconds.toFixed(1)} s`);
    } else {
      progress(`done in ${results.seconds.toFixed(1)} s; BENCHMARKS.md left as it was (--only)`);
      if (!json) process.stdout.write(text);
    }
    if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
