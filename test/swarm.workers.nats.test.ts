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
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { coordinatorRole, createColony, natsBackend, nodeInfoChannel, nodeRequestChannel, nodeSubject, progressChannel, progressSubject, type Colony, type NodeInfo, type ProgressMessage, type WorkerEvent } from "../src/index.ts";
import { CLI, cliJson, runCli } from "./fixtures/cli.ts";
import { tempDir, waitFor } from "./fixtures/helpers.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

const AGENTS = fileURLToPath(new URL("./fixtures/worker-agents.ts", import.meta.url));
/** Files whose existence lets the gated agents end (see test/fixtures/worker-agents.ts). */
const gates = tempDir("colony-swarm-gates-");
after(() => gates.dispose());
const LEASE_MS = 1000;

const nats = natsServerPerFile();
const children = new Set<ChildProcess>();
const colonies: Colony[] = [];

afterEach(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await Promise.all([...children].map((c) => (c.exitCode === null && c.signalCode === null ? once(c, "exit") : undefined)));
  children.clear();
  for (const c of colonies.splice(0)) await c.close();
});
after(() => {
  for (const child of children) child.kill("SIGKILL");
});

function swarm() {
  const prefix = `w${randomUUID().slice(0, 8)}`;
  const colony = createColony({ backend: natsBackend({ servers: nats.server.url, prefix }) });
  colonies.push(colony);
  const flags = ["--nats", nats.server.url, "--nats-prefix", prefix];
  return { prefix, colony, flags };
}

interface WorkerProcess {
  id: string;
  child: ChildProcess;
  events: (WorkerEvent & { worker?: string })[];
  exited: Promise<number | null>;
}

