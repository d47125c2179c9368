/**
 * How a host is started and stopped for each isolation. A driver only moves messages and
 * reports how its host ended; the runtime decides what that means.
 */
import type { Isolation, SubAgent } from "../../core/subagent-types.ts";
import { runHost, type Channel } from "./host.ts";
import { allowedEnv, launchProcess, launchThread, type HostPool } from "./pool.ts";
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
  /** Warm hosts, taken when this spawn's would be started the same way (see pool.ts). */
  pool?: HostPool;
}

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

/** A copy of what the other side may hold on to: objects cloned (an array element-wise), the rest as it is. */
function copyOf(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  return Array.isArray(value) ? value.map(copyOf) : structuredClone(value);
}

/** A message's copy: a new envelope, each field a copy (most messages carry numbers and strings, and clone for nothing). */
function copyMessage<M extends object>(message: M): M {
  const copy: Record<string, unknown> = {};
  for (const key in message) copy[key] = copyOf(message[key]);
  return copy as M;
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
      // A spawn's definition object (its fourth argument) is code, passed as it is.
      const copy = message.t === "req" && message.op === "spawn" ? { ...message, args: [...message.args.slice(0, 3).map(copyOf), message.args[3]] } : copyMessage(message);
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
      const copy = copyMessage(message);
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
  const warm = options.pool?.takeThread(options.env, options.resourceLimits);
  const worker = warm ?? launchThread(start, allowedEnv(options.env), options.resourceLimits);
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
  // A cold thread has its start message as its workerData; a warm one waits for it.
  if (warm) worker.postMessage(start);
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
  const child = options.pool?.takeProcess(options.env, options.resourceLimits) ?? launchProcess([], allowedEnv(options.env));
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
