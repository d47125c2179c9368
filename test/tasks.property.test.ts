/**
 * Property tests of the task board against small models, on the memory and SQLite backends:
 *
 * - claims: random interleavings of claim, complete, fail, heartbeat and the clock moving on (so
 *   leases lapse) by several workers never give a task to two holders at once, refuse exactly the
 *   stale calls, and record exactly one result per succeeded task;
 * - dependencies: for random DAGs submitted in one batch in random order with random priorities,
 *   tasks are claimed only after all their dependencies succeeded, highest priority first, then oldest;
 * - cycles: a batch with a cycle is refused, naming a real cycle, and leaves the board as it was.
 *
 * The claim property runs on a fake clock (`Date.now` is replaced while it runs), so leases lapse
 * exactly when the model says and the test never sleeps.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { createColony, InvalidTaskError, memoryBackend, sqliteBackend, StaleTaskError, type Colony, type TaskBoard } from "../src/index.ts";
import { tempDir } from "./fixtures/helpers.ts";

// --- Backends ------------------------------------------------------------------------------------

interface Backend {
  name: string;
  /** A fresh, empty task board. */
  board(): Promise<TaskBoard>;
  runs: { claims: number; dag: number; cycles: number };
}

function memory(): Backend & { close(): Promise<void> } {
  const colonies: Colony[] = [];
  return {
    name: "memory",
    runs: { claims: 300, dag: 300, cycles: 300 },
    async board() {
      const colony = createColony({ backend: memoryBackend() });
      colonies.push(colony);
      return colony.tasks("property");
    },
    async close() {
      for (const colony of colonies.splice(0)) await colony.close();
    },
  };
}

function sqlite(): Backend & { close(): Promise<void> } {
  const dir = tempDir("colony-tasks-property-");
  const colony = createColony({ backend: sqliteBackend({ path: join(dir.path, "colony.db") }) });
  let n = 0;
  return {
    name: "sqlite",
    runs: { claims: 80, dag: 60, cycles: 60 },
    board: () => colony.tasks(`p${n++}`),
    async close() {
      await colony.close();
      dir.dispose();
    },
  };
}

// --- Claims under leases: the model ----------------------------------------------------------------

const LEASE_MS = 100;
const WORKERS = ["w0", "w1", "w2"];

interface ModelTask {
  id: string;
  status: "pending" | "claimed" | "succeeded" | "failed" | "dead";
  generation: number;
  attempts: number;
  maxAttempts: number;
  owner: string | undefined;
  leaseUntil: number | undefined;
  result: unknown;
}

class ClaimModel {
  readonly tasks: ModelTask[] = [];

  /** What every read and claim does first: lapsed leases go back to pending, or dead. */
  reap(now: number): void {
    for (const t of this.tasks) {
      if (t.status !== "claimed" || t.leaseUntil! >= now) continue;
      t.attempts++;
      t.generation++;
      t.status = t.attempts >= t.maxAttempts ? "dead" : "pending";
      t.owner = undefined;
      t.leaseUntil = undefined;
    }
  }

  claim(worker: string, now: number): ModelTask | undefined {
    this.reap(now);
    const next = this.tasks.find((t) => t.status === "pending");
    if (!next) return undefined;
    Object.assign(next, { status: "claimed", owner: worker, generation: next.generation + 1, leaseUntil: now + LEASE_MS });
    return next;
  }

  /** The task if `generation` still holds its claim at `now`. */
  held(id: string, generation: number, now: number): ModelTask | undefined {
    const t = this.tasks.find((task) => task.id === id)!;
    return t.status === "claimed" && t.generation === generation && t.leaseUntil! >= now ? t : undefined;
  }
}

type Command =
  | { op: "claim"; w: number }
  | { op: "complete"; w: number; i: number }
  | { op: "fail"; w: number; i: number; retryable: boolean }
  | { op: "heartbeat"; w: number; i: number }
  | { op: "tick"; ms: number };

const worker = fc.nat(WORKERS.length - 1);
const pick = fc.nat(7);
const command: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant("claim" as const), w: worker }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant("complete" as const), w: worker, i: pick }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant("fail" as const), w: worker, i: pick, retryable: fc.boolean() }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant("heartbeat" as const), w: worker, i: pick }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant("tick" as const), ms: fc.oneof(fc.integer({ min: 1, max: LEASE_MS }), fc.constant(LEASE_MS + 1)) }), weight: 2 },
);

/** Replaces `Date.now` with a clock the test moves; undone by `restore`. */
function fakeClock(): { now: number; restore(): void } {
  const real = Date.now;
  const clock = {
    now: real(),
    restore: () => {
      Date.now = real;
    },
  };
  Date.now = () => clock.now;
  return clock;
}

