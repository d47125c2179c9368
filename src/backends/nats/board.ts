/**
 * A board on JetStream. The current entries live in a KV bucket (one per board), whose revision
 * is the compare-and-set token: `create` for a key that was never written, `update(key, value,
 * revision)` otherwise, so two writers racing on a key cannot both win (on a replicated bucket,
 * where the server does not hold that check, a write is conditional on the whole bucket's last
 * sequence instead: see `open`). A delete is a tombstone put, not a KV delete, so that a key's
 * versions never repeat (as on SQLite).
 *
 * The full log is the bucket's own stream: the bucket keeps every revision of every key (no
 * per-key history limit), so the revision of a write is its `seq` in the log, gap-free, with
 * nothing to make atomic across two writes.
 *
 * A write costs one round trip: the client keeps what it last knew of each key (see
 * `board-known.ts`) and sends the conditional update on that, reading the key only when the
 * server refuses it. History and loads read the stream in batches (see `stream-read.ts`).
 *
 * A write whose answer never comes (a lost connection, a leader election) may have been stored
 * or not: it is tried again until the key's next revision says whether it is this write, so that
 * a caller is never told "failed" or "conflict" about a write that was applied. Reads are retried
 * through such an outage too.
 */
import { randomUUID } from "node:crypto";
import type { JetStreamClient, JetStreamManager, MsgRequest, StreamState } from "@nats-io/jetstream";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import { nextVersion } from "../../core/cas.ts";
import { InvalidValueError } from "../../core/errors.ts";
import { NO_TAGS } from "../../core/json.ts";
import type { BoardStore, DeleteRequest, HistoryQuery, RejectedMessages, StoredEntry, StoredRecord, WriteRequest } from "../../core/store.ts";
import { KnownKeys, summary, type Known } from "./board-known.ts";
import { encodeKey, readStored, type Stored } from "./board-record.ts";
import { contentionPause, onStored, outlast, sendThrough } from "./jetstream.ts";
import { Rejections } from "./rejections.ts";
import { readStream, type StreamMessage } from "./stream-read.ts";

/** A stream's per-subject limit meaning none: the bucket keeps every revision, and so is the log. */
const EVERY_REVISION = -1;

function toRecord(stored: Stored, seq: number): StoredRecord {
  return { seq, op: stored.op, key: stored.key, version: stored.version, author: stored.author, at: stored.at, json: stored.json, tags: stored.tags };
}

function toEntry(stored: Stored): StoredEntry {
  return { key: stored.key, json: stored.json!, author: stored.author, version: stored.version, createdAt: stored.createdAt, updatedAt: stored.at, tags: stored.tags };
}

export class NatsBoardStore implements BoardStore {
  readonly #kv: KV;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #bucketStream: string;
  /** The KV subjects' prefix: a key's revisions are the bucket stream's messages on `${#subjects}${encoded key}`. */
  readonly #subjects: string;
  /** Writes are conditional on the whole bucket's last sequence, not the key's (see `open`). */
  readonly #serial: boolean;
  /** What this client last knew of each key: a write expects it, and reads only after a conflict. */
  readonly #known = new KnownKeys();

  readonly #maxPayload: number;
  readonly #rejections = new Rejections();

  private constructor(kv: KV, js: JetStreamClient, jsm: JetStreamManager, bucket: string, maxPayload: number, serial: boolean) {
    this.#maxPayload = maxPayload;
    this.#kv = kv;
    this.#js = js;
    this.#jsm = jsm;
    this.#bucketStream = `KV_${bucket}`;
    this.#subjects = `$KV.${bucket}.`;
    this.#serial = serial;
  }

  /**
   * Opens (creating if needed) the board's bucket. On a replicated bucket the
   * server does not hold a key's compare-and-set (`Nats-Expected-Last-Subject-Sequence`) against
   * writes still in flight through its raft group (nats-server#4320, fixed in 2.9.21 but still
   * not re-checked across a leader change), so two writers expecting one revision may both
   * succeed. There, each write is made conditional on the bucket's last sequence, which the
   * server does check on apply: writes to one board are serialised, as on the task log.
   */
  static open(js: JetStreamClient, jsm: JetStreamManager, bucket: string, replicas: number, maxPayload: number): Promise<NatsBoardStore> {
    return outlast(async () => {
      // No direct gets: on a replicated bucket a follower may answer those, with an older value.
      const kv = await new Kvm(js).create(bucket, { history: EVERY_REVISION, replicas, allow_direct: false });
      const { config } = await jsm.streams.info(`KV_${bucket}`);
      return new NatsBoardStore(kv, js, jsm, bucket, maxPayload, config.num_replicas > 1);
    });
  }

