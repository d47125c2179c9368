/**
 * Starts a private nats-server (from PATH) with JetStream on a free loopback port and a store
 * directory of its own, for tests and benchmarks; `stop()` ends it and removes the directory.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ColonyError } from "../core/errors.ts";

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
  readonly process: ChildProcess;
  /** Ends the server (SIGTERM, then SIGKILL after 5 s) and removes its store unless `keepStore`. */
  stop(options?: { keepStore?: boolean }): Promise<void>;
}

export interface NatsServerOptions {
  /** Reuse a store directory (to restart a server on its data); default a fresh temporary one. */
  storeDir?: string;
  /** A fixed port (to restart a server where clients expect it); default a free one. */
  port?: number;
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
