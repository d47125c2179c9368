/**
 * `colony run --step`: pauses before every step and every sub-agent turn until Enter, and shows
 * what changed on the board since the last pause. When standard input ends, it stops pausing; when
 * the run is interrupted (Ctrl-C, which a terminal's readline takes for itself, or SIGINT), the
 * pause ends and so does the run, recorded as aborted.
 */
import { createInterface } from "node:readline";
import type { BoardView } from "../core/board.ts";
import { entryLine } from "./format.ts";

export interface Stepper {
  beforeStep(index: number, view: BoardView): Promise<void>;
  beforeTurn(agent: { id: string; name: string; turn: number }): Promise<void>;
  close(): void;
}

/** What differs between two snapshots, as lines: `+` new or changed entries, `-` deleted ones. */
export function changes(before: BoardView | undefined, after: BoardView): string[] {
  const lines: string[] = [];
  for (const entry of after.entries()) {
    if (before?.read(entry.key)?.version !== entry.version) lines.push(`  + ${entryLine(entry)}`);
  }
  for (const key of before?.keys() ?? []) if (!after.has(key)) lines.push(`  - [${key}] deleted`);
  return lines;
}

/** `interrupt` is the run's: Ctrl-C at a pause aborts it, and its abort ends the pause. */
export function createStepper(interrupt: AbortController, out: NodeJS.WritableStream = process.stderr): Stepper {
  const reader = createInterface({ input: process.stdin });
  reader.on("SIGINT", () => interrupt.abort());
  const interrupted = new Promise<undefined>((resolve) => interrupt.signal.addEventListener("abort", () => resolve(undefined), { once: true }));
  const lines = reader[Symbol.asyncIterator]();
  let open = true;
  let last: BoardView | undefined;
  const pause = async (prompt: string) => {
    if (!open || interrupt.signal.aborted) return;
    out.write(`${prompt} — Enter to go on `);
    const line = await Promise.race([lines.next(), interrupted]);
    if (line === undefined || line.done) open = false;
    if (!process.stdin.isTTY) out.write("\n"); // a terminal echoes the Enter itself
  };
  return {
    async beforeStep(index, view) {
      const changed = changes(last, view);
      last = view;
      out.write(`${changed.length > 0 ? `changed since the last pause:\n${changed.join("\n")}\n` : "no change on the board\n"}`);
      await pause(`step ${index} at log position ${view.seq}`);
    },
    async beforeTurn(agent) {
      await pause(`  ${agent.name} (${agent.id}) turn ${agent.turn}`);
    },
    close: () => reader.close(),
  };
}
