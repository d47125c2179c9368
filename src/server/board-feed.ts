/**
 * One watch per board for all the live streams that follow it. A stream catches up from the
 * board's log to the position it asked for, then takes the shared watch's records, skipping those
 * it already sent; so a write costs the store one read however many clients follow the board,
 * rather than one per client. A stream that falls far behind (more than `MAX_QUEUED` records
 * waiting for a slow client) leaves the shared watch and follows the board on a watch of its own
 * from where it was: a slow client costs itself, not the server's memory.
 */
import type { Board, LogRecord } from "../core/board.ts";

const MAX_QUEUED = 10_000;
const CATCH_UP_BATCH = 1000;

interface Follower {
  push(record: LogRecord): void;
  end(): void;
}

/** The shared watch of one board, from the position the board had when its first follower came. */
class Feed {
  readonly followers = new Set<Follower>();
  readonly #stop = new AbortController();

  constructor(board: Board) {
    void (async () => {
      try {
        for await (const record of board.watch({ signal: this.#stop.signal })) for (const follower of this.followers) follower.push(record);
      } catch {
        // The board closed under the watch (the colony closing): its streams end with it.
      } finally {
        for (const follower of this.followers) follower.end();
      }
    })();
  }

  stop(): void {
    this.#stop.abort();
  }
}

export class BoardFeeds {
  /** By board name: a colony gives one board object per name. */
  readonly #feeds = new Map<string, Feed>();

  /** Every record of `board` after `since`, in order, none twice, until `signal` aborts or the board closes. */
  async *follow(board: Board, since: number, signal: AbortSignal): AsyncGenerator<LogRecord> {
    const queue: LogRecord[] = [];
    let head = 0;
    let wake: (() => void) | undefined;
    let ended = false;
    let behind = false;
    let feed = this.#feeds.get(board.name);
    if (!feed) this.#feeds.set(board.name, (feed = new Feed(board)));
    const follower: Follower = {
      push(record) {
        if (behind) return;
        if (queue.length - head >= MAX_QUEUED) behind = true;
        else queue.push(record);
        wake?.();
      },
      end() {
        ended = true;
        wake?.();
      },
    };
    const leave = () => {
      feed.followers.delete(follower);
      if (feed.followers.size === 0 && this.#feeds.get(board.name) === feed) {
        this.#feeds.delete(board.name);
        feed.stop();
      }
    };
    // Following before catching up: what the log gets meanwhile waits in the queue.
    feed.followers.add(follower);
    const onAbort = () => wake?.();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      let last = since;
      for (;;) {
        const records = await board.history({ since: last, limit: CATCH_UP_BATCH });
        for (const record of records) {
          if (signal.aborted) return;
          yield record;
          last = record.seq;
        }
        if (records.length < CATCH_UP_BATCH) break;
      }
      for (;;) {
        while (head < queue.length) {
          const record = queue[head++]!;
          if (record.seq <= last) continue;
          if (signal.aborted) return;
          yield record;
          last = record.seq;
        }
        queue.length = head = 0;
        if (signal.aborted || ended) return;
        if (behind) {
          leave();
          yield* board.watch({ since: last, signal });
          return;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      leave();
    }
  }
}
