/**
 * The board write workload, the same on every backend and baseline: compare-and-set writes
 * cycling over 100 keys, each expecting the version (or revision) the previous write left.
 */
import type { Task } from "./measure.ts";

export const KEYS = Array.from({ length: 100 }, (_, i) => `tasks/task-${String(i).padStart(3, "0")}`);
// About 100 bytes of JSON each.
export const VALUES = KEYS.map((_, i) => ({ title: `Summarise source ${i} for the review`, status: "open", owner: `agent-${i % 7}`, score: 0.5 + i / 1000 }));
export const AUTHOR = "bench";

/**
 * A task cycling CAS writes over KEYS. `write` gets the token its previous write of the key
 * returned (0 before the first) and returns the next one; `sync` keeps a synchronous baseline
 * synchronous.
 */
export function casWriter(write: (key: string, value: unknown, expected: number) => number | Promise<number>, sync: boolean): Task {
  const versions = KEYS.map(() => 0);
  let next = 0;
  if (sync) {
    return (n) => {
      for (let j = 0; j < n; j++, next = (next + 1) % KEYS.length) versions[next] = write(KEYS[next]!, VALUES[next], versions[next]!) as number;
    };
  }
  return async (n) => {
    for (let j = 0; j < n; j++, next = (next + 1) % KEYS.length) versions[next] = await write(KEYS[next]!, VALUES[next], versions[next]!);
  };
}
