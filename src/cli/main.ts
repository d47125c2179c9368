#!/usr/bin/env node
/**
 * The `colony` command. Commands live in ./commands; this file wires them up and turns errors
 * into exit codes: 2 for anything the user can fix (bad flags, files, definitions, input), 1
 * for failures, with a stack trace only under --debug.
 */
import { Command, CommanderError } from "commander";
import { ColonyError, describeError } from "../core/errors.ts";
import { registerAgents } from "./commands/agents.ts";
import { registerApprovals } from "./commands/approvals.ts";
import { registerBench } from "./commands/bench.ts";
import { registerBoard } from "./commands/board.ts";
import { registerDemo } from "./commands/demo.ts";
import { registerInit } from "./commands/init.ts";
import { registerRun } from "./commands/run.ts";
import { registerRuns } from "./commands/runs.ts";
import { registerServe } from "./commands/serve.ts";
import { registerSwarm } from "./commands/swarm.ts";
import { registerTasks } from "./commands/tasks.ts";
import { registerWorker } from "./commands/worker.ts";
import { registerWorkflow } from "./commands/workflow.ts";
import { VERSION } from "./common.ts";
import { linesOf, paint, warn } from "./format.ts";

const USER_ERRORS = new Set(["USAGE", "CONFIG", "INVALID_KEY", "INVALID_VALUE", "VALUE_TOO_LARGE", "NOT_FOUND", "INVALID_TASK", "NO_WORKER", "NATS_CONNECT", "WORKER_ID_IN_USE", "INVALID_INPUT"]);

/**
 * Output piped into a reader that has gone (`colony board x --json | head -3`) ends the command
 * quietly, as `cat` does: nothing more can be shown, and a stack trace about it helps nobody.
 */
function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    process.exit(typeof process.exitCode === "number" ? process.exitCode : 0);
  });
}

export function buildProgram(): Command {
  const program = new Command("colony")
    .description("Colony: many agents, one versioned blackboard, a loop that fires them when the board says so")
    .version(VERSION, "-V, --version", "print Colony's version")
    .option("--debug", "print stack traces")
    .option("--no-color", "no colours, even on a terminal (as NO_COLOR=1 does)")
    .showHelpAfterError("(add --help for usage)")
    .exitOverride();
  registerRun(program);
  registerBoard(program);
  registerRuns(program);
  registerAgents(program);
  registerApprovals(program);
  registerTasks(program);
  registerWorker(program);
  registerSwarm(program);
  registerServe(program);
  registerWorkflow(program);
  registerBench(program);
  registerDemo(program);
  registerInit(program);
  for (const command of program.commands) command.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  if (argv.includes("--no-color")) {
    process.env.NO_COLOR = "1";
    delete process.env.FORCE_COLOR;
  }
  if (argv.length <= 2) {
    // `colony` alone asks what there is: the help, on stdout, and that is a success.
    program.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed its own message (or the help) already.
      return error.exitCode === 0 ? 0 : 2;
    }
    const debug = argv.includes("--debug");
    const user = error instanceof ColonyError && USER_ERRORS.has(error.code);
    // The message may carry what a user or an agent wrote (a kind, a name): shown, never obeyed.
    warn(...linesOf(`${paint("red", "colony:")} ${describeError(error)}`));
    if (debug && error instanceof Error) console.error(error.stack);
    return user ? 2 : 1;
  }
}

quietOnClosedPipe(process.stdout);
quietOnClosedPipe(process.stderr);
process.exitCode = await main(process.argv);
