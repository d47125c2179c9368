/**
 * Governance over spawn trees: token budgets counted up the tree and refused before they are
 * crossed (in the grandchild's own host, and in the runtime when siblings race), depth, children,
 * error-rate, wall-time and turn limits; and permissions that a child may only narrow, with writes
 * outside them refused and never written.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BudgetExceededError, DEFAULT_ENV, SubAgentError, type Isolation, type SubAgent } from "../src/index.ts";
import { alive, collect, waitFor, colonyPerFile, subtree } from "./fixtures/helpers.ts";
import { ref, thrower } from "./fixtures/subagents.ts";

const T = { timeout: 30_000 };

const env = colonyPerFile("colony-governance-");

function failedWith(reason: string) {
  return (error: unknown) => {
    assert.ok(error instanceof SubAgentError, `a SubAgentError, got ${String(error)}`);
    assert.equal(error.reason, reason);
    return true;
  };
}

describe("budgets", () => {
  it("tokens: a grandchild's usage that would cross its grandparent's limit is refused, nothing counted; usage adds up the tree", T, async () => {
    const root = await env.colony.spawn(ref("tokenTree"), { level: 0, isolations: ["thread", "process"] }, { budget: { tokens: 100 } });
    const result = (await root.result) as { child: { child: { level: number; refused: { name: string; code: string; limit: string; budget: boolean } } } };
    const refused = result.child.child.refused;
    assert.equal(result.child.child.level, 2);
    assert.equal(refused.budget, true, "rebuilt as a BudgetExceededError in the grandchild");
    assert.equal(refused.code, "BUDGET_EXCEEDED");
    assert.equal(refused.limit, "tokens");

    const rows = await subtree(env.colony, root.id);
    assert.deepEqual(rows.map((r) => [r.depth, r.isolation, r.state]), [
      [0, "inline", "succeeded"],
      [1, "thread", "succeeded"],
      [2, "process", "succeeded"],
    ]);
    // Own usage 10, 20 and 30; each ancestor counts its descendants'. The refused 50 is nowhere.
    assert.deepEqual(rows.map((r) => r.usage.tokens), [60, 50, 30]);
  });

  it("tokens: a sibling whose usage reaches the runtime after the limit was spent is stopped with reason budget", T, async () => {
    // The late spender's host was told 100 tokens were left; the runtime knows better by then.
    const parent = await env.colony.spawn(ref("budgetRace"), { tokens: 60, isolations: ["thread", "process"] }, { budget: { tokens: 100 } });
    const out = (await parent.result) as { ids: [string, string]; early: unknown; late: { ok: boolean; reason?: string } };
    assert.equal(out.early, "spent");
    assert.deepEqual(out.late, { ok: false, reason: "budget" });
    const rows = await subtree(env.colony, parent.id);
    assert.equal(rows[0]!.usage.tokens, 60, "the refused usage was not counted on the parent");
    const late = rows.find((r) => r.id === out.ids[1])!;
    assert.equal(late.usage.tokens, 0);
    assert.deepEqual([late.state, late.reason], ["failed", "budget"]);
  });

  it("costUsd: the same refusal, in dollars", T, async () => {
    const spend: SubAgent = {
      name: "spend",
      run: (ctx) => {
        ctx.usage.add({ costUsd: 0.75 });
        try {
          ctx.usage.add({ costUsd: 0.5 });
          return "not refused";
        } catch (error) {
          return error instanceof BudgetExceededError ? error.limit : String(error);
        }
      },
    };
    const handle = await env.colony.spawn(spend, null, { budget: { costUsd: 1 } });
    assert.equal(await handle.result, "costUsd");
    assert.equal((await subtree(env.colony, handle.id))[0]!.usage.costUsd, 0.75);
  });

  it("depth: a spawn below the allowed depth is refused with BudgetExceededError", T, async () => {
    const root = await env.colony.spawn(ref("chain"), { levels: 3, isolation: "thread" }, { budget: { depth: 1 } });
    const result = (await root.result) as { depth: number; child: { depth: number; refused: { limit: string; budget: boolean } } };
    assert.equal(result.depth, 0);
    assert.equal(result.child.depth, 1);
    assert.equal(result.child.refused.limit, "depth");
    assert.equal(result.child.refused.budget, true);
    assert.equal((await subtree(env.colony, root.id)).length, 2, "the refused grandchild was never registered");
  });

  it("children: the spawn past the count is refused with BudgetExceededError", T, async () => {
    const root = await env.colony.spawn(ref("spawnMany"), { count: 5, isolation: "process" }, { isolation: "thread", budget: { children: 2 } });
    const result = (await root.result) as { spawned: number; refused: { limit: string; budget: boolean; name: string } };
    assert.equal(result.spawned, 2);
    assert.equal(result.refused.limit, "children");
    assert.equal(result.refused.budget, true);
    assert.equal(result.refused.name, "BudgetExceededError");
    assert.equal((await env.colony.agents.list({ parentId: root.id })).length, 2);
  });

  it("errorRate: once too many children failed, further spawns are refused", T, async () => {
    const parent: SubAgent = {
      name: "error-rate-parent",
      run: async (ctx) => {
        for (let i = 0; i < 4; i++) await (await ctx.spawn(thrower)).result.catch(() => undefined);
        try {
          await ctx.spawn(thrower);
          return "spawned";
        } catch (error) {
          return error instanceof BudgetExceededError ? error.limit : String(error);
        }
      },
    };
    const handle = await env.colony.spawn(parent, null, { budget: { errorRate: 0.5 } });
    assert.equal(await handle.result, "errorRate");
  });

  it("wallMs: an agent past its wall time ends with reason budget, its descendants with it", T, async () => {
    // An inline root spawns its process child at once, so the child is there before the deadline
    // however slowly processes start on a loaded machine.
    const root = await env.colony.spawn(ref("tree"), { levels: 2, isolation: "process" }, { budget: { wallMs: 1_500 } });
    await assert.rejects(root.result, failedWith("budget"));
    // The child runs under the same deadline: it ends by its own timer (budget) or by the
    // root's cascade (terminated), whichever comes first — but it ends, and its process goes.
    const after = await waitFor(async () => {
      const r = await subtree(env.colony, root.id);
      return r.length === 2 && r[1]!.endedAt !== undefined && r;
    }, 5_000, "the child to end");
    assert.deepEqual([after[0]!.state, after[0]!.reason], ["failed", "budget"]);
    assert.ok(
      [JSON.stringify(["failed", "budget"]), JSON.stringify(["terminated", "terminated"])].includes(JSON.stringify([after[1]!.state, after[1]!.reason])),
      `child ended ${after[1]!.state} (${after[1]!.reason})`,
    );
    const pid = after[1]!.pid;
    assert.ok(pid !== undefined, "the child had started its process");
    await waitFor(() => !alive(pid), 5_000, `process ${pid} to exit`);
  });

  for (const isolation of ["inline", "process"] as const satisfies readonly Isolation[]) {
    it(`turns (${isolation}): the turn past the limit is refused and the agent ends with reason budget`, T, async () => {
      const handle = await env.colony.spawn(ref("forever"), null, { isolation, budget: { turns: 3 } });
      await assert.rejects(handle.result, failedWith("budget"));
      const [row] = await subtree(env.colony, handle.id);
      assert.equal(row!.state, "failed");
      assert.equal(row!.usage.turns, 3);
    });
  }

  it("a budget declared in a referenced agent's definition counts too", T, async () => {
    const handle = await env.colony.spawn(ref("threeTurns"), null, { isolation: "thread" });
    await assert.rejects(handle.result, failedWith("budget"));
    assert.equal((await subtree(env.colony, handle.id))[0]!.usage.turns, 3);
  });

  it("a budget that is not one is refused at spawn", T, async () => {
    await assert.rejects(env.colony.spawn(ref("echo"), null, { budget: { tokens: -1 } }), { code: "CONFIG" });
    await assert.rejects(env.colony.spawn(ref("echo"), null, { budget: { tokns: 5 } as never }), { code: "CONFIG" });
  });
});

describe("permissions", () => {
  for (const isolation of ["inline", "thread", "process"] as const satisfies readonly Isolation[]) {
    it(`${isolation}: a write outside the prefixes is a PermissionError and writes nothing; a wider child is refused at spawn`, T, async () => {
      const boardName = `perm-${isolation}`;
      const handle = await env.colony.spawn(
        ref("permissionProbe"),
        { writes: ["drafts/a", "final/x"], child: { permissions: { writePrefixes: ["final/"] }, isolation } },
        { isolation, board: boardName, permissions: { writePrefixes: ["drafts/"] } },
      );
      const out = (await handle.result) as {
        permissions: unknown;
        writes: Record<string, { ok?: boolean; version?: number; author?: string; permission?: boolean; code?: string }>;
        child: { spawned: boolean; error: { permission: boolean; code: string } };
      };
      assert.deepEqual(out.permissions, { writePrefixes: ["drafts/"], boards: [boardName], env: [...DEFAULT_ENV] });
      assert.deepEqual(out.writes["drafts/a"], { ok: true, version: 1, author: `permissionProbe@${handle.id}` });
      assert.equal(out.writes["final/x"]!.permission, true, "rebuilt as a PermissionError in the agent");
      assert.equal(out.writes["final/x"]!.code, "PERMISSION");
      assert.equal(out.child.spawned, false);
      assert.equal(out.child.error.permission, true);
      assert.equal(out.child.error.code, "PERMISSION");

      const board = await env.colony.board(boardName);
      const history = await board.history();
      // A referenced agent is named after its export unless the spawn names it; its id follows.
      assert.deepEqual(history.map((r) => [r.op, r.key, r.author]), [["write", "drafts/a", `permissionProbe@${handle.id}`]]);
      assert.equal(await board.get("final/x"), undefined);
      assert.equal((await env.colony.agents.list({ parentId: handle.id })).length, 0, "the refused child was never registered");
    });
  }

  it("a narrower child is spawned; it inherits the board and may write only under its own prefixes", T, async () => {
    const handle = await env.colony.spawn(
      ref("permissionProbe"),
      { child: { permissions: { writePrefixes: ["drafts/sub/"] }, isolation: "process", writes: ["drafts/sub/1", "drafts/other"] } },
      { isolation: "thread", board: "narrow", permissions: { writePrefixes: ["drafts/"], tools: ["search"] } },
    );
    const out = (await handle.result) as {
      child: { spawned: boolean; result: { permissions: unknown; writes: Record<string, { ok?: boolean; author?: string; permission?: boolean }> } };
    };
    assert.equal(out.child.spawned, true);
    assert.deepEqual(
      out.child.result.permissions,
      { tools: ["search"], writePrefixes: ["drafts/sub/"], boards: ["narrow"], env: [...DEFAULT_ENV] },
      "tools, boards and env inherited, prefixes narrowed",
    );
    const [child] = await env.colony.agents.list({ parentId: handle.id });
    assert.deepEqual(out.child.result.writes["drafts/sub/1"], { ok: true, version: 1, author: `probe-child@${child!.id}` });
    assert.equal(out.child.result.writes["drafts/other"]!.permission, true);
    const history = await (await env.colony.board("narrow")).history();
    assert.deepEqual(history.map((r) => [r.key, r.author]), [["drafts/sub/1", `probe-child@${child!.id}`]]);
  });

  it("tools: useTool outside the list is a PermissionError; a child asking for more tools is refused", T, async () => {
    const handle = await env.colony.spawn(
      ref("permissionProbe"),
      { tools: ["search", "shell"], child: { permissions: { tools: ["search", "shell"] }, isolation: "thread" } },
      { isolation: "process", permissions: { tools: ["search", "read"] } },
    );
    const out = (await handle.result) as { tools: Record<string, unknown>; child: { spawned: boolean; error: { permission: boolean; message: string } } };
    assert.equal(out.tools.search, "ok");
    assert.equal((out.tools.shell as { permission: boolean }).permission, true);
    assert.equal(out.child.spawned, false);
    assert.equal(out.child.error.permission, true);
    assert.match(out.child.error.message, /shell/);
  });

  it("tools declared in a referenced agent's definition must be within the parent's", T, async () => {
    // A referenced module is loaded only where it runs, so its declaration is checked there,
    // before its first turn: the child fails without running any of its code.
    const refused = await env.colony.spawn(ref("shellUser"), null, { isolation: "thread", permissions: { tools: ["search"] } });
    await assert.rejects(refused.result, (error: Error) => error instanceof SubAgentError && error.reason === "error" && /may not use/.test(error.message));
    assert.deepEqual(
      (await collect(refused)).filter((e) => e.type === "turn"),
      [],
      "no turn ran",
    );
    const allowed = await env.colony.spawn(ref("shellUser"), null, { isolation: "thread", permissions: { tools: ["search", "shell"] } });
    assert.deepEqual(await allowed.result, { tools: ["search", "shell"], boards: [], env: [...DEFAULT_ENV] });
  });
});
