/**
 * Sub-agent benchmarks, per isolation: spawn latency (spawn to result of a no-op agent) and the
 * warm message round trip (a turn boundary, or a turn with a `board.get`), each against the raw
 * Node mechanism in the same run — `new Worker` / `fork` for spawns, a `postMessage` ping-pong
 * on an already-started worker or process for round trips.
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { createColony, memoryBackend, sqliteBackend, type AgentRef, type Colony, type Isolation } from "../src/index.ts";
import type { PingerInput } from "./agents.ts";
import { compare, comparison, median, progress, time, type Result, type Task } from "./measure.ts";
import type { SubAgentResults } from "./report.ts";

const AGENTS = join(import.meta.dirname, "agents.ts");
const NOOP: AgentRef = { module: AGENTS, export: "noop" };
const PINGER: AgentRef = { module: AGENTS, export: "pinger" };
const RAW_CHILD = new URL("./raw-child.mjs", import.meta.url);
/** What a process child gets from ours (the runtime's allow-list); the raw fork gets the same. */
const CHILD_ENV = ["PATH", "HOME", "LANG", "TZ", "TMPDIR", "NODE_ENV"];

/** Spawns per round and rounds, per isolation: a process spawn costs tens of milliseconds. */
const SPAWN_PLAN = { thread: { n: 8, rounds: 8, warmup: 4 }, process: { n: 4, rounds: 6, warmup: 2 } } as const;
const RTT_ROUNDS = 7;
/** Turns timed per round (about 0.1 s each on an idle 2-core machine), after as many warm-up turns. */
const RTT_TURNS: Record<Isolation, number> = { inline: 3000, thread: 2000, process: 1000 };

/**
 * Rounds of tasks that each report the seconds their `n` operations took (measured where the
 * operations happen), interleaved and alternating which goes first, after `warmup` untimed runs.
 */
async function interleave<K extends string>(
  tasks: Record<K, (n: number) => Promise<number>>,
  plan: { n: number; rounds: number; warmup: number },
): Promise<Record<K, Result>> {
  const names = Object.keys(tasks) as K[];
  for (const name of names) if (plan.warmup > 0) await tasks[name](plan.warmup);
  const samples = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<K, number[]>;
  for (let round = 0; round < plan.rounds; round++) {
    for (const name of round % 2 === 0 ? names : [...names].reverse()) samples[name].push(plan.n / (await tasks[name](plan.n)));
  }
  return Object.fromEntries(names.map((name) => [name, { opsPerSec: median(samples[name]), rounds: samples[name] }])) as Record<K, Result>;
}

/** `n` spawns of the no-op agent, one after the other, each awaited to its result. */
function spawnTask(colony: Colony, isolation: Isolation): Task {
  return async (n) => {
    for (let i = 0; i < n; i++) {
      const handle = await colony.spawn(NOOP, null, { isolation });
      await handle.result;
    }
  };
}

const seconds = (task: Task) => (n: number) => time(task, n);

/**
 * `n` spawns of the no-op agent into a warm host, one after the other, each timed from spawn to
 * result; between spawns (untimed) it waits for the pool to have a ready host again.
 */
