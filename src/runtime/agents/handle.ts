/**
 * A parent's view of one child: fed with the child's events and its end by whoever relays them
 * (the runtime directly, or the runtime's messages to a host), it offers the state, the result
 * and a replayable stream of events.
 */
import { ChangeSignal } from "../../core/changes.ts";
import { SubAgentError, isFinal, type AgentState, type SubAgentEvent, type SubAgentHandle } from "../../core/subagent-types.ts";

export interface HandleOps {
  terminate(id: string, graceMs: number | undefined): Promise<void>;
  signal(id: string, message: unknown): Promise<void>;
}

export class SpawnedHandle<R = unknown> implements SubAgentHandle<R> {
  readonly id: string;
  readonly parentId: string | undefined;
  readonly name: string;
  readonly result: Promise<R>;
  readonly #ops: HandleOps;
  readonly #events: SubAgentEvent[] = [];
  readonly #changes = new ChangeSignal();
  #state: AgentState = "created";
  #resolve!: (value: R) => void;
  #reject!: (error: Error) => void;

  constructor(info: { id: string; parentId: string | undefined; name: string }, ops: HandleOps) {
    this.id = info.id;
    this.parentId = info.parentId;
    this.name = info.name;
    this.#ops = ops;
    this.result = new Promise<R>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // A parent that never looks at a failed child's result must not crash the process.
    this.result.catch(() => {});
  }

  get state(): AgentState {
    return this.#state;
  }

  get events(): AsyncIterable<SubAgentEvent> {
    const events = this.#events;
    const changes = this.#changes;
    return {
      async *[Symbol.asyncIterator]() {
        let next = 0;
        for (;;) {
          const seen = changes.version;
          while (next < events.length) yield events[next++]!;
          if (changes.closed) return;
          await changes.waitPast(seen);
        }
      },
    };
  }

  signal(message: unknown): Promise<void> {
    if (isFinal(this.#state)) {
      const last = this.#events.at(-1);
      const reason = last?.type === "subagent.failed" ? last.reason : "terminated";
      return Promise.reject(new SubAgentError(this.id, this.name, reason, `it has ended (${this.#state}); nothing can reach its inbox`));
    }
    return this.#ops.signal(this.id, message);
  }

  /** Ends the child (and its descendants); a child that has ended already is left as it is. */
  terminate(options: { graceMs?: number } = {}): Promise<void> {
    if (isFinal(this.#state)) return Promise.resolve();
    return this.#ops.terminate(this.id, options.graceMs);
  }

  /** Relays one event of the child. */
  feed(event: SubAgentEvent): void {
    if (this.#changes.closed) return;
    if (event.type === "state") this.#state = event.state;
    this.#events.push(event);
    this.#changes.bump();
  }

  /** Relays the child's end: its result, or the error that says why there is none. */
  end(outcome: { ok: true; result: R } | { ok: false; error: Error }): void {
    if (this.#changes.closed) return;
    if (outcome.ok) this.#resolve(outcome.result);
    else this.#reject(outcome.error);
    this.#changes.close();
  }
}
