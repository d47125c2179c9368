/** Ending a long-running command on SIGINT (Ctrl-C) or SIGTERM, cleanly rather than by Node's default exit. */

export interface StopSignal {
  /** Resolves with the first SIGINT or SIGTERM after `onStop()`. */
  readonly stopped: Promise<NodeJS.Signals>;
  /** Whether one came already. */
  readonly received: NodeJS.Signals | undefined;
  /** Stops listening: the signals' default handling (exit) is back. */
  off(): void;
}

/**
 * Listens for SIGINT and SIGTERM from now on, so that the command can finish and close what it
 * opened. Only the first is taken: a second Ctrl-C exits at once, as Node does by default.
 */
export function onStop(): StopSignal {
  let received: NodeJS.Signals | undefined;
  let resolve!: (signal: NodeJS.Signals) => void;
  const stopped = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const stop = (signal: NodeJS.Signals) => {
    received ??= signal;
    off();
    resolve(signal);
  };
  const off = () => {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  return {
    stopped,
    get received() {
      return received;
    },
    off,
  };
}
