/**
 * The bus of the embedded backends: subjects, wildcards, queue groups and request/reply inside
 * one process, with NATS's semantics, so that code written against the bus runs the same on
 * every backend. Handlers run on a later tick, as they would after a network hop.
 */
import { BusRequestError } from "../core/errors.ts";
import type { BusHandler, BusTransport } from "../core/store.ts";

interface Subscription {
  pattern: string[];
  handler: BusHandler;
  queue?: string;
}

/** NATS subject matching: `*` is one token, a trailing `>` is one or more. */
export function subjectMatches(pattern: readonly string[], subject: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === ">") return subject.length > i;
    if (i >= subject.length || (pattern[i] !== "*" && pattern[i] !== subject[i])) return false;
  }
  return pattern.length === subject.length;
}

export class LocalBus implements BusTransport {
  readonly maxPayload: number;
  readonly #subscriptions = new Set<Subscription>();
  /** Round-robin position per queue group. */
  readonly #turns = new Map<string, number>();

  constructor(maxPayload = 1024 * 1024) {
    this.maxPayload = maxPayload;
  }

  publish(subject: string, payload: Uint8Array): void {
    this.#deliver(subject, payload, undefined);
  }

  subscribe(subject: string, handler: BusHandler, options: { queue?: string } = {}): () => Promise<void> {
    const subscription: Subscription = { pattern: subject.split("."), handler, ...(options.queue !== undefined && { queue: options.queue }) };
    this.#subscriptions.add(subscription);
    // Delivery is synchronous here: nothing is on its way once it is gone.
    return async () => void this.#subscriptions.delete(subscription);
  }

  request(subject: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      let answered = false;
      const timer = setTimeout(() => reject(new BusRequestError(subject, "timeout", timeoutMs)), timeoutMs);
      const reply = (answer: Uint8Array): void => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        resolve(answer.slice());
      };
      if (this.#deliver(subject, payload, reply) === 0) {
        clearTimeout(timer);
        reject(new BusRequestError(subject, "no_responders", timeoutMs));
      }
    });
  }

  /** Hands a copy to every plain subscriber and to one member of each queue group; returns how many. */
  #deliver(subject: string, payload: Uint8Array, reply: ((payload: Uint8Array) => void) | undefined): number {
    const tokens = subject.split(".");
    const plain: Subscription[] = [];
    const groups = new Map<string, Subscription[]>();
    for (const subscription of this.#subscriptions) {
      if (!subjectMatches(subscription.pattern, tokens)) continue;
      if (subscription.queue === undefined) plain.push(subscription);
      else groups.set(subscription.queue, [...(groups.get(subscription.queue) ?? []), subscription]);
    }
    const chosen = [...plain];
    for (const [queue, members] of groups) {
      const turn = this.#turns.get(queue) ?? 0;
      this.#turns.set(queue, turn + 1);
      chosen.push(members[turn % members.length]!);
    }
    for (const { handler } of chosen) {
      const copy = payload.slice();
      setImmediate(() => handler(copy, subject, reply));
    }
    return chosen.length;
  }
}
