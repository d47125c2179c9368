import type { Command } from "commander";
import type { Board } from "../../core/board.ts";
import type { RunResult } from "../../core/records.ts";
import type { RunDefinition } from "../../core/run-types.ts";
import type { Colony } from "../../runtime/colony.ts";
import { printJson, selfCommand, wholeNumber, withColony, type OutputFlags, type StoreFlags, storeOptions } from "../common.ts";
import { liveLine, runSummary, say, stepLines } from "../format.ts";
import { loadRunDefinition } from "../load.ts";
import { createStepper, type Stepper } from "../stepper.ts";
import { loadWorkflow, runWorkflowFile } from "./workflow.ts";

interface RunFlags extends StoreFlags, OutputFlags {
  input?: string;
  maxSteps?: number;
  sequential?: boolean;
  fresh?: boolean;
  step?: boolean;
}

/** Deletes every entry of a board (each delete is logged), so a run starts from its seed alone. */
export async function clearBoard(board: Board, author: string): Promise<void> {
  await board.refresh();
  for (const key of board.view().keys()) await board.delete(key, { author });
}

/**
 * Runs a definition, printing each step as it ends (or nothing, with `json`), and its summary.
 * SIGINT (or Ctrl-C at a `--step` pause) aborts it through `controller`: the run ends, recorded
 * as aborted, before its next step.
 */
export async function runAndReport(colony: Colony, definition: RunDefinition, flags: RunFlags, stepper?: Stepper, controller = new AbortController()): Promise<RunResult> {
  const def: RunDefinition = {
    ...definition,
    ...(flags.maxSteps !== undefined && { maxSteps: flags.maxSteps }),
    ...(flags.sequential && { parallel: false }),
  };
  if (flags.fresh) await clearBoard(await colony.board(def.board), "colony-cli");
  const interrupt = () => controller.abort();
  process.once("SIGINT", interrupt);
  // While a step runs, a line on the terminal says so (not while --step waits for Enter).
  const live = liveLine();
  try {
    const result = await colony.run({ ...def, signal: controller.signal }, {
      onStep: (step) => {
        live.stop();
        if (!flags.json) say(...stepLines(step));
      },
      beforeStep: async (index, view) => {
        await stepper?.beforeStep(index, view);
        if (!flags.json && !stepper) live.start(`step ${index} of run on board "${def.board}"`);
      },
    });
    if (!flags.json) {
      const { run } = await colony.runs.get(result.runId);
      say(runSummary(run));
      if (result.stopReason === "goal" && result.steps.length === 0) {
        say(`its goal held before the first step: board "${result.board}" already has what the run is for; add --fresh to start again from its seed`);
      }
      say(`run ${result.runId} on board "${result.board}" (${colony.backend.kind}: ${colony.backend.location})`);
    }
    return result;
  } finally {
    live.stop();
    process.off("SIGINT", interrupt);
  }
}

/**
 * What a run's end means for the shell: 0 when it did what it was for (its goal; or, without a
 * goal, it ran out of work or steps), 130 when it was interrupted, 1 otherwise: an error, a
 * deadlock, a budget, the step limit before the goal, or quiet after a step whose every agent failed.
 */
export function runExitCode(definition: RunDefinition, result: RunResult): number {
  switch (result.stopReason) {
    case "goal":
      return 0;
    case "aborted":
      return 130;
    case "quiescence": {
      const last = result.steps.findLast((step) => step.fired.length > 0);
      const failed = last !== undefined && last.fired.every((f) => f.error !== undefined && !f.conflict);
      return failed || definition.goal !== undefined ? 1 : 0;
    }
    case "max_steps":
      return definition.goal !== undefined ? 1 : 0;
    default:
      return 1;
  }
}

export function registerRun(program: Command): void {
  storeOptions(
    program.command("run")
    .description("run the stigmergic loop over a run definition (a file whose default export is one, or a .yaml manifest's run:), or a workflow"),
  )
    .argument("<file>", "a .ts, .js or .mjs file that default-exports a run definition or a workflow, or a .yaml manifest with run: or workflow:")
    .option("--input <json>", "a workflow's input, as JSON")
    .option("--max-steps <n>", "stop after this many steps", wholeNumber(1))
    .option("--sequential", "fire a step's agents one after another instead of in parallel")
    .option("--fresh", "delete the board's entries first, so the run starts from its seed")
    .option("--step", "pause before every step and sub-agent turn until Enter, showing what changed")
    .option("--json", "print the run result as JSON instead of the live steps")
    .action(async (file: string, _options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<RunFlags>();
      const workflow = await loadWorkflow(file, true);
      if (workflow) return runWorkflowFile(workflow, flags);
      const definition = await loadRunDefinition(file);
      const controller = new AbortController();
      const stepper = flags.step ? createStepper(controller) : undefined;
      const result = await withColony(flags, (colony) => runAndReport(colony, definition, flags, stepper, controller), {
        ...(stepper && { beforeTurn: (agent) => stepper.beforeTurn(agent) }),
      }).finally(() => stepper?.close());
      if (flags.json) printJson(result);
      else if (!flags.memory) {
        say(`inspect it: ${selfCommand(`board ${result.board}`, flags)}   ·   ${selfCommand(`runs ${result.runId}`, flags)}`);
      }
      process.exitCode = runExitCode(definition, result);
    });
}
