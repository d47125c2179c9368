/**
 * What one board client last knew of each key, so that a write can send its conditional update
 * straight away instead of reading the key first. Knowledge may be stale (another client wrote
 * since): the server then refuses the write as a conflict, and the writer reads the key and tries
 * again. So this is only ever a guess at the revision to expect, and every entry must hold what
 * the server will check against: the key's newest Colony record as of bucket sequence `at`.
 *
 * Keys are encoded keys (subject tokens). Only keys with a Colony record are kept (live or
 * deleted: a delete's version is what the next write follows), one small entry each, so the
 * cache grows with the board's keys and with nothing else a client reads.
 */
import type { Stored } from "./board-record.ts";

/** A key's newest Colony record, as much of it as a write needs. */
export type Summary = Pick<Stored, "op" | "version" | "createdAt">;

export interface Known {
  /** The KV revision of the key's last message (0: none), which a conditional update expects. */
  revision: number;
  /** The bucket's sequence as of which this is the key's state; a write on a replicated bucket expects it as the bucket's last. */
  at: number;
  /** The key's newest Colony record at `at`; undefined if it has none. */
  record: Summary | undefined;
}

export const summary = (stored: Stored): Summary => ({ op: stored.op, version: stored.version, createdAt: stored.createdAt });

export class KnownKeys {
  readonly #keys = new Map<string, Known>();
  /**
   * Every message of the bucket up to this sequence is folded into `#keys`, so a key with no entry
   * had no Colony record then. Undefined until a load: before it, a key with no entry is unknown.
   */
  #through: number | undefined;

  /** What a write to `token` should expect, or undefined if only reading the key can tell. */
  of(token: string): Known | undefined {
    const known = this.#keys.get(token);
    const through = this.#through;
    if (through === undefined) return known;
    if (known === undefined) return { revision: 0, at: through, record: undefined };
    return known.at >= through ? known : { ...known, at: through };
  }

  /** Takes `known` unless this client already knows the key as of a later sequence. */
  learn(token: string, known: Known): Known {
    const held = this.#keys.get(token);
    if (known.record !== undefined && (held === undefined || held.at < known.at)) this.#keys.set(token, known);
    return known;
  }

  /** This client's own write or delete, stored at `seq`. */
  wrote(token: string, seq: number, record: Summary): void {
    this.learn(token, { revision: seq, at: seq, record });
    if (this.#through === seq - 1) this.#through = seq;
  }

  /** Whether a read of every message after `since` continues what is folded here. */
  continues(since: number): boolean {
    return this.#through !== undefined && since <= this.#through;
  }

  /**
   * Message `seq` on `token`, read in such a continuous pass: a Colony record (`record`) or a
   * foreign message, which moves the key's revision but not its record.
   */
  follow(token: string, seq: number, record: Summary | undefined): void {
    if (record !== undefined) return void this.learn(token, { revision: seq, at: seq, record });
    const held = this.#keys.get(token);
    if (held !== undefined && held.at < seq) this.#keys.set(token, { ...held, revision: seq, at: seq });
  }

  /** Every message up to `seq` has been folded in (a consistent load, or a continuous pass). */
  complete(seq: number): void {
    this.#through = Math.max(this.#through ?? 0, seq);
  }
}
