/**
 * A worker as a node of the swarm: on the bus it publishes its tasks' progress, answers
 * `node.<id>` requests (what it is doing; drain), and it campaigns for the task board's
 * coordinator role, whose holder sweeps the board (lapsed leases, silent workers) on a timer, and
 * removes from the agent registry what its retention no longer keeps.
 * Messages are checked against the schemas below on both sides.
 */
import { z } from "zod";
import { describeError } from "../../core/errors.ts";
import type { LeaseStore } from "../../core/store.ts";
import type { TaskBoard } from "../../core/task-board.ts";
import type { AgentPruner } from "../agents/pruner.ts";
import { channel, subjectToken, type Bus, type BusRejection } from "../bus.ts";
import { Election, type ElectionEvent } from "../election.ts";
import { HOST } from "../processes.ts";
import type { SubAgentEvent } from "../../core/subagent-types.ts";
import type { Task, WorkerStatus } from "../../core/tasks.ts";
import { serveBoard } from "./served.ts";

const statsSchema = z.strictObject({
  published: z.number().int().nonnegative(),
  received: z.number().int().nonnegative(),
  rejected: z.strictObject({ oversized: z.number().int(), malformed: z.number().int(), schema: z.number().int(), handler: z.number().int() }),
});

/** What a running task's agent emitted, logged or spent, with the task and worker it came from. */
export const progressChannel = channel(
  "progress",
  z.strictObject({
    board: z.string(),
    task: z.string(),
    kind: z.string(),
    worker: z.string(),
    at: z.number(),
    event: z.looseObject({ type: z.enum(["emit", "log", "usage"]), at: z.number() }),
  }),
);
export type ProgressMessage = z.infer<typeof progressChannel.schema>;

export const nodeRequestChannel = channel("node.request", z.strictObject({ op: z.enum(["info", "drain"]) }));

/** A node's own account of itself, live (the registry's is as of its last heartbeat). */
export const nodeInfoChannel = channel(
  "node.info",
  z.strictObject({
    id: z.string(),
    host: z.string(),
    pid: z.number().int(),
    status: z.enum(["online", "busy", "draining", "offline", "stopped"]),
    capabilities: z.array(z.string()),
    concurrency: z.number().int(),
    running: z.array(z.string()),
    coordinator: z.boolean(),
    bus: statsSchema,
  }),
);
export type NodeInfo = z.infer<typeof nodeInfoChannel.schema>;

/** Where a task's progress is published: the board and task ids as one subject token each (see subjectToken); task "*" hears every task. */
export function progressSubject(board: string, task = "*"): string {
  return `progress.${subjectToken(board)}.${task === "*" ? "*" : subjectToken(task)}`;
}

/** Where a worker answers info and drain requests: its id as one token, so that `w.1` and `w_1` are two nodes. */
export function nodeSubject(worker: string): string {
  return `node.${subjectToken(worker)}`;
}

export function coordinatorRole(board: string): string {
  return `coordinator-${board}`;
}

export interface SwarmEvents {
  election?: (event: ElectionEvent) => void;
  rejected?: (rejection: BusRejection) => void;
}

export interface SwarmOptions extends SwarmEvents {
  leaseMs: number;
  /**
   * The agent registry's retention, run by the coordinator: on NATS no other process prunes the
   * registry, which the whole swarm's agents fill.
   */
  agents?: AgentPruner;
  /** While it leads, the coordinator serves the board's operations to thin workers on this bus (see served.ts). */
  serve?: Bus;
  /** While it serves, a task changed (see `ServeHooks.heard`). */
  heard?: (task: Task) => void;
}

/** What joinSwarm needs of a worker. */
export interface SwarmMember {
  readonly id: string;
  readonly capabilities: string[];
  readonly concurrency: number;
  readonly status: WorkerStatus;
  readonly running: number;
  readonly runningTasks: string[];
  drain(): Promise<void>;
}

export interface SwarmMembership {
  /** Whether it is the board's coordinator now. */
  readonly leading: boolean;
  /** Publishes a running task's progress; best effort (a message too large for the bus is dropped). */
  progress(task: string, kind: string, event: SubAgentEvent): void;
  /** Leaves the swarm; a coordinator frees its lease, so that another takes over at once. */
  leave(): Promise<void>;
}

/** Joins a worker to the swarm on its task board. */
export function joinSwarm(worker: SwarmMember, tasks: TaskBoard, bus: Bus, leases: LeaseStore, options: SwarmOptions): SwarmMembership {
  const info = (): NodeInfo => ({
    id: worker.id,
    host: HOST,
    pid: process.pid,
    status: worker.status === "online" && worker.running >= worker.concurrency ? "busy" : worker.status,
    capabilities: worker.capabilities,
    concurrency: worker.concurrency,
    running: worker.runningTasks,
    coordinator: election.isLeader,
    bus: bus.stats(),
  });
  const offNode = bus.serve(nodeRequestChannel, nodeInfoChannel, nodeSubject(worker.id), (request) => {
    if (request.op === "drain") void worker.drain();
    return info();
  });
  const offRejects = options.rejected ? bus.onReject(options.rejected) : () => {};

  const election = new Election(leases, coordinatorRole(tasks.name), { candidate: worker.id, leaseMs: options.leaseMs });
  const offElection = options.election ? election.on(options.election) : () => {};
  const served = options.serve;
  let stopServing: (() => Promise<void>) | undefined;
  const unserve = async () => {
    const stop = stopServing;
    stopServing = undefined;
    await stop?.();
  };
  const offServing = served
    ? election.on((event) => {
        if (event.type === "elected") {
          stopServing ??= serveBoard(tasks, served, {
            error: (error) => options.election?.({ type: "error", role: election.role, error, at: Date.now() }),
            ...(options.heard && { heard: options.heard }),
          });
        } else if (event.type === "deposed" || event.type === "stopped") void unserve();
      })
    : () => {};
  election.start();
  const sweeper = setInterval(() => {
    void (async () => {
      // Fenced: a coordinator that was paused past its lease finds out here and does nothing.
      if (election.isLeader && (await election.confirm())) await tasks.sweep();
    })().catch(() => {});
  }, Math.max(10, Math.floor(options.leaseMs / 4)));
  // Not fenced: a prune by a deposed coordinator that has not heard yet is safe, only redundant.
  const pruner = options.agents;
  const agentSweeper = pruner && setInterval(() => election.isLeader && pruner.maybePrune(), pruner.everyMs);

  return {
    get leading() {
      return election.isLeader;
    },
    progress(task, kind, event) {
      try {
        bus.publish(progressChannel, progressSubject(tasks.name, task), { board: tasks.name, task, kind, worker: worker.id, at: event.at, event: event as ProgressMessage["event"] });
      } catch (error) {
        options.rejected?.({ channel: progressChannel.name, subject: progressSubject(tasks.name, task), reason: "schema", error: describeError(error), bytes: 0, at: Date.now() });
      }
    },
    async leave() {
      clearInterval(sweeper);
      clearInterval(agentSweeper);
      offRejects();
      // Thin workers find nobody serving from here on, and get what they asked for already.
      await Promise.all([offNode(), unserve()]);
      await election.stop();
      offServing();
      offElection();
    },
  };
}
