/**
 * The warm pool: spawns into pre-started thread and process hosts give what cold spawns give, the
 * pool refills after use, a spawn with its own environment or resource limits starts cold and
 * gets exactly what it asked for, and no pooled process outlives its colony or its parent (even
 * one killed with SIGKILL). Also: the zod-free checks a host makes accept exactly what the
 * protocol's schemas accept. Which host ran an agent is told by its pid or thread id, never by
 * timing.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ConfigError, createColony, DEFAULT_ENV, memoryBackend, type AgentRecord, type Colony, type Isolation } from "../src/index.ts";
import { runtimeMessage, startMessage } from "../src/runtime/agents/protocol.ts";
import { readRuntimeMessage, readStart } from "../src/runtime/agents/wire.ts";
import { alive, collect, label, waitFor, within } from "./fixtures/helpers.ts";
import { POOL_AGENTS, type Report } from "./fixtures/pool-agents.ts";

const OWNER = fileURLToPath(new URL("./fixtures/pool-owner.ts", import.meta.url));
const T = { timeout: 60_000 };
const REPORT = { module: POOL_AGENTS, export: "report" };
const KINDS = ["thread", "process"] as const satisfies readonly Isolation[];
type Kind = (typeof KINDS)[number];

async function withPool<T>(sizes: { thread?: number; process?: number } | undefined, fn: (colony: Colony) => Promise<T>): Promise<T> {
  const colony = createColony({ backend: memoryBackend(), ...(sizes && { pool: sizes }) });
  try {
    return await fn(colony);
  } finally {
    await colony.close();
  }
}

/** The pool once it holds `thread` and `process` ready hosts. */
function full(colony: Colony, sizes: { thread?: number; process?: number }) {
  return waitFor(
    () => {
      const ready = colony.pool();
      return ready.thread.length === (sizes.thread ?? 0) && ready.process.length === (sizes.process ?? 0) && ready;
    },
    30_000,
    "the pool to fill",
  );
}

/** Where an agent ran, as the pool names its hosts. */
const host = (kind: Kind, report: { pid: number; threadId: number }) => (kind === "thread" ? report.threadId : report.pid);

/** The environment a cold host gets by default: `DEFAULT_ENV` with this process's values. */
function defaultEnv(): Record<string, string> {
  return Object.fromEntries(DEFAULT_ENV.flatMap((name) => (process.env[name] === undefined ? [] : [[name, process.env[name]!]])));
}

async function run(colony: Colony, kind: Kind, options: { env?: string[]; resourceLimits?: { maxOldGenerationSizeMb: number } } = {}) {
  const handle = await colony.spawn<Report>(REPORT, { n: 1 }, { isolation: kind, ...options });
  const [events, result] = await Promise.all([collect(handle), handle.result]);
  const row = (await colony.agents.list()).find((r) => r.id === handle.id);
  assert.ok(row, "the agent is in the registry");
  return { result, events: events.map(label), row };
}

/** A registry row without what differs from spawn to spawn. */
function comparable(row: AgentRecord) {
  const { id: _id, pid: _pid, startedAt: _s, endedAt: _e, ...rest } = row;
  return rest;
}

