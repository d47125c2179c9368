/**
 * Text shapes shared by the commands. Every line is built here so that `run`, `runs`, `bench`
 * and `demo` print one language, and human-readable output reaches the terminal through `say`
 * and `warn`, which show control characters rather than let the terminal obey them (`--json`
 * output is the data, exactly, and does not pass through them).
 */
import { styleText } from "node:util";
import type { Entry, LogRecord } from "../core/board.ts";
import type { Tags } from "../core/json.ts";
import { describeCall, type ModelCallRecord } from "../models/call-record.ts";
import type { FiredRecord, RunInfo, StepRecord } from "../core/records.ts";
import { TASK_STATUSES, attemptOf, type Route, type Task, type TaskEvent, type TaskStatus, type WorkerInfo } from "../core/tasks.ts";
import type { WorkerEvent } from "../runtime/tasks/worker.ts";

// The characters a terminal acts on instead of showing, or that reorder what it shows: C0 controls,
// DEL, C1 controls (U+009B alone starts a control sequence on many terminals), the line and
// paragraph separators, and the bidirectional formatting characters (marks, embeddings, overrides,
// isolates). Names, tags, kinds and error messages are data from anyone who can write to the store.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SHORT: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * `text` with each of those characters written as a visible escape (`\x1b`, `\u202e`, `\n`); all
 * else as is. Escaping twice changes nothing more, as an escape is printable ASCII.
 */
