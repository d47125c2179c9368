import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterEach, beforeEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createColony, sqliteBackend, VersionConflictError, type Board, type Colony, type LogRecord } from "../src/index.ts";
import { boardContract } from "./contract/board.ts";

const WRITER = fileURLToPath(new URL("./fixtures/board-writer.ts", import.meta.url));
const CHILD_TIMEOUT_MS = 20_000;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "colony-board-sqlite-"));
}

boardContract("sqlite", async (options = {}) => {
  const dir = tempDir();
  const colony = createColony({ backend: sqliteBackend({ path: join(dir, "colony.db") }), ...options });
  return {
    colony,
    async cleanup() {
      await colony.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

/** Runs the writer fixture to the end; resolves its acknowledged keys. */
function runWriter(path: string, board: string, prefix: string, count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, path, board, prefix, String(count)], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), CHILD_TIMEOUT_MS);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`writer exited with ${code ?? signal}: ${stderr}`));
      else resolve(stdout.split("\n").filter(Boolean).map((line) => line.replace(/^ack /, "")));
    });
  });
}

function integrityCheck(path: string): unknown[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare("PRAGMA integrity_check").all().map((row) => ({ ...row }));
  } finally {
    db.close();
  }
}

function assertGapFree(records: readonly LogRecord[], from = 1): void {
  assert.deepEqual(
    records.map((r) => r.seq),
    records.map((_, i) => from + i),
  );
}

