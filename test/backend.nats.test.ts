/** natsBackend's own behaviour: auth, bad options, prefixes, and the CLI on NATS. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { ConfigError, createColony, memoryBackend, natsBackend, NatsConnectError, NotFoundError } from "../src/index.ts";
import { freePort, startNatsServer, type NatsServer } from "../src/testing/nats-server.ts";
import { runCliSync } from "./fixtures/cli.ts";

describe("natsBackend", () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer({ args: ["--user", "colony", "--pass", "s3cret"] });
  });
  after(async () => {
    await server.stop();
  });

  test("bad options are a ConfigError before any connection", () => {
    assert.throws(() => natsBackend({ servers: "" }), ConfigError);
    assert.throws(() => natsBackend({ servers: server.url, prefix: "no spaces" }), /prefix/);
    assert.throws(() => natsBackend({ servers: server.url, replicas: 7 }), /replicas/);
    assert.throws(() => natsBackend({ servers: server.url, token: "t", user: "u" }), /one of token/);
  });

  test("wrong credentials are refused with a clear NatsConnectError", async () => {
    const colony = createColony({ backend: natsBackend({ servers: server.url, user: "colony", pass: "wrong" }) });
    await assert.rejects(colony.board("b"), (error: Error) => error instanceof NatsConnectError && /authorization/i.test(error.message) && /credentials/.test(error.message));
    await colony.close();
  });

  test("the right credentials work, and two prefixes on one server see nothing of each other", async () => {
    const a = createColony({ backend: natsBackend({ servers: server.url, user: "colony", pass: "s3cret", prefix: "team-a" }) });
    const b = createColony({ backend: natsBackend({ servers: server.url, user: "colony", pass: "s3cret", prefix: "team-b" }) });
    try {
      await (await a.board("shared")).write("k", "from a", { author: "a" });
      await (await a.tasks()).submit({ kind: "k", input: 1 });
      assert.equal((await b.board("shared")).view().read("k"), undefined);
      assert.deepEqual(await (await b.tasks()).list(), []);
      assert.equal((await (await a.tasks()).list()).length, 1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("an id no run or agent can have (a space, a wildcard, an empty token) is not found, as on the embedded backends", async () => {
    const nats = createColony({ backend: natsBackend({ servers: server.url, user: "colony", pass: "s3cret", prefix: "odd-ids" }) });
    const memory = createColony({ backend: memoryBackend() });
    try {
      for (const colony of [nats, memory]) {
        for (const id of ["a b", "run-*", "a.>", ".a", "a.", "a..b", "ü", ""]) {
          await assert.rejects(colony.runs.get(id), NotFoundError, `runs.get(${JSON.stringify(id)})`);
          await assert.rejects(colony.agents.terminate(id), NotFoundError, `agents.terminate(${JSON.stringify(id)})`);
          assert.deepEqual(await colony.agents.list({ parentId: id }), []);
        }
      }
    } finally {
      await nats.close();
      await memory.close();
    }
  });

  test("local fallback is off by default on NATS, where a worker on another machine may take the task", async () => {
    const square = { name: "square", run: (ctx: { input: number }) => ctx.input * ctx.input };
    const colony = createColony({ backend: natsBackend({ servers: server.url, user: "colony", pass: "s3cret", prefix: "fallback" }), agents: { square } });
    try {
      const task = await (await colony.tasks()).submit({ kind: "square", input: 3 });
      assert.equal(task.assignee, undefined);
      assert.equal(task.fallback, undefined);
    } finally {
      await colony.close();
    }
  });

  test("the CLI takes --nats and COLONY_NATS_* variables; wrong credentials exit 2 with one line", () => {
    const run = (args: string[], env: Record<string, string> = {}) => runCliSync(args, { env: { ...process.env, ...env } });
    const submitted = run(["submit", "research", "--input", '{"q":1}', "--json", "--nats", server.url, "--nats-prefix", "cli"], { COLONY_NATS_USER: "colony", COLONY_NATS_PASS: "s3cret" });
    assert.equal(submitted.code, 0, submitted.stderr);
    assert.equal((JSON.parse(submitted.stdout) as { kind: string }).kind, "research");
    const listed = run(["tasks", "--json", "--nats-prefix", "cli"], { COLONY_NATS_URL: server.url, COLONY_NATS_USER: "colony", COLONY_NATS_PASS: "s3cret" });
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal((JSON.parse(listed.stdout) as unknown[]).length, 1);
    const refused = run(["tasks", "--nats", server.url, "--nats-user", "colony", "--nats-pass", "nope"]);
    assert.equal(refused.code, 2);
    assert.equal(refused.stderr.trim().split("\n").length, 1);
    assert.match(refused.stderr, /cannot connect to NATS .*authorization/i);
    const both = run(["tasks", "--nats", server.url, "--db", "x.db"]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--db and --nats exclude each other/);
  });

  test("a server without JetStream, or with nothing listening, is a NatsConnectError that says what to do", async () => {
    const port = await freePort();
    const plain = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: ["ignore", "ignore", "pipe"] });
    try {
      await new Promise<void>((resolve) => plain.stderr.setEncoding("utf8").on("data", (chunk: string) => chunk.includes("Server is ready") && resolve()));
      const noJetStream = createColony({ backend: natsBackend({ servers: `nats://127.0.0.1:${port}` }) });
      await assert.rejects(noJetStream.board("b"), (error: Error) => error instanceof NatsConnectError && /start nats-server with -js/.test(error.message));
      await noJetStream.close();
    } finally {
      plain.kill();
    }
    const nobody = createColony({ backend: natsBackend({ servers: `nats://127.0.0.1:${await freePort()}`, timeoutMs: 1000 }) });
    await assert.rejects(nobody.board("b"), (error: Error) => error instanceof NatsConnectError && /is nats-server running there/.test(error.message));
    await nobody.close();
  });
});
