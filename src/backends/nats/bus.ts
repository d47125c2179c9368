/**
 * The bus on core NATS: subjects, queue groups and request/reply as the server gives them. Every
 * subject lives under the prefix's root (`${escaped prefix}.bus.`, see names.ts), so swarms
 * sharing a server never hear each other.
 */
import { RequestError, TimeoutError, type NatsConnection } from "@nats-io/transport-node";
import { BusRequestError } from "../../core/errors.ts";
import type { BusHandler, BusTransport } from "../../core/store.ts";

export class NatsBus implements BusTransport {
  readonly #nc: NatsConnection;
  readonly #root: string;

  constructor(nc: NatsConnection, root: string) {
    this.#nc = nc;
    this.#root = root;
  }

  get maxPayload(): number {
    return this.#nc.info?.max_payload ?? 1024 * 1024;
  }

  publish(subject: string, payload: Uint8Array): void {
    this.#nc.publish(this.#root + subject, payload);
  }

  subscribe(subject: string, handler: BusHandler, options: { queue?: string } = {}): () => Promise<void> {
    const subscription = this.#nc.subscribe(this.#root + subject, {
      ...(options.queue !== undefined && { queue: options.queue }),
      callback: (error, message) => {
        // A subscription error (a permission violation) ends it; the handler never sees one.
        if (error) return;
        handler(message.data, message.subject.slice(this.#root.length), message.reply ? (payload) => message.respond(payload) : undefined);
      },
    });
    // A drain, not a plain unsubscribe: what the server sent before it heard is still handled
    // (a request among it answered, not left to time out), and a closed connection is no error.
    return () => (subscription.isClosed() ? Promise.resolve() : subscription.drain().catch(() => {}));
  }

  async request(subject: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    try {
      return (await this.#nc.request(this.#root + subject, payload, { timeout: timeoutMs })).data;
    } catch (error) {
      if (error instanceof RequestError && error.isNoResponders()) throw new BusRequestError(subject, "no_responders", timeoutMs);
      if (error instanceof TimeoutError || (error instanceof RequestError && error.cause instanceof TimeoutError)) throw new BusRequestError(subject, "timeout", timeoutMs);
      throw error;
    }
  }
}