async function runClaims(tasks: TaskBoard, maxAttempts: number[], commands: Command[]): Promise<void> {
  const clock = fakeClock();
  try {
    const model = new ClaimModel();
    const submitted = await tasks.submitAll(maxAttempts.map((max, i) => ({ kind: "k", input: i, maxAttempts: max, backoff: { baseMs: 0, maxMs: 0 } })));
    for (const t of submitted) {
      model.tasks.push({ id: t.id, status: "pending", generation: t.generation, attempts: 0, maxAttempts: t.maxAttempts, owner: undefined, leaseUntil: undefined, result: undefined });
    }
    /** Every claim each worker ever got, stale or not, so that stale calls get tried too. */
    const claims = WORKERS.map(() => [] as { id: string; generation: number }[]);
    const recorded = new Map<string, unknown[]>();

    for (const cmd of commands) {
      const now = clock.now;
      if (cmd.op === "tick") {
        clock.now += cmd.ms;
        continue;
      }
      const name = WORKERS[cmd.w]!;
      if (cmd.op === "claim") {
        model.reap(now);
        const holdersBefore = new Map(model.tasks.filter((t) => t.status === "claimed").map((t) => [t.id, t.owner]));
        const expected = model.claim(name, now);
        const got = await tasks.claim({ worker: name, capabilities: ["k"], leaseMs: LEASE_MS });
        assert.equal(got?.id, expected?.id, `${name} claims`);
        if (!got) continue;
        assert.equal(holdersBefore.get(got.id), undefined, `${got.id} given to ${name} while ${holdersBefore.get(got.id)} held it`);
        assert.equal(got.owner, name);
        assert.equal(got.generation, expected!.generation);
        assert.equal(got.leaseUntil, now + LEASE_MS);
        claims[cmd.w]!.push({ id: got.id, generation: got.generation });
        continue;
      }
      const mine = claims[cmd.w]!;
      if (mine.length === 0) continue;
      const { id, generation } = mine[cmd.i % mine.length]!;
      const valid = model.held(id, generation, now);
      const head = await tasks.head();
      let call: Promise<unknown>;
      if (cmd.op === "complete") {
        const result = { by: name, generation };
        call = tasks.complete(id, result, { generation });
        if (valid) {
          Object.assign(valid, { status: "succeeded", generation: valid.generation + 1, leaseUntil: undefined, result });
          recorded.set(id, [...(recorded.get(id) ?? []), result]);
        }
      } else if (cmd.op === "fail") {
        call = tasks.fail(id, `${name} failed`, { generation, retryable: cmd.retryable });
        if (valid) {
          valid.attempts++;
          valid.generation++;
          valid.status = !cmd.retryable ? "failed" : valid.attempts >= valid.maxAttempts ? "dead" : "pending";
          valid.owner = undefined;
          valid.leaseUntil = undefined;
        }
      } else {
        call = tasks.heartbeat(id, { generation });
        if (valid) valid.leaseUntil = now + LEASE_MS;
      }
      if (valid) {
        const task = (await call) as { generation: number; status: string; leaseUntil?: number };
        assert.equal(task.generation, valid.generation, `${cmd.op} ${id}@${generation}`);
        assert.equal(task.status, valid.status);
        assert.equal(task.leaseUntil, valid.leaseUntil);
      } else {
        await assert.rejects(call, StaleTaskError, `${cmd.op} ${id}@${generation} by ${name} is stale`);
        assert.equal(await tasks.head(), head, "a stale call records nothing");
      }
    }

    model.reap(clock.now);
    const actual = await tasks.list();
    assert.deepEqual(
      actual.map((t) => [t.id, t.status, t.generation, t.attempts, t.leaseUntil, t.result]),
      model.tasks.map((t) => [t.id, t.status, t.generation, t.attempts, t.leaseUntil, t.result]),
    );
    for (const t of actual) {
      const results = recorded.get(t.id) ?? [];
      if (t.status === "succeeded") {
        assert.equal(results.length, 1, `${t.id} succeeded with exactly one recorded result`);
        assert.deepEqual(t.result, results[0]);
      } else {
        assert.deepEqual(results, []);
        assert.equal(t.result, undefined);
      }
    }
  } finally {
    clock.restore();
  }
}

// --- Random DAGs -----------------------------------------------------------------------------------

interface Node {
  deps: number[];
  priority: number;
  /** Where the node goes in the submitted batch. */
  place: number;
}

const dag: fc.Arbitrary<Node[]> = fc.integer({ min: 1, max: 10 }).chain((n) =>
  fc.tuple(
    ...Array.from({ length: n }, (_, i) =>
      fc.record({
        deps: fc.subarray(Array.from({ length: i }, (_, j) => j)),
        priority: fc.integer({ min: -2, max: 2 }),
        place: fc.nat(1000),
      }),
    ),
  ),
);

const nodeId = (i: number) => `n${i}`;

/** The batch for `nodes`, in the order of their `place`, each depending on its `deps` (and on `extra`). */
function batchOf(nodes: Node[], extra: [number, number][] = []) {
  const items = nodes.map((node, i) => ({
    id: nodeId(i),
    kind: "k",
    priority: node.priority,
    dependsOn: [...node.deps, ...extra.filter(([from]) => from === i).map(([, to]) => to)].map(nodeId),
  }));
  const order = nodes.map((_, i) => i).sort((a, b) => nodes[a]!.place - nodes[b]!.place || a - b);
  return order.map((i) => items[i]!);
}

