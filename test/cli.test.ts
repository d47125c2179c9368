import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { CLI, runCliSync } from "./fixtures/cli.ts";

const COUNTER = fileURLToPath(new URL("../examples/counter.ts", import.meta.url));

let dir: string;
let db: string;

const colony = (...args: string[]) => runCliSync(args, { cwd: dir });

function json<T>(...args: string[]): T {
  const result = colony(...args, "--json");
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as T;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "colony-cli-"));
  db = join(dir, "cli.db");
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("colony demo, board and runs", () => {
  test("the demo runs both examples to their goal and stores them", () => {
    const result = colony("demo", "--db", db);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.match(/stopped: goal/g)?.length, 2);
    assert.match(result.stdout, /board essay/);

    const runs = json<{ name: string; stopReason: string }[]>("runs", "--db", db);
    assert.deepEqual(runs.map((r) => [r.name, r.stopReason]).sort(), [["essay", "goal"], ["survey", "goal"]]);
  });

  test("demo workflow runs the subtasks on the two worker processes it starts and stops them", { timeout: 90_000 }, () => {
    const wfDb = join(dir, "workflow.db");
    const result = colony("demo", "workflow", "--db", wfDb, "--json");
    assert.equal(result.code, 0, result.stderr);
    const outcome = JSON.parse(result.stdout) as { result: string; tasks: { id: string; status: string; owner: string }[] };
    assert.match(outcome.result, /^Answer: rust\.$/m);
    assert.equal(outcome.tasks.length, 4);
    assert.ok(outcome.tasks.every((t) => t.status === "succeeded" && /^demo-\d+-[12]$/.test(t.owner)), JSON.stringify(outcome.tasks));
    const workers = json<{ id: string; status: string }[]>("workers", "--db", wfDb, "--json");
    assert.deepEqual(workers.filter((w) => w.id.startsWith("demo-")).map((w) => w.status), ["stopped", "stopped"]);
  });

  test("running the demo again starts from the seed and reaches the same board", () => {
    const before = json<{ entries: { key: string; value: unknown }[] }>("board", "essay", "--db", db);
    assert.equal(colony("demo", "--db", db).code, 0);
    const again = json<{ entries: { key: string; value: unknown }[] }>("board", "essay", "--db", db);
    // Versions go on growing across runs (deletes are tombstones); the content is the same.
    const content = (board: { entries: { key: string; value: unknown }[] }) =>
      board.entries.map((e) => [e.key, e.key === "critique" ? (e.value as { approved: boolean }).approved : e.value]);
    assert.deepEqual(content(again), content(before));
  });

  test("board prints entries as [key] vN by author tags={...}", () => {
    const result = colony("board", "essay", "--db", db);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^\[critique\] v\d+ by critic tags=\{review\} /m);
    assert.match(result.stdout, /^\[topic\] v\d+ by seed /m);
  });

  test("--history is gap-free and --at rebuilds the board at a log position", () => {
    const history = json<{ seq: number; key: string }[]>("board", "essay", "--history", "--db", db);
    assert.deepEqual(
      history.map((r) => r.seq),
      history.map((_, i) => i + 1),
    );
    const atOne = json<{ seq: number; entries: { key: string }[] }>("board", "essay", "--at", "1", "--db", db);
    assert.equal(atOne.seq, 1);
    assert.deepEqual(
      atOne.entries.map((e) => e.key),
      [history[0]!.key],
    );
  });

  test("runs <id> shows the step timeline", () => {
    const [latest] = json<{ runId: string }[]>("runs", "--db", db);
    const detail = json<{ run: { runId: string }; steps: { index: number; fired: { agent: string }[] }[] }>("runs", latest!.runId, "--db", db);
    assert.equal(detail.run.runId, latest!.runId);
    assert.ok(detail.steps.length > 0);
    const text = colony("runs", latest!.runId, "--db", db);
    assert.match(text.stdout, /^step 1 /m);
  });
});

