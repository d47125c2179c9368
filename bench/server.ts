/**
 * The HTTP API (`colony serve`) on sqliteBackend, served by `colony.serve({ port: 0 })` in this
 * process:
 *
 * 1. `GET /api/boards/:name/entries` of a board of 1,000 entries and `GET /api/tasks?board=` of
 *    1,000 tasks over a real socket, against the in-process call (`board.refresh()` +
 *    `board.view().entries()`, `tasks.list()`) plus a raw Hono round trip of the same body (a
 *    minimal Hono app on @hono/node-server, on another port, answering with the body
 *    precomputed), through the same keep-alive client: `fetch` (undici's default agent) and
 *    `http.get` with a keep-alive `Agent`. `JSON.stringify` of the body is timed in the same
 *    rounds: what a read at a new log position pays more (the API keeps each position's text).
 * 2. SSE fan-out: 50 clients on a board's `/events` (bench/sse-clients.ts, in a child process)
 *    and 10,000 writes to the board from this process, each as soon as the previous returned;
 *    then 1,000 at 100 a second. Every client checks it got every record in order exactly once,
 *    and the latency of each record at each client is its arrival less the write's start
 *    (carried in the value).
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createAdaptorServer } from "@hono/node-server";
import { Hono } from "hono";
import { createColony, sqliteBackend, type Colony, type ColonyServer } from "../src/index.ts";
import { AUTHOR, VALUES } from "./cas.ts";
import { compare, median, progress } from "./measure.ts";
import type { Spread } from "./models.ts";
import type { ClientsDone, ClientsMessage } from "./sse-clients.ts";

const CLIENTS_SCRIPT = new URL("./sse-clients.ts", import.meta.url);
const BOARD = "bench-entries";
const TASK_BOARD = "bench-tasks";
/** Entries on the board, and tasks on the task board (the route's default `limit` is 1,000: all of them). */
const ITEMS = 1000;
const ROUNDS = 15;
/** How long one round of the slowest side (the request to Colony) should take. */
const TARGET_MS = 250;
const TARGET = 1.5;
const CLIENTS = 50;
const WRITES = 10_000;
/** The steady run: writes per second offered, and how many. */
const PACED = { rate: 100, writes: 1000 } as const;
/** Untimed writes to the streams first, so that the server's SSE path is warm. */
const WARM_WRITES = 500;
/** A fan-out run that has not finished after this is stopped and reported. */
const FAN_TIMEOUT_MS = 180_000;

const CLIENT_KINDS = ["fetch", "http"] as const;
type ClientKind = (typeof CLIENT_KINDS)[number];

export interface RequestRow {
  payload: "entries" | "tasks";
  /** The request, as the server is asked. */
  path: string;
  client: ClientKind;
  /** The response body's length. */
  bytes: number;
  /** Requests (and in-process calls, raw round trips, stringifies) per round, each side. */
  perRound: number;
  rounds: number;
  /** Per request, ms: over HTTP to Colony, the in-process call, the raw Hono round trip, `JSON.stringify` of the body. */
  http: Spread;
  inProcess: Spread;
  raw: Spread;
  stringify: Spread;
  /** HTTP ÷ (in-process + raw), medians. */
  ratio: number;
  /** The same per round, each round's sides being adjacent in time. */
  paired: Spread;
}

export interface FanOutRun {
  mode: "burst" | "paced";
  clients: number;
  writes: number;
  /** Paced: writes per second offered; burst: undefined (each write as soon as the previous returned). */
  rate?: number;
  /** The first write's start to the last write's return, ms. */
  writeMs: number;
  /** The first write's start to the last record's arrival at the last client, ms. */
  totalMs: number;
  /** Over every record at every client, write start → arrival, ms. */
  latencyMs: ClientsDone["latencyMs"];
  worstClientP99Ms: number;
  /** Records received, over all clients (clients × writes when nothing was lost). */
  received: number;
  problems: string[];
  /** CPU time over the run: this process (server and writer), and the clients' process, ms. */
  serverCpuMs: number;
  clientsCpuMs: number;
}

