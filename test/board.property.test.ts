/**
 * Property tests: random sequences of writes, deletes and reads against a pure model of the
 * board contract, on the memory and SQLite backends.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { createColony, memoryBackend, sqliteBackend, VersionConflictError, type Board, type Colony, type LogRecord } from "../src/index.ts";

interface Backend {
  name: string;
  /** A colony over the same data as the first one, opened afresh where the backend can. */
  open(): Colony;
  durable: boolean;
}

function memory(): Backend & { close(): Promise<void> } {
  const colony = createColony({ backend: memoryBackend() });
  return { name: "memory", open: () => colony, durable: false, close: () => colony.close() };
}

function sqlite(): Backend & { close(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), "colony-board-property-"));
  const path = join(dir, "colony.db");
  const opened: Colony[] = [];
  return {
    name: "sqlite",
    durable: true,
    open() {
      const colony = createColony({ backend: sqliteBackend({ path }) });
      opened.push(colony);
      return colony;
    },
    async close() {
      for (const colony of opened) await colony.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// --- The model -------------------------------------------------------------------------------

interface Slot {
  /** The live version; 0 when the key does not exist or is deleted. */
  version: number;
  /** The highest version the key ever had, tombstones included. */
  lastVersion: number;
  value: unknown;
}

type Model = Map<string, Slot>;

type Outcome =
  | { kind: "written"; version: number }
  | { kind: "deleted"; version: number }
  | { kind: "nothing" }
  | { kind: "conflict"; actualVersion: number }
  | { kind: "read"; entry: { value: unknown; version: number } | undefined };

function slot(model: Model, key: string): Slot {
  return model.get(key) ?? { version: 0, lastVersion: 0, value: undefined };
}

function modelWrite(model: Model, key: string, value: unknown, expected: number | undefined): Outcome {
  const s = slot(model, key);
  if (expected !== undefined && expected !== s.version) return { kind: "conflict", actualVersion: s.version };
  const version = s.lastVersion + 1;
  model.set(key, { version, lastVersion: version, value });
  return { kind: "written", version };
}

function modelDelete(model: Model, key: string, expected: number | undefined): Outcome {
  const s = slot(model, key);
  if (expected !== undefined && expected !== s.version) return { kind: "conflict", actualVersion: s.version };
  if (s.version === 0) return { kind: "nothing" };
  const version = s.lastVersion + 1;
  model.set(key, { version: 0, lastVersion: version, value: undefined });
  return { kind: "deleted", version };
}

function modelGet(model: Model, key: string): Outcome {
  const s = slot(model, key);
  return { kind: "read", entry: s.version === 0 ? undefined : { value: s.value, version: s.version } };
}

// --- Commands --------------------------------------------------------------------------------

const KEYS = ["a", "b", "c", "a/b"] as const;

/** How a command picks its expectedVersion, resolved against the model when it runs. */
type Expect = { kind: "none" } | { kind: "zero" } | { kind: "current" } | { kind: "last" } | { kind: "stale" } | { kind: "exactly"; n: number };

type Command =
  | { op: "write"; key: string; value: unknown; expect: Expect }
  | { op: "delete"; key: string; expect: Expect }
  | { op: "get"; key: string };

const expectArb: fc.Arbitrary<Expect> = fc.oneof(
  fc.constant<Expect>({ kind: "none" }),
  fc.constant<Expect>({ kind: "zero" }),
  fc.constant<Expect>({ kind: "current" }),
  fc.constant<Expect>({ kind: "last" }),
  fc.constant<Expect>({ kind: "stale" }),
  fc.nat(8).map((n): Expect => ({ kind: "exactly", n })),
);

/** JSON values as a board takes them: -0, which JSON cannot carry, is refused, so it becomes 0 here. */
function withoutNegativeZero(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (Array.isArray(value)) return value.map(withoutNegativeZero);
  if (typeof value === "object" && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutNegativeZero(v)]));
  return value;
}
const jsonValueArb = (maxDepth: number) => fc.jsonValue({ maxDepth }).map(withoutNegativeZero);
const valueArb = fc.oneof(fc.integer(), fc.string({ maxLength: 20 }), jsonValueArb(3));

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("write" as const), key: fc.constantFrom(...KEYS), value: valueArb, expect: expectArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), key: fc.constantFrom(...KEYS), expect: expectArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("get" as const), key: fc.constantFrom(...KEYS) }) },
);

function resolveExpect(model: Model, key: string, expect: Expect): number | undefined {
  const s = slot(model, key);
  switch (expect.kind) {
    case "none":
      return undefined;
    case "zero":
      return 0;
    case "current":
      return s.version;
    case "last":
      return s.lastVersion;
    case "stale":
      return Math.max(0, s.version - 1);
    case "exactly":
      return expect.n;
  }
}

