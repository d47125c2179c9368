/**
 * The Board contract, run against every backend (see ARCHITECTURE.md, "Board" and "BoardView").
 * A backend's test file calls `boardContract(name, newColony)`; every test gets a fresh colony
 * from `newColony` and calls its `cleanup` afterwards.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import {
  ClosedError,
  ColonyError,
  ConfigError,
  InvalidKeyError,
  InvalidValueError,
  VersionConflictError,
  type Board,
  type Colony,
  type ColonyOptions,
  type Entry,
  type LogRecord,
  type Tags,
  type WatchOptions,
} from "../../src/index.ts";

export interface ColonyUnderTest {
  colony: Colony;
  /** Closes the colony (again, if a test already did) and removes what it left on disk. */
  cleanup(): Promise<void>;
}

/** Options a test may ask of the colony; a factory that ignores them must not be used for those tests. */
export interface ColonyUnderTestOptions {
  maxValueBytes?: number;
  retention?: ColonyOptions["retention"];
  /** How long a task board reserves a task for a worker (the task contract's routing tests). */
  reserveMs?: ColonyOptions["reserveMs"];
}

export type NewColony = (options?: ColonyUnderTestOptions) => Promise<ColonyUnderTest>;

const BOARD = "contract";
const WATCH_TIMEOUT_MS = 10_000;

/** Everything a failed operation must leave as it was: the log, the head, the entries. */
async function state(board: Board) {
  return {
    seq: board.seq,
    history: await board.history(),
    entries: board.view().entries(),
  };
}

async function assertNothingWritten(board: Board, before: Awaited<ReturnType<typeof state>>): Promise<void> {
  assert.deepEqual(await state(board), before);
  await board.refresh();
  assert.equal(board.seq, before.seq);
}

/** Runs `board.watch(options)` in the background, keeping what it yields. */
function startWatch(board: Board, options: WatchOptions) {
  const records: LogRecord[] = [];
  const waiters = new Set<{ count: number; resolve: () => void }>();
  const done = (async () => {
    for await (const record of board.watch(options)) {
      records.push(record);
      for (const w of waiters) {
        if (records.length >= w.count) {
          waiters.delete(w);
          w.resolve();
        }
      }
    }
  })();
  return {
    records,
    /** Ends when the watch ends, so a watch that never ends fails the test by its timeout. */
    done,
    /** Resolves once `count` records have arrived; rejects if the watch ends first. */
    waitFor(count: number): Promise<void> {
      if (records.length >= count) return Promise.resolve();
      const arrived = new Promise<void>((resolve) => waiters.add({ count, resolve }));
      const ended = done.then(() => {
        if (records.length < count) throw new Error(`watch ended after ${records.length} records, expected ${count}`);
      });
      return Promise.race([arrived, ended]);
    },
  };
}

function assertGapFree(records: readonly LogRecord[], from = 1): void {
  assert.deepEqual(
    records.map((r) => r.seq),
    records.map((_, i) => from + i),
  );
}

function assertDeepFrozen(value: unknown): void {
  if (typeof value !== "object" || value === null) return;
  assert.ok(Object.isFrozen(value), `expected ${JSON.stringify(value)} to be frozen`);
  for (const child of Object.values(value)) assertDeepFrozen(child);
}

/** Folds a log into live entries: what the board must hold after those records. */
function replay(records: readonly LogRecord[]): Map<string, { value: unknown; version: number; author: string; tags: Tags }> {
  const live = new Map<string, { value: unknown; version: number; author: string; tags: Tags }>();
  for (const r of records) {
    if (r.op === "delete") live.delete(r.key);
    else live.set(r.key, { value: r.value, version: r.version, author: r.author, tags: r.tags });
  }
  return live;
}

