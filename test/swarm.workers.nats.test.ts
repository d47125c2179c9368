/**
 * Worker processes as a swarm on NATS: `colony nodes` and `colony status`, progress on the bus,
 * `colony nodes drain`, the coordinator moving when its worker is killed or paused, and malformed
 * messages on Colony subjects. Every worker is a real `colony worker` process on a private
 * nats-server.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { z } from "zod";
import { channel, coordinatorRole, createColony, natsBackend, nodeInfoChannel, nodeRequestChannel, nodeSubject, progressChannel, progressSubject, type Backend, type Bus, type Colony, type NodeInfo, type ProgressMessage, type WorkerEvent } from "../src/index.ts";
import { CLI, cliJson, runCli } from "./fixtures/cli.ts";
import { subscribed } from "./fixtures/bus-probe.ts";
import { tempDir, waitFor, within } from "./fixtures/helpers.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

const AGENTS = fileURLToPath(new URL("./fixtures/worker-agents.ts", import.meta.url));
/** Files whose existence lets the gated agents end (see test/fixtures/worker-agents.ts). */
const gates = tempDir("colony-swarm-gates-");
after(() => gates.dispose());
/**
 * The workers' lease per claim where nothing is meant to lapse: the CLI's default. A worker's
 * heartbeats, its registry entry's ttl, its coordinator lease and how long it waits for the
 * coordinator's answer all follow from it; a short one lets a loaded machine lapse claims and take
 * live workers for offline, and a late answer makes a worker claim again on its own.
 */
const STEADY_LEASE_MS = 30_000;
/** Where the coordinator must change hands (its worker killed or paused), as it does once its lease lapses. */
const HANDOVER_LEASE_MS = 3000;
/** How long a test waits for what it waits for, before it fails saying what that was. */
const PATIENCE_MS = 30_000;
/** How long a request waits for a worker's answer: a loaded machine must not turn a late one into a timeout. */
const ANSWER_MS = 10_000;

const nats = natsServerPerFile();
const children = new Set<ChildProcess>();
const colonies: Colony[] = [];
const backends: Promise<Backend>[] = [];

afterEach(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await Promise.all([...children].map((c) => (c.exitCode === null && c.signalCode === null ? once(c, "exit") : undefined)));
  children.clear();
  for (const c of colonies.splice(0)) await c.close();
  for (const b of backends.splice(0)) await (await b).close();
});
after(() => {
  for (const child of children) child.kill("SIGKILL");
});

function swarm() {
  const prefix = `w${randomUUID().slice(0, 8)}`;
  const colony = createColony({ backend: natsBackend({ servers: nats.server.url, prefix }) });
  colonies.push(colony);
  const flags = ["--nats", nats.server.url, "--nats-prefix", prefix];
  let opened: Promise<Backend> | undefined;
  /** The swarm's backend opened here, for what a colony does not show: the lease store. */
  const backend = () => {
    if (!opened) backends.push((opened = natsBackend({ servers: nats.server.url, prefix }).open()));
    return opened;
  };
  return { prefix, colony, flags, backend };
}

interface WorkerProcess {
  id: string;
  child: ChildProcess;
  events: (WorkerEvent & { worker?: string })[];
  exited: Promise<number | null>;
}

function startWorker(flags: string[], id: string, leaseMs: number, ...extra: string[]): WorkerProcess {
  const child = spawn(process.execPath, [CLI, "worker", "--agents", AGENTS, "--id", id, "--lease-ms", String(leaseMs), "--json", ...flags, ...extra], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const events: WorkerEvent[] = [];
  let pending = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) if (line.trim()) events.push(JSON.parse(line) as WorkerEvent);
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = once(child, "exit").then(([code]) => {
    if (code !== 0 && code !== null && stderr) process.stderr.write(`${id}: ${stderr}`);
    return code as number | null;
  });
  return { id, child, events, exited };
}

const cli = <T>(flags: string[], ...args: string[]) => cliJson<T>([...args, ...flags, "--json"], { timeoutMs: 20_000 });

const online = (w: WorkerProcess) => waitFor(() => w.events.some((e) => e.type === "online"), PATIENCE_MS, `${w.id} online`);
const coordinatorEvents = (w: WorkerProcess, from = 0) => w.events.slice(from).filter((e) => e.type === "coordinator");
const leading = (w: WorkerProcess) => coordinatorEvents(w).at(-1)?.leading === true;

