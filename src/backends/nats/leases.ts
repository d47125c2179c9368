/** Leases on JetStream KV: a lease's revision is its key's KV revision, and every change is CAS on it. */
import type { KV } from "@nats-io/kv";
import type { LeaseStore } from "../../core/store.ts";
import { isConflict } from "./jetstream.ts";

export class NatsLeaseStore implements LeaseStore {
  readonly #kv: KV;

  constructor(kv: KV) {
    this.#kv = kv;
  }

  async get(name: string): Promise<{ holder?: string; revision: number }> {
    const entry = await this.#kv.get(name);
    if (!entry) return { revision: 0 };
    return entry.operation === "PUT" ? { holder: entry.string(), revision: entry.revision } : { revision: entry.revision };
  }

  async put(name: string, holder: string, revision: number): Promise<number | undefined> {
    try {
      return revision === 0 ? await this.#kv.create(name, holder) : await this.#kv.update(name, holder, revision);
    } catch (error) {
      if (isConflict(error)) return undefined;
      throw error;
    }
  }

  async release(name: string, revision: number): Promise<boolean> {
    try {
      await this.#kv.delete(name, { previousSeq: revision });
      return true;
    } catch (error) {
      if (isConflict(error)) return false;
      throw error;
    }
  }
}
