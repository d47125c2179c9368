/**
 * The TaskBoard contract on SQLite, and what only a file shared by processes can show: several
 * processes claiming from one board at once, and a claimer killed with SIGKILL.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { afterEach, beforeEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createColony, sqliteBackend, StaleTaskError, type Colony, type TaskBoard, type TaskEvent } from "../src/index.ts";
import { taskBoardContract } from "./contract/tasks.ts";
import { tempDir, waitFor } from "./fixtures/helpers.ts";

const CLAIMER = fileURLToPath(new URL("./fixtures/task-claimer.ts", import.meta.url));
const CHILD_TIMEOUT_MS = 30_000;

taskBoardContract("sqlite", async (options = {}) => {
  const dir = tempDir("colony-tasks-sqlite-");
  const colony = createColony({ backend: sqliteBackend({ path: join(dir.path, "colony.db"), pollMs: 10 }), ...options });
  return {
    colony,
    async cleanup() {
      await colony.close();
      dir.dispose();
    },
  };
});

interface Claimer {
  worker: string;
  child: ChildProcessByStdio<Writable, Readable, Readable>;
  lines: string[];
  /** Resolves with the first line starting with `prefix`. */
  line(prefix: string): Promise<string>;
  /** Resolves with the exit code or signal once the process has ended. */
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function startClaimer(path: string, board: string, worker: string, mode: "drain" | "hold" | "register", leaseMs: number): Claimer {
  const child = spawn(process.execPath, [CLAIMER, path, board, worker, mode, String(leaseMs)], { stdio: ["pipe", "pipe", "pipe"] });
  const lines: string[] = [];
  const waiters = new Set<{ prefix: string; resolve: (line: string) => void }>();
  let pending = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    const complete = pending.split("\n");
    pending = complete.pop()!;
    for (const line of complete) {
      lines.push(line);
      for (const w of waiters) {
        if (line.startsWith(w.prefix)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill("SIGKILL"), CHILD_TIMEOUT_MS);
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
  return {
    worker,
    child,
    lines,
    ended,
    line(prefix) {
      const found = lines.find((l) => l.startsWith(prefix));
      if (found) return Promise.resolve(found);
      const arrived = new Promise<string>((resolve) => waiters.add({ prefix, resolve }));
      const gone = ended.then(({ code, signal, stderr: err }) => {
        throw new Error(`${worker} ended (${code ?? signal}) before printing "${prefix}": ${err}`);
      });
      return Promise.race([arrived, gone]);
    },
  };
}

async function go(claimers: Claimer[]): Promise<void> {
  await Promise.all(claimers.map((c) => c.line("ready")));
  for (const c of claimers) c.child.stdin.write("go\n");
}

async function allEvents(tasks: TaskBoard): Promise<TaskEvent[]> {
  const head = await tasks.head();
  const events: TaskEvent[] = [];
  if (head === 0) return events;
  for await (const event of tasks.watch({ since: 0 })) {
    events.push(event);
    if (event.seq >= head) break;
  }
  return events;
}

/** `claim`, `done` and `stale` lines of a claimer as [verb, id, generation]. */
function steps(claimer: Claimer): [string, string, number][] {
  return claimer.lines
    .filter((l) => l !== "ready")
    .map((l) => {
      const [verb, id, generation] = l.split(" ");
      return [verb!, id!, Number(generation)];
    });
}

describe("TaskBoard on SQLite: several processes", { timeout: 60_000 }, () => {
  let dir: { path: string; dispose(): void };
  let path: string;
  let colony: Colony;
  let tasks: TaskBoard;
  const started: Claimer[] = [];

  beforeEach(async () => {
    dir = tempDir("colony-tasks-processes-");
    path = join(dir.path, "colony.db");
    colony = createColony({ backend: sqliteBackend({ path, pollMs: 10 }) });
    tasks = await colony.tasks("shared");
  });

  afterEach(async () => {
    for (const c of started.splice(0)) {
      if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
      await c.ended;
    }
    await colony.close();
    dir.dispose();
  });

  function claimer(worker: string, mode: "drain" | "hold" | "register", leaseMs: number): Claimer {
    const c = startClaimer(path, "shared", worker, mode, leaseMs);
    started.push(c);
    return c;
  }

  test("processes claiming at once: every task succeeds exactly once, and no claim is given twice", async (t) => {
    const count = 240;
    const submitted = await tasks.submitAll(Array.from({ length: count }, (_, i) => ({ kind: "k", input: i, priority: i % 3 })));
    const claimers = ["p1", "p2", "p3", "p4"].map((w) => claimer(w, "drain", 30_000));
    await go(claimers);
    for (const c of claimers) {
      const { code, signal, stderr } = await c.ended;
      assert.equal(code, 0, `${c.worker} exited with ${code ?? signal}: ${stderr}`);
    }

    const claims = new Map<string, string>();
    const done = new Map<string, string>();
    for (const c of claimers) {
      for (const [verb, id, generation] of steps(c)) {
        const key = `${id}@${generation}`;
        if (verb === "claim") {
          assert.equal(claims.get(key), undefined, `${key} claimed by ${claims.get(key)} and ${c.worker}`);
          claims.set(key, c.worker);
        } else {
          assert.equal(verb, "done", `${c.worker}: ${verb} ${key}`);
          assert.equal(claims.get(key), c.worker, `${c.worker} completed ${key} without claiming it`);
          assert.equal(done.get(id), undefined, `${id} completed twice`);
          done.set(id, c.worker);
        }
      }
      t.diagnostic(`${c.worker}: ${steps(c).filter(([verb]) => verb === "done").length} tasks`);
    }
    // Leases are long enough not to lapse here, so each task was claimed exactly once.
    assert.equal(claims.size, count);
    assert.equal(done.size, count);

    const final = await tasks.list();
    assert.equal(final.length, count);
    for (const task of final) {
      assert.equal(task.status, "succeeded", task.id);
      assert.equal(task.attempts, 0);
      const result = task.result as { worker: string; generation: number };
      assert.equal(result.worker, done.get(task.id));
      assert.equal(result.worker, task.owner);
      assert.equal(claims.get(`${task.id}@${result.generation}`), result.worker);
    }
    assert.deepEqual(final.map((t) => t.id).sort(), submitted.map((t) => t.id).sort());

    const events = await allEvents(tasks);
    assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
    assert.equal(events.filter((e) => e.type === "claimed").length, count);
    const succeeded = events.filter((e) => e.type === "succeeded").map((e) => e.task.id);
    assert.equal(succeeded.length, count);
    assert.equal(new Set(succeeded).size, count);
  });

  test("a claimer killed with SIGKILL: after its lease the task is pending with attempts 1, and another completes it once", async () => {
    const task = await tasks.submit({ kind: "k", input: "survive", backoff: { baseMs: 0, maxMs: 0 } });
    const victim = claimer("victim", "hold", 300);
    await go([victim]);
    const [, id, generation] = (await victim.line("claim ")).split(" ");
    assert.equal(id, task.id);
    victim.child.kill("SIGKILL");
    assert.equal((await victim.ended).signal, "SIGKILL");

    const lapsed = await waitFor(async () => {
      const now = await tasks.get(task.id);
      return now?.status === "pending" && now;
    }, 10_000, "the dead claimer's lease to lapse");
    assert.equal(lapsed.attempts, 1);
    assert.equal(lapsed.owner, undefined);
    assert.deepEqual(lapsed.failures.map((f) => [f.attempt, f.kind, f.worker]), [[1, "lease", "victim"]]);

    const rescue = await tasks.claim({ worker: "rescuer", capabilities: ["k"], leaseMs: 30_000 });
    assert.ok(rescue);
    assert.equal(rescue.id, task.id);
    await assert.rejects(tasks.complete(task.id, "from the dead", { generation: Number(generation) }), StaleTaskError);
    const done = await tasks.complete(task.id, "rescued", { generation: rescue.generation });
    assert.equal(done.status, "succeeded");
    assert.equal(done.result, "rescued");
    await assert.rejects(tasks.complete(task.id, "from the dead", { generation: Number(generation) }), StaleTaskError);

    const events = await allEvents(tasks);
    assert.deepEqual(
      events.map((e) => [e.type, e.task.owner]),
      [
        ["submitted", undefined],
        ["claimed", "victim"],
        ["released", undefined],
        ["claimed", "rescuer"],
        ["succeeded", "rescuer"],
      ],
    );
  });

  test("a registered worker killed with SIGKILL loses its claim when its heartbeats stop, not at its lease's end", async () => {
    const task = await tasks.submit({ kind: "k", backoff: { baseMs: 0, maxMs: 0 } });
    const victim = claimer("victim", "register", 1000);
    await go([victim]);
    await victim.line("claim ");
    victim.child.kill("SIGKILL");
    await victim.ended;
    const claimedEvent = (await allEvents(tasks)).find((e) => e.type === "claimed");
    assert.equal(claimedEvent?.task.owner, "victim");
    assert.equal(claimedEvent.task.leaseMs, 600_000, "claimed under a ten-minute lease");

    // Well within the lease: only the registry's ttl can free it.
    const lapsed = await waitFor(async () => {
      const now = await tasks.get(task.id);
      return now?.status === "pending" && now;
    }, 10_000, "the silent worker to be marked offline");
    assert.equal(lapsed.attempts, 1);
    assert.equal(lapsed.failures[0]!.worker, "victim");
    assert.match(lapsed.failures[0]!.error, /offline/);
    assert.deepEqual((await tasks.workers()).map((w) => [w.id, w.status]), [["victim", "offline"]]);
    const again = await tasks.claim({ worker: "rescuer", capabilities: ["k"], leaseMs: 30_000 });
    assert.equal(again?.id, task.id);
  });
});
