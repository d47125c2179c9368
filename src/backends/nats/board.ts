/**
 * A board on JetStream. The current entries live in a KV bucket (one per board), whose revision
 * is the compare-and-set token: `create` for a key that was never written, `update(key, value,
 * revision)` otherwise, so two writers racing on a key cannot both win. A delete is a tombstone
 * put, not a KV delete, so that a key's versions never repeat (as on SQLite).
 *
 * The full log is a mirror stream of the bucket's stream. A KV bucket keeps at most 64 revisions
 * per key, and the log must keep every write; a mirror keeps the source's sequence numbers, so
 * the bucket's revision of a write is its `seq` in the log, gap-free, with no per-key limit, and
 * with nothing to make atomic across two writes. The mirror trails the bucket by a moment, so a
 * history read first waits for it to reach the bucket's head as read at the call.
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { nextVersion } from "../../core/cas.ts";
import { InvalidValueError } from "../../core/errors.ts";
import type { BoardStore, DeleteRequest, HistoryQuery, StoredEntry, StoredRecord, WriteRequest } from "../../core/store.ts";
import { ensureStream, isConflict } from "./jetstream.ts";

/** What one message in the bucket holds: the log record, plus when the key was (re)created. */
interface Stored {
  op: "write" | "delete";
  key: string;
  version: number;
  author: string;
  at: number;
  createdAt: number;
  json: string | null;
  tags: string[];
}

const MIRROR_WAIT_MS = 5000;

/** KV keys are subject tokens; board keys are any UTF-8. base64url maps one onto the other. */
const encodeKey = (key: string) => Buffer.from(key, "utf8").toString("base64url");

function decode(data: Uint8Array): Stored {
  return JSON.parse(Buffer.from(data).toString("utf8")) as Stored;
}

function toRecord(stored: Stored, seq: number): StoredRecord {
  return { seq, op: stored.op, key: stored.key, version: stored.version, author: stored.author, at: stored.at, json: stored.json, tags: stored.tags };
}

function toEntry(stored: Stored): StoredEntry {
  return { key: stored.key, json: stored.json!, author: stored.author, version: stored.version, createdAt: stored.createdAt, updatedAt: stored.at, tags: stored.tags };
}

export class NatsBoardStore implements BoardStore {
  readonly #kv: KV;
  readonly #jsm: JetStreamManager;
  readonly #bucketStream: string;
  readonly #logStream: string;

  readonly #maxPayload: number;

  private constructor(kv: KV, jsm: JetStreamManager, bucket: string, log: string, maxPayload: number) {
    this.#maxPayload = maxPayload;
    this.#kv = kv;
    this.#jsm = jsm;
    this.#bucketStream = `KV_${bucket}`;
    this.#logStream = log;
  }

  /** Opens (creating if needed) the board's bucket and its log mirror. */
  static async open(js: JetStreamClient, jsm: JetStreamManager, bucket: string, log: string, replicas: number, maxPayload: number): Promise<NatsBoardStore> {
    // No direct gets: the server lets a mirror of a KV stream answer those (mirror_direct), and
    // the log mirror trails the bucket, so a read right after a write could see the older value.
    const kv = await new Kvm(js).create(bucket, { history: 1, replicas, allow_direct: false });
    await ensureStream(jsm, { name: log, mirror: { name: `KV_${bucket}` }, num_replicas: replicas, mirror_direct: false });
    return new NatsBoardStore(kv, jsm, bucket, log, maxPayload);
  }

  async write(request: WriteRequest): Promise<{ record: StoredRecord; createdAt: number }> {
    for (;;) {
      const current = await this.#kv.get(encodeKey(request.key));
      const previous = current ? decode(current.value) : undefined;
      const live = previous?.op === "write" ? previous.version : 0;
      const version = nextVersion(request.key, request.expectedVersion, live, previous?.version ?? 0);
      const createdAt = live > 0 ? previous!.createdAt : request.at;
      const stored: Stored = { op: "write", key: request.key, version, author: request.author, at: request.at, createdAt, json: request.json, tags: request.tags };
      const seq = await this.#put(request.key, stored, current?.revision);
      if (seq !== undefined) return { record: toRecord(stored, seq), createdAt };
      // Someone wrote the key between our read and our write: read again (and refuse, if a version was expected).
    }
  }

