/** The machine description and the BENCHMARKS.md text. */
import os from "node:os";
import type { Result } from "./measure.ts";

export interface Comparison {
  ours: Result;
  raw: Result;
  /** raw ops/s ÷ our ops/s (medians): how many times longer our operation takes. */
  ratio: number;
  /** The median of the per-round ratios, each round's two runs being adjacent in time. */
  pairedRatio: number;
  /** The smallest and largest per-round ratio, rounds being interleaved pairs. */
  roundMin: number;
  roundMax: number;
}

export interface SubAgentResults {
  spawn: {
    inline: Result;
    inlineSqlite: Result;
    thread: Comparison;
    process: Comparison;
    /** Spawns per round, rounds and untimed warm-up spawns, per isolation. */
    plan: Record<"thread" | "process", { n: number; rounds: number; warmup: number }>;
  };
  /** Per turn: `turn` is a turn boundary alone, `get` a turn with a `board.get`; `turns` timed per round. */
  roundTrip: Record<"turn" | "get", { inline: Result & { turns: number }; thread: Comparison & { turns: number }; process: Comparison & { turns: number } }>;
}

export interface Results extends ReturnType<typeof machine> {
  writes: Comparison & { memory: Result };
  reads: Comparison & { view: Result };
  loop: (Result & { backend: "memory" | "sqlite"; agents: number })[];
  subagents: SubAgentResults;
  seconds: number;
}

export function machine(args: string[]) {
  const cpus = os.cpus();
  const extra = args.length > 0 ? ` ${args.join(" ")}` : "";
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()} (${os.platform()}/${os.arch()})`,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    date: new Date().toISOString(),
    command: process.env.npm_lifecycle_event === "bench" ? `npm run bench${extra && ` --${extra}`}` : `node bench/main.ts${extra}`,
  };
}

const ops = (r: Result) => (r.opsPerSec < 100 ? r.opsPerSec.toFixed(1) : Math.round(r.opsPerSec).toLocaleString("en-US"));
const us = (r: Result) => (1e6 / r.opsPerSec).toFixed(r.opsPerSec > 1e5 ? 3 : 1);
const x = (n: number) => `${n.toFixed(2)}×`;
const usWhole = (r: Result) => Math.round(1e6 / r.opsPerSec).toLocaleString("en-US");
const spread = (c: Comparison) => `${x(c.ratio)} (paired ${x(c.pairedRatio)}, rounds ${c.roundMin.toFixed(2)}–${c.roundMax.toFixed(2)})`;

export function render(r: Results): string {
  const target = r.writes.ratio <= 1.3 ? "within" : "**over**";
  const load = r.loadAverage[0]! > r.cores / 2 ? " (other work was running: expect noise)" : "";
  return `# Benchmarks

Written by \`bench/main.ts\`; do not edit by hand.

| | |
|---|---|
| Command | \`${r.command}\` |
| Date | ${r.date} |
| CPU | ${r.cpu}, ${r.cores} logical cores |
| Memory | ${r.memoryGiB} GiB |
| Node | ${r.node} |
| OS | ${r.os} |
| Load average at start | ${r.loadAverage.join(", ")}${load} |
| Bench time | ${r.seconds.toFixed(1)} s |

Each figure is the median of interleaved rounds after a warm-up; ours and the baseline run the
same number of operations per round, alternating which goes first. Ratio = baseline ops/s ÷ our
ops/s (medians), i.e. how many times longer our operation takes; "paired" is the median of the
per-round ratios and "rounds" their range, a measure of the machine's noise. SQLite files are
temp files in WAL mode with \`synchronous = NORMAL\` (the sqliteBackend default).

## 1. Board compare-and-set writes

\`board.write(key, value, { author, expectedVersion })\`, cycling over 100 keys, each value about
100 bytes of JSON. The baseline is plain \`node:sqlite\` on its own file with the same schema,
pragmas and SQL text as \`SqliteBoardStore.write\` (BEGIN IMMEDIATE; SELECT version, deleted;
UPDATE boards … RETURNING seq; the entries upsert; INSERT INTO log; SELECT created_at; COMMIT),
prepared statements, plus the \`JSON.stringify\` of the value. Target: within 1.3×.

| | writes/s | µs/write | ratio |
|---|---:|---:|---:|
| sqliteBackend \`board.write\` | ${ops(r.writes.ours)} | ${us(r.writes.ours)} | ${spread(r.writes)} — ${target} 1.3× |
| raw \`node:sqlite\` baseline | ${ops(r.writes.raw)} | ${us(r.writes.raw)} | 1.00× |
| memoryBackend \`board.write\` (no baseline) | ${ops(r.writes.memory)} | ${us(r.writes.memory)} | |

## 2. Board reads

\`board.get(key)\` (a fresh read from the store) against a raw prepared SELECT of the same row plus
\`JSON.parse\` of its value; \`board.view().read(key)\` reads the in-memory snapshot.

| | reads/s | µs/read | ratio |
|---|---:|---:|---:|
| sqliteBackend \`board.get\` | ${ops(r.reads.ours)} | ${us(r.reads.ours)} | ${spread(r.reads)} |
| raw \`node:sqlite\` SELECT + JSON.parse | ${ops(r.reads.raw)} | ${us(r.reads.raw)} | 1.00× |
| \`board.view().read\` (snapshot, no baseline) | ${ops(r.reads.view)} | ${us(r.reads.view)} | |

## 3. Loop overhead

Steps per second of \`colony.run\` with no-op agents (trigger always true, \`run\` does nothing),
so every step fires every agent and writes nothing; \`deadlockAfter\` is set out of reach and the
run stops by \`max_steps\`. On sqliteBackend each step's record is also written to the file.

| backend | agents | steps/s | µs/step | µs per agent fired |
|---|---:|---:|---:|---:|
${r.loop.map((l) => `| ${l.backend} | ${l.agents} | ${ops(l)} | ${us(l)} | ${(1e6 / l.opsPerSec / l.agents).toFixed(2)} |`).join("\n")}

${subAgents(r.subagents)}`;
}

