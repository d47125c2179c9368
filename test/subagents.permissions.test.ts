/**
 * Permissions only narrow down a spawn tree, in every isolation: tools, write prefixes, boards
 * and the environment a child gets. Each rule is tested both ways (a narrower request is taken, a
 * wider one refused) and for inheritance (a child that asks for nothing gets its parent's, never
 * more). Writes made through a context are authored by the agent's id, whatever it calls itself.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { narrowPermissions } from "../src/core/governance.ts";
import { DEFAULT_ENV, PermissionError, type Isolation, type Permissions } from "../src/index.ts";
import { colonyPerFile } from "./fixtures/helpers.ts";
import { ref, type PermissionInput, type ProbeReport } from "./fixtures/subagents.ts";

// A hang guard: a process parent starting process grandchildren took 12–30 s in a loaded suite run.
const T = { timeout: 120_000 };
const ISOLATIONS = ["inline", "thread", "process"] as const satisfies readonly Isolation[];

const env = colonyPerFile("colony-permissions-");

async function probe(input: PermissionInput, options: { isolation: Isolation; board?: string; permissions?: Permissions; env?: string[]; name?: string }) {
  const handle = await env.colony.spawn<ProbeReport>(ref("permissionProbe"), input, options);
  return { id: handle.id, report: await handle.result };
}

function spawnedChild(report: ProbeReport): ProbeReport {
  assert.ok(report.child?.spawned, `the child was spawned, got ${JSON.stringify(report.child)}`);
  return report.child.result;
}

function refusedChild(report: ProbeReport, pattern: RegExp): void {
  assert.ok(report.child && !report.child.spawned, `the child was refused, got ${JSON.stringify(report.child)}`);
  assert.equal(report.child.error.permission, true, `a PermissionError, got ${JSON.stringify(report.child.error)}`);
  assert.match(report.child.error.message, pattern);
}

describe("narrowing rules", () => {
  const parent: Permissions = { tools: ["search", "read"], writePrefixes: ["drafts/"], boards: ["main", "side"], env: ["PATH", "TOKEN"] };

  it("a child that asks for nothing gets each of its parent's lists, as they are", () => {
    assert.deepEqual(narrowPermissions(parent, undefined, "child"), parent);
    assert.deepEqual(narrowPermissions(parent, {}, "child"), parent);
  });

  it("a child may ask for a part of each list", () => {
    const narrowed = narrowPermissions(parent, { tools: ["read"], writePrefixes: ["drafts/sub/"], boards: ["side"], env: ["PATH"] }, "child");
    assert.deepEqual(narrowed, { tools: ["read"], writePrefixes: ["drafts/sub/"], boards: ["side"], env: ["PATH"] });
  });

  for (const [list, wider] of [
    ["tools", ["search", "shell"]],
    ["writePrefixes", ["drafts/", "final/"]],
    ["boards", ["main", "other"]],
    ["env", ["PATH", "SECRET_TOKEN"]],
  ] as const) {
    it(`${list}: asking for more than the parent has is refused, naming what is extra`, () => {
      assert.throws(() => narrowPermissions(parent, { [list]: wider }, "child"), (error: Error) => error instanceof PermissionError && error.message.includes(JSON.stringify(wider[1])));
    });
  }

  it("writePrefixes: a shorter prefix than the parent's is wider, not narrower", () => {
    // "" and "d" are prefixes of "drafts/", so they would pass a check made the wrong way round.
    for (const wider of [[""], ["d"], ["drafts"]]) {
      assert.throws(() => narrowPermissions(parent, { writePrefixes: wider }, "child"), PermissionError, JSON.stringify(wider));
    }
  });

  it("a parent without a list leaves the child free to name one", () => {
    assert.deepEqual(narrowPermissions({}, { tools: ["x"], boards: ["b"] }, "child"), { tools: ["x"], boards: ["b"] });
  });

  it("a list that is not an array of strings is a ConfigError", () => {
    assert.throws(() => narrowPermissions(parent, { boards: "main" as never }, "child"), { code: "CONFIG" });
  });
});

for (const isolation of ISOLATIONS) {
  describe(`${isolation}: permissions down a spawn tree`, () => {
    it("a child spawned without permissions inherits its parent's prefixes and may not write outside them", T, async () => {
      const board = `inherit-${isolation}`;
      const { report } = await probe(
        { writes: ["drafts/a"], child: { isolation, writes: ["drafts/b", "final/x"] } },
        { isolation, board, permissions: { writePrefixes: ["drafts/"] } },
      );
      const child = spawnedChild(report);
      assert.deepEqual(child.permissions.writePrefixes, ["drafts/"]);
      assert.equal((child.writes["drafts/b"] as { ok: boolean }).ok, true);
      assert.equal((child.writes["final/x"] as { permission: boolean }).permission, true);
      assert.equal(await (await env.colony.board(board)).get("final/x"), undefined, "nothing was written");
    });

    it("a child asking for the empty prefix under a drafts/-only parent is refused", T, async () => {
      const { report } = await probe({ child: { isolation, permissions: { writePrefixes: [""] }, writes: ["final/x"] } }, { isolation, board: `empty-${isolation}`, permissions: { writePrefixes: ["drafts/"] } });
      refusedChild(report, /prefixes its parent may not/);
    });

    it("a grandchild may narrow tools further but not take back one its parent dropped", T, async () => {
      const { report } = await probe(
        { child: { isolation, permissions: { tools: ["search"] }, child: { isolation, permissions: { tools: ["search", "read"] } } } },
        { isolation, permissions: { tools: ["search", "read"] } },
      );
      const child = spawnedChild(report);
      assert.deepEqual(child.permissions.tools, ["search"]);
      refusedChild(child, /tools its parent may not use: "read"/);
    });

    it("boards: a child may not write to another board; one its parent may touch it may", T, async () => {
      const { report } = await probe(
        { child: { isolation, board: `other-${isolation}`, writes: ["summaries/x"] } },
        { isolation, board: `main-${isolation}`, permissions: { writePrefixes: ["summaries/"] } },
      );
      refusedChild(report, new RegExp(`may not touch board "other-${isolation}"`));
      assert.equal(await (await env.colony.board(`other-${isolation}`)).get("summaries/x"), undefined);

      const allowed = await probe(
        {
          child: {
            isolation,
            board: `side-${isolation}`,
            writes: ["summaries/y"],
            // Its parent's boards are its own; a third is not among them.
            child: { isolation, board: `third-${isolation}` },
          },
        },
        { isolation, board: `main-${isolation}`, permissions: { writePrefixes: ["summaries/"], boards: [`main-${isolation}`, `side-${isolation}`] } },
      );
      const child = spawnedChild(allowed.report);
      assert.equal(child.board, `side-${isolation}`);
      assert.equal((child.writes["summaries/y"] as { ok: boolean }).ok, true);
      refusedChild(child, new RegExp(`may not touch board "third-${isolation}"`));
    });

    it("boards: asking for a board list wider than the parent's is refused", T, async () => {
      const { report } = await probe({ child: { isolation, permissions: { boards: [`main-${isolation}`, "elsewhere"] } } }, { isolation, board: `main-${isolation}` });
      refusedChild(report, /boards its parent may not touch: "elsewhere"/);
    });

    it("authorship: a write is by the agent's name and id, whatever name it took and whatever author it sends", T, async () => {
      const board = `author-${isolation}`;
      const { id, report } = await probe(
        // A child names itself after its parent and sends a forged author with its write.
        { child: { isolation, name: "planner", writes: ["notes/forged"], writeOptions: { author: "planner" } } },
        { isolation, board, name: "planner" },
      );
      spawnedChild(report);
      const [child] = await env.colony.agents.list({ parentId: id });
      const history = await (await env.colony.board(board)).history();
      assert.deepEqual(history.map((r) => r.author), [`planner@${child!.id}`]);
      assert.notEqual(child!.id, id);
    });
  });
}

describe("agent names", () => {
  it("a name with control characters, an empty one or one past 256 bytes is refused at spawn", T, async () => {
    for (const name of ["eve\u001b[2J", "", "é".repeat(129)]) {
      await assert.rejects(env.colony.spawn(ref("echo"), null, { name }), { code: "CONFIG" }, JSON.stringify(name));
    }
    assert.equal(((await (await env.colony.spawn(ref("echo"), "ok", { name: "é".repeat(128) })).result) as { name: string }).name, "é".repeat(128));
  });
});

describe("the environment a child gets", () => {
  const secrets = { SECRET_TOKEN: "s3cret", COLONY_NATS_PASS: "hunter2" };
  before(() => Object.assign(process.env, secrets));
  after(() => {
    for (const name of Object.keys(secrets)) delete process.env[name];
  });
  const names = ["PATH", ...Object.keys(secrets)];

  for (const isolation of ["thread", "process"] as const) {
    it(`${isolation}: with the default environment, it sees none of the process's other variables`, T, async () => {
      const { report } = await probe({ env: names }, { isolation });
      assert.deepEqual(report.permissions.env, [...DEFAULT_ENV]);
      assert.deepEqual(report.env, { PATH: process.env.PATH, SECRET_TOKEN: null, COLONY_NATS_PASS: null });
    });
  }

  for (const isolation of ISOLATIONS) {
    it(`${isolation} parent: a process grandchild asking for variables its parent was not given is refused`, T, async () => {
      const { report } = await probe({ child: { isolation: "process", spawnEnv: ["SECRET_TOKEN", "COLONY_NATS_PASS"], env: names } }, { isolation });
      refusedChild(report, /environment variables its parent was not given: "SECRET_TOKEN", "COLONY_NATS_PASS"/);
    });

    it(`${isolation} parent given SECRET_TOKEN: its children get it by default, and no more than that`, T, async () => {
      const { report } = await probe(
        {
          child: {
            isolation: "process",
            env: names,
            child: { isolation: "thread", env: names, child: { isolation: "process", spawnEnv: ["SECRET_TOKEN", "PATH"] } },
          },
        },
        { isolation, env: ["SECRET_TOKEN"] },
      );
      const child = spawnedChild(report);
      assert.deepEqual(child.env, { PATH: null, SECRET_TOKEN: "s3cret", COLONY_NATS_PASS: null });
      const grandchild = spawnedChild(child);
      assert.deepEqual(grandchild.env, { PATH: null, SECRET_TOKEN: "s3cret", COLONY_NATS_PASS: null });
      refusedChild(grandchild, /environment variables its parent was not given: "PATH"/);
    });
  }

  it("env given twice, as the option and in permissions, is a ConfigError", T, async () => {
    await assert.rejects(env.colony.spawn(ref("echo"), null, { isolation: "process", env: ["PATH"], permissions: { env: ["PATH"] } }), { code: "CONFIG" });
  });
});
