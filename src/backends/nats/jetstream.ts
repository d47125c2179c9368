/**
 * What the NATS stores share: reading JetStream's error codes, creating a stream once, riding out
 * an outage (a lost server, a leader election), and hearing of each stored message.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { JetStreamApiError, JetStreamError, type Consumer, type JetStreamClient, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { ClosedConnectionError, headers, NoRespondersError, TimeoutError, type MsgHdrs } from "@nats-io/transport-node";

/** JetStream's "wrong last sequence": a compare-and-set lost to another writer. */
const WRONG_LAST_SEQUENCE = 10071;
const STREAM_NOT_FOUND = 10059;

export function isConflict(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === WRONG_LAST_SEQUENCE;
}

/** Creates the stream unless it exists; safe when processes race to create it. */
export async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
  } catch (error) {
    if (!(error instanceof JetStreamApiError) || error.code !== STREAM_NOT_FOUND) throw error;
    await jsm.streams.add(config).catch(async (raced: unknown) => {
      // Another process created it first.
      if (!(raced instanceof JetStreamApiError)) throw raced;
      await jsm.streams.info(config.name);
    });
  }
}

/**
 * How long an operation keeps trying through a lost connection or a JetStream leader election
 * (seconds on a cluster: a raft election alone may take up to 9) before its error reaches the caller.
 */
const OUTAGE_MS = 30_000;

/**
 * JetStream's "system temporarily unavailable" and "stream is offline": there is no leader yet.
 * And "consumer not found": an ephemeral consumer that a read was going through went with its
 * server (a restart) or its leader; reading again makes a new one.
 */
const LEADERLESS = new Set([10008, 10118, 10014]);

/**
 * How nats.js ends a fetch whose consumer sent no idle heartbeat for two in a row: the consumer
 * went with its server (killed mid-read), and reading again makes a new one. nats.js gives this
 * a message only, no error class or code.
 */
const HEARTBEATS_MISSED = "heartbeats missed";

/** Whether a request went unanswered (timed out, nobody to take it yet, its consumer lost) rather than being refused. */
export function isTransient(error: unknown): boolean {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof TimeoutError || cause instanceof NoRespondersError) return true;
    if (cause instanceof JetStreamApiError && LEADERLESS.has(cause.code)) return true;
    if (cause instanceof JetStreamError && cause.message === HEARTBEATS_MISSED) return true;
  }
  return false;
}

/** Runs a read again while it fails transiently, for up to `OUTAGE_MS`. */
export async function outlast<T>(read: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + OUTAGE_MS;
  for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
    try {
      return await read();
    } catch (error) {
      if (!isTransient(error) || Date.now() + wait > deadline) throw error;
    }
    await sleep(wait);
  }
}

/**
 * How long `firstAnswer` waits on a request before it sends another beside it; how many it keeps
 * waiting on at once; how many it sends in all. An answered request takes milliseconds (under
 * 1 s on a loaded machine), an unanswered one the client's whole request timeout (5 s by default).
 */
const RESEND_MS = 2000;
const MOST_WAITING = 3;
const MOST_SENT = 5;

/**
 * The first answer to `request`, for a request that the cluster may drop without a word and that
 * can be sent twice (it reads, or it makes something `discard` can undo): while none has been
 * answered, it is sent again every `RESEND_MS` beside those still waiting, and an answer that
 * comes after the first goes to `discard`. Rejects with the first refusal (an error that is not
 * `isTransient`), with the last error once every one sent went unanswered (the caller's own retry
 * takes over), or with the signal's reason once it aborts.
 *
 * After a cluster member dies, some requests go unanswered, each waiting out the whole request
 * timeout: those to a stream it led, until the others elect a leader (the raft election alone
 * may take 9 s), and consumer creates that the server places on the dead member, which
 * nats-server before 2.9.12 does with a one-replica consumer (nats.js's ordered consumer, a
 * batch read's) as long as the member stays down: on 2.9.10, 30 to 50% of them went unanswered
 * after a kill -9, several in a row at times. Sent again beside the first, the request reaches the
 * new leader once there is one, and lands on a live member, within about `RESEND_MS` of that.
 */
