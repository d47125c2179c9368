/**
 * The distributed backend: NATS JetStream. Boards are KV buckets (their logs mirror streams), task
 * boards are event-sourced streams with optimistic concurrency, runs and the sub-agent registry
 * are KV buckets. Everything lives under a prefix, so swarms sharing a server never see each other.
 */
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, jetstreamManager, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, credsAuthenticator, nkeyAuthenticator, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node";
import { z } from "zod";
import { ColonyError, ConfigError, describeError } from "../../core/errors.ts";
import type { Backend, BackendFactory, BoardNames, BoardStore, RejectedMessages, TaskStore } from "../../core/store.ts";
import { NatsBoardStore } from "./board.ts";
import { NatsBus } from "./bus.ts";
import { closeFeeds, KvCas, outlast } from "./jetstream.ts";
import { NatsLeaseStore } from "./leases.ts";
import { natsNames, type NatsNames } from "./names.ts";
import { bucketScan, bucketStream, NatsAgentStore, NatsRunStore } from "./records.ts";
import { totalOf } from "./rejections.ts";
import { NatsTaskStore } from "./tasks.ts";

export interface NatsBackendOptions {
  /** One URL or several (a cluster), e.g. "nats://127.0.0.1:4222". */
  servers: string | string[];
  token?: string;
  user?: string;
  pass?: string;
  /** An nkey seed (starts with "SU"). */
  nkeySeed?: string;
  /** A .creds file (a user JWT and its seed). */
  credsFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /**
   * Names every bucket, stream and subject of this swarm (`colony_board_main`, `colony.bus.…`);
   * default "colony". Letters, digits and '-' stand for themselves; '_' is escaped (see names.ts).
   */
  prefix?: string;
  /** JetStream replicas of every bucket and stream; 1 to 5, default 1 (3 on a three-server cluster). */
  replicas?: number;
  /** How long to wait for a connection; default 5000 ms. */
  timeoutMs?: number;
}

/** The server could not be reached, refused our credentials, or has no JetStream. */
export class NatsConnectError extends ColonyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("NATS_CONNECT", message, options);
  }
}

const optionsSchema = z.strictObject({
  servers: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)], { message: "servers is a URL or a list of URLs, e.g. nats://127.0.0.1:4222" }),
  token: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  pass: z.string().optional(),
  nkeySeed: z.string().startsWith("S", { message: "nkeySeed is a seed, starting with S" }).optional(),
  credsFile: z.string().min(1).optional(),
  tls: z.strictObject({ caFile: z.string().optional(), certFile: z.string().optional(), keyFile: z.string().optional() }).optional(),
  prefix: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, { message: "prefix is 1 to 32 letters, digits, '-' or '_'" }).optional(),
  replicas: z.number().int().min(1).max(5, { message: "replicas is 1 to 5" }).optional(),
  timeoutMs: z.number().int().min(1).optional(),
});

function checkOptions(options: NatsBackendOptions): Required<Pick<NatsBackendOptions, "prefix" | "replicas">> & NatsBackendOptions & { names: NatsNames } {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`natsBackend: ${issue.path.join(".") || "options"}: ${issue.message}`);
  }
  const auth = [options.token, options.user, options.nkeySeed, options.credsFile].filter((a) => a !== undefined).length;
  if (auth > 1) throw new ConfigError("natsBackend: give one of token, user/pass, nkeySeed or credsFile");
  if (options.pass !== undefined && options.user === undefined) throw new ConfigError("natsBackend: pass needs user");
  const prefix = parsed.data.prefix ?? "colony";
  return { ...parsed.data, prefix, replicas: parsed.data.replicas ?? 1, names: natsNames(prefix) };
}

function connectionOptions(options: NatsBackendOptions): NodeConnectionOptions {
  const servers = options.servers;
  const auth: Partial<NodeConnectionOptions> = {};
  if (options.token !== undefined) auth.token = options.token;
  if (options.user !== undefined) Object.assign(auth, { user: options.user, pass: options.pass ?? "" });
  if (options.nkeySeed !== undefined) auth.authenticator = nkeyAuthenticator(new TextEncoder().encode(options.nkeySeed));
  if (options.credsFile !== undefined) {
    try {
      auth.authenticator = credsAuthenticator(readFileSync(options.credsFile));
    } catch (error) {
      throw new ConfigError(`natsBackend: credsFile ${options.credsFile}: ${describeError(error)}`, { cause: error });
    }
  }
  const tls = options.tls && { ...(options.tls.caFile && { caFile: options.tls.caFile }), ...(options.tls.certFile && { certFile: options.tls.certFile }), ...(options.tls.keyFile && { keyFile: options.tls.keyFile }) };
  // noAsyncTraces: nats.js would otherwise build an Error (a stack capture) before every request
  // and publish, in case it fails; Colony wraps every failure in its own typed error anyway, and
  // those captures were a tenth of a dispatch's CPU.
  return { servers, name: `colony-${process.pid}`, timeout: options.timeoutMs ?? 5000, maxReconnectAttempts: -1, noAsyncTraces: true, ...auth, ...(tls && { tls }) };
}

