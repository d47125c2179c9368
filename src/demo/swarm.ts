/**
 * A small live swarm to watch on the dashboard (`colony demo swarm --serve`), offline and
 * deterministic, no model. A planner agent plans a question per round on the board "swarm" and
 * submits a research task per subtopic, with a review task that depends on them, to the task board
 * "swarm". Two researcher workers take the research: each spawns a reader for its sources, then
 * writes its finding to the board for review. A reviewer worker judges each round once its research
 * is in, tagging each finding approved or rejected. Some sources time out once (the retry
 * succeeds), and one subtopic never finds a source: it ends dead, and the review that waited on it
 * fails with it.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Board } from "../core/board.ts";
import { defineSubAgent } from "../core/define.ts";
import type { SubAgent, SubAgentHandle } from "../core/subagent-types.ts";
import type { Colony } from "../runtime/colony.ts";
import type { TaskWorker, WorkerEvent } from "../runtime/tasks/worker.ts";

/** The board and the task board the swarm works on. */
export const SWARM_BOARD = "swarm";
export const SWARM_TASKS = "swarm";

const QUESTIONS: { question: string; subtopics: Record<string, string> }[] = [
  {
    question: "How do ants find the shortest path to food?",
    subtopics: {
      pheromone: "foragers lay pheromone on the way back from food",
      evaporation: "pheromone evaporates, so long trails fade before short ones",
      feedback: "a shorter trail is walked more often, so its scent grows fastest",
    },
  },
  {
    question: "How do honeybees choose a new nest?",
    subtopics: {
      scouts: "scouts inspect cavities and dance for the ones they like",
      quorum: "once enough scouts gather at one site, the swarm lifts off",
      waggle: "a longer dance recruits more scouts to a better site",
    },
  },
  {
    question: "How do termites keep their mounds cool?",
    subtopics: {
      stigmergy: "each termite adds mud where the mound's shape invites it",
      ventilation: "wind and daily heat drive air through the mound's channels",
      telepathy: "termites agree on the plan by telepathy",
    },
  },
  {
    question: "How does a fish school turn all at once?",
    subtopics: {
      alignment: "each fish matches the heading of its nearest neighbours",
      "lateral-line": "the lateral line feels a neighbour's turn before it is seen",
      predators: "a turn at the edge spreads across the school in a wave",
    },
  },
];

/** A subtopic no source supports: its research fails every attempt. */
const UNFOUNDED = "telepathy";

/** A number in [0, 1) from a string: the same subtopic takes as long and is as sure every time. */
function unit(text: string): number {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
  return (hash >>> 0) / 2 ** 32;
}

interface ResearchInput {
  round: number;
  question: string;
  subtopic: string;
}

export interface Finding {
  key: string;
  subtopic: string;
  text: string;
  confidence: number;
}

interface ReviewInput {
  input: { round: number; question: string };
  dependencies: Record<string, Finding | undefined>;
}

/** Looks a subtopic up; stands in for reading sources, which takes a while. */
const reader = defineSubAgent<{ subtopic: string; ms: number }, string>({
  name: "reader",
  async run(ctx) {
    await sleep(ctx.input.ms, undefined, { signal: ctx.signal });
    ctx.usage.add({ tokens: 150 + Math.round(unit(ctx.input.subtopic) * 400), costUsd: 0.0004 });
    return `${ctx.input.subtopic}: two sources`;
  },
});

/**
 * The researcher and the reviewer that the workers run. They write to `board` themselves: a
 * worker's agent has no board of its own, and these run inline in the demo's process.
 */
export function swarmAgents(board: Board): { researcher: SubAgent<ResearchInput, Finding>; reviewer: SubAgent<ReviewInput, unknown> } {
  // Sources that time out on a first attempt; the retry finds them.
  const timedOut = new Set<string>();

  const researcher = defineSubAgent<ResearchInput, Finding>({
    name: "researcher",
    async run(ctx) {
      const { round, question, subtopic } = ctx.input;
      const key = `findings/r${round}/${subtopic}`;
      const reading = await ctx.spawn(reader, { subtopic, ms: 500 + Math.round(unit(`${round}${subtopic}`) * 1500) });
      await reading.result;
      if (subtopic === UNFOUNDED) throw new Error(`no source supports "${subtopic}"`);
      if (unit(`${subtopic}!`) < 0.3 && !timedOut.has(key)) {
        timedOut.add(key);
        throw new Error(`a source on "${subtopic}" timed out; a retry will find it`);
      }
      const text = QUESTIONS.find((q) => q.question === question)?.subtopics[subtopic] ?? subtopic;
      const confidence = Math.round((0.55 + unit(subtopic) * 0.45) * 100) / 100;
      ctx.usage.add({ tokens: Math.ceil(text.length / 4) + 60, costUsd: 0.0002 });
      await board.write(key, text, { author: "researcher", tags: { confidence, status: "pending_review" } });
      return { key, subtopic, text, confidence };
    },
  });

  const reviewer = defineSubAgent<ReviewInput, unknown>({
    name: "reviewer",
    async run(ctx) {
      const { round, question } = ctx.input.input;
      await sleep(400, undefined, { signal: ctx.signal });
      const verdicts: Record<string, "approved" | "rejected"> = {};
      for (const finding of Object.values(ctx.input.dependencies)) {
        if (!finding) continue;
        const status = finding.confidence >= 0.7 ? "approved" : "rejected";
        verdicts[finding.subtopic] = status;
        await board.write(finding.key, finding.text, { author: "reviewer", tags: { confidence: finding.confidence, status } });
      }
      ctx.usage.add({ tokens: 80 * Object.keys(verdicts).length, costUsd: 0.0003 });
      const review = { question, verdicts };
      await board.write(`reviews/r${round}`, review, { author: "reviewer", tags: { round, status: "final" } });
      return review;
    },
  });

  return { researcher, reviewer };
}

