/**
 * Runs the agent registry's retention (`AgentStore.prune`) now and then, in the background: as
 * agents end (on the embedded backends), and on the swarm coordinator's timer.
 */
import type { AgentRetention } from "../../core/records.ts";
import type { AgentStore } from "../../core/store.ts";

export class AgentPruner {
  readonly #store: AgentStore;
  readonly #retention: AgentRetention;
  /** The least time from one prune to the next. */
  readonly everyMs: number;
  /** When the last prune ended, and the one running now. */
  #prunedAt = 0;
  #running: Promise<void> | undefined;
  #stopped = false;

  /** Prunes at most once every `everyMs`. */
  constructor(store: AgentStore, retention: AgentRetention, everyMs: number) {
    this.#store = store;
    this.#retention = retention;
    this.everyMs = everyMs;
  }

  /**
   * Starts a prune, one bounded step after another while a backlog remains, unless one is running
   * or is not due yet. A failure (a closed store, an outage) is left for the next time.
   */
  maybePrune(): void {
    if (this.#running || this.#stopped || Date.now() - this.#prunedAt < this.everyMs) return;
    // Keeping everything: nothing to look for.
    if (this.#retention.maxAgeMs === Infinity && this.#retention.maxEnded === Infinity) return;
    this.#running = this.#prune()
      .catch(() => {})
      .finally(() => (this.#running = undefined));
  }

  /** Starts no more prunes; resolves once the one running, if any, has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }

  async #prune(): Promise<void> {
    try {
      while (!this.#stopped && (await this.#store.prune(this.#retention, Date.now())));
    } finally {
      this.#prunedAt = Date.now();
    }
  }
}
