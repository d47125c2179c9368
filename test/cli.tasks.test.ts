import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createColony, sqliteBackend, type Task, type WorkerInfo } from "../src/index.ts";
import { CLI, cliJson, runCli, type CliOptions } from "./fixtures/cli.ts";

const AGENTS = fileURLToPath(new URL("./fixtures/subagents.ts", import.meta.url));

let dir: string;
let db: string;
const children = new Set<ChildProcess>();
/** Each run is a fresh Node: a compile cache shared by this file's runs saves most of their start-up. */
let env: NodeJS.ProcessEnv;

/** This file's CLI runs: in its directory, with its compile cache, 20 s at most. */
const on = (): CliOptions => ({ cwd: dir, env, timeoutMs: 20_000 });
/** Runs the CLI to its end; independent runs go at once (each is a Node start-up). */
const colony = (...args: string[]) => runCli(args, on());
const json = <T>(...args: string[]) => cliJson<T>([...args, "--db", db, "--json"], on());

/** A long-running CLI command, its output collected as it comes. */
function start(...args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const out = { stdout: "", stderr: "" };
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out.stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (out.stderr += chunk));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  /** Resolves once `pattern` shows in the stream; fails if the process exits first or after `ms`. */
  const until = async (stream: "stdout" | "stderr", pattern: RegExp, ms = 10_000): Promise<void> => {
    for (const end = Date.now() + ms; !pattern.test(out[stream]); ) {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode} before ${pattern}: ${out.stderr}`);
      if (Date.now() > end) throw new Error(`no ${pattern} on ${stream} within ${ms} ms:\n${out.stdout}\n${out.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  return { child, out, exited, until };
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, "exit");
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  const [code] = await exited;
  clearTimeout(timer);
  children.delete(child);
  return code as number | null;
}

const oneLine = (stderr: string) => stderr.trimEnd().split("\n");

before(() => {
  dir = mkdtempSync(join(tmpdir(), "colony-cli-tasks-"));
  db = join(dir, "tasks.db");
  env = { ...process.env, NODE_COMPILE_CACHE: join(dir, "compile-cache") };
});

