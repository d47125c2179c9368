/**
 * SIGKILL a process in the middle of a stream of writes: every write it saw resolve is on disk,
 * the log has no gap and the file is intact.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createColony, sqliteBackend } from "../src/index.ts";

const WRITER = fileURLToPath(new URL("./fixtures/board-writer.ts", import.meta.url));
const ROUNDS = 3;

let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "colony-board-crash-"));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Starts a writer that never stops, kills it with SIGKILL after `killAfter` acks, resolves the acked keys. */
function writeUntilKilled(path: string, prefix: string, killAfter: number): Promise<{ acked: string[]; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, path, "crash", prefix, "0", "2000"], { stdio: ["ignore", "pipe", "pipe"] });
    const acked: string[] = [];
    let pending = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) acked.push(line.replace(/^ack /, ""));
      if (acked.length >= killAfter && child.signalCode === null) child.kill("SIGKILL");
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (signal !== "SIGKILL") reject(new Error(`writer ended with ${code ?? signal} before it was killed: ${stderr}`));
      else resolve({ acked, signal });
    });
  });
}

test(`a writer killed with SIGKILL mid-stream loses no acknowledged write (${ROUNDS} rounds)`, { timeout: 60_000 }, async (t) => {
  const path = join(dir, "colony.db");
  let total = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const prefix = `r${round}/`;
    const { acked } = await writeUntilKilled(path, prefix, 150 + round * 50);
    assert.ok(acked.length >= 150, `round ${round}: ${acked.length} acks`);

    // Check the file as the crash left it, before Colony opens it again.
    const db = new DatabaseSync(path);
    try {
      assert.deepEqual(db.prepare("PRAGMA integrity_check").all().map((row) => ({ ...row })), [{ integrity_check: "ok" }]);
    } finally {
      db.close();
    }

    const colony = createColony({ backend: sqliteBackend({ path }) });
    try {
      const board = await colony.board("crash");
      const view = board.view();
      for (const [i, key] of acked.entries()) {
        assert.deepEqual(view.read(key)?.value, { i, pad: "x".repeat(2000) }, `acknowledged ${key}`);
        assert.deepEqual((await board.get(key))?.version, 1);
      }

      const history = await board.history();
      assert.deepEqual(history.map((r) => r.seq), history.map((_, i) => i + 1), "the log has no gap");
      assert.equal(board.seq, history.length);
      // This round's records are its writes in order: the acked ones, then perhaps some the
      // writer committed but was killed before it could print.
      const thisRound = history.slice(total);
      assert.ok(thisRound.length >= acked.length);
      assert.deepEqual(thisRound.map((r) => r.key), thisRound.map((_, i) => `${prefix}${i}`));
      assert.equal(view.size, history.length);
      t.diagnostic(`round ${round}: ${acked.length} acknowledged, ${thisRound.length} committed`);
      total = history.length;
    } finally {
      await colony.close();
    }
  }
});
