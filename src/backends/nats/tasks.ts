/**
 * A task board on JetStream, as an event-sourced log with optimistic concurrency. Each
 * transaction that changes anything is one message on the board's stream, holding its write set;
 * it is published only if the stream is still at the sequence the transaction read (JetStream's
 * expected-last-sequence check), so transactions are serialisable across every client, as SQLite's
 * write lock makes them on one machine. A client that loses the race folds the newer messages in
 * and runs its transaction again. Every client keeps the board folded in memory.
 *
 * A publish whose answer never comes (the client's server died after passing it on, a stream
 * leader is being elected) may have been stored or not. It is sent again under the same message
 * id until the log says which, so that a caller is never told "failed" about a transaction that
 * was applied, and no transaction is applied twice.
 */
import { randomUUID } from "node:crypto";
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { ColonyError } from "../../core/errors.ts";
import type { RejectedMessages, TaskStore, TaskTx, TaskView } from "../../core/store.ts";
import type { TaskEvent } from "../../core/tasks.ts";
import { StagedTaskTx, TaskState, lookOrWork, type TaskChanges } from "../task-state.ts";
import { contentionPause, ensureStream, onStored, outlast, sendThrough } from "./jetstream.ts";
import { Rejections } from "./rejections.ts";
import { readChanges } from "./task-log.ts";

/** How far behind a client folds through a consumer in batches (of FETCH_BATCH) instead of message by message. */
const BATCH_FROM = 64;
const FETCH_BATCH = 1000;

/** A transaction lost the race for the log more often than this in a row. */
export class TaskContentionError extends ColonyError {
  constructor(stream: string, attempts: number) {
    super("STORE_BUSY", `the task log ${stream} moved on under ${attempts} attempts in a row; try again`);
  }
}

export class NatsTaskStore implements TaskStore {
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #stream: string;
  readonly #subject: string;
  readonly #maxPayload: number;
  readonly #state = new TaskState();
  /** The stream sequence the state is folded up to. */
  #applied = 0;
  readonly #rejections = new Rejections();
  /** One transaction at a time per client: they would only race each other for the log. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(nc: NatsConnection, js: JetStreamClient, jsm: JetStreamManager, stream: string, subject: string) {
    this.#js = js;
    this.#jsm = jsm;
    this.#stream = stream;
    this.#subject = subject;
    this.#maxPayload = nc.info?.max_payload ?? 1024 * 1024;
  }

  static async open(nc: NatsConnection, js: JetStreamClient, jsm: JetStreamManager, stream: string, subject: string, replicas: number): Promise<NatsTaskStore> {
    await outlast(() => ensureStream(jsm, { name: stream, subjects: [subject], num_replicas: replicas }));
    return new NatsTaskStore(nc, js, jsm, stream, subject);
  }

  /** One transaction: catching up is the cost of a read here, and a look that answers publishes nothing. */
  readOrTransact<T>(look: (view: TaskView) => { value: T } | undefined, work: (tx: TaskTx) => T): Promise<T> {
    return this.transact(lookOrWork(look, work));
  }

  transact<T>(work: (tx: TaskTx) => T): Promise<T> {
    const run = this.#queue.then(() => this.#transact(work));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #transact<T>(work: (tx: TaskTx) => T): Promise<T> {
    const attempts = 100;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      await outlast(() => this.#catchUp());
      const tx = new StagedTaskTx(this.#state);
      const result = work(tx);
      const changes = tx.changes();
      if (!changes) return result;
      if (await this.#append(changes)) return result;
      // Another client committed first: fold it in and run again on the newer state.
      await contentionPause(attempt);
    }
    throw new TaskContentionError(this.#stream, attempts);
  }

  /**
   * Publishes the write set if the log is still where this client read it; false if it moved.
   * An unanswered publish is sent again with the same id: the server answers the copy of one it
   * stored as a duplicate, or, if the log moved on meanwhile, the message after where this client
   * read tells whether it was ours.
   */
  async #append(changes: TaskChanges): Promise<boolean> {
    const payload = JSON.stringify(changes);
    if (Buffer.byteLength(payload, "utf8") > this.#maxPayload) {
      throw new ColonyError("VALUE_TOO_LARGE", `one task transaction is ${Buffer.byteLength(payload, "utf8")} bytes, over the NATS server's max_payload of ${this.#maxPayload}; submit fewer or smaller tasks at once, or raise max_payload`);
    }
    const read = this.#applied;
    const options = { msgID: randomUUID(), expect: { lastSequence: read, streamName: this.#stream } };
    const seq = await sendThrough(
      async () => (await this.#js.publish(this.#subject, payload, options)).seq,
      () => this.#holds(read + 1, options.msgID),
    );
    if (seq === undefined) return false;
    this.#state.apply(changes);
    this.#applied = seq;
    return true;
  }

  /** `seq` if the log's message there is the one published under `msgID`. */
  async #holds(seq: number, msgID: string): Promise<number | undefined> {
    const message = await this.#jsm.streams.getMessage(this.#stream, { seq });
    return message?.header?.get("Nats-Msg-Id") === msgID ? seq : undefined;
  }

  /** Folds every message the log has past what this client applied. */
  async #catchUp(): Promise<void> {
    const head = (await this.#jsm.streams.info(this.#stream)).state.last_seq;
    if (head - this.#applied >= BATCH_FROM) await this.#fetchUpTo(head);
    for (let seq = this.#applied + 1; seq <= head; seq++) {
      const message = await this.#jsm.streams.getMessage(this.#stream, { seq });
      if (!message) throw new ColonyError("CORRUPT", `the task log ${this.#stream} has no message ${seq}; was the stream edited by hand?`);
      this.#fold(seq, message.data);
    }
  }

  /**
   * Folds a long way (opening a board with a long log) in batches through a short-lived ordered
   * consumer, rather than one request per message. Stops early, leaving the rest to the message
   * by message loop, at anything unexpected.
   */
  async #fetchUpTo(head: number): Promise<void> {
    const consumer = await this.#js.consumers.get(this.#stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.#applied + 1 });
    while (this.#applied < head) {
      const batch = await consumer.fetch({ max_messages: Math.min(FETCH_BATCH, head - this.#applied), expires: 5000 });
      let folded = 0;
      for await (const message of batch) {
        if (message.seq !== this.#applied + 1) continue;
        this.#fold(message.seq, message.data);
        folded++;
      }
      if (folded === 0) return;
    }
  }

  /** Applies the message at `seq`, or skips and counts it if it is not a write set Colony could have made here. */
  #fold(seq: number, data: Uint8Array): void {
    const read = readChanges(data, this.#state);
    if (read.ok) this.#state.apply(read.changes);
    else this.#rejections.note(this.#stream, seq, read.reason);
    this.#applied = seq;
  }

  rejected(): RejectedMessages {
    return this.#rejections.snapshot();
  }

  async events(since: number, limit?: number): Promise<TaskEvent[]> {
    await this.transact(() => undefined);
    return this.#state.eventsSince(since, limit);
  }

  async head(): Promise<number> {
    await this.transact(() => undefined);
    return this.#state.events.length;
  }

  onChange(listener: () => void): () => void {
    return onStored(this.#js, this.#stream, listener);
  }
}
