import { Option, type Command } from "commander";
import type { Isolation } from "../../core/records.ts";
import { DEFAULT_WORKER_ISOLATION, containUncaughtErrors, type WorkerEvent } from "../../runtime/tasks/worker.ts";
import { UsageError, storeOptions, wholeNumber, withColony, type OutputFlags, type StoreFlags } from "../common.ts";
import { visible, workerEventLine } from "../format.ts";
import { loadAgents } from "../load.ts";

interface WorkerFlags extends StoreFlags, OutputFlags {
  agents: string;
  capability?: string[];
  concurrency: number;
  isolation: Isolation;
  leaseMs: number;
  tasks: string;
  id?: string;
}

const list = (value: string, previous: string[] = []) => [...previous, ...value.split(",").map((s) => s.trim()).filter(Boolean)];

export function registerWorker(program: Command): void {
  storeOptions(
    program
      .command("worker")
      .description("claim tasks for some capabilities and run them with the agents of a module, until SIGTERM (which drains)")
      .requiredOption("--agents <file>", "a module exporting one agent per task kind (export const research = ...), or a .yaml manifest (its worker.kinds, else every agent under its name)")
      .option("--capability <kinds>", "comma-separated capabilities to claim; it runs only the agents of these names (default: every agent the module or manifest offers)", list)
      .option("--concurrency <n>", "tasks run at once", wholeNumber(1), 1)
      .addOption(new Option("--isolation <mode>", "where each task's agent runs: in the worker, or in a thread or process of its own").choices(["inline", "thread", "process"]).default(DEFAULT_WORKER_ISOLATION))
      .option("--lease-ms <ms>", "lease per claim, renewed while the task runs", wholeNumber(100), 30_000)
      .option("--tasks <name>", "the task board", "default")
      .option("--id <id>", "the worker's id (default host-pid-random)")
      .option("--json", "print each event as a JSON line"),
  ).action(async (flags: WorkerFlags) => {
    const agents = await loadAgents(flags.agents, flags.isolation);
    const capabilities = flags.capability ?? Object.keys(agents);
    const missing = capabilities.filter((c) => !(c in agents));
    if (missing.length > 0) {
      throw new UsageError(`--capability ${missing.join(",")}: ${flags.agents} exports no agent under that name (it exports ${Object.keys(agents).join(", ")})`);
    }
    // Only what it offers: a task of another kind that comes by an offered capability is refused, not run.
    const offered = Object.fromEntries(capabilities.map((c) => [c, agents[c]!]));
    const print = (event: WorkerEvent) => process.stdout.write(flags.json ? `${JSON.stringify(event)}\n` : `${visible(workerEventLine(event))}\n`);
    // From before the first claim: an inline agent's stray error fails its task instead of killing
    // the worker and stranding every task it holds.
    const uncontain = containUncaughtErrors(print);
    try {
      await withColony(flags, async (colony) => {
        const worker = await colony.worker({
          agents: offered,
          capabilities,
          concurrency: flags.concurrency,
          isolation: flags.isolation,
          leaseMs: flags.leaseMs,
          tasks: flags.tasks,
          id: flags.id,
          // Before it is online, only the wait for its id (if any) has anything to say.
          on: (event) => event.type === "waiting" && print(event),
        });
        const drain = () => void worker.drain();
        process.once("SIGTERM", drain);
        process.once("SIGINT", drain);
        // Online once SIGTERM drains it: whoever stops it on seeing this line must not kill it mid-task.
        print({ type: "online", worker: worker.id, capabilities, concurrency: worker.concurrency, at: Date.now() });
        worker.on(print);
        try {
          await worker.closed;
        } finally {
          process.off("SIGTERM", drain);
          process.off("SIGINT", drain);
        }
      });
    } finally {
      uncontain();
    }
  });
}
