/**
 * Several processes doing compare-and-set increments on one key of one SQLite file: no update is
 * lost, no version repeats, the log stays gap-free.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createColony, sqliteBackend } from "../src/index.ts";

const INCREMENTER = fileURLToPath(new URL("./fixtures/cas-incrementer.ts", import.meta.url));
const N = 4;
const K = 200;

let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "colony-board-concurrency-"));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Worker {
  child: ChildProcessByStdio<Writable, Readable, Readable>;
  ready: Promise<void>;
  result: Promise<{ done: number; conflicts: number }>;
}

function startWorker(path: string, author: string): Worker {
  const child = spawn(process.execPath, [INCREMENTER, path, "counters", "counter", String(K), author], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    if (stdout.startsWith("ready\n")) markReady();
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const result = new Promise<{ done: number; conflicts: number }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code !== 0) return reject(new Error(`${author} exited with ${code ?? signal}: ${stderr}`));
      const last = stdout.trim().split("\n").at(-1)!;
      resolve(JSON.parse(last) as { done: number; conflicts: number });
    });
  });
  // A worker that dies before it is ready fails the test rather than hanging it.
  result.catch(() => markReady());
  return { child, ready, result };
}

test(`${N} processes x ${K} compare-and-set increments on one key lose no update`, { timeout: 60_000 }, async (t) => {
  // The file does not exist yet: the workers race to create it and its schema.
  const path = join(dir, "colony.db");
  const workers = Array.from({ length: N }, (_, i) => startWorker(path, `worker-${i}`));
  try {
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.child.stdin.end("go\n");
    const results = await Promise.all(workers.map((w) => w.result));
    for (const r of results) assert.equal(r.done, K);
    t.diagnostic(`conflicts retried: ${results.map((r) => r.conflicts).join(", ")}`);
    // They really raced: without conflicts the test would show nothing about compare-and-set.
    assert.ok(results.reduce((sum, r) => sum + r.conflicts, 0) > 0, "the processes never wrote over each other's reads");
  } finally {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGKILL");
  }

  const colony = createColony({ backend: sqliteBackend({ path }) });
  try {
    const board = await colony.board("counters");
    const entry = await board.get<number>("counter");
    assert.equal(entry?.value, N * K);
    assert.equal(entry?.version, N * K);

    const history = await board.history();
    assert.equal(history.length, N * K);
    assert.deepEqual(history.map((r) => r.seq), history.map((_, i) => i + 1));
    assert.deepEqual(history.map((r) => r.value), history.map((_, i) => i + 1), "values strictly increase by 1");
    assert.deepEqual(history.map((r) => r.version), history.map((_, i) => i + 1));
    for (let i = 0; i < N; i++) {
      assert.equal(history.filter((r) => r.author === `worker-${i}`).length, K, `worker-${i}'s increments`);
    }
  } finally {
    await colony.close();
  }
});
