/**
 * Names that become NATS names map one to one: a prefix and a board (or task board) name never
 * share a bucket or stream with another pair, and two worker ids never share a subject; plain
 * names (letters, digits, '-') keep the names existing deployments have. The mapping itself, then
 * the same on a private nats-server.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { escapeName, MAX_STREAM_NAME, natsNames, unescapeName } from "../src/backends/nats/names.ts";
import { ConfigError, createColony, defineSubAgent, natsBackend, nodeSubject, progressSubject, subjectToken, type Colony, type NodeInfo } from "../src/index.ts";
import { cliJson } from "./fixtures/cli.ts";
import { waitFor } from "./fixtures/helpers.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

/** Strings that the old mapping, or a careless new one, would fold together. */
const TRICKY = ["a", "b", "r", "q", "x", "_", "__", "a_", "_a", "a_b", "a.b", "a-b", "a__b", "a_2eb", "a_5fb", "_2e", "_5f", "5f", "5fx", "2e", "u", "_u", "_u00fc", "ü", "€", "\ud800", "\udc00", "board", "_board_", "board_x", "q_board_r", "c_board_q", "c_board_q_board_r", "runs", "_runs", "b_runs", "log", "tasks", "x_tasks_y", "KV_tasks", "c.tasks.q", "*", ">", " "];
const ALPHABET = ["a", "b", "_", "-", ".", "2", "e", "5", "f", "u", "0", "ü", "\ud800", "KV", "board", "_board_", "runs", "log", "tasks"];

/**
 * What a prefix (and a name under it) is given, keyed by what it is for: the stream names (a
 * bucket is the stream `KV_` and its name) and the subjects of streams and the bus.
 */
function owned(prefix: string, names: readonly string[]): { streams: Map<string, string>; subjects: Map<string, string> } {
  const of = natsNames(prefix);
  const streams = new Map([
    [`KV_${of.runs}`, `runs of ${JSON.stringify(prefix)}`],
    [`KV_${of.agents}`, `agents of ${JSON.stringify(prefix)}`],
    [`KV_${of.leases}`, `leases of ${JSON.stringify(prefix)}`],
  ]);
  const subjects = new Map([[`${of.bus}>`, `bus of ${JSON.stringify(prefix)}`]]);
  for (const name of names) {
    const board = of.board(name);
    const tasks = of.tasks(name);
    const whose = `${JSON.stringify(prefix)}/${JSON.stringify(name)}`;
    for (const [stream, what] of [[`KV_${board.bucket}`, `board ${whose}`], [tasks.stream, `tasks ${whose}`], [tasks.snapshots.stream, `snapshots ${whose}`]] as const) {
      assert.equal(streams.get(stream) ?? what, what, `${what} and ${streams.get(stream)} share ${stream}`);
      streams.set(stream, what);
    }
    subjects.set(tasks.subject, `tasks ${whose}`);
    subjects.set(`${tasks.snapshots.subject}.>`, `snapshots ${whose}`);
  }
  return { streams, subjects };
}

/** Fails if two different owners share a name. */
function assertOneToOne(owners: Iterable<Map<string, string>>): void {
  const seen = new Map<string, string>();
  for (const map of owners) {
    for (const [name, owner] of map) {
      const before = seen.get(name);
      if (before !== undefined && before !== owner) assert.fail(`${before} and ${owner} share ${name}`);
      seen.set(name, owner);
    }
  }
}

function randomName(max: number): string {
  let out = "";
  for (let i = 1 + Math.floor(Math.random() * max); i > 0; i--) out += ALPHABET[Math.floor(Math.random() * ALPHABET.length)];
  return out;
}

