/**
 * The JSON of recent answers, by what they are a pure function of (a board, a filter and a log
 * position): serialising a large list is most of a request's cost, and the same position always
 * gives the same text. Least recently used goes first.
 */
export class BodyCache {
  readonly #bodies = new Map<string, string>();
  readonly #kept: number;

  constructor(kept: number) {
    this.#kept = kept;
  }

  /** The body for `key`, made by `make` if it is not kept. */
  get(key: readonly unknown[], make: () => unknown): string {
    const id = JSON.stringify(key);
    let body = this.#bodies.get(id);
    if (body === undefined) {
      body = JSON.stringify(make());
      if (this.#bodies.size >= this.#kept) this.#bodies.delete(this.#bodies.keys().next().value!);
    } else this.#bodies.delete(id);
    this.#bodies.set(id, body);
    return body;
  }
}