describe("colony run and bench", () => {
  test("run --json returns the run result; the counter loses no increment under conflicts", () => {
    const result = json<{ stopReason: string; steps: { fired: { conflict?: boolean }[] }[] }>("run", COUNTER, "--memory");
    assert.equal(result.stopReason, "goal");
    assert.ok(result.steps.some((s) => s.fired.some((f) => f.conflict)), "parallel incrementers should conflict");
  });

  test("--max-steps overrides the definition", () => {
    const result = json<{ stopReason: string; steps: unknown[] }>("run", COUNTER, "--memory", "--max-steps", "2");
    assert.equal(result.stopReason, "max_steps");
    assert.equal(result.steps.length, 2);
  });

  test("--sequential fires agents one after another, so no conflict occurs", () => {
    const result = json<{ stopReason: string; steps: { fired: { conflict?: boolean }[] }[] }>("run", COUNTER, "--memory", "--sequential");
    assert.equal(result.stopReason, "goal");
    // In a sequential step the first agent writes and the rest conflict on the step's snapshot.
    assert.ok(result.steps.every((s) => s.fired.filter((f) => !f.conflict).length === 1));
  });

  test("bench runs the definition N times on fresh stores", () => {
    const report = json<{ runs: { steps: number }[]; median: { steps: number; fires: Record<string, number> } }>(
      "bench",
      COUNTER,
      "--runs",
      "2",
    );
    assert.equal(report.runs.length, 2);
    assert.equal(report.median.steps, report.runs[0]!.steps);
    assert.ok(report.median.fires["ant-a"]! > 0);
  });
});

describe("bad input is one line and exit code 2", () => {
  const cases: [string, () => string[], RegExp][] = [
    ["a missing file", () => ["run", "missing.ts"], /missing\.ts: no such file/],
    ["a syntax error, with its line", () => ["run", write("broken.mjs", "const a = 1;\nexport default {\n  board: 'x' agents: []\n};\n")], /broken\.mjs:3: syntax error/],
    ["no default export", () => ["run", write("nodefault.mjs", "export const x = 1;\n")], /has no default export/],
    ["a default export that is not a run definition", () => ["run", write("notdef.mjs", "export default 42;\n")], /run definition/],
    [
      "a trigger that is not a function",
      () => ["run", write("trigger.mjs", "export default { board: 'b', agents: [{ name: 'a', trigger: 1, run() {} }] };\n")],
      /agents\[0\]\.trigger: trigger must be a function/,
    ],
    ["a bad flag value", () => ["run", COUNTER, "--max-steps", "zero"], /--max-steps.*invalid/],
    ["an unknown flag", () => ["board", "x", "--frobnicate"], /unknown option '--frobnicate'/],
    ["--at past the end of the log", () => ["board", "essay", "--at", "100000", "--db", db], /--at 100000: board "essay" has \d+ log records/],
    ["a bad board name", () => ["board", "no spaces", "--db", db], /board names are/],
    ["an unknown run id", () => ["runs", "run-nope", "--db", db], /run "run-nope" not found/],
    ["--memory with --db", () => ["runs", "--memory", "--db", db], /--memory and --db exclude each other/],
  ];
  for (const [name, args, message] of cases) {
    test(name, () => {
      const result = colony(...args());
      assert.equal(result.code, 2, `${result.stdout}\n${result.stderr}`);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace without --debug");
    });
  }

  test("--debug adds the stack trace", () => {
    const result = colony("runs", "run-nope", "--db", db, "--debug");
    assert.equal(result.code, 2);
    assert.match(result.stderr, /\n\s+at /);
  });

  test("every command has --help", () => {
    for (const command of ["run", "board", "runs", "bench", "demo", "agents", "worker", "workers", "tasks", "task", "submit", "cancel", "workflow"]) {
      const result = colony(command, "--help");
      assert.equal(result.code, 0, command);
      assert.match(result.stdout, new RegExp(`Usage: colony ${command}`));
    }
  });
});

describe("colony board --watch", () => {
  test("tails writes made by another process", { timeout: 60_000 }, async () => {
    const watchDb = join(dir, "watch.db");
    assert.equal(colony("board", "counter", "--db", watchDb).code, 0); // creates the file
    const watcher = spawn(process.execPath, [CLI, "board", "counter", "--watch", "--json", "--db", watchDb], { cwd: dir });
    const lines: string[] = [];
    let buffer = "";
    const sawAll = new Promise<void>((resolve) => {
      watcher.stdout.on("data", (chunk: Buffer) => {
        buffer += chunk.toString();
        const parts = buffer.split("\n");
        buffer = parts.pop()!;
        lines.push(...parts.filter(Boolean));
        if (lines.length >= 12) resolve();
      });
    });
    // The watcher announces itself on stderr once it is tailing.
    await new Promise<void>((resolve) => watcher.stderr.once("data", () => resolve()));
    assert.equal(colony("run", COUNTER, "--db", watchDb).code, 0);
    await sawAll;
    watcher.kill("SIGINT");
    await new Promise((resolve) => watcher.once("exit", resolve));
    const records = lines.map((l) => JSON.parse(l) as { seq: number; key: string; value: number });
    assert.deepEqual(
      records.slice(0, 12).map((r) => r.value),
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
  });
});

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
