import type { Command } from "commander";
import { ConfigError } from "../../core/errors.ts";
import type { Colony } from "../../runtime/colony.ts";
import { checkWorkflow, type WorkflowDefinition, type WorkflowProgress, type WorkflowResult } from "../../runtime/tasks/workflow.ts";
import { UsageError, parseJson, printJson, selfCommand, storeOptions, withColony, type OutputFlags, type StoreFlags } from "../common.ts";
import { linesOf, say, visible } from "../format.ts";
import { importFile, isManifestFile, loadManifestFile } from "../load.ts";

export interface WorkflowFlags extends StoreFlags, OutputFlags {
  input?: string;
}

export function progressLine(progress: WorkflowProgress): string {
  const { counts, total } = progress;
  const ended = counts.succeeded + counts.failed + counts.dead + counts.cancelled;
  const parts = [`${ended}/${total} ended`, `${counts.claimed} running`, `${counts.pending} queued`];
  if (counts.blocked > 0) parts.push(`${counts.blocked} blocked`);
  const bad = counts.failed + counts.dead + counts.cancelled;
  if (bad > 0) parts.push(`${bad} not succeeded`);
  const last = progress.last ? `  (${progress.last.id} ${progress.last.status}${progress.last.owner && progress.last.status === "claimed" ? ` by ${progress.last.owner}` : ""})` : "";
  return `${parts.join(", ")}${last}`;
}

/** Runs a workflow, with a live progress line on stderr unless the output is JSON. */
export async function runWorkflowAndReport<I, R>(colony: Colony, definition: WorkflowDefinition<I, R>, input: I, flags: OutputFlags): Promise<WorkflowResult<R>> {
  const live = !flags.json && process.stderr.isTTY;
  const onProgress = (progress: WorkflowProgress) => {
    if (flags.json) return;
    // The line is made visible before the terminal's own "clear the line" is put in front of it.
    if (live) process.stderr.write(`\r\x1b[K${visible(progressLine(progress))}`);
    else process.stderr.write(`${visible(progressLine(progress))}\n`);
  };
  const result = await colony.workflow(definition).run(input, { onProgress });
  if (live) process.stderr.write("\n");
  return result;
}

/**
 * A file's default export as a workflow, or a YAML manifest's `workflow:`; with `ifWorkflow` (as
 * `colony run` asks), undefined when it is not one: a run definition, or a manifest with a `run:`
 * (which is what `colony run` runs, even beside a `workflow:`).
 */
export async function loadWorkflow(file: string, ifWorkflow = false): Promise<WorkflowDefinition | undefined> {
  if (isManifestFile(file)) {
    const { workflow, run } = await loadManifestFile(file);
    if (ifWorkflow) return run ? undefined : workflow;
    if (workflow) return workflow;
    throw new UsageError(`${file}: has no workflow: section; add \`workflow: { name, decompose: agent, execute: { kind: agent }, synthesize: agent }\``);
  }
  const module = await importFile(file, "a workflow definition");
  const candidate = module.default as Partial<WorkflowDefinition> | undefined;
  if (ifWorkflow && (typeof candidate !== "object" || candidate === null || !("decompose" in candidate))) return undefined;
  if (module.default === undefined) throw new UsageError(`${file}: has no default export; add \`export default { name, decompose, execute, synthesize }\``);
  try {
    checkWorkflow(module.default as WorkflowDefinition);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(`${file}: ${error.message}`, { cause: error });
    throw error;
  }
  return module.default as WorkflowDefinition;
}

/** `colony workflow FILE` and `colony run FILE` when FILE holds a workflow. */
export async function runWorkflowFile(definition: WorkflowDefinition, flags: WorkflowFlags): Promise<void> {
  const input = flags.input === undefined ? undefined : parseJson("--input", flags.input);
  await withColony(flags, async (colony) => {
    const outcome = await runWorkflowAndReport(colony, definition, input, flags);
    if (flags.json) return printJson(outcome);
    say(...linesOf(typeof outcome.result === "string" ? outcome.result : (JSON.stringify(outcome.result, null, 2) ?? "undefined")));
    say("", `${outcome.tasks.length} subtask(s) in ${outcome.ms} ms (run ${outcome.runId}); see them with \`${selfCommand("tasks", flags)}\``);
  });
}

export function registerWorkflow(program: Command): void {
  storeOptions(
    program
      .command("workflow <file>")
      .description("run a decompose → parallel → synthesize workflow (the file's default export, or a .yaml manifest's workflow:) on the task board")
      .option("--input <json>", "the workflow's input, as JSON")
      .option("--json", "print the result and every subtask as JSON"),
  ).action(async (file: string, flags: WorkflowFlags) => {
    await runWorkflowFile((await loadWorkflow(file))!, flags);
  });
}
