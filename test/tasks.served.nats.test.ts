/**
 * Thin workers on NATS (src/runtime/tasks/served.ts): the coordinator folds the task board and
 * does the workers' operations for them; a worker with nobody to ask, or with a message too large
 * for the bus, does them on its own board. The protocol in one process first (two connections),
 * then real `colony worker` processes: the log followed by the coordinator alone, the coordinator
 * killed with -9 mid-run, and a cancel reaching a thin worker's agent through its stale notice.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { natsNames } from "../src/backends/nats/names.ts";
import { ColonyError } from "../src/core/errors.ts";
import { StaleTaskError } from "../src/core/tasks.ts";
import { createColony, natsBackend, type Colony, type Task, type WorkerEvent } from "../src/index.ts";
import { opsSubject, serveBoard, ServedBoard } from "../src/runtime/tasks/served.ts";
import { CLI } from "./fixtures/cli.ts";
import { tempDir, waitFor } from "./fixtures/helpers.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

const AGENTS = fileURLToPath(new URL("./fixtures/worker-agents.ts", import.meta.url));
const gates = tempDir("colony-served-gates-");
after(() => gates.dispose());

const nats = natsServerPerFile();
const children = new Set<ChildProcess>();
const colonies: Colony[] = [];
const stops: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await Promise.all([...children].map((c) => (c.exitCode === null && c.signalCode === null ? once(c, "exit") : undefined)));
  children.clear();
  for (const c of colonies.splice(0)) await c.close();
});

function colonyOn(prefix: string): Colony {
  const colony = createColony({ backend: natsBackend({ servers: nats.server.url, prefix }) });
  colonies.push(colony);
  return colony;
}

/** A coordinator serving the board from one connection, and a thin client on another. */
async function servedPair() {
  const prefix = `v${randomUUID().slice(0, 8)}`;
  const [coordinator, thin] = [colonyOn(prefix), colonyOn(prefix)];
  const board = await coordinator.tasks();
  const bus = await coordinator.bus();
  const errors: string[] = [];
  const stop = serveBoard(board, bus, { error: (error) => errors.push(error) });
  stops.push(stop);
  const local = await thin.tasks();
  const client = new ServedBoard(local, await thin.bus(), { leading: () => false, timeoutMs: 2000, holding: () => [] });
  return {
    prefix,
    board,
    bus,
    client,
    errors,
    stopServing: () => stop(),
  };
}

const claimOf = (worker: string, max = 1) => ({ worker, capabilities: ["echo"], leaseMs: 30_000, max });

