/**
 * YAML manifests: a valid one builds model, CLI and code agents, a run, a worker's offer and a
 * workflow; every mistake is one `ManifestError` naming file, line and path; code cannot come in
 * (a `!!js/function` tag, a trigger written as a string); `colony run manifest.yaml` reaches its
 * goal through the real CLI; and a worker offers a manifest's model agent in `process` isolation.
 * The fixtures are in test/fixtures/manifests/; their model agents use the `script:` provider.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { loadAgents } from "../src/cli/load.ts";
import { ConfigError, createColony, memoryBackend, sqliteBackend, type AgentRef, type BoardView, type Entry } from "../src/index.ts";
import type { ModelAgent } from "../src/models/agent.ts";
import { loadManifest, manifestAgentRef, ManifestError } from "../src/models/manifest.ts";
import { loadAgent } from "../src/runtime/agents/host.ts";
import { resolveAgentRef } from "../src/runtime/agents/module-ref.ts";
import "./fixtures/model-agents.ts";
import { tempDir, waitFor } from "./fixtures/helpers.ts";
import { critic } from "./fixtures/manifests/skills.ts";

const T = { timeout: 30_000 };
const DIR = fileURLToPath(new URL("./fixtures/manifests/", import.meta.url));
const BIN = fileURLToPath(new URL("../bin/colony.js", import.meta.url));

/** A fixture as a caller in this directory names it: messages quote the path they were given. */
const fixture = (name: string): string => relative(process.cwd(), join(DIR, name));

/** The line (1-based) of a fixture's first line that holds `text`. */
function lineOf(name: string, text: string): number {
  const index = readFileSync(join(DIR, name), "utf8").split("\n").findIndex((line) => line.includes(text));
  assert.ok(index >= 0, `${name} holds ${text}`);
  return index + 1;
}

