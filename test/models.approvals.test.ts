/**
 * Tool approvals that survive processes: an agent whose tool needs approval pauses, durably
 * (`awaiting_approval` in the registry, a pending request on the backend), until a person decides
 * from any process: approved, the tool runs; denied, the model is told why. Inline, thread and
 * process agents, nested ones (the request shows at the top of the tree), and an owner killed
 * while it waited.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { ApprovalDecidedError, defineModelAgent, type SubAgentEvent, type SubAgentHandle } from "../src/index.ts";
import { runCli } from "./fixtures/cli.ts";
import { alive, colonyPerFile, waitFor } from "./fixtures/helpers.ts";
import { dangerRuns, guarded, modelRef } from "./fixtures/model-agents.ts";

const T = { timeout: 60_000 };
const env = colonyPerFile("colony-approvals-");

/** The first approval event of a handle (its own or a descendant's). */
async function approvalOf(handle: SubAgentHandle): Promise<Extract<SubAgentEvent, { type: "approval" }>> {
  for await (const event of handle.events) if (event.type === "approval") return event;
  throw new Error(`${handle.name} ended without asking for approval`);
}

describe("tool approvals", () => {
  it("pause the agent durably until approved, then the tool runs", T, async () => {
    const handle = await env.colony.spawn(guarded, "clean up");
    const request = await approvalOf(handle);
    assert.deepEqual(request.path, ["guarded"]);
    const [pending] = await env.colony.approvals.list();
    assert.equal(pending?.id, request.approvalId);
    assert.equal(pending?.tool, "danger");
    assert.deepEqual(pending?.args, { path: "/tmp/x" });
    const row = await waitFor(async () => (await env.colony.agents.list()).find((r) => r.id === handle.id && r.state === "awaiting_approval"), 20_000, "the agent's record to say awaiting_approval");
    assert.equal(row.state, "awaiting_approval");
    assert.equal(dangerRuns.length, 0, "nothing ran before the decision");
    const decided = await env.colony.approvals.approve(request.approvalId, { by: "tester" });
    assert.equal(decided.status, "approved");
    assert.equal(await handle.result, "done: deleted /tmp/x");
    assert.deepEqual(dangerRuns, ["/tmp/x"]);
    await assert.rejects(env.colony.approvals.deny(request.approvalId), (e: unknown) => e instanceof ApprovalDecidedError && /approved already \(by tester\)/.test(e.message));
  });

  it("tell the model of a denial and its reason; the tool does not run", T, async () => {
    dangerRuns.length = 0;
    const handle = await env.colony.spawn(guarded, "clean up");
    const request = await approvalOf(handle);
    await env.colony.approvals.deny(request.approvalId, { reason: "not on prod" });
    assert.equal(await handle.result, "denied: not on prod");
    assert.equal(dangerRuns.length, 0);
  });

  it("mark a request abandoned when its agent is terminated while waiting", T, async () => {
    const handle = await env.colony.spawn(guarded, "clean up");
    const request = await approvalOf(handle);
    await handle.terminate();
    await assert.rejects(handle.result);
    const record = (await env.colony.approvals.list({ status: "abandoned" })).find((r) => r.id === request.approvalId);
    assert.match(record?.reason ?? "", /its agent stopped/);
  });

  for (const isolation of ["thread", "process"] as const) {
    it(`resume a ${isolation} agent approved by \`colony approve\` from another process`, T, async () => {
      const handle = await env.colony.spawn(modelRef("guarded"), "clean up", { isolation });
      const request = await approvalOf(handle);
      const listed = await runCli(["approvals", "--db", join(env.dir, "colony.db"), "--json"]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.ok((JSON.parse(listed.stdout) as { id: string }[]).some((r) => r.id === request.approvalId));
      const approved = await runCli(["approve", request.approvalId, "--db", join(env.dir, "colony.db")]);
      assert.equal(approved.code, 0, approved.stderr);
      assert.match(approved.stdout + approved.stderr, /approved by/);
      assert.equal(await handle.result, "done: deleted /tmp/x");
    });

    it(`show a nested ${isolation} agent's request at the top of its tree, and deliver a deny from the CLI`, T, async () => {
      const outer = isolation === "thread" ? "process" : "thread";
      const handle = await env.colony.spawn(modelRef("nestParent"), { isolation }, { isolation: outer });
      const request = await approvalOf(handle);
      assert.deepEqual(request.path, ["nestParent", "guarded"]);
      assert.notEqual(request.agentId, handle.id);
      const denied = await runCli(["deny", request.approvalId, "--reason", "ask again tomorrow", "--db", join(env.dir, "colony.db")]);
      assert.equal(denied.code, 0, denied.stderr);
      assert.equal(await handle.result, "denied: ask again tomorrow");
    });
  }

  it("pause a loop agent's step until approved; its answer lands on the board", T, async () => {
    const loopGuarded = defineModelAgent({ ...guarded.options, name: "janitor", trigger: (view) => !view.has("report"), writes: "report" });
    const running = env.colony.run({ name: "cleanup", board: "approvals-loop", agents: [loopGuarded], goal: (view) => view.has("report"), maxSteps: 3 });
    const pending = await waitFor(async () => (await env.colony.approvals.list()).find((r) => r.agentName === "janitor"), 20_000, "the loop agent's request");
    assert.deepEqual(pending.path, ["cleanup", "janitor"]);
    await env.colony.approvals.approve(pending.id);
    const result = await running;
    assert.equal(result.stopReason, "goal");
    assert.equal((await (await env.colony.board("approvals-loop")).get("report"))?.value, "done: deleted /tmp/x");
  });

  it("leave a record that says so when the waiting process is killed", T, async () => {
    const owner = spawn(process.execPath, [fileURLToPath(new URL("./fixtures/approval-owner.ts", import.meta.url)), join(env.dir, "colony.db")], { stdio: ["ignore", "pipe", "inherit"] });
    const line = await Promise.race([
      once(createInterface({ input: owner.stdout }), "line").then(([text]) => text as string),
      once(owner, "close").then(([code]) => Promise.reject(new Error(`the owner exited (${String(code)}) before asking for approval`))),
    ]);
    const { approvalId, agentId } = JSON.parse(line) as { approvalId: string; agentId: string };
    owner.kill("SIGKILL");
    await once(owner, "close");
    await waitFor(() => !alive(owner.pid!), 20_000, "the owner to be gone");
    const record = (await env.colony.approvals.list()).find((r) => r.id === approvalId);
    assert.equal(record?.status, "abandoned");
    assert.match(record?.reason ?? "", new RegExp(`its process ${owner.pid} is gone`));
    const agent = (await env.colony.agents.list()).find((r) => r.id === agentId);
    assert.equal(agent?.state, "failed");
    assert.equal(agent?.reason, "crash");
  });
});