export function boardContract(name: string, newColony: NewColony): void {
  describe(`Board contract: ${name}`, () => {
    let current: ColonyUnderTest;
    let colony: Colony;
    let board: Board;

    beforeEach(async () => {
      current = await newColony();
      colony = current.colony;
      board = await colony.board(BOARD);
    });

    afterEach(async () => {
      await current.cleanup();
    });

    describe("write", () => {
      test("returns the Entry {key, value, author, version, createdAt, updatedAt, tags}", async () => {
        const before = Date.now();
        const entry = await board.write("task/1", { title: "find trails", n: [1, 2, null] }, { author: "scout", tags: ["todo"] });
        const after = Date.now();
        assert.deepEqual(Object.keys(entry).sort(), ["author", "createdAt", "key", "tags", "updatedAt", "value", "version"]);
        assert.equal(entry.key, "task/1");
        assert.deepEqual(entry.value, { title: "find trails", n: [1, 2, null] });
        assert.equal(entry.author, "scout");
        assert.equal(entry.version, 1);
        assert.deepEqual(entry.tags, { todo: true });
        assert.ok(Number.isInteger(entry.createdAt) && entry.createdAt >= before && entry.createdAt <= after);
        assert.equal(entry.updatedAt, entry.createdAt);
        assert.deepEqual(await board.get("task/1"), entry);
        assert.deepEqual(board.view().read("task/1"), entry);
      });

      test("version starts at 1 and grows by 1 on every write of that key; createdAt stays", async () => {
        const first = await board.write("k", 0, { author: "a" });
        let last = first;
        for (let i = 1; i <= 5; i++) {
          const entry = await board.write("k", i, { author: i % 2 ? "b" : "a" });
          assert.equal(entry.version, i + 1);
          assert.equal(entry.createdAt, first.createdAt);
          assert.ok(entry.updatedAt >= last.updatedAt);
          last = entry;
        }
        const got = await board.get("k");
        assert.equal(got?.version, 6);
        assert.equal(got?.value, 5);
        assert.equal(got?.author, "b");
        assert.equal(got?.createdAt, first.createdAt);
      });

      test("each key has its own versions", async () => {
        await board.write("a", 1, { author: "x" });
        await board.write("a", 2, { author: "x" });
        const b = await board.write("b", 1, { author: "x" });
        assert.equal(b.version, 1);
        assert.equal((await board.get("a"))?.version, 2);
      });

      test("tags carry JSON values; a list of names is shorthand for each tagged true; no tags means {}", async () => {
        const valued = await board.write("t", 1, { author: "a", tags: { status: "pending_review", confidence: 0.85, reviewers: ["critic"], meta: { round: 1 }, none: null } });
        const expected = { status: "pending_review", confidence: 0.85, reviewers: ["critic"], meta: { round: 1 }, none: null };
        assert.deepEqual(valued.tags, expected);
        assert.deepEqual((await board.get("t"))?.tags, expected);
        assert.deepEqual(board.view().read("t")?.tags, expected);
        assert.deepEqual((await board.history({ key: "t" }))[0]?.tags, expected);
        const listed = await board.write("t", 2, { author: "a", tags: ["x", "y", "x"] });
        assert.deepEqual(listed.tags, { x: true, y: true });
        assert.deepEqual((await board.get("t"))?.tags, { x: true, y: true });
        const untagged = await board.write("t", 3, { author: "a" });
        assert.deepEqual(untagged.tags, {});
        assert.deepEqual(board.view().read("t")?.tags, {});
        assert.deepEqual((await board.history({ key: "t" })).map((r) => r.tags), [expected, { x: true, y: true }, {}]);
      });

      test("the caller's tags object is copied: changing it after the write changes nothing stored", async () => {
        const tags = { status: "draft", scores: [1] };
        await board.write("k", 1, { author: "a", tags });
        tags.status = "changed";
        tags.scores.push(2);
        assert.deepEqual((await board.get("k"))?.tags, { status: "draft", scores: [1] });
        assert.deepEqual(board.view().read("k")?.tags, { status: "draft", scores: [1] });
      });

      test("JSON values round-trip unchanged", async () => {
        const values: unknown[] = [
          null,
          true,
          false,
          0,
          -17.25,
          Number.MAX_SAFE_INTEGER,
          "",
          "plain",
          "ünïcødé 🐜 \u2028 \n\t\"quoted\"",
          [],
          {},
          [1, "two", [3, { four: 4 }], null],
          { nested: { deeper: { deepest: [true, { x: null }] } }, "key with spaces": 1, "": "empty key" },
          Object.assign(Object.create(null) as object, { bare: 1 }),
        ];
        for (const [i, value] of values.entries()) {
          const key = `v/${i}`;
          const written = await board.write(key, value, { author: "a" });
          assert.deepEqual(written.value, JSON.parse(JSON.stringify(value)), `written ${key}`);
          assert.deepEqual((await board.get(key))?.value, JSON.parse(JSON.stringify(value)), `get ${key}`);
          assert.deepEqual(board.view().read(key)?.value, JSON.parse(JSON.stringify(value)), `view ${key}`);
        }
      });

      test("the board keeps its own copy: changing the caller's object later changes nothing", async () => {
        const value = { list: [1, 2], inner: { n: 1 } };
        await board.write("copy", value, { author: "a" });
        value.list.push(3);
        value.inner.n = 99;
        assert.deepEqual((await board.get("copy"))?.value, { list: [1, 2], inner: { n: 1 } });
        assert.deepEqual(board.view().read("copy")?.value, { list: [1, 2], inner: { n: 1 } });
      });

      test("every write appends exactly one log record {seq, op, key, version, author, at, value, tags}", async () => {
        const e1 = await board.write("a", { v: 1 }, { author: "w1", tags: ["t"] });
        const e2 = await board.write("a", { v: 2 }, { author: "w2" });
        const history = await board.history();
        assert.equal(history.length, 2);
        assert.deepEqual(history[0], { seq: 1, op: "write", key: "a", version: 1, author: "w1", at: e1.updatedAt, value: { v: 1 }, tags: { t: true } });
        assert.deepEqual(history[1], { seq: 2, op: "write", key: "a", version: 2, author: "w2", at: e2.updatedAt, value: { v: 2 }, tags: {} });
        assert.equal(board.seq, 2);
      });
    });

    describe("expectedVersion (compare-and-set)", () => {
      test("undefined writes whatever the current version", async () => {
        await board.write("k", 1, { author: "a" });
        await board.write("k", 2, { author: "a" });
        const entry = await board.write("k", 3, { author: "a", expectedVersion: undefined });
        assert.equal(entry.version, 3);
      });

      test("0 creates only: it succeeds on a new key", async () => {
        const entry = await board.write("new", "x", { author: "a", expectedVersion: 0 });
        assert.equal(entry.version, 1);
      });

      test("0 on an existing key is a VersionConflictError and writes nothing", async () => {
        await board.write("k", "original", { author: "a" });
        await board.write("k", "second", { author: "a" });
        const before = await state(board);
        const view = board.view();
        await assert.rejects(board.write("k", "clobber", { author: "b", expectedVersion: 0 }), (error: unknown) => {
          assert.ok(error instanceof VersionConflictError);
          assert.ok(error instanceof ColonyError);
          assert.equal(error.code, "VERSION_CONFLICT");
          assert.equal(error.key, "k");
          assert.equal(error.expectedVersion, 0);
          assert.equal(error.actualVersion, 2);
          return true;
        });
        await assertNothingWritten(board, before);
        assert.equal((await board.get("k"))?.value, "second");
        assert.equal(board.view(), view, "a refused write does not move the board's view");
      });

      test("n succeeds only when the current version is n", async () => {
        await board.write("k", 1, { author: "a" });
        const second = await board.write("k", 2, { author: "a", expectedVersion: 1 });
        assert.equal(second.version, 2);
        const third = await board.write("k", 3, { author: "a", expectedVersion: 2 });
        assert.equal(third.version, 3);
      });

      test("a stale n is a VersionConflictError naming the actual version, and writes nothing", async () => {
        await board.write("k", 1, { author: "a" });
        await board.write("k", 2, { author: "a" });
        await board.write("k", 3, { author: "a" });
        for (const stale of [1, 2, 4, 100]) {
          const before = await state(board);
          await assert.rejects(board.write("k", "late", { author: "b", expectedVersion: stale }), (error: unknown) => {
            assert.ok(error instanceof VersionConflictError);
            assert.deepEqual([error.key, error.expectedVersion, error.actualVersion], ["k", stale, 3]);
            return true;
          });
          await assertNothingWritten(board, before);
        }
        assert.equal((await board.get("k"))?.value, 3);
      });

      test("n on a key that does not exist reports actualVersion 0", async () => {
        const before = await state(board);
        await assert.rejects(board.write("ghost", 1, { author: "a", expectedVersion: 1 }), (error: unknown) => {
          assert.ok(error instanceof VersionConflictError);
          assert.deepEqual([error.key, error.expectedVersion, error.actualVersion], ["ghost", 1, 0]);
          return true;
        });
        await assertNothingWritten(board, before);
        assert.equal(await board.get("ghost"), undefined);
      });

      test("a deleted key counts as version 0: 0 re-creates it, its old version conflicts", async () => {
        await board.write("k", 1, { author: "a" });
        await board.write("k", 2, { author: "a" });
        await board.delete("k", { author: "a" }); // tombstone: version 3
        await assert.rejects(board.write("k", "x", { author: "a", expectedVersion: 2 }), (error: unknown) => {
          assert.ok(error instanceof VersionConflictError);
          assert.equal(error.actualVersion, 0);
          return true;
        });
        await assert.rejects(board.write("k", "x", { author: "a", expectedVersion: 3 }), VersionConflictError);
        const recreated = await board.write("k", "back", { author: "a", expectedVersion: 0 });
        assert.equal(recreated.version, 4);
      });

      test("an expectedVersion that is not a whole number >= 0 is a ConfigError and writes nothing", async () => {
        await board.write("k", 1, { author: "a" });
        const before = await state(board);
        for (const bad of [-1, 1.5, Number.NaN, "1"]) {
          await assert.rejects(board.write("k", 2, { author: "a", expectedVersion: bad as number }), ConfigError);
          await assert.rejects(board.delete("k", { author: "a", expectedVersion: bad as number }), ConfigError);
        }
        await assertNothingWritten(board, before);
      });

      test("concurrent create-only writes of one key: exactly one wins", async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) => board.write("lock", i, { author: `w${i}`, expectedVersion: 0 })),
        );
        const won = results.filter((r) => r.status === "fulfilled");
        const lost = results.filter((r) => r.status === "rejected");
        assert.equal(won.length, 1);
        for (const r of lost) assert.ok(r.reason instanceof VersionConflictError);
        assert.equal((await board.get("lock"))?.version, 1);
        assert.equal((await board.history()).length, 1);
      });
    });

    describe("delete", () => {
      test("a missing key resolves false and writes nothing", async () => {
        await board.write("other", 1, { author: "a" });
        const before = await state(board);
        assert.equal(await board.delete("missing", { author: "a" }), false);
        assert.equal(await board.delete("missing", { author: "a", expectedVersion: 0 }), false);
        await assertNothingWritten(board, before);
      });

      test("deletes the entry and appends a tombstone record with the next version", async () => {
        await board.write("k", "v1", { author: "a", tags: ["t"] });
        await board.write("k", "v2", { author: "a", tags: ["t"] });
        assert.equal(await board.delete("k", { author: "reaper" }), true);
        assert.equal(await board.get("k"), undefined);
        assert.equal(board.view().has("k"), false);
        assert.equal(board.view().read("k"), undefined);
        assert.deepEqual(board.view().readByTag("t"), []);
        const history = await board.history();
        assert.equal(history.length, 3);
        const tombstone = history[2]!;
        assert.equal(tombstone.seq, 3);
        assert.equal(tombstone.op, "delete");
        assert.equal(tombstone.key, "k");
        assert.equal(tombstone.version, 3);
        assert.equal(tombstone.author, "reaper");
        assert.equal(tombstone.value, null);
        assert.deepEqual(tombstone.tags, {});
        assert.equal(board.seq, 3);
      });

      test("deleting a deleted key resolves false and writes nothing", async () => {
        await board.write("k", 1, { author: "a" });
        await board.delete("k", { author: "a" });
        const before = await state(board);
        assert.equal(await board.delete("k", { author: "a" }), false);
        await assertNothingWritten(board, before);
      });

      test("a key written again after a delete continues its versions and gets a new createdAt", async () => {
        const first = await board.write("k", 1, { author: "a" });
        await board.write("k", 2, { author: "a" });
        await board.delete("k", { author: "a" });
        const again = await board.write("k", "again", { author: "b" });
        assert.equal(again.version, 4);
        assert.ok(again.createdAt >= first.createdAt);
        assert.equal(again.createdAt, again.updatedAt);
        assert.deepEqual(await board.get("k"), again);
        assert.deepEqual(board.view().read("k"), again);
        assert.equal((await board.write("k", "more", { author: "b" })).version, 5);
        assert.deepEqual(
          (await board.history({ key: "k" })).map((r) => [r.op, r.version]),
          [["write", 1], ["write", 2], ["delete", 3], ["write", 4], ["write", 5]],
        );
      });

      test("expectedVersion n deletes only when the current version is n", async () => {
        await board.write("k", 1, { author: "a" });
        await board.write("k", 2, { author: "a" });
        const before = await state(board);
        await assert.rejects(board.delete("k", { author: "a", expectedVersion: 1 }), (error: unknown) => {
          assert.ok(error instanceof VersionConflictError);
          assert.deepEqual([error.key, error.expectedVersion, error.actualVersion], ["k", 1, 2]);
          return true;
        });
        await assert.rejects(board.delete("k", { author: "a", expectedVersion: 0 }), (error: unknown) => {
          assert.ok(error instanceof VersionConflictError);
          assert.deepEqual([error.expectedVersion, error.actualVersion], [0, 2]);
          return true;
        });
        await assertNothingWritten(board, before);
        assert.equal((await board.get("k"))?.value, 2);
        assert.equal(await board.delete("k", { author: "a", expectedVersion: 2 }), true);
        assert.equal(await board.get("k"), undefined);
      });

      test("expectedVersion n on a missing key is a VersionConflictError with actualVersion 0", async () => {
        const before = await state(board);
        await assert.rejects(board.delete("ghost", { author: "a", expectedVersion: 3 }), (error: unknown) => {
          assert.ok(error instanceof VersionConflictError);
          assert.deepEqual([error.key, error.expectedVersion, error.actualVersion], ["ghost", 3, 0]);
          return true;
        });
        await assertNothingWritten(board, before);
      });
    });

    describe("get and view", () => {
      test("get reads the store: undefined for a missing key, the newest entry otherwise", async () => {
        assert.equal(await board.get("nothing"), undefined);
        await board.write("k", 1, { author: "a" });
        await board.write("k", 2, { author: "b" });
        const got = await board.get<number>("k");
        assert.equal(got?.value, 2);
        assert.equal(got?.version, 2);
        assert.equal(got?.author, "b");
      });

      test("a view taken before a write never changes", async () => {
        await board.write("a", 1, { author: "x", tags: ["t"] });
        await board.write("b", 1, { author: "x" });
        const view = board.view();
        const readA = view.read("a");
        await board.write("a", 2, { author: "y", tags: ["t"] });
        await board.write("c", 1, { author: "y" });
        await board.delete("b", { author: "y" });
        assert.equal(view.seq, 2);
        assert.equal(view.size, 2);
        assert.deepEqual(view.keys(), ["a", "b"]);
        assert.equal(view.has("b"), true);
        assert.equal(view.has("c"), false);
        assert.equal(view.read("a"), readA);
        assert.equal(view.read("a")?.value, 1);
        assert.equal(view.readByTag("t")[0]?.version, 1);
        assert.deepEqual(view.readByAuthor("y"), []);
        assert.equal(view.board, BOARD);

        const now = board.view();
        assert.equal(now.seq, 5);
        assert.deepEqual(now.keys(), ["a", "c"]);
        assert.equal(now.read("a")?.value, 2);
      });

      test("the board's own writes show in the next view at once", async () => {
        const entry = await board.write("mine", { n: 1 }, { author: "a" });
        assert.deepEqual(board.view().read("mine"), entry);
        assert.equal(board.view().seq, board.seq);
        await board.delete("mine", { author: "a" });
        assert.equal(board.view().has("mine"), false);
      });

      test("entries and values are deeply frozen, in views, from get and from write", async () => {
        const written = await board.write("k", { list: [1, { deep: [2] }], obj: { x: "y" } }, { author: "a", tags: { t: true, scores: [1, { deep: 2 }] } });
        const fromGet = await board.get("k");
        const fromView = board.view().read("k");
        for (const entry of [written, fromGet, fromView]) {
          assert.ok(entry);
          assertDeepFrozen(entry);
          assert.ok(Object.isFrozen(entry.tags));
          const value = entry.value as { list: unknown[]; obj: { x: string } };
          assert.throws(() => {
            value.obj.x = "mutated";
          }, TypeError);
          assert.throws(() => value.list.push(3), TypeError);
          assert.throws(() => ((entry.tags as Record<string, unknown>).u = 1), TypeError);
          assert.throws(() => (entry.tags.scores as unknown[]).push(3), TypeError);
        }
        assert.deepEqual((await board.get("k"))?.value, { list: [1, { deep: [2] }], obj: { x: "y" } });
      });

      test("keys() are in code-point order, optionally filtered by prefix", async () => {
        // U+FF01 sorts before U+1F41C in code points, after it in UTF-16 code units.
        const keys = ["b", "a/b", "ab", "a", "A", "a/a", "\uff01", "🐜", "é", "z", "a/b/c", "10", "9"];
        for (const key of keys) await board.write(key, key, { author: "x" });
        const byCodePoint = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        const view = board.view();
        assert.deepEqual(view.keys(), byCodePoint);
        assert.deepEqual(view.keys(), ["10", "9", "A", "a", "a/a", "a/b", "a/b/c", "ab", "b", "z", "é", "\uff01", "🐜"]);
        assert.deepEqual(view.keys("a/"), ["a/a", "a/b", "a/b/c"]);
        assert.deepEqual(view.keys("a"), ["a", "a/a", "a/b", "a/b/c", "ab"]);
        assert.deepEqual(view.keys("nope"), []);
        assert.deepEqual(view.keys(""), byCodePoint);
        assert.deepEqual(view.entries().map((e) => e.key), byCodePoint);
        assert.equal(view.size, keys.length);
        const returned = view.keys();
        returned.reverse();
        assert.deepEqual(view.keys(), byCodePoint, "the caller's array is its own copy");
      });

      test("readByTag returns tagged entries in key order, filtered by the predicate", async () => {
        await board.write("t/3", { score: 3 }, { author: "a", tags: ["task", "open"] });
        await board.write("t/1", { score: 1 }, { author: "a", tags: ["task"] });
        await board.write("t/2", { score: 2 }, { author: "a", tags: ["task", "open"] });
        await board.write("note", { score: 9 }, { author: "a", tags: ["note"] });
        const view = board.view();
        assert.deepEqual(view.readByTag("task").map((e) => e.key), ["t/1", "t/2", "t/3"]);
        assert.deepEqual(view.readByTag("open").map((e) => e.key), ["t/2", "t/3"]);
        assert.deepEqual(
          view.readByTag("task", (_, e) => (e.value as { score: number }).score >= 2).map((e) => e.key),
          ["t/2", "t/3"],
        );
        assert.deepEqual(view.readByTag("task", () => false), []);
        assert.deepEqual(view.readByTag("missing"), []);
        // The predicate sees the tag's value first.
        await board.write("r/1", "a", { author: "a", tags: { status: "pending_review", confidence: 0.85 } });
        await board.write("r/2", "b", { author: "a", tags: { status: "approved", confidence: 0.9 } });
        await board.write("r/3", "c", { author: "a", tags: { status: "pending_review", confidence: 0.4 } });
        await board.write("r/4", "d", { author: "a", tags: { status: null } });
        const reviewed = board.view();
        assert.deepEqual(reviewed.readByTag("status", (v) => v === "pending_review").map((e) => e.key), ["r/1", "r/3"]);
        assert.deepEqual(reviewed.readByTag("confidence", (v) => typeof v === "number" && v > 0.7).map((e) => e.key), ["r/1", "r/2"]);
        assert.deepEqual(reviewed.readByTag("status").map((e) => e.key), ["r/1", "r/2", "r/3", "r/4"], "a tag whose value is null is still carried");
        assert.deepEqual(reviewed.readByTag("status", (v, e) => v === "pending_review" && e.value === "c").map((e) => e.key), ["r/3"]);
        // A rewrite without the tag drops the entry from the tag.
        await board.write("t/2", { score: 2 }, { author: "a", tags: ["task"] });
        assert.deepEqual(board.view().readByTag("open").map((e) => e.key), ["t/3"]);
      });

      test("readByAuthor returns the entries whose latest write is by that author", async () => {
        await board.write("x", 1, { author: "ann" });
        await board.write("y", 1, { author: "bob" });
        await board.write("w", 1, { author: "ann" });
        assert.deepEqual(board.view().readByAuthor("ann").map((e) => e.key), ["w", "x"]);
        await board.write("x", 2, { author: "bob" });
        const view = board.view();
        assert.deepEqual(view.readByAuthor("ann").map((e) => e.key), ["w"]);
        assert.deepEqual(view.readByAuthor("bob").map((e) => e.key), ["x", "y"]);
        assert.deepEqual(view.readByAuthor("nobody"), []);
      });

      test("seq is the log position: +1 per write or delete, unchanged by refused ones", async () => {
        assert.equal(board.seq, 0);
        assert.equal(board.view().seq, 0);
        await board.write("a", 1, { author: "x" });
        assert.equal(board.view().seq, 1);
        await board.write("b", 1, { author: "x" });
        await board.delete("a", { author: "x" });
        assert.equal(board.view().seq, 3);
        await assert.rejects(board.write("b", 2, { author: "x", expectedVersion: 9 }), VersionConflictError);
        assert.equal(await board.delete("a", { author: "x" }), false);
        assert.equal(board.seq, 3);
        assert.equal(board.view().seq, 3);
        const history = await board.history();
        assert.equal(history.at(-1)?.seq, 3);
      });

      test("another board on the same colony is separate, with its own seq", async () => {
        const other = await colony.board("other-board");
        assert.equal(await colony.board(BOARD), board, "the same name gives the same object");
        await board.write("k", "here", { author: "a" });
        await other.write("k", "there", { author: "a" });
        await other.write("only-there", 1, { author: "a" });
        assert.equal((await board.get("k"))?.value, "here");
        assert.equal((await other.get("k"))?.version, 1);
        assert.equal(board.seq, 1);
        assert.equal(other.seq, 2);
        assert.deepEqual(board.view().keys(), ["k"]);
        assertGapFree(await other.history());
      });
    });

    describe("history", () => {
      async function fill(): Promise<void> {
        await board.write("a", 1, { author: "x" }); // 1
        await board.write("b", 1, { author: "y" }); // 2
        await board.write("a", 2, { author: "x" }); // 3
        await board.delete("b", { author: "y" }); // 4
        await board.write("c", 1, { author: "z" }); // 5
        await board.write("a", 3, { author: "x" }); // 6
        await board.write("b", 2, { author: "y" }); // 7
      }

      test("is gap-free from seq 1, in order, one record per write and delete", async () => {
        await fill();
        const history = await board.history();
        assertGapFree(history);
        assert.deepEqual(
          history.map((r) => [r.op, r.key, r.version]),
          [
            ["write", "a", 1],
            ["write", "b", 1],
            ["write", "a", 2],
            ["delete", "b", 2],
            ["write", "c", 1],
            ["write", "a", 3],
            ["write", "b", 3],
          ],
        );
        for (const record of history) assertDeepFrozen(record);
      });

      test("replaying it gives the board's entries", async () => {
        await fill();
        const replayed = replay(await board.history());
        const entries = board.view().entries();
        assert.deepEqual([...replayed.keys()].sort(), entries.map((e) => e.key));
        for (const entry of entries) {
          const r = replayed.get(entry.key);
          assert.deepEqual({ value: entry.value, version: entry.version, author: entry.author, tags: entry.tags }, r);
        }
      });

      test("since, limit and key select records", async () => {
        await fill();
        assert.deepEqual((await board.history({ since: 4 })).map((r) => r.seq), [5, 6, 7]);
        assert.deepEqual((await board.history({ since: 7 })).map((r) => r.seq), []);
        assert.deepEqual((await board.history({ since: 100 })).map((r) => r.seq), []);
        assert.deepEqual((await board.history({ limit: 2 })).map((r) => r.seq), [1, 2]);
        assert.deepEqual((await board.history({ since: 2, limit: 3 })).map((r) => r.seq), [3, 4, 5]);
        assert.deepEqual((await board.history({ key: "a" })).map((r) => r.seq), [1, 3, 6]);
        assert.deepEqual((await board.history({ key: "b" })).map((r) => [r.op, r.version]), [["write", 1], ["delete", 2], ["write", 3]]);
        assert.deepEqual((await board.history({ key: "a", since: 1 })).map((r) => r.seq), [3, 6]);
        assert.deepEqual((await board.history({ key: "a", since: 1, limit: 1 })).map((r) => r.seq), [3]);
        assert.deepEqual((await board.history({ key: "never" })).map((r) => r.seq), []);
      });

      test("paging with since and limit visits every record once", async () => {
        for (let i = 0; i < 23; i++) await board.write(`k${i % 4}`, i, { author: "p" });
        const paged: LogRecord[] = [];
        for (;;) {
          const page = await board.history({ since: paged.at(-1)?.seq ?? 0, limit: 5 });
          if (page.length === 0) break;
          paged.push(...page);
        }
        assertGapFree(paged);
        assert.equal(paged.length, 23);
        assert.deepEqual(paged, await board.history());
      });

      test("bad options are ConfigErrors or InvalidKeyErrors", async () => {
        await assert.rejects(board.history({ limit: 0 }), ConfigError);
        await assert.rejects(board.history({ limit: 1.5 }), ConfigError);
        await assert.rejects(board.history({ since: -1 }), ConfigError);
        await assert.rejects(board.history({ since: 0.5 }), ConfigError);
        await assert.rejects(board.history({ key: "" }), InvalidKeyError);
      });
    });

    describe("watch", () => {
      test("yields every record after since, then live writes, in order, none twice", { timeout: WATCH_TIMEOUT_MS }, async () => {
        await board.write("a", 1, { author: "x" });
        await board.write("b", 1, { author: "x" });
        await board.delete("a", { author: "x" });
        const controller = new AbortController();
        const watch = startWatch(board, { since: 1, signal: controller.signal });
        await watch.waitFor(2);
        const live = 40;
        await Promise.all(
          Array.from({ length: live }, (_, i) =>
            i % 10 === 9 ? board.delete(`live/${i - 1}`, { author: "y" }) : board.write(`live/${i}`, i, { author: "y" }),
          ),
        );
        const total = (await board.history()).length;
        await watch.waitFor(total - 1);
        controller.abort();
        await watch.done;
        assertGapFree(watch.records, 2);
        assert.deepEqual(watch.records, (await board.history({ since: 1 })));
      });

      test("since 0 yields the whole log", { timeout: WATCH_TIMEOUT_MS }, async () => {
        for (let i = 0; i < 5; i++) await board.write(`k${i}`, i, { author: "x" });
        const controller = new AbortController();
        const watch = startWatch(board, { since: 0, signal: controller.signal });
        await watch.waitFor(5);
        controller.abort();
        await watch.done;
        assert.deepEqual(watch.records, await board.history());
      });

      test("without since it starts at the board's head: only new writes", { timeout: WATCH_TIMEOUT_MS }, async () => {
        await board.write("old", 1, { author: "x" });
        await board.write("old", 2, { author: "x" });
        const controller = new AbortController();
        // It takes its position as it starts, from what this board has seen: nothing to wait for.
        const watch = startWatch(board, { signal: controller.signal });
        await board.write("new", 1, { author: "x" });
        await board.write("new", 2, { author: "x" });
        await watch.waitFor(2);
        controller.abort();
        await watch.done;
        assert.deepEqual(watch.records.map((r) => [r.seq, r.key, r.version]), [
          [3, "new", 1],
          [4, "new", 2],
        ]);
      });

      test("without since, a write already on its way when the watch starts is not missed", { timeout: WATCH_TIMEOUT_MS }, async () => {
        await board.write("old", 1, { author: "x" });
        const controller = new AbortController();
        const landing = board.write("new", 1, { author: "x" });
        const watch = startWatch(board, { signal: controller.signal });
        await landing;
        await watch.waitFor(1);
        controller.abort();
        await watch.done;
        assert.deepEqual(watch.records.map((r) => [r.seq, r.key]), [[2, "new"]]);
      });

      test("two watches each see every record", { timeout: WATCH_TIMEOUT_MS }, async () => {
        const controller = new AbortController();
        const first = startWatch(board, { since: 0, signal: controller.signal });
        const second = startWatch(board, { since: 0, signal: controller.signal });
        for (let i = 0; i < 20; i++) await board.write(`k${i % 3}`, i, { author: "x" });
        await Promise.all([first.waitFor(20), second.waitFor(20)]);
        controller.abort();
        await Promise.all([first.done, second.done]);
        const history = await board.history();
        assert.deepEqual(first.records, history);
        assert.deepEqual(second.records, history);
      });

      test("ends when its signal aborts while it waits", { timeout: WATCH_TIMEOUT_MS }, async () => {
        const controller = new AbortController();
        const watch = startWatch(board, { signal: controller.signal });
        // Once it has shown a write made after it started, it is running and, with nothing more
        // to show, goes back to waiting for the next.
        await board.write("first", 1, { author: "x" });
        await watch.waitFor(1);
        controller.abort();
        await watch.done;
        assert.deepEqual(watch.records.map((r) => [r.seq, r.key]), [[1, "first"]]);
        await board.write("after", 1, { author: "x" });
        assert.deepEqual(watch.records.map((r) => [r.seq, r.key]), [[1, "first"]]);
      });

      test("an already aborted signal yields nothing", { timeout: WATCH_TIMEOUT_MS }, async () => {
        await board.write("k", 1, { author: "x" });
        const watch = startWatch(board, { since: 0, signal: AbortSignal.abort() });
        await watch.done;
        assert.deepEqual(watch.records, []);
      });

      test("ends when the colony closes", { timeout: WATCH_TIMEOUT_MS }, async () => {
        await board.write("k", 1, { author: "x" });
        const watch = startWatch(board, { since: 0 });
        await watch.waitFor(1);
        await colony.close();
        await watch.done;
        assert.deepEqual(watch.records.map((r) => r.seq), [1]);
      });

      test("breaking out of the loop ends the watch", { timeout: WATCH_TIMEOUT_MS }, async () => {
        for (let i = 0; i < 3; i++) await board.write(`k${i}`, i, { author: "x" });
        const seen: number[] = [];
        for await (const record of board.watch({ since: 0 })) {
          seen.push(record.seq);
          if (seen.length === 2) break;
        }
        assert.deepEqual(seen, [1, 2]);
      });

      test("a bad since is a ConfigError", async () => {
        const iterator = board.watch({ since: -1 });
        await assert.rejects(iterator.next(), ConfigError);
      });
    });

    describe("invalid keys", () => {
      const badKeys: [string, unknown][] = [
        ["empty", ""],
        ["513 ASCII bytes", "k".repeat(513)],
        ["257 two-byte characters (514 bytes)", "é".repeat(257)],
        ["171 three-byte characters (513 bytes)", "€".repeat(171)],
        ["a newline", "line\nbreak"],
        ["NUL", "nul\u0000"],
        ["a tab", "\ttab"],
        ["DEL", "del\u007f"],
        ["a C1 control", "c1\u0085"],
        ["a lone high surrogate", "half\ud83d"],
        ["a lone low surrogate", "\ude00half"],
        ["not a string", 42],
      ];

      for (const [label, key] of badKeys) {
        test(`${label}: write, delete, get and history refuse it with InvalidKeyError`, async () => {
          await board.write("existing", 1, { author: "a" });
          const before = await state(board);
          const isInvalidKey = (error: unknown) => {
            assert.ok(error instanceof InvalidKeyError, String(error));
            assert.equal(error.code, "INVALID_KEY");
            if (typeof key === "string") assert.equal(error.key, key);
            return true;
          };
          await assert.rejects(board.write(key as string, "v", { author: "a" }), isInvalidKey);
          await assert.rejects(board.write(key as string, "v", { author: "a", expectedVersion: 0 }), isInvalidKey);
          await assert.rejects(board.delete(key as string, { author: "a" }), isInvalidKey);
          await assert.rejects(board.get(key as string), isInvalidKey);
          if (key !== "") await assert.rejects(board.history({ key: key as string }), isInvalidKey);
          await assertNothingWritten(board, before);
        });
      }

      test("keys up to 512 bytes of UTF-8 are fine, any non-control character included", async () => {
        const good = ["k".repeat(512), "é".repeat(256), "€".repeat(170) + "ab", "🐜".repeat(128), " ", "a b/c:d#e?f", "\u00a0nbsp", "日本語"];
        for (const key of good) {
          const entry = await board.write(key, key, { author: "a" });
          assert.equal(entry.key, key);
          assert.equal((await board.get(key))?.value, key);
        }
        assert.equal(board.view().size, good.length);
      });
    });

    describe("invalid values", () => {
      class Point {
        x = 1;
      }
      const cycle: Record<string, unknown> = { name: "loop" };
      cycle.self = cycle;
      const deepCycle: Record<string, unknown> = { a: { b: [] as unknown[] } };
      ((deepCycle.a as { b: unknown[] }).b).push(deepCycle);
      const holey: unknown[] = [1];
      holey[2] = 3;
      const badValues: [string, unknown, string][] = [
        ["undefined", undefined, "value"],
        ["NaN", Number.NaN, "value"],
        ["Infinity", Number.POSITIVE_INFINITY, "value"],
        ["a function", () => 1, "value"],
        ["a symbol", Symbol("s"), "value"],
        ["a BigInt", 10n, "value"],
        ["a Date", new Date(0), "value"],
        ["a Map", new Map([["a", 1]]), "value"],
        ["a Set", new Set([1]), "value"],
        ["a class instance", new Point(), "value"],
        ["a cycle", cycle, "value.self"],
        ["a cycle through an array", deepCycle, "value.a.b[0]"],
        ["nested undefined", { a: { b: undefined } }, "value.a.b"],
        ["undefined in an array", [1, undefined], "value[1]"],
        ["a hole in an array", holey, "value[1]"],
        ["nested NaN", { list: [0, { n: Number.NaN }] }, "value.list[1].n"],
        ["a nested Date", { when: new Date(0) }, "value.when"],
        ["a nested Map", [new Map()], "value[0]"],
        ["a nested BigInt", { n: 1n }, "value.n"],
        ["a nested function", { f() {} }, "value.f"],
        ["a string with a lone surrogate", { s: "bad\ud800" }, "value.s"],
      ];

      for (const [label, value, path] of badValues) {
        test(`${label} is an InvalidValueError at ${path}, and nothing is written`, async () => {
          await board.write("k", "good", { author: "a" });
          const before = await state(board);
          for (const key of ["k", "fresh"]) {
            await assert.rejects(board.write(key, value, { author: "a" }), (error: unknown) => {
              assert.ok(error instanceof InvalidValueError, String(error));
              assert.equal(error.code, "INVALID_VALUE");
              assert.equal(error.key, key);
              assert.equal(error.path, path);
              return true;
            });
          }
          await assertNothingWritten(board, before);
          assert.equal((await board.get("k"))?.value, "good");
          assert.equal(await board.get("fresh"), undefined);
        });
      }

      test("a value shared twice without a cycle is fine", async () => {
        const shared = { n: 1 };
        const entry = await board.write("dag", { a: shared, b: [shared, shared] }, { author: "a" });
        assert.deepEqual(entry.value, { a: { n: 1 }, b: [{ n: 1 }, { n: 1 }] });
      });

      test("bad tags are an InvalidValueError naming the tag, and nothing is written", async () => {
        const before = await state(board);
        const bad: [unknown, string, RegExp][] = [
          [[""], "tags[0]", /a tag name is 1 to 128 bytes/],
          [[1], "tags[0]", /a tag name is a string, got number/],
          [[null], "tags[0]", /got null/],
          ["tag", "tags", /an object of name → JSON value, or a list of names/],
          [{ "": 1 }, `tags[""]`, /a tag name/],
          [{ "x\u0007": 1 }, `tags["x\\u0007"]`, /control character U\+0007/],
          [{ when: new Date(0) }, "tags.when", /Date/],
          [{ score: Number.NaN }, "tags.score", /NaN is not a JSON number/],
          [{ fn: () => 1 }, "tags.fn", /function is not JSON/],
          [Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`t${i}`, i])), "tags", /at most 64 tags, got 65/],
          [{ big: "x".repeat(17 * 1024) }, "tags", /over the limit of 16384; tags are for selecting entries/],
        ];
        for (const [tags, path, message] of bad) {
          await assert.rejects(board.write("k", 1, { author: "a", tags: tags as string[] }), (error: unknown) => {
            assert.ok(error instanceof InvalidValueError, String(error));
            assert.equal(error.path, path, error.message);
            assert.match(error.message, message);
            return true;
          });
        }
        await assertNothingWritten(board, before);
      });
    });

    describe("value size", () => {
      test("a value over maxValueBytes is VALUE_TOO_LARGE, and nothing is written", async () => {
        const small = await newColony({ maxValueBytes: 64 });
        try {
          const b = await small.colony.board(BOARD);
          const fits = "x".repeat(62); // 64 bytes with its quotes
          assert.equal((await b.write("fits", fits, { author: "a" })).value, fits);
          const before = await state(b);
          const tooLarge: unknown[] = ["x".repeat(63), "é".repeat(32), { list: Array.from({ length: 40 }, (_, i) => i) }];
          for (const value of tooLarge) {
            await assert.rejects(b.write("big", value, { author: "a" }), (error: unknown) => {
              assert.ok(error instanceof InvalidValueError);
              assert.equal(error.code, "VALUE_TOO_LARGE");
              assert.equal(error.key, "big");
              assert.equal(error.path, "value");
              return true;
            });
            await assert.rejects(b.write("fits", value, { author: "a", expectedVersion: 1 }), InvalidValueError);
          }
          await assertNothingWritten(b, before);
          assert.equal((await b.get("fits"))?.value, fits);
        } finally {
          await small.cleanup();
        }
      });

      test("the default limit is 1 MiB of serialised JSON", async () => {
        const limit = 1024 * 1024;
        const fits = "x".repeat(limit - 2);
        assert.equal((await board.write("fits", fits, { author: "a" })).version, 1);
        assert.equal(((await board.get<string>("fits"))?.value)?.length, limit - 2);
        const before = await state(board);
        await assert.rejects(board.write("big", "x".repeat(limit - 1), { author: "a" }), (error: unknown) => {
          assert.ok(error instanceof InvalidValueError);
          assert.equal(error.code, "VALUE_TOO_LARGE");
          return true;
        });
        await assertNothingWritten(board, before);
      });
    });

    describe("author", () => {
      test("a write or delete without an author is a ConfigError, and nothing is written", async () => {
        await board.write("k", 1, { author: "a" });
        const before = await state(board);
        const noAuthor: unknown[] = [undefined, {}, { author: "" }, { author: 7 }, { author: null }, { tags: ["t"] }];
        for (const options of noAuthor) {
          await assert.rejects(board.write("k", 2, options as { author: string }), ConfigError);
          await assert.rejects(board.write("new", 2, options as { author: string }), ConfigError);
          await assert.rejects(board.delete("k", options as { author: string }), ConfigError);
        }
        await assertNothingWritten(board, before);
        assert.equal((await board.get("k"))?.value, 1);
      });
    });

    describe("listBoards", () => {
      test("names every board and task board opened, written or not, each sorted, with names that need escaping intact", async () => {
        const names = ["z-last", "a_1", "A-b_c", "__x__", "9"];
        for (const name of names) await (await colony.board(name)).write("k", name, { author: "a" });
        await colony.board("opened-only");
        await colony.tasks("jobs_1");
        const listed = await colony.listBoards();
        for (const name of [...names, BOARD, "opened-only"]) assert.ok(listed.boards.includes(name), `${name} in ${listed.boards.join(", ")}`);
        assert.ok(listed.tasks.includes("jobs_1"), `jobs_1 in ${listed.tasks.join(", ")}`);
        assert.ok(!listed.boards.includes("jobs_1"), "a task board is not a board");
        assert.deepEqual(listed.boards, [...listed.boards].sort());
        assert.deepEqual(listed.tasks, [...listed.tasks].sort());
      });
    });

    describe("close", () => {
      test("after colony.close() the board refuses calls with ClosedError", async () => {
        await board.write("k", 1, { author: "a" });
        await colony.close();
        await assert.rejects(board.write("k", 2, { author: "a" }), ClosedError);
        await assert.rejects(board.delete("k", { author: "a" }), ClosedError);
        await assert.rejects(board.get("k"), ClosedError);
        await assert.rejects(board.history(), ClosedError);
        assert.throws(() => board.refresh(), ClosedError);
      });
    });

    test("Entry and LogRecord types line up with what the board returns", async () => {
      const entry: Entry<{ n: number }> = await board.write("typed", { n: 1 }, { author: "a" });
      const [record] = await board.history({ key: "typed" });
      assert.equal(entry.value.n, 1);
      assert.equal(record?.version, entry.version);
      assert.equal(record?.at, entry.updatedAt);
    });
  });
}