describe("the served protocol", { timeout: 60_000 }, () => {
  test("claims, heartbeats and completions go through the coordinator; a stale one comes back as StaleTaskError", async () => {
    const { board, bus, client } = await servedPair();
    const submitted = await board.submit({ kind: "echo", input: { n: 1 } });
    const asked = bus.stats().received;

    const [claimed] = await client.claimMany(claimOf("thin-1"));
    assert.equal(claimed?.id, submitted.id);
    assert.deepEqual(claimed.input, { n: 1 }, "a claim carries the task's input");
    assert.equal(claimed.owner, "thin-1");
    const beat = await client.heartbeat(claimed.id, { generation: claimed.generation });
    assert.equal(beat.generation, claimed.generation);

    const stale = await client.heartbeat(claimed.id, { generation: claimed.generation - 1 }).then(
      () => assert.fail("a heartbeat of a generation that is gone was taken"),
      (error: unknown) => error,
    );
    assert.ok(stale instanceof StaleTaskError, `got ${String(stale)}`);
    assert.deepEqual([stale.taskId, stale.generation, stale.actualGeneration, stale.status, stale.owner], [claimed.id, claimed.generation - 1, claimed.generation, "claimed", "thin-1"]);

    const { task, claimed: next } = await client.completeAndClaim(claimed.id, { echoed: 1 }, { generation: claimed.generation }, claimOf("thin-1"));
    assert.equal(task.status, "succeeded");
    assert.deepEqual(next, []);
    assert.deepEqual((await board.get(claimed.id))?.result, { echoed: 1 });
    assert.equal(bus.stats().received - asked, 4, "each operation was one request to the coordinator");
    await assert.rejects(client.completeAndClaim(claimed.id, { echoed: 2 }, { generation: claimed.generation }), StaleTaskError, "recorded once");
  });

  test("what the board refuses comes back typed; a request that is not one is dropped, counted, and the next is served", async () => {
    const { bus, client, prefix } = await servedPair();
    const refused = await client.claimMany({ ...claimOf("thin-1"), leaseMs: -5 }).then(
      () => assert.fail("a claim with a negative lease was taken"),
      (error: unknown) => error,
    );
    assert.ok(refused instanceof ColonyError && refused.code === "INVALID_TASK", `got ${String(refused)}`);

    const nc = await connect({ servers: nats.server.url });
    try {
      const subject = `${natsNames(prefix).bus}${opsSubject("default")}`;
      for (const payload of ["not json", JSON.stringify({ op: "claim" }), JSON.stringify({ op: "drop-table" })]) {
        await assert.rejects(nc.request(subject, payload, { timeout: 300 }), "no answer to a malformed request");
      }
    } finally {
      await nc.close();
    }
    assert.deepEqual([bus.stats().rejected.malformed, bus.stats().rejected.schema], [1, 2]);
    assert.deepEqual(await client.claimMany(claimOf("thin-1")), [], "served as before");
  });

  test("with nobody serving, or a task too large for the bus, the worker does it on its own board", async () => {
    const { board, bus, client, stopServing } = await servedPair();
    // Over the coordinator's bus limit (64 KiB), well under what the board stores.
    const big = "x".repeat(100 * 1024);
    const [large, small] = await board.submitAll([
      { kind: "echo", input: big, priority: 9 },
      { kind: "echo", input: "small" },
    ]);
    // The coordinator claims both, cannot send the first, hands both back; the worker claims them itself.
    const claims = await client.claimMany(claimOf("thin-1", 2));
    assert.deepEqual(
      claims.map((t) => [t.id, t.owner, t.attempts]),
      [large, small].map((t) => [t!.id, "thin-1", 0]),
    );
    const [claimed, other] = claims as [Task, Task];
    assert.equal(claimed.input, big);

    const done = await client.completeAndClaim(claimed.id, big, { generation: claimed.generation });
    assert.equal(done.task.status, "succeeded");
    assert.equal((await board.wait(claimed.id)).result, big);
    assert.equal((await client.get(claimed.id))?.result, big, "a task too large for the bus is read from the board");

    await stopServing();
    const asked = bus.stats().received;
    await client.completeAndClaim(other.id, "done alone", { generation: other.generation });
    const [third] = await board.submitAll([{ kind: "echo", input: 3 }]);
    assert.equal((await client.claimMany(claimOf("thin-2")))[0]?.id, third!.id);
    assert.equal(bus.stats().received, asked, "nobody was asked");
    assert.equal((await board.wait(other.id)).result, "done alone");
  });
});

interface WorkerProcess {
  id: string;
  child: ChildProcess;
  events: WorkerEvent[];
}

function startWorker(flags: string[], id: string, ...extra: string[]): WorkerProcess {
  const child = spawn(process.execPath, [CLI, "worker", "--agents", AGENTS, "--id", id, "--capability", "echo", "--json", ...flags, ...extra], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const events: WorkerEvent[] = [];
  let pending = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) if (line.trim()) events.push(JSON.parse(line) as WorkerEvent);
  });
  child.stderr!.resume();
  return { id, child, events };
}

const leads = (w: WorkerProcess) => (w.events.filter((e) => e.type === "coordinator").at(-1) as { leading?: boolean } | undefined)?.leading === true;
const ran = (w: WorkerProcess) => w.events.filter((e) => e.type === "succeeded").length;

function swarmOf(count: number, ...extra: string[]) {
  const prefix = `v${randomUUID().slice(0, 8)}`;
  const colony = colonyOn(prefix);
  const flags = ["--nats", nats.server.url, "--nats-prefix", prefix];
  const workers = Array.from({ length: count }, (_, i) => startWorker(flags, `thin-${i + 1}`, ...extra));
  return { prefix, colony, workers };
}

