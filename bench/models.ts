/**
 * Model agents (`defineModelAgent`) against the AI SDK alone, on memoryBackend, with the SDK's
 * mock model scripted (`bench/model-agents.ts`):
 *
 * 1. a 10-step tool loop, the model answering after 5 ms: Colony, one model step per turn, as a
 *    sub-agent in each isolation, against one `generateText` with `stopWhen: isStepCount(10)`,
 *    both timed from the start of the first model call to the end (the scripted model notes
 *    when its first call began), so that a thread's or process's start is left out and shown
 *    on its own (spawn → first model call, beside a raw `new Worker` / `fork` start);
 * 2. the same loop with a model answering at once: Colony's cost per turn in µs;
 * 3. 100 model sub-agents, one 50 ms reply each, fanned out from one parent: against one agent's
 *    time (inline), and against 100 raw workers or processes started at once plus one agent's
 *    time (thread, process), with the peak RSS of this process (and of the children, for processes).
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { generateText, isStepCount, tool } from "ai";
import type { z } from "zod";
import { createColony, memoryBackend, type AgentRef, type Colony, type Isolation, type SubAgent } from "../src/index.ts";
import { median, progress } from "./measure.ts";
import { INSTRUCTIONS, LOOP_STEPS, MODEL_AGENTS, now, PROMPT, stampedModel, type Stamp } from "./model-agents.ts";
import { addOne, MODEL_LOOP_AGENTS } from "./model-loop-agents.ts";

const RAW_CHILD = new URL("./raw-child.mjs", import.meta.url);
/** What a process child gets from ours (the runtime's allow-list); the raw fork gets the same. */
const CHILD_ENV = ["PATH", "HOME", "LANG", "TZ", "TMPDIR", "NODE_ENV"];
const ISOLATIONS = ["inline", "thread", "process"] as const;

/** Rounds, and runs of each side per round, of the tool loops (inline runs are cheap, so more of them). */
const LOOP_PLAN = {
  5: { rounds: 7, runs: { inline: 3, thread: 1, process: 1 } },
  0: { rounds: 7, runs: { inline: 20, thread: 1, process: 1 } },
} as const satisfies Record<number, { rounds: number; runs: Record<Isolation, number> }>;
const FAN_OUT = 100;
const FAN_LATENCY_MS = 50;
/**
 * Fan-out rounds per isolation, at most (each side once per round, thread and process against
 * their raw starts); after the first, a round is begun only if the rounds so far, one more
 * of their average length included, stay within `FAN_BUDGET_MS`: 100 threads or processes
 * take tens of seconds a round on 2 cores.
 */
const FAN_ROUNDS: Record<Isolation, number> = { inline: 5, thread: 3, process: 3 };
const FAN_BUDGET_MS = 90_000;
/** Runs of one agent alone (after one untimed). */
const ONE_AGENT_RUNS = 7;
/** How often this process's RSS is sampled during a fan-out; children's RSS every 4th sample. */
const SAMPLE_MS = 25;

export const TARGETS = { loop: 1.05, inline: 1.5, isolated: 1.2 } as const;

/** A median with its range and every round's value, in round order. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  rounds: number[];
}

export interface LoopRow {
  isolation: Isolation;
  /** Wall time per model step, ms, from the start of the first model call to the end. */
  colony: Spread;
  baseline: Spread;
  /** Per round: Colony ÷ `generateText`, per step. */
  ratio: Spread;
  /** Per round: Colony − `generateText`, per step, µs. */
  overheadUs: Spread;
  /** Spawn → the start of the first model call, ms. */
  startMs: Spread;
  /** A raw `new Worker` / `fork` to its first message, ms, one per round (thread and process). */
  rawStartMs?: Spread;
}

export interface LoopResults {
  latencyMs: number;
  steps: number;
  rounds: number;
  runs: Record<Isolation, number>;
  rows: LoopRow[];
}

