/**
 * The in-memory backend: maps and arrays, gone when the process exits. For tests and throwaway
 * runs; it keeps the same contract as the durable backends.
 */
import { agentsPastRetention } from "../../core/agent-retention.ts";
import { nextVersion } from "../../core/cas.ts";
import { NO_TAGS, type Tags } from "../../core/json.ts";
import type { RunInfo, StepRecord } from "../../core/records.ts";
import type { AgentRecord, AgentRetention, AgentState } from "../../core/records.ts";
import type {
  AgentStore,
  Backend,
  BackendFactory,
  BoardStore,
  DeleteRequest,
  HistoryQuery,
  LeaseStore,
  Report,
  RunStore,
  StoredEntry,
  StoredRecord,
  TaskStore,
  WriteRequest,
} from "../../core/store.ts";
import { LocalBus } from "../local-bus.ts";
import { MemoryTaskStore } from "../task-state.ts";

interface Slot {
  entry: StoredEntry;
  deleted: boolean;
}

class MemoryBoardStore implements BoardStore {
  readonly #slots = new Map<string, Slot>();
  readonly #log: StoredRecord[] = [];
  readonly #listeners = new Set<() => void>();

  async write(request: WriteRequest): Promise<{ record: StoredRecord; createdAt: number }> {
    const slot = this.#slots.get(request.key);
    const live = slot && !slot.deleted ? slot.entry.version : 0;
    const version = nextVersion(request.key, request.expectedVersion, live, slot?.entry.version ?? 0);
    const createdAt = live > 0 ? slot!.entry.createdAt : request.at;
    this.#slots.set(request.key, {
      deleted: false,
      entry: { key: request.key, json: request.json, author: request.author, version, createdAt, updatedAt: request.at, tags: request.tags },
    });
    const record = this.#append("write", request, version, request.json, request.tags);
    return { record, createdAt };
  }

  async delete(request: DeleteRequest): Promise<StoredRecord | undefined> {
    const slot = this.#slots.get(request.key);
    const live = slot && !slot.deleted ? slot.entry.version : 0;
    if (live === 0 && request.expectedVersion === undefined) return undefined;
    const version = nextVersion(request.key, request.expectedVersion, live, slot?.entry.version ?? 0);
    if (live === 0) return undefined; // expected 0 and absent: nothing to delete
    slot!.deleted = true;
    slot!.entry = { ...slot!.entry, version, author: request.author, updatedAt: request.at };
    return this.#append("delete", request, version, null, NO_TAGS);
  }

  async get(key: string): Promise<StoredEntry | undefined> {
    const slot = this.#slots.get(key);
    return slot && !slot.deleted ? slot.entry : undefined;
  }

  async load(): Promise<{ entries: StoredEntry[]; seq: number }> {
    const entries = [...this.#slots.values()].filter((s) => !s.deleted).map((s) => s.entry);
    return { entries, seq: this.#log.length };
  }

  async history(query: HistoryQuery): Promise<StoredRecord[]> {
    const since = query.since ?? 0;
    const limit = query.limit ?? Infinity;
    const out: StoredRecord[] = [];
    for (let i = since; i < this.#log.length && out.length < limit; i++) {
      const record = this.#log[i]!;
      if (query.key === undefined || record.key === query.key) out.push(record);
    }
    return out;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #append(op: "write" | "delete", request: { key: string; author: string; at: number }, version: number, json: string | null, tags: Tags): StoredRecord {
    const record: StoredRecord = { seq: this.#log.length + 1, op, key: request.key, version, author: request.author, at: request.at, json, tags };
    this.#log.push(record);
    for (const listener of this.#listeners) listener();
    return record;
  }
}

class MemoryRunStore implements RunStore {
  readonly #runs = new Map<string, { run: RunInfo; steps: StepRecord[] }>();

  async createRun(run: RunInfo): Promise<void> {
    this.#runs.set(run.runId, { run: structuredClone(run), steps: [] });
  }

  async appendStep(runId: string, step: StepRecord): Promise<void> {
    this.#runs.get(runId)?.steps.push(structuredClone(step));
  }

  async finishRun(run: RunInfo): Promise<void> {
    const stored = this.#runs.get(run.runId);
    if (stored) stored.run = structuredClone(run);
  }

  async listRuns(options: { limit?: number } = {}): Promise<RunInfo[]> {
    const runs = [...this.#runs.values()].map((r) => structuredClone(r.run));
    runs.sort((a, b) => b.startedAt - a.startedAt);
    return runs.slice(0, options.limit ?? runs.length);
  }

  async getRun(runId: string): Promise<{ run: RunInfo; steps: StepRecord[] } | undefined> {
    const stored = this.#runs.get(runId);
    return stored && structuredClone(stored);
  }
}

class MemoryAgentStore implements AgentStore {
  readonly #records = new Map<string, AgentRecord>();
  readonly #kills = new Map<string, boolean>();
  readonly #reports = new Map<string, Report>();

  async insert(record: AgentRecord): Promise<void> {
    this.#records.set(record.id, structuredClone(record));
  }

  async transition(id: string, generation: number, patch: Partial<AgentRecord> & { state: AgentState }): Promise<boolean> {
    const record = this.#records.get(id);
    if (!record || record.generation !== generation) return false;
    this.#records.set(id, { ...record, ...structuredClone(patch), generation: generation + 1 });
    return true;
  }

  async updateUsage(id: string, usage: AgentRecord["usage"]): Promise<void> {
    const record = this.#records.get(id);
    if (record) record.usage = { ...usage };
  }

  async get(id: string): Promise<AgentRecord | undefined> {
    const record = this.#records.get(id);
    return record && structuredClone(record);
  }

  async list(filter: { parentId?: string; state?: AgentState } = {}): Promise<AgentRecord[]> {
    return [...this.#records.values()]
      .filter((r) => (filter.parentId === undefined || r.parentId === filter.parentId) && (filter.state === undefined || r.state === filter.state))
      .sort((a, b) => a.startedAt - b.startedAt)
      .map((r) => structuredClone(r));
  }

  async requestKill(id: string, cascade: boolean): Promise<boolean> {
    const record = this.#records.get(id);
    if (!record || ["succeeded", "failed", "terminated"].includes(record.state)) return false;
    this.#kills.set(id, cascade);
    return true;
  }

  async takeKillRequests(ownerPid: number): Promise<{ id: string; cascade: boolean }[]> {
    const taken: { id: string; cascade: boolean }[] = [];
    for (const [id, cascade] of this.#kills) {
      if (this.#records.get(id)?.ownerPid !== ownerPid) continue;
      taken.push({ id, cascade });
      this.#kills.delete(id);
    }
    return taken;
  }

  async putReport(agentId: string, report: Report): Promise<void> {
    this.#reports.set(agentId, structuredClone(report));
  }

  async getReport(agentId: string): Promise<Report | undefined> {
    const report = this.#reports.get(agentId);
    return report && structuredClone(report);
  }

  async prune(retention: AgentRetention, now: number): Promise<boolean> {
    const { remove, more } = agentsPastRetention([...this.#records.values()], retention, now);
    for (const { id } of remove) this.#records.delete(id);
    // Its report and kill request, and any that a removed agent's owner wrote after it went.
    for (const id of this.#reports.keys()) if (!this.#records.has(id)) this.#reports.delete(id);
    for (const id of this.#kills.keys()) if (!this.#records.has(id)) this.#kills.delete(id);
    return more;
  }
}

class MemoryLeaseStore implements LeaseStore {
  readonly #leases = new Map<string, { holder?: string; revision: number }>();
  #revision = 0;

  async get(name: string): Promise<{ holder?: string; revision: number }> {
    return { ...(this.#leases.get(name) ?? { revision: 0 }) };
  }

  async put(name: string, holder: string, revision: number): Promise<number | undefined> {
    if ((this.#leases.get(name)?.revision ?? 0) !== revision) return undefined;
    this.#leases.set(name, { holder, revision: ++this.#revision });
    return this.#revision;
  }

  async release(name: string, revision: number): Promise<boolean> {
    if ((this.#leases.get(name)?.revision ?? 0) !== revision) return false;
    this.#leases.set(name, { revision: ++this.#revision });
    return true;
  }
}

/**
 * A backend that keeps everything in this process's memory.
 *
 * @example
 * const colony = createColony({ backend: memoryBackend() });
 */
export function memoryBackend(): BackendFactory {
  return {
    kind: "memory",
    embedded: true,
    location: "this process",
    async open(): Promise<Backend> {
      const boards = new Map<string, MemoryBoardStore>();
      const taskBoards = new Map<string, MemoryTaskStore>();
      return {
        runs: new MemoryRunStore(),
        agents: new MemoryAgentStore(),
        leases: new MemoryLeaseStore(),
        bus: new LocalBus(),
        async openBoard(name: string): Promise<BoardStore> {
          let store = boards.get(name);
          if (!store) boards.set(name, (store = new MemoryBoardStore()));
          return store;
        },
        async openTasks(name: string): Promise<TaskStore> {
          let store = taskBoards.get(name);
          if (!store) taskBoards.set(name, (store = new MemoryTaskStore()));
          return store;
        },
        async listBoards() {
          return { boards: [...boards.keys()].sort(), tasks: [...taskBoards.keys()].sort() };
        },
        async close(): Promise<void> {},
      };
    },
  };
}
