/**
 * The versioned blackboard. A Board keeps an in-memory copy of its entries, folded from the
 * store's log, so that `view()` can hand out synchronous snapshots while every write still goes
 * through the store's compare-and-set. Its own writes show in the next view at once; writes by
 * other processes show after `refresh()` (which the run loop calls before every step).
 */
import { ChangeSignal } from "./changes.ts";
import { ClosedError, ConfigError } from "./errors.ts";
import { checkAuthor, checkKey, checkTags, deepFreeze, parseFrozen, toJson, type JsonValue, type Tags, type TagsInput } from "./json.ts";
import type { BoardStore, StoredEntry, StoredRecord } from "./store.ts";

export interface Entry<V = unknown> {
  readonly key: string;
  readonly value: V;
  readonly author: string;
  readonly version: number;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Name → value, as `{ status: "pending_review", confidence: 0.85 }`; `{}` if it has none. */
  readonly tags: Tags;
}

export interface LogRecord {
  readonly seq: number;
  readonly op: "write" | "delete";
  readonly key: string;
  readonly version: number;
  readonly author: string;
  readonly at: number;
  /** The value written; null for a delete. */
  readonly value: unknown;
  readonly tags: Tags;
}

export interface WriteOptions {
  author: string;
  /** Name → JSON value; a list of names is shorthand for each tagged `true`. Replaces the entry's tags. */
  tags?: TagsInput;
  /** undefined = unconditional, 0 = create only, n = only if the current version is n. */
  expectedVersion?: number;
}

export interface DeleteOptions {
  author: string;
  expectedVersion?: number;
}

export interface HistoryOptions {
  key?: string;
  /** Records after this log position; default 0, the start. */
  since?: number;
  limit?: number;
}

export interface WatchOptions {
  /**
   * Records after this log position. Default: the position this board has seen when the watch
   * starts (its view's `seq`), so that nothing written after that is missed, even by another
   * process while the watch was still finding its place.
   */
  since?: number;
  signal?: AbortSignal;
}

/** A synchronous, read-only snapshot of a board. It never changes after it is taken. */
export interface BoardView {
  readonly board: string;
  /** The log position this snapshot reflects. */
  readonly seq: number;
  readonly size: number;
  read<V = unknown>(key: string): Entry<V> | undefined;
  has(key: string): boolean;
  /** Keys in code-point order, optionally only those starting with `prefix`. */
  keys(prefix?: string): string[];
  /**
   * Entries that carry the tag `name`, in key order; with `predicate`, only those for whose tag
   * value (and entry) it is true: `readByTag("status", (v) => v === "pending_review")`.
   */
  readByTag(name: string, predicate?: (value: JsonValue, entry: Entry) => boolean): Entry[];
  readByAuthor(author: string): Entry[];
  entries(): Entry[];
}

/** What agents and callers read and write through. */
export interface BoardHandle {
  readonly name: string;
  write<V>(key: string, value: V, options: WriteOptions): Promise<Entry<V>>;
  /** Resolves false, writing nothing, when the key does not exist and no version was expected. */
  delete(key: string, options: DeleteOptions): Promise<boolean>;
  get<V = unknown>(key: string): Promise<Entry<V> | undefined>;
  view(): BoardView;
}

class SnapshotView implements BoardView {
  readonly board: string;
  readonly seq: number;
  readonly #entries: ReadonlyMap<string, Entry>;
  #sortedKeys?: string[];

  constructor(board: string, seq: number, entries: ReadonlyMap<string, Entry>) {
    this.board = board;
    this.seq = seq;
    this.#entries = entries;
  }

  get size(): number {
    return this.#entries.size;
  }

