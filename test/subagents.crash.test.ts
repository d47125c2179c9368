/**
 * Fault isolation with real threads and processes: a thread over its heap limit and a process
 * killed with SIGKILL end as `subagent.failed` reason `crash` while their parent and siblings
 * finish; a three-level tree of process agents terminated at the root leaves no process alive;
 * and an owner process killed with SIGKILL takes its process children with it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { SubAgentError, type AgentRecord } from "../src/index.ts";
import { alive, collect, label, sqliteColony, waitFor, colonyPerFile, subtree } from "./fixtures/helpers.ts";
import { ref } from "./fixtures/subagents.ts";

const OWNER = fileURLToPath(new URL("./fixtures/subagent-owner.ts", import.meta.url));
const T = { timeout: 45_000 };

const env = colonyPerFile("colony-subagent-crash-");

/** How each agent ended, by name. */
function ends(rows: AgentRecord[]): Record<string, [string, string | undefined]> {
  return Object.fromEntries(rows.map((r) => [r.name, [r.state, r.reason]]));
}

interface FanOut {
  ids: string[];
  outcomes: { ok: boolean; result?: unknown; reason?: string; error?: { message: string } }[];
  inbox: string[];
}

describe("crashes are contained", () => {
  it("a thread over its heap limit (maxOldGenerationSizeMb 32) fails with reason crash; its parent and siblings finish", T, async () => {
    const parent = await env.colony.spawn(ref("fanOut"), {
      children: [
        { agent: "hog", isolation: "thread", options: { resourceLimits: { maxOldGenerationSizeMb: 32 } } },
        { agent: "echo", isolation: "thread", input: "sibling" },
        { agent: "sleeper", isolation: "thread", input: { ms: 300 } },
      ],
    });
    const out = (await parent.result) as FanOut;
    assert.equal(parent.state, "succeeded");
    assert.equal(out.outcomes[0]!.ok, false);
    assert.equal(out.outcomes[0]!.reason, "crash");
    assert.match(out.outcomes[0]!.error!.message, /out of memory/);
    assert.equal(out.outcomes[1]!.ok, true);
    assert.deepEqual((out.outcomes[1]!.result as { input: unknown }).input, "sibling");
    assert.deepEqual(out.outcomes[2], { ok: true, result: "woke" });
    assert.ok(out.inbox.includes("failed:hog-0:crash"), out.inbox.join(", "));
    const rows = await subtree(env.colony, parent.id);
    assert.deepEqual(ends(rows), {
      fanOut: ["succeeded", undefined],
      "hog-0": ["failed", "crash"],
      "echo-1": ["succeeded", undefined],
      "sleeper-2": ["succeeded", undefined],
    });
  });

  it("a top-level thread over its heap limit rejects with SubAgentError reason crash", T, async () => {
    const handle = await env.colony.spawn(ref("hog"), null, { isolation: "thread", resourceLimits: { maxOldGenerationSizeMb: 32 } });
    await assert.rejects(handle.result, (error: unknown) => error instanceof SubAgentError && error.reason === "crash");
    assert.deepEqual((await collect(handle)).map(label).slice(-2), ["state:failed", "subagent.failed:crash"]);
  });

  it("a process killed with SIGKILL fails with reason crash; its parent and siblings finish", T, async () => {
    const parent = await env.colony.spawn(
      ref("fanOut"),
      {
        children: [
          { agent: "sleeper", isolation: "process" },
          { agent: "echo", isolation: "process", input: "sibling" },
          { agent: "sleeper", isolation: "process", input: { ms: 1_500 } },
        ],
      },
      { isolation: "thread" },
    );
    const victim = await waitFor(async () => (await env.colony.agents.list({ parentId: parent.id })).find((r) => r.name === "sleeper-0" && r.state === "running" && r.pid), 20_000, "the victim to run");
    assert.ok(alive(victim.pid!));
    process.kill(victim.pid!, "SIGKILL");
    const out = (await parent.result) as FanOut;
    assert.equal(parent.state, "succeeded");
    assert.equal(out.outcomes[0]!.reason, "crash");
    assert.match(out.outcomes[0]!.error!.message, /SIGKILL/);
    assert.equal(out.outcomes[1]!.ok, true);
    assert.deepEqual(out.outcomes[2], { ok: true, result: "woke" });
    assert.ok(out.inbox.includes("failed:sleeper-0:crash"), out.inbox.join(", "));
    const rows = await subtree(env.colony, parent.id);
    assert.deepEqual(ends(rows), {
      fanOut: ["succeeded", undefined],
      "sleeper-0": ["failed", "crash"],
      "echo-1": ["succeeded", undefined],
      "sleeper-2": ["succeeded", undefined],
    });
    for (const row of rows) if (row.pid !== undefined) await waitFor(() => !alive(row.pid!), 5_000, `process ${row.pid} to exit`);
  });
});