export interface FanOutRow {
  isolation: Isolation;
  /** Spawn of the parent → its result (every child's), ms. */
  wallMs: Spread;
  /** Spawn of the parent → the start of the last child's first model call, ms. */
  lastFirstCallMs: Spread;
  /** 100 raw workers / processes started at once, to the last one's message, ms (thread, process). */
  rawMs?: Spread;
  /** Medians: wall ÷ one agent (inline) or ÷ (raw + one agent). */
  ratio: number;
  /** Per round, against that round's raw start. */
  pairedRatio: Spread;
  /** This process's RSS: before, and the peak sampled, of the rounds' (bytes); the peak is the largest. */
  rssBefore: number;
  rssPeak: number;
  /** Process isolation: the children's summed VmRSS and RssAnon, and VmRSS plus this process's RSS, peaks sampled. */
  children?: ChildrenPeak;
  /** The same for the raw starts. */
  rawRssPeak?: number;
  rawChildren?: ChildrenPeak;
}

export interface FanOutResults {
  agents: number;
  latencyMs: number;
  /** Rounds run per isolation (see `FAN_ROUNDS`, `FAN_BUDGET_MS`). */
  rounds: Record<Isolation, number>;
  budgetMs: number;
  /** One agent alone, inline, spawn → result, ms. */
  oneAgentMs: Spread;
  rows: FanOutRow[];
}

export interface ModelResults {
  /** The `ai` package's version. */
  ai: string;
  loop: LoopResults;
  instant: LoopResults;
  fanOut: FanOutResults;
}

const ref = (name: string): AgentRef => ({ module: MODEL_AGENTS, export: name });

function spreadOf(values: number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), rounds: values };
}

function stampOf(text: unknown, calls: number): Stamp {
  const stamp = JSON.parse(String(text)) as Stamp;
  if (stamp.calls !== calls) throw new Error(`the model answered after ${stamp.calls} calls, not ${calls}`);
  return stamp;
}

/** One `generateText` doing the whole tool loop; ms from the first model call to its return. */
async function baselineLoop(latencyMs: number): Promise<number> {
  const model = await stampedModel(latencyMs, LOOP_STEPS);
  const result = await generateText({
    model,
    instructions: INSTRUCTIONS,
    tools: { add_one: tool({ description: addOne.description!, inputSchema: addOne.input as z.ZodType<{ n: number }>, execute: addOne.execute as (args: { n: number }) => number }) },
    messages: [{ role: "user", content: PROMPT }],
    stopWhen: isStepCount(LOOP_STEPS),
  });
  const end = now();
  if (result.steps.length !== LOOP_STEPS) throw new Error(`generateText took ${result.steps.length} steps, not ${LOOP_STEPS}`);
  return end - stampOf(result.text, LOOP_STEPS).first;
}

/** The loop agent spawned and awaited; ms from the first model call to its result, and from the spawn to that call. */
async function colonyLoop(colony: Colony, isolation: Isolation, latencyMs: number): Promise<{ spanMs: number; startMs: number }> {
  const started = now();
  const handle = await colony.spawn<string>({ module: MODEL_LOOP_AGENTS, export: `loop${latencyMs}` }, PROMPT, { isolation });
  const text = await handle.result;
  const end = now();
  const stamp = stampOf(text, LOOP_STEPS);
  return { spanMs: end - stamp.first, startMs: stamp.first - started };
}

function forkRaw(): ChildProcess {
  const env: Record<string, string> = {};
  for (const name of CHILD_ENV) if (process.env[name] !== undefined) env[name] = process.env[name];
  return fork(RAW_CHILD, ["once"], { env, execArgv: [], serialization: "advanced", stdio: ["ignore", "inherit", "inherit", "ipc"] });
}

/** `n` raw workers or processes (bench/raw-child.mjs, mode `once`) started at once; ms to the last one's message, then awaits their exits (untimed). */
async function rawStarts(isolation: "thread" | "process", n: number): Promise<number> {
  const started = now();
  const children = Array.from({ length: n }, () => (isolation === "thread" ? new Worker(RAW_CHILD, { workerData: "once" }) : forkRaw()));
  const exits = children.map((child) => once(child, "exit"));
  await Promise.all(children.map((child) => once(child, "message")));
  const ms = now() - started;
  await Promise.all(exits);
  return ms;
}

