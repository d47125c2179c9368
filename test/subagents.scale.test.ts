/**
 * Scale on this 2-core machine: 200 thread children spawned at once all complete, each in its own
 * thread; 50 process children all run at the same time (50 live PIDs), then complete; afterwards
 * no child process is left and the handles the children used (ports, pipes, processes) are gone.
 * No speed is asserted; the timeouts only bound a hang.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { threadId } from "node:worker_threads";
import type { AgentRecord } from "../src/index.ts";
import { alive, waitFor, colonyPerFile } from "./fixtures/helpers.ts";
import { ref } from "./fixtures/subagents.ts";

const THREADS = 200;
const PROCESSES = 50;
const CHILD_HANDLES = ["MessagePort", "Worker", "PipeWrap", "ProcessWrap"];

const env = colonyPerFile("colony-subagent-scale-");

/** How many handles of the kinds a child uses this process holds. */
function childHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => CHILD_HANDLES.includes(r)).length;
}

/** The most agents whose [startedAt, endedAt] overlap at one moment. */
function peakOverlap(rows: AgentRecord[]): number {
  const edges = rows.flatMap((r) => [[r.startedAt, 1], [r.endedAt!, -1]] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let live = 0;
  let peak = 0;
  for (const [, step] of edges) peak = Math.max(peak, (live += step));
  return peak;
}

it(`${THREADS} thread children spawned at once all complete, each in its own thread, and leave no handle`, { timeout: 150_000 }, async () => {
  const baseline = childHandles();
  const handles = await Promise.all(Array.from({ length: THREADS }, (_, i) => env.colony.spawn(ref("where"), i, { isolation: "thread", name: `t${i}` })));
  const results = (await Promise.all(handles.map((h) => h.result))) as { pid: number; threadId: number }[];

  assert.equal(results.length, THREADS);
  assert.ok(results.every((r) => r.pid === process.pid));
  assert.equal(new Set(results.map((r) => r.threadId)).size, THREADS, "every child had a thread of its own");
  assert.ok(!results.some((r) => r.threadId === threadId));

  const rows = (await env.colony.agents.list({ state: "succeeded" })).filter((r) => r.isolation === "thread");
  assert.equal(rows.length, THREADS);
  // They were in flight together, not one after the other.
  assert.ok(peakOverlap(rows) >= 10, `peak overlap ${peakOverlap(rows)}`);
  await waitFor(() => childHandles() <= baseline, 10_000, "the workers' handles to close");
});

it(`${PROCESSES} process children run at the same time, complete, and leave no process and no handle`, { timeout: 120_000 }, async () => {
  const baseline = childHandles();
  const handles = await Promise.all(Array.from({ length: PROCESSES }, (_, i) => env.colony.spawn(ref("held"), null, { isolation: "process", name: `p${i}` })));
  // Every child has started its code and now holds: all 50 live at once.
  await Promise.all(
    handles.map(async (h) => {
      for await (const event of h.events) if (event.type === "emit") return;
    }),
  );
  const running = (await env.colony.agents.list({ state: "running" })).filter((r) => r.isolation === "process");
  assert.equal(running.length, PROCESSES);
  const pids = running.map((r) => r.pid!);
  assert.equal(new Set(pids).size, PROCESSES, "a process each");
  for (const pid of pids) assert.ok(alive(pid), `process ${pid} runs`);

  await Promise.all(handles.map((h) => h.signal("go")));
  const results = (await Promise.all(handles.map((h) => h.result))) as { pid: number }[];
  assert.deepEqual(results.map((r) => r.pid).toSorted(), pids.toSorted());
  assert.equal((await env.colony.agents.list({ state: "succeeded" })).filter((r) => r.isolation === "process").length, PROCESSES);

  for (const pid of pids) await waitFor(() => !alive(pid), 10_000, `process ${pid} to exit`);
  await waitFor(() => childHandles() <= baseline, 10_000, "the processes' pipes to close");
});