interface PlannerInput {
  rounds: number;
  roundMs: number;
  /** Makes this swarm's task ids its own on a task board that keeps earlier swarms' tasks. */
  tag: string;
}

/** What the planner emits as `round` each time it planned one. */
export interface PlannedRound {
  round: number;
  question: string;
  tasks: string[];
}

/** Plans a round every `roundMs`: the question on the board, its research and review on the task board. */
const planner = defineSubAgent<PlannerInput, { rounds: number }>({
  name: "planner",
  async run(ctx) {
    const { rounds, roundMs, tag } = ctx.input;
    let round = 0;
    while (round < rounds && !ctx.signal.aborted) {
      round++;
      const { question, subtopics } = QUESTIONS[(round - 1) % QUESTIONS.length]!;
      await ctx.board!.write(`plan/r${round}`, { question, subtopics: Object.keys(subtopics) }, { tags: { round, status: "planned" } });
      const research = Object.keys(subtopics).map((subtopic) => ({ subtopic, id: `r${round}-${subtopic}-${tag}` }));
      const review = `r${round}-review-${tag}`;
      ctx.emit("round", { round, question, tasks: [...research.map((r) => r.id), review] } satisfies PlannedRound);
      for (const { subtopic, id } of research) {
        const input: ResearchInput = { round, question, subtopic };
        await ctx.tasks.submit({ id, kind: "research", input, maxAttempts: 2, backoff: { baseMs: 300, maxMs: 1000 } }, { board: SWARM_TASKS });
      }
      await ctx.tasks.submit({ id: review, kind: "review", input: { round, question }, dependsOn: research.map((r) => r.id), priority: 1 }, { board: SWARM_TASKS });
      ctx.usage.add({ tokens: 40, costUsd: 0.0001 });
      if (round < rounds) await sleep(roundMs, undefined, { signal: ctx.signal }).catch(() => {});
    }
    return { rounds: round };
  },
});

export interface SwarmOptions {
  /** How many rounds the planner plans; default 4. */
  rounds?: number;
  /** Time between rounds; default 2500 ms. */
  roundMs?: number;
  /** Hears every worker's events, with the worker's id. */
  onWorker?: (worker: string, event: WorkerEvent) => void;
}

export interface Swarm {
  readonly planner: SubAgentHandle<{ rounds: number }>;
  readonly workers: readonly TaskWorker[];
  /** Resolves once the planner has planned every round and no task of this swarm waits or runs. */
  settled(): Promise<void>;
  /** Stops the planner and the workers (running tasks go back to the board). */
  stop(): Promise<void>;
}

/**
 * Starts the swarm on `colony`: its three workers (two researchers, one reviewer) and its planner.
 *
 * @example
 * const swarm = await startSwarm(colony, { rounds: 2 });
 * await swarm.settled();
 * await swarm.stop();
 */
export async function startSwarm(colony: Colony, options: SwarmOptions = {}): Promise<Swarm> {
  const { rounds = 4, roundMs = 2500, onWorker } = options;
  const board = await colony.board(SWARM_BOARD);
  const { researcher, reviewer } = swarmAgents(board);
  const on = (id: string) => onWorker && { on: (event: WorkerEvent) => onWorker(id, event) };
  // Stable ids: a later demo takes over its workers' records rather than leaving offline ones.
  const workers = await Promise.all([
    colony.worker({ id: "researcher-1", tasks: SWARM_TASKS, agents: { research: researcher }, concurrency: 2, ...on("researcher-1") }),
    colony.worker({ id: "researcher-2", tasks: SWARM_TASKS, agents: { research: researcher }, concurrency: 2, ...on("researcher-2") }),
    colony.worker({ id: "reviewer", tasks: SWARM_TASKS, agents: { review: reviewer }, ...on("reviewer") }),
  ]);
  const tag = Date.now().toString(36).slice(-4);
  const plannerHandle = await colony.spawn(planner, { rounds, roundMs, tag }, { board: SWARM_BOARD });
  const tasks = await colony.tasks(SWARM_TASKS);

  const settled = async () => {
    await plannerHandle.result.catch(() => {});
    const mine = (id: string) => id.endsWith(`-${tag}`);
    const busy = async () => (await tasks.list()).some((t) => mine(t.id) && (t.status === "pending" || t.status === "blocked" || t.status === "claimed"));
    // Every change to the board wakes the check; the watch ends when the colony closes.
    const since = await tasks.head();
    if (!(await busy())) return;
    for await (const _event of tasks.watch({ since })) if (!(await busy())) return;
  };
  const stop = async () => {
    await plannerHandle.terminate({ graceMs: 500 }).catch(() => {});
    await Promise.all(workers.map((w) => w.stop()));
  };
  return { planner: plannerHandle, workers, settled, stop };
}