function startWorker(flags: string[], id: string, ...extra: string[]): WorkerProcess {
  const child = spawn(process.execPath, [CLI, "worker", "--agents", AGENTS, "--id", id, "--lease-ms", String(LEASE_MS), "--json", ...flags, ...extra], { stdio: ["ignore", "pipe", "pipe"] });
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

const online = (w: WorkerProcess) => waitFor(() => w.events.some((e) => e.type === "online"), 15_000, `${w.id} online`);
const leading = (w: WorkerProcess) => w.events.filter((e) => e.type === "coordinator").at(-1)?.type === "coordinator" && (w.events.filter((e) => e.type === "coordinator").at(-1) as { leading: boolean }).leading;

describe("colony worker swarm on NATS", { timeout: 90_000 }, () => {
  test("nodes and status show the workers, the coordinator and the queue; progress reaches the bus; nodes drain stops a worker", async () => {
    const { colony, flags } = swarm();
    const a = startWorker(flags, "node-a", "--capability", "chatty,echo", "--concurrency", "2");
    const b = startWorker(flags, "node-b", "--capability", "echo");
    await Promise.all([online(a), online(b)]);
    const coordinator = await waitFor(() => [a, b].find(leading), 10_000, "a coordinator");

    const tasks = await colony.tasks();
    const bus = await colony.bus();
    const progress: ProgressMessage[] = [];
    bus.subscribe(progressChannel, progressSubject("default"), (m) => void progress.push(m));
    await sleep(100);
    // Every task here holds its slot until the test opens its gate, however slow a loaded machine
    // is to start the CLI: else node-a could take a second echo and leave none pending.
    const [chattyGate, echoGate] = [join(gates.path, "chatty.go"), join(gates.path, "echo.go")];
    const task = await tasks.submit({ kind: "chatty", input: { steps: 30, ms: 50, gate: chattyGate } });
    await waitFor(() => progress.length >= 3, 10_000, "progress on the bus");
    assert.deepEqual(progress.slice(0, 3).map((p) => [p.task, p.worker, p.event.type, (p.event as { data?: { i: number } }).data?.i]), [
      [task.id, "node-a", "emit", 1],
      [task.id, "node-a", "emit", 2],
      [task.id, "node-a", "emit", 3],
    ]);

    const nodes = await cli<{ id: string; status: string; capabilities: string[]; runningTasks: string[]; coordinator: boolean; heartbeatAt: number }[]>(flags, "nodes");
    assert.deepEqual(nodes.map((n) => [n.id, n.status, n.capabilities, n.runningTasks, n.coordinator]).sort(), [
      ["node-a", "online", ["chatty", "echo"], [task.id], coordinator.id === "node-a"],
      ["node-b", "online", ["echo"], [], coordinator.id === "node-b"],
    ]);
    await tasks.submitAll([{ kind: "echo", input: { gate: echoGate } }, { kind: "echo", input: { gate: echoGate } }, { kind: "echo", input: { gate: echoGate } }, { kind: "alpha" }]);
    const status = await waitFor(async () => {
      const s = await cli<{ coordinator: string; queue: Record<string, { pending: number; running: number }>; running: { id: string }[]; workers: Record<string, number> }>(flags, "status");
      return s.running.length === 3 && s;
    }, 10_000, "three running tasks");
    assert.equal(status.coordinator, coordinator.id);
    assert.deepEqual(status.queue.alpha, { pending: 1, blocked: 0, running: 0 }, "nobody offers alpha");
    assert.equal(status.queue.echo!.pending, 1);
    assert.deepEqual(status.workers, { online: 0, busy: 2, draining: 0, offline: 0, stopped: 0 });

    const info: NodeInfo = await bus.request(nodeRequestChannel, nodeInfoChannel, nodeSubject("node-b"), { op: "info" });
    assert.equal(info.status, "busy");
    assert.equal(info.running.length, 1);
    writeFileSync(echoGate, "");
    writeFileSync(chattyGate, "");
    const drained = await cli<NodeInfo>(flags, "nodes", "drain", "node-b");
    assert.equal(drained.id, "node-b");
    assert.equal(await b.exited, 0, "node-b finished its task and exited");
    assert.ok(b.events.some((e) => e.type === "succeeded"), "it finished what it held");
    assert.equal((await tasks.wait(task.id)).result, 30);
  });

  test("submit --wait shows what the task's agent emits, from the worker's progress on the bus", async () => {
    const { flags } = swarm();
    const worker = startWorker(flags, "emitter", "--capability", "chatty");
    await online(worker);
    const { code, stdout, stderr } = await runCli(["submit", "chatty", "--input", JSON.stringify({ steps: 3, ms: 100 }), "--wait", ...flags], { timeoutMs: 30_000 });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /succeeded/);
    const emitted = stderr.split("\n").filter((l) => /emitted step/.test(l));
    assert.deepEqual(emitted.map((l) => /"i":(\d)/.exec(l)?.[1]), ["1", "2", "3"], stderr);
  });

  test("kill -9 the coordinator's worker: another worker is coordinator within two lease periods", async () => {
    const { colony, flags } = swarm();
    const workers = ["k1", "k2", "k3"].map((id) => startWorker(flags, id, "--capability", "echo"));
    await Promise.all(workers.map(online));
    const first = await waitFor(() => workers.find(leading), 10_000, "a coordinator");
    assert.equal(await colony.leader(coordinatorRole("default")), first.id);
    await sleep(LEASE_MS);
    const killedAt = Date.now();
    first.child.kill("SIGKILL");
    const second = await waitFor(() => workers.find((w) => w !== first && leading(w)), 10_000, "a new coordinator");
    const after = Date.now() - killedAt;
    assert.ok(after < 2 * LEASE_MS, `a new coordinator ${after} ms after the kill`);
    assert.equal(await colony.leader(coordinatorRole("default")), second.id);
    assert.equal(workers.filter((w) => w !== first && leading(w)).length, 1, "one coordinator among the survivors");
  });

  test("a coordinator paused past its lease (SIGSTOP) is replaced, and on waking steps down without leading again", async () => {
    const { flags } = swarm();
    const workers = ["p1", "p2"].map((id) => startWorker(flags, id, "--capability", "echo"));
    await Promise.all(workers.map(online));
    const paused = await waitFor(() => workers.find(leading), 10_000, "a coordinator");
    const other = workers.find((w) => w !== paused)!;
    paused.child.kill("SIGSTOP");
    await waitFor(() => leading(other), 3 * LEASE_MS, "the other worker to take over");
    const seen = paused.events.length;
    paused.child.kill("SIGCONT");
    const stepDown = await waitFor(() => paused.events.slice(seen).find((e) => e.type === "coordinator"), 5000, "the woken coordinator to step down");
    assert.deepEqual([stepDown.type, (stepDown as { leading: boolean }).leading], ["coordinator", false]);
    await sleep(2 * LEASE_MS);
    assert.equal(leading(paused), false, "it never led again");
    assert.equal(leading(other), true);
  });

  test("malformed JSON, wrong schema and oversized messages on Colony subjects are rejected and counted; the worker works on", async () => {
    const { prefix, colony, flags } = swarm();
    const worker = startWorker(flags, "target", "--capability", "echo");
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
    await waitFor(() => worker.events.filter((e) => e.type === "rejected").length === 4, 10_000, "four rejections");
    const reasons = worker.events.filter((e) => e.type === "rejected").map((e) => (e as { reason: string }).reason).sort();
    assert.deepEqual(reasons, ["malformed", "oversized", "schema", "schema"]);
    const bus = await colony.bus();
    const info = await bus.request(nodeRequestChannel, nodeInfoChannel, nodeSubject("target"), { op: "info" });
    assert.deepEqual(info.bus.rejected, { oversized: 1, malformed: 1, schema: 2, handler: 0 });
    const tasks = await colony.tasks();
    const task = await tasks.submit({ kind: "echo", input: { ms: 1 } });
    assert.equal((await tasks.wait(task.id)).status, "succeeded");
    assert.equal(worker.child.exitCode, null, "still running");
  });
});
