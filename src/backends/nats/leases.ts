/** Leases on JetStream KV: a lease's revision is its key's KV revision, and every change is CAS on it (see KvCas). */
import type { KV } from "@nats-io/kv";
import type { LeaseStore } from "../../core/store.ts";
import { outlast, type KvCas } from "./jetstream.ts";

export class NatsLeaseStore implements LeaseStore {
  readonly #kv: KV;
  readonly #cas: KvCas;

  constructor(kv: KV, cas: KvCas) {
    this.#kv = kv;
    this.#cas = cas;
  }

  async get(name: string): Promise<{ holder?: string; revision: number }> {
    const entry = await outlast(() => this.#kv.get(name));
    if (!entry) return { revision: 0 };
    return entry.operation === "PUT" ? { holder: entry.string(), revision: entry.revision } : { revision: entry.revision };
  }

  put(name: string, holder: string, revision: number): Promise<number | undefined> {
    return this.#cas.put(name, holder, revision);
  }

  release(name: string, revision: number): Promise<boolean> {
    return this.#cas.remove(name, revision);
  }
}
