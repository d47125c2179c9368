/**
 * Hash routes, so the server serves one page whatever the address: `#/tasks?kind=research&task=t-1`,
 * `#/board/notes?at=12`, `#/runs/run-…`. A view keeps its selection and filters in the query,
 * so an address shows the same thing again (and a test can open it directly).
 */
import { useEffect, useState } from "preact/hooks";

export interface Route {
  /** The path's parts: `#/board/notes` is ["board", "notes"]. */
  parts: string[];
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, "");
  const [path = "", query = ""] = raw.split("?", 2) as [string?, string?];
  const parts = path
    .split("/")
    .filter((p) => p !== "")
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  return { parts, params: new URLSearchParams(query) };
}

export function formatHash(parts: string[], params?: Record<string, string | number | undefined | null> | URLSearchParams): string {
  const path = parts.map((p) => encodeURIComponent(p)).join("/");
  const search = new URLSearchParams();
  if (params instanceof URLSearchParams) params.forEach((v, k) => search.set(k, v));
  else if (params) for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") search.set(k, String(v));
  const query = search.toString();
  return `#/${path}${query ? `?${query}` : ""}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const listener = () => setRoute(parseHash(window.location.hash));
    window.addEventListener("hashchange", listener);
    return () => window.removeEventListener("hashchange", listener);
  }, []);
  return route;
}

/** Goes to a new address: a new entry in the history, as a link would. */
export function navigate(hash: string): void {
  if (window.location.hash !== hash) window.location.hash = hash;
}

/**
 * Changes parameters of the current address in place (filters, a scrubber position): no new
 * history entry for each, but `hashchange` listeners still hear of it.
 */
export function updateParams(changes: Record<string, string | number | undefined | null>, options: { push?: boolean } = {}): void {
  const route = parseHash(window.location.hash);
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === null || v === "") route.params.delete(k);
    else route.params.set(k, String(v));
  }
  const hash = formatHash(route.parts, route.params);
  if (hash === window.location.hash) return;
  if (options.push) {
    window.location.hash = hash;
    return;
  }
  const old = window.location.href;
  window.history.replaceState(null, "", hash);
  window.dispatchEvent(new HashChangeEvent("hashchange", { oldURL: old, newURL: window.location.href }));
}
