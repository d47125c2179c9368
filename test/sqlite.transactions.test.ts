/**
 * SQLite transactions that wait for the write lock (another process holds it) keep their order
 * and, once the lock is free, run under it together, each in a savepoint: one that throws is
 * undone alone, the others commit; those that wait past the busy timeout give up, in order.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { DatabaseSync } from "node:sqlite";
import { setImmediate as yieldTurn } from "node:timers/promises";
import { afterEach, beforeEach, test } from "node:test";
import { fileURLToPath } from "node:url";
import { SqliteConnection } from "../src/backends/sqlite/connection.ts";
import { StoreBusyError } from "../src/index.ts";
import { tempDir } from "./fixtures/helpers.ts";

let dir: ReturnType<typeof tempDir>;
let conn: SqliteConnection;
let other: DatabaseSync;

beforeEach(() => {
  dir = tempDir("colony-tx-");
  const path = join(dir.path, "colony.db");
  conn = new SqliteConnection(path, { synchronous: "normal", busyTimeoutMs: 2000, pollMs: 50 });
  conn.db.exec("CREATE TABLE scratch (k TEXT PRIMARY KEY, v INTEGER NOT NULL)");
  other = new DatabaseSync(path);
});

afterEach(() => {
  if (other.isTransaction) other.exec("ROLLBACK");
  other.close();
  conn.close();
  dir.dispose();
});

const rows = () => other.prepare("SELECT k, v FROM scratch ORDER BY k").all().map((r) => `${String(r.k)}=${String(r.v)}`);

test("transactions that waited for the lock run in order; one that throws after writing is undone alone", async () => {
  const insert = conn.db.prepare("INSERT INTO scratch (k, v) VALUES (?, ?)");
  other.exec("BEGIN IMMEDIATE");
  const ran: string[] = [];
  const first = conn.transaction(() => (ran.push("a"), insert.run("a", 1), "a"));
  const failing = conn.transaction(() => {
    ran.push("b");
    insert.run("b", 2);
    throw new Error("b fails after writing");
  });
  const conflicting = conn.transaction(() => (ran.push("a again"), insert.run("a", 9), "never"));
  const last = conn.transaction(() => (ran.push("c"), insert.run("c", 3), "c"));
  await yieldTurn();
  assert.deepEqual(ran, [], "nothing runs while another connection holds the lock");
  other.exec("COMMIT");
  assert.equal(await first, "a");
  await assert.rejects(failing, /b fails after writing/);
  await assert.rejects(conflicting, /UNIQUE constraint failed/);
  assert.equal(await last, "c");
  assert.deepEqual(ran, ["a", "b", "a again", "c"]);
  assert.deepEqual(rows(), ["a=1", "c=3"]);
  // The connection goes on as before.
  assert.equal(await conn.transaction(() => (insert.run("d", 4), "d")), "d");
  assert.deepEqual(rows(), ["a=1", "c=3", "d=4"]);
});

test("a transaction asked for while others wait runs after them, and those that wait past the busy timeout give up", async () => {
  const insert = conn.db.prepare("INSERT INTO scratch (k, v) VALUES (?, ?)");
  other.exec("BEGIN IMMEDIATE");
  const waited = [conn.transaction(() => insert.run("x", 1)), conn.transaction(() => insert.run("y", 2))];
  const outcomes = await Promise.allSettled(waited);
  assert.deepEqual(
    outcomes.map((o) => o.status === "rejected" && o.reason instanceof StoreBusyError),
    [true, true],
  );
  other.exec("ROLLBACK");
  await conn.transaction(() => insert.run("z", 3));
  assert.deepEqual(rows(), ["z=3"]);
});

test("when the lock cannot be taken for another reason than a holder (the file closed), every waiting transaction hears it", async () => {
  const insert = conn.db.prepare("INSERT INTO scratch (k, v) VALUES (?, ?)");
  other.exec("BEGIN IMMEDIATE");
  const waiting = [conn.transaction(() => insert.run("x", 1)), conn.transaction(() => insert.run("y", 2))];
  await yieldTurn();
  conn.close();
  const outcomes = await Promise.allSettled(waiting);
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ["rejected", "rejected"],
  );
  other.exec("ROLLBACK");
  assert.deepEqual(rows(), []);
});

test("processes that open one new file at the same moment all open it (SQLite's busy answer while another switches it to WAL is waited out)", async () => {
  const openers = Array.from({ length: 6 }, () => {
    const child = spawn(process.execPath, [fileURLToPath(new URL("./fixtures/sqlite-opener.ts", import.meta.url))], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    return { child, lines: createInterface({ input: child.stdout })[Symbol.asyncIterator]() };
  });
  try {
    for (let round = 0; round < 30; round++) {
      const path = join(dir.path, `fresh-${round}.db`);
      for (const { child } of openers) child.stdin.write(`${path}\n`);
      const answers = await Promise.all(openers.map(({ lines }) => lines.next().then((line) => line.value as string)));
      assert.deepEqual(answers, Array(openers.length).fill("opened"), `round ${round}`);
    }
  } finally {
    for (const { child } of openers) child.stdin.end();
    await Promise.all(openers.map(({ child }) => (child.exitCode === null ? once(child, "exit") : undefined)));
  }
});
