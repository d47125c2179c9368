/**
 * How thread and process hosts are launched, and the warm pool of them. A cold host spends most
 * of its start in starting a Node isolate or process and loading the host code; a warm one has
 * done that and waits for its start message, so a spawn into it only sends that message.
 *
 * A pooled host is used once: it runs one agent and is then disposed exactly as a cold one is, so
 * no agent ever sees anything of another. The pool replaces it in the background, one start at a
 * time, so a burst of spawns never becomes a burst of starts. Only a spawn whose host would be
 * launched the same way takes a warm one: the default environment (`DEFAULT_ENV`, with this
 * process's values at the time of the spawn) and no `resourceLimits`; any other starts cold.
 */
import { fork, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { getCompileCacheDir } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker, type ResourceLimits } from "node:worker_threads";
import { ConfigError } from "../../core/errors.ts";
import { DEFAULT_ENV, type Isolation } from "../../core/subagent-types.ts";
import { LIFELINE_FD, OWN_COMPILE_CACHE, POOLED, WARM } from "./wire.ts";

type HostKind = Exclude<Isolation, "inline">;
const KINDS: readonly HostKind[] = ["thread", "process"];

/** Runs the entry files as .ts from a checkout and as .js from the built package. */
const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const THREAD_ENTRY = new URL(`./thread-entry${ext}`, import.meta.url);
/**
 * A thread's first code, in plain JavaScript: it turns on Node's compile cache before the host
 * code loads, so that code is stripped of its types and compiled once per machine and version,
 * not once per thread (without it, most of a thread's start went to that), and nothing in the
 * thread needs the TypeScript stripper at all. Unless NODE_DISABLE_COMPILE_CACHE is set;
 * NODE_COMPILE_CACHE names another directory than the default one under the temp folder.
 */
const THREAD_BOOT = `require("node:module").enableCompileCache(); import(${JSON.stringify(THREAD_ENTRY.href)});`;
const PROCESS_ENTRY = new URL(`./process-entry${ext}`, import.meta.url);
/** The longest a pool waits before trying again after warm hosts failed to start. */
const MAX_RETRY_MS = 30_000;

/** The named variables with this process's values, those that are set. */
export function allowedEnv(names: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of names) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** A worker thread running the host; `workerData` is its start message, or `POOLED` to wait for one. */
export function launchThread(workerData: unknown, env: Record<string, string>, resourceLimits?: ResourceLimits): Worker {
  // A copy of only the allowed variables: the thread's process.env is this object, not ours.
  return new Worker(THREAD_BOOT, { eval: true, workerData, env, ...(resourceLimits && { resourceLimits }) });
}

/**
 * A child process running the host; it waits for its start message on the IPC channel. It gets
 * Node's compile cache, so the host code is stripped of its types and compiled once per machine,
 * not once per process (a thread turns it on in its first code): through NODE_COMPILE_CACHE, which
 * the host takes out of its environment again (`OWN_COMPILE_CACHE`), so the agent sees exactly
 * the environment it was given. Not where this process has the cache turned off, and in the
 * directory the agent's own environment names, if it names one.
 */
export function launchProcess(args: string[], env: Record<string, string>): ChildProcess {
  const cache = !process.env.NODE_DISABLE_COMPILE_CACHE && env.NODE_COMPILE_CACHE === undefined;
  const dir = getCompileCacheDir() ?? process.env.NODE_COMPILE_CACHE ?? join(tmpdir(), "node-compile-cache");
  const child = fork(PROCESS_ENTRY, cache ? [...args, OWN_COMPILE_CACHE] : args, {
    env: cache ? { ...env, NODE_COMPILE_CACHE: dir } : env,
    execArgv: [],
    serialization: "advanced",
    // The lifeline (LIFELINE_FD): nothing is ever written on it; it closes when this process goes.
    stdio: ["ignore", "inherit", "inherit", "ipc", "pipe"],
  });
  const lifeline = child.stdio[LIFELINE_FD] as Socket | null;
  lifeline?.on("error", () => {}).unref();
  // Killed, the host could not stop its watchdog: the lifeline's end lets that one go too.
  child.once("exit", () => lifeline?.destroy());
  return child;
}

export interface PoolSizes {
  thread: number;
  process: number;
}

/** The `pool` option, checked: whole numbers >= 0 for `thread` and `process`, nothing else. */
export function checkPoolSizes(value: unknown): PoolSizes {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(`pool is { thread?: number, process?: number }, got ${JSON.stringify(value)}`);
  }
  const sizes: PoolSizes = { thread: 0, process: 0 };
  for (const [key, size] of Object.entries(value)) {
    if (!KINDS.includes(key as HostKind)) throw new ConfigError(`pool takes thread and process, got ${JSON.stringify(key)}`);
    if (size === undefined) continue;
    if (!Number.isSafeInteger(size) || (size as number) < 0) throw new ConfigError(`pool.${key} is a whole number >= 0, got ${JSON.stringify(size)}`);
    sizes[key as HostKind] = size as number;
  }
  return sizes;
}

interface Warm {
  kind: HostKind;
  host: Worker | ChildProcess;
  ready: boolean;
  /** What it was started with: a spawn takes it only while these are still what it would get. */
  env: Record<string, string>;
  cwd: string;
  /** Takes the pool's listeners off the host. */
  release(): void;
}