  async delete(request: DeleteRequest): Promise<StoredRecord | undefined> {
    for (;;) {
      const current = await this.#kv.get(encodeKey(request.key));
      const previous = current ? decode(current.value) : undefined;
      const live = previous?.op === "write" ? previous.version : 0;
      if (live === 0 && request.expectedVersion === undefined) return undefined;
      const version = nextVersion(request.key, request.expectedVersion, live, previous?.version ?? 0);
      if (live === 0) return undefined;
      const stored: Stored = { op: "delete", key: request.key, version, author: request.author, at: request.at, createdAt: previous!.createdAt, json: null, tags: [] };
      const seq = await this.#put(request.key, stored, current!.revision);
      if (seq !== undefined) return toRecord(stored, seq);
    }
  }

  /** The write, conditional on the key's revision; undefined if another writer got there first. */
  async #put(key: string, stored: Stored, revision: number | undefined): Promise<number | undefined> {
    const payload = JSON.stringify(stored);
    const bytes = Buffer.byteLength(payload, "utf8");
    if (bytes > this.#maxPayload) {
      throw new InvalidValueError(
        key,
        "value",
        `${bytes} bytes with its metadata, over the NATS server's max_payload of ${this.#maxPayload}; raise max_payload in the server's configuration or lower maxValueBytes`,
        "VALUE_TOO_LARGE",
      );
    }
    try {
      return revision === undefined ? await this.#kv.create(encodeKey(key), payload) : await this.#kv.update(encodeKey(key), payload, revision);
    } catch (error) {
      if (isConflict(error)) return undefined;
      throw error;
    }
  }

  async get(key: string): Promise<StoredEntry | undefined> {
    const current = await this.#kv.get(encodeKey(key));
    if (!current || current.operation !== "PUT") return undefined;
    const stored = decode(current.value);
    return stored.op === "write" ? toEntry(stored) : undefined;
  }

  /**
   * Every live entry and the log position they reflect. The bucket's last values are read
   * between two looks at its head; if a write slipped in between, it is read again.
   */
  async load(): Promise<{ entries: StoredEntry[]; seq: number }> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const before = await this.#head(this.#bucketStream);
      const entries: StoredEntry[] = [];
      const keys = await this.#kv.keys();
      for await (const encoded of keys) {
        const current = await this.#kv.get(encoded);
        if (!current || current.operation !== "PUT") continue;
        const stored = decode(current.value);
        if (stored.op === "write") entries.push(toEntry(stored));
      }
      if ((await this.#head(this.#bucketStream)) === before) return { entries, seq: before };
    }
    // Written to without pause: fold the log instead, which is consistent by construction.
    const seq = await this.#head(this.#bucketStream);
    const live = new Map<string, StoredEntry>();
    for (const record of await this.history({ since: 0, limit: seq })) {
      if (record.op === "delete") live.delete(record.key);
      else live.set(record.key, { key: record.key, json: record.json!, author: record.author, version: record.version, createdAt: live.get(record.key)?.createdAt ?? record.at, updatedAt: record.at, tags: record.tags });
    }
    return { entries: [...live.values()], seq };
  }

  async history(query: HistoryQuery): Promise<StoredRecord[]> {
    const since = query.since ?? 0;
    const limit = query.limit ?? Infinity;
    const head = await this.#head(this.#bucketStream);
    await this.#mirrorAt(head);
    const out: StoredRecord[] = [];
    for (let seq = since + 1; seq <= head && out.length < limit; seq++) {
      const message = await this.#jsm.streams.getMessage(this.#logStream, { seq });
      if (!message) throw new Error(`the log ${this.#logStream} has no record ${seq}; was the stream edited by hand?`);
      const stored = decode(message.data);
      if (query.key === undefined || stored.key === query.key) out.push(toRecord(stored, seq));
    }
    return out;
  }

  onChange(listener: () => void): () => void {
    let stopped = false;
    let stop = () => {
      stopped = true;
    };
    void this.#kv
      .watch({ include: "updates" })
      .then(async (updates) => {
        if (stopped) return updates.stop();
        stop = () => updates.stop();
        for await (const _ of updates) listener();
      })
      // The connection closed: nothing more will change that this process can see.
      .catch(() => {});
    return () => stop();
  }

  async #head(stream: string): Promise<number> {
    return (await this.#jsm.streams.info(stream)).state.last_seq;
  }

  /** Waits until the log mirror holds every write up to `seq`. */
  async #mirrorAt(seq: number): Promise<void> {
    const deadline = Date.now() + MIRROR_WAIT_MS;
    for (let wait = 1; (await this.#head(this.#logStream)) < seq; wait = Math.min(wait * 2, 50)) {
      if (Date.now() > deadline) throw new Error(`the log mirror ${this.#logStream} is behind its bucket by more than ${MIRROR_WAIT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