  /**
   * Sends the write conditional on what this client knows of the key, reading the key only when
   * it knows nothing, when the server refuses (another client wrote since), or before refusing an
   * expected version that the possibly stale knowledge does not match.
   */
  async write(request: WriteRequest): Promise<{ record: StoredRecord; createdAt: number }> {
    const id = randomUUID();
    const token = encodeKey(request.key);
    let known = this.#known.of(token);
    for (let lost = 0; ; ) {
      const fresh = known === undefined;
      known ??= await outlast(() => this.#read(request.key));
      const previous = known.record;
      const live = previous?.op === "write" ? previous.version : 0;
      if (!fresh && request.expectedVersion !== undefined && request.expectedVersion !== live) {
        known = undefined;
        continue;
      }
      const version = nextVersion(request.key, request.expectedVersion, live, previous?.version ?? 0);
      const createdAt = live > 0 ? previous!.createdAt : request.at;
      const stored: Stored = { op: "write", key: request.key, version, author: request.author, at: request.at, createdAt, json: request.json, tags: request.tags, id };
      const seq = await this.#put(request.key, stored, known);
      if (seq !== undefined) return { record: toRecord(stored, seq), createdAt };
      // Someone wrote (the key, or on a replicated bucket any key) since what we knew: read again
      // (and refuse, if a version was expected and the key moved).
      known = undefined;
      if (fresh) await this.#lost(++lost);
    }
  }

  async delete(request: DeleteRequest): Promise<StoredRecord | undefined> {
    const id = randomUUID();
    let known = this.#known.of(encodeKey(request.key));
    for (let lost = 0; ; ) {
      const fresh = known === undefined;
      known ??= await outlast(() => this.#read(request.key));
      const previous = known.record;
      const live = previous?.op === "write" ? previous.version : 0;
      // "No such key" and a refused version are answers only a read may give.
      if (!fresh && (live === 0 || (request.expectedVersion !== undefined && request.expectedVersion !== live))) {
        known = undefined;
        continue;
      }
      if (live === 0 && request.expectedVersion === undefined) return undefined;
      const version = nextVersion(request.key, request.expectedVersion, live, previous?.version ?? 0);
      if (live === 0) return undefined;
      const stored: Stored = { op: "delete", key: request.key, version, author: request.author, at: request.at, createdAt: previous!.createdAt, json: null, tags: NO_TAGS, id };
      const seq = await this.#put(request.key, stored, known);
      if (seq !== undefined) return toRecord(stored, seq);
      known = undefined;
      if (fresh) await this.#lost(++lost);
    }
  }

  /** The key as it is now; on a replicated bucket, as of the head read first (a key newer than it is read again). */
  async #read(key: string): Promise<Known> {
    for (;;) {
      const head = this.#serial ? (await this.#state()).last_seq : undefined;
      const current = await this.#kv.get(encodeKey(key));
      const revision = current?.revision ?? 0;
      if (head === undefined || revision <= head) {
        const stored = await this.#newest(current);
        return this.#known.learn(encodeKey(key), { revision, at: head ?? revision, record: stored && summary(stored) });
      }
    }
  }

  /**
   * The newest record Colony wrote of the key whose current message is `current`. A foreign
   * message there (or a KV delete, which Colony never makes) is skipped as the log skips it: the
   * key is what the records before it made it.
   */
  async #newest(current: KvEntry | null): Promise<Stored | undefined> {
    if (!current) return undefined;
    return this.#accept(current.revision, current.value, current.key) ?? this.#newestBefore(current.key, current.revision);
  }

  /** The newest record Colony wrote of encoded key `token` up to bucket sequence `seq`. */
  async #newestBefore(token: string, seq: number): Promise<Stored | undefined> {
    let newest: Stored | undefined;
    for await (const message of readStream(this.#js, this.#jsm, this.#bucketStream, { from: 1, through: seq, subject: `${this.#subjects}${token}` })) {
      if (message.seq > seq) break;
      newest = this.#accept(message.seq, message.data, token) ?? newest;
    }
    return newest;
  }