function sameEnv(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

export class HostPool {
  readonly #sizes: PoolSizes;
  /** Every warm host, ready or starting. */
  readonly #hosts: Warm[] = [];
  #starting: Warm | undefined;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;
  /** No orphans: a pooled process dies with this one, even on process.exit(). */
  readonly #onExit = () => {
    for (const warm of this.#hosts) if (warm.kind === "process") (warm.host as ChildProcess).kill("SIGKILL");
  };

  constructor(sizes: PoolSizes) {
    this.#sizes = sizes;
    if (sizes.process > 0) process.on("exit", this.#onExit);
    setImmediate(() => this.#fill()).unref();
  }

  /** The ids of the warm hosts ready now: thread ids of the threads, pids of the processes. */
  status(): { thread: number[]; process: number[] } {
    const ready = this.#hosts.filter((w) => w.ready);
    return {
      thread: ready.flatMap((w) => (w.kind === "thread" ? [(w.host as Worker).threadId] : [])),
      process: ready.flatMap((w) => (w.kind === "process" ? [(w.host as ChildProcess).pid!] : [])),
    };
  }

  /** A warm thread for a spawn with these environment names and limits, or undefined: start one cold. */
  takeThread(env: readonly string[], limits: ResourceLimits | undefined): Worker | undefined {
    return this.#take("thread", env, limits) as Worker | undefined;
  }

  takeProcess(env: readonly string[], limits: ResourceLimits | undefined): ChildProcess | undefined {
    return this.#take("process", env, limits) as ChildProcess | undefined;
  }

  /** Stops every warm host (a process by SIGKILL: it runs no agent yet) and starts no more. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    process.off("exit", this.#onExit);
    const hosts = this.#hosts.splice(0);
    this.#starting = undefined;
    await Promise.all(hosts.map((warm) => stop(warm)));
  }

  #take(kind: HostKind, env: readonly string[], limits: ResourceLimits | undefined): Worker | ChildProcess | undefined {
    if (this.#closed || env.length !== DEFAULT_ENV.length || !DEFAULT_ENV.every((name) => env.includes(name))) return undefined;
    if (limits && Object.values(limits).some((v) => v !== undefined)) return undefined;
    const now = allowedEnv(DEFAULT_ENV);
    const cwd = process.cwd();
    // Started before a default variable or (for a process) the directory changed: not what a cold start would give.
    for (const stale of this.#hosts.filter((w) => w.ready && (!sameEnv(w.env, now) || (w.kind === "process" && w.cwd !== cwd)))) {
      this.#hosts.splice(this.#hosts.indexOf(stale), 1);
      void stop(stale);
    }
    const warm = this.#hosts.find((w) => w.kind === kind && w.ready && (kind === "thread" || (w.host as ChildProcess).connected));
    if (warm) {
      this.#hosts.splice(this.#hosts.indexOf(warm), 1);
      warm.release();
      // Now it runs an agent: it keeps this process alive, as a cold host does.
      if (warm.kind === "thread") (warm.host as Worker).ref();
      else {
        (warm.host as ChildProcess).ref();
        (warm.host as ChildProcess).channel?.ref();
      }
    }
    // The replacement starts after this spawn's own work, not in the middle of it.
    setImmediate(() => this.#fill()).unref();
    return warm?.host;
  }

  /** Starts the next warm host the pool lacks, if none is starting. */
  #fill(): void {
    if (this.#closed || this.#starting || this.#retry) return;
    const lack = (kind: HostKind) => this.#sizes[kind] - this.#hosts.filter((w) => w.kind === kind).length;
    const kind = lack("thread") <= 0 && lack("process") <= 0 ? undefined : lack("thread") >= lack("process") ? "thread" : "process";
    if (!kind) return;
    const env = allowedEnv(DEFAULT_ENV);
    const warm: Warm = { kind, host: undefined!, ready: false, env, cwd: process.cwd(), release: () => {} };
    const onMessage = (raw: unknown) => {
      if (raw !== WARM || warm.ready) return;
      warm.ready = true;
      this.#starting = undefined;
      this.#failures = 0;
      this.#fill();
    };
    const onEnd = () => this.#lost(warm);
    try {
      if (kind === "thread") {
        const worker = launchThread(POOLED, env);
        worker.on("message", onMessage).on("error", onEnd).on("exit", onEnd).unref();
        warm.host = worker;
        warm.release = () => void worker.off("message", onMessage).off("error", onEnd).off("exit", onEnd);
      } else {
        const child = launchProcess([POOLED], env);
        child.on("message", onMessage).on("error", onEnd).on("exit", onEnd).unref();
        child.channel?.unref();
        warm.host = child;
        warm.release = () => void child.off("message", onMessage).off("error", onEnd).off("exit", onEnd);
      }
    } catch {
      this.#backOff();
      return;
    }
    this.#hosts.push(warm);
    this.#starting = warm;
  }

  /** A warm host ended by itself: before it was ready (a failed start) or while it waited. */
  #lost(warm: Warm): void {
    const at = this.#hosts.indexOf(warm);
    if (at === -1) return;
    this.#hosts.splice(at, 1);
    warm.release();
    if (this.#starting === warm) {
      this.#starting = undefined;
      this.#backOff();
    } else this.#fill();
  }

  /** Hosts that fail to start are tried again later and later, not in a tight loop; spawns go cold meanwhile. */
  #backOff(): void {
    this.#failures++;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#fill();
    }, Math.min(MAX_RETRY_MS, 100 * 2 ** this.#failures)).unref();
  }
}

function stop(warm: Warm): Promise<void> {
  warm.release();
  // Held again while it stops: an unref'd host's end does not keep this process alive, and a
  // close() awaited with nothing else to do would leave its caller's await unsettled at exit.
  warm.host.ref();
  if (warm.kind === "thread") return (warm.host as Worker).terminate().then(() => undefined);
  const child = warm.host as ChildProcess;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGKILL");
  return exited;
}