  read<V = unknown>(key: string): Entry<V> | undefined {
    return this.#entries.get(key) as Entry<V> | undefined;
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  keys(prefix?: string): string[] {
    this.#sortedKeys ??= [...this.#entries.keys()].sort(compareCodePoints);
    return prefix === undefined ? [...this.#sortedKeys] : this.#sortedKeys.filter((k) => k.startsWith(prefix));
  }

  readByTag(name: string, predicate?: (value: JsonValue, entry: Entry) => boolean): Entry[] {
    return this.entries().filter((e) => Object.hasOwn(e.tags, name) && (predicate === undefined || predicate(e.tags[name]!, e)));
  }

  readByAuthor(author: string): Entry[] {
    return this.entries().filter((e) => e.author === author);
  }

  entries(): Entry[] {
    return this.keys().map((k) => this.#entries.get(k)!);
  }
}

/**
 * `<` on strings compares UTF-16 code units, which puts a surrogate pair (U+10000 and up) before
 * U+E000..U+FFFF. Shifting the units makes the first differing unit decide in code-point order.
 */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}

export function toEntry(stored: StoredEntry): Entry {
  return Object.freeze({
    key: stored.key,
    value: parseFrozen(stored.json),
    author: stored.author,
    version: stored.version,
    createdAt: stored.createdAt,
    updatedAt: stored.updatedAt,
    tags: deepFreeze(stored.tags) as Tags,
  });
}

export function toLogRecord(stored: StoredRecord): LogRecord {
  return Object.freeze({
    seq: stored.seq,
    op: stored.op,
    key: stored.key,
    version: stored.version,
    author: stored.author,
    at: stored.at,
    value: stored.json === null ? null : parseFrozen(stored.json),
    tags: deepFreeze(stored.tags) as Tags,
  });
}

/** Folds one log record into a map of live entries; the same rule rebuilds a board at any seq. */
export function applyRecord(entries: Map<string, Entry>, record: LogRecord): void {
  if (record.op === "delete") {
    entries.delete(record.key);
    return;
  }
  const previous = entries.get(record.key);
  entries.set(
    record.key,
    Object.freeze({
      key: record.key,
      value: record.value,
      author: record.author,
      version: record.version,
      createdAt: previous?.createdAt ?? record.at,
      updatedAt: record.at,
      tags: record.tags,
    }),
  );
}

/** A board as of log position `seq`, rebuilt from its records (`records` in seq order from 1). */
/** A board's name, how many entries it holds and its log position, read fresh from the store. */
export async function boardSummary(board: Board): Promise<{ name: string; entries: number; seq: number }> {
  await board.refresh();
  const view = board.view();
  return { name: board.name, entries: view.size, seq: view.seq };
}

export function viewAt(board: string, seq: number, records: Iterable<LogRecord>): BoardView {
  const entries = new Map<string, Entry>();
  for (const record of records) {
    if (record.seq > seq) break;
    applyRecord(entries, record);
  }
  return new SnapshotView(board, seq, entries);
}

export interface BoardLimits {
  maxValueBytes: number;
}

const REFRESH_BATCH = 1000;

export class Board implements BoardHandle {
  readonly name: string;
  readonly #store: BoardStore;
  readonly #limits: BoardLimits;
  readonly #entries = new Map<string, Entry>();
  readonly #watchers = new Set<ChangeSignal>();
  #seq = 0;
  #snapshot: SnapshotView | undefined;
  #closed = false;
  #refreshing: Promise<number> | undefined;

  private constructor(name: string, store: BoardStore, limits: BoardLimits) {
    this.name = name;
    this.#store = store;
    this.#limits = limits;
  }

  /** Loads the board's current entries; used by backends' `colony.board(name)`. */
  static async open(name: string, store: BoardStore, limits: BoardLimits): Promise<Board> {
    const board = new Board(name, store, limits);
    const { entries, seq } = await store.load();
    for (const stored of entries) board.#entries.set(stored.key, toEntry(stored));
    board.#seq = seq;
    return board;
  }

  /** The log position of the newest write this board object knows of. */
  get seq(): number {
    return this.#seq;
  }

  async write<V>(key: string, value: V, options: WriteOptions): Promise<Entry<V>> {
    this.#checkOpen();
    checkKey(key);
    // Each option is read once: a getter must not show the checks one thing and the store another.
    const { author, tags: givenTags, expectedVersion } = options ?? ({} as Partial<WriteOptions>);
    checkAuthor(author);
    checkExpectedVersion(expectedVersion);
    const tags = checkTags(key, givenTags);
    const json = toJson(key, value, this.#limits.maxValueBytes);
    const { record, createdAt } = await this.#store.write({ key, json, author, tags, expectedVersion, at: Date.now() });
    const entry: Entry<V> = Object.freeze({
      key,
      value: parseFrozen(json) as V,
      author: record.author,
      version: record.version,
      createdAt,
      updatedAt: record.at,
      tags: deepFreeze(tags) as Tags,
    });
    if (record.seq === this.#seq + 1) {
      this.#entries.set(key, entry);
      this.#seq = record.seq;
    } else {
      // Another writer got in between: catch up so that the next view shows this write. The
      // write is stored either way: if the catch-up fails, the caller still hears of its success,
      // and the view catches up on its next refresh.
      await this.#catchUp(record.seq).catch(() => {});
    }
    return entry;
  }

  async delete(key: string, options: DeleteOptions): Promise<boolean> {
    this.#checkOpen();
    checkKey(key);
    const { author, expectedVersion } = options ?? ({} as Partial<DeleteOptions>);
    checkAuthor(author);
    checkExpectedVersion(expectedVersion);
    const record = await this.#store.delete({ key, author, expectedVersion, at: Date.now() });
    if (record === undefined) return false;
    if (record.seq === this.#seq + 1) {
      this.#entries.delete(key);
      this.#seq = record.seq;
    } else {
      // Stored either way (see write).
      await this.#catchUp(record.seq).catch(() => {});
    }
    return true;
  }

  /** A fresh read from the store, not from the last view. */
  get<V = unknown>(key: string): Promise<Entry<V> | undefined> {
    try {
      this.#checkOpen();
      checkKey(key);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return this.#store.get(key).then((stored) => (stored === undefined ? undefined : (toEntry(stored) as Entry<V>)));
  }

  /** A snapshot of what this board object knows; consecutive calls with no write between share one. */
  view(): BoardView {
    if (this.#snapshot?.seq !== this.#seq) {
      this.#snapshot = new SnapshotView(this.name, this.#seq, new Map(this.#entries));
    }
    return this.#snapshot;
  }

  /** Folds in every write the store has that this object has not seen yet; resolves the new seq. */
  refresh(): Promise<number> {
    this.#checkOpen();
    // Concurrent callers share one pass, so records are never applied twice.
    this.#refreshing ??= this.#pull().finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }

  /**
   * Refreshes until this object has seen log position `seq`. A refresh already in flight may have
   * read the log before `seq` was committed, so one shared pass is not always enough.
   */
  async #catchUp(seq: number): Promise<void> {
    while (!this.#closed && this.#seq < seq) await this.refresh();
  }

  async #pull(): Promise<number> {
    for (;;) {
      const records = await this.#store.history({ since: this.#seq, limit: REFRESH_BATCH });
      for (const stored of records) {
        // Seen already; past that, a networked store may skip a position (a foreign message it
        // refused), so the next record is not always seq + 1.
        if (stored.seq <= this.#seq) continue;
        applyRecord(this.#entries, toLogRecord(stored));
        this.#seq = stored.seq;
      }
      if (records.length < REFRESH_BATCH) return this.#seq;
    }
  }

  async history(options: HistoryOptions = {}): Promise<LogRecord[]> {
    this.#checkOpen();
    if (options.key !== undefined) checkKey(options.key);
    checkPosition("since", options.since);
    if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 1)) {
      throw new ConfigError(`history limit must be a whole number of at least 1, got ${options.limit}`);
    }
    const records = await this.#store.history({ key: options.key, since: options.since ?? 0, limit: options.limit });
    return records.map(toLogRecord);
  }

  /**
   * Every log record after `since`, in order, none lost and none twice, including writes made by
   * other processes on the same store. Ends when the signal aborts or the board closes.
   */
  async *watch(options: WatchOptions = {}): AsyncGenerator<LogRecord> {
    this.#checkOpen();
    checkPosition("since", options.since);
    const { signal } = options;
    const changes = new ChangeSignal();
    const stop = this.#store.onChange(() => changes.bump());
    this.#watchers.add(changes);
    try {
      // Taken at once, not after a read: a write landing while a read was on its way would fall
      // before the position that read found, and the watch would never show it.
      let cursor = options.since ?? this.#seq;
      while (!this.#closed && !signal?.aborted) {
        const seen = changes.version;
        let records: StoredRecord[];
        try {
          records = await this.#store.history({ since: cursor, limit: REFRESH_BATCH });
        } catch (error) {
          // Closed while a read was on its way (a networked store): the watch just ends.
          if (this.#closed) return;
          throw error;
        }
        for (const stored of records) {
          if (this.#closed || signal?.aborted) return;
          cursor = stored.seq;
          yield toLogRecord(stored);
        }
        // A short batch read everything there was when `seen` was taken, so only a change past
        // it can have brought more: wait for one rather than read again to find nothing.
        if (records.length < REFRESH_BATCH) await changes.waitPast(seen, signal);
      }
    } finally {
      this.#watchers.delete(changes);
      stop();
    }
  }

  /** Ends live watches; later calls throw `ClosedError`. The backend is closed by the colony. */
  close(): void {
    this.#closed = true;
    for (const changes of this.#watchers) changes.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError(`board "${this.name}"`);
  }
}

function checkExpectedVersion(expected: unknown): asserts expected is number | undefined {
  if (expected !== undefined && (!Number.isInteger(expected) || (expected as number) < 0)) {
    throw new ConfigError(`expectedVersion is a whole number >= 0 (0 = create only), got ${String(expected)}`);
  }
}

function checkPosition(name: string, value: unknown): void {
  if (value !== undefined && (!Number.isInteger(value) || (value as number) < 0)) {
    throw new ConfigError(`${name} is a log position, a whole number >= 0, got ${String(value)}`);
  }
}
