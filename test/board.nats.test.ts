/**
 * The board contract against natsBackend (a KV bucket per board that keeps every revision, its
 * stream the full log), on a private nats-server.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createColony, InvalidValueError, VersionConflictError } from "../src/index.ts";
import { boardContract } from "./contract/board.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

// Room for the contract's 1 MiB values and their metadata.
const nats = natsServerPerFile({ maxPayload: 4 * 1024 * 1024 });
const natsBoards = () => nats.backend();

boardContract("nats", async (options = {}) => {
  const colony = createColony({ backend: natsBoards(), ...options });
  return { colony, cleanup: () => colony.close() };
});

describe("the JetStream board store", () => {
  test("keeps the full log past the bucket's per-key history, gap-free and in order", async () => {
    const colony = createColony({ backend: natsBoards() });
    try {
      const board = await colony.board("long");
      let version = 0;
      for (let i = 0; i < 100; i++) version = (await board.write("counter", i, { author: "a", expectedVersion: version })).version;
      const history = await board.history({ key: "counter" });
      assert.deepEqual(history.map((r) => r.value), Array.from({ length: 100 }, (_, i) => i));
      assert.deepEqual(history.map((r) => r.seq), Array.from({ length: 100 }, (_, i) => i + 1));
    } finally {
      await colony.close();
    }
  });

  test("two connections racing compare-and-set on one key: exactly one write per version wins", async () => {
    const backend = natsBoards();
    const colonies = [createColony({ backend }), createColony({ backend })];
    try {
      const boards = await Promise.all(colonies.map((c) => c.board("race")));
      const attempts = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => boards[i % 2]!.write("k", i, { author: `w${i % 2}`, expectedVersion: 0 })),
      );
      assert.equal(attempts.filter((a) => a.status === "fulfilled").length, 1);
      assert.ok(attempts.filter((a) => a.status === "rejected").every((a) => (a as PromiseRejectedResult).reason instanceof VersionConflictError));
      assert.equal((await boards[0]!.history()).length, 1);
    } finally {
      await Promise.all(colonies.map((c) => c.close()));
    }
  });

  test("a value over the server's max_payload is refused as VALUE_TOO_LARGE, naming the setting, and nothing is written", async () => {
    const colony = createColony({ backend: natsBoards(), maxValueBytes: 16 * 1024 * 1024 });
    try {
      const board = await colony.board("big");
      await assert.rejects(board.write("k", "x".repeat(5 * 1024 * 1024), { author: "a" }), (error: Error) => error instanceof InvalidValueError && error.code === "VALUE_TOO_LARGE" && /max_payload/.test(error.message));
      assert.deepEqual(await board.history(), []);
    } finally {
      await colony.close();
    }
  });
});
