import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Argument, type Command } from "commander";
import essay from "../../demo/essay.ts";
import survey from "../../demo/survey.ts";
import choose, { QUESTION } from "../../demo/workflow.ts";
import type { RunResult } from "../../core/records.ts";
import type { RunDefinition } from "../../core/run-types.ts";
import { describeCall } from "../../models/call-record.ts";
import { priceOf } from "../../models/prices.ts";
import { checkModelName } from "../../models/registry.ts";
import type { Colony } from "../../runtime/colony.ts";
import type { WorkerEvent } from "../../runtime/tasks/worker.ts";
import type { WorkflowDefinition } from "../../runtime/tasks/workflow.ts";
import { DEFAULT_PORT, type ColonyServer } from "../../server/types.ts";
import { UsageError, natsCredentialsEnv, printJson, selfCommand, storeArgs, wholeNumber, withColony, type OutputFlags, type StoreFlags, storeOptions } from "../common.ts";
import { linesOf, runSummary, say, stepLines, warn, workerEventLine } from "../format.ts";
import { onStop } from "../signals.ts";
import { swarmDemo } from "./demo-swarm.ts";
import { clearBoard, runAndReport } from "./run.ts";
import { runWorkflowAndReport } from "./workflow.ts";

interface DemoFlags extends StoreFlags, OutputFlags {
  model?: string;
  serve?: boolean;
  port: number;
  rounds?: number;
}

type Which = "runs" | "workflow" | "all" | "swarm";

// Resolved beside this file, so that the installed package (.js) and a checkout (.ts) both work.
const EXT = import.meta.url.endsWith(".ts") ? "ts" : "js";
const CLI = fileURLToPath(new URL(`../main.${EXT}`, import.meta.url));
const AGENTS = fileURLToPath(new URL(`../../demo/workflow-agents.${EXT}`, import.meta.url));
const MODEL_AGENTS = fileURLToPath(new URL(`../../demo/model-workflow-agents.${EXT}`, import.meta.url));
const WORKERS = 2;
const ONLINE_TIMEOUT_MS = 30_000;

/** What the demo runs: deterministic agents, or (with --model) the same demos on a model. */
interface Demos {
  runs: [title: string, definition: RunDefinition][];
  workflow: {
    title: string;
    definition: WorkflowDefinition;
    input: unknown;
    /** The module the worker processes load, and what their environment adds. */
    agents: string;
    env: Record<string, string>;
    /** What ran at the same time, for the closing line. */
    atOnce: string;
  };
  /** Whether the runs' agents show their log lines (their model calls) as they happen. */
  live: boolean;
  /** Says what the tokens and costs are, after the runs. */
  footnote: string;
}

const OFFLINE: Demos = {
  runs: [
    ["researcher → critic → writer, until the critic approves", essay],
    ["three researchers at once, then a synthesizer", survey],
  ],
  workflow: {
    title: "a question → three research subtasks and a comparison",
    definition: choose as WorkflowDefinition,
    input: QUESTION,
    agents: AGENTS,
    env: {},
    atOnce: "the three research tasks ran at once",
  },
  live: false,
  footnote: "Deterministic agents, no model: tokens are characters/4 of what each agent wrote.",
};

/** The demos on `model`, loaded only then, so that the offline demo loads no model provider. */
async function onModel(model: string, flags: DemoFlags): Promise<Demos> {
  const [{ modelEssay }, { modelWorkflow, MODEL_QUESTION }] = await Promise.all([import("../../demo/model-essay.ts"), import("../../demo/model-workflow.ts")]);
  const show = (agent: string, line: string) => !flags.json && say(`  ${agent} · ${line}`);
  return {
    runs: [[`researcher → critic → writer on ${model}, until the critic approves`, modelEssay(model, show)]],
    workflow: {
      title: `a question → ${model} plans it → a research subtask per candidate on the workers, and a comparison`,
      definition: modelWorkflow(model, (agent, call) => show(agent, describeCall(call))) as WorkflowDefinition,
      input: MODEL_QUESTION,
      agents: MODEL_AGENTS,
      env: { COLONY_DEMO_MODEL: model },
      atOnce: "the research tasks ran at once, each a model agent on a worker",
    },
    live: true,
    footnote: `Agents on ${model}: tokens are what the provider reported for each call${priceOf(model) ? ", costs from its price per million tokens" : "; its price is unknown, so each call says \"cost unknown\" and the totals count it as $0"}.`,
  };
}

