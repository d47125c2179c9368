/** The machine description and the BENCHMARKS.md text. */
import os from "node:os";
import { IO_WAIT_MS } from "./fixtures/io-agents.ts";
import type { Retention } from "../src/index.ts";
import { median, type Comparison, type Result } from "./measure.ts";

export interface SubAgentResults {
  spawn: {
    inline: Result;
    inlineSqlite: Result;
    thread: Comparison;
    process: Comparison;
    /** Into a warm host of `createColony({ pool })`, the pool refilled between spawns. */
    threadWarm: Result;
    processWarm: Result;
    /** Spawns per round, rounds and untimed warm-up spawns, per isolation. */
    plan: Record<"thread" | "process", { n: number; rounds: number; warmup: number }>;
  };
  /** Per turn: `turn` is a turn boundary alone, `get` a turn with a `board.get`; `turns` timed per round. */
  roundTrip: Record<"turn" | "get", { inline: Result & { turns: number }; thread: Comparison & { turns: number }; process: Comparison & { turns: number } }>;
}

export interface TaskBoardResults {
  /** Tasks submitted and drained per round, the same for every claimer count and both sides. */
  tasksPerRound: number;
  rounds: number;
  leaseMs: number;
  /** Per claimer count: the whole cycle (M ÷ (submit phase + drain phase)), and each phase alone. */
  rows: (Comparison & { claimers: number; submit: Comparison; drain: Comparison })[];
}

export interface WorkerExit {
  worker: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** SIGTERM did not end it in time; it was killed. */
  timedOut: boolean;
}

export interface WorkersResults {
  /** The task kind, named after its agent: `noop` does nothing, `io` waits `IO_WAIT_MS`. */
  kind: string;
  /** `--concurrency` of every worker. */
  concurrency: number;
  /** Tasks per submit call: 1 is `tasks.submit`, more `tasks.submitAll`. */
  batch: number;
  rounds: number;
  warmup: number;
  /** Per number of worker processes: tasks/s from the first submit to the last task's end. */
  rows: (Result & {
    processes: number;
    tasksPerRound: number;
    /** tasks/s ÷ that of one process. */
    vsOne: number;
    /** The submit loop alone. */
    submit: Result;
    /** Spawn to all online in the registry. */
    startupSeconds: number;
    /** SIGTERM to every exit. */
    stopSeconds: number;
    claimedPerWorker: number[];
    exits: WorkerExit[];
    /** Events other than claims and successes, bad exits. */
    problems: string[];
    /** What the clients asked of the server over one more round of M after the timed rounds, untimed (NATS only). */
    requests?: TaskRequests;
  })[];
  /** Why the benchmark stopped short; rows holds what was measured before. */
  error?: string;
}

/**
 * What the clients of a private nats-server asked of it over a span (see the text of section
 * 7.2): one more round of the same size after the timed rounds, untimed, because the wiretap's
 * own work would slow the rounds it counts; the timed rounds run without it. Totals over the
 * span, not per task.
 */
export interface TaskRequests {
  /** Tasks submitted in the span. */
  tasks: number;
  seconds: number;
  /** `$JS.API` requests the wiretap heard, by kind (`STREAM.INFO`, `STREAM.MSG.GET`, `CONSUMER.MSG.NEXT`, …), most first. */
  api: Record<string, number>;
  /** The server's own API counters (`/jsz` `api.total`, `api.errors`) over the span. */
  jsz: { total: number; errors: number };
  /** Publishes the wiretap heard on each stream's subjects, by stream (`tasks`, `snapshots`, `runs`, `agents`, `leases`, or its name). */
  published: Record<string, number>;
  /** Messages each stream stored over the span: its `last_seq` at the end less at the start. */
  stored: Record<string, number>;
  /** Publishes the stream answered with an error, by stream and then by the error's description (numbers as N). */
  refused: Record<string, Record<string, number>>;
  /** Publishes the stream answered as duplicates, by stream. */
  duplicates: Record<string, number>;
  /** Publishes heard whose answer the wiretap had not heard when it stopped. */
  unanswered: number;
  /** Acks (`$JS.ACK.>`); Colony's consumers ack nothing, so 0 is expected. */
  acks: number;
  /** Streams made during the span, whose publishes the wiretap did not hear. */
  unheard?: string[];
}

/** A count's figures per task; `requests` is API requests + publishes heard (stored or not). */
export function requestsPerTask(r: TaskRequests) {
  const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  const per = (n: number) => n / r.tasks;
  const [api, published, stored] = [sum(r.api), sum(r.published), sum(r.stored)];
  const refused = Object.values(r.refused).reduce((a, reasons) => a + sum(reasons), 0);
  return {
    api: per(api),
    gets: per(r.api["STREAM.MSG.GET"] ?? 0),
    pulls: per(r.api["CONSUMER.MSG.NEXT"] ?? 0),
    jszTotal: per(r.jsz.total),
    jszErrors: per(r.jsz.errors),
    published: per(published),
    stored: per(stored),
    refused: per(refused),
    duplicates: per(sum(r.duplicates)),
    requests: per(api + published),
  };
}

export interface NatsResults {
  /** `nats-server --version`, without the name. */
  server?: string;
  /** Why the NATS sections did not run. */
  skipped?: string;
  /** natsBackend `board.write` (CAS) against `kv.update` on a plain KV bucket. */
  writes?: Comparison;
  /** Submit → a worker in this process → the recorded result, against a core request/reply; `tasks` submitted in all, warm-up included. */
  /** `floor`: a request and an answer each stored and heard by a consumer (`RawStoredPingPong`), in the same rounds. */
  dispatch?: Comparison & { tasks: number; requests?: TaskRequests; floor?: Result };
  /** No-op tasks. */
  workers?: WorkersResults;
  /** Tasks that wait `IO_WAIT_MS`, on a server of their own. */
  workersIo?: WorkersResults;
}

/** BullMQ worker processes on one workload: jobs/s from the first add to the last job's `finishedOn`. */
export interface BullmqRow extends Result {
  processes: number;
  tasksPerRound: number;
  /** The add loop alone. */
  submit: Result;
  /** Spawn to every worker's "ready". */
  startupSeconds: number;
  /** SIGTERM to exit. */
  stopSeconds: number;
  /** Jobs the workers say they processed, warm-ups included; undefined if one did not say. */
  processed: number | undefined;
  perWorker: (number | undefined)[];
  problems: string[];
}