function warmSpawnTask(colony: Colony, isolation: "thread" | "process") {
  return async (n: number): Promise<number> => {
    let total = 0;
    for (let i = 0; i < n; i++) {
      while (colony.pool()[isolation].length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      const started = performance.now();
      const handle = await colony.spawn(NOOP, null, { isolation });
      await handle.result;
      total += performance.now() - started;
    }
    return total / 1000;
  };
}

/** The raw spawn: a worker or a process that posts one message and exits; timed to the message. */
function rawSpawnTask(isolation: "thread" | "process"): Task {
  return async (n) => {
    for (let i = 0; i < n; i++) {
      if (isolation === "thread") {
        const worker = new Worker(RAW_CHILD, { workerData: "once" });
        await once(worker, "message");
      } else {
        const child = forkRaw("once");
        await once(child, "message");
      }
    }
  };
}

function forkRaw(mode: "once" | "echo"): ChildProcess {
  const env: Record<string, string> = {};
  for (const name of CHILD_ENV) if (process.env[name] !== undefined) env[name] = process.env[name];
  return fork(RAW_CHILD, [mode], { env, execArgv: [], serialization: "advanced", stdio: ["ignore", "inherit", "inherit", "ipc"] });
}

/** A worker or process that echoes; `pingPong(n)` is n round trips of a small object, timed here. */
async function rawEcho(isolation: "thread" | "process") {
  let answer: (() => void) | undefined;
  const onMessage = () => answer?.();
  const worker = isolation === "thread" ? new Worker(RAW_CHILD, { workerData: "echo" }) : undefined;
  const child = isolation === "process" ? forkRaw("echo") : undefined;
  worker?.on("message", onMessage);
  child?.on("message", onMessage);
  const post = (message: unknown) => (worker ? worker.postMessage(message) : child!.send(message as object));
  const pingPong = async (n: number) => {
    const started = performance.now();
    for (let i = 0; i < n; i++) {
      const pong = new Promise<void>((resolve) => (answer = resolve));
      post({ t: "ping", id: i });
      await pong;
    }
    return (performance.now() - started) / 1000;
  };
  const close = async () => {
    const exited = once((worker ?? child)!, "exit");
    post("exit");
    await exited;
  };
  return { pingPong, close };
}

/** One pinger from spawn to result; the seconds it measured for its `turns` timed turns. */
async function pinger(colony: Colony, isolation: Isolation, input: PingerInput): Promise<number> {
  const handle = await colony.spawn<{ seconds: number }>(PINGER, input, { isolation, board: "bench" });
  return (await handle.result).seconds;
}

async function roundTrips(colony: Colony, isolation: Isolation, get: boolean): Promise<{ ours: Result; raw?: Result; turns: number }> {
  const turns = RTT_TURNS[isolation];
  const ours = (n: number) => pinger(colony, isolation, { warmup: turns, turns: n, get });
  if (isolation === "inline") return { ...(await interleave({ ours }, { n: turns, rounds: RTT_ROUNDS, warmup: 0 })), turns };
  const echo = await rawEcho(isolation);
  try {
    // One untimed stretch warms the baseline, as the pinger's warm-up turns warm ours.
    await echo.pingPong(turns);
    const results = await interleave({ ours, raw: echo.pingPong }, { n: turns, rounds: RTT_ROUNDS, warmup: 0 });
    return { ...results, turns };
  } finally {
    await echo.close();
  }
}

export async function subAgentBench(dir: string): Promise<SubAgentResults> {
  const colony = createColony({ backend: memoryBackend() });
  const onSqlite = createColony({ backend: sqliteBackend({ path: join(dir, "agents.db") }) });
  const pooled = createColony({ backend: memoryBackend(), pool: { thread: 1, process: 1 } });
  try {
    progress("sub-agents: spawn to result, inline…");
    const inline = (await compare({ memory: spawnTask(colony, "inline"), sqlite: spawnTask(onSqlite, "inline") }, { rounds: 15, targetMs: 100 }));

    progress("sub-agents: spawn to result, thread vs new Worker…");
    const thread = await interleave({ ours: seconds(spawnTask(colony, "thread")), raw: seconds(rawSpawnTask("thread")) }, SPAWN_PLAN.thread);
    progress(`  ours ${(1000 / thread.ours.opsPerSec).toFixed(1)} ms, raw ${(1000 / thread.raw.opsPerSec).toFixed(1)} ms`);

    progress("sub-agents: spawn to result, process vs fork…");
    const proc = await interleave({ ours: seconds(spawnTask(colony, "process")), raw: seconds(rawSpawnTask("process")) }, SPAWN_PLAN.process);
    progress(`  ours ${(1000 / proc.ours.opsPerSec).toFixed(1)} ms, raw ${(1000 / proc.raw.opsPerSec).toFixed(1)} ms`);

    progress("sub-agents: spawn to result into a warm host (pool), thread and process…");
    const warm = await interleave({ thread: warmSpawnTask(pooled, "thread"), process: warmSpawnTask(pooled, "process") }, SPAWN_PLAN.process);
    progress(`  thread ${(1000 / warm.thread.opsPerSec).toFixed(1)} ms, process ${(1000 / warm.process.opsPerSec).toFixed(1)} ms`);

    await (await colony.board("bench")).write("k", { small: true }, { author: "bench" });
    const rtt = {} as SubAgentResults["roundTrip"];
    for (const get of [false, true]) {
      const which = get ? "get" : "turn";
      const row = {} as SubAgentResults["roundTrip"]["turn"];
      for (const isolation of ["inline", "thread", "process"] as const) {
        progress(`sub-agents: warm round trip (${get ? "turn + board.get" : "turn boundary"}), ${isolation}…`);
        const { ours, raw, turns } = await roundTrips(colony, isolation, get);
        if (isolation === "inline") row.inline = { ...ours, turns };
        else row[isolation] = { ...comparison(ours, raw!), turns };
      }
      rtt[which] = row;
    }
    return {
      spawn: {
        inline: inline.memory,
        inlineSqlite: inline.sqlite,
        thread: comparison(thread.ours, thread.raw),
        process: comparison(proc.ours, proc.raw),
        threadWarm: warm.thread,
        processWarm: warm.process,
        plan: SPAWN_PLAN,
      },
      roundTrip: rtt,
    };
  } finally {
    await colony.close();
    await onSqlite.close();
    await pooled.close();
  }
}