export interface ServerResults {
  items: number;
  rows: RequestRow[];
  /** The same 10,000 writes with no stream open, ms. */
  writesAloneMs: number;
  fanOut: FanOutRun[];
  /** Why the fan-out stopped short. */
  error?: string;
}

const now = () => performance.timeOrigin + performance.now();

function spreadOf(values: number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), rounds: values };
}

/** A GET that reads the whole body as bytes (neither side's body is decoded or parsed), checking its status and length. */
type Get = (url: string, bytes: number) => Promise<void>;

function getter(kind: ClientKind): { get: Get; close(): void } {
  const check = (url: string, status: number | undefined, got: number, bytes: number) => {
    if (status !== 200 || got !== bytes) throw new Error(`GET ${url}: status ${status}, ${got} bytes where ${bytes} were expected`);
  };
  if (kind === "fetch") {
    return {
      get: async (url, bytes) => {
        const response = await fetch(url);
        check(url, response.status, (await response.arrayBuffer()).byteLength, bytes);
      },
      close() {},
    };
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return {
    get: (url, bytes) =>
      new Promise<void>((resolve, reject) => {
        http
          .get(url, { agent }, (response) => {
            let got = 0;
            response.on("data", (chunk: Buffer) => (got += chunk.length));
            response.on("end", () => {
              try {
                check(url, response.statusCode, got, bytes);
                resolve();
              } catch (error) {
                reject(error as Error);
              }
            });
            response.on("error", reject);
          })
          .on("error", reject);
      }),
    close: () => agent.destroy(),
  };
}

/** The baseline server: a minimal Hono app answering each path with its body, precomputed. */
async function rawServer(bodies: Record<string, string>): Promise<{ url: string; close(): Promise<void> }> {
  const app = new Hono();
  for (const [path, body] of Object.entries(bodies)) app.get(path, (c) => c.body(body, 200, { "content-type": "application/json" }));
  const server = createAdaptorServer({ fetch: app.fetch }) as http.Server;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
    },
  };
}

interface Payload {
  name: RequestRow["payload"];
  path: string;
  /** What an in-process caller does for the same answer. */
  inProcess: () => Promise<unknown>;
  /** The object the route answers with, and its JSON. */
  object: unknown;
  body: string;
}

async function payloads(colony: Colony): Promise<Payload[]> {
  const board = await colony.board(BOARD);
  for (let i = 0; i < ITEMS; i++) {
    await board.write(`findings/item-${String(i).padStart(4, "0")}`, VALUES[i % VALUES.length], { author: AUTHOR, tags: { status: "open", round: i % 10 } });
  }
  const tasks = await colony.tasks(TASK_BOARD);
  for (let i = 0; i < ITEMS; i += 100) {
    await tasks.submitAll(Array.from({ length: 100 }, (_, j) => ({ kind: "summarise", input: { source: `doc-${i + j}`, words: 200 }, priority: (i + j) % 3 })));
  }
  const view = board.view();
  const entries = { board: BOARD, seq: view.seq, entries: view.entries() };
  const list = await tasks.list();
  const taskList = { board: TASK_BOARD, total: list.length, tasks: list };
  return [
    {
      name: "entries",
      path: `/api/boards/${BOARD}/entries`,
      inProcess: async () => {
        await board.refresh();
        return board.view().entries();
      },
      object: entries,
      body: JSON.stringify(entries),
    },
    { name: "tasks", path: `/api/tasks?board=${TASK_BOARD}`, inProcess: () => tasks.list(), object: taskList, body: JSON.stringify(taskList) },
  ];
}

