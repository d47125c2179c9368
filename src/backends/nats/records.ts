/**
 * Runs, steps, the sub-agent registry and reports on JetStream KV. A lifecycle move is
 * compare-and-set twice over: on the record's generation (the contract) and on the key's KV
 * revision (so that two writers never both apply a move).
 */
import { hostname } from "node:os";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { agentsPastRetention, AGENT_PRUNE_STEP, type AgentOutline } from "../../core/agent-retention.ts";
import type { AgentRecord, AgentRetention, AgentState, RunInfo, StepRecord } from "../../core/records.ts";
import type { AgentStore, Report, RunStore } from "../../core/store.ts";
import { isConflict, isTransient, outlast, type KvCas } from "./jetstream.ts";
import { readStream } from "./stream-read.ts";

const FINAL: ReadonlySet<AgentState> = new Set(["succeeded", "failed", "terminated"]);

/** What a KV key may be; an id Colony never makes (with a space, a wildcard, an empty token) makes no key, and so names nothing. */
const KV_KEY = /^[-/=\w]+(?:\.[-/=\w]+)*$/;

/** The key's value and revision; undefined where there is none, or `key` cannot be one. */
async function read<T>(kv: KV, key: string): Promise<{ value: T; revision: number } | undefined> {
  if (!KV_KEY.test(key)) return undefined;
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

/** A bucket's live keys that match a filter (`a.*`), each with its value's text and revision. */
export type BucketScan = (filter: string) => Promise<{ key: string; revision: number; text: string }[]>;

/**
 * Scans a bucket through one short-lived consumer of its stream (each key's newest message,
 * fetched in batches, the consumer deleted after), instead of `kv.keys()` and a `get` per key:
 * that is one round trip per key, and `kv.keys()` leaves its consumer on the server for minutes
 * when no key matches, which a poll every 250 ms piles up by the thousand.
 */
export function bucketScan(js: JetStreamClient, jsm: JetStreamManager, bucket: string): BucketScan {
  const prefix = `$KV.${bucket}.`;
  return (filter) =>
    outlast(async () => {
      const found: { key: string; revision: number; text: string }[] = [];
      for await (const message of readStream(js, jsm, `KV_${bucket}`, { lastPerSubject: true, subject: `${prefix}${filter}` })) {
        // A deleted or purged key's newest message is its marker, with no value.
        if (message.data.length === 0) continue;
        found.push({ key: message.subject.slice(prefix.length), revision: message.seq, text: Buffer.from(message.data).toString("utf8") });
      }
      return found;
    });
}

/**
 * A bucket's stream, read and purged directly, for what the KV API cannot do: a KV delete or purge
 * leaves a marker message for its key, kept for good, so a bucket of keys that come and go would
 * grow without end.
 */
export interface BucketStream {
  /** The stream's last sequence now. */
  head(): Promise<number>;
  /**
   * The messages stored after `after` and up to `through` that the stream still holds, in order:
   * the bucket keeps one message per key, so each key written since, as it is now (or was at
   * `through`). A marker's text is empty.
   */
  since(after: number, through: number): Promise<{ key: string; revision: number; text: string }[]>;
  /** Removes `key`'s message, marker or value, if it was stored at or before `through`; whether there was one. */
  purge(key: string, through: number): Promise<boolean>;
}

export function bucketStream(js: JetStreamClient, jsm: JetStreamManager, bucket: string): BucketStream {
  const stream = `KV_${bucket}`;
  const prefix = `$KV.${bucket}.`;
  return {
    head: async () => (await outlast(() => jsm.streams.info(stream))).state.last_seq,
    since: (after, through) =>
      outlast(async () => {
        const found: { key: string; revision: number; text: string }[] = [];
        for await (const message of readStream(js, jsm, stream, { from: after + 1, through, subject: `${prefix}>` })) {
          if (message.seq > through) break;
          found.push({ key: message.subject.slice(prefix.length), revision: message.seq, text: Buffer.from(message.data).toString("utf8") });
        }
        return found;
      }),
    // One key, not a wildcard: nats-server looks a literal subject up, but matches a wildcard
    // against every subject of the stream (20 times slower on a bucket of 10,000 keys). Bounded by
    // the sequence, so that one sent again through an outage removes nothing written since.
    purge: async (key, through) => (await outlast(() => jsm.streams.purge(stream, { filter: `${prefix}${key}`, seq: through + 1 }))).purged > 0,
  };
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

async function values<T>(scan: BucketScan, filter: string): Promise<T[]> {
  return (await scan(filter)).flatMap(({ text }) => {
    try {
      return [JSON.parse(text) as T];
    } catch {
      return [];
    }
  });
}

export class NatsRunStore implements RunStore {
  readonly #kv: KV;
  readonly #scan: BucketScan;

  constructor(kv: KV, scan: BucketScan) {
    this.#kv = kv;
    this.#scan = scan;
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
    const runs = await values<RunInfo>(this.#scan, "r.*");
    runs.sort((a, b) => b.startedAt - a.startedAt || b.runId.localeCompare(a.runId));
    return options.limit === undefined ? runs : runs.slice(0, options.limit);
  }

  async getRun(runId: string): Promise<{ run: RunInfo; steps: StepRecord[] } | undefined> {
    const run = await read<RunInfo>(this.#kv, `r.${runId}`);
    if (!run) return undefined;
    const steps = await values<StepRecord>(this.#scan, `s.${runId}.*`);
    return { run: run.value, steps: steps.sort((a, b) => a.index - b.index) };
  }
}

interface KillRequest {
  cascade: boolean;
  ownerPid: number;
  ownerHost?: string;
}

/** A key of the agents bucket as a prune last read it: its revision, whether it holds a value, and what retention needs of a record. */
interface HeldKey {
  revision: number;
  value: boolean;
  agent?: AgentOutline;
}

export class NatsAgentStore implements AgentStore {
  readonly #kv: KV;
  readonly #cas: KvCas;
  readonly #known: Known = new Map();
  readonly #scan: BucketScan;
  readonly #stream: BucketStream;
  /**
   * The whole bucket as this store's prunes have read it, and up to which sequence: each prune
   * reads only what was stored since, so that it costs what changed, not the registry's size.
   */
  readonly #held = new Map<string, HeldKey>();
  #heldThrough = 0;

  constructor(kv: KV, cas: KvCas, scan: BucketScan, stream: BucketStream) {
    this.#kv = kv;
    this.#cas = cas;
    this.#scan = scan;
    this.#stream = stream;
  }

  async insert(record: AgentRecord): Promise<void> {
    const revision = await createOwn(this.#kv, `a.${record.id}`, JSON.stringify(record));
    // One that ended already (a short task's agent, listed once as it ended) is not written again: not kept.
    if (revision !== undefined && !FINAL.has(record.state)) this.#known.set(`a.${record.id}`, { value: structuredClone(record), revision });
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
    const records = await values<AgentRecord>(this.#scan, "a.*");
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
    for (const { key, revision, text } of await this.#scan("k.*")) {
      let request: KillRequest;
      try {
        request = JSON.parse(text) as KillRequest;
      } catch {
        continue;
      }
      // Taken by the owner only: this store runs in the owner's process, on the owner's machine.
      if (request.ownerPid !== ownerPid || (request.ownerHost ?? hostname()) !== hostname()) continue;
      // Taken once: only the delete that finds the request's revision wins.
      if (await this.#cas.remove(key, revision)) taken.push({ id: key.slice(2), cascade: request.cascade });
    }
    return taken;
  }

  async putReport(agentId: string, report: Report): Promise<void> {
    await outlast(() => this.#kv.put(`rep.${agentId}`, JSON.stringify(report)));
  }

  async getReport(agentId: string): Promise<Report | undefined> {
    return (await read<Report>(this.#kv, `rep.${agentId}`))?.value;
  }

  /**
   * Decides on the bucket as read so far (see `#held`), then removes each key of what goes with a
   * purge bounded by the stream's last sequence as the prune began: whatever is written after that
   * stays, so a concurrent write is never lost.
   */
  async prune(retention: AgentRetention, now: number): Promise<boolean> {
    const head = await this.#stream.head();
    // Below what was read: the bucket was made anew.
    if (head < this.#heldThrough) {
      this.#held.clear();
      this.#heldThrough = 0;
    }
    for (const { key, revision, text } of await this.#stream.since(this.#heldThrough, head)) this.#held.set(key, heldKey(key, revision, text));
    this.#heldThrough = head;

    const keysOf = new Map<string, string[]>();
    for (const key of this.#held.keys()) {
      const id = key.slice(key.indexOf(".") + 1);
      const keys = keysOf.get(id);
      if (keys) keys.push(key);
      else keysOf.set(id, [key]);
    }
    const { remove, more } = agentsPastRetention([...this.#held.values()].flatMap((held) => held.agent ?? []), retention, now);
    const ids = remove.map((agent) => agent.id);
    // A kill request or report with no record: its owner wrote it after the agent went. A record
    // this store has not read yet (written again while it read) is looked for before they go.
    const leftovers = [...keysOf.keys()].filter((id) => this.#held.get(`a.${id}`)?.value !== true);
    const room = AGENT_PRUNE_STEP - ids.length;
    for (const id of leftovers.slice(0, room)) if ((await outlast(() => this.#kv.get(`a.${id}`)))?.operation !== "PUT") ids.push(id);
    await Promise.all(
      ids.map(async (id) => {
        // The record first: one written again since the head stays, and so do its report and kill request.
        const record = `a.${id}`;
        if (this.#held.has(record) && !(await this.#purge(record, head))) return;
        await Promise.all(keysOf.get(id)!.filter((key) => key !== record).map((key) => this.#purge(key, head)));
      }),
    );
    return more || leftovers.length > room;
  }

  /** Purges a key up to `head`; removed or not (gone already, or written again: read next time), it is no longer held as it was. */
  async #purge(key: string, head: number): Promise<boolean> {
    const purged = await this.#stream.purge(key, head);
    this.#held.delete(key);
    return purged;
  }
}

/** What a prune keeps of a key it read: what retention looks at in a record, or only whether the key holds a value. */
function heldKey(key: string, revision: number, text: string): HeldKey {
  if (!key.startsWith("a.") || text.length === 0) return { revision, value: text.length > 0 };
  try {
    const { id, parentId, state, startedAt, endedAt } = JSON.parse(text) as AgentRecord;
    return { revision, value: true, agent: { id, parentId, state, startedAt, endedAt } };
  } catch {
    // Not Colony's: it stays, and keeps its kill request and report.
    return { revision, value: true };
  }
}