async function loopBench(colony: Colony, latencyMs: 5 | 0): Promise<LoopResults> {
  const { rounds, runs } = LOOP_PLAN[latencyMs];
  const rows: LoopRow[] = [];
  for (const isolation of ISOLATIONS) {
    progress(`models: ${LOOP_STEPS}-step tool loop, model answering ${latencyMs === 0 ? "at once" : `after ${latencyMs} ms`}, ${isolation} vs generateText (${rounds} rounds)…`);
    const k = runs[isolation];
    const clock = performance.now();
    // Untimed: warms this thread's code (and the file cache, for the children) on both sides.
    await colonyLoop(colony, isolation, latencyMs);
    await baselineLoop(latencyMs);
    const [ours, theirs, starts, raw]: [number[], number[], number[], number[]] = [[], [], [], []];
    for (let round = 0; round < rounds; round++) {
      const sides = [
        async () => {
          let span = 0;
          let start = 0;
          for (let i = 0; i < k; i++) {
            const run = await colonyLoop(colony, isolation, latencyMs);
            span += run.spanMs;
            start += run.startMs;
          }
          ours.push(span / (k * LOOP_STEPS));
          starts.push(start / k);
        },
        async () => {
          let span = 0;
          for (let i = 0; i < k; i++) span += await baselineLoop(latencyMs);
          theirs.push(span / (k * LOOP_STEPS));
        },
      ];
      for (const side of round % 2 === 0 ? sides : sides.reverse()) await side();
      if (isolation !== "inline") raw.push(await rawStarts(isolation, 1));
    }
    const row: LoopRow = {
      isolation,
      colony: spreadOf(ours),
      baseline: spreadOf(theirs),
      ratio: spreadOf(ours.map((o, i) => o / theirs[i]!)),
      overheadUs: spreadOf(ours.map((o, i) => (o - theirs[i]!) * 1000)),
      startMs: spreadOf(starts),
      ...(isolation !== "inline" && { rawStartMs: spreadOf(raw) }),
    };
    rows.push(row);
    progress(
      `  per step: colony ${row.colony.median.toFixed(3)} ms, generateText ${row.baseline.median.toFixed(3)} ms (${(row.colony.median / row.baseline.median).toFixed(3)}×); spawn → first call ${row.startMs.median.toFixed(1)} ms${row.rawStartMs ? `, raw start ${row.rawStartMs.median.toFixed(1)} ms` : ""} (${((performance.now() - clock) / 1000).toFixed(1)} s)`,
    );
  }
  return { latencyMs, steps: LOOP_STEPS, rounds, runs, rows };
}

/** The pids of this process's child processes (Linux); undefined where /proc is not there. */
function childPids(): string[] | undefined {
  try {
    return readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
  } catch {
    return undefined;
  }
}

/** Children this process had before the section began (a shell's process substitution, say): not counted. */
let preexisting = new Set<string>();

/**
 * This process's child processes started since the section began (Linux): how many, the sum of
 * their VmRSS and of their RssAnon (the anonymous part, without the pages of files such as the
 * node binary, which they share), bytes; undefined where /proc is not there.
 */
function childrenMemory(): { count: number; rss: number; anon: number } | undefined {
  const pids = childPids()?.filter((pid) => !preexisting.has(pid));
  if (pids === undefined) return undefined;
  const sum = { count: 0, rss: 0, anon: 0 };
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      // An exited child not yet reaped (a zombie) holds no memory.
      if (/^State:\s+Z/m.test(status)) continue;
      sum.count++;
      sum.rss += Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
      sum.anon += Number(/RssAnon:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    } catch {
      // It exited between the listing and the read.
    }
  }
  return sum;
}

/** Children's peaks, each over the samples: how many ran at once, their summed VmRSS and RssAnon, and VmRSS plus this process's RSS, bytes. */
export interface ChildrenPeak {
  count: number;
  rss: number;
  anon: number;
  total: number;
}

