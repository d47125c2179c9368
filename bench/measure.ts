/**
 * Timing helpers. A task runs `n` operations in its own loop (synchronous baselines stay
 * synchronous); rounds of several tasks are interleaved, alternating their order, so that
 * machine noise and order effects land on every task alike. Results are medians.
 */

/** Runs `n` operations; may be synchronous. */
export type Task = (n: number) => unknown;

export interface Result {
  /** Median operations per second over the rounds. */
  opsPerSec: number;
  /** Every round's operations per second, in round order. */
  rounds: number[];
}

export interface Comparison {
  ours: Result;
  raw: Result;
  /** raw ops/s ÷ our ops/s (medians): how many times longer our operation takes. */
  ratio: number;
  /** The median of the per-round ratios, each round's two runs being adjacent in time. */
  pairedRatio: number;
  /** The smallest and largest per-round ratio, rounds being interleaved pairs. */
  roundMin: number;
  roundMax: number;
}

/** Ours against its baseline, measured in the same interleaved rounds. */
export function comparison(ours: Result, raw: Result): Comparison {
  const paired = raw.rounds.map((r, i) => r / ours.rounds[i]!);
  return { ours, raw, ratio: raw.opsPerSec / ours.opsPerSec, pairedRatio: median(paired), roundMin: Math.min(...paired), roundMax: Math.max(...paired) };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** Seconds taken by `task(n)`. */
export async function time(task: Task, n: number): Promise<number> {
  const started = performance.now();
  await task(n);
  return (performance.now() - started) / 1000;
}

/** Warms `task` up and returns how many operations take about `targetMs`. */
export async function calibrate(task: Task, targetMs: number): Promise<number> {
  let n = 16;
  for (;;) {
    const seconds = await time(task, n);
    if (seconds * 1000 >= targetMs / 4) {
      const sized = Math.max(1, Math.round((n * targetMs) / (seconds * 1000)));
      await time(task, sized); // one more warm-up at the final size
      return sized;
    }
    n *= 4;
  }
}

export interface CompareOptions {
  rounds: number;
  /** How long one round of the slowest task should take. */
  targetMs: number;
  /** Awaited after the warm-up and sizing, just before the first timed round. */
  beforeRounds?: () => unknown;
  /** Awaited just after the last timed round. */
  afterRounds?: () => unknown;
}

/**
 * Measures every task for the same number of operations per round (so that stores grow alike),
 * sized so that the slowest task takes about `targetMs` per round.
 */
export async function compare<K extends string>(tasks: Record<K, Task>, options: CompareOptions): Promise<Record<K, Result>> {
  const names = Object.keys(tasks) as K[];
  let n = Infinity;
  for (const name of names) n = Math.min(n, await calibrate(tasks[name], options.targetMs));
  const samples = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<K, number[]>;
  await options.beforeRounds?.();
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) samples[name].push(n / (await time(tasks[name], n)));
  }
  await options.afterRounds?.();
  return Object.fromEntries(names.map((name) => [name, { opsPerSec: median(samples[name]), rounds: samples[name] }])) as Record<K, Result>;
}
