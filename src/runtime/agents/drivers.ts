/**
 * How a host is started and stopped for each isolation. A driver only moves messages and
 * reports how its host ended; the runtime decides what that means.
 */
import { fork } from "node:child_process";
import { Worker } from "node:worker_threads";
import type { Isolation, SubAgent } from "../../core/subagent-types.ts";
import { runHost, type Channel } from "./host.ts";
import type { HostMessage, RuntimeMessage, StartMessage } from "./protocol.ts";

export interface Driver {
  readonly pid: number | undefined;
  send(message: RuntimeMessage): void;
  /** Stops the host at once: terminates the worker, SIGKILLs the process; inline cannot be stopped. */
  kill(): void;
  /** Releases a host whose agent has ended. */
  dispose(): void;
}

export interface DriverEvents {
  message(raw: unknown): void;
  /** The host ended without saying done or fail first; `detail` says how. */
  exit(detail: string): void;
}

export interface DriverOptions {
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number; stackSizeMb?: number };
  /** The names of the environment variables a thread or process child gets, with this process's values. */
  env: readonly string[];
}

function allowedEnv(names: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of names) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** Runs the entry files as .ts from a checkout and as .js from the built package. */
const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const THREAD_ENTRY = new URL(`./thread-entry${ext}`, import.meta.url);
const PROCESS_ENTRY = new URL(`./process-entry${ext}`, import.meta.url);

export function startDriver(
  isolation: Isolation,
  start: StartMessage,
  definition: SubAgent | undefined,
  events: DriverEvents,
  options: DriverOptions,
): Driver {
  switch (isolation) {
    case "inline":
      return inlineDriver(start, definition, events);
    case "thread":
      return threadDriver(start, events, options);
    case "process":
      return processDriver(start, events, options);
  }
}

/**
 * Same event loop, but still nothing shared: every message is copied, so a child that mutates
 * its input or its results changes nothing its parent holds.
 */
function inlineDriver(start: StartMessage, definition: SubAgent | undefined, events: DriverEvents): Driver {
  let listener: ((message: unknown) => void) | undefined;
  let open = true;
  const channel: Channel = {
    trusted: true,
    send(message: HostMessage) {
      if (!open) return;
      const copy =
        message.t === "req" && message.op === "spawn"
          ? { ...message, args: [...structuredClone(message.args.slice(0, 3)), message.args[3]] }
          : structuredClone(message);
      queueMicrotask(() => events.message(copy));
    },
    listen(fn) {
      listener = fn;
    },
  };
  const copy = { ...start, input: structuredClone(start.input) };
  queueMicrotask(() => {
    runHost(channel, copy, definition).catch((error: unknown) => events.exit(`host failed: ${String(error)}`));
  });
  return {
    pid: undefined,
    send(message) {
      if (!open) return;
      const copy = structuredClone(message);
      queueMicrotask(() => listener?.(copy));
    },
    kill() {
      open = false;
    },
    dispose() {
      open = false;
    },
  };
}

function threadDriver(start: StartMessage, events: DriverEvents, options: DriverOptions): Driver {
  const worker = new Worker(THREAD_ENTRY, {
    workerData: start,
    // A copy of only the allowed variables: the thread's process.env is this object, not ours.
    env: allowedEnv(options.env),
    ...(options.resourceLimits && { resourceLimits: options.resourceLimits }),
  });
  let ended = false;
  worker.on("message", (raw: unknown) => events.message(raw));
  worker.on("error", (error: Error & { code?: string }) => {
    if (ended) return;
    ended = true;
    events.exit(error.code === "ERR_WORKER_OUT_OF_MEMORY" ? "the thread ran out of memory" : `the thread crashed: ${error.message}`);
  });
  worker.on("exit", (code) => {
    if (ended) return;
    ended = true;
    events.exit(`the thread exited with code ${code}`);
  });
  return {
    pid: undefined,
    send: (message) => worker.postMessage(message),
    kill() {
      ended = true;
      void worker.terminate();
    },
    dispose() {
      ended = true;
      void worker.terminate();
    },
  };
}

function processDriver(start: StartMessage, events: DriverEvents, options: DriverOptions): Driver {
  const child = fork(PROCESS_ENTRY, [], {
    env: allowedEnv(options.env),
    execArgv: [],
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let ended = false;
  child.on("message", (raw: unknown) => events.message(raw));
  child.on("error", (error) => {
    if (ended) return;
    ended = true;
    events.exit(`the process could not run: ${error.message}`);
  });
  child.on("exit", (code, signal) => {
    if (ended) return;
    ended = true;
    events.exit(signal ? `the process was killed by ${signal}` : `the process exited with code ${code}`);
  });
  child.send(start);
  const send = (message: RuntimeMessage) => {
    if (child.connected) child.send(message);
  };
  return {
    get pid() {
      return child.pid;
    },
    send,
    kill() {
      ended = true;
      child.kill("SIGKILL");
    },
    dispose() {
      ended = true;
      // The child exits once the channel closes; the timer is only a backstop.
      if (child.connected) child.disconnect();
      setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"), 2000).unref();
    },
  };
}