after(async () => {
  for (const child of children) await stop(child, "SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("colony submit, tasks, task and cancel (no worker)", async () => {
  let first: string;

  test("submit prints the id and status and hints that no worker offers the kind; tasks shows it under PENDING", async () => {
    const submitted = await colony("submit", "research", "--input", '{"q":"ants"}', "--priority", "-2", "--db", db);
    assert.equal(submitted.code, 0, submitted.stderr);
    const match = /^(t-\d+) pending$/.exec(submitted.stdout.trim());
    assert.ok(match, submitted.stdout);
    first = match[1]!;
    assert.match(submitted.stderr, /hint: no live worker offers "research"; the task waits for one .*worker --agents FILE --capability research/);

    const board = await colony("tasks", "--db", db);
    assert.equal(board.code, 0, board.stderr);
    const lines = board.stdout.split("\n");
    const sections = ["PENDING (1)", "BLOCKED (0)", "CLAIMED (0)", "SUCCEEDED (0)", "FAILED (0)", "DEAD (0)", "CANCELLED (0)"];
    assert.deepEqual(
      lines.filter((l) => /^[A-Z]+ \(\d+\)$/.test(l)),
      sections,
      "one section per status, in order, with its count",
    );
    const row = lines[lines.indexOf("PENDING (1)") + 1]!;
    assert.match(row, new RegExp(`^  ${first} +research +-2 +0/3 +- +\\d+(ms|s) +input \\{"q":"ants"\\}$`));
    assert.match(lines[1]!, /^ {2}ID +KIND +PRIO +TRIES +WORKER +AGE +DETAIL$/);
  });

  test("--json shapes: submit prints the task, tasks the array, task one task in full", async () => {
    const blocked = await json<Task>("submit", "write", "--depends-on", first, "--max-attempts", "5", "--timeout-ms", "900", "--idempotency-key", "w-1");
    assert.equal(blocked.kind, "write");
    assert.equal(blocked.status, "blocked");
    assert.deepEqual(blocked.dependsOn, [first]);
    assert.equal(blocked.maxAttempts, 5);
    assert.equal(blocked.timeoutMs, 900);
    assert.deepEqual(blocked.route, { mode: "any" });

    const [again, all, onlyBlocked, none, one, text] = await Promise.all([
      colony("submit", "write", "--idempotency-key", "w-1", "--db", db),
      json<Task[]>("tasks"),
      json<Task[]>("tasks", "--status", "blocked"),
      json<Task[]>("tasks", "--kind", "nothing"),
      json<Task>("task", first),
      colony("task", blocked.id, "--db", db),
    ]);
    assert.equal(again.stdout.trim(), `${blocked.id} blocked (waiting on ${first})`);
    assert.match(again.stderr, /already submitted with idempotency key "w-1"/);
    assert.deepEqual(
      all.map((t) => [t.id, t.status]),
      [
        [first, "pending"],
        [blocked.id, "blocked"],
      ],
    );
    assert.deepEqual(
      onlyBlocked.map((t) => t.id),
      [blocked.id],
    );
    assert.deepEqual(none, []);
    assert.equal(one.id, first);
    assert.deepEqual(one.input, { q: "ants" });
    assert.deepEqual(one.failures, []);

    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^task ${blocked.id} \\(write\\): blocked$`, "m"));
    assert.match(text.stdout, new RegExp(`^  depends on  ${first}$`, "m"));
    assert.match(text.stdout, /^ {2}timeout {5}900 ms per attempt$/m);
    assert.match(text.stdout, /^ {2}failures {4}none$/m);
  });

  test("bad --input, bad --route, an unknown status and an unknown task id are exit 2 with one line", async () => {
    const [input, route, direct, status, task, cancel, parent] = await Promise.all([
      colony("submit", "research", "--input", "{q: ants}", "--db", db),
      colony("submit", "research", "--route", "sideways", "--db", db),
      colony("submit", "research", "--route", "direct:nobody", "--db", db),
      colony("tasks", "--status", "sleeping", "--db", db),
      colony("task", "t-999", "--db", db),
      colony("cancel", "t-999", "--db", db),
      colony("submit", "research", "--parent", "t-999", "--db", db),
    ]);
    assert.equal(input.code, 2);
    assert.equal(oneLine(input.stderr).length, 1, input.stderr);
    assert.match(input.stderr, /^colony: --input is not valid JSON \(.+\)/);

    assert.equal(route.code, 2);
    assert.deepEqual(oneLine(route.stderr), ['colony: --route "sideways": expected any, direct:WORKER (a worker id from `colony workers`) or broadcast']);

    assert.equal(direct.code, 2);
    assert.match(direct.stderr, /routed to worker "nobody", which is not live/);

    assert.equal(status.code, 2);
    assert.match(status.stderr, /--status.*expected one of pending, blocked, claimed, succeeded, failed, dead, cancelled/);

    for (const missing of [task, cancel]) {
      assert.equal(missing.code, 2);
      assert.deepEqual(oneLine(missing.stderr), ['colony: task "t-999" on task board "default" not found']);
    }
    assert.equal(parent.code, 2);
    assert.match(parent.stderr, /parent "t-999" is not on the board/);
  });

  test("cancel cascades to subtasks, fails dependents, and says what it did", async () => {
    const board = ["--tasks", "cascade"];
    // The tasks are set up from here; what is under test is the command.
    const here = createColony({ backend: sqliteBackend({ path: db }) });
    let parent: Task, child: Task, grandchild: Task, dependent: Task, bystander: Task;
    try {
      const tasks = await here.tasks("cascade");
      parent = await tasks.submit({ kind: "plan" });
      bystander = await tasks.submit({ kind: "plan" });
      child = await tasks.submit({ kind: "step", parentId: parent.id });
      grandchild = await tasks.submit({ kind: "step", parentId: child.id });
      dependent = await tasks.submit({ kind: "report", dependsOn: [child.id] });
    } finally {
      await here.close();
    }

    const result = await json<{ task: Task; cancelled: Task[]; failed: Task[] }>("cancel", parent.id, ...board);
    assert.equal(result.task.status, "cancelled");
    assert.deepEqual(result.cancelled.map((t) => t.id).sort(), [parent.id, child.id, grandchild.id].sort());
    assert.deepEqual(
      result.failed.map((t) => [t.id, t.reason]),
      [[dependent.id, `dependency ${child.id} was cancelled`]],
    );

    const [tasks, again, text] = await Promise.all([
      json<Task[]>("tasks", ...board),
      colony("cancel", parent.id, ...board, "--db", db),
      colony("cancel", bystander.id, ...board, "--db", db),
    ]);
    const statuses = Object.fromEntries(tasks.map((t) => [t.id, t.status]));
    assert.equal(statuses[grandchild.id], "cancelled");
    assert.equal(statuses[dependent.id], "failed");
    assert.equal(again.code, 2);
    assert.deepEqual(oneLine(again.stderr), [`colony: task ${parent.id} (plan) has already ended: cancelled; nothing to cancel`]);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout.trim(), `cancelled ${bystander.id} (plan), was pending`);

    const kanban = (await colony("tasks", ...board, "--db", db)).stdout;
    assert.match(kanban, /^CANCELLED \(4\)$/m);
    assert.match(kanban, /^FAILED \(1\)$/m);
  });
});

describe("colony workers, submit --wait and tasks --watch (with a worker process)", async () => {
  const board = ["--tasks", "live"];
  let worker: ReturnType<typeof start>;

  before(async () => {
    worker = start("worker", "--db", db, ...board, "--agents", AGENTS, "--capability", "echo,thrower", "--id", "cli-w1", "--concurrency", "2");
    await worker.until("stdout", /worker cli-w1 online/);
  });

  after(async () => {
    const code = await stop(worker.child, "SIGTERM");
    assert.equal(code, 0, worker.out.stderr);
    assert.match(worker.out.stdout, /stopped/);
  });

  test("workers lists the worker with its capabilities, load, pid and heartbeat; a silent one shows offline", async () => {
    // One registered from here, whose heartbeats then stop.
    const here = createColony({ backend: sqliteBackend({ path: db }) });
    try {
      await (await here.tasks("live")).heartbeatWorker({ id: "ghost", capabilities: ["echo"], concurrency: 3, running: 0, status: "online", pid: 1, host: "elsewhere", local: false, ttlMs: 1 });
    } finally {
      await here.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 20));

    const [workers, text] = await Promise.all([json<WorkerInfo[]>("workers", ...board), colony("workers", ...board, "--db", db)]);
    const info = workers.find((w) => w.id === "cli-w1");
    assert.ok(info, JSON.stringify(workers));
    assert.equal(info.status, "online");
    assert.deepEqual(info.capabilities, ["echo", "thrower"]);
    assert.equal(info.concurrency, 2);
    assert.equal(info.pid, worker.child.pid);
    assert.equal(info.local, false);
    assert.equal(workers.find((w) => w.id === "ghost")?.status, "offline");

    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trimEnd().split("\n");
    assert.match(lines[0]!, /^ID +STATUS +CAPABILITIES +LOAD +PID +HOST +HEARTBEAT +LOCAL$/);
    assert.ok(lines.some((l) => new RegExp(`^cli-w1 +online +echo,thrower +0/2 +${worker.child.pid} +\\S+ +\\d+(ms|s) ago +no$`).test(l)), text.stdout);
    assert.ok(lines.some((l) => /^ghost +offline +echo +0\/3 +1 +elsewhere +\d+(ms|s) ago +no$/.test(l)), text.stdout);
  });

  test("workers --prune forgets the workers that no longer serve and keeps the live ones", async () => {
    const pruned = await colony("workers", ...board, "--prune", "--db", db);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.match(pruned.stdout, /^forgot 1 worker\(s\) that no longer serve: ghost$/m);
    const ids = (await json<WorkerInfo[]>("workers", ...board)).map((w) => w.id);
    assert.ok(ids.includes("cli-w1") && !ids.includes("ghost"), ids.join(", "));
  });

  test("submit --wait prints the result and shows progress on stderr; a task that fails exits 1", async () => {
    const [done, failed] = await Promise.all([
      colony("submit", "echo", "--input", '{"n":7}', "--wait", ...board, "--db", db),
      colony("submit", "thrower", "--input", '{"message":"no dice"}', "--max-attempts", "1", "--wait", "--json", ...board, "--db", db),
    ]);
    assert.equal(done.code, 0, done.stderr);
    assert.doesNotMatch(done.stderr, /hint: no live worker/);
    assert.match(done.stdout, /^t-\d+ succeeded \([\d.]+ s, 1 attempt\(s\)\)$/m);
    assert.match(done.stdout, /"n": 7/);
    assert.match(done.stderr, /waiting for t-\d+ \(echo, /);
    // Claimed as it was submitted (pushed to the idle worker), or after.
    assert.match(done.stderr, /(→ |, )claimed by cli-w1 \(attempt 1 of 3\)/);
    assert.match(done.stderr, /claimed → succeeded/);

    assert.equal(failed.code, 1, failed.stderr);
    const task = JSON.parse(failed.stdout) as Task;
    assert.equal(task.status, "dead");
    assert.equal(task.failures.length, 1);
    assert.equal(task.failures[0]!.worker, "cli-w1");
    assert.match(task.failures[0]!.error, /no dice/);
  });

  test("tasks --watch prints the board, then a line per change made elsewhere, until SIGINT", async () => {
    const text = start("tasks", "--watch", ...board, "--db", db);
    const events = start("tasks", "--watch", "--json", ...board, "--db", db);
    await text.until("stderr", /watching task board "live"/);
    await events.until("stderr", /watching task board "live"/);
    assert.match(text.out.stdout, /^SUCCEEDED \(1\)$/m, "the board as it was");
    assert.equal(events.out.stdout, "", "--json prints changes only");

    const submitted = await colony("submit", "echo", "--input", '{"watched":true}', ...board, "--db", db);
    assert.equal(submitted.code, 0, submitted.stderr);
    const id = submitted.stdout.split(" ")[0]!;
    await text.until("stdout", new RegExp(`^[\\d:.]+ ${id} succeeded \\(echo\\)  result .*"watched":true`, "m"));
    assert.match(text.out.stdout, new RegExp(`^[\\d:.]+ ${id} submitted → pending \\(echo\\)`, "m"));
    assert.match(text.out.stdout, new RegExp(`^[\\d:.]+ ${id} claimed \\(echo\\) by cli-w1, attempt 1 of 3`, "m"));
    // The counts go to stderr right after the line on stdout, through a pipe of their own.
    await text.until("stderr", /3 tasks: pending 0 · blocked 0 · claimed 0 · succeeded 2 · failed 0 · dead 1 · cancelled 0/);

    await events.until("stdout", /"type":"succeeded"/);
    const lines = events.out.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as { seq: number; type: string; task: Task });
    assert.deepEqual(
      lines.map((e) => [e.type, e.task.id]),
      [
        ["submitted", id],
        ["claimed", id],
        ["succeeded", id],
      ],
    );
    assert.ok(lines.every((e, i) => i === 0 || e.seq > lines[i - 1]!.seq));

    assert.equal(await stop(text.child, "SIGINT"), 0, text.out.stderr);
    assert.equal(await stop(events.child, "SIGTERM"), 0, events.out.stderr);
  });
});
