/**
 * A task board on JetStream, as an event-sourced log whose write sets are decided as they are
 * folded. Each transaction that changes anything is one message on the board's stream, holding
 * its write set and the revision of every task and worker it rests on (see `TaskTx`). The server
 * appends it unconditionally, in whatever order messages come; every client folds the log in that
 * order and applies a write set only if what it rests on is still at the revisions it read, so
 * all clients decide alike with no one asking anyone. Transactions on different tasks never
 * conflict, and none waits for the log to be at a sequence: there is no single point that every
 * write of the board races for, only the order of appends. A transaction learns whether it was
 * applied when its client has folded its message; if it was not, it runs again on the newer state.
 * (This also keeps clear of expected-sequence checks, which nats-server 2.9 does not hold across
 * a leader change on a replicated stream.) Every client keeps the board folded in memory.
 *
 * A publish whose answer never comes (the client's server died after passing it on, a stream
 * leader is being elected) may have been stored or not. It is sent again under the same message
 * id, which the server takes as a duplicate if it had stored it; a copy stored twice (past the
 * server's duplicate window) is not applied twice, as the first copy moved what it rests on.
 *
 * The log does not grow without end: every so often a client writes a snapshot of the folded state
 * (which retention keeps bounded) to the board's snapshot stream, and then purges the log up to the
 * snapshot before it. A client opening the board starts from the newest snapshot and folds only
 * what came after it; one that fell behind past the purge starts over from the snapshot.
 */
import { randomUUID } from "node:crypto";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { z } from "zod";
import type { NatsConnection } from "@nats-io/transport-node";
import { ChangeSignal } from "../../core/changes.ts";
import { ColonyError, TaskContentionError } from "../../core/errors.ts";
import type { RejectedMessages, TaskStore, TaskTx, TaskView } from "../../core/store.ts";
import type { TaskEvent } from "../../core/tasks.ts";
import { StagedTaskTx, TaskState, lookOrWork, type TaskChanges } from "../task-state.ts";
import { contentionPause, ensureStream, isConflict, onStored, outlast } from "./jetstream.ts";
import { Rejections } from "./rejections.ts";
import { readStream } from "./stream-read.ts";
import { readChanges, restoreState } from "./task-log.ts";

/** How far behind a client folds through a consumer in batches (of FETCH_BATCH) instead of message by message. */
const BATCH_FROM = 64;
/** How long a transaction waits for the feed to bring its own message back before it asks the log. */
const FEED_WAIT_MS = 50;
/**
 * A snapshot is written once the log holds this many messages past the newest one, or a quarter
 * as many as the state has tasks and events if that is more. A client opening the board folds
 * what came after the newest snapshot, one message at a time (a message costs a few times what
 * a snapshot's task does), so the interval bounds how long opening takes past reading the
 * snapshot; and a snapshot's size (a task or event is a fraction of a message) spread over the
 * interval keeps the writing of snapshots to about what the log itself takes.
 */
export const SNAPSHOT_EVERY = 500;
/**
 * A snapshot is also written once the state holds less than half of what the newest snapshot
 * held (retention removed what a burst of work left), less this many tasks and events, and
 * SHRUNK_AFTER messages or more came after it: a board that went quiet is opened from what it
 * holds, not from the burst its last snapshot happened to catch, even one written just before the
 * board was swept. (Not again and again: the state must grow and shrink again before the next.)
 */
const SHRUNK_BY = 256;
const SHRUNK_AFTER = 1;

/** How many transactions of one client are committed together as one write set, at most. */
const GROUP_MAX = 64;