/**
 * Runs a definition from its seed like `colony run --fresh`, for agents whose log lines (their
 * model calls) were shown as they happened: each step's lines leave them out, the run keeps them.
 */
async function runShown(colony: Colony, definition: RunDefinition, flags: DemoFlags): Promise<RunResult> {
  await clearBoard(await colony.board(definition.board), "colony-cli");
  const controller = new AbortController();
  const interrupt = () => controller.abort();
  process.once("SIGINT", interrupt);
  try {
    const result = await colony.run({ ...definition, signal: controller.signal }, {
      onStep: (step) => !flags.json && say(...stepLines({ ...step, fired: step.fired.map(({ logs: _shown, ...fired }) => fired) })),
    });
    if (!flags.json) say(runSummary((await colony.runs.get(result.runId)).run), `run ${result.runId} on board "${result.board}" (${colony.backend.kind}: ${colony.backend.location})`);
    return result;
  } finally {
    process.off("SIGINT", interrupt);
  }
}

async function runs(colony: Colony, flags: DemoFlags, demos: Demos): Promise<RunResult[]> {
  const results: RunResult[] = [];
  for (const [title, definition] of demos.runs) {
    if (!flags.json) say("", `== ${definition.name}: ${title} (board "${definition.board}")`);
    results.push(demos.live ? await runShown(colony, definition, flags) : await runAndReport(colony, definition, { ...flags, fresh: true }));
  }
  if (!flags.json) {
    say("", demos.footnote);
    if (!flags.memory) {
      say(
        `Saved to ${colony.backend.location}. Look around:`,
        `  ${selfCommand("board essay", flags)}              the final board`,
        `  ${selfCommand("board essay --history", flags)}   every write, in order`,
        `  ${selfCommand("runs", flags)}                    past runs`,
      );
    }
  }
  return results;
}

/** A worker's event as the demo shows it: without its time, and nothing for usage, which each model call's line tells. */
function workerLine(line: string): string | undefined {
  let event: WorkerEvent;
  try {
    event = JSON.parse(line) as WorkerEvent;
  } catch {
    return line;
  }
  if (event.type === "progress" && event.event.type === "usage") return undefined;
  return workerEventLine(event).slice(13);
}

/** Starts the demo's worker processes on the same file and waits until the registry shows them online. */
async function startWorkers(colony: Colony, flags: DemoFlags, demos: Demos): Promise<ChildProcess[]> {
  const { agents, env: demoEnv, definition } = demos.workflow;
  const workers: ChildProcess[] = [];
  for (let i = 1; i <= WORKERS; i++) {
    const args = [CLI, "worker", ...storeArgs(flags, colony.backend.location), "--agents", agents, "--concurrency", "2", "--id", `demo-${process.pid}-${i}`, "--lease-ms", "5000", "--tasks", definition.tasks!, "--json"];
    const env = { ...process.env, ...natsCredentialsEnv(flags), ...demoEnv };
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"], env });
    if (!flags.json) {
      createInterface({ input: child.stdout! }).on("line", (line) => {
        const shown = workerLine(line);
        if (shown !== undefined) say(`  [worker ${i}] ${shown}`);
      });
    } else child.stdout!.resume();
    workers.push(child);
  }
  const tasks = await colony.tasks(definition.tasks);
  const deadline = Date.now() + ONLINE_TIMEOUT_MS;
  for (;;) {
    const online = (await tasks.workers()).filter((w) => w.status === "online" && w.id.startsWith(`demo-${process.pid}-`));
    if (online.length === WORKERS) return workers;
    if (workers.some((w) => w.exitCode !== null)) throw new Error("a demo worker exited before it came online; see its output above");
    if (Date.now() > deadline) throw new Error(`the demo workers did not come online within ${ONLINE_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function stopWorkers(workers: ChildProcess[]): Promise<void> {
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.exitCode !== null || w.signalCode !== null) return resolve();
          w.once("exit", () => resolve());
          w.kill("SIGTERM");
        }),
    ),
  );
}

async function workflowDemo(colony: Colony, flags: DemoFlags, demos: Demos) {
  const { title, definition, input, atOnce } = demos.workflow;
  if (flags.memory) throw new UsageError("demo workflow runs worker processes that share the store: use the SQLite default or --db, not --memory");
  if (!flags.json) say("", `== ${definition.name}: ${title}, on ${WORKERS} worker processes`);
  const workers = await startWorkers(colony, flags, demos);
  try {
    const outcome = await runWorkflowAndReport(colony, definition, input, flags);
    if (flags.json) return outcome;
    say("", ...linesOf(String(outcome.result)), "");
    say(...outcome.tasks.map((task) => `  ${task.id.padEnd(40)} ${task.status.padEnd(9)} by ${task.owner ?? "-"}`));
    say("", `${outcome.tasks.length} subtasks in ${outcome.ms} ms; ${atOnce}. \`${selfCommand(`tasks --tasks ${definition.tasks}`, flags)}\` shows the board.`);
    return outcome;
  } finally {
    await stopWorkers(workers);
  }
}

