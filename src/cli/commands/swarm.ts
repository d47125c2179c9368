/**
 * The swarm from the shell: `nodes` (every worker with its load, running tasks and last
 * heartbeat), `nodes drain <id>` (asks a worker over the bus to finish what it holds and stop)
 * and `status` (the coordinator, queue depth per kind, running tasks, workers by status, and any
 * foreign messages skipped on the task board's log).
 */
import type { Command } from "commander";
import { BusRequestError } from "../../core/errors.ts";
import { nodeInfoChannel, nodeRequestChannel, nodeSubject } from "../../runtime/tasks/node.ts";
import { swarmNodes, swarmStatus } from "../../runtime/tasks/swarm.ts";
import { UsageError, printJson, selfCommand, storeOptions, wholeNumber, withColony, withExistingColony, type OutputFlags, type StoreFlags } from "../common.ts";
import { age, say, status, table } from "../format.ts";

interface SwarmFlags extends StoreFlags, OutputFlags {
  tasks: string;
}

function boardFlags(command: Command): Command {
  return storeOptions(command).option("--tasks <name>", "the task board", "default");
}

export function registerSwarm(program: Command): void {
  const nodesCommand = boardFlags(
    program
      .command("nodes")
      .description("list the swarm's workers: status (online, busy, draining, offline), capabilities, load, running tasks, last heartbeat")
      .option("--json", "print the nodes as JSON"),
  ).action(async (_options: unknown, command: Command) => {
    const flags = command.optsWithGlobals<SwarmFlags>();
    await withExistingColony(flags, async (colony) => {
      const { nodes: rows } = await swarmNodes(colony, flags.tasks);
      if (flags.json) return printJson(rows);
      if (rows.length === 0) return say(`no workers on task board "${flags.tasks}" in ${colony.backend.location}; start one with \`${selfCommand("worker --agents FILE", flags)}\``);
      const now = Date.now();
      const lines = rows.map((n) => [
        `${n.id}${n.coordinator ? " *" : ""}`,
        status(n.status),
        n.capabilities.join(","),
        `${n.running}/${n.concurrency}`,
        n.runningTasks.join(",") || "-",
        `${n.host}:${n.pid}`,
        `${age(now - n.heartbeatAt)} ago`,
      ]);
      say(...table([["ID", "STATUS", "CAPABILITIES", "LOAD", "RUNNING", "HOST:PID", "HEARTBEAT"], ...lines], { column: 4 }));
      if (rows.some((n) => n.coordinator)) say("* coordinator");
    });
  });

  boardFlags(
    nodesCommand
      .command("drain")
      .description("ask a worker over the bus to finish what it holds, claim nothing new and stop")
      .argument("<id>", "the worker's id (see `colony nodes`)")
      .option("--timeout-ms <ms>", "how long to wait for its answer", wholeNumber(1), 3000)
      .option("--json", "print the worker's answer as JSON"),
  ).action(async (id: string, _options: unknown, command: Command) => {
    const flags = command.optsWithGlobals<SwarmFlags & { timeoutMs: number }>();
    await withColony(flags, async (colony) => {
      const bus = await colony.bus();
      let answer;
      try {
        answer = await bus.request(nodeRequestChannel, nodeInfoChannel, nodeSubject(id), { op: "drain" }, flags.timeoutMs);
      } catch (error) {
        if (!(error instanceof BusRequestError)) throw error;
        const known = (await colony.tasks(flags.tasks).then((t) => t.workers())).find((w) => w.id === id);
        const where = colony.backend.kind === "nats" ? "" : ` (the ${colony.backend.kind} bus does not leave its process: send SIGTERM${known ? ` to pid ${known.pid}` : ""} instead)`;
        throw new UsageError(`worker ${JSON.stringify(id)} did not answer: ${error.message}${where}`, { cause: error });
      }
      if (flags.json) return printJson(answer);
      say(`${answer.id} is ${answer.status}: finishing ${answer.running.length} task(s), claiming nothing new`);
    });
  });

  boardFlags(
    program
      .command("status")
      .description("the swarm at a glance: coordinator, queue depth per kind, running tasks, workers by status")
      .option("--json", "print the status as JSON"),
  ).action(async (_options: unknown, command: Command) => {
    const flags = command.optsWithGlobals<SwarmFlags>();
    await withExistingColony(flags, async (colony) => {
      const status = await swarmStatus(colony, flags.tasks);
      const { coordinator, workers, queue, running, rejected } = status;
      if (flags.json) return printJson(status);
      say(`${colony.backend.kind} ${colony.backend.location} · task board "${flags.tasks}"`);
      say(`coordinator: ${coordinator ?? "none (no worker is running)"}`);
      say(`workers: ${Object.entries(workers).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(", ") || "none"}`);
      const kinds = Object.keys(queue).sort();
      if (kinds.length === 0) say("queue: empty");
      else say(...table([["KIND", "PENDING", "BLOCKED", "RUNNING"], ...kinds.map((k) => [k, String(queue[k]!.pending), String(queue[k]!.blocked), String(queue[k]!.running)])]));
      if (running.length > 0) say("running:", ...table(running.map((r) => [`  ${r.id}`, r.kind, r.owner ?? "?", `attempt ${r.attempt}`, `for ${age(r.forMs)}`])));
      if (rejected) say(`skipped ${rejected.count} message(s) Colony did not write; the newest:`, ...rejected.last.map((reason) => `  ${reason}`));
    });
  });
}
