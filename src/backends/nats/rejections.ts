/**
 * The tally of messages a NATS store found on its stream but did not fold in, because Colony did
 * not write them (published by hand, by another program, or by a broken client). Skipping them
 * keeps one foreign message from bricking a board for every client; counting them keeps it from
 * passing unnoticed (`colony status` shows the count).
 */
import type { RejectedMessages } from "../../core/store.ts";

/** How many reasons are kept: enough to see what is arriving, bounded however many arrive. */
const KEPT = 5;
/** A reason quotes what was read (ids, say): a foreign message must not make a megabyte of it. */
const REASON_CHARS = 300;

export class Rejections {
  #count = 0;
  readonly #last: string[] = [];
  /** Stream sequences already counted: a board reads the same message on every history or load. */
  readonly #seen = new Set<string>();

  /** Counts the message at `seq` of `stream` once, however often it is read again. */
  note(stream: string, seq: number, reason: string): void {
    const id = `${stream}#${seq}`;
    if (this.#seen.has(id)) return;
    this.#seen.add(id);
    this.#count++;
    const cut = reason.length > REASON_CHARS ? `${reason.slice(0, REASON_CHARS)}…` : reason;
    this.#last.push(`${stream} message ${seq}: ${cut}`);
    if (this.#last.length > KEPT) this.#last.shift();
  }

  snapshot(): RejectedMessages {
    return { count: this.#count, last: [...this.#last] };
  }
}

/** The sum of several tallies, as one backend reports all the stores it opened. */
export function totalOf(tallies: Iterable<RejectedMessages>): RejectedMessages {
  let count = 0;
  const last: string[] = [];
  for (const tally of tallies) {
    count += tally.count;
    last.push(...tally.last);
  }
  return { count, last: last.slice(-KEPT) };
}
