/**
 * A counter that readers can wait on without missing a bump: read `version`, look for work, and
 * if there is none wait for `version` to move past what was read. A bump between the look and
 * the wait resolves the wait at once, so no wake-up is ever lost.
 */
export class ChangeSignal {
  #version = 0;
  #waiters = new Set<() => void>();
  #closed = false;

  get version(): number {
    return this.#version;
  }

  get closed(): boolean {
    return this.#closed;
  }

  bump(): void {
    this.#version++;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  /**
   * Resolves once the version is past `seen`, the signal closes, `abort` fires, or `timeoutMs`
   * passed (a timer cleared as it wakes: a poll made with `AbortSignal.timeout` left a timer
   * running, and an error built, per wait). The timer does not hold the process open, as
   * `AbortSignal.timeout`'s did not.
   */
  waitPast(seen: number, abort?: AbortSignal, timeoutMs?: number): Promise<void> {
    if (this.#version > seen || this.#closed || abort?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const wake = () => {
        this.#waiters.delete(wake);
        abort?.removeEventListener("abort", wake);
        clearTimeout(timer);
        resolve();
      };
      this.#waiters.add(wake);
      abort?.addEventListener("abort", wake, { once: true });
      if (timeoutMs !== undefined) timer = setTimeout(wake, timeoutMs).unref();
    });
  }

  /** Wakes every waiter for good; later waits resolve at once. */
  close(): void {
    this.#closed = true;
    this.bump();
  }
}