/** Where the dashboard shows what `which` does. */
function dashboardPage(url: string, which: Which): string {
  if (which === "swarm") return `${url}/#/tasks?board=swarm`;
  if (which === "workflow") return `${url}/#/tasks?board=demo`;
  return `${url}/#/runs`;
}

/** Serves the demo's store from the start, so that the dashboard shows the demo as it runs. */
async function startServing(colony: Colony, flags: DemoFlags, which: Which): Promise<ColonyServer> {
  const server = await colony.serve({ port: flags.port });
  if (flags.json) console.log(JSON.stringify({ url: server.url }));
  else say(`dashboard ${dashboardPage(server.url, which)}   (API ${server.url}/api; Ctrl-C stops)`);
  return server;
}

/** The demo's results; the swarm runs until it settles or `stopped` resolves. */
async function runDemo(colony: Colony, which: Which, flags: DemoFlags, demos: Demos, stopped: Promise<NodeJS.Signals>): Promise<unknown> {
  if (which === "swarm") return swarmDemo(colony, { ...flags, rounds: flags.rounds ?? (flags.serve ? 40 : 4) }, stopped);
  const out: Record<string, unknown> = {};
  if (which !== "workflow") out.runs = await runs(colony, flags, demos);
  if (which !== "runs") out.workflow = await workflowDemo(colony, flags, demos);
  return which === "runs" ? out.runs : which === "workflow" ? out.workflow : out;
}

export function registerDemo(program: Command): void {
  storeOptions(
    program
      .command("demo")
      .description(
        "run the bundled examples: researcher → critic → writer; three researchers and a synthesizer; a workflow on two worker processes; or (swarm) a live swarm of a planner, researcher workers and a reviewer",
      )
      .addArgument(new Argument("[which]", "which demo; all is runs and workflow").choices(["runs", "workflow", "all", "swarm"]).default("all")),
  )
    .option("--model <name>", "run researcher → critic → writer and the workflow with agents on this model (openai:gpt-4.1-mini, anthropic:…, ollama:…, local:…); default: deterministic agents, no model")
    .option("--serve", "serve the dashboard and the API over the demo's store while it runs, then until Ctrl-C")
    .option("--port <n>", "with --serve: the port; 0 picks a free one", wholeNumber(0), DEFAULT_PORT)
    .option("--rounds <n>", "swarm: how many rounds the planner plans (default 4, or 40 with --serve)", wholeNumber(1))
    .option("--json", "print the results as JSON (with --serve, first { url } as one line)")
    .action(async (which: Which, _options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<DemoFlags>();
      if (which === "swarm" && flags.model !== undefined) throw new UsageError("demo swarm runs deterministic agents only: leave out --model");
      if (flags.rounds !== undefined && which !== "swarm") throw new UsageError("--rounds is for demo swarm");
      // Before anything runs: a bad name, an unknown provider or a missing key is a ConfigError naming what to set.
      if (flags.model !== undefined) checkModelName(flags.model);
      const demos = flags.model === undefined ? OFFLINE : await onModel(flags.model, flags);
      await withColony(flags, async (colony) => {
        // Serving or swarming runs until a signal: take it, so that everything is closed cleanly.
        const stop = flags.serve || which === "swarm" ? onStop() : undefined;
        try {
          const server = flags.serve ? await startServing(colony, flags, which) : undefined;
          const result = await runDemo(colony, which, flags, demos, stop?.stopped ?? new Promise<never>(() => {}));
          if (flags.json) printJson(result);
          if (server && stop) {
            if (stop.received === undefined && !flags.json) say("", `Still serving at ${server.url}/ for a look around; Ctrl-C stops.`);
            warn(`stopping on ${await stop.stopped}`);
            await server.close();
          }
        } finally {
          stop?.off();
        }
      });
    });
}