export function visible(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return SHORT[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`);
  });
}

/** Prints lines for a human on stdout: one argument, one line, made `visible` (a newline inside one is shown as `\n`, not obeyed). */
export function say(...lines: string[]): void {
  for (const line of lines) console.log(coloured(visible(line), process.stdout));
}

/** `say` on stderr: hints, progress, waiting. */
export function warn(...lines: string[]): void {
  for (const line of lines) console.error(coloured(visible(line), process.stderr));
}

type Style = "green" | "red" | "yellow" | "cyan" | "dim";
const STYLES: readonly Style[] = ["green", "red", "yellow", "cyan", "dim"];
/** Private-use characters that carry a painted span through `visible` to `say`, which colours it or drops them. */
const PAINTED = /\uE000(\d)([^\uE000\uE001]*)\uE001/g;

/**
 * `text` to be shown in `style` where the output is coloured: a terminal, unless NO_COLOR is set
 * or `--no-color` given (FORCE_COLOR forces it). Only Colony's own words are painted (statuses,
 * stop reasons), and only in these colours: what users write stays plain.
 */
export function paint(style: Style, text: string): string {
  return `\uE000${STYLES.indexOf(style)}${text}\uE001`;
}

function coloured(line: string, stream: NodeJS.WriteStream): string {
  if (!line.includes("\uE000")) return line;
  const on = styleText("red", "x", { validateStream: true, stream }) !== "x";
  return line.replace(PAINTED, (_, style: string, text: string) => (on ? styleText(STYLES[Number(style)]!, text, { validateStream: false }) : text));
}

/** The colour of a status or stop reason: done well green, gone wrong red, at work yellow, waiting cyan, over dim. */
const STATUS_STYLES: Readonly<Record<string, Style>> = {
  succeeded: "green", goal: "green", online: "green", quiescence: "green", approved: "green",
  failed: "red", dead: "red", error: "red", offline: "red", deadlock: "red", budget: "red", max_steps: "red", aborted: "red", denied: "red",
  claimed: "yellow", running: "yellow", busy: "yellow", draining: "yellow",
  pending: "cyan", blocked: "cyan", waiting: "cyan", created: "cyan", awaiting_approval: "cyan",
  cancelled: "dim", stopped: "dim", terminated: "dim", abandoned: "dim",
};

/** A status word, painted by what it means. */
export function status(word: string, shown = word): string {
  const style = STATUS_STYLES[word];
  return style === undefined ? shown : paint(style, shown);
}

/** How wide `text` shows: without the marks of a painted span. */
function shownLength(text: string): number {
  return text.replace(/\uE000\d|\uE001/g, "").length;
}

/**
 * A line on a terminal's stderr that says what is under way and for how long (`step 3 … 1.4 s`),
 * redrawn every 100 ms until `stop` clears it; nothing where stderr is not a terminal.
 */
export function liveLine(stream: NodeJS.WriteStream = process.stderr): { start(text: string): void; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (timer === undefined) return;
    clearInterval(timer);
    timer = undefined;
    stream.write("\r\x1b[K");
  };
  return {
    start(text) {
      if (!stream.isTTY) return;
      stop();
      const since = performance.now();
      const draw = () => stream.write(`\r\x1b[K${coloured(visible(`${text} … ${((performance.now() - since) / 1000).toFixed(1)} s`), stream)}`);
      draw();
      timer = setInterval(draw, 100);
      timer.unref();
    },
    stop,
  };
}

/** Text meant to span lines (a result, pretty JSON) as its lines, for `say`. */
export function linesOf(text: string): string[] {
  return text.split(/\r?\n/);
}

export function preview(value: unknown, width = 72): string {
  const text = JSON.stringify(value) ?? "null";
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

/**
 * ` tags={status=approved confidence=0.9 final}`: a tag whose value is `true` by its name alone,
 * a plain word as it is, anything else as JSON; nothing for no tags.
 */
function tagList(tags: Tags): string {
  const shown = Object.entries(tags).map(([name, value]) => {
    if (value === true) return name;
    const text = typeof value === "string" && /^[^\s=}"]+$/.test(value) ? value : JSON.stringify(value);
    return `${name}=${text}`;
  });
  return shown.length > 0 ? ` tags={${shown.join(" ")}}` : "";
}

export function entryLine(entry: Entry): string {
  return `[${entry.key}] v${entry.version} by ${entry.author}${tagList(entry.tags)}  ${preview(entry.value)}`;
}

export function recordLine(record: LogRecord): string {
  const at = new Date(record.at).toISOString();
  const what = record.op === "delete" ? "deleted" : preview(record.value, 60);
  return `#${record.seq} ${at} ${record.op} [${record.key}] v${record.version} by ${record.author}${tagList(record.tags)}  ${what}`;
}

function firedLine(f: FiredRecord): string {
  const wrote = f.written.length > 0 ? `wrote ${f.written.join(", ")}` : "wrote nothing";
  const usage = f.tokens > 0 || f.costUsd > 0 ? `, ${f.tokens} tok${f.costUsd > 0 ? `, ${usd(f.costUsd)}` : ""}` : "";
  const error = f.error === undefined ? "" : f.conflict ? `  conflict: ${f.error}` : `  error: ${f.error}`;
  return `${f.agent}: ${wrote} (${f.ms} ms${usage})${error}`;
}

export function stepLines(step: StepRecord): string[] {
  const head = `step ${step.index}`;
  if (step.fired.length === 0) return [`${head}  (nothing fired)`];
  const pad = " ".repeat(head.length);
  const lines = step.fired.map((f, i) => `${i === 0 ? head : pad}  ${firedLine(f)}`);
  for (const f of step.fired) for (const log of f.logs ?? []) lines.push(`${pad}    ${f.agent} · ${log}`);
  return lines;
}

export function usd(cost: number): string {
  return `$${cost.toFixed(cost > 0 && cost < 0.01 ? 4 : 2)}`;
}

export function runSummary(run: RunInfo): string {
  const reason = run.stopReason ?? run.status;
  const error = run.error ? ` (${run.error})` : "";
  return `stopped: ${status(reason)}${error} · ${run.steps} steps · ${run.totalTokens} tokens · ${usd(run.totalCostUsd)} · ${run.durationMs ?? "?"} ms`;
}

/** Columns padded to their widest cell, each cell made `visible` first so that the padding is counted on what shows. */
export function table(rows: string[][], fit?: { column: number; width?: number }): string[] {
  const cells = rows.map((r) => r.map(visible));
  const widths = cells[0]?.map((_, c) => Math.max(...cells.map((r) => shownLength(r[c] ?? "")))) ?? [];
  if (fit !== undefined) {
    // The one column that gives way, to no less than 8, so that the lines fit `width` (80 by default).
    const over = widths.reduce((sum, w) => sum + w, 0) + 2 * (widths.length - 1) - (fit.width ?? 80);
    const room = Math.max(8, widths[fit.column]! - Math.max(0, over));
    for (const r of cells.slice(1)) if (shownLength(r[fit.column]!) > room) r[fit.column] = `${r[fit.column]!.slice(0, room - 1)}…`;
    widths[fit.column] = Math.min(widths[fit.column]!, Math.max(room, shownLength(cells[0]![fit.column]!)));
  }
  return cells.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell + " ".repeat(Math.max(0, widths[c]! - shownLength(cell))))).join("  "));
}

