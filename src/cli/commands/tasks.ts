/**
 * The task board from the shell: `tasks` (the board as a kanban board, or live with --watch),
 * `submit`, `task <id>`, `cancel <id>` and `workers`. Every command takes --tasks NAME for the
 * task board (default "default") and --db/--memory for the store.
 */
import { InvalidArgumentError, type Command } from "commander";
import { NotFoundError } from "../../core/errors.ts";
import type { TaskBoard } from "../../core/task-board.ts";
import { FINAL_STATUSES, TASK_STATUSES, type Route, type Task, type TaskEvent, type TaskStatus } from "../../core/tasks.ts";
import { UsageError, printJson, selfCommand, wholeNumber, withColony, withExistingColony, type OutputFlags, type StoreFlags, storeOptions } from "../common.ts";
import { progressChannel, progressSubject, type ProgressMessage } from "../../runtime/tasks/node.ts";
import { heldBy } from "../../runtime/tasks/swarm.ts";
import { linesOf, progressText, say, taskBoardLines, taskCounts, taskEventLine, taskLines, taskProgress, warn, workerRows } from "../format.ts";

interface BoardFlags extends StoreFlags, OutputFlags {
  tasks: string;
}

interface ListFlags extends BoardFlags {
  status?: TaskStatus;
  kind?: string;
  parent?: string;
  watch?: boolean;
  limit: number;
}

interface SubmitFlags extends BoardFlags {
  input?: string;
  dependsOn?: string[];
  parent?: string;
  priority?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  idempotencyKey?: string;
  capability?: string;
  route?: string;
  wait?: boolean;
}

/** How often a long-running command reads the board, so that lapsed leases and silent workers are noticed. */
const REAP_EVERY_MS = 1000;

const list = (value: string, previous: string[] = []) => [...previous, ...value.split(",").map((s) => s.trim()).filter(Boolean)];