/** Samples this process's RSS (and with `children`, its children's) until stopped; peaks. */
function sampleMemory(children: boolean) {
  let rss = 0;
  let kids: ChildrenPeak | undefined;
  let tick = 0;
  const sample = () => {
    const own = process.memoryUsage.rss();
    rss = Math.max(rss, own);
    if (children && tick++ % 4 === 0) {
      const sum = childrenMemory();
      if (sum !== undefined) kids = peak(kids, { ...sum, total: own + sum.rss });
    }
  };
  sample();
  const timer = setInterval(sample, SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { rss, children: kids };
    },
  };
}

function peak(a: ChildrenPeak | undefined, b: ChildrenPeak | undefined): ChildrenPeak | undefined {
  if (!a || !b) return a ?? b;
  return { count: Math.max(a.count, b.count), rss: Math.max(a.rss, b.rss), anon: Math.max(a.anon, b.anon), total: Math.max(a.total, b.total) };
}

interface FanInput {
  isolation: Isolation;
  n: number;
}

/** Spawns `n` one-reply model agents at once and returns their results. */
const fanOutParent: SubAgent<FanInput, string[]> = {
  name: "fan-out",
  async run(ctx) {
    const handles = await Promise.all(Array.from({ length: ctx.input.n }, () => ctx.spawn<string>(ref(`once${FAN_LATENCY_MS}`), PROMPT, { isolation: ctx.input.isolation })));
    return Promise.all(handles.map((handle) => handle.result));
  },
};

/** Waits until this process has no child processes left running (at most 10 s, said if longer than 1 s), and lets exited threads go. */
async function settle(): Promise<void> {
  let waited = 0;
  for (; waited < 10_000 && (childrenMemory()?.count ?? 0) > 0; waited += 50) await sleep(50);
  if (waited > 1000) progress(`  (waited ${(waited / 1000).toFixed(1)} s for child processes to exit; ${childrenMemory()?.count ?? 0} still running)`);
  await sleep(200);
}

async function oneAgent(colony: Colony): Promise<number> {
  const started = now();
  const handle = await colony.spawn<string>(ref(`once${FAN_LATENCY_MS}`), PROMPT, { isolation: "inline" });
  stampOf(await handle.result, 1);
  return now() - started;
}

/** The parent's spawn → its result, with the spread of the children's starts and the memory sampled meanwhile. */
async function fanOut(colony: Colony, isolation: Isolation) {
  await settle();
  const before = process.memoryUsage.rss();
  const sampler = sampleMemory(isolation === "process");
  const started = now();
  const handle = await colony.spawn(fanOutParent, { isolation, n: FAN_OUT }, { isolation: "inline" });
  const results = await handle.result;
  const wallMs = now() - started;
  const memory = sampler.stop();
  const lastFirstCallMs = Math.max(...results.map((text) => stampOf(text, 1).first)) - started;
  return { wallMs, lastFirstCallMs, before, memory };
}

async function rawFanOut(isolation: "thread" | "process") {
  await settle();
  const sampler = sampleMemory(isolation === "process");
  const ms = await rawStarts(isolation, FAN_OUT);
  return { ms, memory: sampler.stop() };
}