/** What JSON storage makes of a value. */
function stored(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

async function runCommand(board: Board, command: Command, expected: number | undefined): Promise<Outcome> {
  try {
    switch (command.op) {
      case "write": {
        const entry = await board.write(command.key, command.value, { author: "prop", expectedVersion: expected });
        assert.deepEqual(entry.value, stored(command.value));
        return { kind: "written", version: entry.version };
      }
      case "delete": {
        const before = board.seq;
        const deleted = await board.delete(command.key, { author: "prop", expectedVersion: expected });
        if (!deleted) return { kind: "nothing" };
        const [record] = await board.history({ since: before });
        return { kind: "deleted", version: record?.version ?? -1 };
      }
      case "get": {
        const entry = await board.get(command.key);
        return { kind: "read", entry: entry && { value: entry.value, version: entry.version } };
      }
    }
  } catch (error) {
    if (error instanceof VersionConflictError) {
      assert.equal(error.key, command.key);
      assert.equal(error.expectedVersion, expected);
      return { kind: "conflict", actualVersion: error.actualVersion };
    }
    throw error;
  }
}

function replay(records: readonly LogRecord[]): Map<string, { value: unknown; version: number }> {
  const live = new Map<string, { value: unknown; version: number }>();
  for (const r of records) {
    if (r.op === "delete") live.delete(r.key);
    else live.set(r.key, { value: r.value, version: r.version });
  }
  return live;
}

async function checkAgainstModel(board: Board, model: Model, mutations: number): Promise<void> {
  const live = [...model.entries()].filter(([, s]) => s.version > 0);
  const view = board.view();
  assert.deepEqual(view.keys(), live.map(([k]) => k).sort());
  for (const key of KEYS) {
    const s = slot(model, key);
    const expected = s.version === 0 ? undefined : { value: s.value, version: s.version };
    const got = await board.get(key);
    assert.deepEqual(got && { value: got.value, version: got.version }, expected, `get ${key}`);
    const read = view.read(key);
    assert.deepEqual(read && { value: read.value, version: read.version }, expected, `view ${key}`);
  }

  const history = await board.history();
  assert.equal(history.length, mutations);
  assert.deepEqual(history.map((r) => r.seq), history.map((_, i) => i + 1));
  assert.equal(board.seq, mutations);
  assert.equal(view.seq, mutations);
  for (const key of KEYS) {
    const versions = history.filter((r) => r.key === key).map((r) => r.version);
    assert.deepEqual(versions, versions.map((_, i) => i + 1), `versions of ${key} in the log`);
    assert.equal(versions.at(-1) ?? 0, slot(model, key).lastVersion);
  }
  const replayed = replay(history);
  assert.deepEqual(
    [...replayed.entries()].sort(([a], [b]) => (a < b ? -1 : 1)),
    live.map(([k, s]) => [k, { value: s.value, version: s.version }]).sort(([a], [b]) => ((a as string) < (b as string) ? -1 : 1)),
  );
}

// --- Properties ------------------------------------------------------------------------------

for (const make of [memory, sqlite]) {
  describe(`Board properties: ${make.name}`, () => {
    let backend: ReturnType<typeof make>;
    let colony: Colony;
    let run = 0;

    before(() => {
      backend = make();
      colony = backend.open();
    });

    after(async () => {
      await backend.close();
    });

    test("random writes, deletes and reads agree with the model; the log replays to the board", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 40 }), async (commands) => {
          const board = await colony.board(`p${run++}`);
          const model: Model = new Map();
          let mutations = 0;
          for (const command of commands) {
            const expected = command.op === "get" ? undefined : resolveExpect(model, command.key, command.expect);
            const want =
              command.op === "write"
                ? modelWrite(model, command.key, stored(command.value), expected)
                : command.op === "delete"
                  ? modelDelete(model, command.key, expected)
                  : modelGet(model, command.key);
            const got = await runCommand(board, command, expected);
            assert.deepEqual(got, want, `${JSON.stringify(command)} with expectedVersion ${String(expected)}`);
            if (want.kind === "written" || want.kind === "deleted") mutations++;
          }
          await checkAgainstModel(board, model, mutations);

          if (backend.durable) {
            const reopened = await backend.open().board(board.name);
            assert.deepEqual(reopened.view().entries(), board.view().entries());
            assert.deepEqual(await reopened.history(), await board.history());
          }
        }),
        { numRuns: 100 },
      );
    });

    test("keys() are in code-point order for any keys", async () => {
      const keyArb = fc
        .string({ unit: "binary", minLength: 1, maxLength: 6 })
        // Control characters (U+0000..U+001F, U+007F..U+009F) are refused as keys; leave them out.
        .filter((k) => [...k].every((ch) => {
          const cp = ch.codePointAt(0)!;
          return (cp >= 0x20 && cp < 0x7f) || cp > 0x9f;
        }));
      await fc.assert(
        fc.asyncProperty(fc.uniqueArray(keyArb, { minLength: 1, maxLength: 12 }), async (keys) => {
          const board = await colony.board(`k${run++}`);
          for (const key of keys) await board.write(key, key, { author: "prop" });
          const byCodePoint = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
          assert.deepEqual(board.view().keys(), byCodePoint);
          const prefix = keys[0]!.slice(0, 1);
          assert.deepEqual(board.view().keys(prefix), byCodePoint.filter((k) => k.startsWith(prefix)));
        }),
        { numRuns: 60 },
      );
    });

    test("any JSON value reads back as written (after a JSON round trip)", async () => {
      const board = await colony.board(`v${run++}`);
      let i = 0;
      await fc.assert(
        fc.asyncProperty(jsonValueArb(4), fc.array(fc.string({ minLength: 1, maxLength: 5 }), { maxLength: 3 }), async (value, tags) => {
          const key = `value/${i++}`;
          const entry = await board.write(key, value, { author: "prop", tags });
          const want = stored(value);
          assert.deepEqual(entry.value, want);
          assert.deepEqual((await board.get(key))?.value, want);
          assert.deepEqual(board.view().read(key)?.value, want);
          assert.deepEqual((await board.history({ key }))[0]?.value, want);
          assert.deepEqual(entry.tags, Object.fromEntries(tags.map((t) => [t, true])));
        }),
        { numRuns: 150 },
      );
    });
  });
}
