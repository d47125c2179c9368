/** Hooks the views share: loading, live streams, the clock and a coalescing timer. */
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import type { EventSourceMessage } from "eventsource-parser";
import { getAuthEpoch, isAbort, onAuthChange } from "./api.ts";
import { openStream, type StreamState } from "./sse.ts";
import { reportStream } from "./live.ts";

/** Grows when the token changes, so that what failed with a 401 loads again. */
export function useAuthEpoch(): number {
  const [epoch, setEpoch] = useState(getAuthEpoch());
  useEffect(() => onAuthChange(() => setEpoch(getAuthEpoch())), []);
  return epoch;
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  /** Loads again, keeping what is shown meanwhile. */
  reload: () => void;
}

/**
 * Runs `load` when `key` changes (and when the token does), aborting the one before. `key` is a
 * string so that callers name exactly what the result depends on.
 */
export function useLoad<T>(key: string | null, load: (signal: AbortSignal) => Promise<T>): Loaded<T> {
  const epoch = useAuthEpoch();
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean; key: string | null }>({
    data: undefined,
    error: undefined,
    loading: key !== null,
    key,
  });
  const [nonce, setNonce] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    if (key === null) {
      setState({ data: undefined, error: undefined, loading: false, key });
      return;
    }
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true, ...(s.key !== key && { data: undefined, error: undefined, key }) }));
    loadRef.current(controller.signal).then(
      (data) => {
        if (!controller.signal.aborted) setState({ data, error: undefined, loading: false, key });
      },
      (error: unknown) => {
        if (controller.signal.aborted || isAbort(error)) return;
        setState((s) => ({ ...s, error, loading: false, key }));
      },
    );
    return () => controller.abort();
  }, [key, nonce, epoch]);

  const reload = useCallback(() => setNonce((n) => n + 1), []);
  const current = state.key === key;
  return { data: current ? state.data : undefined, error: current ? state.error : undefined, loading: state.loading || !current, reload };
}

export interface StreamCallbacks {
  onEvent: (message: EventSourceMessage) => void;
  onOpen?: (again: boolean) => void;
}

/**
 * Keeps the stream at `path` open while the component is mounted (none when `path` is null). The
 * callbacks may change on every render; the stream is reopened only when `path` or `resumeFrom`
 * changes. Its state is shown in the header.
 */
export function useStream(path: string | null, callbacks: StreamCallbacks, resumeFrom?: string): StreamState | undefined {
  const ref = useRef(callbacks);
  ref.current = callbacks;
  const [state, setState] = useState<StreamState>();
  useEffect(() => {
    if (path === null) return;
    const release = reportStream(path);
    const close = openStream(
      path,
      {
        onEvent: (message) => ref.current.onEvent(message),
        onOpen: (again) => ref.current.onOpen?.(again),
        onState: (next) => {
          setState(next);
          release.update(next);
        },
      },
      { lastEventId: resumeFrom },
    );
    return () => {
      close();
      release.done();
    };
  }, [path, resumeFrom]);
  return state;
}

/**
 * A function that calls `fn` at most once per `ms`, at the end of a burst (and at least every
 * `ms` during a long one): many events, one reload.
 */
export function useCoalesced(fn: () => void, ms: number): () => void {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(() => {
    if (timer.current !== undefined) return;
    timer.current = setTimeout(() => {
      timer.current = undefined;
      fnRef.current();
    }, ms);
  }, [ms]);
}

/** The time, renewed every `ms` (for ages such as "heartbeat 3 s ago"). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

/** Calls `fn` every `ms` while the page is visible. */
export function useInterval(fn: () => void, ms: number | null): void {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (ms === null) return;
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") ref.current();
    }, ms);
    return () => clearInterval(timer);
  }, [ms]);
}

/**
 * Records kept by id and changed by events in batches: a burst of a thousand events is one
 * render, not a thousand. `newer(a, b)` says whether `b` may replace `a`.
 */