/** A transaction waiting to be made and committed. */
interface Pending {
  work: (tx: TaskTx) => unknown;
  /** Its caller is woken by every change and looks again then: an answer from the feed's state will do. */
  heard: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** What a transaction of a group returned or threw, and whether it wrote anything. */
type Outcome = { ok: true; value: unknown; wrote: boolean } | { ok: false; error: unknown; wrote: false };

function settle(group: readonly Pending[], outcomes: readonly Outcome[]): void {
  for (const [i, item] of group.entries()) {
    const outcome = outcomes[i]!;
    if (outcome.ok) item.resolve(outcome.value);
    else item.reject(outcome.error);
  }
}

/** Where a task board's log and its snapshots live. */
export interface TaskStreams {
  stream: string;
  subject: string;
  snapshots: { stream: string; subject: string };
}

/** The snapshot stream's head message: the newest snapshot, as its chunks' subject and where they start. */
const snapshotHeadSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
  seq: z.number().int().min(0),
  first: z.number().int().min(1),
  chunks: z.number().int().min(1),
  /** Its tasks and events; absent from older heads. */
  entries: z.number().int().min(0).optional(),
});
type SnapshotHead = z.infer<typeof snapshotHeadSchema>;


export class NatsTaskStore implements TaskStore {
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #stream: string;
  readonly #subject: string;
  readonly #snapshots: { stream: string; subject: string };
  readonly #maxPayload: number;
  #state = new TaskState();
  /** The stream sequence the state is folded up to. */
  #applied = 0;
  /** The log sequence the newest snapshot this client knows of reflects, and the one writing now. */
  #snapshotSeq = 0;
  /** The tasks and events the newest snapshot this client knows of holds; undefined if it does not know. */
  #snapshotEntries: number | undefined;
  #snapshotting: Promise<void> | undefined;
  /** Listeners of the change feed, which brings each stored message to this client while there are any. */
  #listeners = 0;
  #refreshing: Promise<void> | undefined;
  /** Bumped on every message folded. */
  readonly #folds = new ChangeSignal();
  readonly #rejections = new Rejections();
  /** Transactions asked for while a write set is on its way: the next group (see `transact`). */
  readonly #pending: Pending[] = [];
  #committing = false;
  /** Catch-ups, one at a time: each asks where the log ends, then folds up to there. */
  #catchUps: Promise<unknown> = Promise.resolve();
  /** Write sets this client published and waits to see folded: whether each was applied, once known. */
  readonly #awaiting = new Map<string, boolean | undefined>();
  /**
   * What those write sets hold, by id: when the feed brings one back, it is folded from here, not
   * parsed and checked again (this client made it from the state it folds).
   */
  readonly #sent = new Map<string, TaskChanges>();

  private constructor(nc: NatsConnection, js: JetStreamClient, jsm: JetStreamManager, streams: TaskStreams) {
    this.#js = js;
    this.#jsm = jsm;
    this.#stream = streams.stream;
    this.#subject = streams.subject;
    this.#snapshots = streams.snapshots;
    this.#maxPayload = nc.info?.max_payload ?? 1024 * 1024;
  }