async function fanOutBench(colony: Colony): Promise<FanOutResults> {
  progress(`models: one ${FAN_LATENCY_MS} ms model agent alone, inline (${ONE_AGENT_RUNS} runs)…`);
  await oneAgent(colony);
  const alone: number[] = [];
  for (let i = 0; i < ONE_AGENT_RUNS; i++) alone.push(await oneAgent(colony));
  const oneAgentMs = spreadOf(alone);
  const rows: FanOutRow[] = [];
  const roundsRun = {} as Record<Isolation, number>;
  // Processes before threads: 100 threads leave this process's RSS high for a while after they end.
  for (const isolation of ["inline", "process", "thread"] as const) {
    progress(`models: ${FAN_OUT} model agents fanned out from one parent, ${isolation}${isolation === "inline" ? "" : ` vs ${FAN_OUT} raw ${isolation === "thread" ? "new Worker" : "fork"}`} (up to ${FAN_ROUNDS[isolation]} rounds, as many as fit in ${FAN_BUDGET_MS / 1000} s)…`);
    const clock = performance.now();
    // Untimed, inline only: warms this thread's code; a thread or process child is cold every time.
    if (isolation === "inline") await fanOut(colony, isolation);
    const ours: Awaited<ReturnType<typeof fanOut>>[] = [];
    const raws: Awaited<ReturnType<typeof rawFanOut>>[] = [];
    const afford = (rounds: number) => rounds === 0 || ((performance.now() - clock) * (rounds + 1)) / rounds <= FAN_BUDGET_MS;
    for (let round = 0; round < FAN_ROUNDS[isolation] && afford(round); round++) {
      const sides = [async () => void ours.push(await fanOut(colony, isolation)), async () => void (isolation !== "inline" && raws.push(await rawFanOut(isolation)))];
      for (const side of round % 2 === 0 ? sides : sides.reverse()) await side();
    }
    roundsRun[isolation] = ours.length;
    const wallMs = spreadOf(ours.map((r) => r.wallMs));
    const floor = (raw: number) => (isolation === "inline" ? oneAgentMs.median : raw + oneAgentMs.median);
    const row: FanOutRow = {
      isolation,
      wallMs,
      lastFirstCallMs: spreadOf(ours.map((r) => r.lastFirstCallMs)),
      ...(isolation !== "inline" && { rawMs: spreadOf(raws.map((r) => r.ms)) }),
      ratio: wallMs.median / floor(isolation === "inline" ? 0 : median(raws.map((r) => r.ms))),
      pairedRatio: spreadOf(ours.map((r, i) => r.wallMs / floor(raws[i]?.ms ?? 0))),
      rssBefore: Math.min(...ours.map((r) => r.before)),
      rssPeak: Math.max(...ours.map((r) => r.memory.rss)),
      ...(isolation === "process" && { children: ours.map((r) => r.memory.children).reduce(peak) }),
      ...(isolation !== "inline" && { rawRssPeak: Math.max(...raws.map((r) => r.memory.rss)) }),
      ...(isolation === "process" && { rawChildren: raws.map((r) => r.memory.children).reduce(peak) }),
    };
    rows.push(row);
    progress(
      `  wall ${wallMs.median.toFixed(0)} ms${row.rawMs ? `, raw starts ${row.rawMs.median.toFixed(0)} ms` : ""}, one agent ${oneAgentMs.median.toFixed(1)} ms: ${row.ratio.toFixed(2)}×; peak RSS ${mib(row.rssPeak)} MiB${row.children ? ` + children ${mib(row.children.rss)} MiB` : ""} (${ours.length} round(s), ${((performance.now() - clock) / 1000).toFixed(1)} s)`,
    );
  }
  await settle();
  rows.sort((a, b) => ISOLATIONS.indexOf(a.isolation) - ISOLATIONS.indexOf(b.isolation));
  return { agents: FAN_OUT, latencyMs: FAN_LATENCY_MS, rounds: roundsRun, budgetMs: FAN_BUDGET_MS, oneAgentMs, rows };
}

export async function modelsBench(): Promise<ModelResults> {
  preexisting = new Set(childPids());
  const colony = createColony({ backend: memoryBackend() });
  try {
    const loop = await loopBench(colony, 5);
    const instant = await loopBench(colony, 0);
    const fanOut = await fanOutBench(colony);
    return { ai: (createRequire(import.meta.url)("ai/package.json") as { version: string }).version, loop, instant, fanOut };
  } finally {
    await colony.close();
  }
}

// --- BENCHMARKS.md -------------------------------------------------------------------------

const mib = (bytes: number) => Math.round(bytes / 2 ** 20).toLocaleString("en-US");
const x = (n: number) => `${n.toFixed(2)}×`;
const ms = (n: number, digits = 1) => n.toFixed(digits);
const range = (s: Spread, f: (n: number) => string) => `${f(s.min)}–${f(s.max)}`;
const signed = (n: number) => `${n >= 0 ? "+" : "−"}${Math.abs(n).toFixed(0)}`;

function against(ratio: number, target: number): string {
  return `**${x(ratio)}** — ${ratio <= target ? "within" : "**over**"} ${target}×`;
}

