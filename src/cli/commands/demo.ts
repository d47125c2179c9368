import type { Command } from "commander";
import essay from "../../demo/essay.ts";
import survey from "../../demo/survey.ts";
import type { RunResult } from "../../core/records.ts";
import { printJson, selfCommand, withColony, type OutputFlags, type StoreFlags, storeOptions } from "../common.ts";
import { runAndReport } from "./run.ts";

type DemoFlags = StoreFlags & OutputFlags;

export function registerDemo(program: Command): void {
  storeOptions(
    program.command("demo")
    .description("run the bundled examples: researcher → critic → writer, then three researchers in parallel and a synthesizer"),
  )
    .option("--json", "print the run results as JSON")
    .action(async (_options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<DemoFlags>();
      const results: RunResult[] = [];
      await withColony(flags, async (colony) => {
        for (const [title, definition] of [
          ["researcher → critic → writer, until the critic approves", essay],
          ["three researchers at once, then a synthesizer", survey],
        ] as const) {
          if (!flags.json) console.log(`\n== ${definition.name}: ${title} (board "${definition.board}")`);
          results.push(await runAndReport(colony, definition, { ...flags, fresh: true }));
        }
        if (flags.json) return printJson(results);
        const self = selfCommand(flags);
        console.log(`\nDeterministic agents, no model: tokens are characters/4 of what each agent wrote.`);
        if (!flags.memory) {
          console.log(`Saved to ${colony.backend.location}. Look around:`);
          console.log(`  ${self} board essay             the final board`);
          console.log(`  ${self} board essay --history   every write, in order`);
          console.log(`  ${self} runs                    past runs`);
        }
      });
    });
}
