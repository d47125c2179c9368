/**
 * Text shapes shared by the commands. Every line is built here so that `run`, `runs`, `bench`
 * and `demo` print one language.
 */
import type { Entry, LogRecord } from "../core/board.ts";
import type { FiredRecord, RunInfo, StepRecord } from "../core/records.ts";
import type { WorkerEvent } from "../runtime/tasks/worker.ts";

export function preview(value: unknown, width = 72): string {
  const text = JSON.stringify(value) ?? "null";
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

function tagList(tags: readonly string[]): string {
  return tags.length > 0 ? ` tags={${tags.join(",")}}` : "";
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
  return `stopped: ${reason}${error} · ${run.steps} steps · ${run.totalTokens} tokens · ${usd(run.totalCostUsd)} · ${run.durationMs ?? "?"} ms`;
}

/** Columns padded to their widest cell. */
export function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => r[c]?.length ?? 0))) ?? [];
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  "));
}

export function workerEventLine(event: WorkerEvent): string {
  const at = new Date(event.at).toISOString().slice(11, 23);
  switch (event.type) {
    case "online":
      return `${at} worker ${event.worker} online: ${event.capabilities.join(", ")} × ${event.concurrency}`;
    case "claimed":
      return `${at} claimed ${event.task} (${event.kind}, attempt ${event.attempt})`;
    case "succeeded":
      return `${at} succeeded ${event.task} (${event.kind}) in ${event.ms} ms`;
    case "failed":
      return `${at} failed ${event.task} (${event.kind}) → ${event.status}: ${event.error}`;
    case "stale":
      return `${at} dropped ${event.task} (${event.kind}): ${event.error}`;
    case "error":
      return `${at} error: ${event.error}`;
    case "draining":
      return `${at} draining: finishing ${event.running} task(s), claiming nothing new`;
    case "stopped":
      return `${at} stopped`;
  }
}
