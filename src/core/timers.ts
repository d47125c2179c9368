/**
 * Durations users give (timeouts, wall-time budgets) and timers that honour them. Node's timers
 * hold at most 2^31 - 1 ms (about 24.8 days): a longer delay fires after 1 ms, so a task with a
 * 30-day timeout would end at once. Long waits are chained here instead.
 */
import { ConfigError } from "./errors.ts";

/** The longest delay one Node timer holds. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The longest duration Colony takes for a timeout or a wall-time budget: ten years. */
export const MAX_DURATION_MS = 10 * 365 * 24 * 60 * 60 * 1000;

/** Checks a duration in milliseconds; throws `ConfigError` naming `what` and the bound. */
export function checkDuration(value: unknown, what: string, { positive = false }: { positive?: boolean } = {}): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (positive && value === 0)) {
    throw new ConfigError(`${what} is a number of milliseconds ${positive ? "> 0" : ">= 0"}, got ${String(value)}`);
  }
  if (value > MAX_DURATION_MS) {
    throw new ConfigError(`${what} is at most ${MAX_DURATION_MS} ms (ten years), got ${value}: leave it out for no limit`);
  }
  return value;
}

/**
 * Calls `callback` once `ms` have passed, however long that is, by chaining timers of at most
 * `MAX_TIMER_MS`. Returns a function that cancels it. `unref` lets the process exit meanwhile.
 */
export function longTimeout(callback: () => void, ms: number, { unref = false }: { unref?: boolean } = {}): () => void {
  let left = Math.max(0, ms);
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    const step = Math.min(left, MAX_TIMER_MS);
    left -= step;
    timer = setTimeout(left > 0 ? arm : callback, step);
    if (unref) timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}