/** A running agent's emit, log or usage, in a few words. */
export function progressText(event: { type: string; [field: string]: unknown }): string {
  if (event.type === "emit" && event.name === "model.call") return describeCall(event.data as ModelCallRecord);
  if (event.type === "emit") return `emitted ${String(event.name)}: ${JSON.stringify(event.data) ?? ""}`.slice(0, 200);
  if (event.type === "log") return `log: ${String(event.message)}`.slice(0, 200);
  if (event.type === "usage") return `used ${String(event.tokens)} tokens, $${Number(event.costUsd).toFixed(4)}`;
  return event.type;
}

export function workerEventLine(event: WorkerEvent): string {
  const at = new Date(event.at).toISOString().slice(11, 23);
  switch (event.type) {
    case "online":
      return `${at} worker ${event.worker} online: ${event.capabilities.join(", ")} × ${event.concurrency}`;
    case "waiting":
      return `${at} ${event.reason} (its record lapses at ${new Date(event.until).toISOString().slice(11, 23)})`;
    case "claimed":
      return `${at} claimed ${event.task} (${event.kind}, attempt ${event.attempt})`;
    case "succeeded":
      return `${at} succeeded ${event.task} (${event.kind}) in ${event.ms} ms`;
    case "failed":
      return `${at} failed ${event.task} (${event.kind}) → ${event.status}: ${event.error}`;
    case "stale":
      return `${at} dropped ${event.task} (${event.kind}): ${event.error}`;
    case "coordinator":
      return event.leading ? `${at} coordinator of this task board (term ${event.term})` : `${at} no longer coordinator (term ${event.term}, ${event.reason ?? "deposed"})`;
    case "rejected":
      return `${at} rejected a message on ${event.subject} (${event.reason}): ${event.error.split("\n")[0]}`;
    case "progress":
      return `${at} ${event.task} ${progressText(event.event)}`;
    case "error":
      return `${at} error: ${event.error}`;
    case "draining":
      return `${at} draining: finishing ${event.running} task(s), claiming nothing new`;
    case "stopped":
      return `${at} stopped`;
  }
}

// ---------------------------------------------------------------------------------------------
// Task boards: `colony tasks`, `task`, `submit`, `cancel` and `workers`

/** How long ago, shortly: 850ms, 42s, 7m, 3h, 2d. */
export function age(ms: number): string {
  const t = Math.max(0, ms);
  if (t < 1000) return `${Math.round(t)}ms`;
  if (t < 60_000) return `${Math.floor(t / 1000)}s`;
  if (t < 3_600_000) return `${Math.floor(t / 60_000)}m`;
  if (t < 172_800_000) return `${Math.floor(t / 3_600_000)}h`;
  return `${Math.floor(t / 86_400_000)}d`;
}

/** The time of day of `at`, to the millisecond, for event lines. */
function clock(at: number): string {
  return new Date(at).toISOString().slice(11, 23);
}

function routeText(route: Route): string {
  return route.mode === "direct" ? `direct:${route.worker}` : route.mode;
}

