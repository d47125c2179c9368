/**
 * The compare-and-set rule every backend applies inside its atomic write step, so that all of
 * them refuse exactly the same writes.
 */
import { VersionConflictError } from "./errors.ts";

/**
 * `liveVersion` is the key's version, 0 if it does not exist or is deleted; `lastVersion` the
 * highest version it ever had (tombstones included). Returns the version the write gets.
 */
export function nextVersion(key: string, expectedVersion: number | undefined, liveVersion: number, lastVersion: number): number {
  if (expectedVersion !== undefined && expectedVersion !== liveVersion) {
    throw new VersionConflictError(key, expectedVersion, liveVersion);
  }
  return lastVersion + 1;
}
