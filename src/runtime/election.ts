/**
 * Leader election over a backend's leases. The lease is taken with a compare-and-set create and
 * renewed with a compare-and-set on its revision; a lease is expired when its revision has not
 * moved for a whole lease period, as measured by each contender on its own monotonic clock from
 * when it first saw that revision. No two machines' clocks are compared.
 *
 * Why at most one leader at a time: a leader counts its lease from just before each renewal it
 * sent, and a contender counts from when it saw that renewal, which is later; so the leader's own
 * count runs out first. A leader that was paused (GC, SIGSTOP, a lost network) finds on waking
 * that its count ran out and stops leading before it tries anything; its next renewal then fails
 * on the revision (fencing), as does anything guarded by `confirm()`.
 *
 * How soon after a leader dies: contenders poll every quarter lease, so a new one leads within
 * 1.5 lease periods of the last renewal.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { ClosedError, ColonyError, ConfigError, describeError } from "../core/errors.ts";
import type { LeaseStore } from "../core/store.ts";
import { MAX_TIMER_MS } from "../core/timers.ts";

export interface ElectionOptions {
  /** Who campaigns: shown as the leader; default a random id. */
  candidate?: string;
  /** How long a lease holds without renewal; default 5000 ms. The leader renews every quarter of it. */
  leaseMs?: number;
}

export type ElectionEvent =
  | { type: "elected"; role: string; term: number; at: number }
  | { type: "deposed"; role: string; term: number; reason: "lost" | "expired" | "stopped"; at: number }
  /** Campaigning ended (after `deposed`, if it was leading). */
  | { type: "stopped"; role: string; at: number }
  | { type: "error"; role: string; error: string; at: number };

/** `whileLeader` was asked of a candidate that is not leading (any more). */
export class NotLeaderError extends ColonyError {
  constructor(role: string, candidate: string) {
    super("NOT_LEADER", `${candidate} is not the ${role} leader`);
  }
}

const ROLE = /^[A-Za-z0-9_-]{1,64}$/;
/** The shortest lease an election takes: a quarter of it is how often candidates ask the store. */
export const MIN_ELECTION_LEASE_MS = 20;
/** A leader stops counting itself leader this much before its lease could lapse for others. */
const MARGIN = 0.1;

export class Election {
  readonly role: string;
  readonly candidate: string;
  readonly leaseMs: number;
  readonly #store: LeaseStore;
  readonly #listeners = new Set<(event: ElectionEvent) => void>();
  /** The lease's revision while this candidate holds it. */
  #revision: number | undefined;
  /** The term: the revision at which this candidate took the lease. */
  #term: number | undefined;
  #heldUntil = 0;
  #termAbort: AbortController | undefined;
  #observed: { revision: number; seenAt: number } | undefined;
  #tick: NodeJS.Timeout | undefined;
  #expiry: NodeJS.Timeout | undefined;
  #busy: Promise<void> | undefined;
  #stopped = false;

  constructor(store: LeaseStore, role: string, options: ElectionOptions = {}) {
    if (!ROLE.test(role)) throw new ConfigError(`election role ${JSON.stringify(role)}: use 1 to 64 letters, digits, '-' or '_'`);
    const leaseMs = options.leaseMs ?? 5000;
    if (!Number.isInteger(leaseMs) || leaseMs < MIN_ELECTION_LEASE_MS || leaseMs > MAX_TIMER_MS) {
      throw new ConfigError(`election leaseMs is a whole number of milliseconds from ${MIN_ELECTION_LEASE_MS} to ${MAX_TIMER_MS}, got ${String(options.leaseMs)}`);
    }
    if (options.candidate !== undefined && (typeof options.candidate !== "string" || options.candidate.length === 0 || options.candidate.length > 256)) {
      throw new ConfigError("election candidate is a string of 1 to 256 characters");
    }
    this.#store = store;
    this.role = role;
    this.leaseMs = leaseMs;
    this.candidate = options.candidate ?? `candidate-${randomUUID().slice(0, 8)}`;
  }