describe("the NATS name mapping", () => {
  test("plain names keep the buckets, streams and subjects they always had", () => {
    const colony = natsNames("colony");
    assert.deepEqual([colony.runs, colony.agents, colony.leases, colony.bus], ["colony_runs", "colony_agents", "colony_leases", "colony.bus."]);
    assert.deepEqual(colony.board("main"), { bucket: "colony_board_main" });
    assert.deepEqual(colony.tasks("default"), {
      stream: "colony_tasks_default",
      subject: "colony.tasks.default",
      snapshots: { stream: "colony_snap_default", subject: "colony.snap.default" },
    });
    const team = natsNames("Team-A7");
    assert.deepEqual(team.board("other-board9"), { bucket: "Team-A7_board_other-board9" });
    assert.deepEqual(team.tasks("x-1"), { stream: "Team-A7_tasks_x-1", subject: "Team-A7.tasks.x-1", snapshots: { stream: "Team-A7_snap_x-1", subject: "Team-A7.snap.x-1" } });
    assert.equal(nodeSubject("demo-123-1"), "node.demo-123-1");
    assert.equal(progressSubject("default", "t-3"), "progress.default.t-3");
    assert.equal(progressSubject("default"), "progress.default.*");
  });

  test("the two setups of the review get two buckets, and w.1 and w_1 two subjects", () => {
    assert.notEqual(natsNames("c").board("q_board_r").bucket, natsNames("c_board_q").board("r").bucket);
    assert.notEqual(natsNames("c").tasks("q_tasks_r").stream, natsNames("c_tasks_q").tasks("r").stream);
    assert.notEqual(natsNames("a_board_b").runs, natsNames("a").board("b_runs").bucket);
    assert.notEqual(nodeSubject("w.1"), nodeSubject("w_1"));
    assert.notEqual(progressSubject("b", "p.c"), progressSubject("b", "p_c"));
  });

  test("one to one over tricky pairs and random ones", () => {
    const prefixes = [...TRICKY, ...Array.from({ length: 300 }, () => randomName(4))].filter((p) => p !== "KV");
    const names = [...TRICKY, ...Array.from({ length: 300 }, () => randomName(5))];
    const all = [...new Set(prefixes)].map((prefix) => owned(prefix, names));
    assertOneToOne(all.map((o) => o.streams));
    assertOneToOne(all.map((o) => o.subjects));
    const ids = [...new Set([...TRICKY, ...Array.from({ length: 3000 }, () => randomName(6))])];
    assertOneToOne([new Map(ids.map((id) => [nodeSubject(id), id]))]);
    assertOneToOne([new Map(ids.map((id) => [progressSubject("b", id), id]))]);
  });

  test("a stream names back the board or task board it holds, under its own prefix only", () => {
    const prefixes = [...TRICKY, ...Array.from({ length: 50 }, () => randomName(4))].filter((p) => p !== "KV");
    const names = [...TRICKY, ...Array.from({ length: 100 }, () => randomName(5))];
    for (const prefix of prefixes) {
      const mine = natsNames(prefix);
      for (const name of names) {
        assert.equal(unescapeName(escapeName(name)), name);
        assert.deepEqual(mine.holder(`KV_${mine.board(name).bucket}`), { kind: "board", name });
        assert.deepEqual(mine.holder(mine.tasks(name).stream), { kind: "tasks", name });
        for (const other of [mine.tasks(name).snapshots.stream, `KV_${mine.runs}`, `KV_${mine.agents}`, `KV_${mine.leases}`]) assert.equal(mine.holder(other), undefined, other);
        const theirs = natsNames(`${prefix}x`);
        assert.equal(mine.holder(`KV_${theirs.board(name).bucket}`), undefined);
      }
    }
    for (const foreign of ["a_5", "a_zz", "a_u12", "a_2E", "a.b", "a b"]) assert.equal(unescapeName(foreign), undefined, foreign);
  });

  test('prefix "KV" is refused: its task board streams would be named like KV buckets\' streams', () => {
    // Else prefix KV's task board "runs" would be the stream of prefix "tasks"'s runs bucket.
    assert.throws(() => natsNames("KV"), ConfigError);
    assert.throws(() => natsBackend({ servers: "nats://127.0.0.1:4222", prefix: "KV" }), ConfigError);
    assert.equal(natsNames("KV_").tasks("runs").stream, "KV_5f_tasks_runs");
  });

  test("what comes out is a valid bucket, stream and subject token: letters, digits, '-' and '_'", () => {
    for (const value of TRICKY) {
      assert.match(escapeName(value), /^[A-Za-z0-9_-]*$/);
      const { bucket } = natsNames(value).board(value);
      assert.match(bucket, /^[A-Za-z0-9_-]+$/);
    }
    assert.equal(escapeName("w.1"), "w_2e1");
    assert.equal(escapeName("w_1"), "w_5f1");
    assert.equal(escapeName("ü€"), "_fc_u20ac");
    assert.equal(subjectToken("host.example.com-7-ab12cd"), "host_2eexample_2ecom-7-ab12cd");
  });

  test("a name whose stream would pass nats-server's 255 characters is a ConfigError saying what to shorten", () => {
    // 32 and 64 underscores: the longest prefix and board name there are, each '_' escaped to three.
    assert.throws(
      () => natsNames("_".repeat(32)).board("_".repeat(64)),
      (error: Error) => error instanceof ConfigError && /255/.test(error.message) && /shorter name or prefix/.test(error.message),
    );
    assert.throws(() => natsNames("p").tasks("_".repeat(90)), ConfigError);
    // Exactly at the limit is fine: KV_ + p_board_ + the name.
    const longest = "b".repeat(MAX_STREAM_NAME - "KV_p_board_".length);
    assert.equal(natsNames("p").board(longest).bucket.length + 3, MAX_STREAM_NAME);
    assert.throws(() => natsNames("p").board(`${longest}b`), ConfigError);
  });

  test("the prefix is checked where the backend is made", () => {
    for (const prefix of ["a.b", "a*", "a>", "", "x".repeat(33), "ü", "KV"]) {
      assert.throws(() => natsBackend({ servers: "nats://127.0.0.1:4222", prefix }), ConfigError, JSON.stringify(prefix));
    }
  });
});

