import type { Command } from "commander";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { memoryBackend } from "../../backends/memory/index.ts";
import { sqliteBackend } from "../../backends/sqlite/index.ts";
import type { RunResult } from "../../core/records.ts";
import type { RunDefinition } from "../../core/run-types.ts";
import { createColony } from "../../runtime/colony.ts";
import { printJson, wholeNumber, type OutputFlags } from "../common.ts";
import { say, table, usd, warn } from "../format.ts";
import { loadRunDefinition } from "../load.ts";

interface BenchFlags extends OutputFlags {
  runs: number;
  memory?: boolean;
}

export interface BenchRun {
  run: number;
  stopReason: RunResult["stopReason"];
  steps: number;
  tokens: number;
  costUsd: number;
  durationMs: number;
  fires: Record<string, number>;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs `definition` `runs` times, each on a fresh store (a new temporary SQLite file, or memory). */
export async function benchDefinition(definition: RunDefinition, runs: number, memory: boolean, progress: (run: BenchRun) => void) {
  const results: BenchRun[] = [];
  for (let i = 1; i <= runs; i++) {
    const dir = memory ? undefined : mkdtempSync(join(tmpdir(), "colony-bench-"));
    const colony = createColony({ backend: dir ? sqliteBackend({ path: join(dir, "bench.db") }) : memoryBackend() });
    try {
      const result = await colony.run(definition);
      const fires: Record<string, number> = Object.fromEntries(definition.agents.map((a) => [a.name, 0]));
      for (const step of result.steps) for (const f of step.fired) fires[f.agent] = (fires[f.agent] ?? 0) + 1;
      const run: BenchRun = {
        run: i,
        stopReason: result.stopReason,
        steps: result.steps.length,
        tokens: result.totalTokens,
        costUsd: result.totalCostUsd,
        durationMs: result.durationMs,
        fires,
      };
      results.push(run);
      progress(run);
    } finally {
      await colony.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }
  const fires = Object.fromEntries(definition.agents.map((a) => [a.name, median(results.map((r) => r.fires[a.name] ?? 0))]));
  const stopReasons: Record<string, number> = {};
  for (const r of results) stopReasons[r.stopReason] = (stopReasons[r.stopReason] ?? 0) + 1;
  return {
    runs: results,
    median: {
      steps: median(results.map((r) => r.steps)),
      tokens: median(results.map((r) => r.tokens)),
      costUsd: median(results.map((r) => r.costUsd)),
      durationMs: median(results.map((r) => r.durationMs)),
      fires,
    },
    stopReasons,
  };
}

export function registerBench(program: Command): void {
  program
    .command("bench")
    .description("run a definition N times, each on a fresh store, and report per-run and median figures")
    .argument("<file>", "a .ts, .js or .mjs file that default-exports a run definition")
    .option("--runs <n>", "how many runs", wholeNumber(1), 5)
    .option("--memory", "run on the in-memory backend instead of a fresh SQLite file per run")
    .option("--json", "print the figures as JSON")
    .action(async (file: string, _options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<BenchFlags>();
      const definition = await loadRunDefinition(file);
      const report = await benchDefinition(definition, flags.runs, flags.memory ?? false, (r) =>
        warn(`run ${r.run}/${flags.runs}: ${r.stopReason}, ${r.steps} steps, ${r.durationMs} ms`),
      );
      if (flags.json) return printJson(report);
      const agents = definition.agents.map((a) => a.name);
      const row = (label: string, r: Omit<BenchRun, "run" | "stopReason">) => [
        label,
        String(r.steps),
        String(r.tokens),
        usd(r.costUsd),
        `${r.durationMs} ms`,
        agents.map((a) => `${a}×${r.fires[a]}`).join(" "),
      ];
      const rows = report.runs.map((r) => row(`#${r.run} ${r.stopReason}`, r));
      rows.push(row("median", report.median));
      say(...table([["RUN", "STEPS", "TOKENS", "COST", "DURATION", "FIRES"], ...rows]));
    });
}
