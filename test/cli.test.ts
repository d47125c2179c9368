import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createColony, sqliteBackend } from "../src/index.ts";
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
    const workers = json<{ id: string; status: string }[]>("workers", "--tasks", "demo", "--db", wfDb, "--json");
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

  test("boards lists the store's boards with their entries and log positions", () => {
    const essay = json<{ seq: number; entries: unknown[] }>("board", "essay", "--db", db);
    const listed = json<{ boards: { name: string; entries: number; seq: number }[]; tasks: { name: string }[] }>("boards", "--db", db);
    assert.deepEqual(listed.boards.find((b) => b.name === "essay"), { name: "essay", entries: essay.entries.length, seq: essay.seq });
    assert.match(colony("boards", "--db", db).stdout, new RegExp(`^board "essay": ${essay.entries.length} entries, log position ${essay.seq}$`, "m"));
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

  test("--max-steps overrides the definition (stopping before the goal is exit 1)", () => {
    const ran = colony("run", COUNTER, "--memory", "--max-steps", "2", "--json");
    assert.equal(ran.code, 1, ran.stderr);
    const result = JSON.parse(ran.stdout) as { stopReason: string; steps: unknown[] };
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
    for (const command of ["run", "board", "boards", "runs", "bench", "demo", "agents", "worker", "workers", "tasks", "task", "submit", "cancel", "workflow"]) {
      const result = colony(command, "--help");
      assert.equal(result.code, 0, command);
      assert.match(result.stdout, new RegExp(`Usage: colony ${command}`));
    }
  });
});

