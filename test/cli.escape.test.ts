/**
 * The CLI shows control characters in data rather than let the terminal obey them: authors, tags,
 * keys, values, task kinds, failure messages, worker ids and hosts, agent names and errors
 * holding ESC sequences, an OSC title, C1 controls, DEL, line separators and bidi overrides reach
 * the human-readable output as visible escapes (`\x1b`, `\u202e`), while `--json` keeps the exact
 * strings. The hostile data is put in the store below the board and task board checks, as an
 * older Colony or another client could have written it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { linesOf, table, visible } from "../src/cli/format.ts";
import { createColony, sqliteBackend, type AgentRecord, type Task, type WorkerInfo } from "../src/index.ts";
import { cliJson, runCli, type CliOptions } from "./fixtures/cli.ts";

const CLEAR = "\x1b[2J\x1b[H";
const TITLE = "\x1b]0;pwned\x07";
const C1 = "\x9b31m";
const AUTHOR = `eve${CLEAR}${TITLE}\nfake line${"\x7f"}`;
const TAG = `t${C1}`;
const TAG2 = `x\u2066y\u2069`;
const KEY = `k\u202e1`;
const VALUE = `v${C1}\u2028w`;
const KIND = `kind${CLEAR}`;
const WORKER = `w${TITLE}\u202e`;
const HOST = `host\r${C1}`;
const FAILURE = `boom${TITLE}${CLEAR}\u0085`;
const AGENT = `agent${CLEAR}\u202a`;

/** What must never reach a terminal raw: C0 but the newline, DEL, C1, U+2028/2029 and the bidi controls. */
// eslint-disable-next-line no-control-regex
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

let dir: string;
let db: string;
let env: NodeJS.ProcessEnv;
let failedId: string;
let claimedId: string;

/** This file's CLI runs: in its directory, with its compile cache, 20 s at most. */
const on = (): CliOptions => ({ cwd: dir, env, timeoutMs: 20_000 });
/** The CLI on this file's database. */
const colony = (...args: string[]) => runCli([...args, "--db", db], on());
const json = <T>(...args: string[]) => cliJson<T>([...args, "--json", "--db", db], on());