export function useBatchedMap<T>(idOf: (item: T) => string, newer: (current: T, next: T) => boolean) {
  const [map, setMap] = useState<Map<string, T>>(() => new Map());
  const queue = useRef<{ upserts: T[]; removals: string[] }>({ upserts: [], removals: [] });
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const helpers = useRef({ idOf, newer });
  helpers.current = { idOf, newer };

  useEffect(() => () => clearTimeout(timer.current), []);

  const flush = useCallback(() => {
    timer.current = undefined;
    const { upserts, removals } = queue.current;
    queue.current = { upserts: [], removals: [] };
    if (upserts.length === 0 && removals.length === 0) return;
    setMap((previous) => {
      const next = new Map(previous);
      for (const item of upserts) {
        const id = helpers.current.idOf(item);
        const current = next.get(id);
        if (!current || helpers.current.newer(current, item)) next.set(id, item);
      }
      for (const id of removals) next.delete(id);
      return next;
    });
  }, []);

  const schedule = useCallback(() => {
    if (timer.current === undefined) timer.current = setTimeout(flush, 50);
  }, [flush]);

  const upsert = useCallback(
    (item: T) => {
      queue.current.upserts.push(item);
      schedule();
    },
    [schedule],
  );
  const remove = useCallback(
    (id: string) => {
      queue.current.removals.push(id);
      schedule();
    },
    [schedule],
  );
  /** A whole list from the server: it wins, except over records events made newer meanwhile. */
  const replaceAll = useCallback((items: T[]) => {
    setMap((previous) => {
      const next = new Map<string, T>();
      for (const item of items) {
        const id = helpers.current.idOf(item);
        const current = previous.get(id);
        next.set(id, current && helpers.current.newer(item, current) && !helpers.current.newer(current, item) ? current : item);
      }
      return next;
    });
  }, []);
  return { map, upsert, remove, replaceAll };
}

/** `value`, once it has stayed the same for `ms`: a live figure that should not drive a load per change. */
export function useSettled<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

/** What a live list's event did: see `useLiveList`. */
export type LiveOutcome = "handled" | "snapshot" | "ready" | "reload";

/**
 * A list read whole by `load` and kept current by the stream at `streamPath`. `handle` applies an
 * event and says what it was: `handled` (applied), `snapshot` (it carried the whole list),
 * `ready` (the stream follows from now on) or `reload` (read the list again, at most once a
 * second). The first read waits for the stream to be ready, so that no change between the read
 * and the stream's start is lost; if the stream does not come within 1.5 s, the list is read
 * anyway, and again every 10 s while the stream is down.
 */
export function useLiveList(
  key: string,
  streamPath: string | null,
  load: (signal: AbortSignal) => Promise<void>,
  handle: (message: EventSourceMessage) => LiveOutcome,
): { loaded: boolean; error: unknown; reload: () => void } {
  const epoch = useAuthEpoch();
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<unknown>();
  const loadRef = useRef(load);
  loadRef.current = load;
  const controller = useRef<AbortController | undefined>(undefined);
  const awaitingReady = useRef(true);

  const read = useCallback(() => {
    controller.current?.abort();
    const current = new AbortController();
    controller.current = current;
    loadRef.current(current.signal).then(
      () => {
        if (current.signal.aborted) return;
        setLoaded(true);
        setError(undefined);
      },
      (e: unknown) => {
        if (!current.signal.aborted && !isAbort(e)) setError(e);
      },
    );
  }, []);
  const reload = useCoalesced(read, 1000);

  useEffect(() => {
    setLoaded(false);
    setError(undefined);
    awaitingReady.current = true;
    const fallback = setTimeout(() => {
      if (awaitingReady.current) read();
    }, 1500);
    return () => {
      clearTimeout(fallback);
      controller.current?.abort();
    };
  }, [key, epoch, read]);

  const state = useStream(streamPath, {
    onOpen: (again) => {
      if (!again) awaitingReady.current = true;
    },
    onEvent: (message) => {
      const outcome = handle(message);
      if (outcome === "snapshot") {
        awaitingReady.current = false;
        setLoaded(true);
        setError(undefined);
      } else if (outcome === "ready") {
        if (awaitingReady.current) {
          awaitingReady.current = false;
          read();
        }
      } else if (outcome === "reload") reload();
    },
  });
  useInterval(reload, state === "open" || streamPath === null ? null : 10_000);
  return { loaded, error, reload };
}
