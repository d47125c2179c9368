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
 * nothing to make atomic across two writes. Boards made before that kept one revision per key
 * and their log in a mirror stream of the bucket; such a mirror is still read for the records
 * its bucket dropped (new boards have none). (A mirror is no log by itself: when it lags behind a bucket that
 * drops old revisions, as it does under load or while its leader fails over, the revisions
 * dropped meanwhile never reach it, and the log has holes.)
 *
 * A write whose answer never comes (a lost connection, a leader election) may have been stored
 * or not: it is tried again until the key's next revision says whether it is this write, so that
 * a caller is never told "failed" or "conflict" about a write that was applied. Reads are retried
 * through such an outage too.
 */
import { randomUUID } from "node:crypto";
import type { JetStreamClient, JetStreamManager, MsgRequest } from "@nats-io/jetstream";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import { nextVersion } from "../../core/cas.ts";
import { InvalidValueError } from "../../core/errors.ts";
import type { BoardStore, DeleteRequest, HistoryQuery, RejectedMessages, StoredEntry, StoredRecord, WriteRequest } from "../../core/store.ts";
import { encodeKey, readStored, type Stored } from "./board-record.ts";
import { contentionPause, ensureStream, onStored, outlast, sendThrough } from "./jetstream.ts";
import { Rejections } from "./rejections.ts";

const MIRROR_WAIT_MS = 5000;
/** A stream's per-subject limit meaning none: the bucket keeps every revision, and so is the log. */
const EVERY_REVISION = -1;

function toRecord(stored: Stored, seq: number): StoredRecord {
  return { seq, op: stored.op, key: stored.key, version: stored.version, author: stored.author, at: stored.at, json: stored.json, tags: stored.tags };
}

function toEntry(stored: Stored): StoredEntry {
  return { key: stored.key, json: stored.json!, author: stored.author, version: stored.version, createdAt: stored.createdAt, updatedAt: stored.at, tags: stored.tags };
}

/**
 * A key as read for a write: its current message (whose revision the write is conditional on),
 * the newest record of it that Colony wrote (the current message, unless a foreign one came
 * after), and (on a replicated bucket) the bucket's head before it.
 */
interface Read {
  current: KvEntry | null;
  stored: Stored | undefined;
  head: number | undefined;
}

export class NatsBoardStore implements BoardStore {
  readonly #kv: KV;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #bucketStream: string;
  readonly #logStream: string;
  /** The KV subjects' prefix: a key's revisions are the bucket stream's messages on `${#subjects}${encoded key}`. */
  readonly #subjects: string;
  /** Writes are conditional on the whole bucket's last sequence, not the key's (see `open`). */
  readonly #serial: boolean;

  readonly #maxPayload: number;
  readonly #rejections = new Rejections();