function parseStatus(value: string): TaskStatus {
  if (!(TASK_STATUSES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${TASK_STATUSES.join(", ")}, got ${JSON.stringify(value)}`);
  }
  return value as TaskStatus;
}

function integer(value: string): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError("expected a whole number (negative is fine)");
  return n;
}

/** `--input`: JSON, or a one-line usage error that names the flag and says what JSON.parse said. */
function parseInput(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const why = error instanceof Error ? error.message.replace(/\s+/g, " ") : String(error);
    throw new UsageError(`--input is not valid JSON (${why}); quote it for the shell, e.g. --input '{"q":"ants"}'`);
  }
}

function parseRoute(text: string | undefined): Route | undefined {
  if (text === undefined || text === "any") return text === undefined ? undefined : { mode: "any" };
  if (text === "broadcast") return { mode: "broadcast" };
  const direct = /^direct:(.+)$/.exec(text);
  if (direct) return { mode: "direct", worker: direct[1]! };
  throw new UsageError(`--route ${JSON.stringify(text)}: expected any, direct:WORKER (a worker id from \`colony workers\`) or broadcast`);
}

/** Adds --tasks, and --db/--memory. */
function boardOptions(command: Command): Command {
  return storeOptions(command).option("--tasks <name>", "the task board", "default");
}

/** `colony CMD ARGS --db F --tasks N`, for hints; the store and board flags go after the command. */
function again(flags: BoardFlags, command: string): string {
  return `${selfCommand(command, flags)}${flags.tasks === "default" ? "" : ` --tasks ${flags.tasks}`}`;
}

async function mustGet(board: TaskBoard, id: string): Promise<Task> {
  const task = await board.get(id);
  if (!task) throw new NotFoundError(`task ${JSON.stringify(id)} on task board "${board.name}"`);
  return task;
}

/**
 * A signal for the long-running commands: aborted by SIGINT or SIGTERM, or by `dispose` when the
 * command is done, which also removes the handlers and so stops whatever listens to it.
 */
function interrupted(): { signal: AbortSignal; dispose: () => void; exitCode: () => number } {
  const controller = new AbortController();
  let code = 0;
  const stop = (signal: NodeJS.Signals) => {
    code = signal === "SIGTERM" ? 143 : 130;
    controller.abort();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return {
    signal: controller.signal,
    /** 128 + the signal's number, as a shell reports a command a signal ended. */
    exitCode: () => code,
    dispose: () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      controller.abort();
    },
  };
}

/**
 * Reads the board now and then until `signal` aborts: reads reap, so a lease that lapsed or a
 * worker that went silent turns into events the watch sees, even when no worker is claiming.
 */
function reapWhile(board: TaskBoard, signal: AbortSignal): void {
  const timer = setInterval(() => void board.workers().catch(() => {}), REAP_EVERY_MS);
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}

/**
 * The board's changes from now on, together with a snapshot taken after the watch began: an
 * event newer than the snapshot (by the task's generation) is new, an older one is already in it.
 * The watch reads its starting position when first asked for an event, before the snapshot, so
 * nothing that happens in between is lost.
 */
async function watchFrom<T>(board: TaskBoard, signal: AbortSignal, taskId: string | undefined, snapshot: () => Promise<T>): Promise<{ snapshot: T; events: AsyncGenerator<TaskEvent> }> {
  const events = board.watch({ signal, taskId });
  const first = events.next();
  // Never awaited if the caller stops before iterating; a failure then must not go unhandled.
  first.catch(() => {});
  const taken = await snapshot();
  async function* all(): AsyncGenerator<TaskEvent> {
    try {
      for (let next = await first; !next.done; next = await events.next()) yield next.value;
    } finally {
      await events.return(undefined);
    }
  }
  return { snapshot: taken, events: all() };
}

async function listCommand(flags: ListFlags): Promise<void> {
  await withExistingColony(flags, async (colony) => {
    const board = await colony.tasks(flags.tasks);
    const filter = { kind: flags.kind, parentId: flags.parent };
    const statuses = flags.status === undefined ? TASK_STATUSES : [flags.status];
    const where = [flags.kind && `kind ${flags.kind}`, flags.parent && `subtasks of ${flags.parent}`].filter(Boolean).join(", ");
    const what = [flags.status, where].filter(Boolean).join(", ");
    const show = (tasks: Task[]) => {
      const shown = tasks.filter((t) => statuses.includes(t.status));
      const head = `task board "${board.name}" in ${colony.backend.location}${what ? ` (${what})` : ""}`;
      if (shown.length === 0) return say(`${head} has no tasks`);
      say(`${head}: ${shown.length} task${shown.length === 1 ? "" : "s"}`, ...taskBoardLines(shown, { statuses, limit: flags.limit }));
    };

    if (!flags.watch) {
      const tasks = await board.list({ ...filter, status: flags.status });
      if (flags.json) return printJson(tasks);
      return show(tasks);
    }

    const { signal, dispose } = interrupted();
    try {
      const { snapshot, events } = await watchFrom(board, signal, undefined, () => board.list(filter));
      const known = new Map(snapshot.map((t) => [t.id, t]));
      if (!flags.json) show(snapshot);
      warn(`watching task board "${board.name}"${where ? ` (${where})` : ""}; Ctrl-C to stop`);
      reapWhile(board, signal);
      for await (const event of events) {
        const t = event.task;
        if ((flags.kind !== undefined && t.kind !== flags.kind) || (flags.parent !== undefined && t.parentId !== flags.parent)) continue;
        const before = known.get(t.id);
        if (before && before.generation >= t.generation) continue;
        known.set(t.id, t);
        if (flags.status !== undefined && t.status !== flags.status && before?.status !== flags.status) continue;
        if (flags.json) {
          console.log(JSON.stringify(event));
        } else {
          say(taskEventLine(event));
          warn(`  ${taskCounts(known.values())}`);
        }
      }
    } finally {
      dispose();
    }
  });
}

async function submitCommand(kind: string, flags: SubmitFlags): Promise<void> {
  const input = parseInput(flags.input);
  const route = parseRoute(flags.route);
  await withColony(flags, async (colony) => {
    const board = await colony.tasks(flags.tasks);
    const asked = Date.now();
    // What its agent emits, logs and spends, as the worker running it publishes it on the bus;
    // heard from before the submit, so that nothing it says early is missed.
    let taskId: string | undefined = undefined;
    const early: ProgressMessage[] = [];
    const showProgress = (message: ProgressMessage) => warn(`  ${((Date.now() - asked) / 1000).toFixed(1)} s  ${message.task} ${progressText(message.event)}`);
    const stopProgress = flags.wait
      ? (await colony.bus()).subscribe(progressChannel, progressSubject(board.name), (message) => {
          if (taskId === undefined) early.push(message);
          else if (message.task === taskId) showProgress(message);
        })
      : () => {};
    const task = await board.submit({
      kind,
      input,
      dependsOn: flags.dependsOn,
      parentId: flags.parent,
      priority: flags.priority,
      maxAttempts: flags.maxAttempts,
      timeoutMs: flags.timeoutMs,
      idempotencyKey: flags.idempotencyKey,
      capability: flags.capability,
      route,
    });
    if (flags.idempotencyKey !== undefined && task.createdAt < asked) {
      warn(`colony: ${task.id} was already submitted with idempotency key ${JSON.stringify(flags.idempotencyKey)}; this is that task`);
    }
    if (!FINAL_STATUSES.has(task.status) && task.route.mode === "any") {
      const workers = await board.workers();
      if (!workers.some((w) => w.status === "online" && !w.local && w.capabilities.includes(task.capability))) {
        warn(
          `colony: hint: no live worker offers ${JSON.stringify(task.capability)}; the task waits for one (start one with \`${again(flags, `worker --agents FILE --capability ${task.capability}`)}\`)`,
        );
      }
    }
    taskId = task.id;
    if (!flags.wait) {
      if (flags.json) return printJson(task);
      return say(`${task.id} ${task.status}${task.reason ? ` (${task.reason})` : ""}`);
    }

    const started = Date.now();
    const { signal, dispose, exitCode } = interrupted();
    let current = task;
    for (const message of early.splice(0)) if (message.task === task.id) showProgress(message);
    try {
      const { snapshot, events } = await watchFrom(board, signal, task.id, () => mustGet(board, task.id));
      const progress = (next: Task) => {
        if (next.generation <= current.generation) return;
        if (next.status !== current.status || next.owner !== current.owner) {
          warn(`  ${((Date.now() - started) / 1000).toFixed(1)} s  ${next.id} ${current.status} → ${taskProgress(next)}`);
        }
        current = next;
      };
      warn(`waiting for ${task.id} (${task.kind}, ${taskProgress(task)}); Ctrl-C stops waiting, not the task`);
      progress(snapshot);
      if (!FINAL_STATUSES.has(current.status)) {
        reapWhile(board, signal);
        for await (const event of events) {
          progress(event.task);
          if (FINAL_STATUSES.has(current.status)) break;
        }
      }
    } finally {
      stopProgress();
      dispose();
    }

    if (!FINAL_STATUSES.has(current.status)) {
      warn(`colony: stopped waiting; ${current.id} is still ${current.status} on the board (\`${again(flags, `cancel ${current.id}`)}\` cancels it)`);
      process.exitCode = exitCode() || 130;
      return;
    }
    if (current.status !== "succeeded") process.exitCode = 1;
    if (flags.json) return printJson(current);
    const took = `${((Date.now() - started) / 1000).toFixed(1)} s, ${current.attempts + (current.status === "succeeded" ? 1 : 0)} attempt(s)`;
    if (current.status === "succeeded") {
      say(`${current.id} succeeded (${took})`, ...linesOf(JSON.stringify(current.result ?? null, null, 2)));
      return;
    }
    say(`${current.id} ${current.status} (${took}): ${current.reason ?? current.error ?? current.status}`);
    for (const f of current.failures) say(`  attempt ${f.attempt}${f.worker ? ` on ${f.worker}` : ""}: ${f.kind === "lease" ? "lease lapsed: " : ""}${f.error}`);
  });
}

/**
 * What a cancel of `id` changed, told apart from what other processes changed meanwhile: the
 * subtasks (by parent) it cancelled, and the tasks that failed because they depend on one of
 * those, or on a task that failed so (a dependent fails from blocked, a worker's failure from claimed).
 */
function consequences(id: string, before: Map<string, Task>, after: Task[]): { cancelled: Task[]; failed: Task[] } {
  const subtree = new Set([id]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const t of after) {
      if (t.parentId === undefined || !subtree.has(t.parentId) || subtree.has(t.id)) continue;
      subtree.add(t.id);
      grew = true;
    }
  }
  const cancelled = after.filter((t) => subtree.has(t.id) && t.status === "cancelled" && before.get(t.id)?.status !== "cancelled");
  const ended = new Set(cancelled.map((t) => t.id));
  const failed: Task[] = [];
  for (let grew = true; grew; ) {
    grew = false;
    for (const t of after) {
      if (ended.has(t.id) || t.status !== "failed" || before.get(t.id)?.status !== "blocked" || !t.dependsOn.some((d) => ended.has(d))) continue;
      ended.add(t.id);
      failed.push(t);
      grew = true;
    }
  }
  return { cancelled, failed };
}

export function registerTasks(program: Command): void {
  boardOptions(
    program
      .command("tasks")
      .description("show the task board as a kanban board (a section per status), or follow its changes with --watch"),
  )
    .option("--status <status>", `only tasks in this status (${TASK_STATUSES.join(", ")})`, parseStatus)
    .option("--kind <kind>", "only tasks of this kind")
    .option("--parent <id>", "only the subtasks of this task")
    .option("--limit <n>", "show at most N tasks per status, 0 for all (text only)", wholeNumber(0), 20)
    .option("--watch", "print the board, then every state change as it happens, until Ctrl-C")
    .option("--json", "print the tasks as JSON (with --watch: one event per line, changes only)")
    .action(async (_options: unknown, command: Command) => listCommand(command.optsWithGlobals<ListFlags>()));

  boardOptions(
    program
      .command("submit")
      .description("submit a task for workers to run; with --wait, wait for it to end and print its outcome"),
  )
    .argument("<kind>", "the task's kind: the agent that runs it (see `colony worker --agents`)")
    .option("--input <json>", "the task's input, as JSON")
    .option("--depends-on <ids>", "comma-separated task ids that must succeed first (repeatable)", list)
    .option("--parent <id>", "make it a subtask of this task (cancelled with it)")
    .option("--priority <n>", "higher runs first (default 0)", integer)
    .option("--max-attempts <n>", "attempts before it is dead (default 3)", wholeNumber(1))
    .option("--timeout-ms <ms>", "how long one attempt may run", wholeNumber(1))
    .option("--idempotency-key <key>", "a second submit with the same key returns the first task")
    .option("--capability <name>", "what a worker must offer to claim it (default the kind)")
    .option("--route <route>", "any (the least loaded worker), direct:WORKER, or broadcast (one copy per live worker)")
    .option("--wait", "wait until the task ends, showing its progress (and, on NATS, what its agent emits) on stderr; exit 1 unless it succeeded")
    .option("--json", "print the task as JSON")
    .action(async (kind: string, _options: unknown, command: Command) => submitCommand(kind, command.optsWithGlobals<SubmitFlags>()));

  boardOptions(program.command("task").description("show one task in full: input, result, reason, dependencies, failures"))
    .argument("<id>", "the task's id (see `colony tasks`)")
    .option("--json", "print the task as JSON")
    .action(async (id: string, _options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<BoardFlags>();
      await withExistingColony(flags, async (colony) => {
        const board = await colony.tasks(flags.tasks);
        const task = await mustGet(board, id);
        if (flags.json) return printJson(task);
        const subtasks = await board.list({ parentId: id });
        say(...taskLines(task, { subtasks }));
      });
    });

  boardOptions(program.command("cancel").description("cancel a task and its subtasks; tasks that depend on them fail"))
    .argument("<id>", "the task's id (see `colony tasks`)")
    .option("--json", "print { task, cancelled, failed } as JSON")
    .action(async (id: string, _options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<BoardFlags>();
      await withExistingColony(flags, async (colony) => {
        const board = await colony.tasks(flags.tasks);
        const root = await mustGet(board, id);
        const before = new Map((await board.list()).map((t) => [t.id, t]));
        const task = await board.cancel(id);
        const after = await board.list();
        const { cancelled, failed } = consequences(id, before, after);
        if (cancelled.length === 0 && failed.length === 0 && FINAL_STATUSES.has(root.status)) {
          throw new UsageError(`task ${id} (${root.kind}) has already ended: ${root.status}${root.reason && root.reason !== root.status ? ` (${root.reason})` : ""}; nothing to cancel`);
        }
        if (flags.json) return printJson({ task, cancelled, failed });
        for (const t of cancelled) {
          const was = before.get(t.id)!;
          const holder = was.status === "claimed" ? ` by ${was.owner ?? "?"}, which stops it at its next heartbeat` : "";
          say(`cancelled ${t.id} (${t.kind}), was ${was.status}${holder}${t.id === id ? "" : `: ${t.reason ?? "subtask"}`}`);
        }
        for (const t of failed) say(`failed ${t.id} (${t.kind}): ${t.reason ?? "a dependency was cancelled"}`);
      });
    });

  boardOptions(program.command("workers").description("list the workers serving the task board, with their load and last heartbeat"))
    .option("--prune", "first forget the workers that no longer serve (stopped, offline), as the board does an hour after their last heartbeat")
    .option("--json", "print the workers as JSON")
    .action(async (_options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<BoardFlags & { prune?: boolean }>();
      await withExistingColony(flags, async (colony) => {
        const board = await colony.tasks(flags.tasks);
        const forgotten = flags.prune ? await board.forgetGoneWorkers() : [];
        if (forgotten.length > 0 && !flags.json) say(`forgot ${forgotten.length} worker(s) that no longer serve: ${forgotten.join(", ")}`);
        // Load as the board holds it now, as nodes and status count it: a record's own count is its last heartbeat's.
        const [registered, claimed] = await Promise.all([board.workers(), board.list({ status: "claimed" })]);
        const held = heldBy(claimed);
        const workers = registered.map((w) => ({ ...w, running: held.get(w.id)?.length ?? 0 }));
        if (flags.json) return printJson(workers);
        if (workers.length === 0) {
          return say(`no workers on task board "${board.name}" in ${colony.backend.location}; start one with \`${again(flags, "worker --agents FILE")}\``);
        }
        say(...workerRows(workers));
      });
    });
}