/** Runs a human-readable command: it succeeds, and nothing raw reaches stdout or stderr. */
async function human(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await colony(...args);
  assert.equal(code, 0, stderr);
  for (const [stream, text] of [["stdout", stdout], ["stderr", stderr]]) {
    const raw = RAW.exec(text!);
    assert.equal(raw, null, `colony ${args.join(" ")} wrote U+${raw?.[0].charCodeAt(0).toString(16).padStart(4, "0")} raw on ${stream}: ${JSON.stringify(text)}`);
  }
  return stdout;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "colony-cli-escape-"));
  db = join(dir, "escape.db");
  env = { ...process.env, NODE_COMPILE_CACHE: join(dir, "compile-cache") };
  const factory = sqliteBackend({ path: db });
  const backend = await factory.open();
  const app = createColony({ backend: factory });
  try {
    const board = await backend.openBoard("hostile");
    await board.write({ key: KEY, json: JSON.stringify(VALUE), author: AUTHOR, tags: { [TAG]: true, [TAG2]: TAG }, at: Date.now() });

    // Real tasks, then the strings the checks would not let in today put in at the store.
    const tasks = await app.tasks();
    await tasks.heartbeatWorker({ id: "w-1", capabilities: ["echo"], concurrency: 1, running: 0, status: "online", pid: 1, host: "h", local: false, ttlMs: 3_600_000 });
    const [failed, claimed] = await tasks.submitAll([{ kind: "echo", maxAttempts: 1 }, { kind: "echo" }]);
    const first = (await tasks.claim({ worker: "w-1", capabilities: ["echo"], leaseMs: 3_600_000 }))!;
    await tasks.fail(first.id, FAILURE, { generation: first.generation, retryable: false });
    await tasks.claim({ worker: "w-1", capabilities: ["echo"], leaseMs: 3_600_000 });
    [failedId, claimedId] = [failed!.id, claimed!.id];
    const store = await backend.openTasks("default");
    await store.transact((tx) => {
      for (const id of [failedId, claimedId]) {
        const task = tx.get(id)!;
        tx.put({ ...task, kind: KIND, capability: KIND, ...(task.owner && { owner: WORKER }), failures: task.failures.map((f) => ({ ...f, worker: WORKER })) });
      }
      const worker = tx.workers().find((w) => w.id === "w-1")!;
      tx.deleteWorker("w-1");
      tx.putWorker({ ...worker, id: WORKER, capabilities: [KIND], host: HOST, heartbeatAt: Date.now() });
    });

    const now = Date.now();
    await backend.agents.insert({
      id: "a-1",
      name: AGENT,
      parentId: undefined,
      depth: 0,
      state: "failed",
      generation: 1,
      isolation: "inline",
      pid: undefined,
      ownerPid: process.pid,
      startedAt: now,
      endedAt: now,
      usage: { tokens: 0, costUsd: 0, turns: 0 },
      reason: "error",
      error: FAILURE,
    });
  } finally {
    await app.close();
    await backend.close();
  }
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe("control characters in the CLI's output", () => {
  test("board and board --history show authors, tags, keys and values escaped; --json keeps them exact", async () => {
    const [view, history] = await Promise.all([human("board", "hostile"), human("board", "hostile", "--history")]);
    for (const out of [view, history]) {
      assert.ok(out.includes(`by eve\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07\\nfake line\\x7f`), out);
      assert.ok(out.includes("tags={t\\x9b31m x\\u2066y\\u2069=t\\x9b31m}"), out);
      assert.ok(out.includes("[k\\u202e1]"), out);
      assert.ok(out.includes("v\\x9b31m\\u2028w"), out);
    }
    assert.equal(view.trimEnd().split("\n").length, 2, "the author's newline made no line of its own");
    const exact = await json<{ entries: { key: string; author: string; tags: string[]; value: unknown }[] }>("board", "hostile");
    assert.deepEqual(exact.entries.map((e) => [e.key, e.author, e.tags, e.value]), [[KEY, AUTHOR, { [TAG]: true, [TAG2]: TAG }, VALUE]]);
    const records = await json<{ author: string }[]>("board", "hostile", "--history");
    assert.deepEqual(records.map((r) => r.author), [AUTHOR]);
  });

  test("tasks, task, workers, nodes and status show kinds, failures, worker ids and hosts escaped; --json keeps them exact", async () => {
    const outs = await Promise.all([human("tasks"), human("task", failedId), human("task", claimedId), human("workers"), human("nodes"), human("status")]);
    const [board, failed, claimed, workers, nodes, status] = outs;
    for (const out of [board, failed, claimed, status]) assert.ok(out!.includes("kind\\x1b[2J\\x1b[H"), out);
    for (const out of [board, claimed, workers, nodes, status]) assert.ok(out!.includes("w\\x1b]0;pwned\\x07\\u202e"), out);
    assert.ok(failed!.includes("boom\\x1b]0;pwned\\x07\\x1b[2J\\x1b[H\\x85"), failed);
    for (const out of [workers, nodes]) assert.ok(out!.includes("host\\r\\x9b31m"), out);

    const tasks = await json<Task[]>("tasks");
    assert.deepEqual(tasks.map((t) => t.kind), [KIND, KIND]);
    const task = await json<Task>("task", failedId);
    assert.deepEqual([task.error, task.failures.map((f) => [f.error, f.worker])], [FAILURE, [[FAILURE, WORKER]]]);
    const [worker] = await json<WorkerInfo[]>("workers");
    assert.deepEqual([worker!.id, worker!.host, worker!.capabilities], [WORKER, HOST, [KIND]]);
  });

  test("agents shows names and errors escaped; --json keeps them exact", async () => {
    const out = await human("agents");
    assert.ok(out.includes("agent\\x1b[2J\\x1b[H\\u202a"), out);
    const [agent] = await json<AgentRecord[]>("agents");
    assert.deepEqual([agent!.name, agent!.error], [AGENT, FAILURE]);
  });

  test("an error line quoting what a user typed shows its controls escaped, and still exits 2", async () => {
    const { code, stdout, stderr } = await colony("cancel", `ghost${C1}${TITLE}`);
    assert.equal(code, 2);
    assert.equal(stdout, "");
    assert.doesNotMatch(stderr, RAW);
    assert.match(stderr, /^colony: task "ghost\\x9b31m.*not found\n$/);
  });

  test("a table pads the escaped cells, so its columns still line up", () => {
    const [head, row, plain] = table([["A", "B"], [`x${CLEAR}`, "Q"], ["y", "Z"]]);
    assert.equal(head!.indexOf("B"), row!.indexOf("Q"));
    assert.equal(head!.indexOf("B"), plain!.indexOf("Z"));
    assert.equal(visible(visible(AUTHOR)), visible(AUTHOR));
    assert.deepEqual(linesOf("a\r\nb\nc"), ["a", "b", "c"]);
  });
});