export interface BullmqResults {
  /** The bullmq package's version. */
  bullmq: string;
  /** Redis's `redis_version`. */
  redis?: string;
  /** Why the rows did not run (Redis not reachable). */
  skipped?: string;
  /** Per workload (as Colony's on NATS: concurrency, batches, rounds), 1 worker process, then 4. */
  rows: Record<"noop" | "io", BullmqRow[]>;
  /** Add → a Worker in this process → finished, against a Redis pub/sub request/reply. */
  dispatch?: Comparison;
  /** Why the rows stopped short. */
  error?: string;
}

/** A JetStream stream's state as the server reports it. */
export interface StreamState {
  messages: number;
  bytes: number;
  firstSeq: number;
  lastSeq: number;
}

/** One task board of the history benchmark: how it was built, and a fresh client opening it. */
export interface HistoryRow {
  /** Tasks the board has seen, every one finished. */
  tasks: number;
  /** Building it: submits, claims, completes and the final `sweep()`. */
  buildSeconds: number;
  /** Medians over the runs: `createColony` to the end of the first `list()`, and the heap held after it. */
  ms: number;
  heapBytes: number;
  /** Every run's, in run order. */
  msRuns: number[];
  heapRuns: number[];
  /** Tasks that first `list()` returned. */
  listed: number;
  /** What the SQLite file keeps of the board after building. */
  sqlite?: { taskRows: number; eventRows: number; fileBytes: number; pages: number; freePages: number };
  /** The board's log stream and snapshot stream after building, and the log seq the newest snapshot reflects (none yet: undefined). */
  nats?: { log: StreamState; snapshots: StreamState; snapshotSeq?: number };
}

export interface HistoryBackendResults {
  /** `nats-server --version`, without the name (NATS only). */
  server?: string;
  /** Why it did not run. */
  skipped?: string;
  /** One per board, by tasks seen, fewest first. */
  rows: HistoryRow[];
  /** Why it stopped short. */
  error?: string;
}

export interface HistoryResults {
  /** The retention both boards are built and opened under (the rest `DEFAULT_RETENTION`). */
  retention: Partial<Retention>;
  /** Tasks per `submitAll` and per `claimMany` while building. */
  batch: number;
  /** Fresh processes per board, after one untimed each. */
  runs: number;
  sqlite: HistoryBackendResults;
  nats: HistoryBackendResults;
}

/** Sections left out (`--only`) are undefined. */
export interface Results extends ReturnType<typeof machine> {
  writes?: Comparison & { memory: Result };
  reads?: Comparison & { view: Result };
  loop?: (Result & { backend: "memory" | "sqlite"; agents: number })[];
  subagents?: SubAgentResults;
  tasks?: TaskBoardResults;
  /** No-op tasks on SQLite. */
  workers?: WorkersResults;
  /** Tasks that wait `IO_WAIT_MS` on SQLite. */
  workersIo?: WorkersResults;
  nats?: NatsResults;
  bullmq?: BullmqResults;
  history?: HistoryResults;
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

${[r.writes && r.reads ? boardSections(r.writes, r.reads) : "", r.loop ? loopSection(r.loop) : "", r.subagents ? subAgents(r.subagents) : "", r.tasks ? taskBoard(r.tasks) : "", r.workers || r.workersIo ? workersSection(r.workers, r.workersIo, r.cores) : "", r.nats ? natsSection(r.nats, r.cores) : "", r.bullmq ? bullmqSection(r.bullmq, r.nats) : "", r.history ? historySection(r.history) : ""]
  .filter(Boolean)
  .join("\n")}`;
}

function boardSections(writes: NonNullable<Results["writes"]>, reads: NonNullable<Results["reads"]>): string {
  const target = writes.ratio <= 1.3 ? "within" : "**over**";
  return `## 1. Board compare-and-set writes

\`board.write(key, value, { author, expectedVersion })\`, cycling over 100 keys, each value about
100 bytes of JSON. The baseline is plain \`node:sqlite\` on its own file with the same schema,
pragmas and SQL text as \`SqliteBoardStore.write\` (BEGIN IMMEDIATE; SELECT version, deleted;
UPDATE boards … RETURNING seq; the entries upsert; INSERT INTO log; SELECT created_at; COMMIT),
prepared statements, plus the \`JSON.stringify\` of the value. Target: within 1.3×.

| | writes/s | µs/write | ratio |
|---|---:|---:|---:|
| sqliteBackend \`board.write\` | ${ops(writes.ours)} | ${us(writes.ours)} | ${spread(writes)} — ${target} 1.3× |
| raw \`node:sqlite\` baseline | ${ops(writes.raw)} | ${us(writes.raw)} | 1.00× |
| memoryBackend \`board.write\` (no baseline) | ${ops(writes.memory)} | ${us(writes.memory)} | |

## 2. Board reads

\`board.get(key)\` (a fresh read from the store) against a raw prepared SELECT of the same row plus
\`JSON.parse\` of its value; \`board.view().read(key)\` reads the in-memory snapshot.

| | reads/s | µs/read | ratio |
|---|---:|---:|---:|
| sqliteBackend \`board.get\` | ${ops(reads.ours)} | ${us(reads.ours)} | ${spread(reads)} |
| raw \`node:sqlite\` SELECT + JSON.parse | ${ops(reads.raw)} | ${us(reads.raw)} | 1.00× |
| \`board.view().read\` (snapshot, no baseline) | ${ops(reads.view)} | ${us(reads.view)} | |
`;
}

