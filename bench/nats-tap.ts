/**
 * A wiretap on a nats-server, run as a worker thread by bench/nats.ts so that counting costs the
 * measured process's event loop nothing. A core subscriber gets a copy of every message published
 * on a subject it matches, whoever else takes it, so this one hears every JetStream API request
 * (`$JS.API.>`, pulls included, each answered or not), every ack (`$JS.ACK.>`) and every publish
 * on the subjects of the streams it is given, whether the stream then stores it, refuses it (a
 * failed expected-sequence check) or drops it as a duplicate. Which of the three it was, it learns
 * from the stream's answer: it also hears `_INBOX.>` (where nats.js clients take their replies),
 * and reads the answers to the publishes it heard, as the publisher does. It answers nothing.
 *
 * workerData: `{ url, streams: [{ name, subjects }] }`. Posts "ready" once subscribed; on "stop"
 * flushes (so that it has heard everything the server routed before), posts its counts and ends.
 */
import { parentPort, workerData } from "node:worker_threads";
import { connect } from "@nats-io/transport-node";

export interface TapSetup {
  url: string;
  streams: { name: string; subjects: string[] }[];
}

export interface TapCounts {
  /** `$JS.API` requests by kind: the upper-case tokens after `$JS.API.` (`STREAM.INFO`, `STREAM.MSG.GET`, `CONSUMER.MSG.NEXT`, …). */
  api: Record<string, number>;
  /** Publishes heard on each stream's subjects, by stream name. */
  published: Record<string, number>;
  /** Of those, the ones the stream answered with an error, by stream name and then by reason (the error's description, numbers taken out). */
  refused: Record<string, Record<string, number>>;
  /** …and the ones it answered as duplicates (`"duplicate": true`), by stream name. */
  duplicates: Record<string, number>;
  /** Publishes heard with a reply subject whose answer had not been heard when counting stopped, or without one. */
  unanswered: number;
  acks: number;
}

/**
 * `$JS.API.STREAM.MSG.GET.s` is `STREAM.MSG.GET`: the leading upper-case tokens, at most three.
 * Colony's stream names all hold a '_' (`p_tasks_b`, `KV_p_runs`), so none is taken for a verb.
 */
export function apiKind(subject: string): string {
  const tokens = subject.slice("$JS.API.".length).split(".");
  const verb: string[] = [];
  for (const token of tokens) {
    if (verb.length === 3 || !/^[A-Z]+$/.test(token)) break;
    verb.push(token);
  }
  return verb.join(".") || "?";
}

if (parentPort) {
  const port = parentPort;
  const { url, streams } = workerData as TapSetup;
  const nc = await connect({ servers: url, name: "bench-tap" });
  const counts: TapCounts = { api: {}, published: {}, refused: {}, duplicates: {}, unanswered: 0, acks: 0 };
  /** The stream of each heard publish whose answer is awaited, by its reply subject. */
  const awaiting = new Map<string, string>();
  /**
   * Answers heard before their publish, by subject: the server may store a message and answer
   * its publisher before it hands this subscriber its copy of the publish.
   */
  const early = new Map<string, Uint8Array>();
  const decoder = new TextDecoder();
  const answered = (stream: string, data: Uint8Array) => {
    let answer: { error?: { description?: string }; duplicate?: boolean };
    try {
      answer = JSON.parse(decoder.decode(data)) as typeof answer;
    } catch {
      answer = { error: { description: "unparsed answer" } };
    }
    if (answer.error) {
      const reason = (answer.error.description ?? "no description").replace(/\d+/g, "N");
      const byReason = (counts.refused[stream] ??= {});
      byReason[reason] = (byReason[reason] ?? 0) + 1;
    } else if (answer.duplicate) counts.duplicates[stream] = (counts.duplicates[stream] ?? 0) + 1;
  };
  /** A publish's answer is a JSON object starting with its "error" or its "stream"; nothing else on an inbox does. */
  const PUB_ACK = /^\{\s*"(error|stream)"/;
  nc.subscribe("_INBOX.>", {
    callback: (_error, message) => {
      const stream = awaiting.get(message.subject);
      if (stream !== undefined) {
        awaiting.delete(message.subject);
        answered(stream, message.data);
      } else if (message.subject.startsWith("_INBOX.") && PUB_ACK.test(decoder.decode(message.data.subarray(0, 16)))) {
        // (Messages a consumer delivers to an inbox keep their own subject.)
        early.set(message.subject, message.data);
      }
    },
  });
  nc.subscribe("$JS.API.>", {
    callback: (_error, message) => {
      const kind = apiKind(message.subject);
      counts.api[kind] = (counts.api[kind] ?? 0) + 1;
    },
  });
  nc.subscribe("$JS.ACK.>", {
    callback: () => {
      counts.acks++;
    },
  });
  for (const { name, subjects } of streams) {
    counts.published[name] = 0;
    for (const subject of subjects) {
      nc.subscribe(subject, {
        callback: (_error, message) => {
          counts.published[name]!++;
          const reply = message.reply;
          const answer = reply ? early.get(reply) : undefined;
          if (!reply) counts.unanswered++;
          else if (answer === undefined) awaiting.set(reply, name);
          else {
            early.delete(reply);
            answered(name, answer);
          }
        },
      });
    }
  }
  await nc.flush();
  port.on("message", (message: unknown) => {
    if (message !== "stop") return;
    void (async () => {
      await nc.flush();
      counts.unanswered += awaiting.size;
      port.postMessage(counts);
      await nc.close();
      port.close();
    })();
  });
  port.postMessage("ready");
}
