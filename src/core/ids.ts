/** Ids that sort roughly by when they were made and do not collide across processes. */
import { randomUUID } from "node:crypto";

/**
 * `prefix-<ms since the epoch, base 36>-<random hex>`: `randomHex` characters (at most 8) from a
 * random UUID, whose first 8 are all random; randomUUID draws from a cached pool, several times
 * cheaper than a randomBytes call per id, which a worker spawning an agent per task pays each time.
 */
export function timedId(prefix: string, randomHex = 8): string {
  return `${prefix}-${Date.now().toString(36)}-${randomUUID().slice(0, Math.min(randomHex, 8))}`;
}