/** Who has or will have the task: the owner of a claim, `→worker` for a reservation, else `-`. */
export function taskWorker(task: Task): string {
  if (task.owner !== undefined) return task.owner;
  if (task.assignee !== undefined) return `→${task.assignee}`;
  return "-";
}

/** The one thing worth seeing about a task in its state: its input, why it waits, its result, why it ended. */
export function taskDetail(task: Task, width = 60): string {
  switch (task.status) {
    case "succeeded":
      return `result ${preview(task.result ?? null, width)}`;
    case "failed":
    case "dead":
    case "cancelled":
      return task.reason ?? task.error ?? task.status;
    case "blocked":
      return task.reason ?? "blocked";
    case "pending":
      return task.reason ?? `input ${preview(task.input ?? null, width)}`;
    case "claimed":
      return `input ${preview(task.input ?? null, width)}`;
  }
}

/** Tasks per status, every status named: `pending 2 · blocked 0 · claimed 1 · …`. */
export function taskCounts(tasks: Iterable<Pick<Task, "status">>): string {
  const counts = new Map<TaskStatus, number>(TASK_STATUSES.map((s) => [s, 0]));
  let total = 0;
  for (const task of tasks) {
    counts.set(task.status, (counts.get(task.status) ?? 0) + 1);
    total++;
  }
  return `${total} task${total === 1 ? "" : "s"}: ${TASK_STATUSES.map((s) => `${s} ${counts.get(s)}`).join(" · ")}`;
}

/**
 * The board as a kanban board: one section per status (in `statuses`' order), headed with its
 * count, one aligned line per task. Pending tasks are listed in claim order (priority first).
 * At most `limit` tasks per section (0 = all); the rest are counted.
 */
export function taskBoardLines(tasks: Task[], options: { statuses?: readonly TaskStatus[]; limit?: number; now?: number } = {}): string[] {
  const statuses = options.statuses ?? TASK_STATUSES;
  const limit = options.limit ?? 0;
  const now = options.now ?? Date.now();
  const sections = statuses.map((status) => {
    const all = tasks.filter((t) => t.status === status);
    if (status === "pending") all.sort((a, b) => b.priority - a.priority);
    const shown = limit > 0 ? all.slice(0, limit) : all;
    return { status, total: all.length, shown };
  });
  const header = ["ID", "KIND", "PRIO", "TRIES", "WORKER", "AGE", "DETAIL"];
  const rows = sections.flatMap((s) =>
    s.shown.map((t) => [t.id, t.kind, String(t.priority), `${attemptOf(t)}/${t.maxAttempts}`, taskWorker(t), age(now - t.createdAt), taskDetail(t)]),
  );
  const [head, ...lines] = table([header, ...rows], { column: 6, width: 78 });
  const out = [`  ${head}`];
  let next = 0;
  for (const s of sections) {
    out.push(`${status(s.status, s.status.toUpperCase())} (${s.total})`);
    for (let i = 0; i < s.shown.length; i++) out.push(`  ${lines[next++]}`);
    if (s.shown.length < s.total) out.push(`  … and ${s.total - s.shown.length} more (--limit 0 shows all)`);
  }
  return out;
}

/** One state change: `12:00:01.250 t-3 claimed (research) by w-1, attempt 1  input {...}`. */
export function taskEventLine(event: TaskEvent): string {
  const t = event.task;
  const moved = event.type === t.status ? "" : ` → ${t.status}`;
  const who = t.status === "claimed" ? ` by ${t.owner ?? "?"}, attempt ${attemptOf(t)} of ${t.maxAttempts}` : t.status === "pending" && t.assignee ? ` for ${t.assignee}` : "";
  return `${clock(event.at)} ${t.id} ${event.type}${moved} (${t.kind})${who}  ${taskDetail(t)}`;
}

