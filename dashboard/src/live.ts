/** The state of the streams open now, summed up for the header's live indicator. */
import { useEffect, useState } from "preact/hooks";
import type { StreamState } from "./sse.ts";

const streams = new Map<number, StreamState>();
const listeners = new Set<() => void>();
let nextId = 0;

function changed(): void {
  for (const listener of listeners) listener();
}

export function reportStream(_path: string): { update: (state: StreamState) => void; done: () => void } {
  const id = nextId++;
  let done = false;
  streams.set(id, "connecting");
  changed();
  return {
    update: (state) => {
      if (done) return; // a stream closing says so after its view let go of it
      streams.set(id, state);
      changed();
    },
    done: () => {
      done = true;
      streams.delete(id);
      changed();
    },
  };
}

export type LiveSummary = "live" | "connecting" | "reconnecting" | "idle";

function summary(): LiveSummary {
  const states = [...streams.values()];
  if (states.length === 0) return "idle";
  if (states.some((s) => s === "retrying" || s === "closed")) return "reconnecting";
  if (states.some((s) => s === "connecting")) return "connecting";
  return "live";
}

export function useLiveSummary(): LiveSummary {
  const [value, setValue] = useState(summary());
  useEffect(() => {
    const listener = () => setValue(summary());
    listeners.add(listener);
    listener();
    return () => {
      listeners.delete(listener);
    };
  }, []);
  return value;
}