describe("NATS names on a server", { timeout: 60_000 }, () => {
  const nats = natsServerPerFile();
  const colonyOn = (prefix: string): Colony => createColony({ backend: natsBackend({ servers: nats.server.url, prefix }) });

  test("prefix c with board q_board_r and prefix c_board_q with board r see separate data; so do their task boards", async () => {
    const id = randomUUID().slice(0, 6);
    const [one, two] = [colonyOn(`c${id}`), colonyOn(`c${id}_board_q`)];
    const [oneTasks, twoTasks] = [colonyOn(`c${id}`), colonyOn(`c${id}_tasks_q`)];
    try {
      const [a, b] = [await one.board("q_board_r"), await two.board("r")];
      await a.write("k", "from one", { author: "one" });
      assert.equal(await b.get("k"), undefined);
      assert.deepEqual(await b.history(), []);
      await b.write("k", "from two", { author: "two" });
      assert.equal((await a.get("k"))?.value, "from one");
      assert.deepEqual((await a.history()).map((r) => r.author), ["one"]);

      const [ta, tb] = [await oneTasks.tasks("q_tasks_r"), await twoTasks.tasks("r")];
      const task = await ta.submit({ kind: "echo" });
      assert.deepEqual(await tb.list(), []);
      assert.deepEqual((await ta.list()).map((t) => t.id), [task.id]);
    } finally {
      await Promise.all([one, two, oneTasks, twoTasks].map((c) => c.close()));
    }
  });

  test("a plain prefix and board keep the bucket and streams existing deployments have", async () => {
    const prefix = `plain-${randomUUID().slice(0, 6)}`;
    const colony = colonyOn(prefix);
    const nc = await connect({ servers: nats.server.url });
    try {
      await (await colony.board("main")).write("k", 1, { author: "a" });
      await (await colony.tasks()).submit({ kind: "echo" });
      const jsm = await jetstreamManager(nc);
      assert.equal((await jsm.streams.info(`KV_${prefix}_board_main`)).state.messages, 1);
      assert.deepEqual((await jsm.streams.info(`${prefix}_tasks_default`)).config.subjects, [`${prefix}.tasks.default`]);
      await jsm.streams.info(`KV_${prefix}_runs`);
    } finally {
      await colony.close();
      await nc.close();
    }
  });

  test("a board name too long for a stream name is refused before anything is created", async () => {
    const prefix = "_".repeat(32);
    const colony = colonyOn(prefix);
    const nc = await connect({ servers: nats.server.url });
    try {
      await assert.rejects(colony.board("_".repeat(64)), ConfigError);
      const jsm = await jetstreamManager(nc);
      const streams: string[] = [];
      for await (const name of jsm.streams.names()) streams.push(name);
      assert.deepEqual(streams.filter((s) => s.includes("_board_") && s.includes(escapeName(prefix))), []);
    } finally {
      await colony.close();
      await nc.close();
    }
  });

  test("colony nodes drain w.1 drains w.1 and not w_1", async () => {
    const prefix = `d${randomUUID().slice(0, 8)}`;
    const colony = colonyOn(prefix);
    const echo = defineSubAgent<unknown, unknown>({ name: "echo", run: async (ctx) => ctx.input });
    try {
      const [dotted, underscored] = [await colony.worker({ id: "w.1", agents: { echo }, leaseMs: 2000 }), await colony.worker({ id: "w_1", agents: { echo }, leaseMs: 2000 })];
      const drained = await cliJson<NodeInfo>(["nodes", "drain", "w.1", "--json", "--nats", nats.server.url, "--nats-prefix", prefix], { timeoutMs: 20_000 });
      assert.equal(drained.id, "w.1");
      await waitFor(() => dotted.status !== "online", 5000, "w.1 to drain");
      // A drain request reaches a worker within milliseconds; give a wrong one ample time to land.
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(underscored.status, "online");
      await underscored.drain();
    } finally {
      await colony.close();
    }
  });
});