/** A status change seen while waiting on one task: `claimed by w-1 (attempt 1 of 3)`. */
export function taskProgress(task: Task): string {
  switch (task.status) {
    case "claimed":
      return `claimed by ${task.owner ?? "?"} (attempt ${attemptOf(task)} of ${task.maxAttempts})`;
    case "pending":
      return `pending${task.assignee ? ` for ${task.assignee}` : ""}${task.reason ? `: ${task.reason}` : ""}`;
    case "succeeded":
      return "succeeded";
    default:
      return `${task.status}${task.reason ? `: ${task.reason}` : ""}`;
  }
}

/** Pretty JSON as lines: its newlines are the only ones, since JSON.stringify escapes those inside strings. */
function json(value: unknown): string[] {
  return (JSON.stringify(value, null, 2) ?? "undefined").split("\n");
}

/** One task in full, for `colony task <id>`. */
export function taskLines(task: Task, options: { subtasks?: Task[]; now?: number } = {}): string[] {
  const now = options.now ?? Date.now();
  const when = (at: number) => `${new Date(at).toISOString()} (${age(now - at)} ago)`;
  const fields: [string, string | string[] | undefined][] = [
    ["status", `${task.status}${task.reason ? ` (${task.reason})` : ""}`],
    ["capability", task.capability],
    ["route", routeText(task.route)],
    ["priority", String(task.priority)],
    ["attempts", `${task.attempts} failed or lapsed, of ${task.maxAttempts} allowed`],
    ["owner", task.owner === undefined ? undefined : `${task.owner}${task.leaseUntil === undefined ? "" : `, lease until ${new Date(task.leaseUntil).toISOString()}`}`],
    ["assignee", task.assignee === undefined ? undefined : `${task.assignee}${task.assignedUntil === undefined ? "" : ` until ${new Date(task.assignedUntil).toISOString()}`}`],
    ["fallback", task.fallback],
    ["depends on", task.dependsOn.length > 0 ? task.dependsOn.join(", ") : "-"],
    ["parent", task.parentId],
    ["subtasks", options.subtasks?.length ? options.subtasks.map((s) => `${s.id} (${s.status})`).join(", ") : undefined],
    ["run after", task.runAfter === undefined ? undefined : new Date(task.runAfter).toISOString()],
    ["timeout", task.timeoutMs === undefined ? undefined : `${task.timeoutMs} ms per attempt`],
    ["backoff", `${task.backoff.baseMs} ms × 2^(attempt − 1), at most ${task.backoff.maxMs} ms`],
    ["idempotency", task.idempotencyKey],
    ["generation", String(task.generation)],
    ["created", when(task.createdAt)],
    ["updated", when(task.updatedAt)],
    ["error", task.error],
    ["input", json(task.input ?? null)],
    ["result", task.status === "succeeded" || task.result !== undefined ? json(task.result ?? null) : undefined],
  ];
  const lines = [`task ${task.id} (${task.kind}): ${task.status}`];
  for (const [name, value] of fields) {
    if (value === undefined) continue;
    const [first, ...rest] = typeof value === "string" ? [value] : value;
    lines.push(`  ${name.padEnd(12)}${first}`, ...rest.map((line) => `${" ".repeat(14)}${line}`));
  }
  lines.push(`  failures    ${task.failures.length === 0 ? "none" : ""}`.trimEnd());
  for (const f of task.failures) {
    lines.push(`    attempt ${f.attempt} ${new Date(f.at).toISOString()} ${f.kind === "lease" ? "lease lapsed" : "error"}${f.worker ? ` on ${f.worker}` : ""}: ${f.error}`);
  }
  return lines;
}

/** The worker registry as a table, for `colony workers`. */
export function workerRows(workers: WorkerInfo[], now = Date.now()): string[] {
  const rows = workers.map((w) => [
    w.id,
    status(w.status),
    w.capabilities.join(","),
    `${w.running}/${w.concurrency}`,
    String(w.pid),
    w.host,
    `${age(now - w.heartbeatAt)} ago`,
    w.local ? "yes" : "no",
  ]);
  return table([["ID", "STATUS", "CAPABILITIES", "LOAD", "PID", "HOST", "HEARTBEAT", "LOCAL"], ...rows], { column: 2 });
}