describe("colony board --watch", () => {
  test("tails writes made by another process", { timeout: 60_000 }, async () => {
    const watchDb = join(dir, "watch.db");
    const maker = createColony({ backend: sqliteBackend({ path: watchDb }) });
    await maker.board("counter"); // the file to watch
    await maker.close();
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

describe("the command itself", () => {
  const BIN = fileURLToPath(new URL("../bin/colony.js", import.meta.url));

  test("--version prints the package's version; colony alone prints the help on stdout and exits 0", () => {
    const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    const shown = spawnSync(process.execPath, [BIN, "--version"], { encoding: "utf8" });
    assert.deepEqual([shown.status, shown.stdout.trim(), shown.stderr], [0, version, ""]);
    const bare = spawnSync(process.execPath, [BIN], { encoding: "utf8" });
    assert.deepEqual([bare.status, bare.stderr], [0, ""]);
    assert.match(bare.stdout, /^Usage: colony /);
    assert.match(bare.stdout, /^ {2}run /m);
  });

  test("colour only where it is wanted: on a terminal (or FORCE_COLOR), never with --no-color or NO_COLOR, and never in what users wrote", () => {
    const where = join(dir, "nowhere", "c.db");
    const env = (extra: Record<string, string>) => {
      const base = { ...process.env };
      delete base.NO_COLOR;
      delete base.FORCE_COLOR;
      return { ...base, ...extra };
    };
    const forced = runCliSync(["board", "x", "--db", where], { cwd: dir, env: env({ FORCE_COLOR: "1" }) });
    assert.equal(forced.stderr.split(" ")[0], "\x1b[31mcolony:\x1b[39m");
    const off = runCliSync(["board", "x", "--db", where, "--no-color"], { cwd: dir, env: env({ FORCE_COLOR: "1" }) });
    assert.match(off.stderr, /^colony: no colony at /);
    const piped = runCliSync(["board", "x", "--db", where], { cwd: dir, env: env({}) });
    assert.match(piped.stderr, /^colony: no colony at /, "not a terminal: plain");
  });

  test("output piped into a reader that closes early ends quietly: no EPIPE, no stack, exit 0", async () => {
    const db = join(dir, "pipe.db");
    const big = createColony({ backend: sqliteBackend({ path: db }) });
    const board = await big.board("big");
    for (let i = 0; i < 3000; i++) await board.write(`k${i}`, "x".repeat(100), { author: "filler" });
    await big.close();
    for (const args of [`board big --db '${db}' --json`, `board big --db '${db}' --history`, "--help"]) {
      const piped = spawnSync("bash", ["-c", `'${process.execPath}' '${BIN}' ${args} 2>'${dir}/err' | head -c 10 >/dev/null; echo "\${PIPESTATUS[0]}"; cat '${dir}/err'`], { encoding: "utf8" });
      assert.equal(piped.stdout, "0\n", `colony ${args}: ${piped.stdout}`);
    }
  });
});

describe("reading a colony that does not exist", () => {
  test("board, runs, agents, tasks, task, workers, nodes and status name the file they looked for, exit 2 and create nothing", () => {
    const empty = mkdtempSync(join(tmpdir(), "colony-none-"));
    try {
      for (const args of [["board", "notes"], ["runs"], ["agents"], ["tasks"], ["task", "t-1"], ["workers"], ["nodes"], ["status"], ["board", "x", "--db", "elsewhere/c.db"]]) {
        const result = runCliSync(args, { cwd: empty });
        const looked = args.includes("--db") ? join(empty, "elsewhere/c.db") : join(empty, ".colony/colony.db");
        assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
        assert.equal(result.stderr, `colony: no colony at ${looked}: nothing has run here yet; pass --db FILE for another, or start one with colony run or colony demo\n`);
        assert.equal(result.stdout, "");
      }
      assert.deepEqual(readdirSync(empty), [], "nothing was created");
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe("how a run ends, in its exit code", () => {
  const INDEX = new URL("../src/index.ts", import.meta.url).href;
  const runFile = (name: string, body: string) => {
    const path = join(dir, `${name}.mts`);
    writeFileSync(path, `import { defineRun } from ${JSON.stringify(INDEX)};\nexport default defineRun(${body});\n`);
    return path;
  };

  test("goal 0; every agent failing, then quiet, 1; the step limit before the goal 1; quiet without a goal 0", () => {
    const cases: [string, string, number, string][] = [
      ["goal", `{ board: "ok", agents: [{ name: "a", run: async (ctx) => { await ctx.board.write("done", true); } }], goal: (v) => v.has("done") }`, 0, "goal"],
      ["failing", `{ board: "fail", agents: [{ name: "a", run: () => { throw new Error("no"); } }, { name: "b", run: () => { throw new Error("nor I"); } }] }`, 1, "quiescence"],
      ["limit", `{ board: "limit", agents: [{ name: "a", trigger: () => true, run: async (ctx) => { await ctx.board.write("n", Math.random()); } }], goal: () => false, maxSteps: 3 }`, 1, "max_steps"],
      ["quiet", `{ board: "quiet", agents: [{ name: "a", run: async (ctx) => { await ctx.board.write("x", 1); } }] }`, 0, "quiescence"],
    ];
    for (const [name, body, code, reason] of cases) {
      const result = colony("run", runFile(name, body), "--db", join(dir, "exits.db"), "--json");
      assert.equal(result.code, code, `${name}: ${result.stderr}`);
      assert.equal((JSON.parse(result.stdout) as { stopReason: string }).stopReason, reason, name);
    }
  });

  test("SIGINT at a --step pause ends the run at once, recorded as aborted, exit 130", async () => {
    const db = join(dir, "step.db");
    const file = runFile("steps", `{ board: "steps", agents: [{ name: "a", trigger: () => true, run: async (ctx) => { await ctx.board.write("n", Date.now()); } }], maxSteps: 50 }`);
    const child = spawn(process.execPath, [CLI, "run", file, "--step", "--db", db], { cwd: dir, stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    const paused = new Promise<void>((resolve) =>
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes("step 2 at log position")) resolve();
      }),
    );
    child.stdin.write("\n"); // through the first pause
    await paused;
    child.kill("SIGINT");
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 130, stderr);
    const runs = json<{ stopReason: string; steps: number }[]>("runs", "--db", db);
    assert.deepEqual(runs.map((r) => r.stopReason), ["aborted"]);
  });
});

test("a run file that Node loads as CommonJS (npm init's \"type\": \"commonjs\") is one line saying what to do", () => {
  const project = mkdtempSync(join(tmpdir(), "colony-cjs-"));
  try {
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "mine", version: "1.0.0", type: "commonjs" }));
    writeFileSync(join(project, "run.ts"), `import { defineRun } from ${JSON.stringify(new URL("../src/index.ts", import.meta.url).href)};\nexport default defineRun({ board: "b", agents: [] });\n`);
    const result = runCliSync(["run", "run.ts", "--memory"], { cwd: project });
    assert.equal(result.code, 2, result.stderr);
    const line = result.stderr.trim().split("\n").at(-1);
    assert.equal(line, `colony: run.ts: it uses import/export, but Node loads it as CommonJS (${join(project, "package.json")} does not say "type": "module"); rename it run.mts, or add "type": "module" to that package.json`);
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
});

test("colony workflow with no --input, or input of the wrong shape, is one line naming the field, exit 2, nothing run", () => {
  const demo = fileURLToPath(new URL("../src/demo/workflow.ts", import.meta.url));
  const none = colony("workflow", demo, "--memory");
  assert.deepEqual([none.code, none.stderr], [2, "colony: workflow choose-language: input: Invalid input: expected object, received undefined\n"]);
  const wrong = colony("workflow", demo, "--memory", "--input", JSON.stringify({ question: "q", topics: "go", weights: {} }));
  assert.deepEqual([wrong.code, wrong.stderr], [2, "colony: workflow choose-language: input at topics: Invalid input: expected array, received string\n"]);
});
