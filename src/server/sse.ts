/**
 * Live streams as Server-Sent Events. Each event of a source with a log carries its position as
 * `id:`, so a client that reconnects with `Last-Event-ID` (or `?after=`) gets everything after
 * it, none lost and none repeated. A position the source does not hold (gone under retention,
 * or from another log) is told with an `event: horizon`, and the stream goes on from where the
 * source can. A comment goes out every
 * `heartbeatMs` so that proxies keep the stream open, and the source's watch ends when the client
 * goes (or the server closes).
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { problemFor } from "./problem.ts";

interface StreamEvent {
  event: string;
  data: unknown;
  /** The event's log position, where its source has one. */
  id?: number;
}

type Send = (event: StreamEvent) => Promise<void>;

/** What a stream sends when it cannot resume where the client asked: reload the state, then follow from `from`. */
export function horizon(requested: number, from: number, detail: string): StreamEvent {
  return { event: "horizon", data: { requested, from, detail } };
}

/**
 * A response that streams what `produce` sends until it returns, the client goes, or `closing`
 * aborts. `produce` must end when its signal aborts; an error it throws is sent as an `error`
 * event holding a problem body.
 */
export function eventStream(c: Context, options: { heartbeatMs: number; closing: AbortSignal }, produce: (send: Send, signal: AbortSignal) => Promise<void>): Response {
  // HEAD gets the headers only: a stream nobody reads would wait for a reader for ever.
  if (c.req.method === "HEAD") return c.body(null, 200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const response = streamSSE(c, async (stream) => {
    const controller = new AbortController();
    const stop = () => controller.abort();
    stream.onAbort(stop);
    options.closing.addEventListener("abort", stop, { once: true });
    if (options.closing.aborted) stop();
    const heartbeat = setInterval(() => void stream.write(": keep-alive\n\n"), options.heartbeatMs);
    const send: Send = (event) => stream.writeSSE({ event: event.event, data: JSON.stringify(event.data), ...(event.id !== undefined && { id: String(event.id) }) });
    try {
      await produce(send, controller.signal);
    } catch (error) {
      if (!controller.signal.aborted) await send({ event: "error", data: problemFor(error) });
    } finally {
      clearInterval(heartbeat);
      options.closing.removeEventListener("abort", stop);
    }
  });
  // The connection ends with the stream: a client reconnects on a new one anyway, and a server
  // closing must not wait out the keep-alive of a connection whose stream it has just ended.
  response.headers.set("connection", "close");
  return response;
}

/** For the streams of sources without a log, which read them every so often: true after `ms`, false as soon as `signal` aborts. */
export async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await delay(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