async function requestRow(server: ColonyServer, rawUrl: string, payload: Payload, kind: ClientKind): Promise<RequestRow> {
  const client = getter(kind);
  try {
    const bytes = Buffer.byteLength(payload.body);
    const [ours, raw] = [`${server.url}${payload.path}`, `${rawUrl}/${payload.name}`];
    // The baseline answers with exactly what the API does, byte for byte.
    for (const url of [ours, raw]) {
      const text = await (await fetch(url)).text();
      if (text !== payload.body) throw new Error(`GET ${url} answered ${text.length} characters that differ from the in-process ${payload.name} (${payload.body.length})`);
    }
    const repeat =
      (call: () => unknown): ((n: number) => Promise<void>) =>
      async (n) => {
        for (let i = 0; i < n; i++) await call();
      };
    const getOurs = repeat(() => client.get(ours, bytes));
    let perRound = 0; // the n of the timed rounds: the last one the request side was given
    const results = await compare(
      {
        http: (n) => {
          perRound = n;
          return getOurs(n);
        },
        inProcess: repeat(payload.inProcess),
        raw: repeat(() => client.get(raw, bytes)),
        stringify: (n) => {
          for (let i = 0; i < n; i++) JSON.stringify(payload.object);
        },
      },
      { rounds: ROUNDS, targetMs: TARGET_MS },
    );
    const ms = (name: keyof typeof results) => results[name].rounds.map((perSecond) => 1000 / perSecond);
    const [h, p, r, s] = [ms("http"), ms("inProcess"), ms("raw"), ms("stringify")];
    const row: RequestRow = {
      payload: payload.name,
      path: payload.path,
      client: kind,
      bytes,
      perRound,
      rounds: ROUNDS,
      http: spreadOf(h),
      inProcess: spreadOf(p),
      raw: spreadOf(r),
      stringify: spreadOf(s),
      ratio: median(h) / (median(p) + median(r)),
      paired: spreadOf(h.map((v, i) => v / (p[i]! + r[i]!))),
    };
    return row;
  } finally {
    client.close();
  }
}

/** The next message of the clients' process; an exit or `timeoutMs` first is an error. */
async function message(child: ChildProcess, timeoutMs: number): Promise<ClientsMessage> {
  const timeout = new AbortController();
  try {
    return await Promise.race([
      once(child, "message").then(([m]) => m as ClientsMessage),
      once(child, "exit").then(([code, signal]) => Promise.reject(new Error(`the clients' process exited (${String(signal ?? code)}) before it answered`))),
      sleep(timeoutMs, undefined, { signal: timeout.signal }).then(() => Promise.reject(new Error(`no answer from the clients' process in ${timeoutMs / 1000} s`))),
    ]);
  } finally {
    timeout.abort();
  }
}

/**
 * `writes` writes to a fresh board with `clients` streams open on it: each as soon as the
 * previous returned (`rate` undefined), or `rate` a second. Each value carries its index and the
 * wall-clock time its write began.
 */