/** Not a node request: a worker rejects it, and prints that it did. */
const marker = channel("marker", z.strictObject({ op: z.string() }));

/**
 * Makes `w` print something now and waits until that is read: every event it printed before is
 * in `w.events` then (its stdout is one ordered stream).
 */
async function caughtUp(bus: Bus, w: WorkerProcess): Promise<void> {
  const from = w.events.length;
  const op = `marker-${randomUUID()}`;
  bus.publish(marker, nodeSubject(w.id), { op });
  await waitFor(() => w.events.slice(from).some((e) => e.type === "rejected"), PATIENCE_MS, `${w.id} to print its rejection of a marker message`);
}

/**
 * Waits until the store shows the coordinator lease written `times` more times by `holder` (its
 * renewals, a quarter lease apart); fails at once if it shows another holder meanwhile.
 */
async function renewals(backend: Backend, holder: string, times: number, what: string): Promise<void> {
  const revisions = new Set<number>();
  await waitFor(
    async () => {
      const lease = await backend.leases.get(coordinatorRole("default"));
      assert.equal(lease.holder, holder, `${what}: the coordinator lease changed hands`);
      revisions.add(lease.revision);
      return revisions.size > times;
    },
    PATIENCE_MS + times * HANDOVER_LEASE_MS,
    what,
  );
}

/** What a worker did, for a failure's message: its events but progress. */
const story = (w: WorkerProcess) => `${w.id}: ${JSON.stringify(w.events.filter((e) => e.type !== "progress"))}`;