describe("the pool option", () => {
  it("is off by default, and refuses anything but whole numbers >= 0 of thread and process hosts, naming the field", () => {
    assert.deepEqual(createColony({ backend: memoryBackend() }).pool(), { thread: [], process: [] });
    for (const [pool, field] of [
      [{ thread: -1 }, /pool\.thread/],
      [{ process: 1.5 }, /pool\.process/],
      [{ process: "2" }, /pool\.process/],
      [{ thread: Number.NaN }, /pool\.thread/],
      [{ inline: 1 }, /pool takes thread and process, got "inline"/],
      [3, /pool is \{ thread/],
      [null, /pool is \{ thread/],
    ] as const) {
      assert.throws(() => createColony({ backend: memoryBackend(), pool: pool as never }), (e: unknown) => e instanceof ConfigError && field.test(e.message), JSON.stringify(pool));
    }
  });
});

for (const kind of KINDS) {
  describe(`warm ${kind} hosts`, () => {
    it("a spawn into a warm host gives the same result, events and registry row as a cold one", T, async () => {
      const cold = await withPool(undefined, (colony) => run(colony, kind));
      const warm = await withPool({ [kind]: 1 }, async (colony) => {
        const ready = (await full(colony, { [kind]: 1 }))[kind];
        const out = await run(colony, kind);
        assert.deepEqual([host(kind, out.result)], ready, "it ran in the warm host");
        return out;
      });
      const { pid: _cp, threadId: _ct, ...coldResult } = cold.result;
      const { pid: _wp, threadId: _wt, ...warmResult } = warm.result;
      assert.deepEqual(warmResult, coldResult);
      assert.deepEqual(warmResult.env, defaultEnv());
      assert.deepEqual(warm.events, cold.events);
      assert.deepEqual(comparable(warm.row), comparable(cold.row));
      if (kind === "process") {
        assert.equal(warm.row.pid, warm.result.pid, "the registry holds the warm process's pid");
        await waitFor(() => !alive(warm.result.pid), 5_000, `the used process ${warm.result.pid} to exit`);
      }
    });

    it("a host is used once; after every warm host is taken spawns still run, and the pool refills to its size", T, async () => {
      await withPool({ [kind]: 2 }, async (colony) => {
        const first = (await full(colony, { [kind]: 2 }))[kind];
        const results = await Promise.all([1, 2, 3].map(async () => (await run(colony, kind)).result));
        const used = results.map((r) => host(kind, r));
        assert.equal(new Set(used).size, 3, "three hosts for three agents");
        for (const id of first) assert.ok(used.includes(id), `warm host ${id} ran one of them`);

        const refilled = (await full(colony, { [kind]: 2 }))[kind];
        for (const id of refilled) assert.ok(!used.includes(id), `host ${id} is a new one`);
        const next = (await run(colony, kind)).result;
        assert.ok(refilled.includes(host(kind, next)), "the next spawn takes a refilled host");
        if (kind === "process") for (const pid of used) await waitFor(() => !alive(pid), 5_000, `used process ${pid} to exit`);
      });
    });

    it("a spawn with its own env starts cold and gets exactly that env; the warm host stays for the next", T, async () => {
      process.env.COLONY_POOL_SECRET = "s3cret";
      try {
        await withPool({ [kind]: 1 }, async (colony) => {
          const ready = (await full(colony, { [kind]: 1 }))[kind];
          const own = (await run(colony, kind, { env: ["PATH", "COLONY_POOL_SECRET"] })).result;
          assert.ok(!ready.includes(host(kind, own)), "it ran in a cold host");
          assert.deepEqual(own.env, { PATH: process.env.PATH, COLONY_POOL_SECRET: "s3cret" });
          assert.deepEqual(colony.pool()[kind], ready, "the warm host is still there");
          const warm = (await run(colony, kind)).result;
          assert.deepEqual([host(kind, warm)], ready);
          assert.deepEqual(warm.env, defaultEnv());
          assert.equal(warm.env.COLONY_POOL_SECRET, undefined);
        });
      } finally {
        delete process.env.COLONY_POOL_SECRET;
      }
    });

    it("a default variable changed after the pool started: the stale host is dropped and the spawn gets the new value", T, async () => {
      const before = process.env.NODE_ENV;
      try {
        await withPool({ [kind]: 1 }, async (colony) => {
          const stale = (await full(colony, { [kind]: 1 }))[kind];
          process.env.NODE_ENV = "pool-test";
          const changed = (await run(colony, kind)).result;
          assert.ok(!stale.includes(host(kind, changed)));
          assert.equal(changed.env.NODE_ENV, "pool-test");
          const fresh = (await full(colony, { [kind]: 1 }))[kind];
          const warm = (await run(colony, kind)).result;
          assert.deepEqual([host(kind, warm)], fresh, "refilled with the new value, and taken");
          assert.equal(warm.env.NODE_ENV, "pool-test");
          if (kind === "process") await waitFor(() => !alive(stale[0]!), 5_000, "the stale process to exit");
        });
      } finally {
        if (before === undefined) delete process.env.NODE_ENV;
        else process.env.NODE_ENV = before;
      }
    });
  });
}

describe("the pool and the spawn tree", () => {
  it("a spawn with resourceLimits starts a cold thread", T, async () => {
    await withPool({ thread: 1 }, async (colony) => {
      const ready = (await full(colony, { thread: 1 })).thread;
      const limited = (await run(colony, "thread", { resourceLimits: { maxOldGenerationSizeMb: 64 } })).result;
      assert.ok(!ready.includes(limited.threadId));
      assert.deepEqual(colony.pool().thread, ready);
    });
  });

  it("a thread agent's process child takes a warm process too (the runtime starts every host)", T, async () => {
    await withPool({ thread: 1, process: 1 }, async (colony) => {
      const ready = await full(colony, { thread: 1, process: 1 });
      const parent = await colony.spawn<{ pid: number; threadId: number; child: Report }>({ module: POOL_AGENTS, export: "spawner" }, { isolation: "process" }, { isolation: "thread" });
      const out = await parent.result;
      assert.deepEqual([out.threadId], ready.thread);
      assert.deepEqual([out.child.pid], ready.process);
      assert.equal(out.child.depth, 1);
      assert.deepEqual(out.child.env, defaultEnv(), "a child gets its parent's env, which is the default one");
    });
  });
});

describe("no pooled host outlives its owner", () => {
  it("close() awaited in a process with nothing else to do settles (the hosts' ends are waited for)", T, async () => {
    const child = spawn(process.execPath, [fileURLToPath(new URL("./fixtures/pool-close.ts", import.meta.url))], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
    const [code] = (await once(child, "close")) as [number | null];
    assert.equal(code, 0, err);
    assert.equal(out.trim(), "closed");
    assert.doesNotMatch(err, /unsettled top-level await/);
  });

  it("close() stops every warm host: no pooled process is left", T, async () => {
    const colony = createColony({ backend: memoryBackend(), pool: { thread: 1, process: 2 } });
    const { process: pids } = await full(colony, { thread: 1, process: 2 });
    for (const pid of pids) assert.ok(alive(pid), `pooled process ${pid} waits`);
    await colony.close();
    for (const pid of pids) assert.ok(!alive(pid), `pooled process ${pid} is gone once close() resolves`);
    assert.deepEqual(colony.pool(), { thread: [], process: [] });
  });

  for (const mode of ["hold", "leave"] as const) {
    const what =
      mode === "hold"
        ? "an owner killed with SIGKILL takes its pooled processes with it"
        : "warm hosts keep no process alive: an owner with nothing else to do exits, and its pooled processes with it";
    it(what, T, async () => {
      const owner = spawn(process.execPath, [OWNER, mode], { stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      owner.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      const exited = once(owner, "exit") as Promise<[number | null, string | null]>;
      let pids: number[] = [];
      try {
        const line = await within(
          new Promise<string>((resolve, reject) => {
            let out = "";
            owner.stdout.setEncoding("utf8").on("data", (chunk: string) => {
              out += chunk;
              if (out.includes("\n")) resolve(out.slice(0, out.indexOf("\n")));
            });
            owner.once("exit", (code) => reject(new Error(`the owner exited (${code}) before its pool was full: ${stderr}`)));
          }),
          "the owner's pool to fill",
        );
        pids = (JSON.parse(line) as { pids: number[] }).pids;
        assert.equal(pids.length, 2);
        if (mode === "hold") {
          for (const pid of pids) assert.ok(alive(pid), `pooled process ${pid} waits`);
          owner.kill("SIGKILL");
          assert.deepEqual(await exited, [null, "SIGKILL"]);
        } else {
          assert.deepEqual(await within(exited, "the owner to exit by itself"), [0, null], stderr);
        }
        for (const pid of pids) await waitFor(() => !alive(pid), 5_000, `pooled process ${pid} to follow its owner`);
      } finally {
        owner.kill("SIGKILL");
        for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
      }
    });
  }
});

describe("what a host checks without zod", () => {
  const error = { name: "ConfigError", message: "no", code: "CONFIG", fields: { key: "k" } };
  const runtimeSamples: unknown[] = [
    { t: "res", id: 1, ok: true, value: { a: [1] } },
    { t: "res", id: 2, ok: false, error },
    { t: "res", id: 3, ok: true, extra: "dropped" },
    { t: "res", id: 1.5, ok: true },
    { t: "res", id: 4, ok: "yes" },
    { t: "res", id: 5, ok: false, error: { name: "E" } },
    { t: "res", id: 6, ok: false, error: { ...error, fields: [] } },
    { t: "res", id: 6, ok: false, error: { ...error, code: 7 } },
    { t: "inbox", messages: [{ type: "signal", from: "x", message: 1 }] },
    { t: "inbox", messages: {} },
    { t: "stop", reason: "terminated" },
    { t: "stop" },
    { t: "child.event", childId: "c", event: { type: "turn" } },
    { t: "child.event", childId: 1, event: {} },
    { t: "child.end", childId: "c", ok: true, result: 3 },
    { t: "child.end", childId: "c", ok: false, result: undefined, error },
    { t: "child.end", childId: "c", ok: false, error: "boom" },
    { t: "nope" },
    [],
    null,
    "res",
  ];
  const start = { id: "a", name: "n", depth: 0, input: { x: 1 }, permissions: { env: ["PATH"] }, remaining: { tokens: 10 } };
  const startSamples: unknown[] = [
    start,
    { ...start, parentId: "p", board: "b", agent: { module: "file:///a.ts", export: "e" }, extra: 1 },
    { ...start, agent: { module: "m" }, permissions: { tools: ["t"], writePrefixes: [], boards: ["b"] }, remaining: {} },
    { ...start, depth: 0.5 },
    { ...start, id: 1 },
    { ...start, agent: { export: "e" } },
    { ...start, permissions: { env: "PATH" } },
    { ...start, permissions: { env: [1] } },
    { ...start, remaining: { tokens: "10" } },
    { ...start, remaining: { tokens: Infinity } },
    { ...start, permissions: undefined },
    [],
    undefined,
  ];

  it("a runtime message: what the schema accepts, as the schema returns it; nothing else", () => {
    for (const sample of runtimeSamples) {
      const parsed = runtimeMessage.safeParse(sample);
      assert.deepEqual(readRuntimeMessage(sample), parsed.success ? parsed.data : undefined, JSON.stringify(sample));
    }
  });

  it("a start message likewise; a refused one is a ConfigError", () => {
    for (const sample of startSamples) {
      const parsed = startMessage.safeParse(sample);
      if (parsed.success) assert.deepEqual(readStart(sample), parsed.data, JSON.stringify(sample));
      else assert.throws(() => readStart(sample), ConfigError, JSON.stringify(sample));
    }
  });
});
