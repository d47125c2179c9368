/**
 * Starts a private nats-server (from PATH) with JetStream on a free loopback port and a store
 * directory of its own, for tests and benchmarks; `stop()` ends it and removes the directory.
 * `startNatsCluster` starts several, routed to each other, for tests that kill one of them.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { ColonyError, describeError } from "../core/errors.ts";

/** nats-server is not on PATH, or would not start. */
export class NatsServerError extends ColonyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("NATS_SERVER", message, options);
  }
}

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** The HTTP monitoring endpoint (`/connz`, `/jsz`, ...), when asked for with `monitor`. */
  readonly monitorUrl: string | undefined;
  readonly process: ChildProcess;
  /** Ends the server (SIGTERM, then SIGKILL after 5 s) and removes its store unless `keepStore`. */
  stop(options?: { keepStore?: boolean }): Promise<void>;
}

export interface NatsServerOptions {
  /** Reuse a store directory (to restart a server on its data); default a fresh temporary one. */
  storeDir?: string;
  /** A fixed port (to restart a server where clients expect it); default a free one. */
  port?: number;
  /** Serve HTTP monitoring (see `monitorUrl`): true for a free port, or on this port; default off. */
  monitor?: boolean | number;
  /** More command-line arguments (a cluster's routes, auth). */
  args?: string[];
  /** The largest message the server takes, in bytes; default the server's (1 MiB). */
  maxPayload?: number;
  /** How long to wait for "Server is ready"; default 15000 ms. */
  readyTimeoutMs?: number;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const port = options.port ?? (await freePort());
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), "colony-nats-"));
  const args = ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir];
  const monitorPort = typeof options.monitor === "number" ? options.monitor : options.monitor ? await freePort() : undefined;
  if (monitorPort !== undefined) args.push("-m", String(monitorPort));
  if (options.maxPayload !== undefined) {
    // Only a configuration file sets max_payload.
    const config = join(storeDir, "colony-test.conf");
    writeFileSync(config, `max_payload: ${options.maxPayload}\n`);
    args.push("-c", config);
  }
  const child = spawn("nats-server", [...args, ...(options.args ?? [])], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let output = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new NatsServerError(`nats-server did not become ready within ${options.readyTimeoutMs ?? 15_000} ms:\n${output}`)), options.readyTimeoutMs ?? 15_000);
      child.once("error", (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          error.code === "ENOENT"
            ? new NatsServerError("nats-server is not on PATH; install it (Debian: apt-get install nats-server)", { cause: error })
            : new NatsServerError(`nats-server would not start: ${error.message}`, { cause: error }),
        );
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new NatsServerError(`nats-server exited with code ${code} before it was ready:\n${output}`));
      });
      child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
        output += chunk;
        if (output.includes("Server is ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } catch (error) {
    child.kill("SIGKILL");
    if (options.storeDir === undefined) rmSync(storeDir, { recursive: true, force: true });
    throw error;
  }
  child.stderr!.resume();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    monitorUrl: monitorPort === undefined ? undefined : `http://127.0.0.1:${monitorPort}`,
    process: child,
    async stop(stopOptions = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      if (!stopOptions.keepStore) rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

export interface NatsCluster {
  /** The members, in start order; each can be killed on its own through its `process`. */
  readonly servers: NatsServer[];
  /** Every member's client URL, to hand to `natsBackend({ servers })`. */
  readonly urls: string[];
  /** Ends every member still running and removes their stores. */
  stop(): Promise<void>;
}

export interface NatsClusterOptions {
  /** How many servers; default 3 (the smallest cluster that survives losing one). */
  size?: number;
  /** How long to wait for every member and then for JetStream to place a stream on all of them; default 30000 ms. */
  readyTimeoutMs?: number;
  /** Serve HTTP monitoring on each member (see `NatsServer.monitorUrl`); default false. */
  monitor?: boolean;
}

/**
 * Starts `size` nats-servers with JetStream on loopback, each with its own store, routed to every
 * other, and resolves once JetStream has a meta leader and can place a stream with `size` replicas.
 *
 * @example
 * const cluster = await startNatsCluster({ size: 3 });
 * const backend = natsBackend({ servers: cluster.urls, replicas: 3 });
 * // ... cluster.servers[0].process.kill("SIGKILL") ...
 * await cluster.stop();
 */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const size = options.size ?? 3;
  if (!Number.isInteger(size) || size < 1) throw new NatsServerError(`a cluster has at least one server, got size ${size}`);
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  const name = `colony-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  // Chosen all at once, so that no two of them are the same.
  const ports = await distinctFreePorts(size * 3);
  const [clientPorts, routePorts, monitorPorts] = [ports.slice(0, size), ports.slice(size, size * 2), ports.slice(size * 2)];
  const servers: NatsServer[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  try {
    const started = await Promise.allSettled(
      clientPorts.map((port, i) =>
        startNatsServer({
          port,
          monitor: options.monitor ? monitorPorts[i] : false,
          readyTimeoutMs,
          args: [
            "--server_name", `${name}-${i}`,
            "--cluster_name", name,
            "--cluster", `nats://127.0.0.1:${routePorts[i]}`,
            "--routes", routePorts.filter((_, j) => j !== i).map((p) => `nats://127.0.0.1:${p}`).join(","),
          ],
        }),
      ),
    );
    for (const result of started) if (result.status === "fulfilled") servers.push(result.value);
    const failed = started.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    const urls = servers.map((s) => s.url);
    await untilJetStreamPlaces(urls, size, readyTimeoutMs);
    return { servers, urls, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Free ports that differ from each other (asked for one at a time, a free port may come back twice). */
async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/**
 * A cluster's JetStream answers only once its members have elected a meta leader, and takes a
 * stream with `replicas` only once that many peers have joined: try one until it is accepted.
 */
async function untilJetStreamPlaces(urls: string[], replicas: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const nc = await connect({ servers: urls, timeout: timeoutMs, maxReconnectAttempts: -1 });
  try {
    const probe = `colony_ready_${process.pid}`;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 2000 });
        await jsm.streams.add({ name: probe, subjects: [`${probe}.>`], num_replicas: replicas, storage: StorageType.Memory });
        await jsm.streams.delete(probe);
        return;
      } catch (error) {
        last = error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    throw new NatsServerError(`the nats-server cluster had no JetStream able to place ${replicas} replicas within ${timeoutMs} ms: ${describeError(last)}`, { cause: last });
  } finally {
    await nc.close();
  }
}
