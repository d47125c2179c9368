import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Argument, type Command } from "commander";
import essay from "../../demo/essay.ts";
import survey from "../../demo/survey.ts";
import choose, { QUESTION } from "../../demo/workflow.ts";
import type { RunResult } from "../../core/records.ts";
import type { Colony } from "../../runtime/colony.ts";
import { UsageError, natsCredentialsEnv, printJson, selfCommand, storeArgs, withColony, type OutputFlags, type StoreFlags, storeOptions } from "../common.ts";
import { linesOf, say } from "../format.ts";
import { runAndReport } from "./run.ts";
import { runWorkflowAndReport } from "./workflow.ts";

type DemoFlags = StoreFlags & OutputFlags;

// Resolved beside this file, so that the installed package (.js) and a checkout (.ts) both work.
const EXT = import.meta.url.endsWith(".ts") ? "ts" : "js";
const CLI = fileURLToPath(new URL(`../main.${EXT}`, import.meta.url));
const AGENTS = fileURLToPath(new URL(`../../demo/workflow-agents.${EXT}`, import.meta.url));
const WORKERS = 2;
const ONLINE_TIMEOUT_MS = 30_000;

async function runs(colony: Colony, flags: DemoFlags): Promise<RunResult[]> {
  const results: RunResult[] = [];
  for (const [title, definition] of [
    ["researcher → critic → writer, until the critic approves", essay],
    ["three researchers at once, then a synthesizer", survey],
  ] as const) {
    if (!flags.json) say("", `== ${definition.name}: ${title} (board "${definition.board}")`);
    results.push(await runAndReport(colony, definition, { ...flags, fresh: true }));
  }
  if (!flags.json) {
    say("", "Deterministic agents, no model: tokens are characters/4 of what each agent wrote.");
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

/** Starts the demo's worker processes on the same file and waits until the registry shows them online. */
async function startWorkers(colony: Colony, flags: DemoFlags): Promise<ChildProcess[]> {
  const workers: ChildProcess[] = [];
  for (let i = 1; i <= WORKERS; i++) {
    const args = [CLI, "worker", ...storeArgs(flags, colony.backend.location), "--agents", AGENTS, "--concurrency", "2", "--id", `demo-${process.pid}-${i}`, "--lease-ms", "5000", "--tasks", choose.tasks!];
    const env = { ...process.env, ...natsCredentialsEnv(flags) };
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"], env });
    if (!flags.json) createInterface({ input: child.stdout! }).on("line", (line) => say(`  [worker ${i}] ${line.slice(13)}`));
    else child.stdout!.resume();
    workers.push(child);
  }
  const tasks = await colony.tasks(choose.tasks);
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

async function workflowDemo(colony: Colony, flags: DemoFlags) {
  if (flags.memory) throw new UsageError("demo workflow runs worker processes that share the store: use the SQLite default or --db, not --memory");
  if (!flags.json) say("", `== ${choose.name}: a question → three research subtasks and a comparison, on ${WORKERS} worker processes`);
  const workers = await startWorkers(colony, flags);
  try {
    const outcome = await runWorkflowAndReport(colony, choose, QUESTION, flags);
    if (flags.json) return outcome;
    say("", ...linesOf(String(outcome.result)), "");
    say(...outcome.tasks.map((task) => `  ${task.id.padEnd(40)} ${task.status.padEnd(9)} by ${task.owner ?? "-"}`));
    say("", `${outcome.tasks.length} subtasks in ${outcome.ms} ms; the three research tasks ran at once. \`${selfCommand(`tasks --tasks ${choose.tasks}`, flags)}\` shows the board.`);
    return outcome;
  } finally {
    await stopWorkers(workers);
  }
}

export function registerDemo(program: Command): void {
  storeOptions(
    program
      .command("demo")
      .description("run the bundled examples: researcher → critic → writer; three researchers and a synthesizer; a workflow on two worker processes")
      .addArgument(new Argument("[which]", "which demo").choices(["runs", "workflow", "all"]).default("all")),
  )
    .option("--json", "print the results as JSON")
    .action(async (which: "runs" | "workflow" | "all", _options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<DemoFlags>();
      await withColony(flags, async (colony) => {
        const out: Record<string, unknown> = {};
        if (which !== "workflow") out.runs = await runs(colony, flags);
        if (which !== "runs") out.workflow = await workflowDemo(colony, flags);
        if (flags.json) printJson(which === "runs" ? out.runs : which === "workflow" ? out.workflow : out);
      });
    });
}