/** The error a manifest's load fails with, checked to be a `ManifestError` (a `ConfigError`). */
async function failure(name: string): Promise<ManifestError> {
  const error = await loadManifest(fixture(name)).then(
    () => assert.fail(`${name} loaded`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof ManifestError, String(error));
  assert.ok(error instanceof ConfigError);
  assert.equal(error.code, "MANIFEST");
  return error;
}

/** A board snapshot with these entries, for trying triggers and goals. */
function view(entries: Record<string, Record<string, unknown>>): BoardView {
  const all = Object.entries(entries).map(([key, tags]) => ({ key, tags }) as unknown as Entry);
  return {
    has: (key: string) => key in entries,
    readByTag: (name: string, predicate?: (value: unknown) => boolean) => all.filter((e) => name in e.tags && (!predicate || predicate(e.tags[name]))),
  } as unknown as BoardView;
}

describe("a manifest", () => {
  it("builds model, CLI and code agents, its run, its worker's kinds and its workflow", T, async () => {
    const manifest = await loadManifest(fixture("agents.yaml"));
    assert.equal(manifest.file, join(DIR, "agents.yaml"));
    assert.deepEqual(Object.keys(manifest.agents), ["writer", "planner", "echo", "critic"]);

    const writer = manifest.agents.writer as unknown as ModelAgent;
    assert.equal(writer.kind, "colony.model-agent");
    assert.equal(writer.options.model, "script:writer");
    assert.equal(writer.options.maxTurns, 4);
    assert.deepEqual(writer.options.prices, { "script:writer": { input: 1, output: 2 } });
    assert.deepEqual(
      writer.options.skills?.map((s) => (typeof s === "string" ? s : s.name)),
      ["board.read", "board.write", "publish"],
    );
    // The trigger is the data it was written as: topic there, final not yet.
    assert.equal(writer.trigger!(view({ topic: {} })), true);
    assert.equal(writer.trigger!(view({ topic: {}, final: {} })), false);
    assert.equal(writer.trigger!(view({})), false);

    const planner = manifest.agents.planner as unknown as ModelAgent<unknown>;
    assert.ok(planner.options.output instanceof z.ZodType, "the JSON Schema became a zod schema");
    assert.equal(planner.options.output.safeParse({ plan: "x" }).success, true);
    assert.equal(planner.options.output.safeParse({ plan: 1 }).success, false);
    assert.equal(planner.trigger!(view({ a: { status: "ready" } })), true);
    assert.equal(planner.trigger!(view({ a: { status: "draft" } })), false);

    assert.equal(manifest.agents.critic, critic, "a code agent is its module's export");
    assert.equal(typeof manifest.agents.echo!.run, "function");

    assert.equal(manifest.run?.board, "manifest-essay");
    assert.deepEqual(manifest.run.agents.map((a) => a.name), ["writer", "critic"]);
    assert.equal(manifest.run.goal!(view({ final: {} })), true);
    assert.equal(manifest.run.goal!(view({})), false);
    assert.deepEqual(manifest.kinds, { write: "writer", echo: "echo" });
    assert.equal(manifest.worker?.write, manifest.agents.writer);
    assert.equal(manifest.workflow?.name, "manifest-flow");
    assert.equal(manifest.workflow.decompose, manifest.agents.planner);
    assert.deepEqual(manifest.workflow.execute, { echo: manifest.agents.echo });
  });

  it("runs its CLI agent with paths taken from the manifest's directory", T, async () => {
    const manifest = await loadManifest(fixture("agents.yaml"));
    const colony = createColony({ backend: memoryBackend() });
    try {
      const handle = await colony.spawn(manifest.agents.echo!, "hello");
      assert.deepEqual(await handle.result, { mode: "stdin", text: "hello" });
    } finally {
      await colony.close();
    }
  });

  it("names file, line and path of an unknown provider", T, async () => {
    const error = await failure("bad-provider.yaml");
    const line = lineOf("bad-provider.yaml", "opena");
    assert.ok(error.message.startsWith(`${fixture("bad-provider.yaml")}:${line} agents[1].model: unknown provider "opena"`), error.message);
    assert.deepEqual([error.file, error.line, error.path], [fixture("bad-provider.yaml"), line, "agents[1].model"]);
  });

  it("names file, line and path of an unknown key, and the key it likely meant", T, async () => {
    const error = await failure("unknown-key.yaml");
    assert.match(error.message, new RegExp(`^${escape(fixture("unknown-key.yaml"))}:${lineOf("unknown-key.yaml", "temprature")} agents\\[0\\]\\.temprature: unknown key in a model agent; did you mean temperature\\?`));
  });

  it("names file, line and path of an unknown skill", T, async () => {
    const error = await failure("unknown-skill.yaml");
    assert.match(error.message, new RegExp(`^${escape(fixture("unknown-skill.yaml"))}:${lineOf("unknown-skill.yaml", "pubish")} agents\\[0\\]\\.skills\\[1\\]: no skill "pubish"`));
  });

  it("names file, line and path of a run naming an agent it does not have", T, async () => {
    const error = await failure("unknown-run-agent.yaml");
    assert.match(error.message, new RegExp(`^${escape(fixture("unknown-run-agent.yaml"))}:${lineOf("unknown-run-agent.yaml", "reviewer")} run\\.agents\\[1\\]: no agent named "reviewer" \\(the manifest has writer\\)`));
  });

  it("names file and line of a YAML syntax error", T, async () => {
    const error = await failure("syntax.yaml");
    assert.match(error.message, new RegExp(`^${escape(fixture("syntax.yaml"))}:${lineOf("syntax.yaml", "name: other")}: YAML syntax error: `));
  });

  it("refuses code: a !!js/function tag, and a trigger written as a string", T, async () => {
    const tagged = await failure("js-function.yaml");
    assert.match(tagged.message, new RegExp(`^${escape(fixture("js-function.yaml"))}:${lineOf("js-function.yaml", "!!js/function")} agents\\[0\\]\\.trigger: the YAML tag !!js/function is refused: a manifest is plain data`));
    const string = await failure("code-trigger.yaml");
    assert.match(string.message, new RegExp(`^${escape(fixture("code-trigger.yaml"))}:${lineOf("code-trigger.yaml", "view =>")} agents\\[0\\]\\.trigger: a trigger is data, not code: .*the string "view => true" is not evaluated`));
  });

  it("refers to its agents by a module URL that module references keep whole, for thread and process children", T, async () => {
    const ref = manifestAgentRef(fixture("agents.yaml"), "writer");
    assert.equal(typeof ref.module, "string");
    const url = new URL(ref.module as string);
    assert.equal(url.protocol, "file:");
    assert.match(url.pathname, /\/src\/models\/manifest-agent\.ts$/);
    assert.equal(url.searchParams.get("manifest"), join(DIR, "agents.yaml"));
    assert.equal(url.searchParams.get("agent"), "writer");
    assert.deepEqual(resolveAgentRef(ref), ref, "the query reaches the child unchanged");
    const agent = (await loadAgent(ref)) as unknown as ModelAgent;
    assert.equal(agent.kind, "colony.model-agent");
    assert.equal(agent.name, "writer");
  });
});

describe("a manifest in the CLI", () => {
  const colony = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: DIR, encoding: "utf8" });

  it("colony run manifest.yaml reaches its goal with a model agent as a loop agent", T, async () => {
    const dir = tempDir("colony-manifest-");
    try {
      const db = join(dir.path, "colony.db");
      const result = colony(["run", "run.yaml", "--db", db, "--json"]);
      assert.equal(result.status, 0, result.stderr);
      const outcome = JSON.parse(result.stdout) as { stopReason: string; board: string };
      assert.deepEqual([outcome.stopReason, outcome.board], ["goal", "manifest-run"]);
      const store = createColony({ backend: sqliteBackend({ path: db }) });
      try {
        const board = await store.board("manifest-run");
        assert.equal((await board.get("final"))?.value, "wrote it");
        assert.deepEqual((await board.get("notes/writer"))?.value, { ok: true });
      } finally {
        await store.close();
      }
    } finally {
      dir.dispose();
    }
  });

  it("says a manifest's mistake as file:line path: problem, as a usage error", T, () => {
    const result = colony(["run", "bad-provider.yaml", "--memory"]);
    assert.equal(result.status, 2);
    assert.match(result.stderr, new RegExp(`bad-provider\\.yaml:${lineOf("bad-provider.yaml", "opena")} agents\\[1\\]\\.model: unknown provider "opena"`));
    const noRun = colony(["run", "no-run.yaml", "--memory"]);
    assert.equal(noRun.status, 2);
    assert.match(noRun.stderr, /no-run\.yaml: has no run: section; add `run: /);
    const noWorkflow = colony(["workflow", "run.yaml", "--memory"]);
    assert.equal(noWorkflow.status, 2);
    assert.match(noWorkflow.stderr, /run\.yaml: has no workflow: section/);
  });
});

describe("a manifest's agents on a worker", () => {
  it("run a task with a manifest model agent in a process of its own", T, async () => {
    const agents = await loadAgents(fixture("agents.yaml"), "process");
    assert.deepEqual(Object.keys(agents), ["write", "echo"]);
    assert.equal((agents.write as AgentRef).module, manifestAgentRef(fixture("agents.yaml"), "writer").module);
    const colony = createColony({ backend: memoryBackend() });
    try {
      const worker = await colony.worker({ agents, capabilities: ["write"], isolation: "process" });
      const tasks = await colony.tasks();
      await tasks.submit({ id: "m1", kind: "write", input: "Note that it went well." });
      const done = await waitFor(async () => {
        const task = await tasks.get("m1");
        return task?.status === "succeeded" || task?.status === "failed" ? task : undefined;
      }, 20_000, "the task to end");
      assert.equal(done.status, "succeeded", done.error);
      assert.equal(done.result, "wrote it");
      const record = (await colony.agents.list()).find((r) => r.name === "write:m1");
      assert.equal(record?.isolation, "process");
      assert.notEqual(record.pid, process.pid);
      // 80+10 and 100+20 tokens, at the manifest's prices of $1 and $2 per million.
      assert.equal(record.usage.tokens, 210);
      assert.ok(Math.abs(record.usage.costUsd - (180 * 1 + 30 * 2) / 1e6) < 1e-12, String(record.usage.costUsd));
      await worker.stop();
    } finally {
      await colony.close();
    }
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