  /** The record in the bucket's message `seq` on encoded key `token`; undefined, counted, if Colony did not write it. */
  #accept(seq: number, data: Uint8Array, token: string): Stored | undefined {
    const read = readStored(data, token);
    if (read.ok) return read.stored;
    this.#rejections.note(this.#bucketStream, seq, read.reason);
    return undefined;
  }

  rejected(): RejectedMessages {
    return this.#rejections.snapshot();
  }

  /** After a lost race on a replicated bucket, where every writer races every other: a random, growing pause, so that none starves. */
  async #lost(attempt: number): Promise<void> {
    if (this.#serial) await contentionPause(attempt);
  }

  /**
   * The write, if nothing it depends on moved since `known`; undefined if another writer got there
   * first. An unanswered write is sent again; once the log has moved on, the message after where
   * it was known tells whether it was this write.
   */
  async #put(key: string, stored: Stored, known: Known): Promise<number | undefined> {
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
    const token = encodeKey(key);
    const subject = `${this.#subjects}${token}`;
    const { revision, at } = known;
    // Which message would be this write: the bucket's next one, or the key's next one (the server's
    // message get takes next_by_subj since 2.9; nats.js types it for direct gets only).
    const next = this.#serial ? { seq: at + 1 } : ({ next_by_subj: subject, seq: revision + 1 } as unknown as MsgRequest);
    const seq = await sendThrough(
      async () => {
        if (this.#serial) return (await this.#js.publish(subject, payload, { msgID: stored.id, expect: { lastSequence: at } })).seq;
        return revision === 0 ? await this.#kv.create(token, payload) : await this.#kv.update(token, payload, revision);
      },
      () => this.#landed(next, stored.id!),
    );
    if (seq !== undefined) this.#known.wrote(token, seq, summary(stored));
    return seq;
  }

  /** The seq of write `id` if it is the message `next` asks for; undefined if another write is. */
  async #landed(next: MsgRequest, id: string): Promise<number | undefined> {
    const message = await this.#jsm.streams.getMessage(this.#bucketStream, next);
    if (!message) return undefined;
    const read = readStored(message.data, message.subject.slice(this.#subjects.length));
    return read.ok && read.stored.id === id ? message.seq : undefined;
  }

  async get(key: string): Promise<StoredEntry | undefined> {
    const stored = await outlast(async () => {
      const current = await this.#kv.get(encodeKey(key));
      const newest = await this.#newest(current);
      if (current && newest) this.#known.learn(current.key, { revision: current.revision, at: current.revision, record: summary(newest) });
      return newest;
    });
    return stored?.op === "write" ? toEntry(stored) : undefined;
  }

  /**
   * Every live entry and the log position they reflect: each key's last message, read in batches
   * between two looks at the bucket's head; if a write slipped in between, it is read again.
   */
  load(): Promise<{ entries: StoredEntry[]; seq: number }> {
    return outlast(() => this.#load());
  }

  async #load(): Promise<{ entries: StoredEntry[]; seq: number }> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const before = (await this.#state()).last_seq;
      const newest: { token: string; seq: number; stored: Stored | undefined }[] = [];
      for await (const message of readStream(this.#js, this.#jsm, this.#bucketStream, { lastPerSubject: true, subject: `${this.#subjects}>` })) {
        const token = message.subject.slice(this.#subjects.length);
        newest.push({ token, seq: message.seq, stored: this.#accept(message.seq, message.data, token) });
      }
      if ((await this.#state()).last_seq !== before) continue;
      const entries: StoredEntry[] = [];
      for (const { token, seq, stored } of newest) {
        // A foreign last message: the key is what Colony's records before it made it.
        const record = stored ?? (await this.#newestBefore(token, seq));
        if (record === undefined) continue;
        this.#known.learn(token, { revision: seq, at: seq, record: summary(record) });
        if (record.op === "write") entries.push(toEntry(record));
      }
      this.#known.complete(before);
      return { entries, seq: before };
    }
    // Written to without pause: fold the log instead, which is consistent by construction.
    const seq = (await this.#state()).last_seq;
    const live = new Map<string, StoredEntry>();
    for (const record of await this.#history({ since: 0, limit: seq })) {
      if (record.op === "delete") live.delete(record.key);
      else live.set(record.key, { key: record.key, json: record.json!, author: record.author, version: record.version, createdAt: live.get(record.key)?.createdAt ?? record.at, updatedAt: record.at, tags: record.tags });
    }
    // Every record up to `seq` was learned on the way, so a key with none had none.
    this.#known.complete(seq);
    return { entries: [...live.values()], seq };
  }

  history(query: HistoryQuery): Promise<StoredRecord[]> {
    return outlast(() => this.#history(query));
  }

  /**
   * The records after `since`, read in batches from the bucket's stream (only the key's subject
   * for `{ key }`). Every message read also tells this client what it knows of its key.
   */
  async #history(query: HistoryQuery): Promise<StoredRecord[]> {
    const since = query.since ?? 0;
    const limit = query.limit ?? Infinity;
    const state = await this.#state();
    const head = state.last_seq;
    const subject = query.key !== undefined ? `${this.#subjects}${encodeKey(query.key)}` : undefined;
    const continuous = subject === undefined && this.#known.continues(since);
    const out: StoredRecord[] = [];
    // The last message read, once the limit stops the read short of the head.
    let through = head;
    const take = (message: StreamMessage): boolean => {
      const token = message.subject.slice(this.#subjects.length);
      const stored = this.#accept(message.seq, message.data, token);
      if (continuous) this.#known.follow(token, message.seq, stored && summary(stored));
      else if (stored) this.#known.learn(token, { revision: message.seq, at: message.seq, record: summary(stored) });
      if (stored && (query.key === undefined || stored.key === query.key)) out.push(toRecord(stored, message.seq));
      if (out.length < limit) return false;
      through = message.seq;
      return true;
    };
    for await (const message of readStream(this.#js, this.#jsm, this.#bucketStream, { from: since + 1, through: head, ...(subject !== undefined && { subject }) })) {
      if (message.seq > head || take(message)) break;
    }
    if (continuous) this.#known.complete(through);
    return out;
  }

  /** Calls `listener` after every write to the bucket (see `onStored`). */
  onChange(listener: () => void): () => void {
    return onStored(this.#js, this.#bucketStream, listener);
  }

  async #state(): Promise<StreamState> {
    return (await this.#jsm.streams.info(this.#bucketStream)).state;
  }
}
