/**
 * What a board and a task board let in, on every backend: a value is read once and stored exactly
 * as checked (getters, Proxies), what JSON cannot carry is refused by path (symbol keys, lone
 * surrogates in keys, non-enumerable properties), authors and tags are bounded like keys, and a
 * huge failure message is recorded cut rather than refused, so that the failed attempt is never
 * lost.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { InvalidAuthorError } from "../src/core/errors.ts";
import { MAX_FAILURE_BYTES } from "../src/core/task-board.ts";
import { ConfigError, createColony, InvalidValueError, memoryBackend, sqliteBackend, type Board, type Colony, type TaskBoard } from "../src/index.ts";
import { tempDir } from "./fixtures/helpers.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

// The server's default max_payload (1 MiB): a 5 MB failure must still fit once cut.
const nats = natsServerPerFile();

const backends: [string, () => { colony: Colony; cleanup(): void }][] = [
  ["memory", () => ({ colony: createColony({ backend: memoryBackend() }), cleanup() {} })],
  [
    "sqlite",
    () => {
      const dir = tempDir("colony-values-");
      return { colony: createColony({ backend: sqliteBackend({ path: join(dir.path, "colony.db") }) }), cleanup: () => dir.dispose() };
    },
  ],
  ["nats", () => ({ colony: createColony({ backend: nats.backend() }), cleanup() {} })],
];

const MB5 = 5 * 1024 * 1024;

function invalidValueAt(path: string, message?: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof InvalidValueError, String(error));
    assert.equal(error.code, "INVALID_VALUE");
    assert.equal(error.path, path);
    if (message) assert.match(error.message, message);
    return true;
  };
}

function invalidAuthor(message: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof InvalidAuthorError, String(error));
    assert.ok(error instanceof ConfigError, "a bad author is the caller's to fix: a ConfigError");
    assert.match(error.message, message);
    assert.ok(error.message.length < 500, `the message quotes the author briefly (${error.message.length} characters)`);
    return true;
  };
}

for (const [name, open] of backends) {
  describe(`values and names: ${name}`, () => {
    let colony: Colony;
    let cleanup: () => void;
    let board: Board;

    beforeEach(async () => {
      ({ colony, cleanup } = open());
      board = await colony.board("safety");
    });

    afterEach(async () => {
      await colony.close();
      cleanup();
    });

    /** The board's log is unchanged: nothing was written. */
    async function assertNothingWritten(seq: number): Promise<void> {
      assert.equal((await board.history()).length, seq);
      assert.equal(await board.refresh(), seq);
    }

    describe("a value is read once", () => {
      test("a getter on a plain object is refused at its path, and never run", async () => {
        let reads = 0;
        const value = {
          a: 1,
          get n() {
            return ++reads;
          },
        };
        await assert.rejects(board.write("k", { outer: value }, { author: "a" }), invalidValueAt("value.outer.n", /a getter is not JSON data/));
        assert.equal(reads, 0);
        await assertNothingWritten(0);
      });

      test("a getter on an array element runs once, and what it returned is what is stored", async () => {
        let reads = 0;
        const list: unknown[] = [0, 0];
        Object.defineProperty(list, 1, { enumerable: true, get: () => ++reads });
        const entry = await board.write("k", { list }, { author: "a" });
        assert.equal(reads, 1);
        assert.deepEqual(entry.value, { list: [0, 1] });
        assert.deepEqual((await board.get("k"))?.value, { list: [0, 1] });
      });

      test("a Proxy whose reads change is stored as checked, not read again", async () => {
        let gets = 0;
        // Valid when checked, NaN (stored as null by JSON.stringify) if read a second time.
        const proxy = new Proxy({ n: 1 }, { get: (target, key) => (++gets > 1 ? Number.NaN : Reflect.get(target, key)) });
        await board.write("k", { proxy }, { author: "a" });
        assert.deepEqual((await board.get("k"))?.value, { proxy: { n: 1 } });
      });
    });

    describe("what JSON cannot carry is refused by path", () => {
      const cases: [string, () => unknown, string, RegExp][] = [
        ["a symbol key", () => ({ a: 1, [Symbol("tag")]: 2 }), "value[Symbol(tag)]", /symbol key/],
        ["a lone surrogate in a key", () => ({ ok: { "bad\ud800": 1 } }), 'value.ok["bad\\ud800"]', /lone surrogate/],
        ["a non-enumerable property", () => Object.defineProperty({ a: 1 }, "hidden", { value: 2, enumerable: false }), "value.hidden", /non-enumerable/],
        ["a toJSON method", () => ({ toJSON: () => "x" }), "value.toJSON", /function is not JSON/],
      ];
      for (const [label, make, path, message] of cases) {
        test(`${label}`, async () => {
          await assert.rejects(board.write("k", make(), { author: "a" }), invalidValueAt(path, message));
          await assertNothingWritten(0);
        });
      }

      test("-0, which JSON would turn into 0, is refused by path; nothing is written", async () => {
        await assert.rejects(board.write("k", { n: 1, list: [2, 0 * -1] }, { author: "a" }), invalidValueAt("value.list[1]", /-0 is not a JSON number/));
        await assert.rejects(board.write("k", -0, { author: "a" }), invalidValueAt("value", /write 0/));
        await assertNothingWritten(0);
        assert.ok(Object.is((await board.write("k", { n: 0 }, { author: "a" })).value.n, 0));
      });

      test("0, escaped characters and keys outside the BMP still round-trip", async () => {
        const value = { zero: 0, "🐜": ["é", "\u2028", 'q"\\'], n: -1.5e-7 };
        assert.deepEqual((await board.write("k", value, { author: "a" })).value, value);
        assert.deepEqual((await board.get("k"))?.value, value);
      });
    });

    describe("authors", () => {
      test("a 10 MB author is refused on write and delete, with a short message, and nothing is written", async () => {
        await board.write("k", 1, { author: "a" });
        const huge = "x".repeat(10 * 1024 * 1024);
        await assert.rejects(board.write("k", 2, { author: huge }), invalidAuthor(/512 bytes/));
        await assert.rejects(board.delete("k", { author: huge }), invalidAuthor(/512 bytes/));
        await assertNothingWritten(1);
      });

      test("an author is 1 to 512 bytes of well-formed UTF-8 without control characters", async () => {
        await board.write("k", 1, { author: "a" });
        const bad: [string, RegExp][] = [
          ["é".repeat(257), /514/],
          ["line\nbreak", /control character U\+000a/],
          ["nul\u0000", /U\+0000/],
          ["c1\u0085", /U\+0085/],
          ["half\ud83d", /lone surrogate/],
        ];
        for (const [author, message] of bad) {
          await assert.rejects(board.write("k", 2, { author }), invalidAuthor(message));
          await assert.rejects(board.delete("k", { author }), invalidAuthor(message));
        }
        await assertNothingWritten(1);
        const longest = "é".repeat(256);
        assert.equal((await board.write("k", 2, { author: longest })).author, longest);
        assert.equal((await board.history())[1]?.author, longest);
        // A sub-agent's author: a name of 128 characters, then "@" and its id.
        const subAgent = `${"€".repeat(128)}@agent-lx2k3j4a-0a1b2c3d`;
        assert.equal((await board.write("k", 3, { author: subAgent })).author, subAgent);
      });

      test("an author behind a getter is read once: the one checked is the one stored", async () => {
        let reads = 0;
        const options = {
          get author() {
            return ++reads === 1 ? "checked" : "";
          },
        };
        assert.equal((await board.write("k", 1, options)).author, "checked");
        assert.equal(reads, 1);
        assert.equal((await board.get("k"))?.author, "checked");
      });
    });

    describe("tags", () => {
      test("a tag name is at most 128 bytes, well-formed, without control characters, in a list or as an object's name", async () => {
        const bad = ["t".repeat(129), "€".repeat(43), "tab\there", "half\udc00"];
        for (const tag of bad) {
          await assert.rejects(board.write("k", 1, { author: "a", tags: ["ok", tag] }), invalidValueAt("tags[1]", /a tag name|surrogate|control/));
          await assert.rejects(board.write("k", 1, { author: "a", tags: { ok: 1, [tag]: 2 } }), (error: unknown) => error instanceof InvalidValueError && error.path.startsWith("tags"));
        }
        await assert.rejects(board.write("k", 1, { author: "a", tags: ["x".repeat(MB5)] }), invalidValueAt("tags[0]"));
        await assert.rejects(board.write("k", 1, { author: "a", tags: { ["x".repeat(MB5)]: true } }), (error: unknown) => {
          assert.ok(error instanceof InvalidValueError);
          assert.deepEqual([error.code, error.path], ["VALUE_TOO_LARGE", "tags"]);
          assert.match(error.message, /over the limit of 16384/);
          return true;
        });
        await assertNothingWritten(0);
        const longest = ["t".repeat(128), "€".repeat(42) + "ab"];
        const tagged = Object.fromEntries(longest.map((t) => [t, true]));
        assert.deepEqual((await board.write("k", 1, { author: "a", tags: longest })).tags, tagged);
        assert.deepEqual((await board.get("k"))?.tags, tagged);
        // __proto__ is a name like another: a tag of the entry, not its prototype.
        const proto = await board.write("p", 1, { author: "a", tags: ["__proto__"] });
        assert.deepEqual(Object.keys(proto.tags), ["__proto__"]);
        assert.deepEqual(board.view().readByTag("__proto__").map((e) => e.key), ["p"]);
      });

      test("at most 64 tags", async () => {
        const tags = Array.from({ length: 65 }, (_, i) => `t${i}`);
        await assert.rejects(board.write("k", 1, { author: "a", tags }), invalidValueAt("tags", /at most 64 tags, got 65/));
        await assertNothingWritten(0);
        const object = Object.fromEntries(tags.map((t) => [t, 0]));
        await assert.rejects(board.write("k", 1, { author: "a", tags: object }), invalidValueAt("tags", /at most 64 tags, got 65/));
        assert.equal(Object.keys((await board.write("k", 1, { author: "a", tags: tags.slice(0, 64) })).tags).length, 64);
      });

      test("tags behind getters are read once", async () => {
        let reads = 0;
        const tags: string[] = ["a"];
        Object.defineProperty(tags, 1, { enumerable: true, get: () => (++reads === 1 ? "b" : "bad\n") });
        assert.deepEqual((await board.write("k", 1, { author: "a", tags })).tags, { a: true, b: true });
        assert.equal(reads, 1);
        // On an object, a getter is refused, as on a value: JSON would read it, and read it again.
        const getter = Object.defineProperty({}, "g", { enumerable: true, get: () => 1 });
        await assert.rejects(board.write("k", 2, { author: "a", tags: getter }), (error: unknown) => error instanceof InvalidValueError && error.path === "tags.g");
      });
    });

    describe("a task's failure message", () => {
      let tasks: TaskBoard;

      beforeEach(async () => {
        tasks = await colony.tasks("safety");
      });

      async function held(id: string, maxAttempts = 3) {
        await tasks.submit({ id, kind: "k", maxAttempts, backoff: { baseMs: 0, maxMs: 0 } });
        const task = await tasks.claim({ worker: "w1", capabilities: ["k"], leaseMs: 60_000 });
        assert.equal(task?.id, id);
        return task;
      }

      function assertCut(error: string | undefined, original: number): void {
        assert.ok(error !== undefined);
        const bytes = Buffer.byteLength(error, "utf8");
        assert.ok(bytes <= MAX_FAILURE_BYTES, `${bytes} bytes kept`);
        assert.ok(bytes > MAX_FAILURE_BYTES - 64, `${bytes} bytes kept: the limit is used`);
        const cut = /… \((\d+) bytes cut\)$/.exec(error);
        assert.ok(cut, "ends with the marker");
        assert.equal(bytes - Buffer.byteLength(cut[0], "utf8") + Number(cut[1]), original, "kept + cut = the original");
        assert.ok(error.isWellFormed());
      }

      test("a 5 MB message is recorded cut to 16 KiB, and the task ends as it should", async () => {
        const task = await held("big", 1);
        const message = "boom: " + "x".repeat(MB5);
        const failed = await tasks.fail(task.id, message, { generation: task.generation, retryable: false });
        assert.equal(failed.status, "failed");
        assert.equal(failed.attempts, 1);
        assertCut(failed.error, Buffer.byteLength(message));
        assert.ok(failed.error!.startsWith("boom: xxx"), "the start of the message is kept");
        assert.equal(failed.failures.length, 1);
        assert.equal(failed.failures[0]!.error, failed.error);
        assert.ok(Buffer.byteLength(failed.reason ?? "") < MAX_FAILURE_BYTES + 64);
        const stored = await tasks.get(task.id);
        assert.equal(stored?.status, "failed");
        assert.equal(stored?.error, failed.error);
        assert.equal((await tasks.wait(task.id)).status, "failed");
      });

      test("a retryable 5 MB Error is recorded cut, and the task goes back to pending and runs again", async () => {
        const task = await held("retry");
        const error = new Error("é".repeat(MB5 / 2)); // two bytes each: the cut must not split one
        const pending = await tasks.fail(task.id, error, { generation: task.generation });
        assert.equal(pending.status, "pending");
        assertCut(pending.error, MB5);
        const again = await tasks.claim({ worker: "w1", capabilities: ["k"], leaseMs: 60_000 });
        assert.equal(again?.id, task.id);
        const done = await tasks.complete(task.id, "ok", { generation: again.generation });
        assert.equal(done.status, "succeeded");
        assert.equal(done.failures.length, 1);
      });

      test("a message of exactly 16 KiB is kept whole; a lone surrogate in one is made well-formed", async () => {
        const exact = "y".repeat(MAX_FAILURE_BYTES);
        const first = await held("exact");
        assert.equal((await tasks.fail(first.id, exact, { generation: first.generation, retryable: false })).error, exact);
        const second = await held("surrogate");
        assert.equal((await tasks.fail(second.id, "bad \ud800 half", { generation: second.generation, retryable: false })).error, "bad \ufffd half");
      });
    });
  });
}
