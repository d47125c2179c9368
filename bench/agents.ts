/**
 * The sub-agents `bench/spawn.ts` measures. Type-only imports, so that a thread or process
 * loading this module loads nothing more than the host already has.
 */
import type { SubAgent, SubAgentContext } from "../src/index.ts";

/** Does nothing: what a spawn costs, and nothing else. */
export const noop: SubAgent<unknown, null> = { name: "noop", run: () => null };

export interface PingerInput {
  /** Turns run before the clock starts, so that both sides of the channel are warm. */
  warmup: number;
  /** Turns timed. */
  turns: number;
  /** Also read a key from the board on every turn (one more request and reply). */
  get: boolean;
}

const clocks = new WeakMap<SubAgentContext<PingerInput>, number>();

/**
 * Turn after turn, each ending at a turn boundary (a request to the runtime and its reply), and
 * with `get` a `board.get` first. Timed inside the child, from the start of turn warmup + 1 to
 * the start of turn warmup + turns + 1, so the spawn and the warm-up are left out.
 */
export const pinger: SubAgent<PingerInput, { seconds: number }> = {
  name: "pinger",
  async turn(ctx) {
    const { warmup, turns, get } = ctx.input;
    if (ctx.turn === warmup + 1) clocks.set(ctx, performance.now());
    if (ctx.turn === warmup + turns + 1) return { action: "done", result: { seconds: (performance.now() - clocks.get(ctx)!) / 1000 } };
    if (get) await ctx.board!.get("k");
    return { action: "continue" };
  },
};
