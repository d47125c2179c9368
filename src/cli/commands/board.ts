import type { Command } from "commander";
import { boardSummary, viewAt } from "../../core/board.ts";
import { UsageError, printJson, wholeNumber, withExistingColony, type OutputFlags, type StoreFlags, storeOptions } from "../common.ts";
import { entryLine, recordLine, say, warn } from "../format.ts";

interface BoardFlags extends StoreFlags, OutputFlags {
  history?: boolean;
  watch?: boolean;
  at?: number;
  key?: string;
}

export function registerBoard(program: Command): void {
  storeOptions(program.command("boards").description("list the boards and task boards in the store, with their entry counts and log positions"))
    .option("--json", "print data as JSON")
    .action(async (_options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<StoreFlags & OutputFlags>();
      await withExistingColony(flags, async (colony) => {
        const names = await colony.listBoards();
        const boards = await Promise.all(names.boards.map(async (name) => boardSummary(await colony.board(name))));
        const tasks = await Promise.all(names.tasks.map(async (name) => ({ name, seq: await (await colony.tasks(name)).head() })));
        if (flags.json) return printJson({ boards, tasks });
        if (boards.length + tasks.length === 0) return say("the store has no boards yet");
        say(
          ...boards.map((b) => `board "${b.name}": ${b.entries} entr${b.entries === 1 ? "y" : "ies"}, log position ${b.seq}`),
          ...tasks.map((t) => `task board "${t.name}": event log position ${t.seq}`),
        );
      });
    });

  storeOptions(
    program.command("board")
    .description("show a board's entries, its write log, or tail it live"),
  )
    .argument("<name>", "the board's name")
    .option("--history", "show the write log instead of the entries")
    .option("--key <key>", "with --history: only this key's records")
    .option("--watch", "print every new write as it happens, until Ctrl-C")
    .option("--at <seq>", "show the board as it was right after log position SEQ", wholeNumber(0))
    .option("--json", "print data as JSON (with --watch: one record per line)")
    .action(async (name: string, _options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<BoardFlags>();
      await withExistingColony(flags, async (colony) => {
        const board = await colony.board(name);
        if (flags.watch) {
          const controller = new AbortController();
          process.once("SIGINT", () => controller.abort());
          warn(`watching board "${name}" from log position ${board.seq}; Ctrl-C to stop`);
          for await (const record of board.watch({ signal: controller.signal })) {
            if (flags.json) console.log(JSON.stringify(record));
            else say(recordLine(record));
          }
          return;
        }
        if (flags.history) {
          const records = await board.history({ key: flags.key });
          if (flags.json) printJson(records);
          else if (records.length === 0) say(`board "${name}" has no writes${flags.key ? ` to [${flags.key}]` : ""}`);
          else say(...records.map(recordLine));
          return;
        }
        if (flags.at !== undefined && flags.at > board.seq) {
          throw new UsageError(`--at ${flags.at}: board "${name}" has ${board.seq} log records; pick a position from 0 to ${board.seq}`);
        }
        const view =
          flags.at === undefined ? board.view() : viewAt(name, flags.at, flags.at === 0 ? [] : await board.history({ limit: flags.at }));
        if (flags.json) {
          printJson({ board: name, seq: view.seq, entries: view.entries() });
          return;
        }
        const where = flags.at === undefined ? `at log position ${view.seq}` : `as of log position ${flags.at} (now ${board.seq})`;
        say(`board "${name}" ${where}, ${view.size} entr${view.size === 1 ? "y" : "ies"}`, ...view.entries().map(entryLine));
      });
    });
}
