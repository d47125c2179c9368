/**
 * `colony demo swarm`: the live swarm of src/demo/swarm.ts, told as it works, until it has
 * settled (every round planned, no task waiting or running) or a stop signal came; with --serve,
 * until the signal.
 */
import { TASK_STATUSES, type TaskStatus } from "../../core/tasks.ts";
import { SWARM_BOARD, SWARM_TASKS, startSwarm, type PlannedRound } from "../../demo/swarm.ts";
import type { Colony } from "../../runtime/colony.ts";
import type { WorkerEvent } from "../../runtime/tasks/worker.ts";
import { selfCommand, type OutputFlags, type StoreFlags } from "../common.ts";
import { say, taskCounts, workerEventLine } from "../format.ts";

export interface SwarmFlags extends StoreFlags, OutputFlags {
  rounds: number;
  /** Served meanwhile: a settled swarm keeps its workers online until the signal. */
  serve?: boolean;
}

export interface SwarmOutcome {
  rounds: number;
  /** How the swarm ended: it settled, or a signal stopped it first. */
  ended: "settled" | NodeJS.Signals;
  tasks: Record<TaskStatus, number>;
  board: { name: string; entries: number; seq: number };
}

/** A worker's event as the demo tells it: no time, and nothing for a running agent's progress. */
function workerLine(worker: string, event: WorkerEvent): string | undefined {
  if (event.type === "progress" || event.type === "coordinator") return undefined;
  return `  [${worker}] ${workerEventLine(event).slice(13).replace(`worker ${worker} `, "")}`;
}

export async function swarmDemo(colony: Colony, flags: SwarmFlags, stopped: Promise<NodeJS.Signals>): Promise<SwarmOutcome> {
  const tell = (...lines: string[]) => !flags.json && say(...lines);
  tell(
    "",
    `== swarm: a planner submits research round by round; two researcher workers take it, each spawning a reader; a reviewer judges each round (board "${SWARM_BOARD}", task board "${SWARM_TASKS}")`,
  );
  const swarm = await startSwarm(colony, {
    rounds: flags.rounds,
    onWorker: (worker, event) => {
      const line = workerLine(worker, event);
      if (line !== undefined) tell(line);
    },
  });
  let rounds = 0;
  void (async () => {
    for await (const event of swarm.planner.events) {
      if (event.type !== "emit" || event.name !== "round") continue;
      const { round, question, tasks } = event.data as PlannedRound;
      rounds = round;
      tell(`round ${round}: ${question} → ${tasks.length - 1} research tasks and a review`);
    }
  })();

  const ended = await Promise.race([swarm.settled().then(() => "settled" as const), stopped]);
  if (ended === "settled" && flags.serve) {
    // Something to look at: the workers stay online, idle, until the signal.
    tell("", "The swarm settled; its workers stay online until Ctrl-C.");
    await stopped;
  }
  await swarm.stop();
  const tasks = await (await colony.tasks(SWARM_TASKS)).list();
  const board = await colony.board(SWARM_BOARD);
  const seq = await board.refresh();
  const counts = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
  for (const task of tasks) counts[task.status]++;
  tell(
    "",
    `${ended === "settled" ? "The swarm settled" : `Stopped on ${ended}`}: ${taskCounts(tasks)}; board "${SWARM_BOARD}" at log position ${seq}.`,
    ...(flags.memory ? [] : [`  ${selfCommand(`tasks --tasks ${SWARM_TASKS}`, flags)}   the task board`, `  ${selfCommand(`board ${SWARM_BOARD}`, flags)}            the board`]),
  );
  return { rounds, ended, tasks: counts, board: { name: SWARM_BOARD, entries: board.view().size, seq } };
}