describe("thin worker processes", { timeout: 120_000 }, () => {
  test("only the coordinator follows the task log; every task is done once, by every worker", async () => {
    const { prefix, colony, workers } = swarmOf(3, "--concurrency", "4", "--lease-ms", "2000");
    await waitFor(() => workers.every((w) => w.events.some((e) => e.type === "online")), 30_000, "the workers online");
    await waitFor(() => workers.some(leads), 30_000, "a coordinator");
    const tasks = await colony.tasks();
    const submitted = await tasks.submitAll(Array.from({ length: 300 }, (_, n) => ({ kind: "echo", input: { n, ms: 5 } })));
    const ended = await Promise.all(submitted.map((task) => tasks.wait(task.id)));
    assert.deepEqual(
      ended.map((t) => [t.status, t.attempts, (t.result as { input: { n: number } }).input.n]),
      submitted.map((_, n) => ["succeeded", 0, n]),
    );
    // A worker prints its event once the board has the result: the last lines may be on their way.
    await waitFor(() => workers.reduce((sum, w) => sum + ran(w), 0) >= 300, 30_000, "every success reported");
    assert.equal(workers.reduce((sum, w) => sum + ran(w), 0), 300, "each task ran once");
    assert.ok(workers.every((w) => ran(w) > 0), `every worker ran tasks: ${workers.map((w) => `${w.id} ${ran(w)}`).join(", ")}`);

    const nc = await connect({ servers: nats.server.url });
    try {
      const jsm = await jetstreamManager(nc);
      const consumers = await jsm.consumers.list(natsNames(prefix).tasks("default").stream).next();
      // The coordinator's change feed, and this process's if its waits' has yet to go: none for the thin workers.
      assert.ok(consumers.length <= 2, `consumers on the task log: ${consumers.map((c) => c.name).join(", ")}`);
    } finally {
      await nc.close();
    }
  });

  test("kill -9 of the coordinator mid-run: another takes over, and every task is done once", async () => {
    // A thin worker's lease outlasts a failover: an answer lost with the coordinator is given up
    // after half a heartbeat's interval (a sixth of the lease), and the worker then does it itself.
    const { colony, workers } = swarmOf(3, "--concurrency", "4", "--lease-ms", "3000");
    await waitFor(() => workers.every((w) => w.events.some((e) => e.type === "online")), 30_000, "the workers online");
    const first = await waitFor(() => workers.find(leads), 30_000, "a coordinator");
    const tasks = await colony.tasks();
    const submitted = await tasks.submitAll(Array.from({ length: 200 }, (_, n) => ({ kind: "echo", input: { n, ms: 20 } })));
    await waitFor(() => workers.reduce((sum, w) => sum + ran(w), 0) >= 40, 60_000, "40 tasks done");
    first.child.kill("SIGKILL");
    const rest = workers.filter((w) => w !== first);
    await waitFor(() => rest.some(leads), 30_000, "a new coordinator");

    const ended = await Promise.all(submitted.map((task) => tasks.wait(task.id)));
    assert.deepEqual(
      ended.map((t) => [t.status, (t.result as { input: { n: number } }).input.n]),
      submitted.map((_, n) => ["succeeded", n]),
    );
    // A task is retried only because the killed worker held it when it died.
    for (const task of ended) for (const failure of task.failures) assert.deepEqual([failure.kind, failure.worker], ["lease", first.id], `${task.id}: ${JSON.stringify(failure)}`);
    assert.ok(rest.every((w) => !w.events.some((e) => e.type === "stale")), "the survivors lost no claim to the failover");
  });

  test("a cancel reaches a thin worker's agent through its stale notice, not its next heartbeat", async () => {
    // Leases of a minute: a heartbeat would come only after 5 s.
    const { colony, workers } = swarmOf(2, "--lease-ms", "60000");
    await waitFor(() => workers.every((w) => w.events.some((e) => e.type === "online")), 30_000, "the workers online");
    const coordinator = await waitFor(() => workers.find(leads), 30_000, "a coordinator");
    const thin = workers.find((w) => w !== coordinator)!;
    const tasks = await colony.tasks();
    const gate = join(gates.path, `${randomUUID()}.go`);
    // Direct to the thin worker, so that it and not the coordinator runs it.
    const task: Task = await tasks.submit({ kind: "echo", input: { gate }, route: { mode: "direct", worker: thin.id } });
    await waitFor(() => thin.events.some((e) => e.type === "claimed" && e.task === task.id), 30_000, "the thin worker to claim it");
    await tasks.cancel(task.id);
    const stale = await waitFor(() => thin.events.find((e) => e.type === "stale" && e.task === task.id), 30_000, "the stale event");
    assert.match((stale as { error: string }).error, /is cancelled now/);
    writeFileSync(gate, "");
    assert.equal((await tasks.wait(task.id)).status, "cancelled");
    assert.ok(!thin.events.some((e) => e.type === "succeeded" && e.task === task.id), "its outcome was not recorded");
  });
});
