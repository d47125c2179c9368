/**
 * Server-Sent Events over fetch. A browser `EventSource` cannot send the bearer token, so the
 * stream is read with fetch and eventsource-parser, and this keeps EventSource's contract: the
 * last event id goes back as `Last-Event-ID` when it reconnects (ids are log positions, so the
 * server resumes where the stream broke), the server's `retry:` sets the delay, a 204 ends it.
 *
 * Colony's streams open with `ready` { after } (the position they follow from) and say
 * `horizon` { from } when they cannot resume where asked: the list must then be loaded again.
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { authHeaders, getAuthEpoch, onAuthChange, reportUnauthorized } from "./api.ts";

export type StreamState = "connecting" | "open" | "retrying" | "closed";

export interface StreamHandlers {
  onEvent: (message: EventSourceMessage) => void;
  /**
   * The stream is open. `again` is true after a break: events may have been missed (the server
   * could not resume from the last id), so a view loads its list once more.
   */
  onOpen?: (again: boolean) => void;
  onState?: (state: StreamState) => void;
}

export interface StreamOptions {
  /** Resume after this log position (sent as `Last-Event-ID` on the first request too). */
  lastEventId?: string | undefined;
}

const MAX_DELAY_MS = 30_000;

/** Opens the stream at `path` and keeps it open until the returned function is called. */
export function openStream(path: string, handlers: StreamHandlers, options: StreamOptions = {}): () => void {
  let closed = false;
  let controller: AbortController | undefined;
  let lastEventId = options.lastEventId;
  let retryMs = 1000;
  let failures = 0;
  let opened = false;
  let wake: (() => void) | undefined;

  const unsubscribe = onAuthChange(() => {
    // A new token: reconnect now with it rather than after the back-off.
    controller?.abort();
    wake?.();
  });

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  const setState = (state: StreamState) => {
    if (!closed) handlers.onState?.(state);
  };

  async function connectOnce(): Promise<"again" | "stop" | "auth"> {
    controller = new AbortController();
    const headers: Record<string, string> = { Accept: "text/event-stream", ...authHeaders() };
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    const response = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
    if (response.status === 204) return "stop";
    if (response.status === 401) {
      await response.body?.cancel();
      reportUnauthorized();
      return "auth";
    }
    if (response.status === 410) {
      // Too old to resume from: start from now, and let the view load its list again.
      await response.body?.cancel();
      lastEventId = undefined;
      return "again";
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new Error(`HTTP ${response.status}`);
    }
    failures = 0;
    setState("open");
    handlers.onOpen?.(opened);
    opened = true;
    const parser = createParser({
      onEvent: (message) => {
        if (message.id) lastEventId = message.id;
        else if (message.event === "ready" || message.event === "horizon") {
          // The position the stream follows from (`ready` { after }, `horizon` { from }): resume
          // there after a break even if no event came, so nothing between is lost.
          const data = parseData(message) as { after?: unknown; from?: unknown } | undefined;
          const position = message.event === "ready" ? data?.after : data?.from;
          if (typeof position === "number" && (message.event === "horizon" || lastEventId === undefined)) lastEventId = String(position);
        }
        handlers.onEvent(message);
      },
      onRetry: (ms) => {
        retryMs = ms;
      },
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return "again";
      parser.feed(value);
    }
  }

  void (async () => {
    while (!closed) {
      setState(opened ? "retrying" : "connecting");
      const epoch = getAuthEpoch();
      let outcome: "again" | "stop" | "auth" | "error";
      try {
        outcome = await connectOnce();
      } catch {
        outcome = "error";
      }
      if (closed) break;
      if (outcome === "stop") break;
      if (epoch !== getAuthEpoch()) {
        failures = 0; // a new token came while connecting or connected: use it at once
        continue;
      }
      if (outcome === "auth") {
        // Wait for a token (onAuthChange wakes this), or try again in a while.
        setState("retrying");
        await pause(MAX_DELAY_MS);
        continue;
      }
      if (outcome === "error") failures++;
      setState("retrying");
      const backoff = outcome === "error" ? Math.min(MAX_DELAY_MS, retryMs * 2 ** Math.min(failures - 1, 5)) : retryMs;
      await pause(backoff * (0.75 + Math.random() * 0.5));
    }
    if (!closed) handlers.onState?.("closed");
  })();

  return () => {
    closed = true;
    unsubscribe();
    controller?.abort();
    wake?.();
  };
}

/** The event's data as JSON, or undefined when it is not JSON. */
export function parseData(message: EventSourceMessage): unknown {
  try {
    return JSON.parse(message.data);
  } catch {
    return undefined;
  }
}