function subAgents(s: SubAgentResults): string {
  const { spawn, roundTrip } = s;
  const plan = (p: { n: number; rounds: number; warmup: number }) => `${p.rounds} rounds of ${p.n} (${p.n * p.rounds} timed, ${p.warmup} warm-up)`;
  const trips = (which: "turn" | "get", label: string) => {
    const t = roundTrip[which];
    return `| inline ${label} | ${ops(t.inline)} | ${us(t.inline)} | | ${t.inline.turns} |
| thread ${label} | ${ops(t.thread.ours)} | ${us(t.thread.ours)} | ${spread(t.thread)} | ${t.thread.turns} |
| process ${label} | ${ops(t.process.ours)} | ${us(t.process.ours)} | ${spread(t.process)} | ${t.process.turns} |`;
  };
  return `## 4. Sub-agents

**Spawn latency**: \`await (await colony.spawn({ module, export: "noop" }, null, { isolation })).result\`
for a no-op agent (\`bench/agents.ts\`), one spawn after the other, on memoryBackend (the inline
row is also shown on sqliteBackend, where the registry's three writes per spawn go to the file).
The child loads the host, the message schemas and the agent module; the parent records the
spawn, its moves to running and to its end, and relays its events. Baselines (\`bench/raw-child.ts\`):
\`new Worker(file)\` whose script posts one message and exits, and \`child_process.fork(file)\`
(the same \`execArgv\`, environment allow-list, \`serialization: "advanced"\` and stdio as ours)
whose script sends one message and disconnects, both timed to that message; neither side waits
for the exit.
Thread: ${plan(spawn.plan.thread)}; process: ${plan(spawn.plan.process)}.

| | spawns/s | µs/spawn | ratio |
|---|---:|---:|---:|
| inline, memoryBackend | ${ops(spawn.inline)} | ${usWhole(spawn.inline)} | |
| inline, sqliteBackend | ${ops(spawn.inlineSqlite)} | ${usWhole(spawn.inlineSqlite)} | |
| thread | ${ops(spawn.thread.ours)} | ${usWhole(spawn.thread.ours)} | ${spread(spawn.thread)} |
| raw \`new Worker\` | ${ops(spawn.thread.raw)} | ${usWhole(spawn.thread.raw)} | 1.00× |
| process | ${ops(spawn.process.ours)} | ${usWhole(spawn.process.ours)} | ${spread(spawn.process)} |
| raw \`fork\` | ${ops(spawn.process.raw)} | ${usWhole(spawn.process.raw)} | 1.00× |

**Warm message round trip**: a \`turn\`-based agent (\`pinger\` in \`bench/agents.ts\`) on
memoryBackend whose every turn ends at a turn boundary — one request to the parent's runtime
and its reply, which also moves the agent waiting → running in the registry and relays a turn
event and two state events — and, in the second group, first reads a key with
\`ctx.board.get("k")\` (a second request and reply). The child times itself after as many
warm-up turns as it times, so the spawn is left out; each round is a fresh child. Baseline: a
ping-pong of a small object over \`postMessage\` on a worker (or \`child.send\` on a forked
process, advanced serialization) started once, timed in the parent; it is one round trip per
operation in both groups, measured in each group's own rounds (the table shows the first
group's).

| | turns/s | µs/turn | ratio to one raw round trip | turns per round |
|---|---:|---:|---:|---:|
${trips("turn", "turn boundary")}
${trips("get", "turn + `board.get`")}
| raw \`postMessage\` ping-pong, thread (in the turn-boundary rounds) | ${ops(roundTrip.turn.thread.raw)} | ${us(roundTrip.turn.thread.raw)} | 1.00× | |
| raw \`send\` ping-pong, process (in the turn-boundary rounds) | ${ops(roundTrip.turn.process.raw)} | ${us(roundTrip.turn.process.raw)} | 1.00× | |
`;
}