  private constructor(kv: KV, js: JetStreamClient, jsm: JetStreamManager, bucket: string, log: string, maxPayload: number, serial: boolean) {
    this.#maxPayload = maxPayload;
    this.#kv = kv;
    this.#js = js;
    this.#jsm = jsm;
    this.#bucketStream = `KV_${bucket}`;
    this.#logStream = log;
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
  static open(js: JetStreamClient, jsm: JetStreamManager, bucket: string, log: string, replicas: number, maxPayload: number): Promise<NatsBoardStore> {
    return outlast(async () => {
      // No direct gets: the server lets a mirror of a KV stream answer those (mirror_direct), and
      // the log mirror trails the bucket, so a read right after a write could see the older value.
      const kv = await new Kvm(js).create(bucket, { history: EVERY_REVISION, replicas, allow_direct: false });
      const { config } = await jsm.streams.info(`KV_${bucket}`);
      if (config.max_msgs_per_subject !== EVERY_REVISION) {
        // A board made when the bucket kept one revision per key: from now on it keeps them all,
        // and its mirror keeps serving what it dropped before.
        await jsm.streams.update(config.name, { ...config, max_msgs_per_subject: EVERY_REVISION });
        await ensureStream(jsm, { name: log, mirror: { name: `KV_${bucket}` }, num_replicas: replicas, mirror_direct: false });
      }
      return new NatsBoardStore(kv, js, jsm, bucket, log, maxPayload, config.num_replicas > 1);
    });
  }

  async write(request: WriteRequest): Promise<{ record: StoredRecord; createdAt: number }> {
    const id = randomUUID();
    for (let attempt = 1; ; attempt++) {
      const read = await outlast(() => this.#read(request.key));
      const previous = read.stored;
      const live = previous?.op === "write" ? previous.version : 0;
      const version = nextVersion(request.key, request.expectedVersion, live, previous?.version ?? 0);
      const createdAt = live > 0 ? previous!.createdAt : request.at;
      const stored: Stored = { op: "write", key: request.key, version, author: request.author, at: request.at, createdAt, json: request.json, tags: request.tags, id };
      const seq = await this.#put(request.key, stored, read);
      if (seq !== undefined) return { record: toRecord(stored, seq), createdAt };
      // Someone wrote (the key, or on a replicated bucket any key) between our read and our
      // write: read again (and refuse, if a version was expected and the key moved).
      await this.#lost(attempt);
    }
  }

  async delete(request: DeleteRequest): Promise<StoredRecord | undefined> {
    const id = randomUUID();
    for (let attempt = 1; ; attempt++) {
      const read = await outlast(() => this.#read(request.key));
      const previous = read.stored;
      const live = previous?.op === "write" ? previous.version : 0;
      if (live === 0 && request.expectedVersion === undefined) return undefined;
      const version = nextVersion(request.key, request.expectedVersion, live, previous?.version ?? 0);
      if (live === 0) return undefined;
      const stored: Stored = { op: "delete", key: request.key, version, author: request.author, at: request.at, createdAt: previous!.createdAt, json: null, tags: [], id };
      const seq = await this.#put(request.key, stored, read);
      if (seq !== undefined) return toRecord(stored, seq);
      await this.#lost(attempt);
    }
  }

  /** The key's current message; on a replicated bucket also the head it is current at (read first: a key newer than it is read again). */
  async #read(key: string): Promise<Read> {
    for (;;) {
      const head = this.#serial ? await this.#head(this.#bucketStream) : undefined;
      const current = await this.#kv.get(encodeKey(key));
      if (head === undefined || (current?.revision ?? 0) <= head) return { current, stored: await this.#newest(current), head };
    }
  }

  /**
   * The newest record Colony wrote of the key whose current message is `current`. A foreign
   * message there (or a KV delete, which Colony never makes) is skipped as the log skips it: the
   * key is what the records before it made it.
   */
  async #newest(current: KvEntry | null): Promise<Stored | undefined> {
    if (!current) return undefined;
    const stored = this.#accept(current.revision, current.value, current.key);
    if (stored) return stored;
    let newest: Stored | undefined;
    const revisions = await this.#kv.history({ key: current.key });
    for await (const entry of revisions) {
      newest = this.#accept(entry.revision, entry.value, entry.key) ?? newest;
      if (entry.revision >= current.revision) break;
    }
    revisions.stop();
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
   * The write, if nothing it depends on moved since `read`; undefined if another writer got there
   * first. An unanswered write is sent again; once the log has moved on, the message after where
   * it was read tells whether it was this write.
   */
  async #put(key: string, stored: Stored, read: Read): Promise<number | undefined> {
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
    const subject = `${this.#subjects}${encodeKey(key)}`;
    const revision = read.current?.revision ?? 0;
    // Which message would be this write: the bucket's next one, or the key's next one (the server's
    // message get takes next_by_subj since 2.9; nats.js types it for direct gets only).
    const next = read.head === undefined ? ({ next_by_subj: subject, seq: revision + 1 } as unknown as MsgRequest) : { seq: read.head + 1 };
    return sendThrough(
      async () => {
        if (read.head !== undefined) return (await this.#js.publish(subject, payload, { msgID: stored.id, expect: { lastSequence: read.head } })).seq;
        return read.current === null ? await this.#kv.create(encodeKey(key), payload) : await this.#kv.update(encodeKey(key), payload, revision);
      },
      () => this.#landed(next, stored.id!),
    );
  }

  /** The seq of write `id` if it is the message `next` asks for; undefined if another write is. */
  async #landed(next: MsgRequest, id: string): Promise<number | undefined> {
    const message = await this.#jsm.streams.getMessage(this.#bucketStream, next);
    if (!message) return undefined;
    const read = readStored(message.data, message.subject.slice(this.#subjects.length));
    return read.ok && read.stored.id === id ? message.seq : undefined;
  }

  async get(key: string): Promise<StoredEntry | undefined> {
    const stored = await outlast(async () => this.#newest(await this.#kv.get(encodeKey(key))));
    return stored?.op === "write" ? toEntry(stored) : undefined;
  }

  /**
   * Every live entry and the log position they reflect. The bucket's last values are read
   * between two looks at its head; if a write slipped in between, it is read again.
   */
  load(): Promise<{ entries: StoredEntry[]; seq: number }> {
    return outlast(() => this.#load());
  }

  async #load(): Promise<{ entries: StoredEntry[]; seq: number }> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const before = await this.#head(this.#bucketStream);
      const entries: StoredEntry[] = [];
      const keys = await this.#kv.keys();
      for await (const encoded of keys) {
        const stored = await this.#newest(await this.#kv.get(encoded));
        if (stored?.op === "write") entries.push(toEntry(stored));
      }
      if ((await this.#head(this.#bucketStream)) === before) return { entries, seq: before };
    }
    // Written to without pause: fold the log instead, which is consistent by construction.
    const seq = await this.#head(this.#bucketStream);
    const live = new Map<string, StoredEntry>();
    for (const record of await this.#history({ since: 0, limit: seq })) {
      if (record.op === "delete") live.delete(record.key);
      else live.set(record.key, { key: record.key, json: record.json!, author: record.author, version: record.version, createdAt: live.get(record.key)?.createdAt ?? record.at, updatedAt: record.at, tags: record.tags });
    }
    return { entries: [...live.values()], seq };
  }

  history(query: HistoryQuery): Promise<StoredRecord[]> {
    return outlast(() => this.#history(query));
  }

  async #history(query: HistoryQuery): Promise<StoredRecord[]> {
    const since = query.since ?? 0;
    const limit = query.limit ?? Infinity;
    const head = await this.#head(this.#bucketStream);
    const out: StoredRecord[] = [];
    for (let seq = since + 1; seq <= head && out.length < limit; seq++) {
      const stored = await this.#record(seq);
      if (stored && (query.key === undefined || stored.key === query.key)) out.push(toRecord(stored, seq));
    }
    return out;
  }

  /**
   * The log record at `seq`: in the bucket, or, if the bucket dropped it (made before it kept
   * every revision), in the log mirror. Undefined, counted, if Colony did not write it.
   */
  async #record(seq: number): Promise<Stored | undefined> {
    let message = await this.#jsm.streams.getMessage(this.#bucketStream, { seq });
    if (!message) {
      await this.#mirrorAt(seq);
      message = await this.#jsm.streams.getMessage(this.#logStream, { seq });
    }
    if (!message) throw new Error(`the log of ${this.#bucketStream} has no record ${seq}; was the stream edited by hand?`);
    return this.#accept(seq, message.data, message.subject.slice(this.#subjects.length));
  }

  /** Calls `listener` after every write to the bucket (see `onStored`). */
  onChange(listener: () => void): () => void {
    return onStored(this.#js, this.#bucketStream, listener);
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
