/**
 * The SSE clients of section 11 (bench/server.ts), in a process of their own so that their
 * reading and parsing do not run on the server's thread: `clients` connections to one board's
 * `/events` stream, each parsed with eventsource-parser. Once every client has had its `ready`
 * event it sends `{ kind: "ready", after }`; then each client expects `writes` records, seq
 * after + 1, after + 2, … in order, and takes the latency of each as its arrival less the
 * `sentAt` the writer put in the value (wall-clock ms, `performance.timeOrigin + now()`, which
 * both processes read alike). When every client has every record (or one has something else),
 * it sends `{ kind: "done", … }` and exits.
 *
 *   node bench/sse-clients.ts <events URL> <clients> <writes>
 */
import http from "node:http";
import { createParser } from "eventsource-parser";

export interface ClientsReady {
  kind: "ready";
  /** The log position every stream follows from. */
  after: number;
}

export interface ClientsDone {
  kind: "done";
  /** Records each client received. */
  received: number[];
  /** What went wrong, per client that had a problem (a gap, a repeat, an error event, the stream ending). */
  problems: string[];
  /** Latency of every record at every client, ms: percentiles over all of them. */
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** The largest p99 of one client. */
  worstClientP99Ms: number;
  /** Wall-clock ms of the first record's and the last record's arrival, over all clients. */
  firstAt: number;
  lastAt: number;
  /** CPU time of this process from its "ready" to the end, user + system, ms. */
  cpuMs: number;
}

export type ClientsMessage = ClientsReady | ClientsDone;

const now = () => performance.timeOrigin + performance.now();
const cpuMs = (since?: NodeJS.CpuUsage) => {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1000;
};

const [url, clientsArg, writesArg] = process.argv.slice(2);
if (!url || !clientsArg || !writesArg || !process.send) throw new Error("usage (forked with IPC): sse-clients.ts <events URL> <clients> <writes>");
const clients = Number(clientsArg);
const writes = Number(writesArg);
const send = (message: ClientsMessage, then?: () => void) => process.send!(message, undefined, {}, then);

const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const latencies = Array.from({ length: clients }, () => new Float64Array(writes));
const received = new Array<number>(clients).fill(0);
const problems: string[] = [];
const requests: http.ClientRequest[] = [];
let after: number | undefined;
let readyCpu: NodeJS.CpuUsage | undefined;
let ready = 0;
let finished = 0;
let firstAt = Infinity;
let lastAt = 0;

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function finish(): void {
  for (const request of requests) request.destroy();
  const all = new Float64Array(clients * writes);
  let n = 0;
  let worst = 0;
  for (let c = 0; c < clients; c++) {
    const mine = latencies[c]!.subarray(0, received[c]);
    all.set(mine, n);
    n += mine.length;
    if (mine.length > 0) worst = Math.max(worst, percentile(Float64Array.from(mine).sort(), 99));
  }
  const sorted = all.subarray(0, n).sort();
  const mean = n === 0 ? NaN : sorted.reduce((a, b) => a + b, 0) / n;
  const at = (p: number) => (n === 0 ? NaN : percentile(sorted, p));
  send({ kind: "done", received, problems, latencyMs: { p50: at(50), p90: at(90), p99: at(99), max: at(100), mean }, worstClientP99Ms: worst, firstAt, lastAt, cpuMs: cpuMs(readyCpu) }, () => process.disconnect());
}

/** A client is through when it has every record, or has had a problem (told once). */
function through(client: number, problem?: string): void {
  if (problem !== undefined) problems.push(`client ${client}: ${problem}`);
  if (++finished === clients) finish();
}

function connect(client: number): void {
  let expected = 0;
  let done = false;
  const fail = (problem: string) => {
    if (done) return;
    done = true;
    through(client, problem);
  };
  const parser = createParser({
    onEvent(event) {
      if (done) return;
      if (event.event === "ready") {
        const position = (JSON.parse(event.data) as { after: number }).after;
        if (after !== undefined && position !== after) return fail(`ready after ${position}, the others after ${after}`);
        after = position;
        expected = position + 1;
        if (++ready === clients) {
          readyCpu = process.cpuUsage();
          send({ kind: "ready", after: position });
        }
        return;
      }
      if (event.event !== "record") return fail(`a ${event.event ?? "message"} event: ${event.data.slice(0, 200)}`);
      const at = now();
      const record = JSON.parse(event.data) as { seq: number; value: { i: number; sentAt: number } };
      if (record.seq !== expected || event.id !== String(expected) || record.value.i !== expected - after! - 1) {
        return fail(`record seq ${record.seq} (id ${event.id}, write ${record.value.i}) where seq ${expected} was due`);
      }
      latencies[client]![received[client]!++] = at - record.value.sentAt;
      if (at < firstAt) firstAt = at;
      if (at > lastAt) lastAt = at;
      if (++expected > after! + writes) {
        done = true;
        through(client);
      }
    },
    onError: (error) => fail(`unparseable stream: ${error.message}`),
  });
  const request = http.get(url!, { agent, headers: { accept: "text/event-stream" } }, (response) => {
    if (response.statusCode !== 200) return fail(`status ${response.statusCode}`);
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => parser.feed(chunk));
    response.on("end", () => fail(`the stream ended after ${received[client]} records`));
  });
  request.on("error", (error) => fail(`request failed: ${error.message}`));
  requests.push(request);
}

for (let c = 0; c < clients; c++) connect(c);