describe("Board on SQLite: durability and several processes", () => {
  let dir: string;
  let path: string;
  const open: Colony[] = [];

  function openColony(): Colony {
    const colony = createColony({ backend: sqliteBackend({ path, pollMs: 10 }) });
    open.push(colony);
    return colony;
  }

  beforeEach(() => {
    dir = tempDir();
    path = join(dir, "colony.db");
  });

  afterEach(async () => {
    for (const colony of open.splice(0)) await colony.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function fill(board: Board): Promise<void> {
    for (let i = 0; i < 30; i++) {
      await board.write(`item/${i % 7}`, { i, text: `ünï ${i}`, list: [i, null, true] }, { author: `w${i % 3}`, tags: i % 2 ? ["odd"] : ["even", "n"] });
    }
    await board.delete("item/3", { author: "w0" });
    await board.delete("item/5", { author: "w1", expectedVersion: 4 });
    await board.write("item/3", "back", { author: "w2" });
    await board.write("big", "y".repeat(200_000), { author: "w0" });
  }

  test("a new colony on the same file sees every entry, the whole log and the versions", async () => {
    const first = openColony();
    const board = await first.board("main");
    await fill(board);
    await (await first.board("side")).write("elsewhere", 1, { author: "x" });
    const entries = board.view().entries();
    const history = await board.history();
    const seq = board.seq;
    await first.close();

    const second = openColony();
    const reopened = await second.board("main");
    assert.equal(reopened.seq, seq);
    assert.deepEqual(reopened.view().entries(), entries);
    assert.deepEqual(await reopened.history(), history);
    assertGapFree(history);
    for (const entry of entries) assert.deepEqual(await reopened.get(entry.key), entry);
    assert.deepEqual((await second.board("side")).view().keys(), ["elsewhere"]);
    // Versions continue across the reopen, tombstones included.
    assert.equal((await reopened.write("item/5", "again", { author: "x", expectedVersion: 0 })).version, 6);
    assert.equal((await reopened.write("item/0", "next", { author: "x", expectedVersion: 5 })).version, 6);
    assert.equal(reopened.seq, seq + 2);
  });

  test("the file passes PRAGMA integrity_check", async () => {
    const colony = openColony();
    await fill(await colony.board("main"));
    await colony.close();
    assert.deepEqual(integrityCheck(path), [{ integrity_check: "ok" }]);
  });

  test("a compare-and-set refused through one connection is refused through another", async () => {
    const a = await openColony().board("main");
    const b = await openColony().board("main");
    await a.write("k", 1, { author: "a" });
    await assert.rejects(b.write("k", 2, { author: "b", expectedVersion: 0 }), (error: unknown) => {
      assert.ok(error instanceof VersionConflictError);
      assert.equal(error.actualVersion, 1);
      return true;
    });
    assert.equal((await b.write("k", 2, { author: "b", expectedVersion: 1 })).version, 2);
    await assert.rejects(a.write("k", 3, { author: "a", expectedVersion: 1 }), VersionConflictError);
    assertGapFree(await a.history());
  });

  test("a watch sees the writes another process makes to the file", { timeout: CHILD_TIMEOUT_MS }, async () => {
    const colony = openColony();
    const board = await colony.board("main");
    await board.write("before", 0, { author: "parent" });
    const controller = new AbortController();
    const seen: LogRecord[] = [];
    const parentWrites = 20;
    const childWrites = 60;
    let allSeen: () => void = () => {};
    const finished = new Promise<void>((resolve) => (allSeen = resolve));
    const watching = (async () => {
      for await (const record of board.watch({ since: board.seq, signal: controller.signal })) {
        seen.push(record);
        if (seen.length === parentWrites + childWrites) allSeen();
      }
    })();

    const child = runWriter(path, "main", "child/", childWrites);
    // The parent writes at the same time; the watch must see both, each record once.
    for (let i = 0; i < parentWrites; i++) {
      await board.write(`parent/${i}`, i, { author: "parent" });
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const acked = await child;
    assert.equal(acked.length, childWrites);
    await finished;
    controller.abort();
    await watching;

    assertGapFree(seen, 2);
    assert.deepEqual(seen, await board.history({ since: 1 }));
    const fromChild = seen.filter((r) => r.key.startsWith("child/"));
    assert.deepEqual(fromChild.map((r) => r.key), acked);
    assert.ok(fromChild.every((r) => r.author !== "parent" && r.op === "write" && r.version === 1));
    assert.deepEqual(fromChild.map((r) => (r.value as { i: number }).i), acked.map((_, i) => i));
  });

  test("refresh() picks up another process's writes; get() reads them before that", { timeout: CHILD_TIMEOUT_MS }, async () => {
    const board = await openColony().board("main");
    await board.write("mine", 1, { author: "parent" });
    const before = board.view();
    const acked = await runWriter(path, "main", "theirs/", 25);

    assert.equal(board.seq, 1, "writes by others show only after refresh()");
    assert.equal(board.view(), before);
    assert.deepEqual((await board.get("theirs/24"))?.value, { i: 24, pad: "" });

    assert.equal(await board.refresh(), 26);
    const view = board.view();
    assert.equal(view.seq, 26);
    assert.deepEqual(view.keys("theirs/"), [...acked].sort());
    assert.deepEqual(view.read("theirs/7")?.value, { i: 7, pad: "" });
    for (const entry of view.entries()) assert.deepEqual(await board.get(entry.key), entry, "a refreshed view agrees with the store");
    assert.equal(before.size, 1, "the old view is unchanged");
    assert.equal(await board.refresh(), 26, "a second refresh finds nothing new");
  });

  test("a write after other processes' writes brings the view up to date", { timeout: CHILD_TIMEOUT_MS }, async () => {
    const board = await openColony().board("main");
    await board.write("mine", 1, { author: "parent" });
    await runWriter(path, "main", "theirs/", 10);
    const entry = await board.write("mine", 2, { author: "parent" });
    assert.equal(entry.version, 2);
    const view = board.view();
    assert.equal(view.seq, 12);
    assert.deepEqual(view.read("mine"), entry);
    assert.equal(view.keys("theirs/").length, 10);
    assert.equal(await board.delete("theirs/0", { author: "parent" }), true);
    assert.equal(board.view().has("theirs/0"), false);
  });

  test("refresh() folds in another connection's overwrites, deletes and re-creates", async () => {
    const a = await openColony().board("main");
    const b = await openColony().board("main");
    await a.write("kept", 1, { author: "a", tags: ["t"] });
    await a.write("dropped", 1, { author: "a" });
    await a.write("reborn", 1, { author: "a" });
    await b.refresh();
    await b.write("kept", 2, { author: "b", tags: ["u"] });
    await b.delete("dropped", { author: "b" });
    await b.delete("reborn", { author: "b" });
    await b.write("reborn", 2, { author: "b" });
    assert.equal(await a.refresh(), 7);
    const view = a.view();
    assert.deepEqual(view.keys(), ["kept", "reborn"]);
    assert.deepEqual(view.readByTag("u").map((e) => e.key), ["kept"]);
    assert.deepEqual(view.readByTag("t"), []);
    for (const entry of view.entries()) assert.deepEqual(await a.get(entry.key), entry);
    assert.deepEqual(view.entries(), b.view().entries());
    assert.equal(view.read("reborn")?.version, 3);
  });

  test("a write shows in the next view even when a refresh was in flight", async () => {
    const a = await openColony().board("main");
    const b = await openColony().board("main");
    // The refresh reads the log before either write commits; the write must not settle for it.
    const refreshing = a.refresh();
    const foreign = b.write("foreign", 1, { author: "b" });
    const own = a.write("own", 1, { author: "a" });
    await Promise.all([refreshing, foreign, own]);
    const view = a.view();
    assert.equal(view.seq, 2);
    assert.deepEqual(view.keys(), ["foreign", "own"]);

    const deleting = a.refresh();
    const foreign2 = b.write("foreign", 2, { author: "b" });
    const gone = a.delete("own", { author: "a" });
    await Promise.all([deleting, foreign2, gone]);
    assert.equal(a.view().has("own"), false);
    assert.equal(a.view().read("foreign")?.version, 2);
  });
});

test("a file written when tags were a list of names opens with each name tagged true, in its entries and its log", async () => {
  const dir = tempDir();
  const path = join(dir, "colony.db");
  try {
    const first = createColony({ backend: sqliteBackend({ path }) });
    const board = await first.board("old");
    await board.write("a", 1, { author: "w", tags: { x: true, y: true } });
    await board.write("b", 2, { author: "w" });
    await board.write("a", 3, { author: "w", tags: { keep: true } });
    await first.close();
    // Back to schema 7, as an older Colony left the file: tags as JSON lists of names.
    const db = new DatabaseSync(path);
    db.exec(`UPDATE entries SET tags = '["keep"]' WHERE key = 'a'; UPDATE entries SET tags = '[]' WHERE key = 'b';
             UPDATE log SET tags = '["x","y"]' WHERE seq = 1; UPDATE log SET tags = '[]' WHERE seq = 2; UPDATE log SET tags = '["keep"]' WHERE seq = 3;
             PRAGMA user_version = 7;`);
    db.close();

    const reopened = createColony({ backend: sqliteBackend({ path }) });
    try {
      const view = (await reopened.board("old")).view();
      assert.deepEqual([view.read("a")?.tags, view.read("b")?.tags], [{ keep: true }, {}]);
      assert.deepEqual(view.readByTag("keep").map((e) => e.key), ["a"]);
      assert.deepEqual((await (await reopened.board("old")).history()).map((r) => r.tags), [{ x: true, y: true }, {}, { keep: true }]);
    } finally {
      await reopened.close();
    }
    const migrated = new DatabaseSync(path, { readOnly: true });
    assert.deepEqual(migrated.prepare("SELECT tags FROM log ORDER BY seq").all().map((r) => r.tags), ['{"x":true,"y":true}', "{}", '{"keep":true}']);
    migrated.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
