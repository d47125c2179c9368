import type { Command } from "commander";
import { printJson, wholeNumber, withExistingColony, type OutputFlags, type StoreFlags, storeOptions } from "../common.ts";
import { age, runSummary, say, status, stepLines, table, usd } from "../format.ts";

interface RunsFlags extends StoreFlags, OutputFlags {
  limit?: number;
}

export function registerRuns(program: Command): void {
  storeOptions(
    program.command("runs")
    .description("list past runs, or show one run's step timeline"),
  )
    .argument("[runId]", "a run's id, to see its steps")
    .option("--limit <n>", "list at most this many runs", wholeNumber(1), 50)
    .option("--json", "print data as JSON")
    .action(async (runId: string | undefined, _options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<RunsFlags>();
      await withExistingColony(flags, async (colony) => {
        if (runId !== undefined) {
          const { run, steps } = await colony.runs.get(runId);
          if (flags.json) return printJson({ run, steps });
          say(`run ${run.runId} "${run.name}" on board "${run.board}", started ${new Date(run.startedAt).toISOString()}`);
          for (const step of steps) say(...stepLines(step));
          say(runSummary(run));
          return;
        }
        const runs = await colony.runs.list({ limit: flags.limit });
        if (flags.json) return printJson(runs);
        if (runs.length === 0) return say(`no runs yet in ${colony.backend.location}`);
        const rows = runs.map((r) => [
          r.runId,
          r.name,
          status(r.stopReason ?? r.status),
          String(r.steps),
          String(r.totalTokens),
          usd(r.totalCostUsd),
          r.durationMs === undefined ? "-" : `${r.durationMs} ms`,
          `${age(Date.now() - r.startedAt)} ago`,
        ]);
        say(...table([["RUN", "NAME", "STOP", "STEPS", "TOKENS", "COST", "DURATION", "STARTED"], ...rows], { column: 1 }));
      });
    });
}
