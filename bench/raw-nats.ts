/**
 * The NATS baselines: the official clients (@nats-io/transport-node, /jetstream, /kv) on the same
 * server as ours, with nothing around them. `RawKv` is compare-and-set on a plain KV bucket
 * (history 1); `RawRpc` is a core request/reply to a subscriber in this process;
 * `RawStoredPingPong` is a request and an answer each stored on a stream and heard by a consumer.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
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

/**
 * The least any dispatch that stores its request and its result can cost: a message published
 * (and acknowledged) on one stream is heard by a consumer on a second connection, which publishes
 * an answer on another stream, heard by a consumer back on the first. Ordered consumers, as
 * Colony's change feeds are; nothing decided, folded or run.
 */
export class RawStoredPingPong {
  readonly #connections: NatsConnection[];
  readonly #publish: (data: string) => Promise<unknown>;
  readonly #answers: AsyncIterator<unknown>;
  readonly #stop: () => void;

  private constructor(connections: NatsConnection[], publish: (data: string) => Promise<unknown>, answers: AsyncIterator<unknown>, stop: () => void) {
    this.#connections = connections;
    this.#publish = publish;
    this.#answers = answers;
    this.#stop = stop;
  }

  /** Two streams (`<prefix>_PING`, `<prefix>_PONG`) and the answering connection. */
  static async open(url: string, prefix: string): Promise<RawStoredPingPong> {
    const [asker, answerer] = [await connect({ servers: url }), await connect({ servers: url })];
    const manager = await jetstreamManager(asker);
    const [ping, pong] = [`${prefix}.ping`, `${prefix}.pong`];
    await manager.streams.add({ name: `${prefix}_PING`, subjects: [ping] });
    await manager.streams.add({ name: `${prefix}_PONG`, subjects: [pong] });
    const [js, answering] = [jetstream(asker), jetstream(answerer)];
    const pings = await (await answering.consumers.get(`${prefix}_PING`)).consume();
    void (async () => {
      for await (const message of pings) await answering.publish(pong, message.data);
    })().catch(() => {});
    const pongs = await (await js.consumers.get(`${prefix}_PONG`)).consume();
    return new RawStoredPingPong([asker, answerer], (data) => js.publish(ping, data), pongs[Symbol.asyncIterator](), () => {
      void pings.stop();
      void pongs.stop();
    });
  }

  /** Publishes `request` as JSON and waits to hear the answer stored. */
  async call(request: unknown): Promise<void> {
    await this.#publish(JSON.stringify(request));
    await this.#answers.next();
  }

  async close(): Promise<void> {
    this.#stop();
    for (const nc of this.#connections) await nc.close();
  }
}
