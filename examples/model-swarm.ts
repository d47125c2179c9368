/**
 * A swarm on a task board: a worker per capability — a planner and a reviewer on a model, and a
 * coder that is a command-line program. The planner's steps become coding tasks that run two at
 * a time, and the review waits for all of them. COLONY_EXAMPLE_MODEL names the model; without
 * it, scripted stand-ins answer, offline.
 *
 *   node examples/model-swarm.ts
 */
import { z } from "zod";
import { createColony, defineCliAgent, defineModelAgent, memoryBackend } from "../src/index.ts";
import { scriptedModel, type ScriptedReply } from "../src/testing/index.ts";

const model = (offline: ScriptedReply) => process.env.COLONY_EXAMPLE_MODEL ?? scriptedModel([offline]);

const planner = defineModelAgent({
  name: "planner",
  model: model({ object: { steps: ["parse a --verbose flag", "log each request when it is set"] } }),
  instructions: 'Break the feature into 2 or 3 small coding steps. Answer as JSON: {"steps": ["…"]}.',
  output: z.object({ steps: z.array(z.string()).min(1).max(3) }),
});

// The task's input on its stdin, its stdout the result. Node stands in here for a coding agent's
// CLI (`claude -p`, `codex exec`, …) or a script of your own.
const coder = defineCliAgent({
  name: "coder",
  command: process.execPath,
  args: ["-e", 'let step = ""; process.stdin.on("data", (d) => (step += d)).on("end", () => console.log(`patched: ${step}`))'],
  timeoutMs: 600_000,
});

const reviewer = defineModelAgent({
  name: "reviewer",
  model: model({ object: { approved: true, comment: "Both steps are done." } }),
  instructions: 'Review the coders\' results against the plan. Answer as JSON: {"approved": true or false, "comment": "…"}.',
  output: z.object({ approved: z.boolean(), comment: z.string() }),
});

const colony = createColony({ backend: memoryBackend() });
await colony.worker({ agents: { planner } });
await colony.worker({ agents: { coder }, concurrency: 2 });
await colony.worker({ agents: { reviewer } });
const tasks = await colony.tasks();

const plan = await tasks.wait((await tasks.submit({ kind: "planner", input: "Add a --verbose flag to the CLI" })).id);
const { steps } = plan.result as { steps: string[] };
console.log(`plan: ${steps.join("; ")}`);
const code = steps.map((step, i) => ({ id: `code-${i + 1}`, kind: "coder", input: step }));
await tasks.submitAll([...code, { id: "review", kind: "reviewer", input: { plan: steps }, dependsOn: code.map((c) => c.id) }]);
for (const id of [...code.map((c) => c.id), "review"]) console.log(`${id}: ${JSON.stringify((await tasks.wait(id)).result)}`);
await colony.close();