describe("no orphans", () => {
  for (const stubbornLeaf of [false, true]) {
    it(`a three-level tree of process agents terminated at the root leaves no process alive${stubbornLeaf ? " (the leaf ignores the stop)" : ""}`, T, async () => {
      const root = await env.colony.spawn(ref("tree"), { levels: 3, isolation: "process", stubbornLeaf }, { isolation: "process" });
      const rows = await waitFor(async () => {
        const r = await subtree(env.colony, root.id);
        return r.length === 3 && r.every((x) => x.state === "running" && x.pid !== undefined) && r;
      }, 20_000, "three running levels");
      assert.deepEqual(rows.map((r) => r.depth), [0, 1, 2]);
      assert.deepEqual(rows.map((r) => r.parentId), [undefined, rows[0]!.id, rows[1]!.id]);
      const pids = rows.map((r) => r.pid!);
      assert.equal(new Set(pids).size, 3);
      for (const pid of pids) assert.ok(alive(pid), `process ${pid} runs`);

      await root.terminate({ graceMs: 500 });
      await assert.rejects(root.result, (error: unknown) => error instanceof SubAgentError && error.reason === "terminated");
      const ended = await subtree(env.colony, root.id);
      assert.deepEqual(ended.map((r) => r.state), ["terminated", "terminated", "terminated"]);
      assert.match(ended[2]!.error ?? "", /ancestor/);
      for (const pid of pids) await waitFor(() => !alive(pid), 5_000, `process ${pid} to be gone`);
    });
  }

  it("an owner process killed with SIGKILL takes its process children with it", T, async () => {
    const path = `${env.dir}/owner.db`;
    let pids: number[] = [];
    const owner = spawn(process.execPath, [OWNER, path], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    owner.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const exited = new Promise<string | null>((resolve) => owner.once("exit", (_code, signal) => resolve(signal)));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        owner.stdout.setEncoding("utf8").on("data", (chunk: string) => {
          out += chunk;
          if (out.includes("\n")) resolve(out.slice(0, out.indexOf("\n")));
        });
        owner.once("exit", (code) => reject(new Error(`the owner exited (${code}) before it was ready: ${stderr}`)));
      });
      const ready = JSON.parse(line) as { pids: number[]; ids: string[] };
      const ids = ready.ids;
      pids = ready.pids;
      assert.equal(pids.length, 5, "two sleepers, a spinner and a two-level tree");
      for (const pid of pids) assert.ok(alive(pid), `process ${pid} runs`);

      owner.kill("SIGKILL");
      assert.equal(await exited, "SIGKILL");
      for (const pid of pids) await waitFor(() => !alive(pid), 5_000, `process ${pid} to follow its owner`);

      // Its agents can never end by themselves now; another colony on the file lists them as crashed.
      const other = sqliteColony(path);
      try {
        const rows = await other.agents.list();
        assert.deepEqual(rows.map((r) => r.id).toSorted(), ids.toSorted());
        for (const row of rows) assert.deepEqual([row.state, row.reason], ["failed", "crash"], row.name);
      } finally {
        await other.close();
      }
    } finally {
      if (owner.exitCode === null && owner.signalCode === null) owner.kill("SIGKILL");
      // Should a child have outlived its owner (a failure above), end it here so it cannot hold
      // the owner's pipes, and this test file, open.
      for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
      owner.stdout.destroy();
      owner.stderr.destroy();
    }
  });
});
