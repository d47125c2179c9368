/**
 * The NATS baselines: the official clients (@nats-io/transport-node, /jetstream, /kv) on the same
 * server as ours, with nothing around them. `RawKv` is compare-and-set on a plain KV bucket
 * (history 1); `RawRpc` is a core request/reply to a subscriber in this process.
 */
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";

export class RawKv {
  readonly #nc: NatsConnection;
  readonly #kv: KV;

  private constructor(nc: NatsConnection, kv: KV) {
    this.#nc = nc;
    this.#kv = kv;
  }

  static async open(url: string, bucket: string): Promise<RawKv> {
    const nc = await connect({ servers: url });
    try {
      return new RawKv(nc, await new Kvm(jetstream(nc)).create(bucket, { history: 1 }));
    } catch (error) {
      await nc.close();
      throw error;
    }
  }

  /** Writes the value as JSON if the key is still at `revision` (0: never written); returns the new revision. */
  write(key: string, value: unknown, revision: number): Promise<number> {
    const json = JSON.stringify(value);
    return revision === 0 ? this.#kv.create(key, json) : this.#kv.update(key, json, revision);
  }

  close(): Promise<void> {
    return this.#nc.close();
  }
}

/** A subscriber that answers every request with the request's own bytes, and a requester on the same connection. */
export class RawRpc {
  readonly #nc: NatsConnection;
  readonly #subject: string;

  private constructor(nc: NatsConnection, subject: string) {
    this.#nc = nc;
    this.#subject = subject;
  }

  static async open(url: string, subject: string): Promise<RawRpc> {
    const nc = await connect({ servers: url });
    nc.subscribe(subject, {
      callback: (error, msg) => {
        if (!error) msg.respond(msg.data);
      },
    });
    // The subscription is on the server before the first request, or that request finds no responder.
    await nc.flush();
    return new RawRpc(nc, subject);
  }

  /** The server's version, as it introduced itself. */
  get serverVersion(): string {
    return this.#nc.info?.version ?? "unknown";
  }

  /** Sends `request` as JSON and parses the reply. */
  async call<T>(request: T): Promise<T> {
    return (await this.#nc.request(this.#subject, JSON.stringify(request), { timeout: 5000 })).json<T>();
  }

  close(): Promise<void> {
    return this.#nc.close();
  }
}
