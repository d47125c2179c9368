/**
 * Reading many messages of a stream in a few requests: an ephemeral pull consumer (no acks, in
 * memory) fetched in batches, then removed. A message get per sequence would cost one round trip
 * per message, which a board's history or load would pay thousands of times.
 */
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { nanos, TimeoutError } from "@nats-io/transport-node";
import { StreamReadError } from "../../core/errors.ts";
import { firstAnswer } from "./jetstream.ts";

/** Messages per pull: few round trips, yet a bounded amount in flight (a value may be a megabyte). */
const BATCH = 256;
/** How long one pull may wait for its messages; they are all stored already, so this is only a bound. */
const PULL_MS = 10_000;
/** A consumer left behind by a client that died mid-read goes away by itself after this. */
const ABANDONED_MS = 60_000;

export interface StreamMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
}

export type StreamRead =
  /** The messages from `from` on, in order, up to `through` (messages stored later may follow; the caller stops). */
  | { from: number; through: number; subject?: string }
  /** Each subject's newest message as the consumer is made (in sequence order). */
  | { lastPerSubject: true; subject: string };

/**
 * The messages `read` asks for, as they were when the read started. Stops after the messages the
 * consumer had pending when it was made (or at `through`); the consumer is deleted on the way out,
 * however the caller stops.
 */
export async function* readStream(js: JetStreamClient, jsm: JetStreamManager, stream: string, read: StreamRead): AsyncGenerator<StreamMessage> {
  const through = "through" in read ? read.through : Infinity;
  if ("from" in read && read.from > through) return;
  const config = {
    ack_policy: AckPolicy.None,
    mem_storage: true,
    num_replicas: 1,
    inactive_threshold: nanos(ABANDONED_MS),
    ...(read.subject !== undefined && { filter_subject: read.subject }),
    ...("lastPerSubject" in read ? { deliver_policy: DeliverPolicy.LastPerSubject } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: read.from }),
  };
  // A cluster that lost a member may leave a consumer create unanswered (see firstAnswer).
  const info = await firstAnswer(
    () => jsm.consumers.add(stream, config),
    (late) => void jsm.consumers.delete(stream, late.name).catch(() => {}),
  );
  try {
    const consumer = await js.consumers.get(stream, info.name);
    for (let left = info.num_pending; left > 0; ) {
      const batch = await consumer.fetch({ max_messages: Math.min(left, BATCH), expires: PULL_MS });
      // A fetch whose consumer died with its server while this client reconnected elsewhere may
      // never end (nats.js stops watching its heartbeats then): bounded, it ends as unanswered,
      // and the caller's retry reads again through a new consumer.
      const deadline = setTimeout(() => batch.stop(new TimeoutError()), 2 * PULL_MS);
      let got = 0;
      try {
        for await (const message of batch) {
          deadline.refresh();
          got++;
          left--;
          yield { seq: message.seq, subject: message.subject, data: message.data };
          if (message.seq >= through) return;
        }
      } finally {
        clearTimeout(deadline);
        batch.stop();
      }
      if (got === 0) throw new StreamReadError(`reading stream ${stream}: a pull for ${Math.min(left, BATCH)} stored messages returned none in ${PULL_MS} ms`);
    }
  } finally {
    await jsm.consumers.delete(stream, info.name).catch(() => {
      // Gone with the connection or the server: its inactivity threshold removes it.
    });
  }
}