/** The oldest nats-server whose KV and JetStream behaviour Colony relies on (Debian ships 2.9). */
const OLDEST_SERVER: [number, number] = [2, 9];
/** How long closing waits for a task board's snapshot being written. */
const SETTLE_MS = 5000;

function checkServerVersion(version: string | undefined, where: string): void {
  const [major = 0, minor = 0] = (version ?? "").split(".").map((n) => Number.parseInt(n, 10));
  if (major > OLDEST_SERVER[0] || (major === OLDEST_SERVER[0] && minor >= OLDEST_SERVER[1])) return;
  throw new NatsConnectError(`nats-server ${version ?? "(unknown version)"} at ${where} is too old: Colony needs ${OLDEST_SERVER.join(".")} or newer (JetStream KV compare-and-set, stream mirrors of KV buckets)`);
}

async function open(options: ReturnType<typeof checkOptions>): Promise<Backend> {
  const where = Array.isArray(options.servers) ? options.servers.join(",") : options.servers;
  let nc: NatsConnection;
  try {
    nc = await connect(connectionOptions(options));
  } catch (error) {
    const why = describeError(error);
    const hint = /auth/i.test(why) ? "; check the credentials (--nats-user/--nats-pass, --nats-token, COLONY_NATS_*)" : "; is nats-server running there?";
    throw new NatsConnectError(`cannot connect to NATS at ${where}: ${why}${hint}`, { cause: error });
  }
  try {
    checkServerVersion(nc.info?.version, where);
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const kvm = new Kvm(js);
    const { names, replicas } = options;
    const bucket = (name: string) => outlast(() => kvm.create(name, { history: 1, replicas, allow_direct: false }));
    const [runs, agents, leases] = [await bucket(names.runs), await bucket(names.agents), await bucket(names.leases)];
    const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
    const opened = new Set<{ rejected(): RejectedMessages; settle?(): Promise<void> }>();
    const track = <S extends { rejected(): RejectedMessages; settle?(): Promise<void> }>(store: S): S => (opened.add(store), store);
    return {
      runs: new NatsRunStore(runs, bucketScan(js, jsm, names.runs)),
      agents: new NatsAgentStore(agents, new KvCas(js, jsm, agents, names.agents, replicas), bucketScan(js, jsm, names.agents), bucketStream(js, jsm, names.agents)),
      leases: new NatsLeaseStore(leases, new KvCas(js, jsm, leases, names.leases, replicas)),
      bus: new NatsBus(nc, names.bus),
      async openBoard(name: string): Promise<BoardStore> {
        const { bucket } = names.board(name);
        return track(await NatsBoardStore.open(js, jsm, bucket, replicas, maxPayload));
      },
      async openTasks(name: string): Promise<TaskStore> {
        const { stream, subject, snapshots } = names.tasks(name);
        return track(await NatsTaskStore.open(nc, js, jsm, { stream, subject, snapshots }, replicas));
      },
      async listBoards() {
        const found: BoardNames = { boards: [], tasks: [] };
        const streams = await outlast(async () => {
          const all: string[] = [];
          for await (const stream of jsm.streams.names()) all.push(stream);
          return all;
        });
        for (const stream of streams) {
          const holder = names.holder(stream);
          if (holder) found[holder.kind === "board" ? "boards" : "tasks"].push(holder.name);
        }
        return { boards: found.boards.sort(), tasks: found.tasks.sort() };
      },
      rejected: () => totalOf([...opened].map((store) => store.rejected())),
      async close() {
        // A snapshot being written is finished (a while at most: an unreachable server gives it up).
        await Promise.race([Promise.all([...opened].map((store) => store.settle?.())), sleep(SETTLE_MS, undefined, { ref: false })]);
        // Before the connection goes: the change feeds' consumers are deleted, not left to expire.
        await closeFeeds(js);
        await nc.close();
      },
    };
  } catch (error) {
    await nc.close();
    if (error instanceof NatsConnectError) throw error;
    if (error instanceof JetStreamApiError || /jetstream/i.test(describeError(error))) {
      throw new NatsConnectError(`NATS at ${where} has no usable JetStream (${describeError(error)}); start nats-server with -js`, { cause: error });
    }
    throw error;
  }
}

/**
 * NATS JetStream, for a swarm across machines. The same programs run on it as on SQLite.
 *
 * @example
 * const colony = createColony({ backend: natsBackend({ servers: "nats://127.0.0.1:4222", prefix: "team-a" }) });
 */
export function natsBackend(options: NatsBackendOptions): BackendFactory {
  const checked = checkOptions(options);
  const where = Array.isArray(checked.servers) ? checked.servers.join(",") : checked.servers;
  return { kind: "nats", embedded: false, location: `${where} (prefix ${checked.prefix})`, open: () => open(checked) };
}