export function firstAnswer<T>(request: () => Promise<T>, discard: (late: T) => void, signal?: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let waiting = 0;
    let settled = false;
    let next: NodeJS.Timeout | undefined;
    const settle = (end: () => void): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(next);
      signal?.removeEventListener("abort", aborted);
      end();
      return true;
    };
    const aborted = () => settle(() => reject(signal!.reason));
    const answered = (value: T) => {
      waiting--;
      if (!settle(() => resolve(value))) discard(value);
    };
    const failed = (error: unknown) => {
      waiting--;
      if (!isTransient(error) || (waiting === 0 && sent === MOST_SENT)) settle(() => reject(error));
    };
    const send = () => {
      if (waiting < MOST_WAITING) {
        sent++;
        waiting++;
        request().then(answered, failed);
      }
      if (sent < MOST_SENT) next = setTimeout(send, RESEND_MS);
    };
    if (signal?.aborted) return aborted();
    signal?.addEventListener("abort", aborted, { once: true });
    send();
  });
}

/**
 * Sends a conditional write through an outage: an unanswered send is sent again (under the same
 * message id, so the server stores it once). Returns what `send` returns, or, when refused as a
 * conflict, undefined if the first answer was that refusal, and otherwise what `landed` says: an
 * earlier copy may have been stored, moving the log on, and only the log can tell.
 */
export async function sendThrough<T>(send: () => Promise<T>, landed: () => Promise<T | undefined>): Promise<T | undefined> {
  let unanswered = false;
  try {
    return await outlast(async () => {
      try {
        return await send();
      } catch (error) {
        if (isTransient(error)) unanswered = true;
        throw error;
      }
    });
  } catch (error) {
    if (!isConflict(error)) throw error;
    return unanswered ? outlast(landed) : undefined;
  }
}

/**
 * After a lost compare-and-set race: a random, growing pause, so that a client with a slower
 * round trip does not lose every race to one that writes back to back.
 */
export function contentionPause(attempt: number): Promise<void> {
  return sleep(Math.random() * Math.min(100, 2 ** Math.min(attempt, 7)));
}

/** How long a change feed's pulls last; its consumer's idle heartbeat is half that. */
const HEARTBEAT_PULL_MS = 2000;

/**
 * How long the server keeps a change feed's consumer that nobody pulls from: the consumer of a
 * process killed before it could delete it goes away by itself. (A consumer that nats.js makes
 * again on its own, after a reconnect or a gap, takes its fixed 5 minutes instead.)
 */
const ABANDONED_MS = 10 * HEARTBEAT_PULL_MS;

/** How long closing waits for the server to confirm a feed's consumer deleted; an unreachable one lets it expire. */
const DELETE_WAIT_MS = 2000;

/** How often a change feed compares what its consumer has shown with the stream's last sequence. */
const LAG_CHECK_MS = 2 * HEARTBEAT_PULL_MS;

/** A message a change feed brought, for listeners of a feed that carries data. */
export interface StoredMessage {
  seq: number;
  data: Uint8Array;
  /** The message id it was published with (`Nats-Msg-Id`), if any. */
  id: string | undefined;
}

type FeedListener = (message?: StoredMessage) => void;

/** One change feed: a consumer on one stream, shared by every listener of this connection. */
interface Feed {
  readonly listeners: Set<FeedListener>;
  readonly stop: AbortController;
  /** Settles once the feed has stopped and its consumer is deleted (or left to expire). */
  readonly done: Promise<void>;
}

interface Feeds {
  readonly open: Map<string, Feed>;
  /** Feeds stopped whose consumer is still being deleted. */
  readonly closing: Set<Promise<void>>;
}

/** The change feeds of each connection's JetStream client, by stream. */
const feedsOf = new WeakMap<JetStreamClient, Feeds>();

