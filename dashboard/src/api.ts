/**
 * Calls to the HTTP API: JSON under /api, the bearer token from sessionStorage, problems
 * (`{ title, status, detail, code, field? }`) turned into `ApiError`. A 401 tells the listeners,
 * so the app asks for a token once and every view loads again when it is given.
 */
const TOKEN_KEY = "colony.token";

/** A problem the server answered with, or a request that never got an answer (status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  readonly title: string | undefined;
  readonly detail: string | undefined;
  readonly field: string | undefined;
  /** The whole body: a 412 carries `current`, the entry as it is now. */
  readonly body: Record<string, unknown> | undefined;

  constructor(status: number, message: string, body?: Record<string, unknown>) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
    this.code = typeof body?.code === "string" ? body.code : undefined;
    this.title = typeof body?.title === "string" ? body.title : undefined;
    this.detail = typeof body?.detail === "string" ? body.detail : undefined;
    this.field = typeof body?.field === "string" ? body.field : undefined;
  }
}

export function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError";
}

export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

type Listener = () => void;
const authListeners = new Set<Listener>();
const unauthorizedListeners = new Set<Listener>();
let authEpoch = 0;

function storage(): Storage | undefined {
  try {
    return window.sessionStorage;
  } catch {
    return undefined; // storage disabled: the token lives for this page only
  }
}
let memoryToken: string | null = null;

export function getToken(): string | null {
  return storage()?.getItem(TOKEN_KEY) ?? memoryToken;
}

export function setToken(token: string | null): void {
  memoryToken = token;
  const store = storage();
  if (token) store?.setItem(TOKEN_KEY, token);
  else store?.removeItem(TOKEN_KEY);
  authEpoch++;
  for (const listener of authListeners) listener();
}

/** Grows each time the token changes: views load again on it. */
export function getAuthEpoch(): number {
  return authEpoch;
}

export function onAuthChange(listener: Listener): () => void {
  authListeners.add(listener);
  return () => authListeners.delete(listener);
}

export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

export function reportUnauthorized(): void {
  for (const listener of unauthorizedListeners) listener();
}

/** Takes a token handed over in the address (`?token=…`), keeps it and removes it from the address bar. */
export function adoptTokenFromUrl(): void {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (!token) return;
  setToken(token);
  url.searchParams.delete("token");
  window.history.replaceState(null, "", url.pathname + url.search + url.hash);
}

export function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** The path with each defined parameter appended, URL-encoded. */
export function withQuery(path: string, params: Record<string, string | number | undefined | null | false>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === false || value === "") continue;
    search.set(name, String(value));
  }
  const query = search.toString();
  return query ? `${path}${path.includes("?") ? "&" : "?"}${query}` : path;
}

export const enc = encodeURIComponent;

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...authHeaders(), ...options.headers };
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  let response: Response;
  try {
    response = await fetch(path, { method: options.method ?? "GET", headers, body, signal: options.signal, cache: "no-store" });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError(0, `the server did not answer (${errorMessage(error)})`);
  }
  const text = await response.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (!response.ok) {
    if (response.status === 401) reportUnauthorized();
    const problem = parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : undefined;
    const detail = typeof problem?.detail === "string" ? problem.detail : typeof problem?.title === "string" ? problem.title : text.slice(0, 200);
    throw new ApiError(response.status, detail || `HTTP ${response.status} ${response.statusText}`, problem);
  }
  return parsed as T;
}
