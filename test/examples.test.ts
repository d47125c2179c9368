/**
 * The examples in examples/ run as their headers say, and the README shows them as they are.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFile, spawnSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startFakeOpenAIServer, type FakeReply, type FakeRequest } from "../src/testing/index.ts";
import { runCliSync } from "./fixtures/cli.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "colony-examples-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** An example as the README shows it: imported from the package, not from this checkout. */
function asPublished(file: string): string {
  return readFileSync(join(ROOT, file), "utf8").replace('from "../src/index.ts"', 'from "colony"').replace('from "../src/testing/index.ts"', 'from "colony/testing"');
}

/** This process's environment, less the model an example would otherwise use: examples run offline. */
function offline(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.COLONY_EXAMPLE_MODEL;
  return env;
}

/** The README's code block that the comment `<!-- FILE: … -->` puts before it. */
function readmeBlock(file: string): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const at = readme.indexOf(`<!-- ${file}:`);
  assert.ok(at >= 0, `README.md shows ${file}`);
  const open = readme.indexOf("```ts\n", at);
  return readme.slice(open + "```ts\n".length, readme.indexOf("```\n", open + 1));
}

describe("the README's examples", () => {
  const readme = () => readFileSync(join(ROOT, "README.md"), "utf8");
  const shown = () => [...readme().matchAll(/<!-- (examples\/[\w./-]+\.ts):/g)].map((m) => m[1]!);

  test("every TypeScript block of the README is an example file, word for word but its import", () => {
    const files = shown();
    assert.deepEqual(files, [
      "examples/review.ts",
      "examples/board.ts",
      "examples/essay-run.ts",
      "examples/summarize-agents.ts",
      "examples/spawn.ts",
      "examples/tasks.ts",
      "examples/workflow.ts",
      "examples/model-research.ts",
      "examples/model-swarm.ts",
      "examples/traces.ts",
    ]);
    assert.equal(readme().split("```ts\n").length - 1, files.length, "a ts block without its file");
    for (const file of files) assert.equal(readmeBlock(file), asPublished(file), file);
  });

  test("each one that prints runs and prints what the README shows", () => {
    const text = readme();
    for (const [, file, output] of text.matchAll(/```text\n\$ node (examples\/[\w.-]+\.ts)\n([^`]*)```/g)) {
      const run = spawnSync(process.execPath, [file!], { cwd: ROOT, encoding: "utf8", env: offline() });
      assert.equal(run.status, 0, `${file}: ${run.stderr}`);
      assert.equal(run.stdout, output, file);
    }
    assert.equal([...text.matchAll(/\$ node examples\//g)].length, 7);
  });

  test("the run in essay-run.ts reaches its goal", () => {
    const run = runCliSync(["run", "examples/essay-run.ts", "--memory", "--json"], { cwd: ROOT });
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as { stopReason: string }).stopReason, "goal");
  });
});

describe("the model examples on the model COLONY_EXAMPLE_MODEL names", () => {
  type Message = { role: string; content?: unknown };
  const text = (message: Message | undefined) => (typeof message?.content === "string" ? message.content : JSON.stringify(message?.content ?? ""));

  /** Each agent of the two examples, told apart by its instructions, answered as a model would. */
  function answer(request: FakeRequest): FakeReply {
    const messages = request.messages as Message[];
    const system = text(messages.find((m) => m.role === "system"));
    const asked = text(messages.findLast((m) => m.role === "user"));
    if (system.startsWith("Split the question")) return { text: JSON.stringify({ topics: ["trails", "nests"] }) };
    if (system.startsWith("Answer in one sentence")) return { text: `found on ${/Topic: (\w+)\./.exec(asked)![1]}` };
    if (system.startsWith("Answer the question")) return { text: `from ${["trails", "nests"].filter((t) => asked.includes(`found on ${t}`)).join(" and ")}` };
    if (system.startsWith("Break the feature")) return { text: JSON.stringify({ steps: ["add the flag", "use it"] }) };
    if (system.startsWith("Review the coders")) return { text: JSON.stringify({ approved: asked.includes("patched: use it"), comment: "read both" }) };
    return { status: 400, body: { error: { message: `unknown agent: ${system.slice(0, 60)}`, type: "invalid_request_error" } } };
  }

  test("model-research.ts and model-swarm.ts run their agents on it, over HTTP", { timeout: 60_000 }, async () => {
    const server = await startFakeOpenAIServer({ fallback: answer });
    try {
      const env = { ...offline(), COLONY_EXAMPLE_MODEL: "local:fake", COLONY_MODEL_BASE_URL: server.url };
      const run = (file: string) => promisify(execFile)(process.execPath, [file], { cwd: ROOT, env, encoding: "utf8" });
      const research = await run("examples/model-research.ts");
      assert.equal(research.stdout, "plan: trails, nests\ntopic-1: found on trails\ntopic-2: found on nests\nanswer: from trails and nests\n");
      const swarm = await run("examples/model-swarm.ts");
      assert.equal(swarm.stdout, 'plan: add the flag; use it\ncode-1: "patched: add the flag"\ncode-2: "patched: use it"\nreview: {"approved":true,"comment":"read both"}\n');
      assert.equal(server.requests.length, 4 + 2);
    } finally {
      await server.close();
    }
  });
});

describe("examples/review.ts: researcher → critic → writer on tags with values", () => {
  test("is the README's first example, word for word but its import", () => {
    assert.equal(readmeBlock("examples/review.ts"), asPublished("examples/review.ts"));
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    assert.ok(readme.indexOf("examples/review.ts:") < readme.indexOf("```ts"), "it is the first code in the README");
  });

  test("runs to its goal: the confident findings approved, the other rejected, the report from the approved", () => {
    const db = join(dir, "review.db");
    const run = runCliSync(["run", "examples/review.ts", "--fresh", "--db", db, "--json"], { cwd: ROOT });
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { stopReason: string; steps: { fired: { agent: string }[] }[] };
    assert.deepEqual([result.stopReason, result.steps.map((s) => s.fired.map((f) => f.agent))], ["goal", [["researcher"], ["critic"], ["writer"]]]);

    const board = runCliSync(["board", "review", "--db", db, "--json"], { cwd: ROOT });
    const { entries } = JSON.parse(board.stdout) as { entries: { key: string; author: string; tags: Record<string, unknown>; value: string }[] };
    assert.deepEqual(
      entries.map((e) => [e.key, e.author, e.tags]),
      [
        ["findings/evaporation", "critic", { confidence: 0.85, status: "approved" }],
        ["findings/pheromone", "critic", { confidence: 0.92, status: "approved" }],
        ["findings/telepathy", "critic", { confidence: 0.2, status: "rejected" }],
        ["report", "writer", { status: "final" }],
      ],
    );
    assert.equal(entries.at(-1)!.value, "Ants find short paths because pheromone evaporates, so long trails fade, and foragers mark the way back to food with pheromone.");

    const human = runCliSync(["board", "review", "--db", db], { cwd: ROOT });
    assert.match(human.stdout, /^\[findings\/pheromone\] v2 by critic tags=\{confidence=0\.92 status=approved\} {2}"foragers mark/m);
    // What the README pastes is what the board shows.
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const shown = readme.slice(readme.indexOf("$ npx colony board review\n"), readme.indexOf("```", readme.indexOf("$ npx colony board review\n")));
    const pasted = shown.split("\n").filter((l) => l.startsWith("["));
    assert.deepEqual(pasted, human.stdout.split("\n").filter((l) => l.startsWith("[")));
  });
});

describe("colony init", () => {
  test("writes an agents file, a run and a workflow that work as they are, and a package.json; never over a file", () => {
    const project = join(dir, "fresh-project");
    const made = runCliSync(["init", project, "--json"], { cwd: dir });
    assert.equal(made.code, 0, made.stderr);
    const result = JSON.parse(made.stdout) as { created: string[]; next: string[] };
    assert.deepEqual(result.created, ["agents.ts", "run.ts", "workflow.ts", "package.json"]);
    assert.deepEqual(result.next.slice(0, 2), [`cd ${project}`, "npm install"]);
    const pkg = JSON.parse(readFileSync(join(project, "package.json"), "utf8")) as { type: string; dependencies: Record<string, string> };
    assert.equal(pkg.type, "module");
    assert.deepEqual(Object.keys(pkg.dependencies), ["colony", "zod"]);

    // As npm install would leave it: colony's own sources stand in for the package, its node_modules for zod.
    symlinkSync(join(ROOT, "node_modules"), join(project, "node_modules"));
    for (const file of ["agents.ts", "run.ts", "workflow.ts"]) {
      const text = readFileSync(join(project, file), "utf8");
      assert.ok(!text.includes("src/index.ts"), `${file} imports colony, not a path of this repo`);
      writeFileSync(join(project, file), text.replaceAll('"colony"', JSON.stringify(join(ROOT, "src/index.ts"))));
    }
    const db = join(project, "colony.db");
    const run = runCliSync(["run", "run.ts", "--db", db, "--json"], { cwd: project });
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as { stopReason: string }).stopReason, "goal");
    const flow = runCliSync(["workflow", "workflow.ts", "--db", db, "--input", '{"topics":["trails","nests"]}'], { cwd: project });
    assert.equal(flow.code, 0, flow.stderr);
    assert.match(flow.stdout, /^trails: ants lay pheromone/m);
    assert.match(flow.stdout, /^nests: scouts choose a new nest/m);

    const again = runCliSync(["init", project], { cwd: dir });
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already has agents\.ts, run\.ts, workflow\.ts; init writes nothing over a file/);
  });
});