function loopTable(l: LoopResults, withRatio: boolean): string {
  const lines = l.rows.map((row) => {
    const ratio = row.colony.median / row.baseline.median;
    const overhead = (row.colony.median - row.baseline.median) * 1000;
    const start = `${ms(row.startMs.median)} (${range(row.startMs, (n) => ms(n))})${row.rawStartMs ? ` / ${ms(row.rawStartMs.median)}` : ""}`;
    const cells = withRatio
      ? `${against(ratio, TARGETS.loop)} (paired ${x(row.ratio.median)}, rounds ${range(row.ratio, (n) => n.toFixed(2))})`
      : `**${signed(overhead)}** (paired ${signed(row.overheadUs.median)}, rounds ${range(row.overheadUs, signed)})`;
    return `| ${row.isolation} | ${ms(row.colony.median, 3)} (${range(row.colony, (n) => ms(n, 3))}) | ${ms(row.baseline.median, 3)} (${range(row.baseline, (n) => ms(n, 3))}) | ${cells} | ${start} |`;
  });
  const head = withRatio ? "Colony ÷ `generateText`" : "Colony − `generateText`, µs per turn";
  return `| isolation | Colony, ms per step (rounds) | \`generateText\`, ms per step (rounds) | ${head} | spawn → first model call, ms (rounds) / raw start, ms |
|---|---:|---:|---:|---:|
${lines.join("\n")}`;
}