  static async open(nc: NatsConnection, js: JetStreamClient, jsm: JetStreamManager, streams: TaskStreams, replicas: number): Promise<NatsTaskStore> {
    await outlast(() => ensureStream(jsm, { name: streams.stream, subjects: [streams.subject], num_replicas: replicas }));
    await outlast(() => ensureStream(jsm, { name: streams.snapshots.stream, subjects: [`${streams.snapshots.subject}.>`], num_replicas: replicas }));
    const store = new NatsTaskStore(nc, js, jsm, streams);
    await outlast(() => store.#startFromSnapshot());
    return store;
  }

  /** One transaction: catching up is the cost of a read here, and a look that answers publishes nothing. */
  readOrTransact<T>(look: (view: TaskView) => { value: T } | undefined, work: (tx: TaskTx) => T, options: { heard?: boolean; heardWill?: (value: T) => boolean } = {}): Promise<T> {
    const { heard, heardWill } = options;
    if ((heard || heardWill) && this.#fed) {
      // On the state as the feed keeps it, at no cost: nothing is asked of the server unless there is work.
      const answer = look(new StagedTaskTx(this.#state));
      if (answer && (heard || heardWill!(answer.value))) return Promise.resolve(answer.value);
      // If the work finds nothing to write after all, that answer stands too, as the look's did.
      if (heard) return this.#enqueue(work, true);
    }
    return this.transact(lookOrWork(look, work));
  }

  /**
   * Runs `work` on the folded state and publishes what it wrote, then waits to see its message
   * folded to learn whether it was applied; if not, what won is folded in by then, and `work` runs
   * again. While the change feed runs, the state is kept up to date by the messages it brings, so
   * a write is tried at once; a stale state only costs a write set that is not applied. Without the
   * feed, and for a transaction that wrote nothing (a read, which must see everything stored
   * before it began), the log is caught up first.
   *
   * One write set is on its way at a time per client. Transactions asked for meanwhile are made
   * one after the other, each on the state plus what those before it wrote, and committed together
   * as one write set (a group commit): a worker finishing several tasks at once publishes once,
   * and its transactions never race each other for the same next task.
   */
  transact<T>(work: (tx: TaskTx) => T): Promise<T> {
    return this.#enqueue(work, false);
  }

  #enqueue<T>(work: (tx: TaskTx) => T, heard: boolean): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ work, heard, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#committing) void this.#commitPending();
    });
  }

  async #commitPending(): Promise<void> {
    this.#committing = true;
    try {
      while (this.#pending.length > 0) await this.#runGroup(this.#pending.splice(0, GROUP_MAX));
    } finally {
      this.#committing = false;
    }
  }