async function fanOut(colony: Colony, server: ColonyServer, name: string, writes: number, rate?: number): Promise<FanOutRun> {
  const board = await colony.board(name);
  const child = fork(CLIENTS_SCRIPT, [`${server.url}/api/boards/${name}/events`, String(CLIENTS), String(writes)], {
    execArgv: [],
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  // A failed spawn or kill is an "error" event, which would throw unheard; the timeouts below report it.
  child.on("error", () => {});
  try {
    const ready = await message(child, 30_000);
    if (ready.kind !== "ready") throw new Error(`the clients said ${ready.kind} before they were ready`);
    // Listening before the first write, as the answer may come before the loop ends; a failure
    // meanwhile is awaited below, not left unhandled while the writes go on.
    const done = message(child, FAN_TIMEOUT_MS);
    done.catch(() => {});
    const cpu = process.cpuUsage();
    const started = now();
    for (let i = 0; i < writes; i++) {
      if (rate !== undefined) {
        const wait = started + (i * 1000) / rate - now();
        if (wait > 0) await sleep(wait);
      }
      await board.write(`fan/key-${i % 100}`, { i, sentAt: now(), ...VALUES[i % VALUES.length] }, { author: AUTHOR });
    }
    const writeMs = now() - started;
    const result = await done;
    const used = process.cpuUsage(cpu);
    if (result.kind !== "done") throw new Error(`the clients said ${result.kind} where they were to be done`);
    return {
      mode: rate === undefined ? "burst" : "paced",
      clients: CLIENTS,
      writes,
      rate,
      writeMs,
      totalMs: result.lastAt - started,
      latencyMs: result.latencyMs,
      worstClientP99Ms: result.worstClientP99Ms,
      received: result.received.reduce((a, b) => a + b, 0),
      problems: result.problems,
      serverCpuMs: (used.user + used.system) / 1000,
      clientsCpuMs: result.cpuMs,
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill();
      await once(child, "exit");
    }
  }
}

async function writesAlone(colony: Colony, writes: number): Promise<number> {
  const board = await colony.board("fan-out-alone");
  const started = now();
  for (let i = 0; i < writes; i++) await board.write(`fan/key-${i % 100}`, { i, sentAt: now(), ...VALUES[i % VALUES.length] }, { author: AUTHOR });
  return now() - started;
}

const seconds = (ms: number) => (ms / 1000).toFixed(1);

export async function serverBench(dir: string): Promise<ServerResults> {
  const colony = createColony({ backend: sqliteBackend({ path: join(dir, "server.db") }) });
  const server = await colony.serve({ port: 0 });
  try {
    progress(`server: ${ITEMS} board entries and ${ITEMS} tasks, served at ${server.url}…`);
    const all = await payloads(colony);
    const raw = await rawServer(Object.fromEntries(all.map((p) => [`/${p.name}`, p.body])));
    const rows: RequestRow[] = [];
    try {
      for (const payload of all) {
        for (const kind of CLIENT_KINDS) {
          progress(`server: GET ${payload.path} (${Math.round(payload.body.length / 1024)} KiB) through ${kind}, against the in-process call + a raw Hono round trip (${ROUNDS} rounds)…`);
          const row = await requestRow(server, raw.url, payload, kind);
          rows.push(row);
          progress(
            `  ${row.http.median.toFixed(2)} ms against ${row.inProcess.median.toFixed(2)} + ${row.raw.median.toFixed(2)} ms: ${row.ratio.toFixed(2)}× (rounds ${row.paired.min.toFixed(2)}–${row.paired.max.toFixed(2)}); JSON.stringify ${row.stringify.median.toFixed(2)} ms`,
          );
        }
      }
    } finally {
      await raw.close();
    }

    const results: ServerResults = { items: ITEMS, rows, writesAloneMs: 0, fanOut: [] };
    progress(`server: ${WRITES.toLocaleString("en-US")} board writes with no stream open…`);
    results.writesAloneMs = await writesAlone(colony, WRITES);
    progress(`  ${seconds(results.writesAloneMs)} s`);
    try {
      progress(`server: SSE fan-out warm-up, ${CLIENTS} clients, ${WARM_WRITES} writes (untimed)…`);
      await fanOut(colony, server, "fan-out-warm", WARM_WRITES);
      for (const [label, name, writes, rate] of [
        ["one after the other", "fan-out-burst", WRITES, undefined],
        [`${PACED.rate} a second`, "fan-out-paced", PACED.writes, PACED.rate],
      ] as const) {
        progress(`server: SSE fan-out, ${CLIENTS} clients, ${writes.toLocaleString("en-US")} writes ${label}…`);
        const run = await fanOut(colony, server, name, writes, rate);
        results.fanOut.push(run);
        progress(
          `  writes ${seconds(run.writeMs)} s, last delivery ${seconds(run.totalMs)} s; latency p50 ${run.latencyMs.p50.toFixed(1)}, p99 ${run.latencyMs.p99.toFixed(1)}, max ${run.latencyMs.max.toFixed(1)} ms; ${run.received.toLocaleString("en-US")} received${run.problems.length > 0 ? `; ${run.problems.length} problem(s)` : ""}`,
        );
      }
    } catch (error) {
      results.error = (error as Error).message;
      progress(`  stopped short: ${results.error}`);
    }
    return results;
  } finally {
    await server.close();
    await colony.close();
  }
}

// --- BENCHMARKS.md -------------------------------------------------------------------------

const whole = (n: number) => Math.round(n).toLocaleString("en-US");
const kib = (bytes: number) => whole(bytes / 1024);
const ms2 = (n: number) => n.toFixed(2);
const range = (s: Spread, f: (n: number) => string) => `${f(s.min)}–${f(s.max)}`;
const clientName = (kind: ClientKind) => (kind === "fetch" ? "`fetch`" : "`http.get`");

function requestLine(row: RequestRow): string {
  const verdict = row.ratio <= TARGET ? "within" : "**over**";
  const left = row.http.median - row.inProcess.median - row.raw.median;
  const cell = (s: Spread) => `${ms2(s.median)} (${range(s, ms2)})`;
  return `| ${row.payload} | ${clientName(row.client)} | ${row.perRound} | ${cell(row.http)} | ${cell(row.inProcess)} | ${cell(row.raw)} | **${row.ratio.toFixed(2)}×** (rounds ${range(row.paired, (n) => n.toFixed(2))}) — ${verdict} ${TARGET}× | ${cell(row.stringify)} | ${left < 0 ? "−" : ""}${ms2(Math.abs(left))} |`;
}

/** Whether the rows meet the target; for those that do not, by how much. */
function requestVerdict(rows: RequestRow[]): string {
  const over = rows.filter((row) => row.ratio > TARGET);
  if (over.length === 0) return `**Target met** on every row (at most ${Math.max(...rows.map((r) => r.ratio)).toFixed(2)}×).`;
  const lines = over.map((row) => {
    const excess = row.http.median - row.inProcess.median - row.raw.median;
    return `- ${row.payload} through ${clientName(row.client)}: ${ms2(excess)} ms a request over the baseline ("left"), the body being kept; the rounds' ratios run ${range(row.paired, (n) => n.toFixed(2))}.`;
  });
  const met = rows.length - over.length;
  return `**Target not met** on ${over.length} of ${rows.length} rows${met > 0 ? ` (met on ${rows.filter((r) => r.ratio <= TARGET).map((r) => `${r.payload} through ${clientName(r.client)}`).join(", ")})` : ""}:

${lines.join("\n")}`;
}

function fanOutLine(run: FanOutRun): string {
  const l = run.latencyMs;
  const label = run.rate === undefined ? "one after the other" : `${run.rate} a second`;
  const complete = run.received === run.clients * run.writes && run.problems.length === 0;
  const share = (cpuMs: number) => `${seconds(cpuMs)} (${whole((100 * cpuMs) / run.totalMs)}%)`;
  return `| ${label} | ${whole(run.writes)} | ${seconds(run.writeMs)} | ${seconds(run.totalMs)} | ${whole((run.writes * 1000) / run.totalMs)} | ${whole((run.received * 1000) / run.totalMs)} | ${l.p50.toFixed(1)} / ${l.p90.toFixed(1)} / **${l.p99.toFixed(1)}** / ${l.max.toFixed(1)} | ${run.worstClientP99Ms.toFixed(1)} | ${share(run.serverCpuMs)} / ${share(run.clientsCpuMs)} | ${((run.serverCpuMs * 1000) / run.received).toFixed(1)} | ${complete ? "yes" : `**no**: ${whole(run.received)} of ${whole(run.clients * run.writes)}`} |`;
}

export function renderServer(r: ServerResults): string {
  const bytes = (payload: RequestRow["payload"]) => {
    const row = r.rows.find((x) => x.payload === payload);
    return row ? `${kib(row.bytes)} KiB of JSON` : "";
  };
  const problems = r.fanOut.flatMap((run) => run.problems.map((p) => `- ${run.rate === undefined ? "one after the other" : `${run.rate} a second`}: ${p}`));
  const paced = r.fanOut.find((run) => run.rate !== undefined);
  return `## 11. The HTTP API

\`colony serve\`'s API, from \`colony.serve({ port: 0 })\` (the Hono app of \`src/server/\` on
@hono/node-server, with no token: behind the loopback-name check) over a sqliteBackend colony in
this process, asked over loopback sockets.

### 11.1 Board entries and the task list

\`GET /api/boards/${BOARD}/entries\` of a board of ${whole(r.items)} entries (about 100 bytes of JSON and two
tags each; ${bytes("entries")}), and \`GET /api/tasks?board=${TASK_BOARD}\` of ${whole(r.items)} pending tasks (the
route's default limit; ${bytes("tasks")}). The baseline is the same answer without the API: the
in-process call (\`await board.refresh(); board.view().entries()\`, the refresh being the store read
that makes the view current, as the route does; \`await tasks.list()\`) plus a raw Hono round trip of
the same bytes (a minimal \`Hono\` app on @hono/node-server, on another port of this process, answering
with the body precomputed; checked byte for byte against the API's answer before timing). Both
servers are asked through the same keep-alive client, one request at a time: \`fetch\` (undici's
default agent) in one row, \`http.get\` with a keep-alive \`Agent\` of one socket in the other; it
reads every byte and parses none. The client shares this process's thread with both servers, on
both sides alike. The API serialises an entry list or a task list once per log position and keeps
the text (\`src/server/body-cache.ts\`: the list is a function of the position), so these repeated
reads of an unchanged board skip the serialising, as a dashboard's reads between writes do; a read
at a new position pays it once, at least the \`JSON.stringify\` of the body timed alone in the same
rounds (in a tight loop, with its caches warm). "Left" is HTTP less the in-process call and the raw
round trip: the routing, the zod checks of the request, the middleware and the cache lookup.
Each side runs the same number of times per round (sized so that the requests to the API take
about ${TARGET_MS} ms), after a warm-up at that size, in ${ROUNDS} rounds alternating which goes first;
medians per request, with the rounds' range. Target: over HTTP at most ${TARGET}× the in-process
call plus the raw round trip (ratio of medians; "rounds" the per-round ratios).

| payload | client | per round | over HTTP, ms (rounds) | in-process call, ms (rounds) | raw Hono round trip, ms (rounds) | HTTP ÷ (in-process + raw) | \`JSON.stringify\` of the body alone (a read at a new position pays it), ms (rounds) | left, ms |
|---|---|---:|---:|---:|---:|---:|---:|---:|
${r.rows.map(requestLine).join("\n")}

${r.rows.length > 0 ? requestVerdict(r.rows) : ""}

### 11.2 SSE fan-out

${CLIENTS} clients follow \`GET /api/boards/:name/events\` of a fresh board; once every one has had its
\`ready\`, this process writes to the board (\`board.write\`, 100 keys in turn, each value about 130 bytes
of JSON carrying its index and the wall-clock time its write began, \`performance.timeOrigin +
performance.now()\`, which every process reads alike). The clients are one child process
(\`bench/sse-clients.ts\`: \`http.get\`, each stream parsed with eventsource-parser): in this process
their reading and parsing would run on the server's thread and count as the server's cost, and on
a small machine the two processes get a core each. Each client checks that its records come in seq
order from the position its \`ready\` named, each once, with \`id:\` its seq and the write's index, and
takes each record's latency as its arrival (the parse of its event) less the start of its write. The
server gives each stream its own \`board.watch\`, which reads the log from the store and parses each
record for itself, then serialises it for its stream. Two runs, one each: **one after the other**,
each write awaited and the next begun at once, the writer as fast as the board takes writes, so the
streams trail it and the latency is mostly that backlog; and **${paced?.rate ?? PACED.rate} a second**, ${whole(paced?.writes ?? PACED.writes)} writes offered
at a steady pace, for the delivery latency of a board that is busy but not behind. An untimed run of
${WARM_WRITES} writes warms the server first. CPU is each process's user + system time over the run, and its
share of the run's wall time (100% = one core). For scale, the same ${whole(WRITES)} writes with no stream
open took ${seconds(r.writesAloneMs)} s. No target: the figures are reported.

| run | writes | writer done, s | last record at the last client, s | writes/s delivered to all | records/s delivered | latency p50 / p90 / **p99** / max, ms | worst client's p99, ms | CPU s (share): this process / clients' | this process's CPU per record, µs | every record, in order, once |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
${r.fanOut.map(fanOutLine).join("\n")}
${r.error ? `\n**Stopped short**: ${r.error}\n` : ""}${problems.length > 0 ? `\nProblems:\n\n${problems.join("\n")}\n` : ""}`;
}