  /** Starts campaigning: tries at once, then every quarter lease. */
  start(): this {
    if (this.#tick || this.#stopped) return this;
    this.#tick = setInterval(() => void this.#round(), Math.max(5, Math.floor(this.leaseMs / 4)));
    void this.#round();
    return this;
  }

  /** True while this candidate holds a lease that nobody else can have taken yet. */
  get isLeader(): boolean {
    return this.#term !== undefined && performance.now() < this.#heldUntil;
  }

  /** The current term while leading: the lease revision it began at. */
  get term(): number | undefined {
    return this.isLeader ? this.#term : undefined;
  }

  /** Who holds the lease now, as the store says (a dead leader shows until its lease is taken over). */
  async leader(): Promise<{ holder?: string; revision: number }> {
    return this.#store.get(this.role);
  }

  on(listener: (event: ElectionEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Fencing for a leader's action: true only if this candidate leads and the store still holds
   * its lease at the revision it last wrote. A deposed leader gets false, however late it wakes.
   */
  async confirm(): Promise<boolean> {
    // Not while a renewal is on its way, whose new revision the store may show before we know it.
    while (this.#busy) await this.#busy;
    if (!this.isLeader) return false;
    const check = this.#store.get(this.role).then((current) => current.revision === this.#revision && this.isLeader);
    this.#busy = check.then(
      () => {},
      () => {},
    );
    void this.#busy.then(() => (this.#busy = undefined));
    return check;
  }

  /**
   * Runs `work` if this candidate leads, with a signal that aborts when it stops leading;
   * NotLeaderError if it does not.
   */
  async whileLeader<T>(work: (signal: AbortSignal) => T | Promise<T>): Promise<T> {
    if (!this.isLeader || !this.#termAbort) throw new NotLeaderError(this.role, this.candidate);
    return work(this.#termAbort.signal);
  }

  /** Resolves when this candidate leads (at once if it does); rejects with ClosedError if stopped first. */
  async elected(signal?: AbortSignal): Promise<number> {
    if (this.isLeader) return this.#term!;
    return new Promise((resolve, reject) => {
      const done = (): void => {
        off();
        signal?.removeEventListener("abort", aborted);
      };
      const aborted = (): void => {
        done();
        reject(signal!.reason);
      };
      const off = this.on((event) => {
        if (event.type === "elected") {
          done();
          resolve(event.term);
        } else if (event.type === "stopped") {
          done();
          reject(new ClosedError(`the ${this.role} election of ${this.candidate}`));
        }
      });
      if (this.#stopped) {
        done();
        reject(new ClosedError(`the ${this.role} election of ${this.candidate}`));
        return;
      }
      signal?.addEventListener("abort", aborted, { once: true });
    });
  }

  /** Stops campaigning; a leader frees its lease, so that another takes over at once. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#tick);
    await this.#busy;
    const revision = this.#revision;
    const leading = this.isLeader;
    this.#depose("stopped");
    if (leading && revision !== undefined) {
      await this.#store.release(this.role, revision).catch((error: unknown) => this.#error(error));
    }
  }

  #round(): Promise<void> {
    if (this.#busy || this.#stopped) return this.#busy ?? Promise.resolve();
    this.#busy = this.#campaign()
      .catch((error: unknown) => this.#error(error))
      .finally(() => {
        this.#busy = undefined;
      });
    return this.#busy;
  }

  async #campaign(): Promise<void> {
    const started = performance.now();
    if (this.#revision !== undefined) {
      if (!this.isLeader) {
        // Paused past the lease: somebody may lead now. Stop first, then campaign afresh.
        this.#depose("expired");
      } else {
        const term = this.#term;
        const renewed = await this.#store.put(this.role, this.candidate, this.#revision);
        // Deposed while the renewal was on its way (it took longer than the lease): stay deposed.
        if (this.#stopped || this.#term !== term) return;
        if (renewed === undefined) this.#depose("lost");
        else this.#hold(renewed, started);
        return;
      }
    }
    const current = await this.#store.get(this.role);
    if (this.#stopped) return;
    const free = current.holder === undefined;
    if (!free && this.#observed?.revision !== current.revision) {
      this.#observed = { revision: current.revision, seenAt: started };
      return;
    }
    if (!free && started - this.#observed!.seenAt < this.leaseMs) return;
    // Free, or its revision stood still for a whole lease: take it, if nobody else did first.
    const taken = await this.#store.put(this.role, this.candidate, current.revision);
    if (taken === undefined || this.#stopped) return;
    this.#term = taken;
    this.#termAbort = new AbortController();
    this.#hold(taken, started);
    this.#emit({ type: "elected", role: this.role, term: taken, at: Date.now() });
  }

  #hold(revision: number, sentAt: number): void {
    this.#revision = revision;
    this.#observed = undefined;
    this.#heldUntil = sentAt + this.leaseMs * (1 - MARGIN);
    clearTimeout(this.#expiry);
    const left = this.#heldUntil - performance.now();
    this.#expiry = setTimeout(() => {
      if (this.#term !== undefined && !this.isLeader) this.#depose("expired");
    }, Math.max(0, left) + 1);
    this.#expiry.unref();
  }

  #depose(reason: "lost" | "expired" | "stopped"): void {
    clearTimeout(this.#expiry);
    const term = this.#term;
    this.#revision = undefined;
    this.#term = undefined;
    this.#heldUntil = 0;
    this.#termAbort?.abort(new NotLeaderError(this.role, this.candidate));
    this.#termAbort = undefined;
    if (term !== undefined) this.#emit({ type: "deposed", role: this.role, term, reason, at: Date.now() });
    if (reason === "stopped") this.#emit({ type: "stopped", role: this.role, at: Date.now() });
  }

  #error(error: unknown): void {
    this.#emit({ type: "error", role: this.role, error: describeError(error), at: Date.now() });
    // A leader that cannot reach the store stays leader only as long as its lease surely holds.
    if (this.#term !== undefined && !this.isLeader) this.#depose("expired");
  }

  #emit(event: ElectionEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}