export function renderModels(r: ModelResults): string {
  const f = r.fanOut;
  const fanLines = f.rows.map((row) => {
    const base = row.rawMs ? `${ms(row.rawMs.median, 0)} + ${ms(f.oneAgentMs.median)}` : `${ms(f.oneAgentMs.median)}`;
    const target = row.isolation === "inline" ? TARGETS.inline : TARGETS.isolated;
    const perSpawn = row.rawMs ? `${ms((row.wallMs.median - f.oneAgentMs.median) / f.agents, 2)} / ${ms(row.rawMs.median / f.agents, 2)}` : `${ms((row.wallMs.median - f.oneAgentMs.median) / f.agents, 3)}`;
    const rss = `${mib(row.rssBefore)} → ${mib(row.rssPeak)}${row.rawRssPeak !== undefined ? ` (raw → ${mib(row.rawRssPeak)})` : ""}`;
    const kids = (c: ChildrenPeak | undefined) => (c ? `${mib(c.rss)} / ${mib(c.anon)}, ${c.count} at once` : "?");
    const children = row.isolation === "process" ? `${kids(row.children)} (raw ${kids(row.rawChildren)}); with this process ${row.children ? mib(row.children.total) : "?"}` : "";
    return `| ${row.isolation} | ${ms(row.wallMs.median, 0)} (${range(row.wallMs, (n) => ms(n, 0))}) | ${ms(row.lastFirstCallMs.median, 0)} | ${base} | ${against(row.ratio, target)} (rounds ${range(row.pairedRatio, (n) => n.toFixed(2))}) | ${perSpawn} | ${rss} | ${children} |`;
  });
  const runs = (l: LoopResults) => `${l.rounds} rounds; per round, each side runs the loop ${l.runs.inline} time(s) inline, ${l.runs.thread} in a thread, ${l.runs.process} in a process, alternating which side goes first`;
  return `## 10. Model agents

A model agent (\`defineModelAgent\`) against the AI SDK alone (\`ai\` ${r.ai}), on memoryBackend, with
the SDK's mock model (\`MockLanguageModelV4\`, through \`scriptedModel\`) scripted in
\`bench/model-agents.ts\`: a module that registers the provider prefix \`bench:\`, so the process
that calls a model (the one that owns the agent, for every isolation) resolves a fresh one by name
for each agent. Both sides get the same instructions, prompt and tool (\`add_one\`, a zod input
schema, an \`execute\` that adds one; in \`bench/model-loop-agents.ts\`). A thread or process
agent sends each step to this process, which calls the model; the agent runs the tool call itself
and keeps the conversation. The scripted model notes
the wall-clock time (\`performance.timeOrigin + performance.now()\`, comparable across threads and
processes) at the start of its first call and returns it in its final reply, so both sides are timed
from the start of the first model call to the end — for Colony, the agent's result reaching the
parent that spawned it (\`colony.spawn\`) — and a thread's or process's start is left out, shown
in its own column: spawn → the first model call, beside a raw \`new Worker\` / \`fork\` of
\`bench/raw-child.mjs\` to its first message (one per round, as in section 4).

### 10.1 A 10-step tool loop, the model answering after ${r.loop.latencyMs} ms

${r.loop.steps - 1} replies each calling the tool, then a text reply: Colony runs one model step per turn
(\`generateText\` offering the tool and running none, the agent running the call and keeping the
messages between turns, a turn boundary, a \`model.call\` event and the usage counted), against one
\`generateText({ model, instructions, tools, messages, stopWhen: isStepCount(${r.loop.steps}) })\` doing the
same ${r.loop.steps} steps in this thread. Wall time per step = the span ÷ ${r.loop.steps} (model latency included);
${runs(r.loop)}; medians and the rounds' range. Target: Colony within ${TARGETS.loop}× per step.

${loopTable(r.loop, true)}

### 10.2 The same loop, the model answering at once

The same, with no model latency: what Colony adds per turn, in µs (Colony's time per step less
\`generateText\`'s, medians; "paired" the median of the rounds' differences). A thread's or process's
turn crosses to this process and back twice (the turn, then the model step), and its own code
(the host, the tool call) runs in a fresh V8 isolate that has not warmed up. ${runs(r.instant)}.

${loopTable(r.instant, false)}

### 10.3 ${f.agents} model agents fanned out from one parent

One inline parent agent spawns ${f.agents} model agents at once (\`ctx.spawn\` by module reference,
in the isolation of the row), each a single text reply after ${f.latencyMs} ms, and awaits every result
(the agents have no tools: their module, \`bench/model-agents.ts\`, imports no zod, and a host
loads no package at all; a module that imports zod adds some 40 to 60 ms to a cold host's start);
wall time from the parent's spawn to its result. The baseline: one such agent alone, inline,
spawn → result (${ms(f.oneAgentMs.median)} ms, runs ${range(f.oneAgentMs, (n) => ms(n))}); for thread and process, plus ${f.agents} raw
\`new Worker\` / \`fork\` of \`bench/raw-child.mjs\` started at once, to the last one's first message.
Targets: inline ${TARGETS.inline}×, thread and process ${TARGETS.isolated}× (ratio of medians; "rounds" per round, against
that round's raw start). Rounds: ${f.rounds.inline} inline, ${f.rounds.thread} thread, ${f.rounds.process} process, each side once per round, alternating
which goes first (up to ${FAN_ROUNDS.thread} for thread and process, as many as fit in ${f.budgetMs / 1000} s at the pace of the first: a
round of ${f.agents} threads or processes takes long on a small machine); the inline row after one untimed, the others
cold, as every thread or process child is. "Last first call" is the parent's spawn → the start
of the last child's first model call. Per spawn = (wall − one agent) ÷ ${f.agents}, against the raw start
÷ ${f.agents}. This process's RSS is sampled every ${SAMPLE_MS} ms (the lowest before a round → the highest
during one; the raw starts' peak beside it); a thread's memory is in it, a process's is not: the
children's VmRSS and RssAnon (the anonymous part, leaving out the file pages they share, such as
node's own) from \`/proc/<pid>/status\` are summed every ${SAMPLE_MS * 4} ms, in this process's thread (so the
reading costs the measured side and the raw one alike), with how many children ran at once. Rows
run inline, process, thread, in that order: after 100 threads this process's RSS stays high a
while, and would count against the process row.

| isolation | wall, ms (rounds) | last first call, ms | baseline: raw starts + one agent, ms | ratio | per spawn, ms: Colony / raw | this process's RSS, MiB | children's VmRSS / RssAnon peaks, MiB |
|---|---:|---:|---:|---:|---:|---:|---:|
${fanLines.join("\n")}
`;
}