describe("colony worker swarm on NATS", { timeout: 240_000 }, () => {
  test("nodes and status show the workers, the coordinator and the queue; progress reaches the bus; nodes drain stops a worker", async () => {
    const { colony, flags } = swarm();
    const a = startWorker(flags, "node-a", STEADY_LEASE_MS, "--capability", "chatty,echo", "--concurrency", "2");
    const b = startWorker(flags, "node-b", STEADY_LEASE_MS, "--capability", "echo");
    await Promise.all([online(a), online(b)]);
    const coordinator = await waitFor(() => [a, b].find(leading), PATIENCE_MS, "a coordinator");

    const tasks = await colony.tasks();
    const bus = await colony.bus();
    const progress: ProgressMessage[] = [];
    bus.subscribe(progressChannel, progressSubject("default"), (m) => void progress.push(m));
    await subscribed(bus, bus, "the progress subscription", PATIENCE_MS);
    // Every task here holds its slot until the test opens its gate, however slow a loaded machine
    // is to start the CLI: else node-a could take a second echo and leave none pending.
    const [chattyGate, echoGate] = [join(gates.path, "chatty.go"), join(gates.path, "echo.go")];
    const task = await tasks.submit({ kind: "chatty", input: { steps: 30, ms: 50, gate: chattyGate } });
    await waitFor(() => progress.length >= 3, PATIENCE_MS, "progress on the bus");
    assert.deepEqual(progress.slice(0, 3).map((p) => [p.task, p.worker, p.event.type, (p.event as { data?: { i: number } }).data?.i]), [
      [task.id, "node-a", "emit", 1],
      [task.id, "node-a", "emit", 2],
      [task.id, "node-a", "emit", 3],
    ]);

    // What `nodes` and `status` show is what a fresh process reads on the board: each is asked
    // until it shows the claims made (a claim is on the board before its worker runs the task).
    type Row = { id: string; status: string; capabilities: string[]; runningTasks: string[]; coordinator: boolean; heartbeatAt: number };
    const nodes = await waitFor(
      async () => {
        const rows = await cli<Row[]>(flags, "nodes");
        return rows.find((n) => n.id === "node-a")?.runningTasks.includes(task.id) && rows;
      },
      PATIENCE_MS,
      "colony nodes to show node-a running the chatty task",
    );
    assert.deepEqual(
      nodes.map((n) => [n.id, n.status, n.capabilities, n.runningTasks, n.coordinator]).sort(),
      [
        ["node-a", "online", ["chatty", "echo"], [task.id], coordinator.id === "node-a"],
        ["node-b", "online", ["echo"], [], coordinator.id === "node-b"],
      ],
      `${story(a)}\n${story(b)}`,
    );
    await tasks.submitAll([{ kind: "echo", input: { gate: echoGate } }, { kind: "echo", input: { gate: echoGate } }, { kind: "echo", input: { gate: echoGate } }, { kind: "alpha" }]);
    // Every slot taken: node-a's second and node-b's only one. Until then the echoes are claimed
    // one by one, and status may show any step of that.
    type Status = { coordinator: string; queue: Record<string, { pending: number; blocked: number; running: number }>; running: { id: string }[]; workers: Record<string, number> };
    let last: Status | undefined;
    const status = await waitFor(
      async () => {
        const s = (last = await cli<Status>(flags, "status"));
        return s.running.length === 3 && s.workers.busy === 2 && s;
      },
      PATIENCE_MS,
      "every slot taken: three running tasks, both workers busy",
    ).catch((error: Error) => assert.fail(`${error.message}; status last showed ${JSON.stringify(last)}\n${story(a)}\n${story(b)}`));
    assert.equal(status.coordinator, coordinator.id);
    assert.deepEqual(status.queue.alpha, { pending: 1, blocked: 0, running: 0 }, "nobody offers alpha");
    assert.deepEqual(status.queue.echo, { pending: 1, blocked: 0, running: 2 }, `one echo each on node-a and node-b: ${JSON.stringify(status)}\n${story(a)}\n${story(b)}`);
    assert.deepEqual(status.queue.chatty, { pending: 0, blocked: 0, running: 1 });
    assert.deepEqual(status.workers, { online: 0, busy: 2, draining: 0, offline: 0, stopped: 0 });

    // node-b's own account: it runs the task the board says it holds once it has the claim's answer.
    const info = await waitFor(
      async () => {
        const answer: NodeInfo = await bus.request(nodeRequestChannel, nodeInfoChannel, nodeSubject("node-b"), { op: "info" }, ANSWER_MS);
        return answer.running.length === 1 && answer;
      },
      PATIENCE_MS,
      "node-b to say it runs one task",
    );
    assert.equal(info.status, "busy");
    writeFileSync(echoGate, "");
    writeFileSync(chattyGate, "");
    const drained = await cli<NodeInfo>(flags, "nodes", "drain", "node-b", "--timeout-ms", String(ANSWER_MS));
    assert.equal(drained.id, "node-b");
    assert.equal(await within(b.exited, "node-b to exit", PATIENCE_MS), 0, "node-b finished its task and exited");
    assert.ok(b.events.some((e) => e.type === "succeeded"), "it finished what it held");
    assert.equal((await within(tasks.wait(task.id), "the chatty task to end", PATIENCE_MS)).result, 30);
  });

  test("submit --wait shows what the task's agent emits, from the worker's progress on the bus", async () => {
    const { flags } = swarm();
    const worker = startWorker(flags, "emitter", STEADY_LEASE_MS, "--capability", "chatty");
    await online(worker);
    const { code, stdout, stderr } = await runCli(["submit", "chatty", "--input", JSON.stringify({ steps: 3, ms: 100 }), "--wait", ...flags], { timeoutMs: PATIENCE_MS });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /succeeded/);
    const emitted = stderr.split("\n").filter((l) => /emitted step/.test(l));
    assert.deepEqual(emitted.map((l) => /"i":(\d)/.exec(l)?.[1]), ["1", "2", "3"], stderr);
  });

  test("kill -9 the coordinator's worker: another worker is coordinator within two lease periods", async () => {
    const { colony, flags, backend } = swarm();
    const workers = ["k1", "k2", "k3"].map((id) => startWorker(flags, id, HANDOVER_LEASE_MS, "--capability", "echo"));
    await Promise.all(workers.map(online));
    const first = await waitFor(() => workers.find(leading), PATIENCE_MS, "a coordinator");
    assert.equal(await colony.leader(coordinatorRole("default")), first.id);
    // Steady: it has renewed its lease twice, with every worker campaigning (each since before it was online).
    await renewals(await backend(), first.id, 2, `${first.id} to renew the coordinator lease twice`);
    const killedAt = Date.now();
    first.child.kill("SIGKILL");
    const second = await waitFor(() => workers.find((w) => w !== first && leading(w)), PATIENCE_MS, "a new coordinator");
    // When it took the lease, by its own clock: not when this process read that.
    const after = coordinatorEvents(second).at(-1)!.at - killedAt;
    assert.ok(after < 2 * HANDOVER_LEASE_MS, `a new coordinator ${after} ms after the kill`);
    assert.equal(await colony.leader(coordinatorRole("default")), second.id);
    const bus = await colony.bus();
    const survivors = workers.filter((w) => w !== first);
    for (const w of survivors) await caughtUp(bus, w);
    assert.deepEqual(
      survivors.filter(leading).map((w) => w.id),
      [second.id],
      "one coordinator among the survivors",
    );
  });

  test("a coordinator paused past its lease (SIGSTOP) is replaced, and on waking steps down without leading again", async () => {
    const { colony, flags, backend } = swarm();
    const workers = ["p1", "p2"].map((id) => startWorker(flags, id, HANDOVER_LEASE_MS, "--capability", "echo"));
    await Promise.all(workers.map(online));
    const paused = await waitFor(() => workers.find(leading), PATIENCE_MS, "a coordinator");
    const other = workers.find((w) => w !== paused)!;
    paused.child.kill("SIGSTOP");
    await waitFor(() => leading(other), PATIENCE_MS, "the other worker to take over");
    const seen = paused.events.length;
    paused.child.kill("SIGCONT");
    const stepDown = await waitFor(() => coordinatorEvents(paused, seen)[0], PATIENCE_MS, "the woken coordinator to step down");
    assert.deepEqual([stepDown.type, stepDown.leading], ["coordinator", false]);
    // Five renewals by the new coordinator since (each a quarter lease after the one before): more
    // than a lease period in which the woken one campaigned, and would have led again if it could.
    await renewals(await backend(), other.id, 5, `${other.id} to renew the coordinator lease five times`);
    const bus = await colony.bus();
    const info = await bus.request(nodeRequestChannel, nodeInfoChannel, nodeSubject(paused.id), { op: "info" }, ANSWER_MS);
    assert.equal(info.coordinator, false, "awake, it says it is not the coordinator");
    await caughtUp(bus, paused);
    await caughtUp(bus, other);
    assert.deepEqual(
      coordinatorEvents(paused, seen).map((e) => e.leading),
      [false],
      "it never led again",
    );
    assert.equal(leading(other), true);
  });

  test("malformed JSON, wrong schema and oversized messages on Colony subjects are rejected and counted; the worker works on", async () => {
    const { prefix, colony, flags } = swarm();
    const worker = startWorker(flags, "target", STEADY_LEASE_MS, "--capability", "echo");
    await online(worker);
    const raw = await connect({ servers: nats.server.url });
    try {
      const subject = `${prefix}.bus.${nodeSubject("target")}`;
      raw.publish(subject, "{ not json");
      raw.publish(subject, JSON.stringify({ op: "explode" }));
      raw.publish(subject, JSON.stringify({ op: "info", extra: 1 }));
      raw.publish(subject, new Uint8Array(100 * 1024).fill(0x20));
      await raw.flush();
    } finally {
      await raw.close();
    }
    await waitFor(() => worker.events.filter((e) => e.type === "rejected").length === 4, PATIENCE_MS, "four rejections");
    const reasons = worker.events.filter((e) => e.type === "rejected").map((e) => (e as { reason: string }).reason).sort();
    assert.deepEqual(reasons, ["malformed", "oversized", "schema", "schema"]);
    const bus = await colony.bus();
    const info = await bus.request(nodeRequestChannel, nodeInfoChannel, nodeSubject("target"), { op: "info" }, ANSWER_MS);
    assert.deepEqual(info.bus.rejected, { oversized: 1, malformed: 1, schema: 2, handler: 0 });
    const tasks = await colony.tasks();
    const task = await tasks.submit({ kind: "echo", input: { ms: 1 } });
    assert.equal((await within(tasks.wait(task.id), "the echo task to end", PATIENCE_MS)).status, "succeeded");
    assert.equal(worker.child.exitCode, null, "still running");
  });
});