  /** Runs a group of transactions to their end: each resolved with its result or rejected with what it threw. */
  async #runGroup(group: Pending[]): Promise<void> {
    try {
      const attempts = 100;
      let current = !this.#fed;
      for (let attempt = 1; attempt <= attempts; attempt++) {
        if (current) await this.#catchUp();
        const { combined, outcomes } = this.#make(group);
        if (!combined) {
          if (current || group.every((item) => item.heard)) return settle(group, outcomes);
          // Read from what the feed had brought: look at the log itself, and again if it had more.
          const folded = this.#applied;
          await this.#catchUp();
          if (this.#applied === folded) return settle(group, outcomes);
          current = true;
          attempt--;
          continue;
        }
        let applied: boolean;
        try {
          applied = await this.#commit(combined);
        } catch (error) {
          if (!(error instanceof ColonyError && error.code === "VALUE_TOO_LARGE") || group.length === 1) throw error;
          // Too much for one message together: half at a time.
          const half = Math.ceil(group.length / 2);
          await this.#runGroup(group.slice(0, half));
          return await this.#runGroup(group.slice(half));
        }
        if (applied) {
          const done = (i: number) => outcomes[i]!.wrote || current || group[i]!.heard;
          const readers = group.filter((_, i) => !done(i));
          settle(
            group.filter((_, i) => done(i)),
            outcomes.filter((_, i) => done(i)),
          );
          // Those that only read did so on a state the feed brought: they look again, at the log's end.
          if (readers.length > 0) await this.#runGroup(readers);
          return;
        }
        // What it rests on moved: the state now holds what did, so the next run sees it. A pause
        // only once the same race was lost twice, so that two clients do not keep meeting.
        current = false;
        if (attempt > 2) await contentionPause(attempt);
      }
      throw new TaskContentionError(this.#stream, attempts);
    } catch (error) {
      for (const item of group) item.reject(error);
    }
  }

  /**
   * Makes each transaction of `group` on the state plus what those before it wrote, all on one
   * staged transaction; what they wrote together. One that throws after staging something leaves
   * it half there: those before it are made again on a fresh one, without it (a throw before
   * any write, the usual one, costs nothing).
   */
  #make(group: Pending[]): { combined: TaskChanges | undefined; outcomes: Outcome[] } {
    let tx = new StagedTaskTx(this.#state);
    const outcomes: Outcome[] = [];
    for (let i = 0; i < group.length; i++) {
      tx.wrote = false;
      try {
        const value = group[i]!.work(tx);
        outcomes.push({ ok: true, value, wrote: tx.wrote });
      } catch (error) {
        outcomes.push({ ok: false, error, wrote: false });
        if (tx.wrote) tx = this.#remake(group, outcomes);
      }
    }
    return { combined: outcomes.some((o) => o.wrote) ? tx.changes() : undefined, outcomes };
  }

  /** A fresh transaction with the transactions of `outcomes` that did not throw made again, their outcomes replaced. */
  #remake(group: Pending[], outcomes: Outcome[]): StagedTaskTx {
    for (;;) {
      const tx = new StagedTaskTx(this.#state);
      const failed = outcomes.findIndex((outcome, i) => {
        if (!outcome.ok) return false;
        tx.wrote = false;
        try {
          const value = group[i]!.work(tx);
          outcomes[i] = { ok: true, value, wrote: tx.wrote };
          return false;
        } catch (error) {
          outcomes[i] = { ok: false, error, wrote: false };
          return tx.wrote;
        }
      });
      // Made again, one threw after staging (the state it saw was not the same): once more without it.
      if (failed < 0) return tx;
    }
  }

  /**
   * Appends the write set and learns whether it was applied: from the feed's fold, which often
   * brings the message back before the server's answer to the publish, or, once the answer says
   * where it was stored and everything before that is folded, by deciding it here from the write
   * set itself, as every client's fold will. An unanswered publish is sent again with the same
   * message id, which the server answers with the sequence of the copy it stored, if it did.
   */
  async #commit(changes: TaskChanges): Promise<boolean> {
    const id = randomUUID();
    const payload = JSON.stringify({ ...changes, id });
    if (Buffer.byteLength(payload, "utf8") > this.#maxPayload) {
      throw new ColonyError("VALUE_TOO_LARGE", `one task transaction is ${Buffer.byteLength(payload, "utf8")} bytes, over the NATS server's max_payload of ${this.#maxPayload}; submit fewer or smaller tasks at once, or raise max_payload`);
    }
    this.#awaiting.set(id, undefined);
    this.#sent.set(id, changes);
    try {
      const acked = outlast(async () => (await this.#js.publish(this.#subject, payload, { msgID: id })).seq);
      let seq: number | undefined;
      void acked.then((s) => (seq = s), () => undefined);
      // Until the fold decides it or the server answers, whichever comes first.
      while (seq === undefined && this.#awaiting.get(id) === undefined) {
        const seen = this.#folds.version;
        await Promise.race([acked, this.#folds.waitPast(seen)]);
      }
      const decided = this.#awaiting.get(id);
      if (decided !== undefined) return decided;
      // Once everything stored before it is folded, this client decides it as every client will,
      // from the write set it holds, without waiting for the feed to bring it back.
      const last = seq! - 1;
      if (this.#fed) await this.#foldedTo(last, FEED_WAIT_MS);
      while (this.#awaiting.get(id) === undefined && this.#applied < last) await this.#catchUp();
      if (this.#awaiting.get(id) === undefined && this.#applied === last) {
        const applied = this.#state.apply(changes);
        this.#applied = seq!;
        this.#folds.bump();
        this.#maybeSnapshot();
        return applied;
      }
      const applied = this.#awaiting.get(id);
      if (applied === undefined) {
        throw new ColonyError("UNKNOWN_OUTCOME", `this client fell so far behind the task log ${this.#stream} while its transaction was on the way (message ${seq}) that it started again from a snapshot past it, and cannot tell whether it was applied; look at the board before trying again`);
      }
      return applied;
    } finally {
      this.#awaiting.delete(id);
      this.#sent.delete(id);
    }
  }

  /** Waits (for the feed) until the state is folded up to `seq`, or `ms` passed. */
  async #foldedTo(seq: number, ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    for (let left = ms; this.#applied < seq && left > 0; left = deadline - performance.now()) await this.#folds.waitPast(this.#folds.version, undefined, left);
  }

  /**
   * A catch-up shared by the listeners that ask for one at the same time; not behind the write
   * set on its way, which may be waiting for this very fold to learn its outcome.
   */
  #refresh(): Promise<void> {
    this.#refreshing ??= this.#catchUp().finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }

  /** Folds everything the log held when it was called (after the catch-ups already asked for). */
  #catchUp(): Promise<void> {
    const run = this.#catchUps.then(() => outlast(() => this.#catchUpNow()));
    this.#catchUps = run.catch(() => {});
    return run;
  }

  /** Folds every message the log has past what this client applied. */
  async #catchUpNow(): Promise<void> {
    let { first_seq: first, last_seq: head } = (await this.#jsm.streams.info(this.#stream)).state;
    if (first > this.#applied + 1) {
      // What this client had yet to fold was purged behind a newer snapshot: start from that.
      await this.#startFromSnapshot();
      if (first > this.#applied + 1) {
        // A purge and its snapshot seen out of order: look again before calling the log broken.
        ({ first_seq: first, last_seq: head } = (await this.#jsm.streams.info(this.#stream)).state);
        if (first > this.#applied + 1) throw new ColonyError("CORRUPT", `the task log ${this.#stream} starts at ${first}, past its newest snapshot (at ${this.#applied}); was it purged by hand?`);
      }
    } else if (this.#awaiting.size === 0 && head - this.#applied >= 2 * SNAPSHOT_EVERY) {
      // Far behind (a thin worker doing an operation itself, a client that did not listen): from
      // the newest snapshot, if reading it costs less than folding the log up to it.
      await this.#startFromSnapshot(head - this.#applied);
    }
    if (head - this.#applied >= BATCH_FROM) await this.#fetchUpTo(head);
    while (this.#applied < head) {
      const seq = this.#applied + 1;
      const message = await this.#jsm.streams.getMessage(this.#stream, { seq });
      if (!message) throw new ColonyError("CORRUPT", `the task log ${this.#stream} has no message ${seq}; was the stream edited by hand?`);
      this.#fold(seq, message.data);
    }
  }

  /**
   * Folds a long way (opening a board, falling behind) in batches through one short-lived
   * consumer (deleted after), rather than one request per message.
   */
  async #fetchUpTo(head: number): Promise<void> {
    for await (const message of readStream(this.#js, this.#jsm, this.#stream, { from: this.#applied + 1, through: head })) this.#fold(message.seq, message.data);
  }

  /**
   * Applies the message at `seq`, or skips and counts it if it is not a write set Colony could have
   * made here. One of this client's own, known by the message id it was published with, is
   * applied from what it sent.
   */
  #fold(seq: number, data: Uint8Array, messageId?: string): void {
    // The feed and a catch-up may both bring a message: only the next one is folded, once.
    if (seq !== this.#applied + 1) return;
    const sent = messageId === undefined ? undefined : this.#sent.get(messageId);
    const read = sent ? ({ ok: true, changes: { ...sent, id: messageId }, parsed: undefined } as const) : readChanges(data, this.#state);
    if (read.ok) {
      const applied = this.#state.apply(read.changes, read.parsed);
      const id = read.changes.id;
      if (id !== undefined && this.#awaiting.has(id)) this.#awaiting.set(id, applied);
    } else {
      this.#rejections.note(this.#stream, seq, read.reason);
    }
    this.#applied = seq;
    this.#folds.bump();
    this.#maybeSnapshot();
  }

  /** The newest snapshot's head message, if there is one that reads as one. */
  async #snapshotHead(): Promise<{ head: SnapshotHead; seq: number } | undefined> {
    const message = await this.#jsm.streams.getMessage(this.#snapshots.stream, { last_by_subj: `${this.#snapshots.subject}.head` });
    if (!message) return undefined;
    let parsed: unknown;
    try {
      parsed = message.json();
    } catch {
      parsed = undefined;
    }
    const head = snapshotHeadSchema.safeParse(parsed);
    if (!head.success) {
      this.#rejections.note(this.#snapshots.stream, message.seq, "not a snapshot head");
      return undefined;
    }
    return { head: head.data, seq: message.seq };
  }

  /**
   * Replaces the folded state with the newest snapshot's, if it is ahead of it (a client opening
   * the board, or one that fell behind a purge). A snapshot that does not read back whole is
   * skipped and counted; the log from before it is then still there to fold, unless it was purged.
   */
  async #startFromSnapshot(behind?: number): Promise<void> {
    const found = await this.#snapshotHead();
    if (!found || found.head.seq <= this.#applied) return;
    const { head } = found;
    // A snapshot costs about what the interval of log it stands for does (see SNAPSHOT_EVERY):
    // taken only for twice that, and never when its size is not known.
    if (behind !== undefined && behind < 2 * Math.max(SNAPSHOT_EVERY, Math.ceil((head.entries ?? Infinity) / 4))) return;
    const lines: string[] = [];
    let chunks = 0;
    for await (const message of readStream(this.#js, this.#jsm, this.#snapshots.stream, { from: head.first, through: found.seq, subject: `${this.#snapshots.subject}.c.${head.id}` })) {
      // Line by line from the bytes: a line cut from one big string would keep all of it alive.
      for (let start = 0; start <= message.data.length; ) {
        let end = message.data.indexOf(10, start);
        if (end < 0) end = message.data.length;
        lines.push(Buffer.from(message.data.buffer, message.data.byteOffset + start, end - start).toString("utf8"));
        start = end + 1;
      }
      if (++chunks === head.chunks) break;
    }
    const restored = chunks === head.chunks ? restoreState(lines) : { ok: false as const, reason: `${chunks} of its ${head.chunks} chunks are there` };
    if (!restored.ok) {
      this.#rejections.note(this.#snapshots.stream, found.seq, `snapshot ${head.id}: ${restored.reason}`);
      return;
    }
    this.#state = restored.state;
    this.#applied = head.seq;
    this.#snapshotSeq = Math.max(this.#snapshotSeq, head.seq);
    this.#snapshotEntries = this.#entries();
  }

  /** The tasks and events the folded state holds. */
  #entries(): number {
    return this.#state.tasks.size + this.#state.events.length;
  }

  /**
   * Starts writing a snapshot in the background once the log has grown enough past the newest
   * one, or the state has shrunk well below it (see SHRUNK_BY).
   */
  #maybeSnapshot(): void {
    if (this.#snapshotting) return;
    const entries = this.#entries();
    const every = Math.max(SNAPSHOT_EVERY, Math.ceil(entries / 4));
    const since = this.#applied - this.#snapshotSeq;
    const shrunk = since >= SHRUNK_AFTER && this.#snapshotEntries !== undefined && this.#snapshotEntries > 2 * entries + SHRUNK_BY;
    if (since < every && !shrunk) return;
    this.#snapshotting = this.#snapshot(every, shrunk)
      .catch(() => {
        // A lost connection or a closed client: the next client to pass the mark writes one.
      })
      .finally(() => (this.#snapshotting = undefined));
  }

  /** Resolves once the snapshot being written, if any, is written or given up: before the connection closes. */
  async settle(): Promise<void> {
    await this.#snapshotting;
  }

  /**
   * Writes the folded state as a snapshot (its chunks, then a head message naming them, published
   * only if no other client's head came first), then purges what the snapshot before it made
   * unneeded: older snapshots, and the log up to the snapshot before this one (a client that
   * falls behind by less than a snapshot's interval still folds from the log).
   */
  async #snapshot(every: number, shrunk: boolean): Promise<void> {
    const previous = await this.#snapshotHead();
    const lately = previous && this.#applied - previous.head.seq < (shrunk ? SHRUNK_AFTER : every);
    if (previous && lately && (!shrunk || (previous.head.entries ?? Infinity) <= 2 * this.#entries() + SHRUNK_BY)) {
      // Another client wrote one lately (and, when the state shrank, one as small).
      this.#snapshotSeq = Math.max(this.#snapshotSeq, previous.head.seq);
      this.#snapshotEntries = previous.head.entries;
      return;
    }
    const seq = this.#applied;
    const entries = this.#entries();
    const id = randomUUID();
    const subject = `${this.#snapshots.subject}.c.${id}`;
    const limit = Math.max(1024, this.#maxPayload - 4096);
    let first = 0;
    let chunks = 0;
    let chunk: string[] = [];
    let size = 0;
    const flush = async () => {
      const ack = await this.#js.publish(subject, chunk.join("\n"));
      if (chunks++ === 0) first = ack.seq;
      chunk = [];
      size = 0;
    };
    // Taken whole before the first await: the state may move on while the chunks are sent.
    for (const line of [...this.#state.snapshot()]) {
      const bytes = Buffer.byteLength(line, "utf8") + 1;
      if (size > 0 && size + bytes > limit) await flush();
      chunk.push(line);
      size += bytes;
    }
    await flush();
    const head: SnapshotHead = { id, seq, first, chunks, entries };
    try {
      await this.#js.publish(`${this.#snapshots.subject}.head`, JSON.stringify(head), { expect: { lastSubjectSequence: previous?.seq ?? 0 } });
    } catch (error) {
      if (isConflict(error)) return;
      throw error;
    }
    this.#snapshotSeq = Math.max(this.#snapshotSeq, seq);
    this.#snapshotEntries = entries;
    // Nothing is before a first message; and nats-server 2.9 takes a purge up to seq 1 as "purge all".
    if (first > 1) await this.#jsm.streams.purge(this.#snapshots.stream, { seq: first });
    if (previous && previous.head.seq > 0) await this.#jsm.streams.purge(this.#stream, { seq: previous.head.seq + 1 });
  }

  rejected(): RejectedMessages {
    return this.#rejections.snapshot();
  }

  /**
   * While the change feed runs, from the folded state as the feed keeps it (a watcher is woken
   * by the feed once a message is folded, and a gap is caught up before it is told); otherwise
   * after catching up with the log.
   */
  async events(since: number, limit?: number): Promise<TaskEvent[]> {
    if (!this.#fed) await this.transact(() => undefined);
    return this.#state.eventsSince(since, limit);
  }

  /**
   * The head as of this call: read inside a transaction, which sees the log caught up to where it
   * stood when the call was made, and nothing of what transactions asked for later (grouped with
   * it, they fold after it). `watch()` without `since` starts here, so a submit made after it is seen.
   */
  head(): Promise<number> {
    return this.transact((tx) => tx.head());
  }

  /** Whether a change feed is running, bringing each stored message to `#fold`. */
  get #fed(): boolean {
    return this.#listeners > 0;
  }

  /**
   * The feed folds each message it brings before telling `listener`, so that a reader woken by it
   * finds the change in the folded state. A message past the next one (the feed missed some, or a
   * new consumer started past what was folded) and a call without one are a catch-up first.
   */
  onChange(listener: () => void): () => void {
    this.#listeners++;
    const stop = onStored(
      this.#js,
      this.#stream,
      (message) => {
        if (message && message.seq <= this.#applied + 1) {
          this.#fold(message.seq, message.data, message.id);
          listener();
        } else {
          void this.#refresh().then(listener, listener);
        }
      },
      { data: true },
    );
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      this.#listeners--;
      stop();
    };
  }
}