/**
 * Calls `listener` after each message is stored on `stream`, until the returned function is
 * called, whatever happens to the servers meanwhile. A listener may be called when nothing was
 * stored; it is never left uncalled after a message stored once it was added. With `data` (which
 * the first listener of a stream decides for its feed) the listener gets each message the feed
 * brings, in stream order: a reader that keeps a stream folded need not fetch what it was told
 * of. A call without a message (a new consumer starting, or a feed without data) only says that
 * something may have been stored.
 *
 * Every listener of one stream on one connection shares one feed, so that a thousand waits leave
 * no more consumers on the server than one: the first listener starts it, the last to leave stops
 * it and deletes its consumer, and `closeFeeds` does so for those still open.
 *
 * A core subscription to the stream's subjects is no such signal on a cluster: it hears a
 * publish before the stream leader has committed it, so a reader woken by it may find nothing
 * new yet and sleep through the change. A consumer hears only stored messages, but it lives on
 * one server: when that server dies, or restarts, the consumer may go quiet for good (a KV watch
 * does; nats.js's ordered consumer, whose consumer sat on a killed stream leader, reports missed
 * heartbeats for ever, and one reset by a reconnect may stall). So the consumer pulls briefly
 * (the server sends an idle heartbeat every half pull), and one that has given no sign of life
 * for two pulls is dropped and a new one made (sent again beside one that goes unanswered, see
 * `firstAnswer`); each new one first calls the listeners, for whatever was stored while there was
 * none. A consumer reads its own server's copy of the stream, which after a leader change may
 * fall behind the leader for a while (on nats-server 2.9.10, 20 s and more after a kill -9) while
 * the consumer heartbeats on: one that has still not shown the stream's last sequence of a look
 * `LAG_CHECK_MS` earlier is dropped too.
 */
export function onStored(js: JetStreamClient, stream: string, listener: FeedListener, options: { data?: boolean } = {}): () => void {
  let feeds = feedsOf.get(js);
  if (!feeds) feedsOf.set(js, (feeds = { open: new Map(), closing: new Set() }));
  let feed = feeds.open.get(stream);
  if (!feed) {
    const listeners = new Set<FeedListener>();
    const stop = new AbortController();
    feed = { listeners, stop, done: runFeed(js, stream, listeners, stop.signal, options.data ?? false) };
    feeds.open.set(stream, feed);
  }
  // A wrapper of its own, so that one function added twice is two listeners.
  const entry: FeedListener = (message) => listener(message);
  feed.listeners.add(entry);
  const [joined, opened] = [feed, feeds];
  return () => {
    if (joined.listeners.delete(entry) && joined.listeners.size === 0) endFeed(opened, stream, joined);
  };
}

/**
 * Stops every change feed of this client and deletes their consumers (waiting a moment at most for
 * the server to confirm): a connection about to close leaves no consumer behind. Listeners still
 * added hear nothing more.
 */
export async function closeFeeds(js: JetStreamClient): Promise<void> {
  const feeds = feedsOf.get(js);
  if (!feeds) return;
  for (const [stream, feed] of feeds.open) endFeed(feeds, stream, feed);
  // A feed still waiting on an unreachable server gives up when the connection closes.
  await Promise.race([Promise.all(feeds.closing), sleep(DELETE_WAIT_MS, undefined, { ref: false })]);
}

function endFeed(feeds: Feeds, stream: string, feed: Feed): void {
  if (feeds.open.get(stream) === feed) feeds.open.delete(stream);
  if (feed.stop.signal.aborted) return;
  feed.stop.abort();
  feeds.closing.add(feed.done);
  void feed.done.then(() => feeds.closing.delete(feed.done));
}