function loopSection(loop: NonNullable<Results["loop"]>): string {
  return `## 3. Loop overhead

Steps per second of \`colony.run\` with no-op agents (trigger always true, \`run\` does nothing),
so every step fires every agent and writes nothing; \`deadlockAfter\` is set out of reach and the
run stops by \`max_steps\`. On sqliteBackend each step's record is also written to the file.

| backend | agents | steps/s | µs/step | µs per agent fired |
|---|---:|---:|---:|---:|
${loop.map((l) => `| ${l.backend} | ${l.agents} | ${ops(l)} | ${us(l)} | ${(1e6 / l.opsPerSec / l.agents).toFixed(2)} |`).join("\n")}
`;
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
spawn, its moves to running and to its end, and relays its events. Baselines (\`bench/raw-child.mjs\`):
\`new Worker(file)\` whose script posts one message and exits, and \`child_process.fork(file)\`
(the same \`execArgv\`, environment allow-list, \`serialization: "advanced"\` and stdio as ours)
whose script sends one message and disconnects, both timed to that message; neither side waits
for the exit. The warm rows spawn into a host of \`createColony({ pool: { thread: 1, process: 1 } })\`
started beforehand (the wait for the pool to refill between spawns is not timed); their ratio is
to the same raw start.
Thread: ${plan(spawn.plan.thread)}; process: ${plan(spawn.plan.process)}.

| | spawns/s | µs/spawn | ratio |
|---|---:|---:|---:|
| inline, memoryBackend | ${ops(spawn.inline)} | ${usWhole(spawn.inline)} | |
| inline, sqliteBackend | ${ops(spawn.inlineSqlite)} | ${usWhole(spawn.inlineSqlite)} | |
| thread | ${ops(spawn.thread.ours)} | ${usWhole(spawn.thread.ours)} | ${spread(spawn.thread)} |
| raw \`new Worker\` | ${ops(spawn.thread.raw)} | ${usWhole(spawn.thread.raw)} | 1.00× |
| process | ${ops(spawn.process.ours)} | ${usWhole(spawn.process.ours)} | ${spread(spawn.process)} |
| raw \`fork\` | ${ops(spawn.process.raw)} | ${usWhole(spawn.process.raw)} | 1.00× |
| thread, warm pool | ${ops(spawn.threadWarm)} | ${usWhole(spawn.threadWarm)} | ${(spawn.thread.raw.opsPerSec / spawn.threadWarm.opsPerSec).toFixed(2)}× |
| process, warm pool | ${ops(spawn.processWarm)} | ${usWhole(spawn.processWarm)} | ${(spawn.process.raw.opsPerSec / spawn.processWarm.opsPerSec).toFixed(2)}× |

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

function taskBoard(t: TaskBoardResults): string {
  const all = (side: "ours" | "raw") => t.rows.flatMap((row) => row.submit[side].rounds);
  const submitOurs: Result = { opsPerSec: median(all("ours")), rounds: all("ours") };
  const submitRaw: Result = { opsPerSec: median(all("raw")), rounds: all("raw") };
  return `## 5. Task board: submit → claim → complete

No-op tasks through \`const tasks = await colony.tasks()\` on sqliteBackend. Submits first, then
the drain: each round submits ${t.tasksPerRound.toLocaleString("en-US")} tasks with \`tasks.submit({ kind: "noop", input: { i } })\`, one
after the other, then starts the claimers — async loops in this one process sharing the one
colony — each doing \`tasks.claim({ worker, capabilities: ["noop"], leaseMs: ${t.leaseMs} })\`, an
awaited no-op, and \`tasks.complete(id, null, { generation })\` until its claim finds the queue
empty. No worker is registered, so a submit reserves its task for nobody. Tasks/s is the round's
tasks ÷ (submit phase + drain phase); the drain columns time the claimers alone. The baseline
(\`bench/raw-tasks.ts\`) runs on its own file the statements \`SqliteTaskStore\` runs for each
operation — the same schema (migration 3) and indexes, pragmas and SQL text, in the same order,
one BEGIN IMMEDIATE transaction per operation — and nothing of the engine (no validation,
routing or retry rules, no copies handed back); it parses a row only where it needs a field of
it and stringifies each new version of a task once. Its claimers are the same async loops around
its synchronous calls. ${t.rounds} rounds per claimer count, ours and raw alternating which goes first.

| claimers | ours tasks/s | raw tasks/s | ratio | ours claim → complete/s | raw claim → complete/s | drain ratio |
|---:|---:|---:|---:|---:|---:|---:|
${t.rows.map((row) => `| ${row.claimers} | ${ops(row.ours)} | ${ops(row.raw)} | ${spread(row)} | ${ops(row.drain.ours)} | ${ops(row.drain.raw)} | ${x(row.drain.ratio)} |`).join("\n")}

Submits alone, over every round above: ours ${ops(submitOurs)}/s (${us(submitOurs)} µs), raw ${ops(submitRaw)}/s (${us(submitRaw)} µs), ${x(submitRaw.opsPerSec / submitOurs.opsPerSec)}.
`;
}

function workersSection(noop: WorkersResults | undefined, io: WorkersResults | undefined, cores: number): string {
  const parts = [
    `## 6. Workers end to end

\`colony worker --db FILE --capability KIND --concurrency C --agents MODULE --json\` processes, 1,
2 and 4 of them, on a fresh file per row; the agent runs inline, as a sub-agent recorded in the
registry. This process waits until \`tasks.workers()\` shows them all online, submits an untimed
warm-up, then rounds of M tasks, each round timed from its first submit to the end of its last
task (that task's event timestamp); M is sized once, from the one-process warm-up, for rounds of
a few seconds at one process, and kept for 2 and 4. The end is polled on a read-only connection
of its own (tasks still pending or claimed), so that watching takes no write lock. Then SIGTERM:
every worker drains and must exit 0. The workers, their change polling and this submitter share
the machine's ${cores} cores and the file's one write lock; each task is a claim, a sub-agent spawn and a
complete, each its own transaction. "vs 1 process" is tasks/s ÷ that of one process; "submits
alone/s" times this process's submit loop alone, and where it is near tasks/s the submitter, not
the workers, sets the pace.
`,
  ];
  if (noop) {
    parts.push(`### 6.1 No-op tasks

\`--capability noop --concurrency ${noop.concurrency} --agents bench/fixtures/noop-agents.ts\`: the agent does nothing, so what is
measured is the task board, the worker and the sub-agent around the work. ${submitting(noop)}

${workersTable(noop)}${verdict(noop)}`);
  }
  if (io) parts.push(`### 6.2 I/O-bound tasks: ${IO_WAIT_MS} ms each

${ioText(io, "--capability io", "6.1")}

${workersTable(io)}${verdict(io)}`);
  return parts.join("\n");
}

/** How the rounds were submitted. */
function submitting(w: WorkersResults): string {
  const how = w.batch === 1 ? "with `tasks.submit`, one at a time" : `with \`tasks.submitAll\` in batches of ${w.batch} (a transaction each)`;
  return `An untimed warm-up of ${w.warmup} tasks, then ${w.rounds} rounds of M submitted ${how}.`;
}

/** What an I/O-bound row set measures; `flags` its worker flags that differ from the no-op rows. */
function ioText(w: WorkersResults, flags: string, noopSection: string): string {
  const ceiling = (w.concurrency * 1000) / IO_WAIT_MS;
  const batches =
    w.batch === 1
      ? ""
      : `
Batches, because one submit at a time paces the rounds itself, well below ${(4 * ceiling).toLocaleString("en-US")}/s (see the
no-op rows' "submits alone/s" in ${noopSection}); every row here is submitted alike.`;
  return `\`${flags} --concurrency ${w.concurrency} --agents bench/fixtures/io-agents.ts\`: the agent awaits
\`setTimeout(${IO_WAIT_MS}, undefined, { signal: ctx.signal })\` from \`node:timers/promises\`, as an agent awaits a
model's reply: it holds its slot, not the CPU. One process can then run at most ${w.concurrency} × 1000 ÷ ${IO_WAIT_MS} =
${ceiling.toLocaleString("en-US")} tasks/s, 4 processes ${(4 * ceiling).toLocaleString("en-US")}/s; what keeps them below that is what each task costs besides
its wait (the claim, the spawn, the complete, on CPUs they share).
${submitting(w)}${batches}
Target (the swarm scales out): 4 processes ≥ 3× the tasks/s of 1.`;
}

/** The figure the swarm-scales-out target names, against that target. */
function verdict(w: WorkersResults): string {
  const one = w.rows.find((row) => row.processes === 1);
  const four = w.rows.find((row) => row.processes === 4);
  if (!one || !four) return "";
  const ratio = four.opsPerSec / one.opsPerSec;
  if (w.kind === "io") {
    const ceiling = (w.concurrency * 1000) / IO_WAIT_MS;
    const met = ratio >= 3 ? "reaches" : "**short of**";
    const used = (row: WorkersResults["rows"][number]) => `${Math.round((100 * row.opsPerSec) / (row.processes * ceiling))}%`;
    return `\n4 processes ÷ 1: **${x(ratio)}** — ${met} the 3× target. Of the slots' ceiling (${ceiling.toLocaleString("en-US")}/s per
process), 1 process ran at ${used(one)}, 4 at ${used(four)}.\n`;
  }
  return `\n4 processes ÷ 1: **${x(ratio)}** — ${ratio >= 1 ? "at least as fast as 1, the target" : "**slower than** 1; the target is at least as fast"}.\n`;
}

/** The rows of a workers end-to-end run, then why it stopped short and what the workers reported, if anything. */
function workersTable(w: WorkersResults): string {
  const seconds = (s: number) => s.toFixed(1);
  const rows = w.rows.map(
    (row) =>
      `| ${row.processes} | ${ops(row)} | ${(1000 / row.opsPerSec).toFixed(2)} | ${x(row.vsOne)} | ${ops(row.submit)} | ${row.tasksPerRound.toLocaleString("en-US")} | ${row.claimedPerWorker.map((n) => n.toLocaleString("en-US")).join(" / ")} | ${seconds(row.startupSeconds)} | ${seconds(row.stopSeconds)} |`,
  );
  const problems = w.rows.flatMap((row) => row.problems.map((p) => `- ${row.processes} process(es): \`${p.replaceAll("`", "'")}\``));
  return `${
    w.rows.length === 0
      ? ""
      : `| worker processes | tasks/s | ms per task | vs 1 process | submits alone/s | tasks per round | tasks claimed per worker | start-up s | SIGTERM to exit s |
|---:|---:|---:|---:|---:|---:|---|---:|---:|
${rows.join("\n")}
`
  }${w.error ? `\n**Stopped short**: ${w.error}\n` : ""}${problems.length > 0 ? `\nProblems the workers reported:\n\n${problems.join("\n")}\n` : ""}`;
}

const REQUESTS_TARGET = 6;
/** Requests per task at 4 processes over 1 beyond this is growth. */
const GROWTH_SLACK = 1.1;

/** The requests-per-task table, one row per count, and each row's requests by kind, stores by stream and refusals by reason. */
function requestsTable(first: string, rows: { label: string; r: TaskRequests }[]): string {
  const f = (n: number) => n.toFixed(2);
  const lines = rows.map(({ label, r }) => {
    const p = requestsPerTask(r);
    return `| ${label} | ${r.tasks.toLocaleString("en-US")} | ${f(p.api)} | ${f(p.gets)} | ${f(p.pulls)} | ${f(p.jszTotal)} (${f(p.jszErrors)}) | ${f(p.published)} | ${f(p.stored)} | ${f(p.refused)} | ${f(p.duplicates)} | **${f(p.requests)}** — ${p.requests <= REQUESTS_TARGET ? "within" : "**over**"} ${REQUESTS_TARGET} |`;
  });
  const detail = rows.map(({ label, r }) => {
    // Two decimals, or one significant digit for what is rarer than one in a hundred tasks.
    const small = (n: number) => (n >= 0.01 ? n.toFixed(2) : n.toPrecision(1));
    const each = (o: Record<string, number>) =>
      Object.entries(o)
        .map(([k, n]) => `${k} ${small(n / r.tasks)}`)
        .join(", ") || "none";
    const refusals = Object.entries(r.refused).flatMap(([stream, reasons]) => Object.entries(reasons).map(([reason, n]) => `${stream} "${reason}" ${small(n / r.tasks)}`));
    const notes = [
      r.unanswered > 0 ? `${r.unanswered} publishes in all whose answer the wiretap had not heard when it stopped` : "",
      r.acks > 0 ? `${f(r.acks / r.tasks)} acks` : "",
      r.unheard ? `streams made meanwhile, their publishes not heard: ${r.unheard.join(", ")}` : "",
    ].filter(Boolean);
    return `- ${label}: API requests ${each(r.api)}; stored ${each(r.stored)}; refused ${refusals.join(", ") || "none"}${notes.length > 0 ? `; ${notes.join("; ")}` : ""}`;
  });
  return `| ${first} | tasks counted | JetStream API requests | of which message gets | of which pulls | \`/jsz\` api.total (errors) | publishes | stored | refused | duplicates | requests |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${lines.join("\n")}

Per task, API requests by kind, messages stored by stream, and publishes refused by stream and reason:

${detail.join("\n")}
`;
}

/** The requests-per-task table of an end-to-end row set, and whether the figure grows from 1 to 4 processes. */
function workersRequests(w: WorkersResults): string {
  const rows = w.rows.filter((row) => row.requests).map((row) => ({ label: `${row.processes}`, r: row.requests!, processes: row.processes }));
  if (rows.length === 0) return "";
  const one = rows.find((row) => row.processes === 1);
  const most = rows[rows.length - 1]!;
  let growth = "";
  if (one && most !== one) {
    const [a, b] = [requestsPerTask(one.r).requests, requestsPerTask(most.r).requests];
    growth = `\nFrom 1 to ${most.processes} worker processes, requests per task go from ${a.toFixed(2)} to ${b.toFixed(2)} (${x(b / a)}): ${b <= a * GROWTH_SLACK ? `not growing (within ${Math.round((GROWTH_SLACK - 1) * 100)}%)` : "**growing**"}.\n`;
  }
  return `
Requests per task, counted as in section 7.2 over one more round of M after the timed rounds,
untimed (its tasks are among those claimed per worker above):

${requestsTable("worker processes", rows)}${growth}`;
}

function natsSection(n: NatsResults, cores: number): string {
  if (n.skipped !== undefined) {
    return `## 7. On NATS JetStream

**Skipped**: ${n.skipped}. Install nats-server (Debian: \`apt-get install nats-server\`) and run again.
`;
  }
  const parts: string[] = [
    `## 7. On NATS JetStream

The same kinds of work on \`natsBackend({ servers, prefix })\` (replicas 1), each part on a private
nats-server ${n.server ?? ""} of its own started for it (JetStream with a file store in a temp
directory, on loopback) and stopped after; ours and its baseline use that one server in the same
interleaved rounds. The baselines are the official clients (\`@nats-io/transport-node\`,
\`@nats-io/jetstream\`, \`@nats-io/kv\`) with nothing around them (\`bench/raw-nats.ts\`).
`,
  ];
  if (n.writes) {
    parts.push(`### 7.1 Board compare-and-set writes on NATS

\`board.write(key, value, { author, expectedVersion })\` cycling over the same 100 keys and values
as section 1; the board is a KV bucket that keeps every revision, its stream being the log. The baseline
is \`kv.update(key, JSON.stringify(value), revision)\` (\`kv.create\` for a key's first write) on a
plain KV bucket with history 1, each write expecting the revision the previous one returned.
The board keeps what it last knew of each key (the KV revision of its own last write of it, or
of the load that opened the board), so it sends the conditional update (\`kv.create\` for a new
key) straight away, one request as the baseline's, and reads the key only after a conflict.

| | writes/s | µs/write | ratio |
|---|---:|---:|---:|
| natsBackend \`board.write\` | ${ops(n.writes.ours)} | ${us(n.writes.ours)} | ${spread(n.writes)} — ${n.writes.ratio <= 1.3 ? "within" : "**over**"} 1.3× |
| raw \`kv.update\` | ${ops(n.writes.raw)} | ${us(n.writes.raw)} | 1.00× |
`);
  }
  if (n.dispatch) {
    parts.push(`### 7.2 Task dispatch round trip

One task at a time, \`tasks.submit({ kind: "noop", input: { i } })\` then \`tasks.wait(id)\` for its
recorded result, run by a \`TaskWorker\` in this process (\`colony.worker({ agents: { noop },
concurrency: 1 })\`, the no-op agent inline) on a colony of its own, so on a NATS connection of
its own, as a worker of the swarm is: the submit (which claims the task for the idle worker, a
push), the worker hearing of it from its feed, the sub-agent's spawn and end, the complete, and
the waiter seeing it on its feed. The
baseline is one core NATS request/reply: a subscriber in this process that answers each request
with its own bytes, the requester sending \`{ kind, input }\` as JSON and parsing the reply.
Every round trip leaves one more finished task on the board: ${n.dispatch.tasks.toLocaleString("en-US")} by the end, warm-up${n.dispatch.requests ? " and the counted batch below" : ""} included.

| | round trips/s | µs/round trip | ratio |
|---|---:|---:|---:|
| submit → worker → result | ${ops(n.dispatch.ours)} | ${usWhole(n.dispatch.ours)} | ${spread(n.dispatch)} |
| raw request/reply | ${ops(n.dispatch.raw)} | ${usWhole(n.dispatch.raw)} | 1.00× |${
    n.dispatch.floor
      ? `
| stored ping-pong (floor) | ${ops(n.dispatch.floor)} | ${usWhole(n.dispatch.floor)} | ${(n.dispatch.raw.opsPerSec / n.dispatch.floor.opsPerSec).toFixed(2)}× |

**The floor** is what any dispatch that stores both its task and its result must at least cost
on this server, in the same interleaved rounds: \`js.publish\` of the request on one stream,
heard by an ordered consumer on a second connection, which publishes the answer on a second
stream, heard by an ordered consumer on the first (\`RawStoredPingPong\` in \`bench/raw-nats.ts\`).
What Colony's round trip costs above it is its own work: deciding and folding the write sets,
the worker hearing of the push, the sub-agent's spawn and end, the registry write and the
waiter's routing, all in this one process with the submitter.`
      : ""
  }
${
  n.dispatch.requests
    ? `
**Requests per task.** Counted over one more batch of submit → worker → result round trips after
the timed rounds, as many as one timed round had (at least 150), untimed: a wiretap counts what the clients send
the server, and its own work (the server copies every message to it, its thread decodes them)
would slow the rounds it counts, so the timed rounds run without it. The wiretap is a core NATS
subscriber in a worker thread of this process (\`bench/nats-tap.ts\`), which gets a copy of every
message published on a subject it matches and answers none. On \`$JS.API.>\` it hears every
JetStream API request (stream infos, message gets, consumer creates, infos and deletes, purges,
and pulls, \`CONSUMER.MSG.NEXT\`); on the subjects of every stream on the server (the task stream,
its snapshot stream, and the KV buckets of the runs and agents registry and of the leases) every
publish, stored or not; and on \`_INBOX.>\` the stream's answer to each of those publishes, as the
publisher reads it: an ack, a duplicate (the same \`Nats-Msg-Id\` stored before) or an error, which
is a refused publish (a compare-and-set lost: the stream or the key had moved past the sequence
the publish expected). The server keeps no count of refused publishes (they are not API requests;
no \`/jsz\` or \`/varz\` counter holds them), hence the wiretap. The server's monitoring endpoint
\`/jsz\` gives the messages stored, each stream's \`last_seq\` at the end less at the start, and its
own API counters \`api.total\` and \`api.errors\`, shown for comparison: nats-server ${n.server ?? ""} leaves
out of \`api.total\` the requests a stream or a consumer answers itself (a message get that finds its
message, a pull), so it equals the wiretap's count less gets and pulls, but for the gets that
found nothing, which it counts (as errors too). **Requests** = API requests + publishes (stored,
refused or duplicate), per task submitted in the counted batch; the target is at most ${REQUESTS_TARGET}, not growing
with the number of workers. What one task costs does not depend
on the machine's speed, but what the clients lose to each other's races does (how often a write
set folds after another that changed a task it rests on, so that it is not applied and is made
again: more messages stored on the task log per task), and so do idle pulls and heartbeats spread
over the counted tasks: the figures vary somewhat from run to run and with the machine's load.

${requestsTable("", [{ label: "submit → worker → result", r: n.dispatch.requests }])}`
    : ""
}`);
  }
  if (n.workers) {
    const w = n.workers;
    parts.push(`### 7.3 Workers end to end on NATS

As section 6.1, with \`colony worker --nats URL --nats-prefix P --capability noop --concurrency ${w.concurrency}
--agents bench/fixtures/noop-agents.ts --json\` processes, a fresh prefix (so a fresh task board)
per row on the one server: an untimed warm-up of ${w.warmup} tasks, then ${w.rounds} rounds of M one-at-a-time
submits, each timed from its first submit to its last task's event. This process learns that
the tasks ended from \`tasks.watch\` (the board's events, folded from its stream), not from a
file. There is no baseline; the ratio is to one process. The workers are thin: the elected
coordinator (one of them) folds the task board from the stream and does the others' claims,
completions and heartbeats for them, asked over the bus, and wakes them when there is work
(src/runtime/tasks/served.ts); this submitter folds the board too. A write set is appended
unconditionally and applied as it is folded only if no task or worker it rests on moved since
its writer read it, so the coordinator and this submitter retry only races on the same task;
all of them and the server share the machine's ${cores} cores.

${workersTable(w)}${verdict(w)}${workersRequests(w)}`);
  }
  if (n.workersIo) {
    parts.push(`### 7.4 I/O-bound workers end to end on NATS: ${IO_WAIT_MS} ms tasks

As section 7.3, on a server of its own, with the agent of section 6.2:
${ioText(n.workersIo, "colony worker --nats URL --nats-prefix P --capability io", "7.3")}

${workersTable(n.workersIo)}${verdict(n.workersIo)}${workersRequests(n.workersIo)}`);
  }
  return parts.join("\n");
}

function bullmqSection(b: BullmqResults, nats: NatsResults | undefined): string {
  const [noop, io] = [b.rows.noop, b.rows.io];
  const concurrency = { noop: nats?.workers?.concurrency ?? 4, io: nats?.workersIo?.concurrency ?? 8 };
  const head = `## 8. Colony on NATS against BullMQ on Redis

Sections 7.3 and 7.4 side by side with the same workloads through BullMQ ${b.bullmq} worker
processes on the machine's Redis${b.redis ? ` ${b.redis}` : ""} at 127.0.0.1:6379 (\`bench/bullmq.ts\`): child processes
(\`bench/bullmq-worker.ts\`) each running \`new Worker(queue, processor, { connection, concurrency })\`
with the concurrency \`colony worker\` has there (${concurrency.noop} for no-op jobs, ${concurrency.io} for jobs that await a
${IO_WAIT_MS} ms timer). This process adds the jobs as Colony's submitter submits: no-op jobs with
\`queue.add\` one at a time, the ${IO_WAIT_MS} ms jobs with \`queue.addBulk\` in batches of 50. Two untimed
warm-ups, then rounds of M, each timed from its first add to its last job's end (the newest
completed job's \`finishedOn\`, stamped by the worker as Colony's task events are); the end is
polled with \`queue.getJobCounts\` every 10 ms. M is sized from the one-process row's second
warm-up by the rule used on NATS (the first warm-up also pays for BullMQ's first script loads).
Jobs are kept when done, as Colony keeps its tasks; each row has a fresh queue, obliterated
after. Colony's rows and these come from the same \`bench/main.ts\` run, one after the other, not
in interleaved rounds. BullMQ and ioredis are dev dependencies of this baseline only.
`;
  if (b.skipped !== undefined) return `${head}\n**Skipped**: ${b.skipped}.\n`;
  const colony = nats?.workers?.rows.find((row) => row.processes === 1);
  const rows: string[] = [];
  if (colony) {
    rows.push(`| Colony on NATS, \`colony worker --nats\` (section 7.3) | ${concurrency.noop} | ${ops(colony)} | ${(1000 / colony.opsPerSec).toFixed(2)} | ${ops(colony.submit)} | ${colony.tasksPerRound.toLocaleString("en-US")} | ${colony.rounds.map((n) => ops({ opsPerSec: n, rounds: [] })).join(", ")} | ${colony.startupSeconds.toFixed(1)} | ${colony.stopSeconds.toFixed(1)} |`);
  }
  const row = noop[0];
  if (row) {
    rows.push(`| BullMQ on Redis, one \`Worker\` | ${concurrency.noop} | ${ops(row)} | ${(1000 / row.opsPerSec).toFixed(2)} | ${ops(row.submit)} | ${row.tasksPerRound.toLocaleString("en-US")} | ${row.rounds.map((n) => ops({ opsPerSec: n, rounds: [] })).join(", ")} | ${row.startupSeconds.toFixed(1)} | ${row.stopSeconds.toFixed(1)} |`);
  }
  let ratio: string;
  if (!row) ratio = "No ratio: the BullMQ row did not finish.";
  else if (nats === undefined) ratio = "No ratio: it needs both rows from the same run; run `--only nats,nats-io,bullmq` or the full benchmark.";
  else if (nats.skipped !== undefined) ratio = `No ratio: the NATS sections were skipped (${nats.skipped}).`;
  else if (!colony) ratio = `No ratio: Colony's one-process row on NATS did not finish${nats.workers?.error ? ` (${nats.workers.error})` : ""}.`;
  else {
    const r = colony.opsPerSec / row.opsPerSec;
    const paced = (e2e: Result, submit: Result) => (e2e.opsPerSec / submit.opsPerSec).toFixed(2);
    ratio = `**Ratio, Colony on NATS ÷ BullMQ, tasks/s (medians): ${r.toFixed(r < 0.1 ? 3 : 2)}** — ${r >= 1 ? `Colony does ${x(r)} BullMQ's tasks per second` : `BullMQ does ${x(1 / r)} Colony's tasks per second`}.

End to end ÷ submits alone: Colony ${paced(colony, colony.submit)}, BullMQ ${paced(row, row.submit)}; near 1, the one-at-a-time
submits set the pace rather than the worker, and the figure is then a floor on what the worker
could do.`;
  }
  const problems = [...noop, ...io].flatMap((r) => r.problems.map((p) => `- ${r.processes} process(es): \`${p.replaceAll("`", "'")}\``));
  return `${head}
### 8.1 One worker process, no-op tasks

${
  rows.length > 0
    ? `| one worker process | concurrency | tasks/s | ms per task | submits alone/s | tasks per round | rounds, tasks/s | start-up s | SIGTERM to exit s |
|---|---:|---:|---:|---:|---:|---|---:|---:|
${rows.join("\n")}

`
    : ""
}${ratio}

${bullmqScaling(b, nats)}
${bullmqDispatch(b, nats)}${b.error ? `\n**Stopped short**: ${b.error}\n` : ""}${problems.length > 0 ? `\nProblems:\n\n${problems.join("\n")}\n` : ""}`;
}

/** 1 and 4 worker processes, Colony's rows of 7.3 and 7.4 beside BullMQ's, each as a ratio to its own one process. */
function bullmqScaling(b: BullmqResults, nats: NatsResults | undefined): string {
  const lines: string[] = [];
  for (const [workload, colonyRows, label] of [
    ["noop", nats?.workers?.rows, "no-op, one submit at a time"],
    ["io", nats?.workersIo?.rows, `${IO_WAIT_MS} ms each, batches of 50`],
  ] as const) {
    const ours = (p: number) => colonyRows?.find((r) => r.processes === p);
    const theirs = (p: number) => b.rows[workload].find((r) => r.processes === p);
    for (const p of [1, 4]) {
      const [c, q] = [ours(p), theirs(p)];
      const [c1, q1] = [ours(1), theirs(1)];
      const cell = (r: Result | undefined, one: Result | undefined) => (r ? `${ops(r)} | ${one ? x(r.opsPerSec / one.opsPerSec) : "–"}` : "– | –");
      const spread = q ? ` | ${q.perWorker.map((n) => (n === undefined ? "?" : n.toLocaleString("en-US"))).join(" / ")}` : " | –";
      lines.push(`| ${label} | ${p} | ${cell(c, c1)} | ${cell(q, q1)}${spread} |`);
    }
  }
  return `### 8.2 More worker processes

The same workloads through 4 worker processes, each side as a ratio to its own one process:
the targets of sections 7.3 and 7.4 (4 ≥ 1 for no-op tasks, 4 ≥ 3× 1 for ${IO_WAIT_MS} ms tasks) held against a
mature queue on the same machine, whose workers leave all bookkeeping to Redis (Lua scripts
run by the server).

| workload | worker processes | Colony tasks/s | Colony ÷ 1 process | BullMQ jobs/s | BullMQ ÷ 1 process | jobs per BullMQ worker (warm-ups included) |
|---|---:|---:|---:|---:|---:|---|
${lines.join("\n")}
`;
}

/** BullMQ's add → finished round trip against a Redis pub/sub request/reply, beside Colony's of 7.2. */
function bullmqDispatch(b: BullmqResults, nats: NatsResults | undefined): string {
  if (!b.dispatch) return "";
  const d = b.dispatch;
  const colony = nats?.dispatch;
  return `### 8.3 Dispatch round trip

As section 7.2: \`await (await queue.add("job", { i })).waitUntilFinished(queueEvents)\` with a
\`Worker\` of concurrency 1 in this process on its own connections, against a request/reply over
Redis pub/sub (a responder on two connections of its own publishing each request back to a
channel this process listens on), ${d.ours.rounds.length} interleaved rounds.

| | round trips/s | µs/round trip | ratio |
|---|---:|---:|---:|
| BullMQ add → worker → finished | ${ops(d.ours)} | ${usWhole(d.ours)} | ${spread(d)} |
| raw Redis pub/sub request/reply | ${ops(d.raw)} | ${usWhole(d.raw)} | 1.00× |
${colony ? `| Colony on NATS, submit → worker → result (7.2) | ${ops(colony.ours)} | ${usWhole(colony.ours)} | ${x(colony.ratio)} of core NATS request/reply |\n` : ""}
`;
}

const TARGET = 1.5;
const kib = (bytes: number) => Math.round(bytes / 1024).toLocaleString("en-US");
const whole = (n: number) => n.toLocaleString("en-US");

/** "within" or "**short of**" the 1.5× target, with the ratio. */
function againstTarget(ratio: number): string {
  return `**${x(ratio)}** — ${ratio <= TARGET ? "within" : "**short of**"} the ${TARGET}× target`;
}

/** The rows of one backend, and its ratio row; why it did not run or stopped short goes to `notes`. */
function historyRows(label: string, h: HistoryBackendResults, notes: string[]): string[] {
  if (h.skipped !== undefined) {
    notes.push(`**${label} skipped**: ${h.skipped}.`);
    return [];
  }
  if (h.error !== undefined) notes.push(`**${label} stopped short**: ${h.error}`);
  const range = (values: number[], f: (n: number) => string) => `${f(Math.min(...values))}–${f(Math.max(...values))}`;
  const ms = (n: number) => n.toFixed(n < 100 ? 1 : 0);
  const rows = h.rows.map(
    (row) => `| ${label} | ${whole(row.tasks)} | ${ms(row.ms)} (${range(row.msRuns, ms)}) | ${kib(row.heapBytes)} (${range(row.heapRuns, kib)}) | ${whole(row.listed)} | ${row.buildSeconds.toFixed(1)} |`,
  );
  const [few, many] = [h.rows[0], h.rows[h.rows.length - 1]];
  if (few && many && few !== many) {
    rows.push(`| **${label}, ${whole(many.tasks)} ÷ ${whole(few.tasks)}** | | ${againstTarget(many.ms / few.ms)} | ${againstTarget(many.heapBytes / few.heapBytes)} | | |`);
  }
  return rows;
}

function historySection(h: HistoryResults): string {
  const retention = Object.entries(h.retention)
    .map(([k, v]) => `${k}: ${whole(v)}`)
    .join(", ");
  const notes: string[] = [];
  const rows = [...historyRows("SQLite", h.sqlite, notes), ...historyRows("NATS", h.nats, notes)];
  const sqliteRows = h.sqlite.rows.filter((row) => row.sqlite);
  const natsRows = h.nats.rows.filter((row) => row.nats);
  const storage: string[] = [];
  if (sqliteRows.length > 0) {
    storage.push(`On SQLite, what each board's file holds after building: the board's rows, and the file's pages (\`PRAGMA page_count\`,
\`freelist_count\`; the pages that removed rows freed stay in the file for reuse, until a VACUUM):

| board has seen | task rows | event rows | file bytes | pages | free pages |
|---:|---:|---:|---:|---:|---:|
${sqliteRows.map((row) => `| ${whole(row.tasks)} | ${whole(row.sqlite!.taskRows)} | ${whole(row.sqlite!.eventRows)} | ${whole(row.sqlite!.fileBytes)} | ${whole(row.sqlite!.pages)} | ${whole(row.sqlite!.freePages)} |`).join("\n")}
`);
  }
  if (natsRows.length > 0) {
    const held = (s: StreamState) => (s.messages === 0 ? "none" : `${whole(s.firstSeq)}–${whole(s.lastSeq)}`);
    const line = (row: HistoryRow) => {
      const { log, snapshots, snapshotSeq } = row.nats!;
      const after = log.lastSeq - (snapshotSeq ?? 0);
      return `| ${whole(row.tasks)} | ${whole(log.lastSeq)} | ${whole(log.messages)} | ${whole(log.bytes)} | ${held(log)} | ${whole(snapshots.messages)} | ${whole(snapshots.bytes)} | ${snapshotSeq === undefined ? "none" : whole(snapshotSeq)} | ${whole(after)} |`;
    };
    storage.push(`On NATS, each board's log stream and snapshot stream after building, as \`jsm.streams.info\` reports them.
Every transaction that changed the board is one log message; the log is purged behind snapshots.
"Folded on open" is what a fresh client reads of the log: the messages after the newest snapshot
(all of them where the log has not yet grown enough for a first snapshot). How many that is
depends on where the newest snapshot fell as the board was built, not on how much the board has
seen, so it differs from run to run, and the open time with it.

| board has seen | log messages written | log messages held | log bytes held | log sequences held | snapshot messages | snapshot bytes | newest snapshot at log seq | folded on open |
|---:|---:|---:|---:|---|---:|---:|---:|---:|
${natsRows.map(line).join("\n")}
`);
  }
  return `## 9. Opening a task board that has seen 100,000 tasks

Retention bounds what a task board keeps, so a new client's first look at a board should cost
about the same whatever the board has seen. On each backend, two task boards with the same
retention, \`createColony({ backend, retention: { ${retention} } })\` (\`maxAgeMs\` the default week, so
nothing here goes by age): one that has seen 100 tasks and one that has seen 100,000, every one
of them finished (succeeded). Each is built by one client in this process: batches of ${whole(h.batch)} no-op tasks
submitted with one \`tasks.submitAll\`, claimed with one \`tasks.claimMany({ max: ${whole(h.batch)} })\` and completed
each with its own \`tasks.complete(id, null, { generation })\` (so every task is a submit, a claim and a
complete, with their three events, and on NATS every complete is a message in the log), the board
pruning itself under its retention as it goes; then \`tasks.sweep()\` (which removes what the
retention does not keep) and \`colony.close()\`. On SQLite each board has a file of its own; on NATS
each has a prefix of its own on one private nats-server ${h.nats.server ?? ""}.

Then a fresh client opens each board: a new process (\`node --expose-gc bench/fixtures/history-open.ts\`)
that, its modules loaded, times \`createColony(...)\` to the end of its first
\`(await colony.tasks(name)).list()\` (on SQLite opening the file; on NATS connecting, opening the
buckets and streams, reading the newest snapshot and folding the log after it), and takes the heap
used after that list minus the heap used before \`createColony\` (\`process.memoryUsage().heapUsed\`,
each after \`global.gc()\`; the list is still held). One untimed process per board, then ${h.runs} rounds
of one process per board, alternating which goes first; medians, with the runs' range.
Target: the board that has seen 100,000 tasks at most ${TARGET}× the time and the memory of the one
that has seen 100.

| backend | board has seen | open + first \`list()\`, ms (runs) | heap held after, KiB (runs) | tasks listed | built in, s |
|---|---:|---:|---:|---:|---:|
${rows.join("\n")}
${notes.length > 0 ? `\n${notes.join("\n\n")}\n` : ""}
${storage.join("\n")}`;
}
