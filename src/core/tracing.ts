/**
 * Traces, through `@opentelemetry/api`: this is the one module that uses it. Colony makes spans
 * for runs, steps, loop agents' fires, sub-agents and their turns, tasks, model calls and tool
 * calls; an application sees them once it registers an SDK (a tracer provider, and a context
 * manager so that spans nest across awaits, as `NodeSDK` does). Until then no span is made, and
 * the API is not even loaded (it takes some 20 ms, more than a thread host's own code): the API
 * keeps what is registered with it on `globalThis` under one symbol, shared by every copy of it in
 * a thread, and each helper here looks there first.
 *
 * A span's context crosses threads, processes and machines as a W3C trace context carrier
 * (`traceparent`, `tracestate`), written and read here rather than by the global propagator, which
 * an application need not register: a task carries its submitter's (`Task.trace`), and the answer
 * to a host's turn request carries the turn's.
 *
 * @example
 * import { context, trace } from "@opentelemetry/api";
 * import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
 * import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
 *
 * context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
 * trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] }));
 */
import { createRequire } from "node:module";
import type * as Api from "@opentelemetry/api";
import type { Context, Span, SpanAttributes, SpanContext, TracerProvider } from "@opentelemetry/api";
import { ModelError } from "./errors.ts";

export type { Context, Span, SpanAttributes };

/** Colony's version, the tracer's: core reads no files, so a test holds this to package.json's. */
const TRACER_VERSION = "0.1.0";
const TRACER_NAME = "colony";

/** A span's W3C trace context, as it crosses a thread, a process or a machine. */
export interface TraceCarrier {
  traceparent: string;
  tracestate?: string;
}

/** A span that outlives one call (a sub-agent's life, one of its turns) and the context it is active in. */
export interface OpenSpan {
  span: Span;
  context: Context;
}

export interface SpanOptions {
  /** Default the active context; a carrier makes the span a child of the span it names; `none` begins a trace. */
  parent?: Context | TraceCarrier | "none";
  /** Default internal. */
  kind?: "client" | "consumer";
}

const API_GLOBALS = Symbol.for("opentelemetry.js.api.1");
let loaded: { api: typeof Api; noop: TracerProvider } | undefined;

/** The API, once anything of OpenTelemetry is registered in this thread; not loaded before. */
function otel(): typeof Api | undefined {
  if (loaded === undefined && (globalThis as Record<symbol, unknown>)[API_GLOBALS] !== undefined) {
    const api = createRequire(import.meta.url)("@opentelemetry/api") as typeof Api;
    // The provider that records nothing, which the global one delegates to until an SDK is registered.
    loaded = { api, noop: new api.ProxyTracerProvider().getDelegate() };
  }
  return loaded?.api;
}

/** The API while a tracer provider is registered. */
function recording(): typeof Api | undefined {
  const api = otel();
  if (api === undefined) return undefined;
  const provider = api.trace.getTracerProvider();
  // One registered by another copy of the API is of its own class: taken as registered.
  return !(provider instanceof api.ProxyTracerProvider) || provider.getDelegate() !== loaded!.noop ? api : undefined;
}

/** Whether a tracer provider is registered; until one is, no span is made at all. */
export function tracing(): boolean {
  return recording() !== undefined;
}

/** Starts a span its caller ends; undefined while no tracer provider is registered. */
export function startSpan(name: string, attributes: SpanAttributes, options: SpanOptions = {}): OpenSpan | undefined {
  const api = recording();
  if (api === undefined) return undefined;
  const { parent } = options;
  const from = parent === undefined ? api.context.active() : parent === "none" ? api.ROOT_CONTEXT : "traceparent" in parent ? (contextOf(parent) ?? api.ROOT_CONTEXT) : parent;
  const kind = options.kind === "client" ? api.SpanKind.CLIENT : options.kind === "consumer" ? api.SpanKind.CONSUMER : api.SpanKind.INTERNAL;
  const span = api.trace.getTracer(TRACER_NAME, TRACER_VERSION).startSpan(name, { attributes, kind }, from);
  return { span, context: api.trace.setSpan(from, span) };
}

/**
 * Runs `fn` in a new span, active for all `fn` does, and ends the span with it; a throw is
 * recorded on it as an error. While no tracer provider is registered, `fn` gets no span.
 */
export async function withSpan<T>(name: string, attributes: SpanAttributes, fn: (span: Span | undefined) => T | Promise<T>, options: SpanOptions = {}): Promise<T> {
  const open = startSpan(name, attributes, options);
  if (!open) return fn(undefined);
  try {
    return await runInContext(open.context, () => fn(open.span));
  } catch (error) {
    recordError(open.span, error);
    throw error;
  } finally {
    open.span.end();
  }
}

/** Runs `fn` with `active` as the active context, or as it is without one. */
export function runInContext<T>(active: Context | undefined, fn: () => T): T {
  return active === undefined ? fn() : otel()!.context.with(active, fn);
}

/**
 * Marks a span failed: status ERROR with the error's message, the exception recorded, and
 * `error.type` the given type, else a model call's HTTP status or how it failed (`timeout`,
 * `network`, `output`), else the error's code (a Colony error's), else its class.
 */
export function recordError(span: Span | undefined, error: unknown, type?: string): void {
  if (span === undefined) return;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Error) span.recordException(error);
  span.setAttribute("error.type", type ?? errorType(error));
  span.setStatus({ code: otel()!.SpanStatusCode.ERROR, message });
}

function errorType(error: unknown): string {
  if (error instanceof ModelError) return error.status === undefined ? error.failure : String(error.status);
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : error instanceof Error ? error.name : "_OTHER";
}

/** The carrier of a context's span (default the active one); undefined while nothing is traced here. */
export function injectContext(from?: Context): TraceCarrier | undefined {
  const api = recording();
  if (api === undefined) return undefined;
  const span = api.trace.getSpanContext(from ?? api.context.active());
  if (!span || !api.isSpanContextValid(span)) return undefined;
  const tracestate = span.traceState?.serialize();
  return { traceparent: `00-${span.traceId}-${span.spanId}-0${span.traceFlags & api.TraceFlags.SAMPLED}`, ...(tracestate && { tracestate }) };
}

/** version-traceid-parentid-flags; a version past 00 may add fields after them (W3C Trace Context). */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * A context whose span is the one the carrier names (a remote parent), on no other. Undefined
 * where nothing of OpenTelemetry is registered (nothing here could record under it) or the
 * carrier is malformed.
 */
export function contextOf(carrier: TraceCarrier): Context | undefined {
  const api = otel();
  const match = TRACEPARENT.exec(carrier.traceparent);
  if (api === undefined || !match || match[1] === "ff" || (match[1] === "00" && match[5] !== undefined)) return undefined;
  const span: SpanContext = { traceId: match[2]!, spanId: match[3]!, traceFlags: parseInt(match[4]!, 16), isRemote: true };
  if (carrier.tracestate) span.traceState = api.createTraceState(carrier.tracestate);
  return api.isSpanContextValid(span) ? api.trace.setSpanContext(api.ROOT_CONTEXT, span) : undefined;
}
