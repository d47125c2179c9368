/**
 * The bus as the runtime uses it: JSON messages on named channels, each with a schema. What
 * arrives is checked before any handler sees it; a message that is too large, is not JSON or does
 * not fit its channel's schema is dropped and counted (and reported to `onReject` listeners),
 * never thrown at the receiver. A handler that throws is counted too, and the next message is
 * handled as usual.
 */
import { z } from "zod";
import { escapeName } from "../backends/nats/names.ts";
import { ColonyError, describeError } from "../core/errors.ts";
import type { BusTransport } from "../core/store.ts";

/** A kind of message: its name (for counters and errors) and the schema every message of it fits. */
export interface Channel<T> {
  readonly name: string;
  readonly schema: z.ZodType<T>;
}

export function channel<T>(name: string, schema: z.ZodType<T>): Channel<T> {
  return { name, schema };
}

export type RejectReason = "oversized" | "malformed" | "schema" | "handler";

export interface BusRejection {
  channel: string;
  subject: string;
  reason: RejectReason;
  error: string;
  bytes: number;
  at: number;
}

export interface BusStats {
  published: number;
  received: number;
  rejected: Record<RejectReason, number>;
}

/** A message that this side would send does not fit its channel, or is too large to send. */
export class BusMessageError extends ColonyError {
  constructor(message: string) {
    super("BUS_MESSAGE", message);
  }
}

/**
 * An id (a task id, a worker id, a board name) as one subject token, one to one, so that `w.1`
 * and `w_1` never share a subject: letters, digits and '-' as they are, anything else escaped
 * (`w.1` → `w_2e1`, `w_1` → `w_5f1`). Never a dot, a space or a wildcard. The rule is NATS's
 * names' (the embedded buses keep NATS's subject rules), in one place: `escapeName`.
 */
export function subjectToken(value: string): string {
  return escapeName(value);
}

export interface BusOptions {
  /** The largest message accepted or sent, in bytes; default 64 KiB, at most the transport's limit. */
  maxBytes?: number;
}

export class Bus {
  readonly maxBytes: number;
  readonly #transport: BusTransport;
  readonly #stats: BusStats = { published: 0, received: 0, rejected: { oversized: 0, malformed: 0, schema: 0, handler: 0 } };
  readonly #listeners = new Set<(rejection: BusRejection) => void>();
  readonly #encoder = new TextEncoder();
  readonly #decoder = new TextDecoder("utf-8", { fatal: true });

  constructor(transport: BusTransport, options: BusOptions = {}) {
    this.#transport = transport;
    this.maxBytes = Math.min(options.maxBytes ?? 64 * 1024, transport.maxPayload);
  }

  stats(): BusStats {
    return { ...this.#stats, rejected: { ...this.#stats.rejected } };
  }

  /** Hears every rejected message: what, where, and why. */
  onReject(listener: (rejection: BusRejection) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  publish<T>(on: Channel<T>, subject: string, message: T): void {
    this.#transport.publish(subject, this.#encode(on, subject, message));
    this.#stats.published++;
  }

  /** Handles each valid message on `subject` (wildcards allowed); with `queue`, one member of the group gets each. Returns the unsubscribe. */
  subscribe<T>(on: Channel<T>, subject: string, handler: (message: T, subject: string) => void | Promise<void>, options: { queue?: string } = {}): () => void {
    const off = this.#transport.subscribe(
      subject,
      (payload, actual) => {
        const message = this.#decode(on, actual, payload);
        if (message.ok) this.#handle(on, actual, () => handler(message.value, actual));
      },
      options,
    );
    return () => void off();
  }

  /**
   * Answers requests on `subject`; a request that is not valid gets no answer (the asker times
   * out). Returns the stop, which resolves once the requests already on their way have been taken
   * (their handlers started; see `BusTransport.subscribe`).
   */
  serve<Q, A>(ask: Channel<Q>, answer: Channel<A>, subject: string, handler: (request: Q) => A | Promise<A>, options: { queue?: string } = {}): () => Promise<void> {
    return this.#transport.subscribe(
      subject,
      (payload, actual, reply) => {
        const request = this.#decode(ask, actual, payload);
        if (!request.ok || !reply) return;
        this.#handle(ask, actual, async () => reply(this.#encode(answer, actual, await handler(request.value))));
      },
      options,
    );
  }

  /** Asks on `subject` and checks the answer; BusRequestError when nobody answers in time, BusMessageError when the answer is invalid. */
  async request<Q, A>(ask: Channel<Q>, answer: Channel<A>, subject: string, request: Q, timeoutMs = 2000): Promise<A> {
    const payload = await this.#transport.request(subject, this.#encode(ask, subject, request), timeoutMs);
    this.#stats.published++;
    const decoded = this.#decode(answer, subject, payload);
    if (!decoded.ok) throw new BusMessageError(`the answer on ${subject} was rejected (${decoded.reason}): ${decoded.error}`);
    return decoded.value;
  }

  #encode<T>(on: Channel<T>, subject: string, message: T): Uint8Array {
    const checked = on.schema.safeParse(message);
    if (!checked.success) throw new BusMessageError(`a ${on.name} message for ${subject} does not fit its schema: ${z.prettifyError(checked.error)}`);
    const payload = this.#encoder.encode(JSON.stringify(checked.data));
    if (payload.byteLength > this.maxBytes) throw new BusMessageError(`a ${on.name} message for ${subject} is ${payload.byteLength} bytes, over the bus limit of ${this.maxBytes}`);
    return payload;
  }

  #decode<T>(on: Channel<T>, subject: string, payload: Uint8Array): { ok: true; value: T } | { ok: false; reason: RejectReason; error: string } {
    this.#stats.received++;
    const reject = (reason: RejectReason, error: string) => {
      this.#reject(on, subject, reason, error, payload.byteLength);
      return { ok: false as const, reason, error };
    };
    if (payload.byteLength > this.maxBytes) return reject("oversized", `${payload.byteLength} bytes, over the limit of ${this.maxBytes}`);
    let data: unknown;
    try {
      data = JSON.parse(this.#decoder.decode(payload));
    } catch (error) {
      return reject("malformed", describeError(error));
    }
    const checked = on.schema.safeParse(data);
    if (!checked.success) return reject("schema", z.prettifyError(checked.error));
    return { ok: true, value: checked.data };
  }

  #handle(on: Channel<unknown>, subject: string, work: () => void | Promise<void>): void {
    const failed = (error: unknown): void => this.#reject(on, subject, "handler", describeError(error), 0);
    try {
      const pending = work();
      if (pending) pending.catch(failed);
    } catch (error) {
      failed(error);
    }
  }

  #reject(on: Channel<unknown>, subject: string, reason: RejectReason, error: string, bytes: number): void {
    this.#stats.rejected[reason]++;
    const rejection: BusRejection = { channel: on.name, subject, reason, error, bytes, at: Date.now() };
    for (const listener of this.#listeners) {
      try {
        listener(rejection);
      } catch {
        // A listener's failure must not turn a rejected message into a crash.
      }
    }
  }
}