async function runDag(tasks: TaskBoard, nodes: Node[], choices: number[]): Promise<void> {
  const submitted = await tasks.submitAll(batchOf(nodes));
  const deps = new Map(submitted.map((t) => [t.id, t.dependsOn]));
  const priority = new Map(submitted.map((t) => [t.id, t.priority]));
  // Oldest first: the order the board stored them in.
  const age = (await tasks.list()).map((t) => t.id);
  const succeeded = new Set<string>();
  const claimed = new Set<string>();
  const held: { id: string; generation: number }[] = [];

  for (let step = 0; succeeded.size < nodes.length; step++) {
    assert.ok(step < nodes.length * 4, "the DAG never finishes");
    const choice = choices[step % choices.length]!;
    const ready = age.filter((id) => !claimed.has(id) && deps.get(id)!.every((d) => succeeded.has(d)));
    if (held.length > 0 && (ready.length === 0 || choice % 3 !== 0)) {
      const [done] = held.splice(choice % held.length, 1);
      const task = await tasks.complete(done!.id, done!.id, { generation: done!.generation });
      assert.equal(task.status, "succeeded");
      succeeded.add(done!.id);
      continue;
    }
    const got = await tasks.claim({ worker: `w${choice % 3}`, capabilities: ["k"], leaseMs: 60_000 });
    assert.ok(got, `a task is ready (${ready.join(", ")}) but none was claimed`);
    for (const dep of got.dependsOn) assert.ok(succeeded.has(dep), `${got.id} claimed before its dependency ${dep} succeeded`);
    const top = Math.max(...ready.map((id) => priority.get(id)!));
    assert.equal(got.id, ready.find((id) => priority.get(id) === top), "highest priority first, then oldest");
    claimed.add(got.id);
    held.push({ id: got.id, generation: got.generation });
  }
  assert.equal(await tasks.claim({ worker: "w0", capabilities: ["k"], leaseMs: 60_000 }), undefined);
  assert.deepEqual((await tasks.list()).map((t) => t.status), nodes.map(() => "succeeded"));
}

/** A DAG plus edges around `cycle` (c0 → c1 → … → c0, each "depends on" the next). */
const cyclic = dag.chain((nodes) =>
  fc.record({
    nodes: fc.constant(nodes),
    cycle: fc.uniqueArray(fc.nat(nodes.length - 1), { minLength: 1, maxLength: nodes.length }),
    before: fc.nat(3),
  }),
);

async function runCycle(tasks: TaskBoard, nodes: Node[], cycle: number[], before: number): Promise<void> {
  // What was on the board before must survive the refused batch unchanged.
  if (before > 0) await tasks.submitAll(Array.from({ length: before }, (_, i) => ({ id: `pre${i}`, kind: "k" })));
  const listed = await tasks.list();
  const head = await tasks.head();
  const extra = cycle.map((from, i): [number, number] => [from, cycle[(i + 1) % cycle.length]!]);
  const batch = batchOf(nodes, extra);
  const edges = new Set(batch.flatMap((item) => item.dependsOn.map((dep) => `${item.id}>${dep}`)));

  await assert.rejects(tasks.submitAll(batch), (error: unknown) => {
    assert.ok(error instanceof InvalidTaskError, String(error));
    const named = /cycle: (.*)$/.exec(error.message)?.[1]?.split(" → ");
    assert.ok(named && named.length >= 2, error.message);
    assert.equal(named[0], named.at(-1), "the cycle named ends where it starts");
    for (let i = 0; i + 1 < named.length; i++) assert.ok(edges.has(`${named[i]}>${named[i + 1]}`), `${named[i]} does not depend on ${named[i + 1]}`);
    return true;
  });
  assert.deepEqual(await tasks.list(), listed);
  assert.equal(await tasks.head(), head);
  for (const item of batch) assert.equal(await tasks.get(item.id), undefined);
}

// --- The properties, per backend --------------------------------------------------------------------

for (const make of [memory, sqlite]) {
  describe(`task board properties: ${make.name}`, { timeout: 120_000 }, () => {
    let backend: Backend & { close(): Promise<void> };
    before(() => {
      backend = make();
    });
    after(() => backend.close());

    test("claims: one holder at a time, stale calls refused and recording nothing, one result per success", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 5 }), fc.array(command, { minLength: 1, maxLength: 60 }), async (maxAttempts, commands) => {
          await runClaims(await backend.board(), maxAttempts, commands);
        }),
        { numRuns: backend.runs.claims },
      );
    });

    test("dependencies: claimed only after every dependency succeeded, by priority then age", async () => {
      await fc.assert(
        fc.asyncProperty(dag, fc.array(fc.nat(99), { minLength: 1, maxLength: 20 }), async (nodes, choices) => {
          await runDag(await backend.board(), nodes, choices);
        }),
        { numRuns: backend.runs.dag },
      );
    });

    test("cycles: refused, naming a real cycle, and the board is as it was", async () => {
      await fc.assert(
        fc.asyncProperty(cyclic, async ({ nodes, cycle, before: count }) => {
          await runCycle(await backend.board(), nodes, cycle, count);
        }),
        { numRuns: backend.runs.cycles },
      );
    });
  });
}
