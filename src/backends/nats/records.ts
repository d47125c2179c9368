/**
 * Runs, steps, the sub-agent registry and reports on JetStream KV. A lifecycle move is
 * compare-and-set twice over: on the record's generation (the contract) and on the key's KV
 * revision (so that two writers never both apply a move).
 */
import { hostname } from "node:os";
import type { KV } from "@nats-io/kv";
import type { AgentRecord, AgentState, RunInfo, StepRecord } from "../../core/records.ts";
import type { AgentStore, Report, RunStore } from "../../core/store.ts";
import { isConflict, isTransient, outlast, type KvCas } from "./jetstream.ts";

const FINAL: ReadonlySet<AgentState> = new Set(["succeeded", "failed", "terminated"]);

async function read<T>(kv: KV, key: string): Promise<{ value: T; revision: number } | undefined> {
  const entry = await outlast(() => kv.get(key));
  if (!entry || entry.operation !== "PUT") return undefined;
  return { value: entry.json<T>(), revision: entry.revision };
}

/**
 * What this client last read or wrote of each key, with its revision: a guess at the current
 * value that saves a read when this client is the key's only writer (as an agent's owner is). A
 * wrong guess costs one refused update and a read; it can never be written over another's write.
 */
type Known = Map<string, { value: unknown; revision: number }>;

/**
 * Lets `change` compute the key's next value from its current one (undefined = leave it), and
 * writes it only if nobody wrote the key in between; reads again when someone did. Returns what
 * was written.
 */
async function modify<T>(kv: KV, cas: KvCas, known: Known, key: string, change: (current: T | undefined) => T | undefined): Promise<T | undefined> {
  let current = known.get(key) as { value: T; revision: number } | undefined;
  let guessed = current !== undefined;
  for (;;) {
    if (!guessed) current = await read<T>(kv, key);
    const next = change(current?.value);
    if (next === undefined) {
      // Nothing to do by the guess: make sure of it on the real value.
      if (!guessed) return undefined;
      guessed = false;
      continue;
    }
    const revision = await cas.put(key, JSON.stringify(next), current?.revision ?? 0);
    if (revision !== undefined) {
      known.set(key, { value: next, revision });
      return next;
    }
    known.delete(key);
    guessed = false;
  }
}

async function keysOf(kv: KV, filter: string): Promise<string[]> {
  return outlast(async () => {
    const keys: string[] = [];
    for await (const key of await kv.keys(filter)) keys.push(key);
    return keys;
  });
}

/**
 * Creates a key only this client writes (it holds a fresh id), through an outage: an unanswered
 * create is sent again, and one that then finds the key there had landed. The revision, when known.
 */
async function createOwn(kv: KV, key: string, value: string): Promise<number | undefined> {
  let unanswered = false;
  return outlast(async () => {
    try {
      return await kv.create(key, value);
    } catch (error) {
      if (unanswered && isConflict(error)) return undefined;
      if (isTransient(error)) unanswered = true;
      throw error;
    }
  });
}

async function values<T>(kv: KV, filter: string): Promise<T[]> {
  const out: T[] = [];
  for (const key of await keysOf(kv, filter)) {
    const found = await read<T>(kv, key);
    if (found) out.push(found.value);
  }
  return out;
}

export class NatsRunStore implements RunStore {
  readonly #kv: KV;

  constructor(kv: KV) {
    this.#kv = kv;
  }

