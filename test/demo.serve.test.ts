/**
 * `colony demo --serve` and `colony demo swarm` from the shell: the demo prints the dashboard's
 * address, whose API answers while the demo runs and after it, until SIGINT or SIGTERM ends the
 * command cleanly (exit 0); the swarm's planner, researcher workers and reviewer leave tasks,
 * agents, workers and board writes the API shows.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { after, before, describe, test } from "node:test";
import type { AgentRecord, Task } from "../src/index.ts";
import { CLI, cliJson } from "./fixtures/cli.ts";
import { sqliteColony, tempDir, waitFor } from "./fixtures/helpers.ts";
import { call } from "./fixtures/server.ts";

interface Demo {
  child: ChildProcessWithoutNullStreams;
  lines: Interface;
  /** Every line it printed so far. */
  stdout: string[];
  stderr(): string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

function startDemo(args: string[]): Demo {
  const child = spawn(process.execPath, [CLI, "demo", ...args], { stdio: ["pipe", "pipe", "pipe"] });
  child.stdin.end();
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = once(child, "close") as Promise<[number | null, NodeJS.Signals | null]>;
  const lines = createInterface({ input: child.stdout });
  const stdout: string[] = [];
  lines.on("line", (line) => stdout.push(line));
  return { child, lines, stdout, stderr: () => stderr, exited };
}

/** The first line it printed or prints in which `match` finds something. */
function lineMatching(demo: Demo, match: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const printed = demo.stdout.map((line) => line.match(match)).find((m) => m !== null);
    if (printed) return resolve(printed);
    const check = (line: string) => {
      const found = line.match(match);
      if (!found) return;
      stop();
      resolve(found);
    };
    const ended = () => {
      stop();
      reject(new Error(`the demo ended without printing a line that matches ${match}; stderr: ${demo.stderr()}`));
    };
    const stop = () => {
      demo.lines.off("line", check);
      demo.lines.off("close", ended);
    };
    demo.lines.on("line", check);
    demo.lines.on("close", ended);
  });
}

describe("colony demo --serve", { timeout: 120_000 }, () => {
  let dir: ReturnType<typeof tempDir>;
  const started: Demo[] = [];
  before(() => {
    dir = tempDir("colony-demo-serve-");
  });
  after(() => {
    for (const demo of started) if (demo.child.exitCode === null) demo.child.kill("SIGKILL");
    dir.dispose();
  });

  test("demo runs --serve prints the dashboard's address, serves the runs while and after they run, and exits 0 on SIGINT", async () => {
    const demo = startDemo(["runs", "--serve", "--port", "0", "--db", join(dir.path, "runs.db")]);
    started.push(demo);
    const [, url] = await lineMatching(demo, /^dashboard (http:\/\/127\.0\.0\.1:\d+)\/#\/runs\b/);
    const status = await call(url!, "GET", "/api/status");
    assert.deepEqual([status.status, (status.body.backend as { kind: string }).kind], [200, "sqlite"]);

    await lineMatching(demo, /^Still serving at /);
    const runs = await call(url!, "GET", "/api/runs");
    assert.deepEqual((runs.body.runs as { name: string }[]).map((r) => r.name).sort(), ["essay", "survey"]);
    const page = await fetch(`${url}/`);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);

    demo.child.kill("SIGINT");
    const [code] = await demo.exited;
    assert.equal(code, 0, demo.stderr());
    assert.match(demo.stderr(), /stopping on SIGINT/);
    await assert.rejects(fetch(`${url}/api/status`), /fetch failed/);
  });

  test("demo swarm --serve --json: tasks, agents, workers and board writes through the API, then a clean stop on SIGTERM", async () => {
    const db = join(dir.path, "swarm.db");
    const demo = startDemo(["swarm", "--serve", "--port", "0", "--json", "--rounds", "2", "--db", db]);
    started.push(demo);
    const [line] = await lineMatching(demo, /^\{.*\}$/);
    const { url } = JSON.parse(line) as { url: string };

    // Both rounds planned and done: three research tasks and a review each, moved by the workers.
    const tasks = await waitFor(
      async () => {
        const { body } = await call(url, "GET", "/api/tasks?board=swarm");
        const all = body.tasks as Task[];
        return all.length === 8 && all.every((t) => t.status === "succeeded") ? all : undefined;
      },
      60_000,
      "the swarm's eight tasks to succeed",
    );
    assert.deepEqual(tasks.map((t) => t.kind).sort(), ["research", "research", "research", "research", "research", "research", "review", "review"]);
    const reviews = tasks.filter((t) => t.kind === "review");
    assert.ok(reviews.every((t) => t.dependsOn.length === 3), "each review waited on its round's research");
    // The flaky sources of round 2 took a second attempt.
    assert.ok(tasks.some((t) => t.attempts === 1 && t.failures.length === 1));

    const agents = (await call(url, "GET", "/api/agents")).body.agents as AgentRecord[];
    const names = new Set(agents.map((a) => a.name.split(":")[0]));
    assert.deepEqual([...names].sort(), ["planner", "reader", "research", "review"]);
    const readers = agents.filter((a) => a.name === "reader");
    assert.ok(readers.length >= 6 && readers.every((r) => r.depth === 1), "each researcher spawned a reader");

    const nodes = (await call(url, "GET", "/api/nodes?board=swarm")).body.nodes as { id: string; status: string }[];
    assert.deepEqual(nodes.map((n) => [n.id, n.status]).sort(), [["researcher-1", "online"], ["researcher-2", "online"], ["reviewer", "online"]]);

    const board = await call(url, "GET", "/api/boards/swarm/entries");
    const keys = (board.body.entries as { key: string; tags: Record<string, unknown> }[]).map((e) => e.key);
    assert.deepEqual(keys.filter((k) => k.startsWith("reviews/")), ["reviews/r1", "reviews/r2"]);
    assert.equal(keys.filter((k) => k.startsWith("findings/")).length, 6);
    assert.deepEqual(keys.filter((k) => k.startsWith("plan/")), ["plan/r1", "plan/r2"]);

    demo.child.kill("SIGTERM");
    const [code] = await demo.exited;
    assert.equal(code, 0, demo.stderr());
    const result = JSON.parse(demo.stdout.slice(1).join("\n")) as { rounds: number; ended: string; tasks: Record<string, number> };
    assert.deepEqual([result.rounds, result.ended, result.tasks.succeeded], [2, "settled", 8]);

    // Closed cleanly: the workers left the registry as stopped, no agent is left running.
    const colony = sqliteColony(db);
    try {
      const workers = await (await colony.tasks("swarm")).workers();
      assert.deepEqual(workers.map((w) => w.status), ["stopped", "stopped", "stopped"]);
      assert.deepEqual((await colony.agents.list()).filter((a) => a.state === "running" || a.state === "created"), []);
    } finally {
      await colony.close();
    }
  });

  test("demo swarm without --serve ends by itself once the swarm settled", async () => {
    const result = await cliJson<{ rounds: number; ended: string; tasks: Record<string, number>; board: { entries: number } }>(["demo", "swarm", "--rounds", "1", "--memory", "--json"]);
    assert.deepEqual([result.rounds, result.ended, result.tasks.succeeded, result.board.entries], [1, "settled", 4, 5]);
  });
});
