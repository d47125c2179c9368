/**
 * What retention of task boards and of the agent registry share: how their limits are checked,
 * and which of the ended things they look at go.
 */
import { z } from "zod";
import { ConfigError } from "./errors.ts";

/** A whole number from 0, or Infinity for "keep everything". */
export const limit = (what: string) => {
  const message = `${what} must be a whole number >= 0 or Infinity`;
  return z.union([z.number({ message }).int({ message }).min(0, { message }), z.literal(Infinity)], { message });
};

/**
 * `partial` checked against `schema`, with what it leaves out taken from `defaults`; a
 * `ConfigError` naming the field (under `where`) if it is wrong.
 */
export function checkLimits<T extends object>(schema: z.ZodType<Partial<T>>, defaults: Readonly<T>, partial: unknown, where: string): T {
  const parsed = schema.safeParse(partial === undefined ? {} : partial);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`${where}${issue.path.length > 0 ? `.${issue.path.join(".")}` : ""}: ${issue.message}`);
  }
  return { ...defaults, ...Object.fromEntries(Object.entries(parsed.data).filter(([, v]) => v !== undefined)) };
}

/**
 * Of `candidates`, in the order they ended, the leading ones retention no longer keeps: while
 * there are more than it keeps (`excess` > 0), or they ended before `cutoff`.
 */
export function pastRetention<T>(candidates: readonly T[], excess: number, cutoff: number, endedAt: (candidate: T) => number): T[] {
  const gone: T[] = [];
  for (const candidate of candidates) {
    // In the order they ended: once one is neither too many nor too old, so are the rest.
    if (excess <= 0 && endedAt(candidate) >= cutoff) break;
    gone.push(candidate);
    excess--;
  }
  return gone;
}