async function runFeed(js: JetStreamClient, stream: string, listeners: Set<FeedListener>, signal: AbortSignal, data: boolean): Promise<void> {
  const notify = (message?: StoredMessage) => {
    for (const listener of [...listeners]) listener(message);
  };
  while (!signal.aborted) {
    let consumer: Consumer | undefined;
    try {
      let shown: number;
      ({ consumer, last: shown } = await firstAnswer(
        async () => {
          // From the next message on; should nats.js make the consumer again before one arrives,
          // it starts there too, not (as with DeliverPolicy.New) from the stream's first message.
          const last = (await (await js.streams.get(stream)).info(true)).state.last_seq;
          return { consumer: await js.consumers.get(stream, { opt_start_seq: last + 1, headers_only: !data, inactive_threshold: ABANDONED_MS }), last };
        },
        (late) => void late.consumer.delete().catch(() => false),
        signal,
      ));
      if (signal.aborted) break;
      const stored = await consumer.consume({ expires: HEARTBEAT_PULL_MS });
      const onAbort = () => void stored.stop();
      signal.addEventListener("abort", onAbort, { once: true });
      let heard = Date.now();
      void (async () => {
        for await (const status of stored.status()) {
          if (status.type !== "heartbeat") continue;
          heard = Date.now();
          shown = Math.max(shown, status.lastStreamSequence);
        }
      })();
      const watchdog = setInterval(() => Date.now() - heard > 2 * HEARTBEAT_PULL_MS && stored.stop(), HEARTBEAT_PULL_MS / 2).unref();
      // The stream's last sequence at the previous look; a consumer still short of it a look later lags.
      let head = shown;
      const lagging = setInterval(() => {
        void (async () => {
          const now = (await (await js.streams.get(stream)).info(true)).state.last_seq;
          if (shown < head) stored.stop();
          head = now;
        })().catch(() => {});
      }, LAG_CHECK_MS).unref();
      try {
        notify();
        for await (const message of stored) {
          heard = Date.now();
          shown = Math.max(shown, message.seq);
          notify(data ? { seq: message.seq, data: message.data, id: message.headers?.get("Nats-Msg-Id") || undefined } : undefined);
        }
      } finally {
        clearInterval(watchdog);
        clearInterval(lagging);
        signal.removeEventListener("abort", onAbort);
      }
    } catch (error) {
      // The connection closed: nothing more will change that this process can see, and the
      // consumer, if any, expires on the server.
      if (error instanceof ClosedConnectionError) return;
    } finally {
      // A dropped consumer is deleted in the background (its server may be gone); the last one
      // is waited for, briefly, so that a closing connection takes the request with it.
      const deleted = consumer?.delete().catch(() => false);
      if (deleted && signal.aborted) await Promise.race([deleted, sleep(DELETE_WAIT_MS, undefined, { ref: false })]);
    }
    await sleep(500, undefined, { signal }).catch(() => {});
  }
}

/**
 * Compare-and-set on one KV key's revision, made to hold on a replicated bucket too. There
 * nats-server 2.9 does not hold a key's expected revision against writes still in flight through
 * the stream's raft group or across a leader change (nats-server#4320), so two writers expecting
 * one revision can both win. On such a bucket a write is also conditional on the whole bucket's
 * last sequence, which the server does hold: writers to one bucket then take turns.
 */
export class KvCas {
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #kv: KV;
  readonly #stream: string;
  readonly #subjects: string;
  readonly #serial: boolean;

  constructor(js: JetStreamClient, jsm: JetStreamManager, kv: KV, bucket: string, replicas: number) {
    this.#js = js;
    this.#jsm = jsm;
    this.#kv = kv;
    this.#stream = `KV_${bucket}`;
    this.#subjects = `$KV.${bucket}.`;
    this.#serial = replicas > 1;
  }

  /** Writes `value` if the key is at `revision` (0 = absent); its new revision, or undefined if it moved. */
  async put(key: string, value: string, revision: number): Promise<number | undefined> {
    if (this.#serial) return this.#serialWrite(key, value, revision);
    try {
      return revision === 0 ? await this.#kv.create(key, value) : await this.#kv.update(key, value, revision);
    } catch (error) {
      if (isConflict(error)) return undefined;
      throw error;
    }
  }

  /** Deletes the key if it is at `revision`; false if it moved. */
  async remove(key: string, revision: number): Promise<boolean> {
    if (this.#serial) {
      const marker = headers();
      marker.set("KV-Operation", "DEL");
      return (await this.#serialWrite(key, "", revision, marker)) !== undefined;
    }
    try {
      await this.#kv.delete(key, { previousSeq: revision });
      return true;
    } catch (error) {
      if (isConflict(error)) return false;
      throw error;
    }
  }

  async #serialWrite(key: string, payload: string, revision: number, marker?: MsgHdrs): Promise<number | undefined> {
    for (let attempt = 1; ; attempt++) {
      // The head first: a key newer than it was written in between, and is read again.
      const head = (await outlast(() => this.#jsm.streams.info(this.#stream))).state.last_seq;
      const current = (await outlast(() => this.#kv.get(key)))?.revision ?? 0;
      if (current > head) continue;
      if (current !== revision) return undefined;
      try {
        return (await this.#js.publish(`${this.#subjects}${key}`, payload, { expect: { lastSequence: head }, ...(marker && { headers: marker }) })).seq;
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
      // Another key of the bucket moved: try again.
      await contentionPause(attempt);
    }
  }
}
