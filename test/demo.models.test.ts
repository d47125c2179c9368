/**
 * `colony demo --model`: the demos on model agents, driven over real HTTP by a fake
 * OpenAI-compatible server that answers each agent from what it is asked; and a model that cannot
 * run here refused before anything runs.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startFakeOpenAIServer, type FakeOpenAIServer, type FakeReply, type FakeRequest } from "../src/testing/index.ts";
import { runCli } from "./fixtures/cli.ts";

const FACTS = [
  "foragers lay pheromone on the way back from food",
  "shorter paths are walked more often, so their pheromone builds up faster",
  "pheromone evaporates, so longer paths fade",
];

const FINDINGS: Record<string, { speed: number; safety: number; ecosystem: number; note: string }> = {
  go: { speed: 8, safety: 7, ecosystem: 8, note: "one static binary and fast builds" },
  rust: { speed: 10, safety: 10, ecosystem: 7, note: "fastest and safest, with longer builds" },
  typescript: { speed: 6, safety: 6, ecosystem: 10, note: "npm's ecosystem, with a runtime to ship" },
};

type Message = { role: string; content?: unknown };

const contentOf = (message: Message | undefined): string => (typeof message?.content === "string" ? message.content : JSON.stringify(message?.content ?? ""));

/** What a sensible model would answer, from the agent's instructions and what it was asked. */
function answer(request: FakeRequest): FakeReply {
  const messages = request.messages as Message[];
  const system = contentOf(messages.find((m) => m.role === "system"));
  const asked = contentOf(messages.findLast((m) => m.role === "user"));
  if (system.includes("You are the researcher")) {
    if (messages.some((m) => m.role === "tool")) return { text: `I wrote ${FACTS.length} facts to notes.` };
    return { toolCalls: [{ name: "board_write", args: { key: "notes", value: FACTS } }] };
  }
  if (system.includes("You are the writer")) {
    const used = asked.includes("Revise the draft") ? FACTS : FACTS.slice(0, 1);
    return { text: `Ants find short paths without a map: ${used.join("; ")}.` };
  }
  if (system.includes("You are the critic")) {
    const version = Number(/the draft \(version (\d+)\)/.exec(asked)![1]);
    // The first draft misses two facts; the revision has them all.
    const draft = /^- draft \(version \d+.*$/m.exec(asked)![0];
    const missing = FACTS.filter((fact) => !draft.includes(fact));
    return { text: JSON.stringify({ draftVersion: version, approved: missing.length === 0, missing }) };
  }
  if (system.includes("You plan research")) {
    return { text: JSON.stringify({ candidates: Object.keys(FINDINGS), weights: { speed: 1, safety: 1.5, ecosystem: 1.2 } }) };
  }
  if (system.includes("You research one candidate")) {
    const candidate = /"candidate":\s*"([\w-]+)"/.exec(asked)![1]!;
    return { text: JSON.stringify(FINDINGS[candidate]) };
  }
  return { status: 400, body: { error: { message: `the fake server does not know this agent: ${system.slice(0, 80)}`, type: "invalid_request_error" } } };
}

let dir: string;
let server: FakeOpenAIServer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "colony-demo-models-"));
  server = await startFakeOpenAIServer({ fallback: answer });
});
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** This process's environment without any provider's key or address, plus `extra`. */
function envWith(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
  for (const name of ["OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "COLONY_MODEL_BASE_URL", "COLONY_MODEL_API_KEY", "COLONY_DEMO_MODEL"]) delete env[name];
  return { ...env, ...extra };
}

describe("colony demo --model", () => {
  test("runs researcher → critic → writer and the workflow on model agents, each model call shown as it happens", { timeout: 120_000 }, async () => {
    const db = join(dir, "demo.db");
    const result = await runCli(["demo", "--model", "local:fake", "--db", db], { cwd: dir, env: envWith({ COLONY_MODEL_BASE_URL: server.url }) });
    assert.equal(result.code, 0, result.stderr);
    const out = result.stdout;

    // The essay: the researcher's tool call and its answer, before the step that records them.
    const call = String.raw`local:fake turn \d+: \d+ in / \d+ out, \$0\.00000, \d+ ms`;
    assert.match(out, new RegExp(String.raw`^  researcher · local:fake turn 1: \d+ in / \d+ out, \$0\.00000, \d+ ms → board_write\(\{"key":"notes","value":\["foragers`, "m"));
    assert.match(out, new RegExp(`^  researcher · ${call}\nstep 1  researcher: wrote notes \\(`, "m"));
    assert.deepEqual(
      [...out.matchAll(/^step (\d+) {2}(\w+): wrote (\w+)/gm)].map((m) => `${m[2]} ${m[3]}`),
      ["researcher notes", "writer draft", "critic critique", "writer draft", "critic critique"],
    );
    assert.match(out, /^stopped: goal · 5 steps · \d+ tokens · \$0\.00 · /m);
    assert.match(out, /^Agents on local:fake: tokens are what the provider reported for each call, costs from its price per million tokens\.$/m);

    // The workflow: the decomposer here, the research on the workers, the answer from the plan's weights.
    assert.match(out, new RegExp(`^  decomposer · ${call}$`, "m"));
    for (const candidate of Object.keys(FINDINGS)) {
      assert.match(out, new RegExp(String.raw`^  \[worker [12]\] choose-language-\w+\.${candidate} ${call}$`, "m"), candidate);
    }
    assert.doesNotMatch(out, /used \d+ tokens/, "usage is told by the model call's line");
    assert.match(out, /^Answer: rust\.\n {2}1\. rust \(33\.4\): fastest and safest, with longer builds$/m);
    assert.match(out, /^4 subtasks in \d+ ms; the research tasks ran at once, each a model agent on a worker\./m);

    // Every agent asked the model by its name, over HTTP.
    const systems = server.requests.map((r) => contentOf((r.messages as Message[])[0]));
    for (const agent of ["researcher", "writer", "critic"]) assert.ok(systems.some((s) => s.includes(`You are the ${agent}`)), agent);
    assert.equal(systems.filter((s) => s.includes("You research one candidate")).length, 3);
    assert.ok(server.requests.every((r) => r.model === "fake"));

    // The run keeps the call lines the demo showed live, on its steps.
    const runs = await runCli(["runs", "--db", db, "--json"], { cwd: dir });
    const [essay] = JSON.parse(runs.stdout) as { runId: string }[];
    const shown = await runCli(["runs", essay!.runId, "--db", db, "--json"], { cwd: dir });
    const { steps } = JSON.parse(shown.stdout) as { steps: { fired: { agent: string; logs?: string[] }[] }[] };
    assert.match(steps[0]!.fired[0]!.logs![0]!, /^local:fake turn 1: .* → board_write\(/);
  });

  test("a plan that its schema refuses fails the workflow before any subtask is submitted", { timeout: 60_000 }, async () => {
    const db = join(dir, "bad-plan.db");
    const planner = await startFakeOpenAIServer({ fallback: { text: JSON.stringify({ candidates: ["Go!"], weights: { speed: 1, safety: 1, ecosystem: 1 } }) } });
    try {
      const result = await runCli(["demo", "workflow", "--model", "local:fake", "--db", db], { cwd: dir, env: envWith({ COLONY_MODEL_BASE_URL: planner.url }) });
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /^colony: sub-agent choose-language\.decompose \([^)]*\) failed: sub-agent decomposer \([^)]*\) failed: model local:fake failed: the answer does not fit the output schema: candidates/m);
      assert.equal(planner.requests.length, 1);
      const tasks = await runCli(["tasks", "--tasks", "demo", "--db", db, "--json"], { cwd: dir });
      assert.deepEqual(JSON.parse(tasks.stdout), []);
    } finally {
      await planner.close();
    }
  });

  test("a model whose key is not set is one line naming the variable, exit 2, before anything runs", async () => {
    const db = join(dir, "refused.db");
    const result = await runCli(["demo", "--model", "openai:gpt-4.1-mini", "--db", db], { cwd: dir, env: envWith({}) });
    assert.deepEqual(
      [result.code, result.stdout, result.stderr],
      [2, "", 'colony: model "openai:gpt-4.1-mini": set OPENAI_API_KEY to your OpenAI API key\n'],
    );
    assert.equal(existsSync(db), false, "no store was opened");
  });

  test("an unknown provider is refused the same way, naming the providers there are", async () => {
    const result = await runCli(["demo", "--model", "acme:big", "--db", join(dir, "refused.db")], { cwd: dir, env: envWith({}) });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^colony: model "acme:big": unknown provider "acme" \(known: openai, anthropic, ollama, local/);
  });
});
