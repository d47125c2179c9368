/**
 * Runs of the stigmergic loop: the list, and a run's timeline of steps — who fired, what each
 * read and wrote, its time, tokens, cost and error. A running run follows its board's stream
 * (each write is a step's doing) and is read again as it changes.
 */
import { useMemo } from "preact/hooks";
import { api, enc, withQuery } from "../api.ts";
import { Badge, Empty, ErrorNote } from "../components/ui.tsx";
import { cost, duration, time, tokens } from "../format.ts";
import { useCoalesced, useInterval, useLoad, useStream } from "../hooks.ts";
import { formatHash, type Route } from "../route.ts";
import type { FiredRecord, RunInfo, StepRecord } from "../types.ts";

const RUN_LIMIT = 200;
const STEP_LIMIT = 2000;

function runTone(run: RunInfo): string {
  if (run.status === "running") return "running";
  if (run.stopReason === "goal" || run.stopReason === "quiescence" || run.stopReason === "max_steps") return run.stopReason === "goal" ? "succeeded" : "pending";
  return run.stopReason === "aborted" ? "cancelled" : "failed";
}

export function RunsView({ route }: { route: Route }) {
  const selected = route.parts[1];
  const runs = useLoad("runs", (signal) => api<{ runs: RunInfo[] }>(withQuery("/api/runs", { limit: RUN_LIMIT }), { signal }));
  useInterval(runs.reload, 5000);
  const list = runs.data?.runs ?? [];

  return (
    <section class="view view-runs" data-testid="view-runs" aria-label="Runs">
      <ErrorNote error={runs.error} testId="runs-error" />
      <div class="split">
        <nav class="runs-list" aria-label="Runs" data-testid="runs-list">
          {runs.data && list.length === 0 ? <Empty testId="runs-empty">No runs yet.</Empty> : null}
          <ul>
            {list.map((run) => (
              <li key={run.runId}>
                <a
                  href={formatHash(["runs", run.runId])}
                  class={`run-item${run.runId === selected ? " selected" : ""}`}
                  aria-current={run.runId === selected ? "page" : undefined}
                  data-testid={`run-row-${run.runId}`}
                >
                  <span class="run-line">
                    <strong>{run.name}</strong>
                    <Badge tone={runTone(run)}>{run.status === "running" ? "running" : run.stopReason ?? "finished"}</Badge>
                  </span>
                  <span class="run-line muted small">
                    <span>{run.board}</span>
                    <span>{run.steps} steps</span>
                    <span>{tokens(run.totalTokens)} tok</span>
                    <span>{cost(run.totalCostUsd)}</span>
                  </span>
                  <span class="run-line muted small">
                    <span>{time(run.startedAt)}</span>
                    <span>{duration(run.durationMs)}</span>
                  </span>
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="run-main">
          {selected ? <RunDetail key={selected} runId={selected} /> : <p class="muted">Choose a run to see its steps.</p>}
        </div>
      </div>
    </section>
  );
}

function RunDetail({ runId }: { runId: string }) {
  const detail = useLoad(runId, (signal) => api<{ run: RunInfo; steps: StepRecord[] }>(`/api/runs/${enc(runId)}`, { signal }));
  const run = detail.data?.run;
  const running = run?.status === "running";
  useInterval(detail.reload, running ? 3000 : null);
  const reload = useCoalesced(detail.reload, 500);
  useStream(running ? `/api/boards/${enc(run.board)}/events` : null, { onEvent: reload });
  const steps = detail.data?.steps ?? [];
  const longest = useMemo(() => Math.max(1, ...steps.flatMap((s) => s.fired.map((f) => f.ms))), [steps]);

  if (!run) {
    return detail.error ? <ErrorNote error={detail.error} testId="run-error" /> : <p class="muted">loading…</p>;
  }
  return (
    <div class="run-detail" data-testid="run-detail">
      <div class="run-head">
        <h2>
          {run.name} <span class="muted small mono">{run.runId}</span>
        </h2>
        <div class="row gap wrap">
          <Badge tone={runTone(run)} testId="run-status">
            {running ? "running" : run.stopReason ?? "finished"}
          </Badge>
          <span>
            board{" "}
            <a href={formatHash(["board", run.board])} data-testid="run-board-link">
              {run.board}
            </a>
          </span>
          <span>{run.steps} steps</span>
          <span>{tokens(run.totalTokens)} tokens</span>
          <span>{cost(run.totalCostUsd)}</span>
          <span>{duration(run.durationMs ?? (run.endedAt ? run.endedAt - run.startedAt : undefined))}</span>
          <span class="muted">started {time(run.startedAt)}</span>
        </div>
        {run.error ? <p class="error-note">{run.error}</p> : null}
      </div>
      {steps.length === 0 ? (
        <Empty testId="runs-timeline">No steps recorded.</Empty>
      ) : (
        <ol class="timeline" data-testid="runs-timeline">
          {steps.slice(0, STEP_LIMIT).map((step) => (
            <Step key={step.index} step={step} run={run} longest={longest} />
          ))}
        </ol>
      )}
      {steps.length > STEP_LIMIT ? <p class="muted">The first {STEP_LIMIT} of {steps.length} steps are shown.</p> : null}
    </div>
  );
}

function Step({ step, run, longest }: { step: StepRecord; run: RunInfo; longest: number }) {
  return (
    <li class="step" data-testid={`run-step-${step.index}`}>
      <div class="step-head">
        <strong>step {step.index}</strong>
        <span class="muted small">+{duration(step.startedAt - run.startedAt)}</span>
        <a class="small mono" href={formatHash(["board", run.board], { at: step.seq })} title="The board after this step" data-testid={`run-step-board-${step.index}`}>
          #{step.seq}
        </a>
        {step.fired.length === 0 ? <span class="muted small">nothing fired</span> : null}
      </div>
      <ul class="fired">
        {step.fired.map((f, i) => (
          <Fired key={`${f.agent}-${i}`} fired={f} step={step.index} longest={longest} />
        ))}
      </ul>
    </li>
  );
}

function Fired({ fired, step, longest }: { fired: FiredRecord; step: number; longest: number }) {
  const tone = fired.error ? (fired.conflict ? "claimed" : "failed") : "succeeded";
  return (
    <li class={`fired-item tone-border-${tone}`} data-testid={`run-fired-${step}-${fired.agent}`}>
      <div class="fired-line">
        <strong class="fired-agent">{fired.agent}</strong>
        <span class="bar" aria-hidden="true">
          <span class={`bar-fill tone-${tone}`} style={{ width: `${Math.max(1, (fired.ms / longest) * 100)}%` }} />
        </span>
        <span class="num small">{duration(fired.ms)}</span>
        <span class="num small">{tokens(fired.tokens)} tok</span>
        <span class="num small">{cost(fired.costUsd)}</span>
      </div>
      <div class="fired-keys small">
        <span class="muted">read</span> {fired.read.length === 0 ? <span class="muted">–</span> : fired.read.map((k) => <span key={`r-${k}`} class="tag tag-read">{k}</span>)}
        <span class="muted">wrote</span> {fired.written.length === 0 ? <span class="muted">–</span> : fired.written.map((k) => <span key={`w-${k}`} class="tag tag-write">{k}</span>)}
      </div>
      {fired.error ? (
        <p class="error-note small" data-testid={`run-fired-error-${step}-${fired.agent}`}>
          {fired.conflict ? <Badge tone="claimed">conflict</Badge> : null}
          {fired.overBudget ? <Badge tone="failed">over budget</Badge> : null} {fired.error}
        </p>
      ) : null}
      {fired.logs && fired.logs.length > 0 ? (
        <details class="small">
          <summary>{fired.logs.length === 1 ? "1 log line" : `${fired.logs.length} log lines`}</summary>
          <pre class="json">{fired.logs.join("\n")}</pre>
        </details>
      ) : null}
      {fired.calls && fired.calls.length > 0 ? (
        <details class="small">
          <summary>{fired.calls.length === 1 ? "1 model call" : `${fired.calls.length} model calls`}</summary>
          <table class="table">
            <thead>
              <tr>
                <th>model</th>
                <th class="num">turn</th>
                <th class="num">in</th>
                <th class="num">out</th>
                <th class="num">cost</th>
                <th class="num">time</th>
                <th>finish</th>
                <th>tools</th>
              </tr>
            </thead>
            <tbody>
              {fired.calls.map((c, i) => (
                <tr key={i}>
                  <td>{c.model}</td>
                  <td class="num">{c.turn}</td>
                  <td class="num">{tokens(c.inputTokens)}</td>
                  <td class="num">{tokens(c.outputTokens)}</td>
                  <td class="num">{cost(c.costUsd)}</td>
                  <td class="num">{duration(c.ms)}</td>
                  <td>{c.finishReason}</td>
                  <td>{(c.toolCalls ?? []).map((t) => t.name).join(", ") || "–"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      ) : null}
    </li>
  );
}