  async createRun(run: RunInfo): Promise<void> {
    await createOwn(this.#kv, `r.${run.runId}`, JSON.stringify(run));
  }

  async appendStep(runId: string, step: StepRecord): Promise<void> {
    await createOwn(this.#kv, `s.${runId}.${step.index}`, JSON.stringify(step));
  }

  async finishRun(run: RunInfo): Promise<void> {
    await outlast(() => this.#kv.put(`r.${run.runId}`, JSON.stringify(run)));
  }

  async listRuns(options: { limit?: number } = {}): Promise<RunInfo[]> {
    const runs = await values<RunInfo>(this.#kv, "r.*");
    runs.sort((a, b) => b.startedAt - a.startedAt || b.runId.localeCompare(a.runId));
    return options.limit === undefined ? runs : runs.slice(0, options.limit);
  }

  async getRun(runId: string): Promise<{ run: RunInfo; steps: StepRecord[] } | undefined> {
    const run = await read<RunInfo>(this.#kv, `r.${runId}`);
    if (!run) return undefined;
    const steps = await values<StepRecord>(this.#kv, `s.${runId}.*`);
    return { run: run.value, steps: steps.sort((a, b) => a.index - b.index) };
  }
}

interface KillRequest {
  cascade: boolean;
  ownerPid: number;
  ownerHost?: string;
}

export class NatsAgentStore implements AgentStore {
  readonly #kv: KV;
  readonly #cas: KvCas;
  readonly #known: Known = new Map();

  constructor(kv: KV, cas: KvCas) {
    this.#kv = kv;
    this.#cas = cas;
  }

  async insert(record: AgentRecord): Promise<void> {
    const revision = await createOwn(this.#kv, `a.${record.id}`, JSON.stringify(record));
    if (revision !== undefined) this.#known.set(`a.${record.id}`, { value: structuredClone(record), revision });
  }

  async transition(id: string, generation: number, patch: Partial<AgentRecord> & { state: AgentState }): Promise<boolean> {
    const written = await modify<AgentRecord>(this.#kv, this.#cas, this.#known, `a.${id}`, (current) =>
      current && current.generation === generation ? { ...current, ...patch, generation: generation + 1 } : undefined,
    );
    // An ended agent's record is rarely written again: forget it, so the guesses stay few.
    if (FINAL.has(patch.state)) this.#known.delete(`a.${id}`);
    return written !== undefined;
  }

  async updateUsage(id: string, usage: AgentRecord["usage"]): Promise<void> {
    await modify<AgentRecord>(this.#kv, this.#cas, this.#known, `a.${id}`, (current) => current && { ...current, usage: { ...usage } });
  }

  async get(id: string): Promise<AgentRecord | undefined> {
    return (await read<AgentRecord>(this.#kv, `a.${id}`))?.value;
  }

  async list(filter: { parentId?: string; state?: AgentState } = {}): Promise<AgentRecord[]> {
    const records = await values<AgentRecord>(this.#kv, "a.*");
    return records
      .filter((r) => (filter.parentId === undefined || r.parentId === filter.parentId) && (filter.state === undefined || r.state === filter.state))
      .sort((a, b) => a.startedAt - b.startedAt || a.id.localeCompare(b.id));
  }

  async requestKill(id: string, cascade: boolean): Promise<boolean> {
    const record = await this.get(id);
    if (!record || FINAL.has(record.state)) return false;
    await outlast(() => this.#kv.put(`k.${id}`, JSON.stringify({ cascade, ownerPid: record.ownerPid, ...(record.ownerHost !== undefined && { ownerHost: record.ownerHost }) } satisfies KillRequest)));
    return true;
  }

  async takeKillRequests(ownerPid: number): Promise<{ id: string; cascade: boolean }[]> {
    const taken: { id: string; cascade: boolean }[] = [];
    const keys = await keysOf(this.#kv, "k.*");
    for (const key of keys) {
      const request = await read<KillRequest>(this.#kv, key);
      // Taken by the owner only: this store runs in the owner's process, on the owner's machine.
      if (!request || request.value.ownerPid !== ownerPid || (request.value.ownerHost ?? hostname()) !== hostname()) continue;
      // Taken once: only the delete that finds the request's revision wins.
      if (await this.#cas.remove(key, request.revision)) taken.push({ id: key.slice(2), cascade: request.value.cascade });
    }
    return taken;
  }

  async putReport(agentId: string, report: Report): Promise<void> {
    await outlast(() => this.#kv.put(`rep.${agentId}`, JSON.stringify(report)));
  }

  async getReport(agentId: string): Promise<Report | undefined> {
    return (await read<Report>(this.#kv, `rep.${agentId}`))?.value;
  }
}
